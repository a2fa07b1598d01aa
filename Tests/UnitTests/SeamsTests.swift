import Glibc
import JSON
import XCTest
@testable import Runtime
import Spec
import Sys

/// The seams of issue 12: the parent/init messages, the status and
/// namespace enums, the OCI state value.
final class InitMessageTests: XCTestCase {
    func testEveryMessageRoundTrips() {
        let all: [InitMessage] = [
            .placed(true), .placed(false), .go(state: #"{"id":"c1","status":"created"}"#), .go(state: ""),
            .pty(name: "/dev/pts/3"), .ready,
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
        try a.send(.error(InitFailure(stage: "exec", errno: EACCES, text: "exec: \"/etc/passwd\": permission denied")))
        a.close()
        XCTAssertThrowsError(try awaitStarted(b, untilReady: true, terminal: nil)) { e in
            XCTAssertEqual((e as? InitFailure)?.errno, EACCES)
            XCTAssertEqual((e as? InitFailure)?.programExitCode, 126)
        }
    }

    func testExitCodesComeFromErrnoNotText() {
        XCTAssertEqual(InitFailure(stage: "exec", errno: ENOENT, text: "anything").programExitCode, 127)
        XCTAssertEqual(InitFailure(stage: "exec", errno: EACCES, text: "anything").programExitCode, 126)
        XCTAssertEqual(InitFailure(stage: "exec", errno: ENOEXEC, text: "anything").programExitCode, 126)
        // A missing file elsewhere is not a missing program.
        XCTAssertNil(InitFailure(stage: "prepare rootfs", errno: ENOENT, text: "exec: no such file or directory").programExitCode)
        XCTAssertNil(InitFailure(stage: "exec", errno: 0, text: "exec: x: no such file or directory").programExitCode)
        let f = InitFailure(stage: "cwd", SysError("chdir to /nope", errno: ENOENT))
        XCTAssertEqual(f.errno, ENOENT)
        XCTAssertEqual(f.text, "cwd: chdir to /nope: no such file or directory")
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
