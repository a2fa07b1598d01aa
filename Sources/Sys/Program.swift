import CShim
import Glibc
import Spec

// Running a host program (iptables, newuidmap, slirp4netns...) from this
// single-threaded process: fork and execve with a fixed PATH, stdin from a
// string, stdout discarded or kept, stderr kept for the error.

public enum Program {
    /// Runs `path args` with `stdin`; throws its stderr (one line) when it
    /// fails or cannot be run. Returns what it wrote to stdout.
    @discardableResult
    public static func run(_ path: String, _ args: [String], stdin: String = "", shown: String? = nil) throws -> String {
        var inp: [Int32] = [0, 0], err: [Int32] = [0, 0], out: [Int32] = [0, 0]
        guard mc_pipe2(&inp, O_CLOEXEC) == 0 else { throw SysError("pipe") }
        guard mc_pipe2(&err, O_CLOEXEC) == 0 else { close(inp[0]); close(inp[1]); throw SysError("pipe") }
        guard mc_pipe2(&out, O_CLOEXEC) == 0 else {
            for f in inp + err { close(f) }
            throw SysError("pipe")
        }
        let argv = [path] + args
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { for p in cargv { free(p) }; for p in cenv { free(p) } }
        let pid = fork()
        if pid < 0 { for f in inp + err + out { close(f) }; throw SysError("fork for \(path)") }
        if pid == 0 {
            dup2(inp[0], 0)
            dup2(out[1], 1)
            dup2(err[1], 2)
            execve(path, cargv, cenv)
            let msg = Array("cannot run \(path): \(errnoText(errno))\n".utf8)
            _ = write(2, msg, msg.count)
            _exit(127)
        }
        close(inp[0]); close(err[1]); close(out[1])
        let old = signal(SIGPIPE, SIG_IGN)
        try? FS.writeAll(fd: inp[1], Array(stdin.utf8), what: "write to \(path)")
        close(inp[1])
        signal(SIGPIPE, old)
        // stdout first: the programs run here write little to stderr.
        let o = (try? FS.readFd(out[0])) ?? []
        close(out[0])
        let e = (try? FS.readFd(err[0])) ?? []
        close(err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = Proc.exitCode(fromWaitStatus: status)
        if code != 0 {
            let msg = String(decoding: e, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            let name = Path.components(path).last ?? ""
            throw Failure(.failed, "\(name) \(shown ?? args.joined(separator: " ")): exit \(code)\(msg.isEmpty ? "" : ": " + msg)")
        }
        return String(decoding: o, as: UTF8.self)
    }

    /// The first of `names` found executable in the usual directories.
    public static func find(_ names: [String]) -> String? {
        for n in names {
            for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] where access(d + "/" + n, X_OK) == 0 {
                return d + "/" + n
            }
        }
        return nil
    }
}
