// The last steps before execve: file descriptors that must not leak into
// the container, and finding the program.

import Glibc
import CShim
import Spec
import Sys

extension Privileges {
    // MARK: file descriptors

    /// Closes every fd >= 3 except those in `keep` (--preserve-fds passes
    /// 3..<3+N; the init may also keep its own O_CLOEXEC sync socket, which
    /// execve then closes). With `cloexecOnly` the fds are marked close-on-exec
    /// instead of closed (runc's CloseExecFrom), so the init can still use them
    /// until execve succeeds. close_range(2) when the kernel has it (and a
    /// seccomp filter allows it), else each fd in /proc/self/fd.
    public static func closeFds(keep: Set<Int32>, cloexecOnly: Bool = false) throws {
        let ranges = fdRanges(keeping: keep)
        var usedRange = true
        for (first, last) in ranges {
            if mc_close_range(first, last, cloexecOnly ? Kernel.CLOSE_RANGE_CLOEXEC : 0) != 0 {
                let e = errno
                // ENOSYS: before 5.9; EINVAL: CLOEXEC before 5.11; EPERM: seccomp.
                guard e == ENOSYS || e == EINVAL || e == EPERM else {
                    throw SysError("close_range \(first)...\(last)", errno: e)
                }
                usedRange = false
                break
            }
        }
        if usedRange { return }

        for fd in try openFds() where fd >= 3 && !keep.contains(fd) {
            if cloexecOnly {
                let flags = fcntl(fd, F_GETFD)
                if flags >= 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0 && errno != EBADF {
                    throw SysError("set close-on-exec on fd \(fd)")
                }
            } else if close(fd) != 0 && errno != EBADF && errno != EINTR {
                throw SysError("close fd \(fd)")
            }
        }
    }

    /// The fd ranges (inclusive) from 3 up that exclude `keep`.
    static func fdRanges(keeping keep: Set<Int32>) -> [(UInt32, UInt32)] {
        var out: [(UInt32, UInt32)] = []
        var next: UInt32 = 3
        for k in keep.filter({ $0 >= 3 }).sorted() {
            let ku = UInt32(k)
            if ku > next { out.append((next, ku - 1)) }
            next = ku + 1
        }
        out.append((next, UInt32.max))
        return out
    }

    /// The open fds, from /proc/self/fd of our own procfs (ProcFS: a listing
    /// the container's /proc could fake would leave fds open), less the
    /// directory's own; or every number below the open-files limit.
    static func openFds() throws -> [Int32] {
        let fdDir = (try? ProcFS.open("self/fd", O_RDONLY | O_DIRECTORY)) ?? -1
        // The listing is read while fdDir is open, so it names fdDir too.
        guard fdDir >= 0, let entries = FS.directoryEntries(fd: fdDir) else {
            var rl = rlimit()
            let limit = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0 ? min(Int(clamping: rl.rlim_cur), 1 << 20) : 1024
            return (0..<Int32(limit)).map { $0 }
        }
        return entries.compactMap { Int32($0.name) }.filter { $0 != fdDir }
    }

    // MARK: finding the program

    /// The PATH used when process.env has none (Docker's and runc's default).
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Finds the program as execvp does. A name with a '/' is used as it is;
    /// a bare name is searched in PATH from `env` (the process.env list; the
    /// last PATH= wins), or `defaultPath`. Errors, in the words podman maps
    /// to exit codes 127 and 126:
    ///   exec: "foo": executable file not found in $PATH: no such file or directory
    ///   exec: "/bin/foo": no such file or directory
    ///   exec: "/etc/passwd": permission denied
    /// As execvp, a bare name found only as non-executable files gives
    /// permission denied.
    public static func lookPath(_ name: String, env: [String]) throws -> String {
        let quoted = Quote.quoted(name)
        if name.isEmpty { throw SysError("exec: \(quoted)", errno: ENOENT) }
        if Path.hasSlash(name) {
            let e = executableProblem(name)
            if e != 0 { throw SysError("exec: \(quoted)", errno: e) }
            return name
        }
        var path = defaultPath
        for kv in env where kv.hasPrefix("PATH=") { path = String(kv.dropFirst(5)) }
        var sawDenied = false
        // An empty element means the current directory, as in execvp.
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let d = dir.isEmpty ? "." : String(dir)
            let candidate = d.utf8.last == 47 ? d + name : d + "/" + name
            switch executableProblem(candidate) {
            case 0: return candidate
            case EACCES: sawDenied = true
            default: continue
            }
        }
        if sawDenied { throw SysError("exec: \(quoted)", errno: EACCES) }
        throw SysError("exec: \(quoted): executable file not found in $PATH", errno: ENOENT)
    }

    /// 0 when `path` is an executable regular file; else the errno execve
    /// would give: ENOENT (or ENOTDIR, ELOOP...) when missing, EACCES when a
    /// directory or not executable.
    static func executableProblem(_ path: String) -> Int32 {
        var st = stat()
        guard stat(path, &st) == 0 else { return errno }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return EACCES }
        return access(path, X_OK) == 0 ? 0 : errno
    }
}
