import Glibc
import JSON
import XCTest
import Privileges
@testable import Runtime
import Spec
import Sys

/// The seams of issue 12: the parent/init messages, the status and
/// namespace enums, the OCI state value.
final class InitMessageTests: XCTestCase {
    func testEveryMessageRoundTrips() {
        let all: [InitMessage] = [
            .placed(true), .placed(false), .placed(true, ownSeccomp: true), .placed(false, ownSeccomp: true), .go(state: #"{"id":"c1","status":"created"}"#), .go(state: ""),
            .pty(name: "/dev/pts/3"), .ready,
            .seccomp(flags: 0, program: [6, 0, 0, 0, 0, 0, 0xFF, 0x7F]),
            .seccomp(flags: 0x0102_0304, program: Array(repeating: 1, count: 8 * 4096)),
            .error(InitFailure(stage: "exec", errno: ENOENT, text: "exec: \"nope\": executable file not found in $PATH")),
            .error(InitFailure(stage: "prepare rootfs", errno: 0, text: "prepare rootfs: mount: a\u{0}b")),
        ]
        for m in all {
            XCTAssertEqual(InitMessage(m.bytes), m, "\(m)")
        }
        XCTAssertNil(InitMessage([]))
        XCTAssertNil(InitMessage(Array("ready".utf8)))  // the old text protocol is not understood
        XCTAssertNil(InitMessage([0x45] + Array("exec\u{0}notanumber\u{0}x".utf8)))
        XCTAssertNil(InitMessage([0x52, 0x52]))
        XCTAssertNil(InitMessage([0x50, 0x50]), "placed with something else than S")
        XCTAssertNil(InitMessage([0x50, 0x53, 0x53]))
        XCTAssertNil(InitMessage([0x53, 0, 0, 0, 0]), "a filter without instructions")
        XCTAssertNil(InitMessage([0x53, 0, 0, 0, 0, 1, 2, 3]), "not whole instructions")
    }

    func testMessagesCrossAChannelWithTheirFd() throws {
        let (a, b) = try Channel.pair()
        defer { a.close(); b.close() }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        try a.send(.pty(name: "/dev/pts/9"), fd: fds[0])
        close(fds[0])
        let (m, fd) = try XCTUnwrap(try b.receiveMessage())
        XCTAssertEqual(m, .pty(name: "/dev/pts/9"))
        XCTAssertGreaterThanOrEqual(fd, 0)
        // The passed fd is the pipe's read end.
        XCTAssertEqual(write(fds[1], "x", 1), 1)
        var c: UInt8 = 0
        XCTAssertEqual(read(fd, &c, 1), 1)
        close(fd); close(fds[1])
        try a.send(.error(InitFailure(stage: "exec", errno: EACCES, text: "exec: \"/etc/passwd\"")))
        a.close()
        XCTAssertThrowsError(try awaitStarted(b, untilReady: true, terminal: nil)) { e in
            XCTAssertEqual((e as? Failure)?.errno, EACCES)
            XCTAssertEqual((e as? Failure)?.kind, .program)
            XCTAssertEqual("\(e)", "exec: \"/etc/passwd\": permission denied")
        }
    }

    func testExitCodesComeFromErrnoNotText() {
        func kind(_ stage: String, _ e: Int32) -> Failure.Kind { InitFailure(stage: stage, errno: e, text: "anything").failure.kind }
        XCTAssertEqual(kind("exec", ENOENT), .program)
        XCTAssertEqual(kind("exec", EACCES), .program)
        XCTAssertEqual(kind("exec", ENOEXEC), .program)
        XCTAssertEqual(Failure.programExitCode(ENOENT), 127)
        XCTAssertEqual(Failure.programExitCode(EACCES), 126)
        // A missing file elsewhere is not a missing program.
        XCTAssertEqual(kind("prepare rootfs", ENOENT), .failed)
        XCTAssertEqual(kind("exec", 0), .failed)
        let f = InitFailure(stage: "cwd", SysError("chdir to /nope", errno: ENOENT))
        XCTAssertEqual(f.errno, ENOENT)
        XCTAssertEqual(f.text, "cwd: chdir to /nope")
        XCTAssertEqual("\(f.failure)", "cwd: chdir to /nope: no such file or directory")
    }
}

final class StatusAndKindsTests: XCTestCase {
    func testStatusPredicatesFollowTheLifecycle() {
        let all: [ContainerStatus] = [.creating, .created, .running, .paused, .stopped]
        XCTAssertEqual(all.filter { $0.canStart }, [.created])
        XCTAssertEqual(all.filter { $0.canKill }, [.creating, .created, .running, .paused])
        XCTAssertEqual(all.filter { $0.canDelete }, [.creating, .created, .stopped])
        XCTAssertEqual(all.filter { $0.canPause }, [.created, .running])
        XCTAssertEqual(all.filter { $0.canResume }, [.paused])
        XCTAssertEqual(all.filter { $0.canExec }, [.created, .running])
        XCTAssertEqual(Set(all.map { $0.rawValue }), Set(State.statuses))
    }

    func testNamespaceKindsCoverTheSpecAndJoinUserFirstMountLast() throws {
        XCTAssertEqual(Set(NamespaceKind.allCases.map { $0.rawValue }), Set(Namespace.knownTypes))
        XCTAssertEqual(NamespaceKind.network.procName, "net")
        XCTAssertEqual(NamespaceKind.mount.procName, "mnt")
        XCTAssertEqual(NamespaceKind.network.cloneFlag, 0x4000_0000)
        let order = NamespaceKind.allCases.filter { $0 != .pid }.sorted { $0.joinRank < $1.joinRank }
        XCTAssertEqual(order.first, .user)
        XCTAssertEqual(order.last, .mount)
        XCTAssertThrowsError(try NamespaceKind.of(Namespace(type: "bogus", path: nil)))
    }

    func testOneStateValueForStateAndHooks() {
        let s = State(id: "c1", status: .created, pid: 42, bundle: "/b", annotations: ["k": "v"])
        let printed = s.json(rootfs: "/b/rootfs", created: "t", owner: "")
        XCTAssertEqual(printed["status"], .string("created"))
        XCTAssertEqual(printed["rootfs"], .string("/b/rootfs"))
        XCTAssertEqual(s.hookJSON(), #"{"ociVersion":"\#(Spec.version)","id":"c1","status":"created","pid":42,"bundle":"/b","annotations":{"k":"v"}}"#)
        // The same value through the Codable model (the schema's shape).
        XCTAssertEqual(try JSONEncoding.encode(s).compact(), s.hookJSON())
    }
}

private func link(_ path: String) -> String {
    var buf = [CChar](repeating: 0, count: 256)
    let n = readlink(path, &buf, 255)
    return n < 0 ? "" : String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A network driver that records what Runtime asks of it.
final class FakeNetwork: NetworkDriver {
    var setUps: [(id: String, pid: Int32, annotations: [String: String]?)] = []
    var tearDowns: [String] = []
    var failSetUp = false
    func sharedContainer(_ annotations: [String: String]?) -> String? { annotations?["fake.join"] }
    func configures(_ annotations: [String: String]?) -> Bool { annotations?["fake.mode"] != nil }
    func setUp(annotations: [String: String]?, id: String, pid: Int32) throws -> [String: String]? {
        setUps.append((id, pid, annotations))
        // What a driver sees: the init, already in its own network namespace.
        XCTAssertNotEqual(link("/proc/\(pid)/ns/net"), link("/proc/self/ns/net"))
        if failSetUp { throw SysError("fake network", errno: EADDRINUSE) }
        return ["address": "10.9.0.2/24", "gateway": "10.9.0.1"]
    }
    func tearDown(id: String) throws { tearDowns.append(id) }
}

/// Runtime with the network driver faked: create hands it the new network
/// namespace, delete and a failed create hand the id back. As root, with
/// the busybox rootfs (`make rootfs`).
final class NetworkDriverSeamTests: XCTestCase {
    let rootfs = "/var/lib/minicontainer/rootfs/busybox"
    var dir = ""

    override func setUpWithError() throws {
        try XCTSkipUnless(getuid() == 0 && FS.exists(rootfs + "/bin/busybox"), "needs root and \(rootfs)")
        var t = Array("/tmp/mc-seam-XXXXXX".utf8CString)
        dir = String(cString: mkdtemp(&t)!)
        var spec = Spec.defaultSpec()
        spec.root = Root(path: rootfs, readonly: true)
        spec.process?.args = ["/bin/true"]
        spec.process?.terminal = false
        spec.annotations = ["fake.mode": "yes"]
        try FS.makeDirectories(dir + "/bundle")
        try FS.writeAtomically(dir + "/bundle/config.json", try JSONEncoding.pretty(spec))
    }

    override func tearDownWithError() throws {
        if !dir.isEmpty { try? FS.removeTree(dir) }
    }

    func testCreateAndDeleteGoThroughTheDriver() throws {
        let fake = FakeNetwork()
        let rt = Runtime(root: dir + "/state", network: fake)
        let c = try rt.create(CreateOptions(id: "seam1", bundle: dir + "/bundle"))
        XCTAssertEqual(fake.setUps.map { $0.id }, ["seam1"])
        XCTAssertEqual(fake.setUps.first?.pid, c.record.pid)
        XCTAssertEqual(fake.setUps.first?.annotations?["fake.mode"], "yes")
        XCTAssertEqual(try rt.store.load("seam1").network?["address"], "10.9.0.2/24")
        XCTAssertEqual(try rt.state("seam1")["annotations"]?["org.minicontainer.ip"], .string("10.9.0.2"))
        XCTAssertEqual(fake.tearDowns, [])
        try rt.delete("seam1", force: true)
        XCTAssertEqual(fake.tearDowns, ["seam1"])
        XCTAssertFalse(rt.store.exists("seam1"))
        // The init was our child: delete reaped it, no zombie is left.
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1)
        XCTAssertEqual(errno, ECHILD)
    }

    func testAFailedSetUpIsUndoneAndLeavesNothing() throws {
        let fake = FakeNetwork()
        fake.failSetUp = true
        let rt = Runtime(root: dir + "/state", network: fake)
        XCTAssertThrowsError(try rt.create(CreateOptions(id: "seam2", bundle: dir + "/bundle"))) {
            XCTAssertTrue("\($0)".contains("fake network"), "\($0)")
        }
        XCTAssertEqual(fake.tearDowns, ["seam2"])
        XCTAssertFalse(rt.store.exists("seam2"))
        XCTAssertFalse(FS.exists("/sys/fs/cgroup/pids/seam2"))
    }

    func testTheDriverNamesTheContainerToJoin() throws {
        let fake = FakeNetwork()
        let rt = Runtime(root: dir + "/state", network: fake)
        var spec = try Bundle.load(dir + "/bundle").spec
        spec.annotations = ["fake.join": "../etc"]
        try FS.writeAtomically(dir + "/bundle/config.json", try JSONEncoding.pretty(spec))
        XCTAssertThrowsError(try rt.create(CreateOptions(id: "seam3", bundle: dir + "/bundle"))) {
            XCTAssertTrue("\($0)".contains("not a container id"), "\($0)")
        }
        XCTAssertEqual(fake.setUps.count, 0)
        XCTAssertFalse(rt.store.exists("seam3"))
    }
}

/// Locations: built once from --root and the environment.
final class LocationsTests: XCTestCase {
    func testDefaultsFlagsAndEnvironment() {
        let none = Locations.from(root: nil, env: { _ in nil })
        XCTAssertEqual(none, Locations(root: "/run/minicontainer", data: "/var/lib/minicontainer",
                                       network: "/var/lib/minicontainer/network", cgroupParent: "/minicontainer"))
        let env = ["MINICONTAINER_DATA": "/d", "MINICONTAINER_NETWORK_DIR": "/n"]
        let l = Locations.from(root: "/r", env: { env[$0] })
        XCTAssertEqual([l.root, l.data, l.network, l.cgroupParent], ["/r", "/d", "/n", "/minicontainer"])
        // Empty values are unset; relative ones are made absolute.
        XCTAssertEqual(Locations.from(root: "", env: { _ in "" }), none)
        XCTAssertTrue(Locations.from(root: "rel", env: { _ in nil }).root.hasSuffix("/rel"))
        XCTAssertTrue(Locations.from(root: "rel", env: { _ in nil }).root.hasPrefix("/"))
    }
}

/// Bundle.load: the one reader of a bundle, its errors one line each.
final class BundleTests: XCTestCase {
    func testLoadKeepsTheBytesAndNamesWhatIsWrong() throws {
        var t = Array("/tmp/mc-bundle-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&t)!)
        defer { try? FS.removeTree(dir) }
        XCTAssertThrowsError(try Bundle.load(dir)) {
            XCTAssertEqual("\($0)", "cannot read \(dir)/config.json: no such file or directory")
            XCTAssertEqual(($0 as? Failure)?.kind, .invalid)
        }
        try FS.writeAtomically(dir + "/config.json", #"{"ociVersion": "1.1.0", "root": {"path": 5}}"#)
        XCTAssertThrowsError(try Bundle.load(dir)) { XCTAssertEqual("\($0)", "config.json: root.path: expected string, found integer") }
        var spec = Spec.defaultSpec()
        spec.root = Root(path: "/", readonly: true)
        let text = try JSONEncoding.pretty(spec)
        try FS.writeAtomically(dir + "/config.json", text)
        let b = try Bundle.load(dir)
        XCTAssertEqual(b.config, Array(text.utf8))
        XCTAssertEqual(b.spec.root?.path, "/")
    }
}

final class SeccompHandOverTests: XCTestCase {
    /// The child refuses to go on without the filter its spec asks for.
    func testReceiveGoWantsTheFilterWhenTheSpecHasOne() throws {
        let (a, b) = try Channel.pair()
        defer { a.close(); b.close() }
        try a.send(.go(state: "s"))
        XCTAssertThrowsError(try b.receiveGo(wantSeccomp: true))
        try a.send(.seccomp(flags: 2, program: [6, 0, 0, 0, 0, 0, 0xFF, 0x7F]))
        try a.send(.go(state: "s2"))
        let got = try b.receiveGo(wantSeccomp: true)
        XCTAssertEqual(got?.state, "s2")
        XCTAssertEqual(got?.seccomp, Privileges.SeccompProgram(instructions: [6, 0, 0, 0, 0, 0, 0xFF, 0x7F], flags: 2))
        try a.send(.go(state: ""))
        XCTAssertNil(try b.receiveGo(wantSeccomp: false)?.seccomp)
    }
}
