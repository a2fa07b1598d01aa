import CShim
import Glibc

// Processes, locks, removing trees, the runtime-init channel: the small
// pieces the lifecycle needs.

public enum Proc {
    /// The start time of a process (field 22 of /proc/PID/stat, in clock
    /// ticks since boot) and its state letter, or nil when it is gone.
    /// Together with the pid the start time names a process for good: a
    /// recycled pid has another start time.
    public static func stat(_ pid: Int32) -> (startTime: UInt64, state: Character)? {
        // Every command asks (status): bytes, not Characters.
        guard let b = try? FS.readBytes("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces.
        guard var i = b.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // Then " S ..." : field 3 (state) is the first after it, field 22
        // (start time) the twentieth.
        var field = 2, state: UInt8 = 0
        while i + 1 < b.count {
            i += 1
            guard b[i] == UInt8(ascii: " ") else { continue }
            field += 1
            if field == 3, i + 1 < b.count { state = b[i + 1] }
            if field == 22 {
                var v: UInt64 = 0, j = i + 1, digits = 0
                while j < b.count, b[j] >= 48, b[j] <= 57, digits < 19 { v = v * 10 + UInt64(b[j] - 48); j += 1; digits += 1 }
                guard digits > 0, state != 0 else { return nil }
                return (v, Character(Unicode.Scalar(state)))
            }
        }
        return nil
    }

    /// Whether the process `pid` started at `startTime` still runs (a zombie
    /// counts as gone).
    public static func alive(_ pid: Int32, startTime: UInt64) -> Bool {
        guard pid > 0, let s = stat(pid) else { return false }
        return s.startTime == startTime && s.state != "Z" && s.state != "X"
    }

    /// Waits until `pid` has exited, up to `timeoutMs`; true when it has.
    /// Works for processes that are not our children (pidfd, else polling).
    public static func waitGone(_ pid: Int32, startTime: UInt64, timeoutMs: Int) -> Bool {
        let fd = mc_pidfd_open(pid, 0)
        if fd >= 0 {
            defer { close(fd) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            var left = timeoutMs
            while left > 0 {
                if !alive(pid, startTime: startTime) { return true }
                let step = min(left, 100)
                let r = poll(&p, 1, Int32(step))
                if r > 0 { return true }
                left -= step
            }
            return !alive(pid, startTime: startTime)
        }
        var left = timeoutMs
        while left > 0 {
            if !alive(pid, startTime: startTime) { return true }
            usleep(2000)
            left -= 2
        }
        return !alive(pid, startTime: startTime)
    }

    /// Reaps `pid` (started at `startTime`) when it is a zombie child of
    /// this process, as the init is when a library user created the
    /// container in-process; a process that is not ours is left alone
    /// (waitid on its pidfd is ECHILD), and so is one that was recycled.
    public static func reapIfOurs(_ pid: Int32, startTime: UInt64) {
        guard pid > 0, let s = stat(pid), s.startTime == startTime, s.state == "Z" else { return }
        let fd = mc_pidfd_open(pid, 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var info = siginfo_t()
        _ = waitid(idtype_t(rawValue: 3) /* P_PIDFD */, id_t(fd), &info, WEXITED | WNOHANG)
    }

    /// Signals as a new program should get them, whatever our caller gave
    /// us: nothing blocked, nothing ignored, no handler (a container's
    /// process must not inherit a shell's `trap '' INT` or a library's
    /// blocked mask), 32 and 33 included (glibc's own, which its signal()
    /// refuses). Only system calls: safe in a forked child.
    public static func resetSignals() { mc_reset_signals() }

    public static func exitCode(fromWaitStatus s: Int32) -> Int32 {
        if s & 0x7f == 0 { return (s >> 8) & 0xff }  // exited
        return 128 + (s & 0x7f)                        // killed by a signal
    }
}

/// An exclusive flock held until `unlock` or exit.
public struct FileLock {
    public let fd: Int32

    /// Locks `path` (a directory or file), waiting for other holders.
    public static func acquire(_ path: String) throws -> FileLock {
        FileLock(fd: try lockedFD(path))
    }

    /// `path` opened (created 0600 first when `create`) and flocked,
    /// exclusive or shared, waiting for other holders: its fd.
    public static func lockedFD(_ path: String, exclusive: Bool = true, create: Bool = false) throws -> Int32 {
        let fd = create ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("\(create ? "create" : "open") \(path)") }
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            let e = SysError("lock \(path)")
            close(fd)
            throw e
        }
        return fd
    }

    public func unlock() { close(fd) }
}

extension FS {
    /// rm -rf without following symlinks; missing is fine.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SysError("stat \(path)")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for e in directoryEntries(path) ?? [] { try removeTree(path + "/" + e.name) }
            guard rmdir(path) == 0 || errno == ENOENT else { throw SysError("remove \(path)") }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw SysError("remove \(path)") }
        }
    }
}

/// A SOCK_SEQPACKET message channel between the runtime and the init.
public struct Channel {
    public let fd: Int32

    public static func pair() throws -> (Channel, Channel) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SysError("socketpair")
        }
        return (Channel(fd: fds[0]), Channel(fd: fds[1]))
    }

    /// One packet, with `passing` beside it when >= 0. The messages are
    /// Runtime's (InitMessage).
    public func send(bytes: [UInt8], fd passing: Int32 = -1) throws {
        let r = bytes.withUnsafeBytes { mc_send_fd(fd, passing, $0.baseAddress, $0.count) }
        guard r == 0 else { throw SysError("send to the container's process") }
    }

    /// Receives one packet and the fd passed with it (-1); nil at end of
    /// stream (the peer closed, executed or died).
    public func receiveBytes() throws -> ([UInt8], Int32)? {
        var buf = [UInt8](repeating: 0, count: 65536)
        var passed: Int32 = -1
        while true {
            let n = buf.withUnsafeMutableBytes { mc_recv_fd(fd, &passed, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("receive from the container's process")
            }
            if n == 0 { return nil }
            return (Array(buf[0..<n]), passed)
        }
    }

    public func close() { _ = Glibc.close(fd) }
}
