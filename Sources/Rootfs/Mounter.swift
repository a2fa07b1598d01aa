import CShim
import Glibc
import Sys

// The half of the filesystem setup that makes system calls. Every path a
// container controls is resolved inside the root with openat2(RESOLVE_IN_ROOT),
// and mounts go onto the resulting file descriptor through /proc/self/fd/N,
// so a symlink in the image cannot send a mount (or mkdir, mknod) outside it.

let O_PATH_: Int32 = 0o10000000
let AT_EMPTY_PATH_: Int32 = 0x1000
let AT_RECURSIVE_: UInt32 = 0x8000
let RESOLVE_NO_MAGICLINKS: UInt64 = 0x02
let RESOLVE_IN_ROOT: UInt64 = 0x10
let PROC_SUPER_MAGIC: UInt64 = 0x9fa0
let CGROUP2_SUPER_MAGIC: UInt64 = 0x6367_7270

func fdPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s = s else { return body(nil) }
    return s.withCString { body($0) }
}

/// mount(2); returns 0 or -1 with errno set. Empty data is passed as NULL.
func sysMount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String? = nil) -> Int32 {
    let d = (data?.isEmpty ?? true) ? nil : data
    return withOptionalCString(source) { s in
        withOptionalCString(type) { t in
            withOptionalCString(d) { dp in mount(s, target, t, flags, dp.map { UnsafeRawPointer($0) }) }
        }
    }
}

/// Throws SysError(what) with the errno of the call that just failed.
func check(_ result: Int32, _ what: @autoclosure () -> String) throws {
    if result < 0 {
        let e = errno
        throw SysError(what(), errno: e)
    }
}

/// statfs(2): (filesystem magic, ST_* flags), or nil.
func statFS(_ path: String) -> (type: UInt64, flags: UInt64)? {
    var t: UInt64 = 0, f: UInt64 = 0
    return mc_statfs(path, &t, &f) == 0 ? (t, f) : nil
}

func readLinkAt(_ dir: Int32, _ name: String) -> String? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlinkat(dir, name, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs `body`, prefixing the `what` of a SysError it throws with `label`
/// ("mount tmpfs on /run: mkdir /run"), unless it already names the step.
func step<R>(_ label: String, _ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch var e as SysError {
        if e.what != label && !e.what.hasPrefix(label + ": ") { e.what = label + ": " + e.what }
        throw e
    }
}

/// Mounts and files inside one root directory.
final class Setup {
    /// O_PATH descriptor of the root (the rootfs' own bind mount before pivot_root, "/" after).
    let root: Int32
    /// The root's canonical path as this process sees it (host path before pivot_root, "/" after).
    let rootPath: String
    let inUserNamespace: Bool

    init(rootPath: String) throws {
        let fd = Glibc.open(rootPath, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        try check(fd, "open root \(rootPath)")
        root = fd
        self.rootPath = rootPath
        inUserNamespace = !Rootfs.isInitialIDMap((try? FS.readString("/proc/self/uid_map")) ?? "0 0 4294967295")
    }

    deinit { close(root) }

    /// openat2 of a container path inside the root; -1 with errno on failure.
    func open(_ path: String, _ flags: Int32, mode: mode_t = 0) -> Int32 {
        var rel = String(Rootfs.cleanPath(path).dropFirst())
        if rel.isEmpty { rel = "." }
        var tries = 0
        while true {
            let fd = mc_openat2(root, rel, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), UInt64(mode),
                                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
            if fd < 0 && (errno == EAGAIN || errno == EINTR) && tries < 64 { tries += 1; continue }
            return fd
        }
    }

    /// mkdir -p inside the root (mode 0755 by default); returns an O_PATH
    /// descriptor of the directory. A dangling symlink on the way is
    /// followed inside the root and its target created, as runc's securejoin.
    func mkdirAll(_ path: String, mode: mode_t = 0o755, depth: Int = 0) throws -> Int32 {
        let clean = Rootfs.cleanPath(path)
        let fd = open(clean, O_PATH_ | O_DIRECTORY)
        if fd >= 0 { return fd }
        if errno != ENOENT { try check(-1, "mkdir \(clean)") }
        var cur = open("/", O_PATH_ | O_DIRECTORY)
        try check(cur, "open root \(rootPath)")
        var prefix = ""
        let comps = clean.split(separator: "/").map(String.init)
        for (i, c) in comps.enumerated() {
            let parent = prefix
            prefix += "/" + c
            var next = open(prefix, O_PATH_ | O_DIRECTORY)
            if next < 0 && errno == ENOENT {
                if mkdirat(cur, c, mode) != 0 {
                    let e = errno
                    if e == EEXIST, let target = readLinkAt(cur, c) {
                        // A dangling symlink: create where it points, inside the root.
                        close(cur)
                        guard depth < 40 else { throw SysError("mkdir \(prefix)", errno: ELOOP) }
                        let base = target.hasPrefix("/") ? target : parent + "/" + target
                        let rest = comps[(i + 1)...].joined(separator: "/")
                        return try mkdirAll(base + "/" + rest, mode: mode, depth: depth + 1)
                    }
                    if e != EEXIST {
                        close(cur)
                        throw SysError("mkdir \(prefix)", errno: e)
                    }
                }
                next = open(prefix, O_PATH_ | O_DIRECTORY)
            }
            if next < 0 {
                let e = errno
                close(cur)
                throw SysError("mkdir \(prefix)", errno: e)
            }
            close(cur)
            cur = next
        }
        return cur
    }

    /// The mount point for `path`: created as a directory or an empty file as
    /// asked when missing; an O_PATH descriptor of it.
    func mountPoint(_ path: String, directory: Bool, depth: Int = 0) throws -> Int32 {
        if directory { return try mkdirAll(path) }
        var fd = open(path, O_PATH_)
        if fd >= 0 { return fd }
        if errno != ENOENT { try check(-1, "open \(path)") }
        let (parent, name) = Rootfs.splitPath(Rootfs.cleanPath(path))
        let dir = try mkdirAll(parent)
        defer { close(dir) }
        let f = openat(dir, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if f < 0 && errno == ELOOP, let target = readLinkAt(dir, name), depth < 40 {
            // A dangling symlink: the file goes where it points, inside the root.
            return try mountPoint(target.hasPrefix("/") ? target : parent + "/" + target, directory: false,
                                  depth: depth + 1)
        }
        try check(f, "create \(path)")
        close(f)
        fd = open(path, O_PATH_)
        try check(fd, "open \(path)")
        return fd
    }

    /// The path of `fd` inside the root, or nil when it is not inside it.
    func containerPath(of fd: Int32) -> String? {
        guard let p = readLink(fdPath(fd)) else { return nil }
        if rootPath == "/" { return p }
        if p == rootPath { return "/" }
        return p.hasPrefix(rootPath + "/") ? String(p.dropFirst(rootPath.count)) : nil
    }

    /// Refuses mounts into /proc (other than procfs on /proc and the lxcfs files).
    func checkProcDestination(_ fd: Int32, _ m: PlannedMount, sourceIsProcfs: Bool = false) throws {
        guard let inside = containerPath(of: fd) else {
            throw SysError("resolve \(m.destination) inside the root", errno: EXDEV)
        }
        if !Rootfs.procMountAllowed(destination: inside, kind: m.kind, sourceIsProcfs: sourceIsProcfs) {
            throw SysError("\(m.destination) resolves to \(inside), where only procfs may be mounted", errno: EPERM)
        }
    }

    /// MS_BIND|MS_REMOUNT with `requested` flags on the mount at `target`;
    /// on EPERM (flags locked in a user namespace) again with the mount's
    /// current flags that were not explicitly cleared, as runc does.
    func remountBind(_ target: String, requested: UInt, cleared: UInt, what: String) throws {
        let first = Rootfs.bindRemountFlags(requested: requested, cleared: cleared, current: nil)
        if sysMount(nil, target, nil, first) == 0 { return }
        var e = errno
        if e == EPERM, let st = statFS(target) {
            let again = Rootfs.bindRemountFlags(requested: requested, cleared: cleared,
                                                current: Rootfs.msFlags(statfsFlags: st.flags))
            if again != first {
                if sysMount(nil, target, nil, again) == 0 { return }
                e = errno
            }
        }
        throw SysError(what, errno: e)
    }

    /// After a mount at `m.destination`: its propagation and recursive attributes.
    func finishMount(_ m: PlannedMount) throws {
        guard !m.options.propagation.isEmpty || m.options.hasRecursiveAttributes else { return }
        let fd = open(m.destination, O_PATH_)
        try check(fd, "open \(m.destination)")
        defer { close(fd) }
        for p in m.options.propagation {
            try check(sysMount(nil, fdPath(fd), nil, p), "set propagation of \(m.destination)")
        }
        if m.options.hasRecursiveAttributes {
            try check(mc_mount_setattr(fd, "", UInt32(AT_EMPTY_PATH_) | AT_RECURSIVE_, m.options.recursiveSet,
                                       m.options.recursiveClear, 0),
                      "set recursive mount attributes of \(m.destination)")
        }
    }

    // MARK: spec mounts

    func perform(_ m: PlannedMount, cgroupNamespace: Bool) throws {
        try step(m.label) {
            if m.idmapped { throw SysError("idmapped mounts are not supported", errno: EOPNOTSUPP) }
            switch m.kind {
            case .bind: try bind(m)
            case .cgroup: try cgroup(m, cgroupNamespace: cgroupNamespace)
            case .filesystem(let type): try filesystem(m, type: type)
            }
            try finishMount(m)
        }
    }

    func bind(_ m: PlannedMount) throws {
        let src = Glibc.open(m.source, O_PATH_ | O_CLOEXEC)
        try check(src, m.label)
        defer { close(src) }
        var st = stat()
        try check(fstat(src, &st), "stat \(m.source)")
        let dst = try mountPoint(m.destination, directory: st.st_mode & S_IFMT == S_IFDIR)
        defer { close(dst) }
        try checkProcDestination(dst, m, sourceIsProcfs: statFS(fdPath(src))?.type == PROC_SUPER_MAGIC)
        try check(sysMount(fdPath(src), fdPath(dst), nil, MS.bind | (m.options.flags & MS.rec)), m.label)
        if m.options.needsBindRemount {
            let top = open(m.destination, O_PATH_)
            try check(top, "open \(m.destination)")
            defer { close(top) }
            try remountBind(fdPath(top), requested: m.options.flags, cleared: m.options.clearedFlags,
                            what: "remount \(m.destination)")
        }
    }

    /// Hosts paths bound instead when a filesystem cannot be mounted in a
    /// user namespace (sysfs without a network namespace of our own, as runc).
    static let userNamespaceFallback = ["sysfs": "/sys", "mqueue": "/dev/mqueue"]

    func filesystem(_ m: PlannedMount, type: String) throws {
        let dst = try mountPoint(m.destination, directory: true)
        defer { close(dst) }
        try checkProcDestination(dst, m)
        let copyUp = m.options.extensions.contains("tmpcopyup") && type == "tmpfs"
        let flags = m.options.flags & ~(MS.propagationMask | MS.bind | MS.rec)
        var under: Int32 = -1
        if copyUp {
            under = Glibc.openat(dst, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            try check(under, "open \(m.destination)")
        }
        defer { if under >= 0 { close(under) } }
        // A read-only tmpfs to copy into is mounted writable and made read-only after the copy.
        let mountFlags = copyUp ? flags & ~MS.rdonly : flags
        var mounted = sysMount(m.source, fdPath(dst), type, mountFlags, m.options.data) == 0
        var e = errno
        if !mounted, e == EINVAL, type == "devpts", inUserNamespace {
            // gid=5 is not mapped in this user namespace: devpts without it, as crun does.
            let data = m.options.data.split(separator: ",").filter { !$0.hasPrefix("gid=") }.joined(separator: ",")
            if data != m.options.data {
                mounted = sysMount(m.source, fdPath(dst), type, mountFlags, data) == 0
                e = errno
            }
        }
        if !mounted {
            guard inUserNamespace, e == EPERM || e == EBUSY, let host = Setup.userNamespaceFallback[type] else {
                throw SysError(m.label, errno: e)
            }
            try bindFallback(host: host, onto: dst, m)
        }
        if copyUp {
            let top = open(m.destination, O_RDONLY | O_DIRECTORY)
            try check(top, "open \(m.destination)")
            defer { close(top) }
            try Setup.copyTree(from: under, to: top, path: m.destination)
            if flags & MS.rdonly != 0 {
                try remountBind(fdPath(top), requested: flags, cleared: m.options.clearedFlags,
                                what: "remount \(m.destination) read-only")
            }
        }
    }

    /// rbind of a host path in place of a filesystem the kernel refused, with
    /// the flags asked for applied to it and every mount below it.
    func bindFallback(host: String, onto dst: Int32, _ m: PlannedMount) throws {
        let src = Glibc.open(host, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        try check(src, "open \(host)")
        defer { close(src) }
        try check(sysMount(fdPath(src), fdPath(dst), nil, MS.bind | MS.rec), "bind \(host) on \(m.destination)")
        let top = open(m.destination, O_PATH_)
        try check(top, "open \(m.destination)")
        defer { close(top) }
        try remountBind(fdPath(top), requested: m.options.flags, cleared: m.options.clearedFlags,
                        what: "remount \(m.destination)")
        var set: UInt64 = 0
        for (f, a) in [(MS.rdonly, MountAttr.rdonly), (MS.nosuid, MountAttr.nosuid), (MS.nodev, MountAttr.nodev),
                       (MS.noexec, MountAttr.noexec)] where m.options.flags & f != 0 { set |= a }
        if set != 0 {
            try check(mc_mount_setattr(top, "", UInt32(AT_EMPTY_PATH_) | AT_RECURSIVE_, set, 0, 0),
                      "set recursive mount attributes of \(m.destination)")
        }
    }

    // MARK: cgroup

    func cgroup(_ m: PlannedMount, cgroupNamespace: Bool) throws {
        let dst = try mountPoint(m.destination, directory: true)
        defer { close(dst) }
        try checkProcDestination(dst, m)
        let flags = m.options.flags & ~(MS.propagationMask | MS.bind | MS.rec | MS.remount)
        if statFS("/sys/fs/cgroup")?.type == CGROUP2_SUPER_MAGIC {
            if sysMount("cgroup2", fdPath(dst), "cgroup2", flags, m.options.data) == 0 { return }
            let e = errno
            guard e == EPERM || e == EBUSY else { throw SysError(m.label, errno: e) }
            // No cgroup2 of our own (a user namespace without a cgroup namespace): the host's, bound.
            try bindHost("/sys/fs/cgroup", onto: dst, at: m.destination, flags: flags, cleared: m.options.clearedFlags)
            return
        }
        // v1 or hybrid: a tmpfs holding one directory per host hierarchy.
        try check(sysMount("tmpfs", fdPath(dst), "tmpfs", flags & ~MS.rdonly, "mode=755"), m.label)
        let top = open(m.destination, O_PATH_ | O_DIRECTORY)
        try check(top, "open \(m.destination)")
        defer { close(top) }
        let hierarchies = Rootfs.cgroupHierarchies(mountInfo: MountInfo.parse(try FS.readBytes("/proc/self/mountinfo")),
                                                   procCgroup: Rootfs.parseProcCgroup(try FS.readString("/proc/self/cgroup")))
        for h in hierarchies {
            let path = m.destination + "/" + h.name
            try check(mkdirat(top, h.name, 0o755), "mkdir \(path)")
            let sub = openat(top, h.name, O_PATH_ | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            try check(sub, "open \(path)")
            defer { close(sub) }
            if cgroupNamespace {
                // Our own view: a fresh mount of the same hierarchy is rooted at the namespace's cgroup.
                if sysMount(h.fsType, fdPath(sub), h.fsType, flags, h.data) == 0 { continue }
                let e = errno
                guard e == EPERM || e == EBUSY || e == EACCES else {
                    throw SysError("mount \(h.fsType) \(h.name) on \(path)", errno: e)
                }
            }
            try bindHost(h.hostPath, onto: sub, at: path, flags: flags, cleared: m.options.clearedFlags)
        }
        for l in Rootfs.cgroupSymlinks(hierarchies) {
            if symlinkat(l.target, top, l.link) != 0 && errno != EEXIST {
                try check(-1, "symlink \(m.destination)/\(l.link)")
            }
        }
        if flags & MS.rdonly != 0 {
            try remountBind(fdPath(top), requested: flags, cleared: m.options.clearedFlags,
                            what: "remount \(m.destination) read-only")
        }
    }

    /// Binds a host directory onto `dst` (container path `at`), then applies `flags`.
    func bindHost(_ host: String, onto dst: Int32, at: String, flags: UInt, cleared: UInt) throws {
        let src = Glibc.open(host, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        try check(src, "open \(host)")
        defer { close(src) }
        try check(sysMount(fdPath(src), fdPath(dst), nil, MS.bind | MS.rec), "bind \(host) on \(at)")
        guard flags & MS.perMountMask != 0 else { return }
        let top = open(at, O_PATH_)
        try check(top, "open \(at)")
        defer { close(top) }
        try remountBind(fdPath(top), requested: flags, cleared: cleared, what: "remount \(at)")
    }

    // MARK: devices

    func createDevice(_ n: DeviceNode) throws {
        let (parent, name) = Rootfs.splitPath(n.path)
        let dir = try mkdirAll(parent)
        defer { close(dir) }
        if mknodat(dir, name, n.fileType | n.mode, dev_t(Rootfs.makedev(n.major, n.minor))) != 0 {
            let e = errno
            if e == EEXIST { return }
            guard e == EPERM, n.fileType != DeviceNode.fifoType else { throw SysError("mknod \(n.path)", errno: e) }
            // No CAP_MKNOD here (a user namespace): bind the host's node onto an empty file.
            let src = Glibc.open(n.path, O_PATH_ | O_CLOEXEC)
            try check(src, "open host device \(n.path)")
            defer { close(src) }
            let f = openat(dir, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0)
            try check(f, "create \(n.path)")
            defer { close(f) }
            try check(sysMount(fdPath(src), fdPath(f), nil, MS.bind), "bind host device \(n.path)")
            return
        }
        try check(fchownat(dir, name, n.uid, n.gid, AT_SYMLINK_NOFOLLOW), "chown \(n.path)")
    }

    // MARK: tmpcopyup

    /// Copies the tree under `from` into `to` (both directory descriptors):
    /// directories, regular files, symlinks and special files, with owner and mode.
    static func copyTree(from: Int32, to: Int32, path: String) throws {
        let d = dup(from)
        try check(d, "dup \(path)")
        guard let dir = fdopendir(d) else { let e = errno; close(d); throw SysError("opendir \(path)", errno: e) }
        defer { closedir(dir) }
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: &ent.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name == "." || name == ".." { continue }
            let p = path + "/" + name
            var st = stat()
            try check(fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW), "stat \(p)")
            let perm = st.st_mode & 0o7777
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try check(mkdirat(to, name, 0o700), "mkdir \(p)")
                let s = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                try check(s, "open \(p)")
                defer { close(s) }
                let t = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                try check(t, "open \(p)")
                defer { close(t) }
                try copyTree(from: s, to: t, path: p)
                try check(fchown(t, st.st_uid, st.st_gid), "chown \(p)")
                try check(fchmod(t, perm), "chmod \(p)")
            case S_IFREG:
                let s = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                try check(s, "open \(p)")
                defer { close(s) }
                let t = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                try check(t, "create \(p)")
                defer { close(t) }
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buf.withUnsafeMutableBytes { read(s, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    try check(n < 0 ? -1 : 0, "read \(p)")
                    if n == 0 { break }
                    try FS.writeAll(fd: t, Array(buf[0..<n]), what: "write \(p)")
                }
                try check(fchown(t, st.st_uid, st.st_gid), "chown \(p)")
                try check(fchmod(t, perm), "chmod \(p)")
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(from, name, &buf, buf.count - 1)
                try check(n < 0 ? -1 : 0, "readlink \(p)")
                let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                try check(symlinkat(target, to, name), "symlink \(p)")
                try check(fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW), "chown \(p)")
            default:
                try check(mknodat(to, name, st.st_mode, st.st_rdev), "mknod \(p)")
                try check(fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW), "chown \(p)")
            }
        }
    }
}
