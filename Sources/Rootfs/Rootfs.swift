// Rootfs: the container filesystem (mount plan, devices, pivot_root, masked and read-only paths).
//
// Called by the container's init, as root in its new namespaces, in order:
// prepare (before pivot_root), pivot, then finalize (after sysctls are written).
// The pure parts (option parsing, the mount plan, /proc parsers) are in
// Options.swift and Plan.swift; the system calls in Mounter.swift.

import CShim
import Glibc
import Spec
import Sys

public enum Rootfs {
    /// In the new mount namespace, before pivot_root: makes / rslave (or as
    /// `linux.rootfsPropagation` says), the mount holding the rootfs private,
    /// bind-mounts the rootfs onto itself (MS_BIND|MS_REC), performs every
    /// spec mount in order under it, then creates the default devices and the
    /// /dev symlinks (unless /dev is a bind mount), then `linux.devices`.
    /// `rootfs` is the absolute host path of the root filesystem; `bundle` the
    /// absolute bundle directory (relative bind sources are relative to it).
    /// `idmappedTrees` are the runtime's idmapped copies of the sources of
    /// idmapped binds (IDMap.swift), by index in the spec's mounts; each is
    /// attached in its place, and closed.
    /// `overlay`: the root is that overlay, mounted here at `rootfs` (in our
    /// own mount namespace, after its propagation is set, so it never
    /// reaches the host's), in place of the bind mount of `rootfs` onto itself.
    public static func prepare(spec: Spec, rootfs: String, bundle: String, idmappedTrees: [Int: Int32] = [:],
                               overlay: (lower: [String], upper: String, work: String, userXattr: Bool)? = nil,
                               cgroupMounts: [CgroupHierarchy]? = nil) throws {
        var trees = idmappedTrees
        defer { for t in trees.values { close(t) } }
        try requireOwnMountNamespace()
        let (rootFlag, rootName) = try rootPropagation(spec, default: (MS.slave | MS.rec, "rslave"))
        try check(sysMount(nil, "/", nil, rootFlag), "set propagation of / to \(rootName)")

        guard let real = FS.realPath(rootfs) else { throw SysError("rootfs \(rootfs)") }
        try makeParentMountPrivate(real)
        if let o = overlay {
            try mountOverlay(lower: o.lower, upper: o.upper, work: o.work, target: real, userXattr: o.userXattr)
        } else {
            try check(sysMount(real, real, nil, MS.bind | MS.rec), "bind-mount rootfs \(real)")
        }

        let planned = plan(mounts: spec.mounts ?? [], bundle: bundle)
        let specDevices = try deviceNodes(spec.linux?.devices ?? [], defaults: false)
        let devSetup = needsDevSetup(planned)
        let cgroupNamespace = spec.linux?.namespaces?.contains { $0.type == "cgroup" } ?? false

        let setup = try Setup(rootPath: real)
        setup.cgroupMounts = cgroupMounts
        for (i, m) in planned.enumerated() {
            try setup.perform(m, cgroupNamespace: cgroupNamespace, idmappedTree: trees.removeValue(forKey: i),
                              propagation: rootFlag & MS.propagationMask)
        }

        let oldMask = umask(0)
        defer { umask(oldMask) }
        if devSetup {
            let specPaths = Set(specDevices.map { $0.path })
            for n in defaultDevices where !specPaths.contains(n.path) {
                try step("create device \(n.path)") { try setup.createDevice(n) }
            }
            try createDevSymlinks(setup)
        }
        for n in specDevices {
            try step("create device \(n.path)") { try setup.createDevice(n) }
        }
        if spec.process?.terminal == true {
            try step("create /dev/console") { try setup.createConsoleTarget() }
        }
    }

    /// pivot_root into `rootfs` the way runc does (pivot_root(".", "."), then
    /// a lazy unmount of the old root stacked on top), or with `noPivot`
    /// MS_MOVE onto / and chroot. Afterwards the current directory is "/".
    public static func pivot(rootfs: String, noPivot: Bool) throws {
        if noPivot {
            try check(chdir(rootfs), "chdir to \(rootfs)")
            try check(sysMount(rootfs, "/", nil, MS.move), "move \(rootfs) to /")
            try check(chroot("."), "chroot to \(rootfs)")
            try check(chdir("/"), "chdir to /")
            return
        }
        let oldRoot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC)
        try check(oldRoot, "open /")
        defer { close(oldRoot) }
        let newRoot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC)
        try check(newRoot, "open rootfs \(rootfs)")
        defer { close(newRoot) }
        try check(fchdir(newRoot), "chdir to \(rootfs)")
        try check(mc_pivot_root(".", "."), "pivot_root to \(rootfs)")
        // The old root is now stacked on the new one; "." is still it, but say so explicitly.
        try check(fchdir(oldRoot), "chdir to the old root")
        // rslave first, so that unmounting it cannot propagate to the host.
        try check(sysMount(nil, ".", nil, MS.slave | MS.rec), "make the old root rslave")
        try check(umount2(".", Int32(MNT_DETACH)), "unmount the old root")
        try check(chdir("/"), "chdir to /")
    }

    /// After pivot (and after sysctls): `linux.maskedPaths` (the container's
    /// /dev/null, checked to be the null device, bound over files, a
    /// read-only empty tmpfs over directories), `linux.readonlyPaths` (bound
    /// over themselves, the top mount made read-only, its other flags kept),
    /// missing ones skipped and symlinks refused; a read-only / when
    /// `root.readonly`, and last the propagation of `linux.rootfsPropagation`
    /// on /. Every mount here goes by descriptor: nothing is resolved through
    /// the container's /proc, which the image or its mounts may fake.
    public static func finalize(spec: Spec) throws {
        let setup = try Setup(rootPath: "/")
        for p in spec.linux?.maskedPaths ?? [] {
            try step("mask \(p)") { try setup.mask(p) }
        }
        for p in spec.linux?.readonlyPaths ?? [] {
            try step("make \(p) read-only") { try setup.makeReadonly(p) }
        }
        if spec.root?.readonly == true {
            try setAttributes(setup.root, set: Kernel.MOUNT_ATTR_RDONLY, what: "remount / read-only")
        }
        if let (flag, name) = try rootPropagation(spec, default: nil) {
            try check(sysMount(nil, "/", nil, flag), "set propagation of / to \(name)")
        }
    }

    // MARK: helpers

    static func rootPropagation(_ spec: Spec, default def: (UInt, String)?) throws -> (UInt, String)? {
        guard let name = spec.linux?.rootfsPropagation, !name.isEmpty else { return def }
        guard let flag = propagationFlag(name) else {
            throw SysError("linux.rootfsPropagation \"\(name)\"", errno: EINVAL)
        }
        return (flag, name)
    }

    static func rootPropagation(_ spec: Spec, default def: (UInt, String)) throws -> (UInt, String) {
        try rootPropagation(spec, default: Optional(def))!
    }

    /// Refuses to touch mounts from the host's mount namespace: the caller
    /// must have unshared one (the mounts below would otherwise be the host's).
    static func requireOwnMountNamespace() throws {
        if let mine = readLink("/proc/self/ns/mnt"), let pid1 = readLink("/proc/1/ns/mnt"), mine == pid1 {
            throw SysError("prepare rootfs: not in a mount namespace of its own", errno: EINVAL)
        }
    }

    /// Makes the mount holding `path` private, as runc's rootfsParentMountPrivate:
    /// pivot_root refuses a shared parent, and our bind of the rootfs must not
    /// propagate anywhere. EINVAL means `path` is not a mount point: go up.
    static func makeParentMountPrivate(_ path: String) throws {
        var p = path
        while true {
            if sysMount(nil, p, nil, MS.private) == 0 { return }
            let e = errno
            if e != EINVAL || p == "/" { throw SysError("make the mount holding \(path) private", errno: e) }
            p = splitPath(p).parent
        }
    }

    static func createDevSymlinks(_ setup: Setup) throws {
        let dev = try step("create /dev") { try setup.mkdirAll("/dev") }
        defer { close(dev) }
        for l in devSymlinks(hostHasKcore: access("/proc/kcore", F_OK) == 0) {
            let name = splitPath(l.link).name
            if symlinkat(l.target, dev, name) != 0 && errno != EEXIST { try check(-1, "symlink \(l.link)") }
        }
        if unlinkat(dev, "ptmx", 0) != 0 && errno != ENOENT { try check(-1, "remove /dev/ptmx") }
        try check(symlinkat("pts/ptmx", dev, "ptmx"), "symlink /dev/ptmx")
    }
}

extension Setup {
    /// The container's /dev/null, opened once: it must be the null device
    /// (character device 1:3) itself, not a symlink to one or anything else
    /// (CVE-2025-31133: a /dev/null swapped for a symlink to a procfs file
    /// would bind that file, writable, over a masked path).
    func nullDevice() throws -> Int32 {
        if null >= 0 { return null }
        let fd = open("/dev/null", Kernel.O_PATH | O_NOFOLLOW)
        try check(fd, "open /dev/null")
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFCHR, UInt64(st.st_rdev) == Rootfs.makedev(1, 3) else {
            close(fd)
            throw SysError("/dev/null is not the null device", errno: ENODEV)
        }
        null = fd
        return fd
    }

    /// The masked or read-only path `path` (after pivot_root): its O_PATH
    /// descriptor, resolved inside the root, or nil when it does not exist.
    /// A symlink there is refused: the mount would go on what it points to,
    /// which the image chooses, while the path itself stayed as it is; the
    /// kernel filesystems these paths are for (proc, sysfs) have none there.
    func maskTarget(_ path: String) throws -> Int32? {
        let fd = open(path, Kernel.O_PATH | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            try check(-1, "open \(path)")
        }
        var st = stat()
        if fstat(fd, &st) != 0 { let e = SysError("stat \(path)"); close(fd); throw e }
        if st.st_mode & S_IFMT == S_IFLNK {
            close(fd)
            throw SysError("\(path) is a symlink", errno: ELOOP)
        }
        return fd
    }

    /// Masks `path`: a directory with an empty read-only tmpfs, anything else
    /// with the container's /dev/null; both made and attached by descriptor
    /// (fsmount, open_tree, move_mount), nothing through /proc.
    func mask(_ path: String) throws {
        guard let fd = try maskTarget(path) else { return }
        defer { close(fd) }
        var st = stat()
        try check(fstat(fd, &st), "stat \(path)")
        let tree: Int32
        if st.st_mode & S_IFMT == S_IFDIR {
            switch newMount(type: "tmpfs", source: "tmpfs", flags: MS.rdonly | MS.nosuid | MS.nodev | MS.noexec, data: "") {
            case .detached(let m): tree = m
            case .failed(let e): throw SysError("mount tmpfs on \(path)", errno: e)
            case .legacy: throw SysError("mount tmpfs on \(path): fsopen", errno: ENOSYS)
            }
        } else {
            tree = try cloneTree(try nullDevice(), recursive: false, what: "bind /dev/null on \(path)")
        }
        defer { close(tree) }
        try attach(tree, onto: fd, what: st.st_mode & S_IFMT == S_IFDIR ? "mount tmpfs on \(path)" : "bind /dev/null on \(path)")
    }

    /// A read-only view of `path` over it: a recursive copy of its mounts,
    /// the top one made read-only (as runc's remount; every other flag kept),
    /// attached over the path by descriptor.
    func makeReadonly(_ path: String) throws {
        guard let fd = try maskTarget(path) else { return }
        defer { close(fd) }
        let tree = try cloneTree(fd, recursive: true, what: "bind \(path) on itself")
        defer { close(tree) }
        try setAttributes(tree, set: Kernel.MOUNT_ATTR_RDONLY, what: "remount \(path) read-only")
        try attach(tree, onto: fd, what: "bind \(path) on itself")
    }

    /// /dev/console's mount point for a container with a terminal: an empty
    /// file, made now (before / may become read-only) when there is none.
    /// What is there is checked when the terminal is bound on it (Console).
    func createConsoleTarget() throws {
        let dev = try mkdirAll("/dev")
        defer { close(dev) }
        let f = openat(dev, "console", O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        if f >= 0 { close(f); return }
        if errno != EEXIST { try check(-1, "create /dev/console") }
    }
}
