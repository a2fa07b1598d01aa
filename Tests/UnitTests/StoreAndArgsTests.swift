import Glibc
import JSON
import XCTest
@testable import CLI
@testable import Compile
@testable import Runtime
import Spec
import Sys

/// The state store's derived status, on a temporary --root and this test
/// process as the "init".
final class StoreTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = "/tmp/mc-store-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
    }

    override func tearDown() {
        try? FS.removeTree(root)
    }

    func record(_ id: String, pid: Int32, start: UInt64) -> Record {
        Record(id: id, pid: pid, startTime: start, bundle: "/b", rootfs: "/b/rootfs", created: "2026-01-01T00:00:00Z",
               owner: "", annotations: ["a": "1"], cgroups: [:], cgroupsPath: nil, namespaces: nil, exitCode: nil, creating: nil)
    }

    func testIdsAreValidated() {
        for bad in ["", ".", "..", "a/b", "a b", "x\u{0}"] {
            XCTAssertThrowsError(try Store.validate(id: bad), bad)
        }
        for good in ["c1", "A.b_c+d-e", String(repeating: "a", count: 64)] {
            XCTAssertNoThrow(try Store.validate(id: good), good)
        }
    }

    func testStateJSONByHandMatchesCodable() throws {
        var r = record("c1", pid: 42, start: UInt64(Int64.max) + 5)
        XCTAssertEqual(try r.json(), try JSONEncoding.encode(r))
        XCTAssertEqual(try Record(json: r.json(), file: "s"), r)
        r.cgroupsPath = "/x"; r.namespaces = ["pid": "/proc/42/ns/pid"]; r.exitCode = -1; r.creating = true
        r.network = ["address": "172.18.0.2/16"]; r.cgroups = ["memory": "/sys/fs/cgroup/memory/c1", "": "/u"]
        var res = Resources(); res.pids = Pids(limit: 10); r.resources = res
        r.postHooks = true
        XCTAssertEqual(try r.json(), try JSONEncoding.encode(r))
        XCTAssertEqual(try Record(json: r.json(), file: "s"), r)
        let bad = try JSONValue.parse(#"{"id":"c1","pid":"x"}"#, file: "state.json")
        XCTAssertEqual("\(try { () throws -> String in do { _ = try Record(json: bad, file: "state.json"); return "" } catch { return "\(error)" } }())",
                       "state.json: pid: expected integer, found string")
    }

    func testTimestampIsRFC3339WithNanoseconds() {
        let t = Array(Log.timestamp().utf8)
        XCTAssertEqual(t.count, 30, Log.timestamp())
        for (i, c) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (29, "Z")] {
            XCTAssertEqual(t[i], UInt8(ascii: Unicode.Scalar(c)!), Log.timestamp())
        }
        XCTAssertGreaterThanOrEqual(Int(String(decoding: t[0..<4], as: UTF8.self)) ?? 0, 2024)
    }

    func testStatusFollowsTheKernel() throws {
        let store = Store(root: root)
        try store.reserve("c1")
        XCTAssertThrowsError(try store.reserve("c1")) { XCTAssertTrue("\($0)".contains("already exists")) }
        let me = getpid()
        let start = try XCTUnwrap(Proc.stat(me)).startTime
        var r = record("c1", pid: me, start: start)
        try store.save(r)
        XCTAssertEqual(try store.load("c1"), r)
        XCTAssertEqual(store.status(r), .running)
        XCTAssertEqual(mkfifo(store.fifoPath("c1"), 0o622), 0)
        XCTAssertEqual(store.status(r), .created)
        unlink(store.fifoPath("c1"))
        r.creating = true
        XCTAssertEqual(store.status(r), .creating)
        r.creating = nil
        // Same pid, another start time: a recycled pid is not our init.
        r.startTime = start + 1
        XCTAssertEqual(store.status(r), .stopped)
        r.pid = 0
        XCTAssertEqual(store.status(r), .stopped)
        XCTAssertEqual(store.ids(), ["c1"])
    }

    func testFrozenIsPaused() throws {
        let store = Store(root: root)
        try store.reserve("c2")
        let cg = root + "/freezer"
        try FS.makeDirectories(cg)
        try FS.writeAtomically(cg + "/freezer.state", "FROZEN\n")
        var r = record("c2", pid: getpid(), start: try XCTUnwrap(Proc.stat(getpid())).startTime)
        r.cgroups = ["freezer": cg]
        XCTAssertEqual(store.status(r), .paused)
        try FS.writeAtomically(cg + "/freezer.state", "THAWED\n")
        XCTAssertEqual(store.status(r), .running)
    }

    func testOCIStateHasRuncsFieldsAndZeroPidWhenStopped() throws {
        let store = Store(root: root)
        let r = record("c3", pid: 0, start: 0)
        let s = store.stateJSON(r)
        XCTAssertEqual(s["status"], .string("stopped"))
        XCTAssertEqual(s["pid"], .int(0))
        XCTAssertEqual(s["annotations"]?["a"], .string("1"))
        for k in ["ociVersion", "id", "bundle", "rootfs", "created", "owner"] { XCTAssertNotNil(s[k], k) }
        let hook = store.state(r, status: .creating).hookJSON()
        XCTAssertTrue(hook.hasPrefix("{\"ociVersion\":\"\(Spec.version)\",\"id\":\"c3\",\"status\":\"creating\""), hook)
    }

    func testProcStatParsesNamesWithSpacesAndParens() throws {
        // Our own stat works; the parser survives a command name with ") (".
        XCTAssertNotNil(Proc.stat(getpid()))
        XCTAssertNil(Proc.stat(-1))
        XCTAssertEqual(Proc.exitCode(fromWaitStatus: 3 << 8), 3)
        XCTAssertEqual(Proc.exitCode(fromWaitStatus: 9), 137)
    }
}

/// The argv parser and the flag table, without spawning anything.
final class ArgsTests: XCTestCase {
    let flags = [Flag(["b", "bundle"], value: "DIR", "b"), Flag(["t", "tty"], "t"), Flag(["i", "interactive"], "i"),
                 Flag(["e", "env"], value: "K=V", "e", repeats: true)]

    func testSpellings() throws {
        for argv in [["--bundle", "x"], ["--bundle=x"], ["-bundle", "x"], ["-b", "x"], ["-bx"], ["-b=x"]] {
            let p = try parseArgs(argv, flags: flags, stopAtPositional: false, context: "t")
            XCTAssertEqual(p.string("bundle"), "x", "\(argv)")
        }
    }

    func testClustersRepeatsAndTheEnd() throws {
        let p = try parseArgs(["-it", "-e", "A=1", "--env=B=2", "-eC=3", "cmd", "-x", "--y"], flags: flags,
                              stopAtPositional: true, context: "t")
        XCTAssertTrue(p.bool("tty") && p.bool("interactive"))
        XCTAssertEqual(p.strings("env"), ["A=1", "B=2", "C=3"])
        XCTAssertEqual(p.positionals, ["cmd", "-x", "--y"])
        let q = try parseArgs(["--", "-t"], flags: flags, stopAtPositional: false, context: "t")
        XCTAssertEqual(q.positionals, ["-t"])
        XCTAssertFalse(q.bool("tty"))
        XCTAssertFalse(try parseArgs(["--tty=false"], flags: flags, stopAtPositional: false, context: "t").bool("tty"))
    }

    func testErrors() {
        XCTAssertThrowsError(try parseArgs(["--nope"], flags: flags, stopAtPositional: false, context: "t")) {
            XCTAssertEqual("\($0)", "unknown flag --nope (see 'minicontainer t --help')")
        }
        XCTAssertThrowsError(try parseArgs(["--bundle"], flags: flags, stopAtPositional: false, context: "t")) {
            XCTAssertTrue("\($0)".contains("needs a value"))
        }
        XCTAssertThrowsError(try parseArgs(["-tz"], flags: flags, stopAtPositional: false, context: "t"))
        XCTAssertThrowsError(try parseArgs(["--tty=maybe"], flags: flags, stopAtPositional: false, context: "t"))
    }

    func testClosest() {
        XCTAssertEqual(closest("strat", in: ["start", "state", "spec"]), "start")
        XCTAssertNil(closest("zzzzzz", in: ["start", "state"]))
    }

    func testSizesAndCPUs() {
        XCTAssertEqual(parseSize("256m"), 256 << 20)
        XCTAssertEqual(parseSize("256MB"), 256 << 20)
        XCTAssertEqual(parseSize("1g"), 1 << 30)
        XCTAssertEqual(parseSize("1.5k"), 1536)
        XCTAssertEqual(parseSize("512KiB"), 512 << 10)
        XCTAssertEqual(parseSize("100"), 100)
        XCTAssertEqual(parseSize("100b"), 100)
        for bad in ["", "m", "12x", "-1m", "1.2.3m", "1e3", "99999999999t"] { XCTAssertNil(parseSize(bad), bad) }
        XCTAssertEqual(parseCPUs("0.5"), 50_000)
        XCTAssertEqual(parseCPUs("2"), 200_000)
        for bad in ["0", "-1", "abc", "0.001", "nan", "inf"] { XCTAssertNil(parseCPUs(bad), bad) }
    }

    func testPorts() throws {
        XCTAssertEqual(try parsePort("8080:80"), "8080:80/tcp")
        XCTAssertEqual(try parsePort("127.0.0.1:53:53/udp"), "127.0.0.1:53:53/udp")
        XCTAssertEqual(try parsePort("80"), "0:80/tcp")  // a random host port
        XCTAssertEqual(try parsePort("0:80"), "0:80/tcp")
        for bad in ["1:2:3:4", "a:80", "1.2.3:80:80", "80:80/sctp", "+1:80", "80:0", ":80", "8000-8001:80-81"] {
            XCTAssertThrowsError(try parsePort(bad), bad)
        }
    }
}
