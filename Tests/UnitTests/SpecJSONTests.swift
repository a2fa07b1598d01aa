import XCTest
import JSON
import Spec
import SpecJSON
import Sys

// SpecJSON must decode exactly as `JSONDecoding.decode(Spec.self, ...)` does:
// equal Specs, or equal JSONErrors (file, path, line, column, message). Every
// case here runs both decoders and compares; the inputs are the goldens under
// Specs/, the schema fixtures, the bad configs of test_cli.py, hand-made edge
// cases, every single-node mutation of a config that sets every property of
// every type (and of the goldens and good fixtures), and every pair of bad
// properties in one object (for the order in which they are reported).

private let file = "config.json"

/// The repository: this file is Tests/UnitTests/SpecJSONTests.swift in it.
private let repoRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

private enum Outcome: Equatable {
    case decoded(Spec)
    case failed(JSONError)
}

private func outcome(_ body: () throws -> Spec) -> Outcome {
    do {
        return .decoded(try body())
    } catch let e as JSONError {
        return .failed(e)
    } catch {
        // Neither decoder may throw anything else; make the comparison fail.
        return .failed(JSONError(file: "?", message: "not a JSONError: \(type(of: error)) \(error)"))
    }
}

private func describe(_ o: Outcome) -> String {
    switch o {
    case .decoded(let s): return "decoded \(s)"
    case .failed(let e): return "error \"\(e)\""
    }
}

final class SpecJSONTests: XCTestCase {
    /// How many inputs this test compared.
    var cases = 0

    override func tearDown() {
        print("\(name): \(cases) equivalence cases")
        super.tearDown()
    }

    /// Decodes `bytes` with both decoders, from bytes and (when it parses)
    /// from the parsed value, and asserts that they agree. Returns the
    /// outcome, for checks of what it is.
    @discardableResult
    private func same(_ bytes: [UInt8], _ label: String, file f: StaticString = #filePath, line: UInt = #line) -> Outcome {
        cases += 1
        let old = outcome { try JSONDecoding.decode(Spec.self, from: bytes, file: file) }
        let new = outcome { try SpecJSON.decode(bytes, file: file) }
        compare(old, new, label, file: f, line: line)
        if let v = try? JSONValue.parse(bytes, file: file) {
            sameValue(v, label + " (parsed)", file: f, line: line)
        }
        return new
    }

    @discardableResult
    private func same(_ text: String, _ label: String? = nil, file f: StaticString = #filePath, line: UInt = #line) -> Outcome {
        same(Array(text.utf8), label ?? text, file: f, line: line)
    }

    /// Both decoders from an already parsed document.
    @discardableResult
    private func sameValue(_ v: JSONValue, _ label: String, file f: StaticString = #filePath, line: UInt = #line) -> Outcome {
        let old = outcome { try JSONDecoding.decode(Spec.self, from: v, file: file) }
        let new = outcome { try SpecJSON.decode(v, file: file) }
        compare(old, new, label, file: f, line: line)
        return new
    }

    /// Equal Specs, or equal errors: as values (file, path, line, column,
    /// message) and as the line the CLI prints.
    private func compare(_ old: Outcome, _ new: Outcome, _ label: String, file f: StaticString, line: UInt) {
        XCTAssertEqual(old, new, "\(label): Codable \(describe(old)), SpecJSON \(describe(new))", file: f, line: line)
        if case .failed(let a) = old, case .failed(let b) = new {
            XCTAssertEqual("\(a)", "\(b)", label, file: f, line: line)
        }
    }

    /// Asserts both decoders fail with exactly `expected` ("config.json: ...").
    private func fails(_ text: String, _ expected: String, file f: StaticString = #filePath, line: UInt = #line) {
        let o = same(text, file: f, line: line)
        guard case .failed(let e) = o else { return XCTFail("\(text): decoded", file: f, line: line) }
        XCTAssertEqual("\(e)", expected, file: f, line: line)
    }

    private func decodes(_ text: String, file f: StaticString = #filePath, line: UInt = #line) -> Spec? {
        let o = same(text, file: f, line: line)
        guard case .decoded(let s) = o else { XCTFail("\(text): \(describe(o))", file: f, line: line); return nil }
        return s
    }

    private func read(_ path: String) -> [UInt8] {
        do { return try FS.readBytes(path) } catch {
            XCTFail("cannot read \(path): \(error)")
            return []
        }
    }

    // MARK: - Files in the repository

    func testGoldens() {
        let dir = repoRoot + "/Specs"
        let names = FS.listDirectory(dir).filter { FS.exists(dir + "/" + $0 + "/config.json") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 10, "goldens in \(dir)")
        for n in names {
            let o = same(read(dir + "/" + n + "/config.json"), "Specs/\(n)")
            if case .failed(let e) = o { XCTFail("Specs/\(n): \(e)") }
        }
    }

    func testSchemaFixtures() {
        var decoded = 0, failed = 0
        for kind in ["good", "bad"] {
            let dir = repoRoot + "/schema/fixtures/config/" + kind
            let names = FS.listDirectory(dir).filter { $0.hasSuffix(".json") }.sorted()
            XCTAssertFalse(names.isEmpty, dir)
            for n in names {
                let o = same(read(dir + "/" + n), "schema/fixtures/config/\(kind)/\(n)")
                if case .decoded = o { decoded += 1 } else { failed += 1 }
                if kind == "good", case .failed(let e) = o { XCTFail("\(n): \(e)") }
            }
        }
        // Most bad fixtures are wrong in meaning only (validation's business),
        // but some are wrong in type or range and must fail to decode.
        XCTAssertGreaterThan(decoded, 0)
        XCTAssertGreaterThan(failed, 0)
    }

    // MARK: - The bad configs of Tests/integration/test_cli.py

    static let good = #"{"ociVersion":"1.1.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},"#
        + #""root":{"path":"/"},"linux":{"namespaces":[{"type":"pid"}]}}"#

    func testCLIConfigs() {
        let g = SpecJSONTests.good
        func r(_ a: String, _ b: String) -> String {
            XCTAssertTrue(g.contains(a), a)
            return g.replacing(a, with: b)
        }
        // (config, text the error must contain; "" when it decodes)
        let cases: [(String, String)] = [
            (#"{"ociVersion": "1.1.0","#, "config.json:1:"),
            ("", "empty document"),
            (#"{"ociVersion": "1.1.0", "ociVersion": "1.0.0"}"#, #"duplicate key "ociVersion""#),
            (r(#""linux":{"#, #""linux":{"resources":{"memory":{"limit":"1g"}},"#),
             "config.json: linux.resources.memory.limit: expected integer, found string"),
            (r(#"["sh"]"#, #"["sh", 5]"#), "config.json: process.args[1]: expected string, found integer"),
            (r(#""cwd":"/","#, ""), "config.json: process.cwd: required property missing"),
            (r(#""linux":{"#, #""linux":{"resources":{"memory":{"limit":18446744073709551615}},"#),
             "linux.resources.memory.limit: 18446744073709551615 is out of range"),
            (r(#""linux":{"#, #""linux":{"resources":{"memory":{"limit":18446744073709551616}},"#),
             "integer 18446744073709551616 is out of range"),
            (r(#"["sh"]"#, "[]"), ""),
            (r(#"[{"type":"pid"}]"#, #"[{"type":"pid"},{"type":"pid"}]"#), ""),
            (r(#""linux":{"#, #""linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"#), ""),
            (r(#""root""#, #""mounts":[{"destination":"proc","type":"proc"}],"root""#), ""),
            (r(#""path":"/""#, #""path":"rootfs""#), ""),
            ("[1, 2]", "config.json: expected object, found array"),
            (g, ""),
            (r(#""args":["sh"]"#, #""args":["sh"],"rlimits":[{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615}]"#), ""),
            (String(g.dropLast()) + #","vendor.thing":{"x":[1]}}"#, ""),
        ]
        for (text, expect) in cases {
            let o = same(text)
            switch o {
            case .decoded:
                XCTAssertEqual(expect, "", "\(text) decoded")
            case .failed(let e):
                XCTAssertFalse(expect.isEmpty, "\(text): \(e)")
                XCTAssertTrue("\(e)".contains(expect), "\(e)")
            }
        }
    }

    // MARK: - Hand-made edge cases

    /// `config` with `process` and `extra` spliced in, as in JSONTests.
    func config(process: String = #""user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/""#,
                _ extra: String = "") -> String {
        #"{"ociVersion": "1.1.0", "process": {\#(process)}\#(extra.isEmpty ? "" : ", " + extra)}"#
    }

    func linux(_ body: String) -> String { config(#""linux": {\#(body)}"#) }
    func resources(_ body: String) -> String { linux(#""resources": {\#(body)}"#) }

    func testTopLevel() {
        fails("[]", "config.json: expected object, found array")
        // The parser takes only an object or an array at the top; other
        // kinds reach the decoders only as a parsed value.
        fails("null", "config.json:1:4: invalid JSON: '[' or '{' expected near 'null'")
        for v: JSONValue in [.null, .bool(false), .int(1), .uint(UInt64.max), .double(1.5), .string("s"), .array([])] {
            cases += 1
            let o = sameValue(v, v.compact())
            XCTAssertEqual(o, .failed(JSONError(file: file, message: "expected object, found \(v.kindName)")))
        }
        fails("{}", "config.json: ociVersion: required property missing")
        fails(#"{"ociVersion": null}"#, "config.json: ociVersion: expected string, found null")
        fails(#"{"ociVersion": 1}"#, "config.json: ociVersion: expected string, found integer")
        XCTAssertEqual(decodes(#"{"ociVersion": ""}"#), Spec(ociVersion: ""))
        // Syntax errors are the parser's, shared by both.
        same("{")
        same("")
        same("   ")
        same(#"{"a": 01}"#)
        same(#"{"ociVersion": "1.1.0",}"#)
        same(#"{"ociVersion": "\u0000"}"#)
        same(#"{"ociVersion": "1.1.0", "x": 18446744073709551616}"#)
        same(#"{"ociVersion": "1.1.0", "x": -9223372036854775809}"#)
        same(#"{"ociVersion": "1.1.0", "x": 1e400}"#)
        same([0xff, 0xfe], "invalid UTF-8")
    }

    func testNulls() {
        // Optional properties: null is nil, at every level.
        let s = decodes(#"{"ociVersion": "1", "process": null, "root": null, "hostname": null, "domainname": null,"#
                        + #" "mounts": null, "hooks": null, "annotations": null, "linux": null}"#)
        XCTAssertEqual(s, Spec(ociVersion: "1"))
        _ = decodes(config(process: #""terminal": null, "consoleSize": null, "user": {"uid": 0, "gid": 0, "umask": null,"#
                           + #" "additionalGids": null, "username": null}, "args": null, "commandLine": null, "env": null,"#
                           + #" "cwd": "/", "capabilities": {"bounding": null}, "rlimits": null, "noNewPrivileges": null,"#
                           + #" "apparmorProfile": null, "oomScoreAdj": null, "selinuxLabel": null"#))
        _ = decodes(linux(#""uidMappings": null, "gidMappings": null, "sysctl": null, "resources": {"network": null,"#
                          + #" "pids": null, "memory": {"limit": null, "swappiness": null}, "cpu": {"quota": null, "cpus": null},"#
                          + #" "blockIO": {"weight": null, "weightDevice": null}, "hugepageLimits": null, "devices": null,"#
                          + #" "unified": null}, "cgroupsPath": null, "namespaces": null, "devices": null,"#
                          + #" "seccomp": {"defaultAction": "A", "syscalls": null}, "rootfsPropagation": null,"#
                          + #" "maskedPaths": null, "readonlyPaths": null, "mountLabel": null, "personality": null"#))
        // Required properties: null is a type error, of the property's type.
        fails(config(process: #""user": null, "cwd": "/""#), "config.json: process.user: expected object, found null")
        fails(config(process: #""user": {"uid": null, "gid": 0}, "cwd": "/""#),
              "config.json: process.user.uid: expected integer, found null")
        fails(config(process: #""user": {"uid": 0, "gid": 0}, "cwd": null"#), "config.json: process.cwd: expected string, found null")
        fails(linux(#""seccomp": {"defaultAction": "A", "syscalls": [{"names": null, "action": "B"}]}"#),
              "config.json: linux.seccomp.syscalls[0].names: expected array, found null")
        fails(resources(#""devices": [{"allow": null}]"#), "config.json: linux.resources.devices[0].allow: expected boolean, found null")
        fails(resources(#""pids": {"limit": null}"#), "config.json: linux.resources.pids.limit: expected integer, found null")
        // Null elements and map values are not skipped.
        fails(config(process: #""user": {"uid": 0, "gid": 0}, "args": ["sh", null], "cwd": "/""#),
              "config.json: process.args[1]: expected string, found null")
        fails(config(#""mounts": [null]"#), "config.json: mounts[0]: expected object, found null")
        fails(config(#""annotations": {"a": "b", "c": null}"#), "config.json: annotations.c: expected string, found null")
        fails(config(process: #""user": {"uid": 0, "gid": 0, "additionalGids": [1, null]}, "cwd": "/""#),
              "config.json: process.user.additionalGids[1]: expected integer, found null")
    }

    func testEmptyContainers() {
        let s = decodes(#"{"ociVersion": "1", "mounts": [], "annotations": {}, "hooks": {}, "linux": {"resources": {},"#
                        + #" "namespaces": [], "sysctl": {}, "seccomp": {"defaultAction": "x", "syscalls": []}}}"#)
        XCTAssertEqual(s?.mounts, [])
        XCTAssertEqual(s?.annotations, [:])
        XCTAssertEqual(s?.hooks, Hooks())
        fails(config(#""root": {}"#), "config.json: root.path: required property missing")
        fails(config(#""mounts": [{}]"#), "config.json: mounts[0].destination: required property missing")
        fails(config(#""hooks": {"poststop": [{}]}"#), "config.json: hooks.poststop[0].path: required property missing")
        fails(linux(#""seccomp": {}"#), "config.json: linux.seccomp.defaultAction: required property missing")
        fails(linux(#""personality": {}"#), "config.json: linux.personality.domain: required property missing")
        fails(resources(#""pids": {}"#), "config.json: linux.resources.pids.limit: required property missing")
        fails(config(process: ""), "config.json: process.user: required property missing")
        fails(config(process: #""user": {}"#), "config.json: process.user.uid: required property missing")
        fails(config(process: #""user": {"uid": 0}"#), "config.json: process.user.gid: required property missing")
    }

    /// runtime-spec 1.3's process settings (scheduler, ioPriority,
    /// execCPUAffinity, memoryPolicy): paths and Codable's messages.
    func testSpec13ProcessSettings() {
        let s = decodes(config(process: #""user": {"uid": 0, "gid": 0}, "cwd": "/", "scheduler": {"policy": "SCHED_FIFO","#
                               + #" "priority": 10}, "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},"#
                               + #" "execCPUAffinity": {"final": "0-1"}"#, #""linux": {"memoryPolicy": {"mode": "MPOL_LOCAL"}}"#))
        XCTAssertEqual(s?.process?.scheduler, Scheduler(policy: "SCHED_FIFO", priority: 10))
        XCTAssertEqual(s?.process?.ioPriority, IOPriority(class: "IOPRIO_CLASS_IDLE", priority: 0))
        XCTAssertEqual(s?.process?.execCPUAffinity, CPUAffinity(final: "0-1"))
        XCTAssertEqual(s?.linux?.memoryPolicy, MemoryPolicy(mode: "MPOL_LOCAL"))
        func proc(_ body: String) -> String { config(process: #""user": {"uid": 0, "gid": 0}, "cwd": "/", "# + body) }
        fails(proc(#""scheduler": {}"#), "config.json: process.scheduler.policy: required property missing")
        fails(proc(#""scheduler": {"policy": 1}"#), "config.json: process.scheduler.policy: expected string, found integer")
        fails(proc(#""scheduler": {"policy": "SCHED_OTHER", "nice": 2147483648}"#),
              "config.json: process.scheduler.nice: 2147483648 is out of range (must lie between -2147483648 and 2147483647)")
        fails(proc(#""scheduler": {"policy": "SCHED_OTHER", "runtime": -1}"#),
              "config.json: process.scheduler.runtime: -1 is out of range (must lie between 0 and 18446744073709551615)")
        fails(proc(#""scheduler": {"policy": "SCHED_OTHER", "flags": "SCHED_FLAG_RECLAIM"}"#),
              "config.json: process.scheduler.flags: expected array, found string")
        fails(proc(#""ioPriority": {"priority": 1}"#), "config.json: process.ioPriority.class: required property missing")
        fails(proc(#""ioPriority": {"class": "IOPRIO_CLASS_BE"}"#), "config.json: process.ioPriority.priority: required property missing")
        fails(proc(#""ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 1.5}"#),
              "config.json: process.ioPriority.priority: expected integer, found number 1.5")
        fails(proc(#""execCPUAffinity": {"initial": 0}"#), "config.json: process.execCPUAffinity.initial: expected string, found integer")
        fails(linux(#""memoryPolicy": {"nodes": "0"}"#), "config.json: linux.memoryPolicy.mode: required property missing")
        fails(linux(#""memoryPolicy": {"mode": "MPOL_BIND", "flags": [null]}"#),
              "config.json: linux.memoryPolicy.flags[0]: expected string, found null")
    }

    func testWrongTypesDeep() {
        fails(config(#""mounts": {}"#), "config.json: mounts: expected array, found object")
        fails(config(#""mounts": [{"destination": "/a"}, {"destination": "/b", "options": ["ro", 1]}]"#),
              "config.json: mounts[1].options[1]: expected string, found integer")
        fails(config(#""mounts": [{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 0, "size": "1"}]}]"#),
              "config.json: mounts[0].uidMappings[0].size: expected integer, found string")
        fails(config(#""hooks": {"prestart": [{"path": "/a"}], "poststop": [{"path": "/b"}, {"path": "/c", "timeout": "5"}]}"#),
              "config.json: hooks.poststop[1].timeout: expected integer, found string")
        fails(linux(#""seccomp": {"defaultAction": "A", "syscalls": [{"names": ["a"], "action": "B"},"#
                    + #" {"names": ["b"], "action": "C", "args": [{"index": 0, "value": 1, "op": "EQ"},"#
                    + #" {"index": 1, "value": true, "op": "EQ"}]}]}"#),
              "config.json: linux.seccomp.syscalls[1].args[1].value: expected integer, found boolean")
        fails(resources(#""blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": [1]}]}"#),
              "config.json: linux.resources.blockIO.throttleWriteIOPSDevice[0].rate: expected integer, found array")
        fails(resources(#""network": {"priorities": [{"name": "eth0", "priority": {}}]}"#),
              "config.json: linux.resources.network.priorities[0].priority: expected integer, found object")
        fails(resources(#""hugepageLimits": [{"pageSize": 2, "limit": 1}]"#),
              "config.json: linux.resources.hugepageLimits[0].pageSize: expected string, found integer")
        fails(resources(#""blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": "1"}]}"#),
              "config.json: linux.resources.blockIO.weightDevice[0].leafWeight: expected integer, found string")
        fails(linux(#""sysctl": {"a": "1", "b": 2}"#), "config.json: linux.sysctl.b: expected string, found integer")
        fails(resources(#""unified": []"#), "config.json: linux.resources.unified: expected object, found array")
        fails(config(process: #""user": {"uid": 0, "gid": 0}, "cwd": "/", "capabilities": {"ambient": "CAP_KILL"}"#),
              "config.json: process.capabilities.ambient: expected array, found string")
        fails(config(process: #""user": {"uid": 0, "gid": 0}, "cwd": "/", "terminal": "yes""#),
              "config.json: process.terminal: expected boolean, found string")
        // The first bad property in declaration order is reported, whatever
        // the order in the document.
        fails(config(process: #""cwd": 1, "user": {"uid": "0", "gid": 0}"#),
              "config.json: process.user.uid: expected integer, found string")
        fails(#"{"linux": 1, "process": 1, "ociVersion": "1"}"#, "config.json: process: expected object, found integer")
        fails(#"{"linux": 1, "process": 1}"#, "config.json: ociVersion: required property missing")
    }

    func testIntegers() {
        let user = { (f: String) in self.config(process: #""user": {"uid": 0, "gid": 0, \#(f)}, "cwd": "/""#) }
        fails(user(#""umask": -1"#), "config.json: process.user.umask: -1 is out of range (must lie between 0 and 4294967295)")
        fails(user(#""umask": 4294967296"#),
              "config.json: process.user.umask: 4294967296 is out of range (must lie between 0 and 4294967295)")
        XCTAssertEqual(decodes(user(#""umask": 4294967295"#))?.process?.user.umask, UInt32.max)
        fails(user(#""umask": 18446744073709551615"#),
              "config.json: process.user.umask: 18446744073709551615 is out of range (must lie between 0 and 4294967295)")
        fails(user(#""umask": 1.0"#), "config.json: process.user.umask: expected integer, found number 1")
        fails(user(#""umask": -0.0"#), "config.json: process.user.umask: expected integer, found number 0")
        fails(user(#""umask": 1.5"#), "config.json: process.user.umask: expected integer, found number 1.5")
        same(user(#""umask": 1e3"#))
        same(user(#""umask": 1e15"#))
        same(user(#""umask": 1e16"#))
        same(user(#""umask": 1.7976931348623157e308"#))
        same(user(#""umask": 5e-324"#))
        same(user(#""umask": -12345678901234567890.5"#))
        // Int (oomScoreAdj, timeout), Int64, UInt64, UInt (console size,
        // syscall arg index), UInt16 (blkio weight).
        let proc = { (f: String) in self.config(process: #""user": {"uid": 0, "gid": 0}, "cwd": "/", \#(f)"#) }
        XCTAssertEqual(decodes(proc(#""oomScoreAdj": -9223372036854775808"#))?.process?.oomScoreAdj, Int.min)
        fails(proc(#""oomScoreAdj": 9223372036854775808"#),
              "config.json: process.oomScoreAdj: 9223372036854775808 is out of range (must lie between -9223372036854775808 and 9223372036854775807)")
        fails(proc(#""consoleSize": {"height": -1, "width": 1}"#),
              "config.json: process.consoleSize.height: -1 is out of range (must lie between 0 and 18446744073709551615)")
        XCTAssertEqual(decodes(proc(#""consoleSize": {"height": 18446744073709551615, "width": 0}"#))?.process?.consoleSize,
                       ConsoleSize(height: UInt.max, width: 0))
        fails(proc(#""consoleSize": {"height": 1}"#), "config.json: process.consoleSize.width: required property missing")
        fails(proc(#""rlimits": [{"type": "RLIMIT_CORE", "hard": -1, "soft": 0}]"#),
              "config.json: process.rlimits[0].hard: -1 is out of range (must lie between 0 and 18446744073709551615)")
        fails(proc(#""rlimits": [{"type": "RLIMIT_CORE", "hard": 1, "soft": 9223372036854775808.0}]"#),
              "config.json: process.rlimits[0].soft: expected integer, found number 9.223372036854776e+18")
        fails(resources(#""memory": {"limit": 1, "swappiness": -1}"#),
              "config.json: linux.resources.memory.swappiness: -1 is out of range (must lie between 0 and 18446744073709551615)")
        fails(resources(#""memory": {"kernelTCP": 9223372036854775808}"#),
              "config.json: linux.resources.memory.kernelTCP: 9223372036854775808 is out of range (must lie between -9223372036854775808 and 9223372036854775807)")
        fails(resources(#""blockIO": {"weight": 65536}"#),
              "config.json: linux.resources.blockIO.weight: 65536 is out of range (must lie between 0 and 65535)")
        fails(resources(#""blockIO": {"leafWeight": -1}"#),
              "config.json: linux.resources.blockIO.leafWeight: -1 is out of range (must lie between 0 and 65535)")
        XCTAssertEqual(decodes(resources(#""blockIO": {"weight": 65535}"#))?.linux?.resources?.blockIO?.weight, 65535)
        fails(linux(#""seccomp": {"defaultAction": "A", "syscalls": [{"names": [], "action": "B", "args": [{"index": -1, "value": 0, "op": "x"}]}]}"#),
              "config.json: linux.seccomp.syscalls[0].args[0].index: -1 is out of range (must lie between 0 and 18446744073709551615)")
        fails(linux(#""devices": [{"type": "c", "path": "/dev/x", "major": 18446744073709551615}]"#),
              "config.json: linux.devices[0].major: 18446744073709551615 is out of range (must lie between -9223372036854775808 and 9223372036854775807)")
        fails(linux(#""uidMappings": [{"containerID": 0, "hostID": 4294967296, "size": 1}]"#),
              "config.json: linux.uidMappings[0].hostID: 4294967296 is out of range (must lie between 0 and 4294967295)")
        let big = decodes(proc(#""rlimits": [{"type": "R", "hard": 18446744073709551615, "soft": 9223372036854775808}]"#))
        XCTAssertEqual(big?.process?.rlimits, [Rlimit(type: "R", hard: UInt64.max, soft: 1 << 63)])
        // Beyond uint64 or below int64 is the parser's error, at a line and column.
        let beyond = same(resources(#""memory": {"limit": 99999999999999999999}"#))
        XCTAssertTrue(describe(beyond).contains(": integer 99999999999999999999 is out of range"), describe(beyond))
    }

    func testMapKeys() {
        // Keys of maps are rendered as they are, whatever they contain.
        fails(config(#""annotations": {"5": 5}"#), "config.json: annotations.5: expected string, found integer")
        fails(config(#""annotations": {"": 5}"#), "config.json: annotations.: expected string, found integer")
        fails(config(#""annotations": {"Index 3": 5}"#), "config.json: annotations.Index 3: expected string, found integer")
        fails(config(#""annotations": {"a.b[0]": []}"#), "config.json: annotations.a.b[0]: expected string, found array")
        fails(linux(#""sysctl": {"-1": {}}"#), "config.json: linux.sysctl.-1: expected string, found object")
        XCTAssertEqual(decodes(config(#""annotations": {"b": "1", "a": "2", "": ""}"#))?.annotations, ["a": "2", "b": "1", "": ""])
        // Keys that are canonically equivalent (one NFC, one NFD) are equal
        // Swift Strings: Codable gives both the first one's value, so a bad
        // value under the second is never looked at.
        let nfc = "\u{E9}", nfd = "e\u{301}"
        XCTAssertEqual(decodes(config(#""annotations": {"\#(nfc)": "a", "\#(nfd)": "b"}"#))?.annotations, [nfc: "a"])
        XCTAssertEqual(decodes(config(#""annotations": {"\#(nfd)": "a", "\#(nfc)": 5}"#))?.annotations, [nfd: "a"])
        fails(config(#""annotations": {"\#(nfd)": 5, "\#(nfc)": "a"}"#), "config.json: annotations.\(nfd): expected string, found integer")
        // Property names are looked up the same way: U+212A KELVIN SIGN is
        // canonically "K", and the first match wins.
        let kelvin = "disableOOM\u{212A}iller"
        XCTAssertEqual(decodes(resources(#""memory": {"\#(kelvin)": true}"#))?.linux?.resources?.memory?.disableOOMKiller, true)
        XCTAssertEqual(decodes(resources(#""memory": {"\#(kelvin)": false, "disableOOMKiller": 5}"#))?
            .linux?.resources?.memory?.disableOOMKiller, false)
        fails(resources(#""memory": {"\#(kelvin)": 5, "disableOOMKiller": true}"#),
              "config.json: linux.resources.memory.disableOOMKiller: expected boolean, found integer")
    }

    func testUnknownKeysIgnored() {
        let s = decodes(#"{"ociVersion": "1", "x": {"deep": [1, null, {"y": 18446744073709551615}]}, "process": {"#
                        + #""user": {"uid": 0, "gid": 0, "z": null}, "cwd": "/", "Cwd": 5, "cwd ": 6},"#
                        + #" "linux": {"resources": {"memory": {"limit": 1, "Limit": "x"}, "rdma": {"mlx": {"hcaHandles": 1}}}}}"#)
        XCTAssertEqual(s?.linux?.resources?.memory?.limit, 1)
    }

    // MARK: - Every property, every kind of bad value

    /// A config that sets every property of every type reachable from Spec
    /// (testFullConfigSetsEverything checks that it does).
    static let full = #"""
    {
      "ociVersion": "1.1.0",
      "process": {
        "terminal": true,
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [5, 6], "username": "u"},
        "args": ["sh", "-c", "true"],
        "commandLine": "sh -c true",
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/w",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"],
                         "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024}],
        "noNewPrivileges": true,
        "apparmorProfile": "p",
        "oomScoreAdj": -500,
        "selinuxLabel": "l",
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -3, "priority": 0, "flags": ["SCHED_FLAG_RECLAIM"],
                      "runtime": 1024, "deadline": 2048, "period": 4096},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 7},
        "execCPUAffinity": {"initial": "0-1", "final": "1"}
      },
      "root": {"path": "rootfs", "readonly": true},
      "hostname": "h",
      "domainname": "d",
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"],
         "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
         "gidMappings": [{"containerID": 0, "hostID": 1001, "size": 2}]}
      ],
      "hooks": {
        "prestart": [{"path": "/a", "args": ["a"], "env": ["A=1"], "timeout": 1}],
        "createRuntime": [{"path": "/b", "args": ["b"], "env": ["B=1"], "timeout": 2}],
        "createContainer": [{"path": "/c", "args": ["c"], "env": ["C=1"], "timeout": 3}],
        "startContainer": [{"path": "/d", "args": ["d"], "env": ["D=1"], "timeout": 4}],
        "poststart": [{"path": "/e", "args": ["e"], "env": ["E=1"], "timeout": 5}],
        "poststop": [{"path": "/f", "args": ["f"], "env": ["F=1"], "timeout": 6}]
      },
      "annotations": {"org.example.a": "1", "org.example.b": "2"},
      "linux": {
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 5}, "boottime": {"secs": 7, "nanosecs": 999999999}},
        "netDevices": {"eth1": {"name": "c0"}, "eth2": {"name": "c%d"}},
        "intelRdt": {"closID": "web", "schemata": ["L2:0=ff"], "l3CacheSchema": "L3:0=7ff", "memBwSchema": "MB:0=20",
                     "enableMonitoring": true},
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "resources": {
          "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
          "pids": {"limit": 256},
          "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 9223372036854775807,
                     "kernelTCP": -9223372036854775808, "swappiness": 60, "disableOOMKiller": false,
                     "useHierarchy": true, "checkBeforeUpdate": true},
          "cpu": {"shares": 1024, "quota": 50000, "burst": 10000, "period": 100000, "realtimeRuntime": 7,
                  "realtimePeriod": 8, "cpus": "0-3", "mems": "0", "idle": 1},
          "blockIO": {
            "weight": 500, "leafWeight": 300,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 65535}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 1, "rate": 104857600}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 2, "rate": 52428800}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 3, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 4, "rate": 18446744073709551615}]
          },
          "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
          "devices": [{"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
          "unified": {"memory.high": "400M"}
        },
        "cgroupsPath": "/mc/web",
        "namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}],
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 3, "gid": 4}],
        "seccomp": {
          "defaultAction": "SCMP_ACT_ERRNO",
          "defaultErrnoRet": 1,
          "architectures": ["SCMP_ARCH_X86_64"],
          "flags": ["SECCOMP_FILTER_FLAG_LOG"],
          "listenerPath": "/run/seccomp.sock",
          "listenerMetadata": "m",
          "syscalls": [
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "errnoRet": 2,
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 18446744073709551615, "op": "SCMP_CMP_MASKED_EQ"}]}
          ]
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "ml",
        "personality": {"domain": "LINUX32", "flags": ["f"]},
        "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-3,7", "flags": ["MPOL_F_STATIC_NODES"]}
      }
    }
    """#

    /// The full config really sets every property: no optional in the
    /// decoded value is nil and no array or map is empty. (Otherwise a
    /// misspelt key in it would be ignored by both decoders, and that
    /// property would go untested.)
    func testFullConfigSetsEverything() throws {
        guard let s = decodes(SpecJSONTests.full) else { return }
        var unset: [String] = []
        func walk(_ x: Any, _ path: String) {
            let m = Mirror(reflecting: x)
            switch m.displayStyle {
            case .optional?:
                if let c = m.children.first { walk(c.value, path) } else { unset.append(path) }
            case .collection?, .dictionary?:
                if m.children.isEmpty { unset.append(path + " (empty)") }
                for (i, c) in m.children.enumerated() { walk(c.value, "\(path)[\(i)]") }
            case .struct?:
                for c in m.children { walk(c.value, path + "." + (c.label ?? "?")) }
            default:
                break
            }
        }
        walk(s, "spec")
        XCTAssertEqual(unset, [])
        // And the values are the document's.
        let back = try JSONEncoding.encode(s)
        XCTAssertEqual(sorted(back), sorted(try JSONValue.parse(SpecJSONTests.full, file: file)))
    }

    /// `v` with the keys of every object sorted.
    func sorted(_ v: JSONValue) -> JSONValue {
        switch v {
        case .array(let a): return .array(a.map(sorted))
        case .object(let o):
            return .object(JSONObject(o.entries.sorted { $0.key < $1.key }.map { ($0.key, sorted($0.value)) }))
        default: return v
        }
    }

    /// Values that break (or fit) every type of property.
    static let replacements: [JSONValue] = [
        .null, .bool(true), .int(0), .int(-1), .int(65535), .int(65536), .int(4294967295), .int(4294967296),
        .int(Int64.max), .int(Int64.min), .uint(1 << 63), .uint(UInt64.max), .double(1.5), .double(2), .double(-1e300),
        .string(""), .string("x"), .array([]), .array([.null]), .array([.int(1)]), .array([.string("a")]),
        .object(JSONObject()), .object(JSONObject([("x", .null)])),
    ]

    /// Every document that differs from `v` in one place: one node replaced
    /// by each replacement, one property removed, or an unknown one added.
    func mutations(_ v: JSONValue, _ replacements: [JSONValue] = SpecJSONTests.replacements) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = replacements.map { ("= \($0.compact())", $0) }
        switch v {
        case .array(let a):
            for i in a.indices {
                for (what, x) in mutations(a[i], replacements) {
                    var b = a
                    b[i] = x
                    out.append(("[\(i)]" + what, .array(b)))
                }
            }
        case .object(let o):
            for e in o.entries {
                var d = o
                d[e.key] = nil
                out.append(("." + e.key + " removed", .object(d)))
                for (what, x) in mutations(e.value, replacements) {
                    var d = o
                    d[e.key] = x
                    out.append(("." + e.key + what, .object(d)))
                }
            }
            var d = o
            d["vendor.unknown"] = .array([.null])
            out.append((" + unknown key", .object(d)))
        default:
            break
        }
        return out
    }

    func testEveryPropertyMutated() throws {
        let full = try JSONValue.parse(SpecJSONTests.full, file: file)
        var decoded = 0, failed = 0
        for (what, doc) in mutations(full) {
            cases += 1
            if case .decoded = sameValue(doc, what) { decoded += 1 } else { failed += 1 }
        }
        XCTAssertGreaterThan(decoded, 500)
        XCTAssertGreaterThan(failed, 2000)
    }

    /// Every document with two properties of one object made bad at once
    /// (`[null]` suits no property): the one reported must be the first in
    /// declaration order, which single mutations cannot show.
    func pairMutations(_ v: JSONValue) -> [(String, JSONValue)] {
        let bad = JSONValue.array([.null])
        var out: [(String, JSONValue)] = []
        switch v {
        case .array(let a):
            for i in a.indices {
                for (what, x) in pairMutations(a[i]) {
                    var b = a
                    b[i] = x
                    out.append(("[\(i)]" + what, .array(b)))
                }
            }
        case .object(let o):
            let keys = o.keys
            for i in keys.indices {
                for j in keys.indices where j > i {
                    var d = o
                    d[keys[i]] = bad
                    d[keys[j]] = bad
                    out.append((" {\(keys[i]), \(keys[j])} bad", .object(d)))
                }
                for (what, x) in pairMutations(o[keys[i]]!) {
                    var d = o
                    d[keys[i]] = x
                    out.append(("." + keys[i] + what, .object(d)))
                }
            }
        default:
            break
        }
        return out
    }

    func testDeclarationOrder() throws {
        let full = try JSONValue.parse(SpecJSONTests.full, file: file)
        for (what, doc) in pairMutations(full) {
            cases += 1
            if case .decoded = sameValue(doc, what) { XCTFail("\(what) decoded") }
        }
        // The document's order is not the declaration order.
        cases += 1
        guard case .object(let o) = full else { return XCTFail("not an object") }
        sameValue(.object(JSONObject(o.entries.reversed().map { ($0.key, $0.value) })), "reversed")
    }

    /// A smaller sweep over the goldens and the good fixtures (other shapes:
    /// more elements, other properties present).
    func testFixturesMutated() throws {
        var docs: [(String, [UInt8])] = []
        let specs = repoRoot + "/Specs"
        for n in FS.listDirectory(specs).sorted() where FS.exists(specs + "/" + n + "/config.json") {
            docs.append(("Specs/" + n, read(specs + "/" + n + "/config.json")))
        }
        let good = repoRoot + "/schema/fixtures/config/good"
        for n in FS.listDirectory(good).sorted() where n.hasSuffix(".json") {
            docs.append((n, read(good + "/" + n)))
        }
        XCTAssertGreaterThan(docs.count, 20)
        let few: [JSONValue] = [.null, .int(-1), .uint(UInt64.max), .double(1.5), .string("x"), .array([.null]), .object(JSONObject())]
        for (name, bytes) in docs {
            let v = try JSONValue.parse(bytes, file: file)
            for (what, doc) in mutations(v, few) {
                cases += 1
                sameValue(doc, name + " " + what)
            }
        }
    }
}
