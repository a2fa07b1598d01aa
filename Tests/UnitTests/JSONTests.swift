import XCTest
import JSON
import Spec

// Helpers shared by the JSON tests.

private let file = "config.json"

private func parse(_ text: String) throws -> JSONValue {
    try JSONValue.parse(text, file: file)
}

/// The JSONError a closure throws; fails the test when it throws nothing or
/// something else.
private func jsonError<T>(_ body: () throws -> T, file f: StaticString = #filePath, line: UInt = #line) -> JSONError? {
    do {
        let v = try body()
        XCTFail("expected a JSONError, got \(v)", file: f, line: line)
    } catch let e as JSONError {
        return e
    } catch {
        XCTFail("expected a JSONError, got \(type(of: error)): \(error)", file: f, line: line)
    }
    return nil
}

private func parseError(_ text: String, file f: StaticString = #filePath, line: UInt = #line) -> JSONError? {
    jsonError({ try parse(text) }, file: f, line: line)
}

private func decodeSpec(_ text: String) throws -> Spec {
    try JSONDecoding.decode(Spec.self, from: Array(text.utf8), file: file)
}

private func decodeError(_ text: String, file f: StaticString = #filePath, line: UInt = #line) -> JSONError? {
    jsonError({ try decodeSpec(text) }, file: f, line: line)
}

/// A minimal valid config.json with `process`, into which tests splice pieces.
private func config(process: String = #""user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/""#,
                    extra: String = "") -> String {
    #"{"ociVersion": "1.1.0", "process": {\#(process)}\#(extra.isEmpty ? "" : ", " + extra)}"#
}

// MARK: - Parsing

final class JSONParseTests: XCTestCase {
    func testAllValueKinds() throws {
        let v = try parse(#"""
        {"n": null, "t": true, "f": false, "i": -42, "z": 0, "d": 1.5, "e": 2.5e3,
         "s": "h\u00e9llo \"q\" \\ \n", "a": [1, "x", [], {}], "o": {"k": {"deep": [null]}}}
        """#)
        let expected = JSONValue.object(JSONObject([
            ("n", .null),
            ("t", .bool(true)),
            ("f", .bool(false)),
            ("i", .int(-42)),
            ("z", .int(0)),
            ("d", .double(1.5)),
            ("e", .double(2500)),
            ("s", .string("héllo \"q\" \\ \n")),
            ("a", .array([.int(1), .string("x"), .array([]), .object(JSONObject())])),
            ("o", .object(JSONObject([("k", .object(JSONObject([("deep", .array([.null]))])))]))),
        ]))
        XCTAssertEqual(v, expected)
        XCTAssertEqual(v["n"]?.kindName, "null")
        XCTAssertEqual(v["t"]?.kindName, "boolean")
        XCTAssertEqual(v["i"]?.kindName, "integer")
        XCTAssertEqual(v["d"]?.kindName, "number")
        XCTAssertEqual(v["s"]?.kindName, "string")
        XCTAssertEqual(v["a"]?.kindName, "array")
        XCTAssertEqual(v["o"]?.kindName, "object")
        XCTAssertNil(v["missing"])
        XCTAssertNil(v["a"]?["k"], "subscript on a non-object is nil")
    }

    func testNonASCIIAndEscapesInStrings() throws {
        let v = try parse(#"["日本語", "\ud83d\ude00", "\t\r\b\f\/", "é"]"#)
        XCTAssertEqual(v, .array([.string("日本語"), .string("😀"), .string("\t\r\u{08}\u{0C}/"), .string("é")]))
    }

    func testKeyOrderPreserved() throws {
        let v = try parse(#"{"zeta": 1, "alpha": 2, "mid": {"y": 1, "b": 2, "x": 3}, "beta": 4}"#)
        guard case .object(let o) = v else { return XCTFail("not an object: \(v)") }
        XCTAssertEqual(o.keys, ["zeta", "alpha", "mid", "beta"])
        guard case .object(let mid)? = o["mid"] else { return XCTFail("mid not an object") }
        XCTAssertEqual(mid.keys, ["y", "b", "x"])
        // And the writer keeps it.
        XCTAssertEqual(v.compact(), #"{"zeta":1,"alpha":2,"mid":{"y":1,"b":2,"x":3},"beta":4}"#)
    }

    func testObjectsWithSameEntriesInAnotherOrderDiffer() throws {
        XCTAssertNotEqual(try parse(#"{"a": 1, "b": 2}"#), try parse(#"{"b": 2, "a": 1}"#))
        XCTAssertEqual(try parse(#"{"a": 1, "b": 2}"#), try parse("{\n\"a\" : 1 ,\"b\":2}"))
    }

    func testDuplicateKeysRejected() throws {
        let e = parseError("{\n  \"a\": 1,\n  \"b\": {\"x\": 1},\n  \"a\": 2\n}")
        XCTAssertNotNil(e)
        guard let e = e else { return }
        XCTAssertTrue(e.message.contains("duplicate key"), e.description)
        XCTAssertEqual(e.line, 4)
        XCTAssertNotNil(e.column)
        XCTAssertTrue(e.description.hasPrefix("config.json:4:\(e.column ?? -1): invalid JSON: duplicate key"), e.description)
    }

    func testDuplicateKeysRejectedInNestedObject() throws {
        let e = parseError(#"{"a": {"k": 1, "k": 1}}"#)
        XCTAssertTrue(e?.message.contains("duplicate key") ?? false, "\(String(describing: e))")
        XCTAssertEqual(e?.line, 1)
    }

    func testDuplicateKeysRejectedOnTheBigIntegerPath() throws {
        // A document with a uint64 goes through the second parse; duplicates
        // must still be refused there.
        let e = parseError(#"{"a": 18446744073709551615, "a": 1}"#)
        XCTAssertTrue(e?.message.contains("duplicate key") ?? false, "\(String(describing: e))")
    }

    func testMalformedDocuments() throws {
        let docs = [
            "[1, 2,]",                 // trailing comma in array
            "{\"a\": 1,}",             // trailing comma in object
            "{\"a\": \"abc",           // unterminated string
            "{\"a\": \"abc}",          // unterminated string
            "",                        // empty document
            "{\"a\": [1, 2",           // truncated
            "{\"a\"",                  // truncated after key
            "{",                       // truncated
            "{\"a\": tru}",            // bad literal
            "{\"a\": 1} x",            // trailing garbage
            "{'a': 1}",                // single quotes
            "{\"a\": 01}",             // leading zero
            "{\"a\": \"\u{01}\"}",     // raw control character
        ]
        for doc in docs {
            guard let e = parseError(doc) else { continue }
            XCTAssertTrue(e.description.hasPrefix("config.json:"), "\(doc.debugDescription): \(e)")
            XCTAssertTrue(e.description.contains("invalid JSON"), "\(doc.debugDescription): \(e)")
            XCTAssertEqual(e.file, "config.json")
            XCTAssertEqual(e.path, "")
            XCTAssertNotNil(e.line, "\(doc.debugDescription): \(e)")
        }
    }

    func testEmptyDocumentMessage() throws {
        let e = parseError("")
        XCTAssertEqual(e?.description, "config.json:1: invalid JSON: empty document")
    }

    func testInvalidUTF8Rejected() throws {
        let bytes: [UInt8] = Array("{\"a\": \"".utf8) + [0xff, 0xfe] + Array("\"}".utf8)
        let e = jsonError { try JSONValue.parse(bytes, file: "x.json") }
        XCTAssertTrue(e?.description.hasPrefix("x.json:") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.description.contains("invalid JSON") ?? false, "\(String(describing: e))")
    }

    func testFileNameInErrors() throws {
        let e = jsonError { try JSONValue.parse("[1,]", file: "/bundle/state.json") }
        XCTAssertTrue(e?.description.hasPrefix("/bundle/state.json:1:") ?? false, "\(String(describing: e))")
    }

    func testInt64BoundsExact() throws {
        let v = try parse("[-9223372036854775808, 9223372036854775807, -1, 0]")
        XCTAssertEqual(v, .array([.int(Int64.min), .int(Int64.max), .int(-1), .int(0)]))
    }

    func testIntegersAboveInt64AreUInt() throws {
        let v = try parse(#"{"a": 9223372036854775808, "b": 18446744073709551615, "c": [1, 18446744073709551614], "d": 5}"#)
        XCTAssertEqual(v["a"], .uint(9_223_372_036_854_775_808))
        XCTAssertEqual(v["b"], .uint(UInt64.max))
        XCTAssertEqual(v["c"], .array([.int(1), .uint(UInt64.max - 1)]))
        XCTAssertEqual(v["d"], .int(5))
        XCTAssertEqual(v["b"]?.kindName, "integer")
        guard case .object(let o) = v else { return XCTFail() }
        XCTAssertEqual(o.keys, ["a", "b", "c", "d"])
    }

    func testBigIntegerAtTopOfArrayAndNested() throws {
        XCTAssertEqual(try parse("[18446744073709551615]"), .array([.uint(UInt64.max)]))
        XCTAssertEqual(try parse("[[[9223372036854775808]]]"), .array([.array([.array([.uint(1 << 63)])])]))
    }

    func testIntegerAboveUInt64Rejected() throws {
        let e = parseError("{\n  \"a\": 18446744073709551616\n}")
        XCTAssertNotNil(e)
        XCTAssertTrue(e?.message.contains("out of range") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.message.contains("18446744073709551616") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.description.hasPrefix("config.json:2:") ?? false, "\(String(describing: e))")
        XCTAssertEqual(e?.line, 2)
        XCTAssertEqual(e?.column, 8)
    }

    func testIntegerBelowInt64Rejected() throws {
        let e = parseError(#"{"a": -9223372036854775809}"#)
        XCTAssertNotNil(e)
        XCTAssertTrue(e?.message.contains("out of range") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.message.contains("-9223372036854775809") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.description.hasPrefix("config.json:1:") ?? false, "\(String(describing: e))")
    }

    func testHugeIntegerRejected() throws {
        let e = parseError("[123456789012345678901234567890]")
        XCTAssertTrue(e?.message.contains("123456789012345678901234567890 is out of range") ?? false, "\(String(describing: e))")
    }

    func testNulInStringWithBigIntegerRejected() throws {
        // Either order: the NUL before or after the big integer.
        let docs = [
            #"{"a": "\u0000", "b": 18446744073709551615}"#,
            #"{"b": 18446744073709551615, "a": "\u0000"}"#,
            // Looks exactly like the parser's own marker for a big integer.
            #"{"b": 18446744073709551615, "a": "\u000012345"}"#,
            #"{"b": 18446744073709551615, "x\u0000": 1}"#,
        ]
        for doc in docs {
            guard let e = parseError(doc) else { continue }
            XCTAssertTrue(e.description.hasPrefix("config.json:1:"), "\(doc): \(e)")
            XCTAssertTrue(e.description.contains("invalid JSON"), "\(doc): \(e)")
            XCTAssertTrue(e.description.contains("\\u0000"), "\(doc): \(e)")
        }
    }

    func testNulInStringRejectedWithoutBigInteger() throws {
        let e = parseError(#"{"a": "x\u0000y"}"#)
        XCTAssertTrue(e?.description.contains("invalid JSON") ?? false, "\(String(describing: e))")
    }

    func testEscapedBackslashBeforeU0000IsNotANul() throws {
        // `\\u0000` is a backslash followed by the text u0000, not a NUL.
        let v = try parse(#"{"a": "\\u0000", "b": 18446744073709551615}"#)
        XCTAssertEqual(v["a"], .string("\\u0000"))
        XCTAssertEqual(v["b"], .uint(UInt64.max))
    }

    func testBigIntegerInsideStringLeftAsString() throws {
        let v = try parse(#"""
        {"s": "18446744073709551616", "q": "x\"99999999999999999999\"", "n": 18446744073709551615, "k": "18446744073709551615"}
        """#)
        XCTAssertEqual(v["s"], .string("18446744073709551616"))
        XCTAssertEqual(v["q"], .string("x\"99999999999999999999\""))
        XCTAssertEqual(v["n"], .uint(UInt64.max))
        XCTAssertEqual(v["k"], .string("18446744073709551615"))
        // Also as a key.
        let w = try parse(#"{"18446744073709551616": 18446744073709551615}"#)
        XCTAssertEqual(w["18446744073709551616"], .uint(UInt64.max))
    }

    func testBigRealsAndExponentsAreDoubles() throws {
        let v = try parse("[18446744073709551616.0, 1e19, -1.5E-3, 9223372036854775808]")
        XCTAssertEqual(v, .array([.double(18446744073709551616.0), .double(1e19), .double(-1.5e-3), .uint(1 << 63)]))
    }

    func testLeadingZerosRejectedOnTheBigIntegerPath() throws {
        // The first big integer sends the parse down the rewriting path; the
        // second literal is invalid JSON and must not be read as a number.
        for doc in ["[9223372036854775808, 018446744073709551615]",
                    "[9223372036854775808, -018446744073709551615]",
                    "[9223372036854775808, 00000000000000000001]"] {
            let e = parseError(doc)
            XCTAssertTrue(e?.description.hasPrefix("config.json:1:") ?? false, "\(doc): \(String(describing: e))")
            XCTAssertTrue(e?.message.hasPrefix("invalid JSON") ?? false, "\(doc): \(String(describing: e))")
        }
        XCTAssertNotNil(parseError("[018446744073709551615]"))
    }

    func testSyntaxErrorAfterBigIntegerStillReported() throws {
        let e = parseError(#"{"a": 18446744073709551615, "b": }"#)
        XCTAssertTrue(e?.description.hasPrefix("config.json:1:") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.description.contains("invalid JSON") ?? false, "\(String(describing: e))")
    }
}

// MARK: - JSONObject and JSONError

final class JSONObjectTests: XCTestCase {
    func testSubscriptSetReplaceRemove() {
        var o = JSONObject()
        o["b"] = .int(1)
        o["a"] = .int(2)
        o["b"] = .string("x")           // replaces in place
        XCTAssertEqual(o.keys, ["b", "a"])
        XCTAssertEqual(o["b"], .string("x"))
        o["b"] = nil
        XCTAssertEqual(o.keys, ["a"])
        XCTAssertEqual(o.count, 1)
        o["zz"] = nil                   // removing an absent key is a no-op
        XCTAssertEqual(o.count, 1)
    }

    func testInitWithDuplicateKeysKeepsLast() {
        let o = JSONObject([("a", .int(1)), ("b", .int(2)), ("a", .int(3))])
        XCTAssertEqual(o.keys, ["a", "b"])
        XCTAssertEqual(o["a"], .int(3))
    }

    func testErrorDescriptions() {
        XCTAssertEqual(JSONError(file: "f.json", message: "m").description, "f.json: m")
        XCTAssertEqual(JSONError(file: "f.json", path: "a.b[1]", message: "m").description, "f.json: a.b[1]: m")
        XCTAssertEqual(JSONError(file: "f.json", line: 3, column: 7, message: "m").description, "f.json:3:7: m")
        XCTAssertEqual(JSONError(file: "f.json", line: 3, message: "m").description, "f.json:3: m")
    }
}

// MARK: - Decoding into spec types

final class JSONDecodeTests: XCTestCase {
    func richSpec() -> Spec {
        var s = Spec.defaultSpec()
        s.annotations = ["org.example.b": "2", "org.example.a": "1", "z": "", "quote\"key": "new\nline"]
        s.domainname = "example.org"
        s.process!.rlimits = [.init(type: "RLIMIT_NOFILE", hard: .max, soft: 1024),
                              .init(type: "RLIMIT_CORE", hard: 0, soft: 0)]
        s.process!.oomScoreAdj = -500
        s.process!.consoleSize = .init(height: 24, width: 80)
        s.process!.user = .init(uid: 1000, gid: 1000, umask: 0o22, additionalGids: [5, 4_294_967_295])
        s.process!.commandLine = "sh -c true"
        var hooks = Hooks()
        hooks.prestart = [Hook(path: "/bin/true", args: ["true", "x"], env: ["A=B"], timeout: 5)]
        hooks.poststop = [Hook(path: "/bin/false")]
        s.hooks = hooks
        s.linux!.sysctl = ["net.ipv4.ip_forward": "1", "kernel.shmmax": "1024", "a": "b"]
        s.linux!.resources!.memory = Memory(limit: 1 << 30, reservation: -1, swap: Int64.max)
        s.linux!.resources!.memory!.swappiness = 60
        s.linux!.resources!.cpu = CPU(shares: 1024, quota: 50000, period: 100000, cpus: "0-1", mems: "0")
        s.linux!.resources!.pids = Pids(limit: -1)
        s.linux!.resources!.unified = ["memory.high": "max", "cpu.weight": "100"]
        s.linux!.devices = [Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0)]
        var seccomp = Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        seccomp.defaultErrnoRet = 1
        seccomp.architectures = ["SCMP_ARCH_X86_64"]
        var sc = Syscall(names: ["read", "write"], action: "SCMP_ACT_ALLOW")
        // SyscallArg has no public initializer; build it from JSON.
        sc.args = [try! JSONDecoding.decode(SyscallArg.self, from: JSONValue.parse(
            #"{"index": 0, "value": 18446744073709551615, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}"#, file: file), file: file)]
        seccomp.syscalls = [sc]
        s.linux!.seccomp = seccomp
        s.linux!.personality = Personality(domain: "LINUX32", flags: [])
        s.linux!.cgroupsPath = "/mini/x"
        s.linux!.rootfsPropagation = "rprivate"
        s.mounts!.append(Mount(destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"]))
        return s
    }

    func testSpecRoundTrip() throws {
        let original = richSpec()
        let text = try JSONEncoding.pretty(original)
        let decoded = try JSONDecoding.decode(Spec.self, from: Array(text.utf8), file: file)
        XCTAssertEqual(decoded, original)
        // And the second encoding is byte for byte the first.
        XCTAssertEqual(try JSONEncoding.pretty(decoded), text)
        XCTAssertEqual(decoded.process?.rlimits?.first?.hard, UInt64.max)
        XCTAssertEqual(decoded.linux?.seccomp?.syscalls?.first?.args?.first?.value, UInt64.max)
        XCTAssertEqual(decoded.linux?.resources?.memory?.swap, Int64.max)
    }

    func testDefaultSpecsRoundTrip() throws {
        for s in [Spec.defaultSpec(), Spec.defaultSpec(rootless: true, uid: 1000, gid: 1000)] {
            let v = try JSONEncoding.encode(s)
            let back = try JSONDecoding.decode(Spec.self, from: v, file: file)
            XCTAssertEqual(back, s)
            XCTAssertEqual(try JSONEncoding.encode(back), v)
        }
    }

    func testDecodeFromDocumentThenRoundTrip() throws {
        let text = #"""
        {
          "ociVersion": "1.0.2",
          "process": {
            "terminal": false,
            "user": {"uid": 1, "gid": 2},
            "args": ["/bin/echo", "hi"],
            "env": ["PATH=/bin"],
            "cwd": "/tmp",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 18446744073709551615}]
          },
          "root": {"path": "/rootfs", "readonly": false},
          "annotations": {"b": "2", "a": "1"},
          "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}]}
        }
        """#
        let s = try decodeSpec(text)
        XCTAssertEqual(s.ociVersion, "1.0.2")
        XCTAssertEqual(s.process?.args, ["/bin/echo", "hi"])
        XCTAssertEqual(s.process?.terminal, false)
        XCTAssertEqual(s.process?.user.uid, 1)
        XCTAssertEqual(s.process?.user.gid, 2)
        XCTAssertNil(s.process?.user.umask)
        XCTAssertEqual(s.process?.rlimits, [Rlimit(type: "RLIMIT_NOFILE", hard: .max, soft: .max)])
        XCTAssertEqual(s.root, Root(path: "/rootfs", readonly: false))
        XCTAssertEqual(s.annotations, ["a": "1", "b": "2"])
        XCTAssertEqual(s.linux?.namespaces, [Namespace(type: "pid"), Namespace(type: "network", path: "/proc/1/ns/net")])
        XCTAssertNil(s.hostname)
        XCTAssertNil(s.mounts)
        let again = try JSONDecoding.decode(Spec.self, from: JSONEncoding.encode(s), file: file)
        XCTAssertEqual(again, s)
    }

    func testNullForOptionalIsNil() throws {
        let s = try decodeSpec(config(extra: #""hostname": null, "mounts": null, "linux": {"sysctl": null}"#))
        XCTAssertNil(s.hostname)
        XCTAssertNil(s.mounts)
        XCTAssertNotNil(s.linux)
        XCTAssertNil(s.linux?.sysctl)
    }

    func testStringForIntegerField() throws {
        let e = decodeError(config(extra: #""linux": {"resources": {"memory": {"limit": "1g"}}}"#))
        XCTAssertEqual(e?.description, "config.json: linux.resources.memory.limit: expected integer, found string")
        XCTAssertEqual(e?.path, "linux.resources.memory.limit")
        XCTAssertNil(e?.line)
    }

    func testNumberInStringArray() throws {
        let e = decodeError(config(process: #""user": {"uid": 0, "gid": 0}, "args": ["sh", 42], "cwd": "/""#))
        XCTAssertEqual(e?.description, "config.json: process.args[1]: expected string, found integer")
        XCTAssertEqual(e?.path, "process.args[1]")
    }

    func testMissingRequiredProperty() throws {
        let e = decodeError(config(process: #""user": {"uid": 0, "gid": 0}, "args": ["sh"]"#))
        XCTAssertEqual(e?.path, "process.cwd")
        XCTAssertEqual(e?.message, "required property missing")
        XCTAssertEqual(e?.description, "config.json: process.cwd: required property missing")
    }

    func testMissingRequiredPropertyInsideArrayElement() throws {
        let e = decodeError(config(extra: #""mounts": [{"destination": "/a"}, {"type": "tmpfs"}]"#))
        XCTAssertEqual(e?.description, "config.json: mounts[1].destination: required property missing")
        let e2 = decodeError(#"{"process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"}}"#)
        XCTAssertEqual(e2?.description, "config.json: ociVersion: required property missing")
        let e3 = decodeError(config(process: #""user": {"uid": 0}, "cwd": "/""#))
        XCTAssertEqual(e3?.description, "config.json: process.user.gid: required property missing")
    }

    func testNullForRequiredProperty() throws {
        let e = decodeError(config(process: #""user": {"uid": 0, "gid": 0}, "cwd": null"#))
        XCTAssertEqual(e?.description, "config.json: process.cwd: expected string, found null")
    }

    func testWrongContainerKinds() throws {
        XCTAssertEqual(decodeError(#"{"ociVersion": "1.1.0", "process": []}"#)?.description,
                       "config.json: process: expected object, found array")
        XCTAssertEqual(decodeError(config(extra: #""mounts": {"destination": "/a"}"#))?.description,
                       "config.json: mounts: expected array, found object")
        XCTAssertEqual(decodeError(config(extra: #""root": {"path": "/r", "readonly": "yes"}"#))?.description,
                       "config.json: root.readonly: expected boolean, found string")
        let top = jsonError { try JSONDecoding.decode(Spec.self, from: JSONValue.array([]), file: file) }
        XCTAssertEqual(top?.description, "config.json: expected object, found array")
    }

    func testDeepArrayPaths() throws {
        let e = decodeError(config(extra: #""linux": {"namespaces": [{"type": "pid"}, {"type": 7}]}"#))
        XCTAssertEqual(e?.description, "config.json: linux.namespaces[1].type: expected string, found integer")
        let hooks = #""hooks": {"prestart": [{"path": "/a"}, {"path": "/b", "args": ["b", "c", true]}]}"#
        XCTAssertEqual(decodeError(config(extra: hooks))?.description,
                       "config.json: hooks.prestart[1].args[2]: expected string, found boolean")
        let seccomp = #""linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}}"#
        let se = decodeError(config(extra: seccomp))
        XCTAssertEqual(se?.path, "linux.seccomp.syscalls[0].args[0].value")
        XCTAssertTrue(se?.message.contains("-1 is out of range") ?? false, "\(String(describing: se))")
    }

    func testDictionaryValuePath() throws {
        let e = decodeError(config(extra: #""annotations": {"ok": "x", "bad": 1}"#))
        XCTAssertEqual(e?.description, "config.json: annotations.bad: expected string, found integer")
        let e2 = decodeError(config(extra: #""linux": {"sysctl": {"net.ipv4.ip_forward": true}}"#))
        XCTAssertEqual(e2?.description, "config.json: linux.sysctl.net.ipv4.ip_forward: expected string, found boolean")
    }

    func testRlimitHardUInt64Max() throws {
        let s = try decodeSpec(config(process: #"""
            "user": {"uid": 0, "gid": 0}, "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 9223372036854775808}]
            """#))
        XCTAssertEqual(s.process?.rlimits?.first?.hard, UInt64.max)
        XCTAssertEqual(s.process?.rlimits?.first?.soft, 9_223_372_036_854_775_808)
    }

    func testMemoryLimitAboveInt64() throws {
        let e = decodeError(config(extra: #""linux": {"resources": {"memory": {"limit": 18446744073709551615}}}"#))
        XCTAssertEqual(e?.path, "linux.resources.memory.limit")
        XCTAssertTrue(e?.description.hasPrefix("config.json: linux.resources.memory.limit: ") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.message.contains("18446744073709551615 is out of range") ?? false, "\(String(describing: e))")
        XCTAssertTrue(e?.message.contains("-9223372036854775808 and 9223372036854775807") ?? false, "\(String(describing: e))")
    }

    func testNegativeIntoUnsigned() throws {
        let e = decodeError(config(process: #""user": {"uid": -1, "gid": 0}, "cwd": "/""#))
        XCTAssertEqual(e?.description, "config.json: process.user.uid: -1 is out of range (must lie between 0 and 4294967295)")
        let e2 = decodeError(config(process: #""user": {"uid": 4294967296, "gid": 0}, "cwd": "/""#))
        XCTAssertEqual(e2?.path, "process.user.uid")
        XCTAssertTrue(e2?.message.contains("4294967296 is out of range") ?? false, "\(String(describing: e2))")
    }

    func testFractionForIntegerField() throws {
        let e = decodeError(config(process: #""user": {"uid": 1.5, "gid": 0}, "cwd": "/""#))
        XCTAssertEqual(e?.description, "config.json: process.user.uid: expected integer, found number 1.5")
        let e2 = decodeError(config(extra: #""linux": {"resources": {"memory": {"limit": 1.5}}}"#))
        XCTAssertEqual(e2?.description, "config.json: linux.resources.memory.limit: expected integer, found number 1.5")
    }

    func testUnknownPropertiesIgnoredAtEveryLevel() throws {
        let plain = #"""
        {"ociVersion": "1.1.0",
         "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                     "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}],
                     "capabilities": {"bounding": ["CAP_KILL"]}},
         "root": {"path": "rootfs"},
         "mounts": [{"destination": "/proc", "type": "proc"}],
         "hooks": {"prestart": [{"path": "/bin/true"}]},
         "linux": {"namespaces": [{"type": "pid"}],
                   "resources": {"memory": {"limit": 5}, "devices": [{"allow": false}]},
                   "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}}}
        """#
        let noisy = #"""
        {"ociVersion": "1.1.0", "x-top": {"deep": [1, {"a": null}]}, "vm": null, "solaris": 18446744073709551615,
         "process": {"user": {"uid": 0, "gid": 0, "x-user": "?"}, "args": ["sh"], "cwd": "/", "x-proc": [true],
                     "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1, "x-rl": 1.5}],
                     "capabilities": {"bounding": ["CAP_KILL"], "x-caps": {}}},
         "root": {"path": "rootfs", "x-root": "a"},
         "mounts": [{"destination": "/proc", "type": "proc", "x-mount": -1}],
         "hooks": {"prestart": [{"path": "/bin/true", "x-hook": []}], "x-kind": [{"path": 1}]},
         "linux": {"namespaces": [{"type": "pid", "x-ns": 0}], "x-rdt": {"closID": "x"},
                   "resources": {"memory": {"limit": 5, "x-mem": "big"}, "devices": [{"allow": false, "x-dev": 1}], "rdma": {}},
                   "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "x-sc": 1,
                               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "x-call": 2}]}}}
        """#
        let a = try decodeSpec(plain)
        let b = try decodeSpec(noisy)
        XCTAssertEqual(a, b)
        XCTAssertEqual(b.linux?.resources?.memory?.limit, 5)
        XCTAssertEqual(b.process?.capabilities?.bounding, ["CAP_KILL"])
        // Nothing unknown comes back out.
        XCTAssertFalse(try JSONEncoding.pretty(b).contains("x-"))
    }

    func testStateDecodeAndEncode() throws {
        let st = State(id: "c1", status: .running, pid: 42, bundle: "/b", annotations: ["k": "v"])
        let v = try JSONEncoding.encode(st)
        XCTAssertEqual(v.compact(), #"{"ociVersion":"\#(Spec.version)","id":"c1","status":"running","pid":42,"bundle":"/b","annotations":{"k":"v"}}"#)
        XCTAssertEqual(try JSONDecoding.decode(State.self, from: v, file: "state.json"), st)
        let stopped = State(id: "c1", status: .stopped, pid: nil, bundle: "/b")
        XCTAssertEqual(try JSONEncoding.encode(stopped).compact(), #"{"ociVersion":"\#(Spec.version)","id":"c1","status":"stopped","bundle":"/b"}"#)
    }
}

// MARK: - Encoding and writing

final class JSONWriteTests: XCTestCase {
    let sample = JSONValue.object(JSONObject([
        ("a", .int(1)),
        ("b", .array([.bool(true), .null, .double(1.5)])),
        ("c", .object(JSONObject())),
        ("d", .array([])),
        ("e", .object(JSONObject([("f", .string("g")), ("h", .array([.array([])]))]))),
    ]))

    func testPrettyForm() {
        let expected = """
        {
          "a": 1,
          "b": [
            true,
            null,
            1.5
          ],
          "c": {},
          "d": [],
          "e": {
            "f": "g",
            "h": [
              []
            ]
          }
        }

        """
        XCTAssertEqual(sample.pretty(), expected)
        XCTAssertTrue(sample.pretty().hasSuffix("}\n"))
        XCTAssertFalse(sample.pretty().hasSuffix("\n\n"))
        XCTAssertEqual(sample.pretty(), sample.pretty())
    }

    func testPrettyScalarsAndEmpty() {
        XCTAssertEqual(JSONValue.object(JSONObject()).pretty(), "{}\n")
        XCTAssertEqual(JSONValue.array([]).pretty(), "[]\n")
        XCTAssertEqual(JSONValue.int(3).pretty(), "3\n")
    }

    func testCompactForm() {
        XCTAssertEqual(sample.compact(), #"{"a":1,"b":[true,null,1.5],"c":{},"d":[],"e":{"f":"g","h":[[]]}}"#)
        XCTAssertFalse(sample.compact().contains("\n"))
        XCTAssertFalse(sample.compact().contains(" "))
    }

    func testPrettyAndCompactReparse() throws {
        XCTAssertEqual(try parse(sample.pretty()), sample)
        XCTAssertEqual(try parse(sample.compact()), sample)
    }

    func testSpecPrettyExact() throws {
        let s = Spec(process: .init(args: ["sh"]), root: Root(path: "rootfs"))
        let expected = """
        {
          "ociVersion": "\(Spec.version)",
          "process": {
            "user": {
              "uid": 0,
              "gid": 0
            },
            "args": [
              "sh"
            ],
            "cwd": "/"
          },
          "root": {
            "path": "rootfs"
          }
        }

        """
        XCTAssertEqual(try JSONEncoding.pretty(s), expected)
    }

    func testEmptyCollectionsInSpec() throws {
        var s = Spec(process: .init(args: [], env: []), root: nil, annotations: [:])
        s.linux = Linux()
        let text = try JSONEncoding.pretty(s)
        XCTAssertTrue(text.contains("\"args\": [],\n"), text)
        XCTAssertTrue(text.contains("\"env\": [],\n"), text)
        XCTAssertTrue(text.contains("\"annotations\": {},\n"), text)
        XCTAssertTrue(text.contains("\"linux\": {}\n"), text)
    }

    func testDictionariesWrittenSorted() throws {
        // Enough keys that hash order is all but certain to differ from sorted.
        let keys = (0..<60).map { "key.\(String($0 * 7919 % 1000, radix: 16))" }
        var ann: [String: String] = [:]
        for k in keys.reversed() { ann[k] = k.uppercased() }
        var sysctl: [String: String] = [:]
        for k in keys.shuffled() { sysctl["net." + k] = "1" }

        var s = Spec.defaultSpec()
        s.annotations = ann
        s.linux!.sysctl = sysctl
        let v = try JSONEncoding.encode(s)
        guard case .object(let a)? = v["annotations"] else { return XCTFail("no annotations") }
        XCTAssertEqual(a.keys, keys.sorted())
        XCTAssertEqual(a["key.0"], .string("KEY.0"))
        guard case .object(let sc)? = v["linux"]?["sysctl"] else { return XCTFail("no sysctl") }
        XCTAssertEqual(sc.keys, keys.map { "net." + $0 }.sorted())

        // The same content built in another insertion order writes the same bytes.
        var ann2: [String: String] = [:]
        for k in keys.shuffled() { ann2[k] = k.uppercased() }
        var s2 = s
        s2.annotations = ann2
        XCTAssertEqual(try JSONEncoding.pretty(s2), try JSONEncoding.pretty(s))

        // Keys appear in the text in sorted order.
        let text = try JSONEncoding.pretty(s)
        var last = text.startIndex
        for k in keys.sorted() {
            guard let r = text.range(of: "\"\(k)\": ", range: last..<text.endIndex) else {
                return XCTFail("\(k) missing or out of order")
            }
            last = r.upperBound
        }
    }

    func testBareDictionarySorted() throws {
        let d: [String: Int] = ["b": 2, "c": 3, "a": 1, "B": 0]
        XCTAssertEqual(try JSONEncoding.encode(d).compact(), #"{"B":0,"a":1,"b":2,"c":3}"#)
        let nested: [String: [String: String]] = ["y": ["2": "b", "1": "a"], "x": [:]]
        XCTAssertEqual(try JSONEncoding.encode(nested).compact(), #"{"x":{},"y":{"1":"a","2":"b"}}"#)
    }

    func testUInt64MaxWrittenExactly() throws {
        let r = Rlimit(type: "RLIMIT_NOFILE", hard: .max, soft: 9_223_372_036_854_775_807)
        let v = try JSONEncoding.encode(r)
        XCTAssertEqual(v["hard"], .uint(UInt64.max))
        XCTAssertEqual(v["soft"], .int(Int64.max))
        XCTAssertEqual(v.compact(), #"{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":9223372036854775807}"#)
        XCTAssertEqual(JSONValue.uint(UInt64.max).compact(), "18446744073709551615")
        XCTAssertEqual(JSONValue.int(Int64.min).compact(), "-9223372036854775808")
        XCTAssertEqual(try JSONEncoding.encode([UInt64(1) << 63, 5] as [UInt64]), .array([.uint(1 << 63), .int(5)]))
        XCTAssertEqual(try JSONEncoding.encode(UInt.max), .uint(UInt64(UInt.max)))
        // And it reads back the same.
        let back = try JSONDecoding.decode(Rlimit.self, from: Array(v.compact().utf8), file: file)
        XCTAssertEqual(back, r)
    }

    func testStringEscaping() throws {
        let s = "q\"b\\n\nt\tr\rb\u{08}f\u{0C}c\u{01}\u{1F}\u{00}/é日本😀\u{7F}"
        let written = JSONValue.string(s).compact()
        XCTAssertEqual(written, #""q\"b\\n\nt\tr\rb\bf\fc\u0001\u001f\u0000/é日本😀"# + "\u{7F}\"")
        // Non-ASCII passes through as UTF-8 bytes, not \u escapes.
        XCTAssertTrue(Array(written.utf8).contains(0xE6))   // first byte of 日
        XCTAssertFalse(written.contains("\\u00e9"))
        // Every byte below 0x20 is escaped.
        XCTAssertFalse(written.utf8.contains { $0 < 0x20 })
        // Keys are escaped the same way.
        let o = JSONValue.object(JSONObject([("a\"\n", .string("v"))]))
        XCTAssertEqual(o.compact(), #"{"a\"\n":"v"}"#)
        XCTAssertEqual(o.pretty(), "{\n  \"a\\\"\\n\": \"v\"\n}\n")
    }

    func testEscapedStringsReparse() throws {
        let s = "q\"b\\\nt\t\u{01}\u{1F}é日本😀"
        let doc = JSONValue.array([.string(s)])
        XCTAssertEqual(try parse(doc.compact()), doc)
        XCTAssertEqual(try parse(doc.pretty()), doc)
    }

    func testDoubles() throws {
        XCTAssertEqual(JSONValue.double(1.5).compact(), "1.5")
        XCTAssertEqual(JSONValue.double(2).compact(), "2")
        XCTAssertEqual(JSONValue.double(-0.25).compact(), "-0.25")
        XCTAssertEqual(try parse(JSONValue.array([.double(1e300)]).compact()), .array([.double(1e300)]))
        XCTAssertThrowsError(try JSONEncoding.encode([Double.nan]))
        XCTAssertThrowsError(try JSONEncoding.encode([Double.infinity]))
    }

    func testEncodeOmitsNilOptionals() throws {
        let m = Mount(destination: "/x")
        XCTAssertEqual(try JSONEncoding.encode(m).compact(), #"{"destination":"/x"}"#)
        let ns = Namespace(type: "pid")
        XCTAssertEqual(try JSONEncoding.encode(ns).compact(), #"{"type":"pid"}"#)
    }
}
