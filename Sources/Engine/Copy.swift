import CShim
import Glibc
import Image
import JSON
import Rootfs
import Spec
import Sys

// `cp`: files between the host and a run-mode container, both ways, as a tar
// stream between two processes: one on the host's side, one that sees the
// container's filesystem. The container's root is hostile: any component
// of any path in it may be a symlink to anywhere, or become one while we
// copy.
//
// Seeing the container's filesystem. A running container: a forked child
// joins its mount namespace (setns on a pidfd of its init, checked against
// the init's start time), as podman does. That is the container's exact
// view (its volumes, tmpfs, binds over binds), and in it the host's files
// are simply not there: no path a container can make, raced or not, leads
// out of its mount tree. (The alternative, resolving the path on the
// host's side through DATA/containers/ID/merged and config.json's mounts,
// would miss mounts made inside and have to redo the kernel's mount
// crossing by hand.) Our process stays out of the container's pid and user
// namespaces, so nothing in it can see, signal or ptrace us. A stopped
// container: its overlay is unmounted when it exits (RootLayer); the child
// makes a private mount namespace, mounts the overlay there and binds the
// config's volumes into it, so nothing appears in the host's mount table
// and everything goes with the child. Mounting it in the host's namespace
// and unmounting after would do as well; writing to the upper directory
// would not: a path the container deleted is a whiteout there (and a
// deleted directory's replacement is opaque), which a plain write would
// leave in place, hiding what we copied. This runs under the container's
// lock, so that the container is not started on the same upper meanwhile.
//
// In that view, every open is confined to the container's root: the path
// given is resolved with openat2(RESOLVE_IN_ROOT) on a descriptor of the
// root (RESOLVE_NO_MAGICLINKS), and below it nothing is opened by path
// (TreeArchiver walks by descriptor, O_NOFOLLOW; ConfinedExtract resolves
// every parent beneath its destination with RESOLVE_IN_ROOT). Copying out,
// a symlink is written as a symlink, never followed (-L: the source path
// itself is followed, inside the container's root). On the host's side the
// tar a container produced is hostile too: it is extracted confined to the
// destination directory (a planted `x -> /etc` then `x/passwd` resolves
// inside it), without device nodes, and setuid/setgid bits are dropped
// unless -a.

/// One `cp`: which way, the paths, and Docker's flags.
public struct CopyRequest {
    /// Into the container (host or stdin -> container) or out of it.
    public var intoContainer: Bool
    /// The path in the container.
    public var containerPath: String
    /// The path on the host; nil for a tar stream on stdin or stdout (`-`).
    public var hostPath: String?
    /// -a: owners as in the source (default: the destination's user).
    public var archive = false
    /// -L: the source path's own symlink followed.
    public var follow = false

    public init(intoContainer: Bool, containerPath: String, hostPath: String?) {
        self.intoContainer = intoContainer
        self.containerPath = containerPath
        self.hostPath = hostPath
    }
}

/// What cp needs from a container's config.json.
struct CopyConfig: Decodable {
    struct Proc: Decodable { var user: User? }
    var process: Proc?
    var mounts: [Mount]?
}

/// How a path is opened on one side: the host's plain resolution, or
/// openat2 confined to a container's root.
struct PathOpener {
    let open: (String, Int32) -> Int32
    /// "the host" or "container NAME", for messages.
    let side: String

    static let host = PathOpener(open: { p, f in Glibc.open(p, f | O_CLOEXEC) }, side: "the host")

    static func confined(_ root: Int32, _ side: String) -> PathOpener {
        PathOpener(open: { p, f in
            mc_openat2(root, p, UInt64(UInt32(bitPattern: f | O_CLOEXEC)), 0, Kernel.RESOLVE_IN_ROOT | Kernel.RESOLVE_NO_MAGICLINKS)
        }, side: side)
    }

    func notFound(_ path: String, errno e: Int32 = Glibc.errno) -> Failure {
        Failure(.notFound, "\(quoted(path, max: 256)) could not be found on \(side)", errno: e)
    }
}

/// A path split for cp's rules: Docker's "/." (the directory's contents)
/// and a trailing "/" (must be a directory) noted.
struct CopyPath {
    var path: String
    var contentsOnly = false
    var trailingSlash = false

    init(_ raw: String) {
        var p = raw
        // (Over the bytes: a "/" before a combining mark is still a "/".)
        var b = Array(p.utf8)
        if b == [46] || b.suffix(2) == [47, 46] {
            contentsOnly = true
            b.removeLast(b == [46] ? 0 : 2)
            if b.isEmpty { b = Path.isAbsolute(raw) ? [47] : [46] }
        }
        if b.count > 1 && b.last == 47 { trailingSlash = true }
        while b.count > 1 && b.last == 47 { b.removeLast() }
        p = String(decoding: b, as: UTF8.self)
        path = p
    }

    /// The last component, as the tar names the copy (nil for "/", "." or "..").
    var base: String? {
        let b = Path.components(path).last ?? ""
        return b.isEmpty || b == "." || b == ".." ? nil : b
    }

    /// Everything before the last component ("/" or "." at the top).
    var parent: String {
        guard Path.hasSlash(path) else { return "." }
        return Path.split(path).parent
    }
}

extension Containers {
    /// Copies between the host and container `id` as `req` says.
    public func copy(_ id: String, name: String, _ req: CopyRequest) throws {
        let cfgPath = dir(id) + "/config.json"
        let cfg = try JSONDecoding.decode(CopyConfig.self, from: try FS.readBytes(cfgPath), file: cfgPath)
        let side = "container \(name)"
        // A write to a closed pipe is an error to report, not a signal that kills us.
        signal(SIGPIPE, SIG_IGN)
        let src = CopyPath(req.intoContainer ? (req.hostPath ?? "-") : req.containerPath)
        let dst = CopyPath(req.intoContainer ? req.containerPath : (req.hostPath ?? "-"))
        if req.intoContainer {
            var policy = ExtractPolicy()
            if !req.archive {
                let u = cfg.process?.user ?? User()
                policy.owner = (u.uid, u.gid)
            }
            guard req.hostPath != nil else {
                // A tar on stdin, extracted as it is into DST (a directory).
                try inContainer(id, cfg, side) { v in
                    try receive(fd: 0, PathOpener.confined(v.root, side), dst, policy: policy, stream: true, what: "cp")
                }
                return
            }
            // The host's source is checked here, before the container is entered.
            let top = try openSource(PathOpener.host, src, follow: req.follow)
            defer { close(top) }
            var fds: [Int32] = [0, 0]
            guard mc_pipe2(&fds, O_CLOEXEC) == 0 else { throw SysError("pipe") }
            let procFds = try ProcFS.fdDirectory(what: "cp")
            defer { close(procFds) }
            let child = try spawnInContainer(id, cfg, side, closeInChild: fds[1]) { v in
                try receive(fd: fds[0], PathOpener.confined(v.root, side), dst, policy: policy, stream: false, what: "cp")
            }
            close(fds[0])
            let sent = Result { try send(top, src, to: fds[1], procFds: procFds) }
            close(fds[1])
            try finishPair(child, sent)
        } else {
            var policy = ExtractPolicy()
            policy.owner = req.archive ? nil : (geteuid(), getegid())
            policy.dropSetID = !req.archive
            policy.skipDevices = true
            guard let _ = req.hostPath else {
                try inContainer(id, cfg, side) { v in
                    let top = try openSource(PathOpener.confined(v.root, side), src, follow: req.follow)
                    try send(top, src, to: 1, procFds: v.procFds)
                }
                return
            }
            var fds: [Int32] = [0, 0]
            guard mc_pipe2(&fds, O_CLOEXEC) == 0 else { throw SysError("pipe") }
            let child = try spawnInContainer(id, cfg, side, closeInChild: fds[0]) { v in
                let top = try openSource(PathOpener.confined(v.root, side), src, follow: req.follow)
                try send(top, src, to: fds[1], procFds: v.procFds)
            }
            close(fds[1])
            let got = Result { () -> Int in
                defer { close(fds[0]) }
                return try receive(fd: fds[0], PathOpener.host, dst, policy: policy, stream: false, what: "cp")
            }
            try finishPair(child, got.map { _ in () })
            if case .success(let skipped) = got, skipped > 0 {
                Log.warn("cp: \(skipped) device node\(skipped == 1 ? "" : "s") not copied to the host")
            }
        }
    }

    /// The two halves' outcome as one: the child's error first (a missing
    /// source there leaves our side an empty stream), unless it only saw
    /// our side go away (EPIPE) after our own failure.
    func finishPair(_ child: CopyChild, _ ours: Result<Void, Error>) throws {
        let theirs = child.wait()
        switch (theirs, ours) {
        case (nil, .success): return
        case (nil, .failure(let e)): throw e
        case (let t?, .success): throw t
        case (let t?, .failure(let e)):
            if t.errno == EPIPE { throw e }
            throw t
        }
    }

    // MARK: The two halves

    /// The source, opened O_PATH: its final symlink not followed unless
    /// `follow`. Only the path the user gave is resolved by name.
    func openSource(_ opener: PathOpener, _ src: CopyPath, follow: Bool) throws -> Int32 {
        let fd = opener.open(src.path, Kernel.O_PATH | (follow || src.contentsOnly || src.trailingSlash ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw opener.notFound(src.path) }
        var st = stat()
        if src.trailingSlash || src.contentsOnly, fstat(fd, &st) == 0, st.st_mode & S_IFMT != S_IFDIR {
            close(fd)
            throw opener.notFound(src.path, errno: ENOTDIR)
        }
        return fd
    }

    /// Writes the tar of the source open on `top`: its entries named from
    /// its last component ("/." and "/": ".", the contents); `procFds` is
    /// our /proc/PID/fd, opened before a mount namespace was entered.
    func send(_ top: Int32, _ src: CopyPath, to fd: Int32, procFds: Int32) throws {
        let a = try TreeArchiver(fd: fd, procFds: procFds, what: "cp: write")
        try a.add(top, name: Array((src.contentsOnly ? "." : src.base ?? ".").utf8))
        try a.finish()
    }

    /// Extracts the tar on `fd` at `dst` by Docker's rules; the number of
    /// device nodes left out. `stream` (cp - CONTAINER:DST): as it is, into
    /// DST, which must be a directory. Otherwise the archive's first entry
    /// is the source (send's: "NAME" or, for "/." and "/", "."): into DST
    /// when DST is a directory (only its contents for "."), else DST is the
    /// copy (a directory made, a file written or replaced) in DST's parent,
    /// which must exist.
    @discardableResult
    func receive(fd: Int32, _ opener: PathOpener, _ dst: CopyPath, policy: ExtractPolicy, stream: Bool, what: String) throws -> Int {
        let reader = try TarReader(fd: fd, what: what, threaded: false)
        guard let first = try reader.next() else {
            _ = try? reader.finish()
            return 0
        }
        guard let top = ConfinedExtract.components(first.rawPath) else {
            throw Failure(.invalid, "\(what): \(quoted(first.path, max: 256)): name has a \"..\" component")
        }
        // Where the entries go, and the leading components they trade.
        var dirFd = opener.open(dst.path, O_RDONLY | O_DIRECTORY)
        let err = errno
        var strip: [[UInt8]] = []
        var prefix: [[UInt8]] = []
        var skipTop = false
        if dirFd < 0 && stream {
            throw err == ENOTDIR ? Failure(.invalid, "destination \(quoted(dst.path, max: 256)) must be a directory")
                                 : opener.notFound(dst.path, errno: err)
        } else if dirFd >= 0 {
            skipTop = !stream && top.isEmpty  // "/.": the contents, DST itself left as it is
        } else {
            if err == ENOTDIR {
                if first.kind == .directory { throw Failure(.invalid, "destination must be a directory when copying a directory") }
            } else if err != ENOENT {
                throw opener.notFound(dst.path, errno: err)
            } else if dst.trailingSlash && first.kind != .directory {
                throw opener.notFound(dst.path + "/", errno: ENOENT)
            }
            guard let b = dst.base else { throw opener.notFound(dst.path, errno: err) }
            dirFd = opener.open(dst.parent, O_RDONLY | O_DIRECTORY)
            guard dirFd >= 0 else { throw opener.notFound(dst.parent) }
            strip = top
            prefix = [Array(b.utf8)]
        }
        let x = try ConfinedExtract(into: dirFd, policy: policy, what: what)
        /// A name with the source's leading components traded for DST's.
        func rebase(_ raw: [UInt8]) throws -> [UInt8] {
            guard !prefix.isEmpty, let parts = ConfinedExtract.components(raw) else { return raw }  // ".." is refused by apply
            guard parts.count >= strip.count, Array(parts[..<strip.count]) == strip else {
                throw Failure(.invalid, "\(what): \(quoted(String(decoding: raw, as: UTF8.self), max: 256)): outside the copied tree")
            }
            return Array((prefix + parts[strip.count...]).joined(separator: [UInt8(ascii: "/")]))
        }
        var next: TarEntry? = first
        var isTop = true
        while var entry = next {
            if !(isTop && skipTop) {
                entry.rawPath = try rebase(entry.rawPath)
                entry.path = String(decoding: entry.rawPath, as: UTF8.self)
                if entry.kind == .hardlink, let t = entry.rawLinkTarget {
                    // A link within the copy only: never to what DST's
                    // directory held before (a host file, copying out).
                    if !stream, let tp = ConfinedExtract.components(t), tp.count <= top.count || Array(tp[..<top.count]) != top {
                        throw Failure(.invalid, "\(what): \(quoted(entry.path, max: 256)): hard link to \(quoted(String(decoding: t, as: UTF8.self), max: 256)), outside the copied tree")
                    }
                    entry.rawLinkTarget = try rebase(t)
                    entry.linkTarget = String(decoding: entry.rawLinkTarget!, as: UTF8.self)
                }
                try x.apply(entry, reader)
            }
            isTop = false
            next = try reader.next()
        }
        try x.finish()
        _ = try reader.finish()
        return x.skipped
    }

    // MARK: Seeing the container's files

    /// Runs `body` with a descriptor of the container's root, in a child
    /// that sees its filesystem, and waits for it.
    func inContainer(_ id: String, _ cfg: CopyConfig, _ side: String, _ body: @escaping (CopyView) throws -> Void) throws {
        let child = try spawnInContainer(id, cfg, side, closeInChild: -1, body)
        if let e = child.wait() { throw e }
    }

    /// Forks the child that sees the container's filesystem (the header's
    /// two ways) and runs `body` there with a descriptor of its root. The
    /// container lock of a stopped one is held until `wait`.
    func spawnInContainer(_ id: String, _ cfg: CopyConfig, _ side: String, closeInChild: Int32,
                          _ body: @escaping (CopyView) throws -> Void) throws -> CopyChild {
        var lock: FileLock? = nil
        var pidfd: Int32 = -1
        var lower: [String] = []
        func enter() throws -> Int32 {
            if pidfd >= 0 {
                guard mc_setns(pidfd, Kernel.CLONE_NEWNS) == 0 else { throw SysError("join the mount namespace of \(side)") }
                let r = open("/", Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
                guard r >= 0 else { throw SysError("open the root of \(side)") }
                return r
            }
            return try mountStopped(id, cfg, lower: lower, side)
        }
        if let r = try? runtime(of: id).store.load(id), liveStatus(id) != nil {
            pidfd = mc_pidfd_open(r.pid, 0)
            guard pidfd >= 0, Proc.alive(r.pid, startTime: r.startTime) else {
                if pidfd >= 0 { close(pidfd) }
                throw Failure(.state, "\(side) stopped while cp started")
            }
        } else {
            lock = try FileLock.acquire(dir(id))
            if liveStatus(id) != nil {
                lock?.unlock()
                throw Failure(.state, "\(side) started while cp started: try again")
            }
            do { lower = try lowerLayers(id) } catch { lock?.unlock(); throw error }
        }
        var errFds: [Int32] = [0, 0]
        guard mc_pipe2(&errFds, O_CLOEXEC) == 0 else { lock?.unlock(); throw SysError("pipe") }
        let pid = mc_clone3(0, -1, 0, nil)
        if pid < 0 {
            lock?.unlock()
            throw SysError("fork")
        }
        if pid == 0 {
            close(errFds[0])
            if closeInChild >= 0 { close(closeInChild) }
            do {
                let procFds = try ProcFS.fdDirectory(what: "cp")
                let root = try enter()
                try body(CopyView(root: root, procFds: procFds))
                _exit(0)
            } catch {
                Failure.exitReporting(error, to: errFds[1])
            }
        }
        close(errFds[1])
        if pidfd >= 0 { close(pidfd) }
        return CopyChild(pid: pid, errors: errFds[0], lock: lock)
    }

    /// The overlay of a stopped container's root in a new private mount
    /// namespace (this child's), with config.json's bind mounts over it,
    /// each target resolved inside the root; its root, opened O_PATH.
    func mountStopped(_ id: String, _ cfg: CopyConfig, lower: [String], _ side: String) throws -> Int32 {
        guard mc_unshare(Kernel.CLONE_NEWNS) == 0 else { throw SysError("unshare the mount namespace") }
        guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else { throw SysError("make the mounts private") }
        let layer = rootLayer(id)
        // Still mounted on the host (a monitor between restarts): that very
        // mount, which unshare copied here; a second overlay on the same
        // upper would be two views that do not see each other's writes.
        if !layer.isMounted { try layer.mount(lower: lower) }
        let root = open(layer.merged, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SysError("open the root of \(side)") }
        for m in cfg.mounts ?? [] where m.type == "bind" {
            guard let s = m.source else { continue }
            let src = open(s, Kernel.O_PATH | O_CLOEXEC)
            guard src >= 0 else { throw SysError("open the source of \(m.destination), \(s)") }
            defer { close(src) }
            let target = PathOpener.confined(root, side).open(m.destination, Kernel.O_PATH)
            if target < 0 && errno == ENOENT { continue }  // never made: not mounted either
            guard target >= 0 else { throw SysError("open mount point \(m.destination) in \(side)") }
            defer { close(target) }
            let recursive = m.options?.contains("rbind") ?? false
            let tree = mc_open_tree(src, "", Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC | Kernel.AT_EMPTY_PATH
                                    | (recursive ? Kernel.AT_RECURSIVE : 0))
            guard tree >= 0 else { throw SysError("bind \(s)") }
            defer { close(tree) }
            if m.options?.contains("ro") ?? false {
                guard mc_mount_setattr(tree, "", Kernel.AT_EMPTY_PATH | Kernel.AT_RECURSIVE, Kernel.MOUNT_ATTR_RDONLY, 0, 0) == 0 else {
                    throw SysError("make \(m.destination) read-only")
                }
            }
            guard mc_move_mount(tree, "", target, "", Kernel.MOVE_MOUNT_F_EMPTY_PATH | Kernel.MOVE_MOUNT_T_EMPTY_PATH) == 0 else {
                throw SysError("mount \(s) on \(m.destination)")
            }
        }
        // The root again: now with the binds beneath it.
        let again = open(layer.merged, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
        close(root)
        guard again >= 0 else { throw SysError("open the root of \(side)") }
        return again
    }

    /// The overlay's lower layers of a container, top first: as its
    /// metadata keeps them, else (containers made before it did) its
    /// image's layers, or its --rootfs.
    func lowerLayers(_ id: String) throws -> [String] {
        guard let m = load(id) else { throw Failure(.notFound, "container \(id) does not exist") }
        if let l = m.lower, !l.isEmpty { return l }
        if let image = m.imageID {
            return try ImageStore(locations: locations).resolve(image).layerDirs.reversed()
        }
        return [m.rootfs]
    }
}

/// What the child sees: the container's root (O_PATH) and our own
/// /proc/PID/fd, opened before the container's mount namespace was.
struct CopyView {
    let root: Int32
    let procFds: Int32
}

/// The child of spawnInContainer: wait reaps it and says how it failed.
struct CopyChild {
    let pid: Int32
    let errors: Int32
    let lock: FileLock?

    func wait() -> Failure? {
        defer { lock?.unlock() }
        let bytes = (try? FS.readFd(errors)) ?? []
        close(errors)
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        if bytes.isEmpty {
            return s == 0 ? nil : Failure(.failed, "the copy's child process failed (wait status \(s))")
        }
        return Failure(wire: bytes) ?? Failure(.failed, String(decoding: bytes, as: UTF8.self))
    }
}
