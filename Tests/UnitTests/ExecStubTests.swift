import CShim
import Glibc
import Spec
import XCTest
@testable import Runtime

/// The exec stub (ExecStub.swift, scripts/exec-stub-x86_64.S) run for real
/// from its sealed memfd, and the rule for when `run` may use it instead
/// of re-executing (SealedExe.stubSuffices).
final class ExecStubTests: XCTestCase {
    /// Runs `argv` through the stub in a child with `envp`; its exit
    /// status and what it wrote to stdout and stderr.
    func throughStub(_ program: String, _ argv: [String], env: [String] = ["A=1"],
                     stubArgs: [String]? = nil) throws -> (Int32, String, String) {
        guard let stub = ExecStub.make() else { throw XCTSkip("no exec stub on this architecture") }
        defer { close(stub) }
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&out), 0)
        XCTAssertEqual(pipe(&err), 0)
        let args = (stubArgs ?? ExecStub.arguments(program: program, argv: argv)).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        let pid = fork()
        if pid == 0 {
            dup2(out[1], 1)
            dup2(err[1], 2)
            _ = mc_execveat_fd(stub, args, envp)
            _exit(99)
        }
        close(out[1]); close(err[1])
        func drain(_ fd: Int32) -> String {
            var bytes: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { break }
                bytes += buf[0..<n]
            }
            close(fd)
            return String(decoding: bytes, as: UTF8.self)
        }
        let o = drain(out[0]), e = drain(err[0])
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        return ((status >> 8) & 0xff, o, e)
    }

    func testRunsTheProgramWithItsArgvAndEnvironment() throws {
        let (code, out, err) = try throughStub("/bin/sh", ["my-sh", "-c", "echo \"$0|$1|$A|$B\"; tr '\\0' '|' < /proc/$$/cmdline; echo; readlink /proc/$$/exe", "zero", "x y"],
                                               env: ["A=1", "B=two words"])
        XCTAssertEqual(code, 0, err)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, out)
        XCTAssertEqual(lines.first, "zero|x y|1|two words")
        // argv[0] as given, and no argument of the stub's.
        XCTAssertEqual(lines.dropFirst().first, "my-sh|-c|" + "echo \"$0|$1|$A|$B\"; tr '\\0' '|' < /proc/$$/cmdline; echo; readlink /proc/$$/exe|zero|x y|")
        // The stub is gone: the process is the program's file.
        var sh = [CChar](repeating: 0, count: 4096)
        XCTAssertNotNil(realpath("/bin/sh", &sh))
        XCTAssertEqual(lines.last, String(cString: sh))
        XCTAssertEqual(err, "")
    }

    func testAFailedExecIsReportedAsTheInitWould() throws {
        var (code, _, err) = try throughStub("/no/such/program", ["p"])
        XCTAssertEqual(code, 127)
        XCTAssertEqual(err, "minicontainer: exec /no/such/program: No such file or directory\n")
        // EACCES: a file without x.
        let path = "/tmp/mc-stub-noexec-\(getpid())"
        let made = creat(path, 0o644)
        XCTAssertGreaterThanOrEqual(made, 0)
        close(made)  // a file still open for writing would be ETXTBSY
        defer { unlink(path) }
        (code, _, err) = try throughStub(path, ["p"])
        XCTAssertEqual(code, 126)
        XCTAssertEqual(err, "minicontainer: exec \(path): Permission denied\n")
        // ENOEXEC: executable, no format the kernel knows.
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = write(fd, "\u{1}\u{2}\u{3}\u{4}garbage", 11)
        close(fd)
        chmod(path, 0o755)
        (code, _, err) = try throughStub(path, ["p"])
        XCTAssertEqual(code, 126)
        XCTAssertEqual(err, "minicontainer: exec \(path): Exec format error\n")
    }

    func testCalledAsAScriptInterpreterItExitsAtOnce() throws {
        // What `#!/proc/self/exe` gives it: [interpreter, script].
        let (code, out, err) = try throughStub("", [], stubArgs: ["/proc/self/exe", "/bin/evil"])
        XCTAssertEqual(code, 127)
        XCTAssertEqual(out + err, "")
    }

    func testTheMemfdIsSealedAndExecutable() throws {
        guard let stub = ExecStub.make() else { throw XCTSkip("no exec stub on this architecture") }
        defer { close(stub) }
        XCTAssertTrue(SealedExe.isProtected(stub))
        XCTAssertEqual(write(stub, "x", 1), -1)
        XCTAssertEqual(errno, EPERM)
        XCTAssertEqual(ftruncate(stub, 0), -1)
        let w = open("/proc/self/fd/\(stub)", O_WRONLY | O_CLOEXEC)
        if w >= 0 {
            XCTAssertEqual(write(w, "x", 1), -1, "a sealed memfd reopened for writing takes no byte")
            close(w)
        }
        XCTAssertNotEqual(fcntl(stub, F_GETFD) & FD_CLOEXEC, 0)
    }

    /// The array in ExecStub.swift is scripts/exec-stub-x86_64.S assembled.
    func testTheBytesAreTheAssembledSource() throws {
        #if arch(x86_64)
        let here = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let script = "/" + here + "/scripts/exec-stub.sh"
        guard access("/usr/bin/as", X_OK) == 0, access("/usr/bin/objcopy", X_OK) == 0 else { throw XCTSkip("no binutils") }
        let p = popen("bash \(script)", "r")
        XCTAssertNotNil(p)
        var text = "", buf = [CChar](repeating: 0, count: 4096)
        while fgets(&buf, Int32(buf.count), p) != nil { text += String(cString: buf) }
        XCTAssertEqual(pclose(p), 0)
        let bytes = text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }).compactMap { UInt8($0.dropFirst(2), radix: 16) }
        XCTAssertEqual(bytes.count, 265)
        XCTAssertEqual(bytes, ExecStub.image)
        #else
        throw XCTSkip("the stub is x86_64's")
        #endif
    }

    // MARK: when the stub suffices

    func spec(_ edit: (inout Spec) -> Void = { _ in }) -> Spec {
        var s = Spec()
        var l = Linux()
        l.namespaces = ["pid", "mount", "network", "ipc", "uts"].map { Namespace(type: $0) }
        s.linux = l
        s.process = Process(args: ["/bin/true"], cwd: "/")
        edit(&s)
        return s
    }

    func testANewPidNamespaceWithNothingInsideSuffices() {
        XCTAssertTrue(SealedExe.stubSuffices(spec()))
    }

    func testAnythingThatCouldSeeTheInitFirstDoesNot() {
        // The host's pid namespace, or another's joined.
        XCTAssertFalse(SealedExe.stubSuffices(spec { $0.linux?.namespaces?.removeAll { $0.type == "pid" } }))
        XCTAssertFalse(SealedExe.stubSuffices(spec {
            let joined = ($0.linux?.namespaces ?? []).map { $0.type == "pid" ? Namespace(type: "pid", path: "/proc/1/ns/pid") : $0 }
            $0.linux?.namespaces = joined
        }))
        // --init: pid 1 stays our binary.
        XCTAssertFalse(SealedExe.stubSuffices(spec { $0.annotations = [Annotation.initProcess: "true"] }))
        // Hooks forked from the init inside the container.
        XCTAssertFalse(SealedExe.stubSuffices(spec { var h = Hooks(); h.createContainer = [Hook(path: "/bin/true")]; $0.hooks = h }))
        XCTAssertFalse(SealedExe.stubSuffices(spec { var h = Hooks(); h.startContainer = [Hook(path: "/bin/true")]; $0.hooks = h }))
        // Host-side hooks are fine.
        XCTAssertTrue(SealedExe.stubSuffices(spec { var h = Hooks(); h.prestart = [Hook(path: "/bin/true")]; h.poststop = [Hook(path: "/bin/true")]; $0.hooks = h }))
        // An exec label would be the stub's.
        XCTAssertFalse(SealedExe.stubSuffices(spec { $0.process?.apparmorProfile = "docker-default" }))
        XCTAssertFalse(SealedExe.stubSuffices(spec { $0.process?.selinuxLabel = "system_u:system_r:container_t:s0" }))
    }

    func testSeccompMustLetTheStubsCallsThrough() {
        func with(_ s: Seccomp) -> Spec { spec { $0.linux?.seccomp = s } }
        // The default profile's shape: deny by default, an allow list.
        var allow = Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        allow.syscalls = [Syscall(names: ["read", "write", "execve", "execveat", "exit", "exit_group"], action: "SCMP_ACT_ALLOW")]
        XCTAssertTrue(SealedExe.stubSuffices(with(allow)))
        var noExecveat = allow
        noExecveat.syscalls = [Syscall(names: ["read", "write", "execve", "exit_group"], action: "SCMP_ACT_ALLOW")]
        XCTAssertFalse(SealedExe.stubSuffices(with(noExecveat)))
        // Allowed by default, one denied.
        var deny = Seccomp(defaultAction: "SCMP_ACT_ALLOW")
        XCTAssertTrue(SealedExe.stubSuffices(with(deny)))
        deny.syscalls = [Syscall(names: ["execveat"], action: "SCMP_ACT_ERRNO")]
        XCTAssertFalse(SealedExe.stubSuffices(with(deny)))
        // Conditions on an argument: not "whatever the arguments".
        var conditional = allow
        var rule = Syscall(names: ["write"], action: "SCMP_ACT_ALLOW")
        rule.args = [SyscallArg(index: 0, value: 1, op: "SCMP_CMP_EQ")]
        conditional.syscalls = [Syscall(names: ["execve", "execveat", "exit_group"], action: "SCMP_ACT_ALLOW"), rule]
        XCTAssertFalse(SealedExe.stubSuffices(with(conditional)))
        // Notify or log: not a plain allow.
        var notify = allow
        notify.syscalls! += [Syscall(names: ["execve"], action: "SCMP_ACT_NOTIFY")]
        XCTAssertFalse(SealedExe.stubSuffices(with(notify)))
    }

    func testOnlyRunDefers() throws {
        // Nothing deferred (create, exec, a library user): settle leaves
        // everything as it was.
        SealedExe.deferred = false
        XCTAssertNil(try SealedExe.settle(for: spec()))
    }
}
