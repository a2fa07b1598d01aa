import Glibc
@testable import JSON
import XCTest
@testable import CLI
@testable import Compile
@testable import Runtime
import Spec
import SpecJSON

/// What the fuzz targets (Tests/Fuzz) found, one test per finding, with the
/// input that showed it. Hangs are quadratic costs in the input's size:
/// their inputs are made here (a literal would be megabytes), in the shape
/// the target got them. The tests time nothing: they check the result at
/// a size where a return of the quadratic cost takes minutes, which the
/// suite's own time limit shows.
final class FuzzFindingsTests: XCTestCase {
    /// The JSON text of an object with `n` distinct keys, `{"k0":"v",...}`.
    func bigObject(_ n: Int, prefix: String = "k") -> String {
        "{" + (0..<n).map { "\"\(prefix)\($0)\":\"v\"" }.joined(separator: ",") + "}"
    }

    // MARK: fuzz-state, fuzz-config: JSONObject was O(n^2) to build and to read

    /// fuzz-state (timeout): a state.json with 100000 annotations (or cgroups)
    /// took seconds to write back (Record.object, key by key through
    /// JSONObject's setter, which searched every key before it), and
    /// `state`/`list` print the annotations the same way; fuzz-config
    /// (timeout): the Codable decoder's dictionaries looked up each key
    /// linearly. Fix: JSONObject indexes its keys once it is large.
    func testStateWithManyAnnotationsIsLinear() throws {
        let n = 100_000
        let text = "{\"id\":\"c1\",\"pid\":1,\"startTime\":1,\"bundle\":\"/b\",\"rootfs\":\"/r\",\"created\":\"x\",\"owner\":\"\","
            + "\"cgroups\":\(bigObject(n, prefix: "c")),\"annotations\":\(bigObject(n))}"
        do {
            let r = try Record.decode(Array(text.utf8), file: "state.json")
            XCTAssertEqual(r.annotations?.count, n)
            XCTAssertEqual(r.cgroups.count, n)
            let again = try Record.decode(Array(try r.json().compact().utf8), file: "state.json")
            XCTAssertEqual(again, r)
            let state = Store(root: "/nonexistent").state(r, status: .stopped)
            _ = state.json(rootfs: r.rootfs, created: r.created, owner: r.owner).compact()
        }
    }

    func testCodableDictionaryWithManyKeysIsLinear() throws {
        let n = 100_000
        do {
            let m = try JSONDecoding.decode([String: String].self, from: Array(bigObject(n).utf8), file: "x.json")
            XCTAssertEqual(m.count, n)
            XCTAssertEqual(m["k99999"], "v")
        }
    }

    /// The index keeps JSONObject's rules: the first of two keys equal as
    /// Swift Strings wins (jansson compares bytes, so "\u00e9" and
    /// "e\u0301" are both kept), assigning replaces in place, removing
    /// shifts what follows; below and above the size where indexing starts.
    func testLargeObjectsKeepFirstMatchOrderAndRemoval() throws {
        for n in [3, JSONObject.indexedCount - 1, JSONObject.indexedCount, 200] {
            let filler = (0..<n).map { "\"f\($0)\":\($0)" }.joined(separator: ",")
            let v = try JSONValue.parse("{\(filler),\"\u{e9}\":1,\"e\u{301}\":2}", file: "x")
            guard case .object(var o) = v else { return XCTFail() }
            XCTAssertEqual(o.count, n + 2)
            XCTAssertEqual(o["\u{e9}"], JSONValue.int(1), "n=\(n)")
            XCTAssertEqual(o["e\u{301}"], JSONValue.int(1), "n=\(n)")
            o["f0"] = JSONValue.int(-1)
            XCTAssertEqual(o.keys.first, "f0")
            XCTAssertEqual(o["f0"], JSONValue.int(-1))
            o["\u{e9}"] = nil
            XCTAssertEqual(o["e\u{301}"], JSONValue.int(2), "n=\(n): the second one is found once the first is gone")
            o["f1"] = nil
            XCTAssertNil(o["f1"])
            XCTAssertEqual(o["f2"], JSONValue.int(2))
            XCTAssertEqual(o.count, n)
            o["new"] = JSONValue.bool(true)
            XCTAssertEqual(o.keys.last, "new")
            XCTAssertEqual(o["new"], JSONValue.bool(true))
            // Equality is by entries, however the object was built.
            var built = JSONObject()
            for (k, x) in o.entries { built[k] = x }
            XCTAssertEqual(built, o)
        }
    }

    // MARK: fuzz-options: parsePort took host addresses the network reads otherwise

    /// fuzz-options (crash: the canonical form read back differs):
    /// "127.0.013.5" passed parsePort's octet check (UInt8("013") is 13) and
    /// went into the ports annotation, where the network's IPv4 parser
    /// refuses a leading zero (and the annotation schema does too); "+1"
    /// was taken the same way. Fix: octets are decimal digits, no leading zero.
    func testPortHostAddressOctetsAreCanonical() throws {
        let input = "127.0.013.5:53:53/udp"  // the input the target saved
        XCTAssertThrowsError(try parsePort(input))
        for bad in ["+1.2.3.4:80:80", "1.2.3.04:80:80", "1.2.3.-0:80:80", "00.1.1.1:1:1", "1.2.3.256:1:1", "1.2.3.:1:1", "\u{661}.1.1.1:1:1"] {
            XCTAssertThrowsError(try parsePort(bad), bad)
        }
        XCTAssertEqual(try parsePort("10.0.0.1:8080:80"), "10.0.0.1:8080:80/tcp")
        XCTAssertEqual(try parsePort("0.0.0.0:53:53/udp"), "0.0.0.0:53:53/udp")
        XCTAssertEqual(try parsePort("255.255.255.255:1:65535"), "255.255.255.255:1:65535/tcp")
    }

    // MARK: fuzz-args: compile and create disagreed on the hostname's length

    /// fuzz-args (crash: compiled flags that create's validation refuses):
    /// compile() limits `--hostname` to 64 characters, Spec.problems (and the
    /// kernel, HOST_NAME_MAX) to 64 bytes, so `spec --hostname` with 33 "\u{e9}"s
    /// wrote a config.json that create refuses. Fix: compile() counts bytes
    /// (and refuses whitespace and control characters).
    func testCompiledHostnameIsOneCreateTakes() throws {
        let input: [UInt8] = Array("spec\0--stdout\0--rootfs\0/fuzz/rootfs\0--hostname\0-timeout".utf8)
            + Array(repeating: 0xea, count: 24) + Array("-ox\0/bin/sh".utf8)  // the input the target saved, shortened
        let argv = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let host = Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil })
        for args in [argv, ["spec", "--rootfs", "/r", "--hostname", String(repeating: "\u{e9}", count: 33), "/bin/sh"]] {
            let cmd = try XCTUnwrap(commands.first { $0.name == args[0] })
            let p = try parseArgs(Array(args.dropFirst()), flags: cmd.flags, stopAtPositional: cmd.stopAtPositional, context: cmd.name)
            let spec: Spec
            do { spec = try compile(runFlags(from: p, command: p.positionals), host: host) } catch { continue }  // refusing it is a fix too
            let problems = spec.problems(bundle: "/b", exists: { _ in true })
            XCTAssertEqual(problems, [], "compiled flags create would refuse")
        }
    }

    // MARK: big inputs (Tests/Fuzz/big_inputs.py): compile() was O(n^2) in -e and -p

    /// fuzz-args on big_inputs.py's argv (timeout): `spec --rootfs R` with
    /// 20000 `-e K<i>=v` (each -e removed its key from every earlier
    /// variable: env.removeAll) or 20000 `-p <i>:80` (each port split and
    /// compared with every earlier one) took 20.7 s and 156.7 s in the
    /// release binary (a 229 KB argv; Linux takes 2 MB). Fix: one pass with
    /// a dictionary of the names' last settings, a set of the published
    /// host ports. The result is what the quadratic code gave.
    func testManyEnvAndPortFlagsCompileInOnePass() throws {
        var env = try manyFlags("-e") { "K\($0 % 15000)=v\($0)" }.process!.env ?? []
        XCTAssertEqual(env.count, 2 + 15000)
        XCTAssertEqual(Array(env.prefix(2)), ["PATH=" + Spec.defaultPath, "HOSTNAME=minicontainer"])
        // K5001..K14999 are set once, then K0 (by -e 15000), then K1..K5000
        // a second time (by -e 15001...20000): each in its last place.
        XCTAssertEqual(env[2], "K5001=v5001")
        XCTAssertEqual(env[2 + 14999 - 5001 + 1], "K0=v15000")
        XCTAssertEqual(env.last, "K5000=v20000")
        env = try manyFlags("-e") { $0 == 20_000 ? "PATH=/x" : "K\($0)=v" }.process!.env ?? []
        XCTAssertEqual(env.first, "HOSTNAME=minicontainer")
        XCTAssertEqual(env.last, "PATH=/x")
        let ports = try manyFlags("-p", extra: ["--network", "bridge"]) { "\($0):80" }.annotations![Annotation.ports]!
        XCTAssertEqual(ports.split(separator: ",").count, 20_000)
        XCTAssertThrowsError(try manyFlags("-p") { "\(1 + $0 % 19_999):80" })  // one host port twice
    }

    /// The spec `spec --rootfs /r` with 20000 of `flag` compiles to.
    func manyFlags(_ flag: String, extra: [String] = [], _ value: (Int) -> String) throws -> Spec {
        var args = ["--rootfs", "/r"] + extra
        for i in 1...20_000 { args += [flag, value(i)] }
        args.append("/bin/sh")
        let cmd = try XCTUnwrap(commands.first { $0.name == "spec" })
        let p = try parseArgs(args, flags: cmd.flags, stopAtPositional: true, context: "spec")
        let host = Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil })
        return try compile(runFlags(from: p, command: p.positionals), host: host)
    }
}
