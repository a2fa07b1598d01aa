import CShim
import Glibc
import Spec
import Sys

// Running OCI hooks: the program at `path` with `args` (args[0] is its
// argv[0]) and `env`, the container state on its stdin, killed after
// `timeout` seconds.

public enum HookRunner {
    /// Runs one hook; throws a message naming the kind, the index and what
    /// went wrong.
    public static func run(_ hook: Hook, kind: String, index: Int, state: String) throws {
        let what = "\(kind) hook \(index) (\(hook.path))"
        var pipeFds: [Int32] = [0, 0]
        guard mc_pipe2(&pipeFds, O_CLOEXEC) == 0 else { throw SysError("pipe for \(what)") }
        let argv = (hook.args?.isEmpty ?? true) ? [hook.path] : hook.args!
        let env = hook.env ?? []
        let pid = fork()
        if pid < 0 {
            close(pipeFds[0]); close(pipeFds[1])
            throw SysError("fork for \(what)")
        }
        if pid == 0 {
            dup2(pipeFds[0], 0)
            let cargv = argv.map { strdup($0) } + [nil]
            let cenv = env.map { strdup($0) } + [nil]
            execve(hook.path, cargv, cenv)
            let msg = "minicontainer: \(what): exec: \(errnoText(errno))\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
            _exit(127)
        }
        close(pipeFds[0])
        // The state on stdin; a hook that does not read it must not block us.
        signal(SIGPIPE, SIG_IGN)
        try? FS.writeAll(fd: pipeFds[1], Array(state.utf8), what: "write state to \(what)")
        close(pipeFds[1])
        var status: Int32 = 0
        let deadline = hook.timeout.map { Clock.monotonicMs() + Int64($0) * 1000 }
        while true {
            let r = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw SysError("wait for \(what)") }
            if let d = deadline, Clock.monotonicMs() > d {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw fail("\(what) timed out after \(hook.timeout!)s")
            }
            if r == 0 { usleep(1000) }
        }
        let code = Proc.exitCode(fromWaitStatus: status)
        if code != 0 {
            throw fail(code > 128 ? "\(what) was killed by signal \(code - 128)" : "\(what) exited with status \(code)")
        }
    }

    public static func runAll(_ hooks: [Hook]?, kind: String, state: String) throws {
        for (i, h) in (hooks ?? []).enumerated() { try run(h, kind: kind, index: i, state: state) }
    }

    /// For poststart and poststop: a failure is a warning and the others
    /// still run (runtime-spec).
    public static func runWarning(_ hooks: [Hook]?, kind: String, state: String) {
        for (i, h) in (hooks ?? []).enumerated() {
            do { try run(h, kind: kind, index: i, state: state) } catch { Log.warn("\(error)") }
        }
    }
}
