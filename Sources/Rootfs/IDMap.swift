import CShim
import Glibc
import Spec
import Sys

// Idmapped bind mounts (mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12+), made
// by the runtime on the host's side, before the init mounts anything.
//
// The kernel idmaps only a detached mount, and only for a caller with
// CAP_SYS_ADMIN in the user namespace of the filesystem's superblock: the
// host's, for a host directory. The container's init, root of its own user
// namespace, cannot; the runtime can. So `create`, once the init's ids are
// mapped and while it waits for "go":
//  1. finds the user namespace of each mount's mappings: the container's
//     (the `idmap`/`ridmap` options alone, or mappings equal to its own), or
//     a new one with exactly the mount's mappings, written as a uid_map is
//     (MountIDMap.swift): a child is cloned into a new user namespace, its
//     maps written, its /proc/PID/ns/user opened, and it is killed and
//     reaped at once; the descriptor keeps the namespace;
//  2. forks a helper that joins the container's mount namespace and there
//     clones each source (open_tree, AT_RECURSIVE for rbind), idmaps the
//     detached copy (AT_RECURSIVE for ridmap) and hands it back over a
//     socket; it exits when done;
//  3. passes each tree to the init (InitMessage.idmapped), which attaches it
//     with move_mount on the destination it resolved inside the root, as
//     every bind (Mounter.swift), then gives it the root's propagation.
// Why the helper clones in the container's mount namespace, not ours: a
// copy of a mount the kernel locked there (a new user and mount namespace
// pair locks the flags of every copied mount, and the mounts below each
// other) keeps those locks; a copy of our own, unlocked one would let a
// container with CAP_SYS_ADMIN in its user namespace remount rw a host
// mount that is read-only, clear its nosuid or nodev, or unmount a submount
// of an rbind to see what it covers, which a plain bind cannot. Nothing of
// the container has run yet: only our init, blocked on its channel.
// Nothing is attached outside the container's mount namespace: a tree that
// is never attached goes when its last descriptor closes.

/// One idmapped bind mount of the spec, as the runtime makes it.
public struct IdmappedBind: Equatable {
    /// Its index in the spec's mounts.
    public var index: Int
    /// The host path (absolute, as Rootfs.plan makes it).
    public var source: String
    /// Clean path inside the container (for messages).
    public var destination: String
    /// rbind: the mounts below the source come too.
    public var recursiveBind: Bool
    public var map: MountIDMap

    public init(index: Int, source: String, destination: String, recursiveBind: Bool, map: MountIDMap) {
        self.index = index
        self.source = source
        self.destination = destination
        self.recursiveBind = recursiveBind
        self.map = map
    }

    /// As errors name the mount: "mount /srv on /data".
    public var label: String { "mount \(source) on \(destination)" }
}

/// The container's user namespace, whose mappings `idmap` alone applies.
public struct ContainerUserNamespace: Equatable {
    /// /proc/INIT/ns/user for a new one, linux.namespaces' path for a joined one.
    public var path: String
    /// The mappings the runtime wrote into a new one: a mount giving the same
    /// ones is idmapped with it, no namespace of its own made.
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?

    public init(path: String, uidMappings: [IDMapping]? = nil, gidMappings: [IDMapping]? = nil) {
        self.path = path
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
    }
}

extension Rootfs {
    /// The spec's idmapped bind mounts, in order. Pure; the spec was
    /// validated (Spec.mountIDMapProblems refuses idmaps on other mounts).
    public static func idmappedBinds(mounts: [Mount], bundle: String) -> [IdmappedBind] {
        // Nothing to plan (the whole mount list, in the runtime) without one.
        guard mounts.contains(where: { $0.idmap != nil }) else { return [] }
        let planned = plan(mounts: mounts, bundle: bundle)
        return mounts.indices.compactMap { i in
            guard let map = mounts[i].idmap, planned[i].kind == .bind else { return nil }
            return IdmappedBind(index: i, source: planned[i].source, destination: planned[i].destination,
                                recursiveBind: planned[i].options.isRecursiveBind, map: map)
        }
    }

    /// uid_map or gid_map text of `mappings`: "C H S" lines.
    public static func mapText(_ mappings: [IDMapping]) -> String {
        mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
    }

    /// Makes the detached, idmapped tree of each of `binds` (see the top of
    /// this file): the trees' descriptors with the binds' indexes, for the
    /// init. `mountNamespace` is the container's (/proc/INIT/ns/mnt, or the
    /// one it joins); `userNamespace` the container's, nil without one.
    /// When it throws, nothing it made is left: no process, no namespace
    /// held, no tree.
    public static func makeIdmappedBinds(_ binds: [IdmappedBind], mountNamespace: String,
                                         userNamespace: ContainerUserNamespace?) throws -> [(index: Int, tree: Int32)] {
        guard !binds.isEmpty else { return [] }
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        var containerNS: Int32 = -1
        func container(_ b: IdmappedBind) throws -> Int32 {
            if containerNS >= 0 { return containerNS }
            guard let ns = userNamespace else {
                throw SysError("\(b.label): idmap without mappings of its own needs the container's user namespace, and it has none", errno: EINVAL)
            }
            containerNS = Glibc.open(ns.path, O_RDONLY | O_CLOEXEC)
            try check(containerNS, "\(b.label): open the container's user namespace \(ns.path)")
            held.append(containerNS)
            return containerNS
        }
        var byMappings: [String: Int32] = [:]
        var namespaces: [Int32] = []
        for b in binds {
            guard let uid = b.map.uidMappings, let gid = b.map.gidMappings else {
                if b.map.hasOwnMappings { throw SysError("\(b.label): uidMappings and gidMappings go together", errno: EINVAL) }
                namespaces.append(try container(b))
                continue
            }
            if let ns = userNamespace, ns.uidMappings == uid, ns.gidMappings == gid {
                namespaces.append(try container(b))
                continue
            }
            let key = mapText(uid) + "/" + mapText(gid)
            if let fd = byMappings[key] { namespaces.append(fd); continue }
            let fd = try step(b.label) { try newUserNamespace(uid: uid, gid: gid) }
            held.append(fd)
            byMappings[key] = fd
            namespaces.append(fd)
        }
        let mnt = Glibc.open(mountNamespace, O_RDONLY | O_CLOEXEC)
        try check(mnt, "open the container's mount namespace \(mountNamespace)")
        defer { close(mnt) }
        return try idmappedTrees(binds, namespaces: namespaces, inMountNamespace: mnt)
    }

    /// A user namespace with exactly these mappings, by descriptor: a child
    /// cloned into a new one (it only waits), its maps written from here, its
    /// /proc/PID/ns/user opened; then it is killed and reaped. The
    /// namespace lives on while the descriptor is open.
    static func newUserNamespace(uid: [IDMapping], gid: [IDMapping]) throws -> Int32 {
        let pid = mc_clone3(UInt64(UInt32(bitPattern: Kernel.CLONE_NEWUSER)), -1, 0, nil)
        try check(pid, "create a user namespace with the mount's mappings")
        if pid == 0 {
            Kernel.dieWithParent()
            while true { pause() }
        }
        defer {
            kill(pid, SIGKILL)
            _ = reap(pid)
        }
        for (file, list) in [("uid_map", uid), ("gid_map", gid)] {
            let path = "/proc/\(pid)/\(file)"
            let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            try check(fd, "open \(path)")
            defer { close(fd) }
            // One write, as the kernel requires.
            let bytes = Array(mapText(list).utf8)
            if write(fd, bytes, bytes.count) != bytes.count {
                let shown = list.map { "\($0.containerID) \($0.hostID) \($0.size)" }.joined(separator: ", ")
                throw SysError("write the mount's \(file == "uid_map" ? "uidMappings" : "gidMappings") (\(shown))")
            }
        }
        let ns = Glibc.open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        try check(ns, "open the user namespace of the mount's mappings")
        return ns
    }

    /// The helper of step 2: forked, it joins the mount namespace `mnt` and
    /// sends back, for each bind in order, its idmapped tree (tag "T" and
    /// the index, the tree beside it) or its failure (tag "E", Failure.wire),
    /// then exits. Reaped here in every case.
    static func idmappedTrees(_ binds: [IdmappedBind], namespaces: [Int32], inMountNamespace mnt: Int32) throws
        -> [(index: Int, tree: Int32)] {
        let (mine, theirs) = try Channel.pair()
        defer { mine.close() }
        let pid = mc_clone3(0, -1, 0, nil)
        if pid < 0 {
            theirs.close()
            throw SysError("fork the helper of idmapped mounts")
        }
        if pid == 0 {
            mine.close()
            Kernel.dieWithParent()
            do {
                guard mc_setns(mnt, Kernel.CLONE_NEWNS) == 0 else { throw SysError("join the container's mount namespace") }
                for (b, ns) in zip(binds, namespaces) {
                    let tree = try step(b.label) { try idmappedTree(b, userNamespace: ns) }
                    try theirs.send(bytes: [0x54] + Array(String(b.index).utf8), fd: tree)
                    close(tree)
                }
                _exit(0)
            } catch {
                _ = try? theirs.send(bytes: [0x45] + (error as? Failure ?? Failure(.failed, "\(error)")).wire)
                _exit(1)
            }
        }
        theirs.close()
        var trees: [(index: Int, tree: Int32)] = []
        do {
            while let (bytes, fd) = try mine.receiveBytes() {
                if bytes.first == 0x54, fd >= 0, let i = Int(String(decoding: bytes.dropFirst(), as: UTF8.self)) {
                    trees.append((i, fd))
                    continue
                }
                if fd >= 0 { close(fd) }
                if bytes.first == 0x45, let f = Failure(wire: Array(bytes.dropFirst())) { throw f }
                throw Failure(.failed, "idmapped mounts: a malformed message from the helper")
            }
            let status = reap(pid)
            guard trees.count == binds.count, status == 0 else {
                throw Failure(.failed, "idmapped mounts: the helper ended (status \(status)) before it made them all")
            }
            return trees
        } catch {
            kill(pid, SIGKILL)
            _ = reap(pid)
            for t in trees { close(t.tree) }
            throw error
        }
    }

    /// The detached copy of `b.source` (with the mounts below it for rbind),
    /// idmapped through the user namespace `ns` (those below too for ridmap).
    /// The source is looked up in the container's mount namespace, which a
    /// joined one's owner may have arranged: without /proc magic links, so
    /// that no /proc/PID/root there leads this host-root helper elsewhere.
    static func idmappedTree(_ b: IdmappedBind, userNamespace ns: Int32) throws -> Int32 {
        let src = mc_openat2(AT_FDCWD, b.source, UInt64(UInt32(bitPattern: Kernel.O_PATH | O_CLOEXEC)), 0,
                             Kernel.RESOLVE_NO_MAGICLINKS)
        try check(src, "bind \(b.source)")
        defer { close(src) }
        let flags = Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC | Kernel.AT_EMPTY_PATH | (b.recursiveBind ? Kernel.AT_RECURSIVE : 0)
        let tree = mc_open_tree(src, "", flags)
        if tree < 0 {
            let e = errno
            // A locked mount below the source (a user namespace's copy of the host's) comes only with its parent.
            throw SysError(e == EINVAL && !b.recursiveBind ? "bind \(b.source) (it has mounts below it: use rbind)" : "bind \(b.source)", errno: e)
        }
        if mc_mount_setattr_idmap(tree, "", Kernel.AT_EMPTY_PATH | (b.map.recursive ? Kernel.AT_RECURSIVE : 0), ns) != 0 {
            let e = errno
            close(tree)
            throw SysError(idmapRefusal(e, b), errno: e)
        }
        return tree
    }

    /// What mount_setattr's errno means here.
    static func idmapRefusal(_ e: Int32, _ b: IdmappedBind) -> String {
        switch e {
        case ENOSYS: return "idmap: this kernel has no mount_setattr (Linux 5.12 or later)"
        case EINVAL:
            let what = b.map.recursive && b.recursiveBind ? "\(b.source) or a mount below it" : b.source
            return "idmap: the filesystem of \(what) cannot be idmapped (it does not support it, or the user namespace is its own)"
        default: return "idmap \(b.source)"
        }
    }

    /// waitpid for `pid` (EINTR retried): its wait status, -1 when none.
    static func reap(_ pid: Int32) -> Int32 {
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return s
    }

    /// Whether this kernel has idmapped mounts at all: mount_setattr(2)
    /// exists (Linux 5.12, which brought MOUNT_ATTR_IDMAP with it). A call
    /// that can only fail tells: ENOSYS without it, EBADF with it. A
    /// filesystem may still refuse (idmappedMountsWork says for one path).
    public static var kernelHasIdmappedMounts: Bool {
        mc_mount_setattr(-1, "", 0, 0, 0, 0) == 0 || errno != ENOSYS
    }

    /// Whether an idmapped mount of the filesystem at `path` can be made
    /// here, by trying: a user namespace of one mapping, a detached copy of
    /// `path` idmapped through it, both closed (nothing is attached
    /// anywhere, no process is left). Needs root, as create does.
    public static func idmappedMountsWork(at path: String = "/") -> Bool {
        let one = [IDMapping(containerID: 0, hostID: 65534, size: 1)]
        guard kernelHasIdmappedMounts, let ns = try? newUserNamespace(uid: one, gid: one) else { return false }
        defer { close(ns) }
        let tree = mc_open_tree(AT_FDCWD, path, Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC)
        guard tree >= 0 else { return false }
        defer { close(tree) }
        return mc_mount_setattr_idmap(tree, "", Kernel.AT_EMPTY_PATH, ns) == 0
    }
}
