import Glibc
import Sys

// Reading and writing cgroup control files, listing member pids, removing
// cgroup directories. Everything tolerates a fake tree on an ordinary
// filesystem, where mkdir creates no control files: a missing file reads as
// absent, and a directory that is not cgroupfs may hold plain files we remove.

enum Control {
    static func read(_ path: String) throws -> String { try FS.readString(path) }

    /// The file's text trimmed of surrounding whitespace, or nil if it cannot
    /// be read.
    static func readTrimmed(_ path: String) -> String? {
        guard let s = try? FS.readString(path) else { return nil }
        return trim(s)
    }

    static func trim(_ s: String) -> String {
        var sub = Substring(s)
        while let c = sub.first, c.isWhitespace { sub.removeFirst() }
        while let c = sub.last, c.isWhitespace { sub.removeLast() }
        return String(sub)
    }

    /// One write(2) of `value` (cgroupfs takes a value per write). `append`
    /// is for membership files (cgroup.procs): the kernel ignores the offset,
    /// and on a fake tree successive pids accumulate as the real file shows.
    static func write(_ path: String, _ value: String, append: Bool = false) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC))
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        try FS.writeAll(fd: fd, Array((append ? value + "\n" : value).utf8), what: "write \(value) to \(path)")
    }

    /// Pids listed in `dir`/cgroup.procs and, with `recursive`, in every
    /// cgroup below it. A missing directory or file lists nothing.
    static func pids(in dir: String, recursive: Bool = true) throws -> [Int32] {
        var out: [Int32] = []
        let file = dir + "/cgroup.procs"
        do {
            for line in try read(file).split(separator: "\n") {
                if let p = Int32(trim(String(line))) { out.append(p) }
            }
        } catch let e as SysError where e.errno == ENOENT || e.errno == ENOTDIR {
            return []
        }
        if recursive {
            for sub in subdirectories(dir) { out += try pids(in: sub) }
        }
        return out
    }

    /// Full paths of the directories directly in `dir`.
    static func subdirectories(_ dir: String) -> [String] {
        entries(dir).filter { $0.isDir }.map { dir + "/" + $0.name }
    }

    /// The entries of `dir` (none when it cannot be read), each with
    /// whether it is a directory (stat'ed where readdir does not say).
    static func entries(_ dir: String) -> [(name: String, isDir: Bool)] {
        (FS.directoryEntries(dir) ?? []).map { e in
            var isDir = Int32(e.type) == Int32(DT_DIR)
            if Int32(e.type) == Int32(DT_UNKNOWN) { isDir = FS.isDirectory(dir + "/" + e.name) }
            return (e.name, isDir)
        }
    }

    /// Names a cgroup control file can have: "tasks", "notify_on_release",
    /// "release_agent" or "<word>.<word>" ("cgroup.procs", "memory.max").
    static func looksLikeControlFile(_ name: String) -> Bool {
        if ["tasks", "notify_on_release", "release_agent"].contains(name) { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count >= 2 && parts.allSatisfy { p in
            !p.isEmpty && p.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
        }
    }

    /// rmdir `dir` and any cgroups below it, deepest first. Missing is fine.
    /// EBUSY (processes still leaving) is retried until `deadline` (a
    /// Clock.monotonicSeconds() time; one for all of a container's hierarchies), then reported
    /// with the pids still there. Never removes `mountPoint` itself or
    /// anything outside it.
    static func removeCgroup(_ dir: String, mountPoint: String, deadline: Double) throws {
        guard dir != mountPoint, under(dir, mountPoint) else {
            throw SysError("refusing to remove \(dir): not a cgroup below \(mountPoint)", errno: EINVAL)
        }
        // Usually an empty leaf: one rmdir. Otherwise children first.
        if rmdir(dir) == 0 || errno == ENOENT { return }
        for sub in subdirectories(dir) { try removeCgroup(sub, mountPoint: mountPoint, deadline: deadline) }
        var delay = 0.005, clearedFakeFiles = false
        while rmdir(dir) != 0 {
            let e = errno
            switch e {
            case ENOENT:
                return
            case EBUSY where Clock.monotonicSeconds() < deadline:
                sleep(seconds: delay)
                delay = min(delay * 2, 0.1)
            case ENOTEMPTY where !clearedFakeFiles, EEXIST where !clearedFakeFiles:
                // cgroupfs never says ENOTEMPTY (a busy cgroup is EBUSY):
                // this is a fake tree, whose "control files" are plain files.
                for f in entries(dir) where !f.isDir && looksLikeControlFile(f.name) { unlink(dir + "/" + f.name) }
                clearedFakeFiles = true
            case EBUSY:
                let left = ((try? pids(in: dir)) ?? []).map(String.init).joined(separator: " ")
                throw SysError("rmdir \(dir)" + (left.isEmpty ? "" : " (processes still in it: \(left))"), errno: e)
            default:
                throw SysError("rmdir \(dir)", errno: e)
            }
        }
    }

    /// Sends `signal` to each pid; a pid already gone is no error. Refuses
    /// pids that would mean a group or ourselves (0, negative, our own).
    static func signal(_ pids: [Int32], _ sig: Int32) throws {
        var first: SysError?
        let me = getpid()
        for p in pids where p > 0 && p != me {
            if Glibc.kill(p, sig) != 0 && errno != ESRCH && first == nil {
                first = SysError("kill \(p) with signal \(sig)")
            }
        }
        if let e = first { throw e }
    }

    static func sleep(seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}
