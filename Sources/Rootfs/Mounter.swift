import CShim
import Glibc
import Spec
import Sys

// The half of the filesystem setup that makes system calls. Every path a
// container controls is resolved inside the root with openat2(RESOLVE_IN_ROOT),
// once: mounts then go by file descriptor. A new filesystem is made detached
// (fsopen, fsconfig, fsmount), a bind is a detached copy (open_tree), set up
// while nothing can see it and attached with move_mount onto the target's
// descriptor; what follows (a remount, propagation) uses the descriptor of
// the new mount itself, never the path again, so a symlink in the image or a
// rename raced from a shared volume cannot send a mount (or mkdir, mknod)
// outside the root or onto another file. Before pivot_root, mount(2) calls
// name descriptors as /proc/self/fd/N: that /proc is the host's, in a mount
// namespace nothing of the container runs in. After it (masked and
// read-only paths) nothing goes through the container's /proc.

func fdPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

/// fstatfs(2): (filesystem magic, ST_* flags), or nil.
func fstatFS(_ fd: Int32) -> (type: UInt64, flags: UInt64)? {
    var t: UInt64 = 0, f: UInt64 = 0
    return mc_fstatfs(fd, &t, &f) == 0 ? (t, f) : nil
}

/// A detached copy of the mount `fd` is on, from `fd`'s place in it (a
/// bind; with `recursive` the mounts below too): open_tree(OPEN_TREE_CLONE).
func cloneTree(_ fd: Int32, recursive: Bool, what: @autoclosure () -> String) throws -> Int32 {
    let flags = Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC | Kernel.AT_EMPTY_PATH | (recursive ? Kernel.AT_RECURSIVE : 0)
    let tree = mc_open_tree(fd, "", flags)
    try check(tree, what())
    return tree
}

/// Attaches the detached mount `tree` on top of what `target` is
/// (move_mount between two descriptors: no path is looked up).
func attach(_ tree: Int32, onto target: Int32, what: @autoclosure () -> String) throws {
    try check(mc_move_mount(tree, "", target, "", Kernel.MOVE_MOUNT_F_EMPTY_PATH | Kernel.MOVE_MOUNT_T_EMPTY_PATH), what())
}

/// mount_setattr(2) on the mount `fd` is the root of.
func setAttributes(_ fd: Int32, set: UInt64, clear: UInt64 = 0, recursive: Bool = false,
                   what: @autoclosure () -> String) throws {
    try check(mc_mount_setattr(fd, "", Kernel.AT_EMPTY_PATH | (recursive ? Kernel.AT_RECURSIVE : 0), set, clear, 0), what())
}

/// A new filesystem, not yet attached anywhere.
enum NewMount {
    /// The detached mount's descriptor (from fsmount).
    case detached(Int32)
    /// Only mount(2) can do this one: flags fsconfig has no key for
    /// (remount, mand, acl, iversion), or no fsopen (ENOSYS, or EPERM from a
    /// seccomp filter: root may always call it otherwise).
    case legacy
    /// The kernel refused it, with this errno.
    case failed(Int32)
}

/// fsopen(`type`), its source, superblock flags and `data` options one by
/// one (key=value, or a flag), FSCONFIG_CMD_CREATE, then fsmount with the
/// per-mount flags: the same checks as mount(2) would make, and the same
/// superblock, but the mount is the caller's alone until it is attached.
func newMount(type: String, source: String, flags: UInt, data: String) -> NewMount {
    guard let keys = Rootfs.superblockKeys(flags) else { return .legacy }
    // tmpfs reads commas inside an mpol= node list from a whole data string only.
    if type == "tmpfs" && data.holdsBytes("mpol=") { return .legacy }
    let fs = mc_fsopen(type, Kernel.FSOPEN_CLOEXEC)
    if fs < 0 {
        let e = errno
        return e == ENOSYS || e == EPERM ? .legacy : .failed(e)
    }
    defer { close(fs) }
    func config(_ cmd: UInt32, _ key: String?, _ value: String?) -> Bool {
        withOptionalCString(key) { k in withOptionalCString(value) { v in mc_fsconfig(fs, cmd, k, v, 0) == 0 } }
    }
    if !source.isEmpty, !config(Kernel.FSCONFIG_SET_STRING, "source", source) { return .failed(errno) }
    for k in keys where !config(Kernel.FSCONFIG_SET_FLAG, k, nil) { return .failed(errno) }
    for p in Rootfs.fsParameters(data) {
        if !(p.value == nil ? config(Kernel.FSCONFIG_SET_FLAG, p.key, nil) : config(Kernel.FSCONFIG_SET_STRING, p.key, p.value)) {
            return .failed(errno)
        }
    }
    if !config(Kernel.FSCONFIG_CMD_CREATE, nil, nil) { return .failed(errno) }
    let m = mc_fsmount(fs, Kernel.FSMOUNT_CLOEXEC, UInt32(Rootfs.mountAttributes(flags)))
    return m >= 0 ? .detached(m) : .failed(errno)
}

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
    /// Read when first needed, before pivot_root (the host's /proc).
    lazy var inUserNamespace: Bool =
        !Rootfs.isInitialIDMap((try? FS.readString("/proc/self/uid_map")) ?? "0 0 4294967295")
    /// The container's /dev/null, checked to be the null device, once a masked file needs it.
    var null: Int32 = -1
    /// The cgroup mounts of our mount namespace, when the runtime read them
    /// already (the init's namespace is a copy of its): else mountinfo is read.
    var cgroupMounts: [CgroupHierarchy]?

    init(rootPath: String) throws {
        let fd = Glibc.open(rootPath, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
        try check(fd, "open root \(rootPath)")
        root = fd
        self.rootPath = rootPath
    }

    deinit {
        close(root)
        if null >= 0 { close(null) }
    }

    /// openat2 of a container path inside the root; -1 with errno on failure.
    /// `resolve` adds RESOLVE_* flags (RESOLVE_NO_SYMLINKS).
    func open(_ path: String, _ flags: Int32, mode: mode_t = 0, resolve: UInt64 = 0) -> Int32 {
        var rel = String(Path.clean(path).dropFirst())
        if rel.isEmpty { rel = "." }
        var tries = 0
        while true {
            let fd = mc_openat2(root, rel, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), UInt64(mode),
                                Kernel.RESOLVE_IN_ROOT | Kernel.RESOLVE_NO_MAGICLINKS | resolve)
            // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
            if fd < 0 && (errno == EAGAIN || errno == EINTR) && tries < 64 { tries += 1; continue }
            return fd
        }
    }

    /// mkdir -p inside the root (mode 0755 by default); returns an O_PATH
    /// descriptor of the directory. A dangling symlink on the way is
    /// followed inside the root and its target created, as runc's securejoin;
    /// with `noSymlinks` any symlink on the way fails with ELOOP instead.
    func mkdirAll(_ path: String, mode: mode_t = 0o755, noSymlinks: Bool = false, depth: Int = 0) throws -> Int32 {
        let clean = Path.clean(path)
        let resolve = noSymlinks ? Kernel.RESOLVE_NO_SYMLINKS : 0
        let fd = open(clean, Kernel.O_PATH | O_DIRECTORY, resolve: resolve)
        if fd >= 0 { return fd }
        if errno != ENOENT { try check(-1, "mkdir \(clean)") }
        var cur = open("/", Kernel.O_PATH | O_DIRECTORY)
        try check(cur, "open root \(rootPath)")
        var prefix = ""
        let comps = Path.components(clean)
        for (i, c) in comps.enumerated() {
            let parent = prefix
            prefix += "/" + c
            var next = open(prefix, Kernel.O_PATH | O_DIRECTORY, resolve: resolve)
            if next < 0 && errno == ENOENT {
                if mkdirat(cur, c, mode) != 0 {
                    let e = errno
                    if e == EEXIST, let target = readLinkAt(cur, c) {
                        close(cur)
                        guard !noSymlinks, depth < 40 else { throw SysError("mkdir \(prefix)", errno: ELOOP) }
                        // A dangling symlink: create where it points, inside the root.
                        let base = Path.isAbsolute(target) ? target : parent + "/" + target
                        let rest = comps[(i + 1)...].joined(separator: "/")
                        return try mkdirAll(base + "/" + rest, mode: mode, depth: depth + 1)
                    }
                    if e != EEXIST {
                        close(cur)
                        throw SysError("mkdir \(prefix)", errno: e)
                    }
                }
                next = open(prefix, Kernel.O_PATH | O_DIRECTORY, resolve: resolve)
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
        var fd = open(path, Kernel.O_PATH)
        if fd >= 0 { return fd }
        if errno != ENOENT { try check(-1, "open \(path)") }
        let (parent, name) = Path.split(Path.clean(path))
        let dir = try mkdirAll(parent)
        defer { close(dir) }
        let f = openat(dir, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if f < 0 && errno == ELOOP, let target = readLinkAt(dir, name), depth < 40 {
            // A dangling symlink: the file goes where it points, inside the root.
            return try mountPoint(Path.isAbsolute(target) ? target : parent + "/" + target, directory: false,
                                  depth: depth + 1)
        }
        try check(f, "create \(path)")
        close(f)
        fd = open(path, Kernel.O_PATH)
        try check(fd, "open \(path)")
        return fd
    }

    /// The mount point of a kernel filesystem that the runtime (and the
    /// container's LSM labels) go on to trust, proc and sysfs: a directory,
    /// created when missing, reached without any symlink (CVE-2019-19921: a
    /// /proc that is a symlink into a volume lets the image swap in a fake).
    func kernelFSMountPoint(_ path: String) throws -> Int32 {
        do {
            return try mkdirAll(path, noSymlinks: true)
        } catch let e as SysError where e.errno == ELOOP {
            let parent = Path.split(Path.clean(path)).parent
            let p = open(parent, Kernel.O_PATH | O_DIRECTORY, resolve: Kernel.RESOLVE_NO_SYMLINKS)
            if p >= 0 { close(p) }
            throw SysError(p >= 0 ? "destination is a symlink" : "destination resolves through a symlink", errno: ELOOP)
        } catch let e as SysError where e.errno == ENOTDIR || e.errno == EEXIST {
            throw SysError("destination is not a directory", errno: ENOTDIR)
        }
    }

    /// The path of `fd` inside the root, or nil when it is not inside it.
    func containerPath(of fd: Int32) -> String? {
        guard let p = readLink(fdPath(fd)) else { return nil }
        if rootPath == "/" { return p }
        if p == rootPath { return "/" }
        return Path.isWithin(p, rootPath) ? Path.dropPrefix(rootPath, of: p) : nil
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

    /// After a mount at `m.destination` (`fd` is the new mount itself): its
    /// propagation and recursive attributes.
    func finishMount(_ m: PlannedMount, _ fd: Int32) throws {
        for p in m.options.propagation {
            try check(sysMount(nil, fdPath(fd), nil, p), "set propagation of \(m.destination)")
        }
        if m.options.hasRecursiveAttributes {
            try setAttributes(fd, set: m.options.recursiveSet, clear: m.options.recursiveClear, recursive: true,
                              what: "set recursive mount attributes of \(m.destination)")
        }
    }

    // MARK: spec mounts

    /// Performs one spec mount; an idmapped one (`m.idmapped`) attaches
    /// `idmappedTree`, the runtime's detached copy of its source (IDMap.swift),
    /// which it consumes, and gives it `propagation`, the root's.
    func perform(_ m: PlannedMount, cgroupNamespace: Bool, idmappedTree: Int32? = nil, propagation: UInt = 0) throws {
        if !m.idmapped, let t = idmappedTree { close(t) }
        try step(m.label) {
            let fd: Int32
            switch m.kind {
            case .bind where m.idmapped:
                guard let tree = idmappedTree else {
                    throw SysError("the runtime made no idmapped copy of \(m.source)", errno: EINVAL)
                }
                fd = try bind(m, idmappedTree: tree, propagation: propagation)
            case _ where m.idmapped:
                if let t = idmappedTree { close(t) }
                throw SysError("only bind mounts can be idmapped", errno: EINVAL)
            case .bind: fd = try bind(m)
            case .cgroup: fd = try cgroup(m, cgroupNamespace: cgroupNamespace)
            case .filesystem(let type): fd = try filesystem(m, type: type)
            }
            defer { close(fd) }
            try finishMount(m, fd)
        }
    }

    /// Returns the new mount's descriptor. The mount is a detached copy of
    /// the source made here (open_tree), or `idmappedTree`, the one the
    /// runtime made and idmapped (consumed: closed on failure), which then
    /// gets `propagation` (with MS_REC) once attached: it was cloned in this
    /// mount namespace before the root's propagation was set, so may still
    /// be a peer of the host's mount (a container without a user namespace),
    /// where a copy made now would be the root's kind (rslave by default).
    func bind(_ m: PlannedMount, idmappedTree: Int32? = nil, propagation: UInt = 0) throws -> Int32 {
        var tree = idmappedTree ?? -1
        do {
            let src = tree >= 0 ? tree : Glibc.open(m.source, Kernel.O_PATH | O_CLOEXEC)
            try check(src, m.label)
            defer { if src != tree { close(src) } }
            var st = stat()
            try check(fstat(src, &st), "stat \(m.source)")
            let directory = st.st_mode & S_IFMT == S_IFDIR
            let srcType = fstatFS(src)?.type
            // A procfs or sysfs bound in (rootless, --pid=host) is held to what a mount of one is.
            let kernelFS = directory && (srcType == Kernel.PROC_SUPER_MAGIC || srcType == Kernel.SYSFS_MAGIC)
            let dst = kernelFS ? try kernelFSMountPoint(m.destination) : try mountPoint(m.destination, directory: directory)
            defer { close(dst) }
            try checkProcDestination(dst, m, sourceIsProcfs: srcType == Kernel.PROC_SUPER_MAGIC)
            if tree < 0 { tree = try cloneTree(src, recursive: m.options.flags & MS.rec != 0, what: m.label) }
            try attach(tree, onto: dst, what: m.label)
            if idmappedTree != nil && propagation != 0 {
                try check(sysMount(nil, fdPath(tree), nil, propagation | MS.rec), "set propagation of \(m.destination)")
            }
            if m.options.needsBindRemount {
                try remountBind(fdPath(tree), requested: m.options.flags, cleared: m.options.clearedFlags,
                                what: "remount \(m.destination)")
            }
            return tree
        } catch {
            if tree >= 0 { close(tree) }
            throw error
        }
    }

    /// Hosts paths bound instead when a filesystem cannot be mounted in a
    /// user namespace (sysfs without a network namespace of our own, as runc).
    static let userNamespaceFallback = ["sysfs": "/sys", "mqueue": "/dev/mqueue"]

    /// Returns the new mount's descriptor.
    func filesystem(_ m: PlannedMount, type: String) throws -> Int32 {
        let kernelFS = type == "proc" || type == "sysfs"
        let dst = kernelFS ? try kernelFSMountPoint(m.destination) : try mountPoint(m.destination, directory: true)
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
        var data = m.options.data
        while true {
            do {
                let fd = try mountFilesystem(type: type, source: m.source, flags: flags, data: data, onto: dst,
                                             at: m.destination, what: m.label, copyFrom: under,
                                             cleared: m.options.clearedFlags)
                if type == "proc" { try verifyProc(fd, m) }
                return fd
            } catch let e as SysError {
                if e.errno == EINVAL, type == "devpts", data == m.options.data, inUserNamespace {
                    // gid=5 is not mapped in this user namespace: devpts without it, as crun does.
                    let without = data.utf8.split(separator: UInt8(ascii: ",")).filter { !$0.starts(with: "gid=".utf8) }
                        .map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")
                    if without != data { data = without; continue }
                }
                guard inUserNamespace, e.errno == EPERM || e.errno == EBUSY,
                      let host = Setup.userNamespaceFallback[type] else { throw e }
                return try bindFallback(host: host, onto: dst, m)
            }
        }
    }

    /// Mounts a new `type` filesystem on `dst` (container path `path`) and
    /// returns the descriptor of the new mount. With the new mount API the
    /// mount is made detached, filled from `under` (tmpcopyup) and, when
    /// `flags` ask for it, made read-only after that, then attached; no path
    /// is looked up again. Where only mount(2) can do it (NewMount.legacy),
    /// the mount goes onto /proc/self/fd/N and the path is opened again.
    func mountFilesystem(type: String, source: String, flags: UInt, data: String, onto dst: Int32, at path: String,
                         what: String, copyFrom under: Int32 = -1, cleared: UInt = 0) throws -> Int32 {
        // A read-only tmpfs to copy into is mounted writable and made read-only after the copy.
        let copy = under >= 0
        let mountFlags = copy ? flags & ~MS.rdonly : flags
        switch newMount(type: type, source: source, flags: mountFlags, data: data) {
        case .detached(let fd):
            do {
                if copy {
                    let top = Glibc.openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    try check(top, "open \(path)")
                    defer { close(top) }
                    try Setup.copyTree(from: under, to: top, path: path)
                    if flags & MS.rdonly != 0 {
                        try setAttributes(fd, set: Kernel.MOUNT_ATTR_RDONLY, what: "remount \(path) read-only")
                    }
                }
                try attach(fd, onto: dst, what: what)
            } catch {
                close(fd)
                throw error
            }
            return fd
        case .failed(let e):
            throw SysError(what, errno: e)
        case .legacy:
            try check(sysMount(source, fdPath(dst), type, mountFlags, data), what)
            let top = open(path, O_RDONLY | O_DIRECTORY)
            try check(top, "open \(path)")
            do {
                if copy {
                    try Setup.copyTree(from: under, to: top, path: path)
                    if flags & MS.rdonly != 0 {
                        try remountBind(fdPath(top), requested: flags, cleared: cleared,
                                        what: "remount \(path) read-only")
                    }
                }
            } catch {
                close(top)
                throw error
            }
            return top
        }
    }

    /// After procfs is mounted: what the destination now leads to (without
    /// a symlink) must be that procfs, the root of it.
    func verifyProc(_ fd: Int32, _ m: PlannedMount) throws {
        let again = open(m.destination, Kernel.O_PATH | O_DIRECTORY, resolve: Kernel.RESOLVE_NO_SYMLINKS)
        try check(again, "open \(m.destination)")
        defer { close(again) }
        var a = stat(), b = stat()
        guard fstatFS(again)?.type == Kernel.PROC_SUPER_MAGIC, fstat(again, &a) == 0, fstat(fd, &b) == 0,
              a.st_dev == b.st_dev, a.st_ino == b.st_ino else {
            throw SysError("\(m.destination) is not the procfs just mounted", errno: EXDEV)
        }
    }

    /// rbind of a host path in place of a filesystem the kernel refused, with
    /// the flags asked for applied to it and every mount below it. Returns
    /// the new mount's descriptor.
    func bindFallback(host: String, onto dst: Int32, _ m: PlannedMount) throws -> Int32 {
        let top = try bindHost(host, onto: dst, at: m.destination, flags: m.options.flags,
                               cleared: m.options.clearedFlags, always: true)
        var set: UInt64 = 0
        for (f, a) in [(MS.rdonly, Kernel.MOUNT_ATTR_RDONLY), (MS.nosuid, Kernel.MOUNT_ATTR_NOSUID), (MS.nodev, Kernel.MOUNT_ATTR_NODEV),
                       (MS.noexec, Kernel.MOUNT_ATTR_NOEXEC)] where m.options.flags & f != 0 { set |= a }
        if set != 0 {
            do {
                try setAttributes(top, set: set, recursive: true, what: "set recursive mount attributes of \(m.destination)")
            } catch {
                close(top)
                throw error
            }
        }
        return top
    }

    // MARK: cgroup

    /// Returns the new mount's descriptor.
    func cgroup(_ m: PlannedMount, cgroupNamespace: Bool) throws -> Int32 {
        let dst = try mountPoint(m.destination, directory: true)
        defer { close(dst) }
        try checkProcDestination(dst, m)
        let flags = m.options.flags & ~(MS.propagationMask | MS.bind | MS.rec | MS.remount)
        if statFS("/sys/fs/cgroup")?.type == Kernel.CGROUP2_SUPER_MAGIC {
            do {
                return try mountFilesystem(type: "cgroup2", source: "cgroup2", flags: flags, data: m.options.data,
                                           onto: dst, at: m.destination, what: m.label)
            } catch let e as SysError where e.errno == EPERM || e.errno == EBUSY {
                // No cgroup2 of our own (a user namespace without a cgroup namespace): the host's, bound.
                return try bindHost("/sys/fs/cgroup", onto: dst, at: m.destination, flags: flags,
                                    cleared: m.options.clearedFlags)
            }
        }
        // v1 or hybrid: a tmpfs holding one directory per host hierarchy.
        let top = try mountFilesystem(type: "tmpfs", source: "tmpfs", flags: flags & ~MS.rdonly, data: "mode=755",
                                      onto: dst, at: m.destination, what: m.label)
        do {
            try cgroupHierarchies(m, top: top, flags: flags, cgroupNamespace: cgroupNamespace)
        } catch {
            close(top)
            throw error
        }
        return top
    }

    func cgroupHierarchies(_ m: PlannedMount, top: Int32, flags: UInt, cgroupNamespace: Bool) throws {
        // mountinfo grows with every mount on the host (200 containers'
        // overlays: 80 KB, 2 ms to read): read it only when nobody did.
        let mounts = try cgroupMounts ?? CgroupHierarchy.all(in: MountInfo.parse(try FS.readBytes("/proc/self/mountinfo")))
        let hierarchies = Rootfs.cgroupHierarchies(mounts: mounts,
                                                   procCgroup: Rootfs.parseProcCgroup(try FS.readString("/proc/self/cgroup")))
        for h in hierarchies {
            let path = m.destination + "/" + h.name
            try check(mkdirat(top, h.name, 0o755), "mkdir \(path)")
            let sub = openat(top, h.name, Kernel.O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            try check(sub, "open \(path)")
            defer { close(sub) }
            if cgroupNamespace {
                // Our own view: a fresh mount of the same hierarchy is rooted at the namespace's cgroup.
                let type = h.hierarchy.fsType
                if sysMount(type, fdPath(sub), type, flags, h.hierarchy.mountData) == 0 { continue }
                let e = errno
                guard e == EPERM || e == EBUSY || e == EACCES else {
                    throw SysError("mount \(type) \(h.name) on \(path)", errno: e)
                }
            }
            close(try bindHost(h.hostPath, onto: sub, at: path, flags: flags, cleared: m.options.clearedFlags))
        }
        for l in Rootfs.cgroupSymlinks(names: hierarchies.map { $0.name }) {
            if symlinkat(l.target, top, l.link) != 0 && errno != EEXIST {
                try check(-1, "symlink \(m.destination)/\(l.link)")
            }
        }
        if flags & MS.rdonly != 0 {
            try remountBind(fdPath(top), requested: flags, cleared: m.options.clearedFlags,
                            what: "remount \(m.destination) read-only")
        }
    }

    /// Binds a host directory onto `dst` (container path `at`), then applies
    /// `flags` (with `always`, a remount even when no per-mount flag is
    /// asked). Returns the new mount's descriptor.
    func bindHost(_ host: String, onto dst: Int32, at: String, flags: UInt, cleared: UInt,
                  always: Bool = false) throws -> Int32 {
        let src = Glibc.open(host, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
        try check(src, "open \(host)")
        defer { close(src) }
        let tree = try cloneTree(src, recursive: true, what: "bind \(host) on \(at)")
        do {
            try attach(tree, onto: dst, what: "bind \(host) on \(at)")
            if always || flags & MS.perMountMask != 0 {
                try remountBind(fdPath(tree), requested: flags, cleared: cleared, what: "remount \(at)")
            }
        } catch {
            close(tree)
            throw error
        }
        return tree
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
            let src = Glibc.open(n.path, Kernel.O_PATH | O_CLOEXEC)
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
        guard let entries = FS.directoryEntries(fd: d) else { throw SysError("opendir \(path)") }
        for ent in entries {
            let name = ent.name
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
