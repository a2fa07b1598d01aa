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
    public static func prepare(spec: Spec, rootfs: String, bundle: String) throws {
        try requireOwnMountNamespace()
        let (rootFlag, rootName) = try rootPropagation(spec, default: (MS.slave | MS.rec, "rslave"))
        try check(sysMount(nil, "/", nil, rootFlag), "set propagation of / to \(rootName)")

        guard let real = FS.realPath(rootfs) else { throw SysError("rootfs \(rootfs)") }
        try makeParentMountPrivate(real)
        try check(sysMount(real, real, nil, MS.bind | MS.rec), "bind-mount rootfs \(real)")

        let planned = plan(mounts: spec.mounts ?? [], bundle: bundle)
        let specDevices = try deviceNodes(spec.linux?.devices ?? [], defaults: false)
        let devSetup = needsDevSetup(planned)
        let cgroupNamespace = spec.linux?.namespaces?.contains { $0.type == "cgroup" } ?? false

        let setup = try Setup(rootPath: real)
        for m in planned {
            try setup.perform(m, cgroupNamespace: cgroupNamespace)
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

    /// After pivot (and after sysctls): `linux.maskedPaths` (/dev/null bound
    /// over files, a read-only empty tmpfs over directories; missing ones
    /// skipped), `linux.readonlyPaths` (bound over themselves and remounted
    /// read-only keeping nosuid/nodev/noexec; missing ones skipped), a
    /// read-only / when `root.readonly`, and last the propagation of
    /// `linux.rootfsPropagation` on /.
    public static func finalize(spec: Spec) throws {
        let setup = try Setup(rootPath: "/")
        for p in spec.linux?.maskedPaths ?? [] {
            try step("mask \(p)") { try setup.mask(p) }
        }
        for p in spec.linux?.readonlyPaths ?? [] {
            try step("make \(p) read-only") { try setup.makeReadonly(p) }
        }
        if spec.root?.readonly == true {
            try setup.remountBind("/", requested: MS.rdonly, cleared: 0, what: "remount / read-only")
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
    /// A path for mount(2) naming what `fd` is: /proc/self/fd/N when a procfs
    /// is mounted, else the plain path (no proc in the container).
    func target(_ fd: Int32, _ path: String) -> String {
        access("/proc/self/fd", F_OK) == 0 ? fdPath(fd) : Rootfs.cleanPath(path)
    }

    func mask(_ path: String) throws {
        let fd = open(path, O_PATH_)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return }
            try check(-1, "open \(path)")
        }
        defer { close(fd) }
        var st = stat()
        try check(fstat(fd, &st), "stat \(path)")
        if st.st_mode & S_IFMT == S_IFDIR {
            try check(sysMount("tmpfs", target(fd, path), "tmpfs", MS.rdonly | MS.nosuid | MS.nodev | MS.noexec),
                      "mount tmpfs on \(path)")
            return
        }
        let null = open("/dev/null", O_PATH_)
        try check(null, "open /dev/null")
        defer { close(null) }
        var ns = stat()
        try check(fstat(null, &ns), "stat /dev/null")
        guard ns.st_mode & S_IFMT == S_IFCHR, UInt64(ns.st_rdev) == Rootfs.makedev(1, 3) else {
            throw SysError("/dev/null is not the null device", errno: ENODEV)
        }
        try check(sysMount(target(null, "/dev/null"), target(fd, path), nil, MS.bind), "bind /dev/null on \(path)")
    }

    func makeReadonly(_ path: String) throws {
        let fd = open(path, O_PATH_)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return }
            try check(-1, "open \(path)")
        }
        let bound = sysMount(target(fd, path), target(fd, path), nil, MS.bind | MS.rec)
        let e = errno
        close(fd)
        if bound != 0 { throw SysError("bind \(path) on itself", errno: e) }
        let top = open(path, O_PATH_)
        try check(top, "open \(path)")
        defer { close(top) }
        let t = target(top, path)
        let keep = Rootfs.msFlags(statfsFlags: statFS(t)?.flags ?? 0) & (MS.nosuid | MS.nodev | MS.noexec)
        try remountBind(t, requested: MS.rdonly | keep, cleared: 0, what: "remount \(path) read-only")
    }
}
