import Glibc
import XCTest
@testable import CLI
@testable import Engine
@testable import Runtime
import Sys

/// The pure parts of Docker-style containers: ids, durations, error codes,
/// resolv.conf, mountinfo escapes, and how `run` splits flags from the command.
final class EngineTests: XCTestCase {
    func testIDsAre64HexDigits() {
        let a = newID(), b = newID()
        XCTAssertEqual(a.count, 64)
        XCTAssertTrue(a.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertNotEqual(a, b)
    }

    func testHumanDuration() {
        XCTAssertEqual(humanDuration(0), "Less than a second")
        XCTAssertEqual(humanDuration(1), "1 second")
        XCTAssertEqual(humanDuration(5), "5 seconds")
        XCTAssertEqual(humanDuration(90), "About a minute")
        XCTAssertEqual(humanDuration(600), "10 minutes")
        XCTAssertEqual(humanDuration(3 * 3600), "3 hours")
        XCTAssertEqual(humanDuration(3 * 86400), "3 days")
    }

    func testCreateErrorsMapToDockerCodes() {
        // From the init's stage and errno (InitMessage.error), not its text;
        // the CLI alone turns the kind into a code.
        func code(_ stage: String, _ e: Int32, _ text: String) -> Int32 {
            CLI.exitCode(InitFailure(stage: stage, errno: e, text: text).failure, programCodes: true)
        }
        XCTAssertEqual(code("exec", ENOENT, "exec: \"nosuch\": executable file not found in $PATH"), 127)
        XCTAssertEqual(code("exec", ENOENT, "exec: \"/bin/nosuch\""), 127)
        XCTAssertEqual(code("exec", EACCES, "exec: \"/etc/passwd\""), 126)
        XCTAssertEqual(code("prepare rootfs", ENOENT, "prepare rootfs: mount /x"), 125)
        XCTAssertEqual(CLI.exitCode(SysError("exec: x", errno: ENOENT), programCodes: true), 125)
        // OCI create, run --bundle and exec keep runc's 125.
        XCTAssertEqual(CLI.exitCode(InitFailure(stage: "exec", errno: ENOENT, text: "exec: x").failure, programCodes: false), 125)
    }

    func testResolvConfDropsLoopbackNameservers() {
        XCTAssertEqual(containerResolvConf(host: "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\noptions edns0\n"),
                       "search lan\nnameserver 10.0.0.1\noptions edns0\n")
        XCTAssertEqual(containerResolvConf(host: "nameserver 127.0.0.53\nnameserver ::1\n"),
                       "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    }

    func testMountinfoEscapes() {
        XCTAssertEqual(unescapeMount("/a\\040b"), "/a b")
        XCTAssertEqual(unescapeMount("/plain"), "/plain")
    }

    func testRunFlagsEndAtTheCommand() throws {
        let p = try parseArgs(["-it", "--rm", "--rootfs", "/r", "--name", "n", "sh", "-c", "echo -e x", "--rm"],
                              flags: runCommand.flags, stopAtPositional: runCommand.stopAtPositional, context: "run")
        XCTAssertEqual(p.string("rootfs"), "/r")
        XCTAssertTrue(p.bool("tty") && p.bool("interactive") && p.bool("rm"))
        XCTAssertEqual(p.positionals, ["sh", "-c", "echo -e x", "--rm"])
        let q = try parseArgs(["-d", "--rootfs", "/r", "--", "-weird"], flags: runCommand.flags, stopAtPositional: true, context: "run")
        XCTAssertEqual(q.positionals, ["-weird"])
        XCTAssertTrue(q.bool("detach"))
        let runc = try parseArgs(["--bundle", "/b", "--detach", "c1"], flags: runCommand.flags, stopAtPositional: true, context: "run")
        XCTAssertEqual(runc.positionals, ["c1"])
        XCTAssertFalse(runc.has("rootfs"))
    }
}
