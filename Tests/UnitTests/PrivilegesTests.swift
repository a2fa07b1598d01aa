import XCTest
import Glibc
@testable import Spec  // SyscallArg has no public init
import Sys
@testable import Privileges

// The pure parts of Privileges: name -> number mappings, the seccomp plan,
// lookPath over a temporary PATH, rlimit values. What changes the process
// (user, capabilities, seccomp_load, closeFds) is checked as root by a
// forked harness, not here.

final class CapabilityPrivilegesTests: XCTestCase {
    func testKnownNumbers() {
        XCTAssertEqual(Privileges.capabilityNames.count, 41)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_CHOWN"), 0)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_KILL"), 5)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_NET_BIND_SERVICE"), 10)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_SYS_ADMIN"), 21)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_SYS_RESOURCE"), 24)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_AUDIT_READ"), 37)
        XCTAssertEqual(Privileges.capabilityNumber("CAP_CHECKPOINT_RESTORE"), 40)
        XCTAssertEqual(Privileges.capabilityName(5), "CAP_KILL")
        XCTAssertEqual(Privileges.capabilityName(99), "capability 99")
    }

    func testTableAgreesWithLibcap() {
        for (i, name) in Privileges.capabilityNames.enumerated() {
            // libcap 2.66 knows all 41; an older one may not know the newest.
            if let n = Privileges.libcapNumber(name) { XCTAssertEqual(Int(n), i, name) }
        }
        XCTAssertEqual(Privileges.libcapNumber("CAP_KILL"), 5)
    }

    func testOnlySpecSpellingsAreNames() {
        XCTAssertNil(Privileges.capabilityNumber("cap_kill"))
        XCTAssertNil(Privileges.capabilityNumber("KILL"))
        XCTAssertNil(Privileges.capabilityNumber("5"))
        XCTAssertNil(Privileges.capabilityNumber("CAP_UNKNOWN"))
        XCTAssertNil(Privileges.capabilityNumber(""))
    }

    func testPlan() {
        let caps = Capabilities(bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_FOO"],
                                effective: ["CAP_KILL"], inheritable: nil,
                                permitted: ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHECKPOINT_RESTORE"],
                                ambient: ["UNKNOWN_CAP", "CAP_KILL"])
        let p = Privileges.CapabilityPlan(caps, lastCap: 39)
        XCTAssertEqual(p.bounding, [5, 10])
        XCTAssertEqual(p.effective, [5])
        XCTAssertEqual(p.permitted, [5, 10])
        XCTAssertEqual(p.inheritable, [])
        XCTAssertEqual(p.ambient, [5])
        // Unknown names and CAP_CHECKPOINT_RESTORE (40 > lastCap 39), sorted, once each.
        XCTAssertEqual(p.unknown, ["CAP_CHECKPOINT_RESTORE", "CAP_FOO", "UNKNOWN_CAP"])
    }

    func testNilDropsEverything() {
        let p = Privileges.CapabilityPlan(nil, lastCap: 40)
        XCTAssertEqual(p, Privileges.CapabilityPlan(Capabilities(), lastCap: 40))
        XCTAssertEqual(p.bounding + p.effective + p.permitted + p.inheritable + p.ambient, [])
        XCTAssertEqual(p.unknown, [])
    }

    func testLastCapabilityIsSane() {
        let last = Privileges.lastCapability()
        XCTAssertGreaterThanOrEqual(last, 36)
        XCTAssertLessThan(last, 64)
    }

    /// The kernel's answer through prctl is what /proc says on the host.
    func testTheProbeAgreesWithProc() throws {
        let text = try FS.readString("/proc/sys/kernel/cap_last_cap").filter { !$0.isWhitespace }
        XCTAssertEqual(Privileges.probeLastCapability(), Int32(text))
    }

    func testSetText() {
        XCTAssertEqual(Privileges.setText([]), "[]")
        XCTAssertEqual(Privileges.setText([5, 10]), "[CAP_KILL CAP_NET_BIND_SERVICE]")
    }
}

final class SeccompPrivilegesTests: XCTestCase {
    func action(_ name: String, _ errnoRet: UInt32? = nil) -> UInt32? {
        try? Privileges.seccompAction(name, errnoRet: errnoRet)
    }

    /// Values as <seccomp.h> defines them.
    func testActions() {
        XCTAssertEqual(action("SCMP_ACT_KILL"), 0x0000_0000)
        XCTAssertEqual(action("SCMP_ACT_KILL_THREAD"), 0x0000_0000)
        XCTAssertEqual(action("SCMP_ACT_KILL_PROCESS"), 0x8000_0000)
        XCTAssertEqual(action("SCMP_ACT_TRAP"), 0x0003_0000)
        XCTAssertEqual(action("SCMP_ACT_ERRNO"), 0x0005_0000 | UInt32(EPERM))
        XCTAssertEqual(action("SCMP_ACT_ERRNO", 38), 0x0005_0026)
        XCTAssertEqual(action("SCMP_ACT_ERRNO", 0x1_0001), 0x0005_0001, "errno is 16 bits, as the macro masks it")
        XCTAssertEqual(action("SCMP_ACT_TRACE"), 0x7ff0_0000 | UInt32(EPERM))
        XCTAssertEqual(action("SCMP_ACT_TRACE", 7), 0x7ff0_0007)
        XCTAssertEqual(action("SCMP_ACT_LOG"), 0x7ffc_0000)
        XCTAssertEqual(action("SCMP_ACT_ALLOW"), 0x7fff_0000)
    }

    func testEveryValidatedActionButNotifyMaps() {
        for a in Seccomp.actions where a != "SCMP_ACT_NOTIFY" { XCTAssertNotNil(action(a), a) }
    }

    func testNotifyIsRejectedClearly() {
        XCTAssertThrowsError(try Privileges.seccompAction("SCMP_ACT_NOTIFY", errnoRet: nil)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("SCMP_ACT_NOTIFY") && s.contains("not supported"), s)
        }
        XCTAssertThrowsError(try Privileges.seccompAction("SCMP_ACT_BOGUS", errnoRet: nil)) { e in
            XCTAssertEqual("\(e)", "seccomp: unknown action \"SCMP_ACT_BOGUS\": invalid argument")
        }
    }

    func testOperators() {
        let expect: [String: UInt32] = ["SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
                                        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7]
        for (name, v) in expect { XCTAssertEqual(Privileges.seccompOperator(name), v, name) }
        for op in Seccomp.operators { XCTAssertNotNil(Privileges.seccompOperator(op), op) }
        XCTAssertNil(Privileges.seccompOperator("SCMP_CMP_XX"))
    }

    func testArchitectures() {
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_X86_64"), "x86_64")
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_X86"), "x86")
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_X32"), "x32")
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_AARCH64"), "aarch64")
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_MIPSEL64N32"), "mipsel64n32")
        XCTAssertEqual(Privileges.seccompArchitecture("SCMP_ARCH_PPC64LE"), "ppc64le")
        XCTAssertNil(Privileges.seccompArchitecture("SCMP_ARCH_VAX"))
        XCTAssertNil(Privileges.seccompArchitecture("x86_64"))
        // AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64.
        XCTAssertEqual(Privileges.seccompArchitectureToken("x86_64"), 0xC000_003E)
        XCTAssertEqual(Privileges.seccompArchitectureToken("x86"), 0x4000_0003)
        XCTAssertEqual(Privileges.seccompArchitectureToken("aarch64"), 0xC000_00B7)
        XCTAssertEqual(Privileges.seccompArchitectureToken("vax"), 0)
        // Every spec architecture libseccomp 2.5 has resolves.
        for a in Privileges.seccompArchitectures where !["LOONGARCH64", "M68K", "SH", "SHEB"].contains(a) {
            XCTAssertNotEqual(Privileges.seccompArchitectureToken(a.lowercased()), 0, a)
        }
    }

    func testFlags() throws {
        var s = Seccomp(defaultAction: "SCMP_ACT_ALLOW")
        s.flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
        XCTAssertEqual(try Privileges.SeccompPlan(s).flags, [.log, .specAllow, .tsync])
        XCTAssertNotNil(Privileges.seccompAttribute(.log))
        XCTAssertNil(Privileges.seccompAttribute(.waitKillableRecv))
        s.flags = ["SECCOMP_FILTER_FLAG_NOPE"]
        XCTAssertThrowsError(try Privileges.SeccompPlan(s)) { e in
            XCTAssertTrue("\(e)".contains("unknown filter flag \"SECCOMP_FILTER_FLAG_NOPE\""), "\(e)")
        }
    }

    func arg(_ index: UInt, _ op: String, _ value: UInt64, _ two: UInt64? = nil) -> SyscallArg {
        SyscallArg(index: index, value: value, valueTwo: two, op: op)
    }

    func testPlan() throws {
        var s = Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        s.defaultErrnoRet = 38
        s.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
        var allow = Syscall(names: ["read", "write"], action: "SCMP_ACT_ALLOW")
        allow.args = nil
        var mkdir = Syscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO")
        mkdir.errnoRet = 1
        // The same action as the default: dropped, as runc does.
        var same = Syscall(names: ["chmod"], action: "SCMP_ACT_ERRNO")
        same.errnoRet = 38
        var personality = Syscall(names: ["personality"], action: "SCMP_ACT_ALLOW")
        personality.args = [arg(0, "SCMP_CMP_EQ", 0), arg(1, "SCMP_CMP_MASKED_EQ", 0xff, 8)]
        var twoOnOne = Syscall(names: ["clone"], action: "SCMP_ACT_ALLOW")
        twoOnOne.args = [arg(0, "SCMP_CMP_NE", 1), arg(0, "SCMP_CMP_NE", 2)]
        s.syscalls = [allow, mkdir, same, personality, twoOnOne]

        let p = try Privileges.SeccompPlan(s)
        XCTAssertEqual(p.defaultAction, 0x0005_0026)
        XCTAssertEqual(p.architectures, ["x86_64", "x86"])
        typealias R = Privileges.SeccompRule
        typealias A = Privileges.SeccompArg
        XCTAssertEqual(p.rules, [
            R(syscall: "read", action: 0x7fff_0000, args: []),
            R(syscall: "write", action: 0x7fff_0000, args: []),
            R(syscall: "mkdir", action: 0x0005_0001, args: []),
            R(syscall: "personality", action: 0x7fff_0000,
              args: [A(index: 0, op: 4, datumA: 0, datumB: 0), A(index: 1, op: 7, datumA: 0xff, datumB: 8)]),
            R(syscall: "clone", action: 0x7fff_0000, args: [A(index: 0, op: 1, datumA: 1, datumB: 0)]),
            R(syscall: "clone", action: 0x7fff_0000, args: [A(index: 0, op: 1, datumA: 2, datumB: 0)]),
        ])
    }

    func testPlanErrors() {
        func problem(_ s: Seccomp) -> String {
            do { _ = try Privileges.SeccompPlan(s); return "" } catch { return "\(error)" }
        }
        var s = Seccomp(defaultAction: "SCMP_ACT_ALLOW")
        s.architectures = ["SCMP_ARCH_VAX"]
        XCTAssertEqual(problem(s), "seccomp: unknown architecture \"SCMP_ARCH_VAX\": invalid argument")
        s.architectures = nil
        var c = Syscall(names: ["read"], action: "SCMP_ACT_ERRNO")
        c.args = [arg(6, "SCMP_CMP_EQ", 0)]
        s.syscalls = [c]
        XCTAssertEqual(problem(s), "seccomp: syscalls[0]: argument index 6 is above 5: invalid argument")
        c.args = [arg(0, "SCMP_CMP_SIMILAR", 0)]
        s.syscalls = [c]
        XCTAssertEqual(problem(s), "seccomp: syscalls[0]: unknown operator \"SCMP_CMP_SIMILAR\": invalid argument")
        s.syscalls = [Syscall(names: ["read"], action: "SCMP_ACT_NOTIFY")]
        XCTAssertTrue(problem(s).contains("SCMP_ACT_NOTIFY"))
        XCTAssertThrowsError(try Privileges.SeccompPlan(Seccomp(defaultAction: "SCMP_ACT_NOTIFY")))
    }
}

final class LookPathPrivilegesTests: XCTestCase {
    var dir = ""

    override func setUp() {
        var template = Array("/tmp/privileges-test-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        for d in ["a", "b", "c"] { mkdir(dir + "/" + d, 0o755) }
        make("a/tool", mode: 0o644)          // not executable
        make("b/tool", mode: 0o755)
        make("b/onlyhere", mode: 0o700)
        make("c/plain", mode: 0o600)
        mkdir(dir + "/c/adir", 0o755)
    }

    override func tearDown() {
        for f in ["a/tool", "b/tool", "b/onlyhere", "c/plain"] { unlink(dir + "/" + f) }
        for d in ["c/adir", "a", "b", "c", ""] { rmdir(dir + "/" + d) }
    }

    func make(_ rel: String, mode: mode_t) {
        let fd = open(dir + "/" + rel, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = "#!/bin/sh\n".withCString { write(fd, $0, 10) }
        close(fd)
        chmod(dir + "/" + rel, mode)
    }

    func problem(_ name: String, _ env: [String]) -> String {
        do { return "found " + (try Privileges.lookPath(name, env: env)) } catch { return "\(error)" }
    }

    func testSearchesPathInOrderSkippingNonExecutables() throws {
        let env = ["HOME=/root", "PATH=\(dir)/a:\(dir)/b:\(dir)/c"]
        XCTAssertEqual(try Privileges.lookPath("tool", env: env), "\(dir)/b/tool")
        XCTAssertEqual(try Privileges.lookPath("onlyhere", env: env), "\(dir)/b/onlyhere")
    }

    func testLastPathWins() throws {
        XCTAssertEqual(try Privileges.lookPath("tool", env: ["PATH=/nonexistent", "PATH=\(dir)/b/"]), "\(dir)/b/tool")
    }

    func testDefaultPath() throws {
        XCTAssertEqual(Privileges.defaultPath, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        let sh = try Privileges.lookPath("sh", env: ["HOME=/"])
        XCTAssertTrue(sh.hasSuffix("/sh"), sh)
    }

    func testNotFound() {
        XCTAssertEqual(problem("nosuchtool", ["PATH=\(dir)/a:\(dir)/b"]),
                       "exec: \"nosuchtool\": executable file not found in $PATH: no such file or directory")
        XCTAssertTrue(problem("", []).contains("no such file or directory"))
    }

    func testFoundOnlyNonExecutableIsPermissionDenied() {
        // As execvp: EACCES when the only matches could not be run.
        XCTAssertEqual(problem("tool", ["PATH=\(dir)/a:\(dir)/c"]), "exec: \"tool\": permission denied")
        XCTAssertEqual(problem("adir", ["PATH=\(dir)/c"]), "exec: \"adir\": permission denied")
    }

    func testPathsAreNotSearched() throws {
        XCTAssertEqual(try Privileges.lookPath("\(dir)/b/tool", env: ["PATH=/nonexistent"]), "\(dir)/b/tool")
        XCTAssertEqual(problem("\(dir)/b/missing", []), "exec: \"\(dir)/b/missing\": no such file or directory")
        XCTAssertEqual(problem("\(dir)/c/plain", []), "exec: \"\(dir)/c/plain\": permission denied")
        XCTAssertEqual(problem("\(dir)/c/adir", []), "exec: \"\(dir)/c/adir\": permission denied")
        XCTAssertEqual(problem("\(dir)/c/plain/x", []), "exec: \"\(dir)/c/plain/x\": not a directory")
    }

    func testRelativePathWithSlash() throws {
        let old = FS.currentDirectory()
        XCTAssertEqual(chdir(dir), 0)
        defer { chdir(old) }
        XCTAssertEqual(try Privileges.lookPath("./b/tool", env: []), "./b/tool")
        XCTAssertEqual(try Privileges.lookPath("tool", env: ["PATH=a::b"]), "b/tool")
    }
}

final class RlimitPrivilegesTests: XCTestCase {
    func testResourceNumbers() {
        for t in Rlimit.knownTypes {
            XCTAssertNotNil(Privileges.rlimitResource(t), t)
            // On x86_64 and arm64 glibc's numbers are the spec's order.
            XCTAssertEqual(Privileges.rlimitResource(t), Rlimit(type: t, hard: 0, soft: 0).resource, t)
        }
        XCTAssertEqual(Privileges.rlimitResource("RLIMIT_NOFILE"), 7)
        XCTAssertEqual(Privileges.rlimitResource("RLIMIT_NPROC"), 6)
        XCTAssertNil(Privileges.rlimitResource("RLIMIT_FOO"))
        XCTAssertNil(Privileges.rlimitResource("nofile"))
    }

    func testValues() {
        XCTAssertEqual(Privileges.rlimitValue(UInt64.max), rlim_t.max, "RLIM_INFINITY")
        XCTAssertEqual(Privileges.rlimitValue(1024), 1024)
        XCTAssertEqual(Privileges.rlimitText(UInt64.max), "unlimited")
        XCTAssertEqual(Privileges.rlimitText(30000), "30000")
    }

    func testUnknownTypeIsAnError() {
        XCTAssertThrowsError(try Privileges.setRlimits([Rlimit(type: "RLIMIT_FOO", hard: 1, soft: 1)])) { e in
            XCTAssertEqual("\(e)", "setrlimit: unknown rlimit type \"RLIMIT_FOO\": invalid argument")
        }
    }

    /// Errors that leave this process's limits alone: above fs.nr_open is
    /// refused even with CAP_SYS_RESOURCE, and soft above hard is invalid.
    func testErrorsNameTheLimitAndValues() throws {
        let nrOpen = UInt64(try FS.readString("/proc/sys/fs/nr_open").filter { $0.isNumber })!
        let v = nrOpen + 1
        XCTAssertThrowsError(try Privileges.setRlimits([Rlimit(type: "RLIMIT_NOFILE", hard: v, soft: v)])) { e in
            XCTAssertEqual("\(e)", "setrlimit RLIMIT_NOFILE to \(v)/\(v): above fs.nr_open \(nrOpen): operation not permitted")
        }
        XCTAssertThrowsError(try Privileges.setRlimits([Rlimit(type: "RLIMIT_CORE", hard: 10, soft: 20)])) { e in
            XCTAssertEqual("\(e)", "setrlimit RLIMIT_CORE to 20/10: invalid argument")
        }
    }
}

final class FdPrivilegesTests: XCTestCase {
    func ranges(_ keep: Set<Int32>) -> [[UInt32]] {
        Privileges.fdRanges(keeping: keep).map { [$0.0, $0.1] }
    }

    func testRanges() {
        XCTAssertEqual(ranges([]), [[3, UInt32.max]])
        XCTAssertEqual(ranges([0, 1, 2]), [[3, UInt32.max]])
        XCTAssertEqual(ranges([3, 4, 5]), [[6, UInt32.max]])
        XCTAssertEqual(ranges([5, 9]), [[3, 4], [6, 8], [10, UInt32.max]])
        XCTAssertEqual(ranges([4]), [[3, 3], [5, UInt32.max]])
    }

    func testOpenFdsListsOurOwn() throws {
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let fds = try Privileges.openFds()
        XCTAssertTrue(fds.contains(fd))
        XCTAssertTrue(fds.contains(0) || fds.contains(1) || fds.contains(2))
    }
}
