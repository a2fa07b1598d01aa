import CShim
import Glibc
import Spec

// /proc that nothing in a container can redirect (CVE-2025-52881).
//
// The init writes sysctls, its oom_score_adj (and LSM attributes) under /proc
// after the container's mounts exist, and reopens its exec fifo through
// /proc/self/fd. Through the container's /proc, a mount over one of those
// files (a bind raced in from a shared volume) or a fake /proc in the image
// (when procfs is mounted elsewhere or not at all) would send the write to
// another file: a host-global sysctl, /proc/sysrq-trigger, a regular file
// that silently swallows an LSM label. So every access goes through a handle
// on a procfs instance of our own:
//
//  - first choice, a new procfs (fsopen("proc"), FSCONFIG_CMD_CREATE,
//    fsmount) of the caller's pid namespace, attached nowhere: no path leads
//    to it, so nothing can be mounted over anything in it;
//  - where the kernel refuses that (a user namespace that does not own the
//    pid namespace, no procfs visible to a user namespace, a seccomp filter),
//    the current root's /proc, accepted only if it is itself the root of a
//    procfs (not a symlink, not a bind of a subdirectory).
//
// Paths are then opened beneath the handle with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): no symlink
// is followed and no mount crossed, so in the fallback a bind mount over a
// /proc file makes the open fail instead of writing through it. "self" and
// "thread-self" are read from the handle (readlinkat) and spelled out.
//
// The handle is cached (one procfs for all of a container's sysctls) and is
// close-on-exec; the init closes it before it reports ready, so no process
// of the container can reach an unmasked procfs through /proc/1/fd.

public enum ProcFS {
    /// PROC_ROOT_INO: the inode number of every procfs root.
    static let rootInode: UInt64 = 1
    static let strict = Kernel.RESOLVE_BENEATH | Kernel.RESOLVE_NO_SYMLINKS | Kernel.RESOLVE_NO_MAGICLINKS | Kernel.RESOLVE_NO_XDEV

    private static var cached: Int32 = -1
    private static var cachedID: (dev: UInt64, ino: UInt64) = (0, 0)

    // MARK: public API

    /// Opens `relativePath` (no leading slash: "sys/net/ipv4/ip_forward",
    /// "self/oom_score_adj", "thread-self/attr/apparmor/exec") under our
    /// procfs with `flags` (O_CLOEXEC is added). Throws SysError("open
    /// /proc/PATH") with the errno (ELOOP for a symlink on the way, EXDEV for
    /// a mount over it).
    public static func open(_ relativePath: String, _ flags: Int32) throws -> Int32 {
        let root = try handle()
        return try openBeneath(root, relativePath, flags)
    }

    /// Writes `bytes` to /proc/`relativePath` in one write(2) (procfs files
    /// take a value per write). Errors: "`what`: open /proc/PATH: errno" when
    /// it cannot be opened, "`what`: errno" when the kernel refuses the value.
    public static func write(_ relativePath: String, _ bytes: [UInt8], what: String) throws {
        let fd: Int32
        do {
            fd = try open(relativePath, O_WRONLY)
        } catch let e as SysError {
            throw SysError("\(what): \(e.what)", errno: e.errno)
        }
        defer { Glibc.close(fd) }
        try FS.writeAll(fd: fd, bytes, what: what)
    }

    /// Reads /proc/`relativePath` whole.
    public static func read(_ relativePath: String) throws -> [UInt8] {
        let fd = try open(relativePath, O_RDONLY)
        defer { Glibc.close(fd) }
        return try FS.readFd(fd)
    }

    /// Writes one sysctl: `key` as in linux.sysctl ("net.ipv4.ip_forward",
    /// or with slashes, "net/ipv4/conf/eth0.100/forwarding"). A key that is
    /// not a plain sysctl name is refused before anything is opened.
    public static func writeSysctl(_ key: String, _ value: String) throws {
        guard let path = sysctlPath(key) else {
            throw SysError("sysctl \(key): not a valid sysctl name", errno: EINVAL)
        }
        let fd: Int32
        do {
            fd = try open("sys/" + path, O_WRONLY | O_TRUNC)
        } catch let e as SysError {
            throw SysError("sysctl \(key): \(e.what)", errno: e.errno)
        }
        defer { Glibc.close(fd) }
        try FS.writeAll(fd: fd, Array(value.utf8), what: "sysctl \(key)")
    }

    /// Opens again, with `flags`, the file that our descriptor `fd` (an
    /// O_PATH one, say) names: through /proc/PID/fd/FD of a procfs of our
    /// own (fdDirectory), never the container's /proc/self/fd. The caller
    /// owns the result.
    public static func reopen(_ fd: Int32, _ flags: Int32, what: String) throws -> Int32 {
        let dir = try fdDirectory(what: what)
        defer { Glibc.close(dir) }
        return try reopen(fd, flags, in: dir, what: what)
    }

    /// Our /proc/PID/fd directory (O_PATH) in a fresh procfs limited to the
    /// processes (subset=pid; the current root's /proc, checked, where that
    /// is refused). The procfs root itself is closed again: what the caller
    /// holds leads to processes only, never to /proc/sys or /proc/kcore. For
    /// `reopen(_:_:in:what:)` when the open itself must come later (the exec
    /// fifo, opened after "ready"). The caller closes it.
    public static func fdDirectory(what: String) throws -> Int32 {
        let root = try openInstance(subset: "pid") ?? openCurrentProc()
        defer { Glibc.close(root) }
        let pid = readLinkAt(root, "self") ?? String(getpid())
        do {
            return try openBeneath(root, pid + "/fd", Kernel.O_PATH | O_DIRECTORY)
        } catch let e as SysError {
            throw SysError("\(what): \(e.what)", errno: e.errno)
        }
    }

    /// `reopen` through a directory from fdDirectory. The open may block (a fifo).
    public static func reopen(_ fd: Int32, _ flags: Int32, in dir: Int32, what: String) throws -> Int32 {
        // The last step follows the magic link, by design: it is the file behind our fd.
        while true {
            let r = openat(dir, String(fd), flags | O_CLOEXEC)
            if r >= 0 { return r }
            if errno == EINTR { continue }
            throw SysError(what)
        }
    }

    /// Closes the cached handle (the next use opens a new one).
    public static func close() {
        if cached >= 0 { Glibc.close(cached) }
        cached = -1
    }

    // MARK: pure parts

    /// The path under /proc/sys for a sysctl key, or nil when the key is not
    /// a plain name. Without a slash, dots separate the components (runc's
    /// reading: "net.ipv4.ip_forward"); with one, the key is the path itself
    /// and dots are kept ("net/ipv4/conf/eth0.100/forwarding", as sysctl(8)).
    /// Only [A-Za-z0-9_.-/] are allowed, and no component may be empty, "."
    /// or "..": a key can name a file under /proc/sys and nothing else.
    public static func sysctlPath(_ key: String) -> String? {
        guard !key.isEmpty, key.utf8.count <= 4096 else { return nil }
        for c in key.utf8 {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
                 UInt8(ascii: "."), UInt8(ascii: "/"):
                continue
            default:
                return nil
            }
        }
        // The components validation judged (Spec's Sysctl, sysctl(8)'s
        // reading), so the file written is the one that was allowed.
        return Sysctl.components(key)?.joined(separator: "/")
    }

    /// `relativePath` with a leading "self" or "thread-self" replaced by what
    /// those links say in our procfs (`link` reads one), since the open
    /// follows no symlink. Other paths are returned as they are.
    static func expandSelf(_ relativePath: String, link: (String) -> String?) -> String? {
        let first = Path.components(relativePath).first ?? ""
        guard relativePath.bytesStart(with: first), first == "self" || first == "thread-self" else { return relativePath }
        guard let target = link(String(first)), !target.isEmpty, !Path.isAbsolute(target),
              !Path.hasDotDot(target) else { return nil }
        return target + (Path.dropPrefix(first, of: relativePath) ?? "")
    }

    // MARK: the handle

    /// The cached handle, opened on first use; checked on every use to still
    /// be the procfs root it was (a stray close(2) elsewhere could have
    /// handed its number to another file).
    static func handle() throws -> Int32 {
        if cached >= 0 {
            var st = stat()
            if fstat(cached, &st) == 0, UInt64(st.st_dev) == cachedID.dev, UInt64(st.st_ino) == cachedID.ino {
                return cached
            }
            cached = -1
        }
        let fd = try openInstance(subset: nil) ?? openCurrentProc()
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = SysError("stat procfs"); Glibc.close(fd); throw e }
        cached = fd
        cachedID = (UInt64(st.st_dev), UInt64(st.st_ino))
        return fd
    }

    /// A new procfs of our pid namespace, mounted nowhere (nosuid, nodev,
    /// noexec); with `subset` ("pid") only the processes. nil when the kernel
    /// refuses one; a subset it does not know is dropped.
    static func openInstance(subset: String?) -> Int32? {
        let fs = mc_fsopen("proc", Kernel.FSOPEN_CLOEXEC)
        guard fs >= 0 else { return nil }
        defer { Glibc.close(fs) }
        if let s = subset { _ = mc_fsconfig(fs, Kernel.FSCONFIG_SET_STRING, "subset", s, 0) }
        guard mc_fsconfig(fs, Kernel.FSCONFIG_CMD_CREATE, nil, nil, 0) == 0 else { return nil }
        let m = mc_fsmount(fs, Kernel.FSMOUNT_CLOEXEC, UInt32(Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV | Kernel.MOUNT_ATTR_NOEXEC))
        guard m >= 0 else { return nil }
        guard isProcRoot(m) else { Glibc.close(m); return nil }
        return m
    }

    /// The current root's /proc, if it is the root of a procfs mount.
    static func openCurrentProc() throws -> Int32 {
        let fd = mc_openat2(AT_FDCWD, "/proc", UInt64(UInt32(bitPattern: Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)), 0,
                            Kernel.RESOLVE_NO_SYMLINKS | Kernel.RESOLVE_NO_MAGICLINKS)
        guard fd >= 0 else { throw SysError("open /proc") }
        guard isProcRoot(fd) else {
            Glibc.close(fd)
            throw SysError("open /proc: not the root of a procfs", errno: EXDEV)
        }
        return fd
    }

    static func isProcRoot(_ fd: Int32) -> Bool {
        var type: UInt64 = 0
        var st = stat()
        return mc_fstatfs(fd, &type, nil) == 0 && type == Kernel.PROC_SUPER_MAGIC && fstat(fd, &st) == 0
            && st.st_mode & S_IFMT == S_IFDIR && UInt64(st.st_ino) == rootInode
    }

    /// openat2 beneath `root` with no symlink and no mount crossing; the
    /// result is checked to be on procfs.
    static func openBeneath(_ root: Int32, _ relativePath: String, _ flags: Int32) throws -> Int32 {
        guard let rel = expandSelf(relativePath, link: { readLinkAt(root, $0) }) else {
            throw SysError("open /proc/\(relativePath)", errno: ENOENT)
        }
        var tries = 0
        while true {
            let fd = mc_openat2(root, rel, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), 0, strict)
            if fd < 0 {
                // EAGAIN: a rename raced the lookup, the kernel asks for a retry.
                if (errno == EAGAIN || errno == EINTR) && tries < 64 { tries += 1; continue }
                throw SysError("open /proc/\(relativePath)")
            }
            var type: UInt64 = 0
            guard mc_fstatfs(fd, &type, nil) == 0, type == Kernel.PROC_SUPER_MAGIC else {
                Glibc.close(fd)
                throw SysError("open /proc/\(relativePath): not on procfs", errno: EXDEV)
            }
            return fd
        }
    }

    static func readLinkAt(_ dir: Int32, _ name: String) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlinkat(dir, name, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
