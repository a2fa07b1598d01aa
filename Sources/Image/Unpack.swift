import CShim
import Glibc
import Spec
import Sys

// Unpacking a layer's tar into its own directory, confined to it.
//
// The layer directory is opened once; every entry's parent is resolved
// beneath it by openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so a
// symlink met on the way (absolute or with `..`) resolves as if the layer
// were "/": the unpacker behaves as docker's does inside its chroot, and
// nothing is written outside. The final component is handled with *at()
// calls that never follow it (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW; an existing
// entry is unlinked before it is replaced).
//
// Policy:
// - Names: a leading "/" and "./" are stripped, "." components dropped; a
//   name with a ".." component is refused (GNU tar and bsdtar refuse them
//   too), as is a name that is empty but for the root on a non-directory.
// - Whiteouts (overlay's format): ".wh.NAME" becomes a character device 0/0
//   at NAME, ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its
//   directory; other ".wh..wh." names (aufs' bookkeeping) are skipped. A
//   flat rootfs tar (`import`) is a layer like any other, as with docker.
// - Hard links: the target is resolved in the layer the same way (a leading
//   "/" stripped, ".." refused); a target that is not in this layer but in a
//   lower one is copied up first, as overlayfs would, then linked.
// - xattrs come through, but overlayfs' own (trusted.overlay.*,
//   user.overlay.*: a redirect or metacopy in a lower layer would be
//   obeyed), except trusted.overlay.opaque=y, which is the opaque marker.
// - Device nodes and fifos are created, as docker, podman and umoci do when
//   they run as root; what a container may open is the device cgroup's say.
// - Owners are the archive's numeric uid/gid (names ignored), set with
//   lchown; modes (with setuid, setgid, sticky) after it, since chown clears
//   them; xattrs after both (chown and write drop security.capability);
//   mtimes last, directories' at the very end.
//
// Rootless (not root of the host, UserNamespaceMaps.privileged false): each
// layer is unpacked by a child that is root of a user namespace with the
// caller's whole mapping (0 -> the user, 1.. -> /etc/subuid and
// /etc/subgid), so an archive's uid N lands on the host as the N-th
// subordinate id. The layers are for an overlay mounted with `userxattr`:
// opaque directories get user.overlay.opaque=y (trusted.overlay.opaque=y
// from the archive becomes it), whiteouts are still character devices 0/0
// (a user namespace's root may make those). What an unprivileged user
// cannot have is skipped with one warning per layer, as podman does:
// trusted.* xattrs, device nodes. An owner outside the mapping refuses the
// layer with one line (podman: "potentially insufficient UIDs"); without
// any subordinate ranges, only id 0 is mapped, with a warning once.

public struct LayerUnpackResult {
    /// The SHA-256 of the uncompressed tar stream and its size.
    public var diffID: Digest
    public var size: Int64

    public init(diffID: Digest, size: Int64) {
        self.diffID = diffID
        self.size = size
    }
}

public enum LayerUnpack {
    /// Unpacks the layer tar read from `fd` (gzip, zstd or none, sniffed)
    /// into `dir`, an existing empty directory of ours, confined to it;
    /// `lower` are the already-unpacked layer directories beneath it (bottom
    /// first), for hard links to files of lower layers (copied up). Returns
    /// the SHA-256 and size of the uncompressed tar stream. On an error the
    /// directory is left half-filled: the caller removes it.
    public static func unpack(fd: Int32, into dir: String, lower: [String], what: String) throws -> LayerUnpackResult {
        guard mapped else { return try unpackHere(fd: fd, into: dir, lower: lower, what: what, rootless: nil) }
        let m = SubordinateIDs.rootlessMappings()
        if !m.complete { _ = warnedNoRanges }
        let span = (uid: m.uid.reduce(UInt64(0)) { $0 + UInt64($1.size) }, gid: m.gid.reduce(UInt64(0)) { $0 + UInt64($1.size) })
        let bytes = try UserNamespaceMaps.resultInMappedNamespace(uid: m.uid, gid: m.gid, what: what) {
            let r = try unpackHere(fd: fd, into: dir, lower: lower, what: what, rootless: span)
            return Array("\(r.diffID) \(r.size)".utf8)
        }
        let f = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard f.count == 2, let d = Digest(String(f[0])), let size = Int64(f[1]) else {
            throw Failure(.failed, "\(what): the unpacker in the user namespace gave no result")
        }
        return LayerUnpackResult(diffID: d, size: size)
    }

    /// Whether layers are unpacked rootless (see the top): when we are not
    /// root of the host. An image store records it (ImageStore.userXattrs).
    public static let mapped: Bool = !UserNamespaceMaps.privileged

    private static let warnedNoRanges: Bool = {
        let me = Identity.current()
        Log.warn("no subordinate ids for \(me.name ?? String(me.uid)) in /etc/subuid and /etc/subgid: image files must belong to uid and gid 0, and a layer with other owners is refused")
        return true
    }()

    /// The unpack itself, in this process; `rootless`: we are root of a
    /// mapped user namespace with this many uids and gids.
    static func unpackHere(fd: Int32, into dir: String, lower: [String], what: String,
                           rootless: (uid: UInt64, gid: UInt64)?) throws -> LayerUnpackResult {
        let reader = try TarReader(fd: fd, what: what)
        let u = try Unpacker(dir: dir, lower: lower, what: what)
        defer { u.close() }
        u.rootless = rootless
        while let e = try reader.next() {
            try u.apply(e, reader)
        }
        try u.finishDirectories()
        let r = try reader.finish()
        return LayerUnpackResult(diffID: r.diffID, size: r.size)
    }

    /// A flat rootfs tar (`import`, as `docker import`): a single layer with
    /// no layer beneath it. Docker stores such a tar as a layer, whiteouts
    /// and all, so it is unpacked exactly as one.
    public static func unpackRootfs(fd: Int32, into dir: String, what: String) throws -> LayerUnpackResult {
        try unpack(fd: fd, into: dir, lower: [], what: what)
    }
}

/// A name's bytes, NUL-terminated for the system calls.
struct CName {
    var bytes: [CChar]
    init(_ b: ArraySlice<UInt8>) {
        bytes = [CChar](repeating: 0, count: b.count + 1)
        var i = 0
        for c in b { bytes[i] = CChar(bitPattern: c); i += 1 }
    }
    init(_ b: [UInt8]) { self.init(b[...]) }
    init(_ s: String) { self.init(Array(s.utf8)) }
    func with<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try bytes.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}

final class Unpacker {
    let what: String
    let root: Int32
    let dir: String
    /// The lower layers' directories, top first, opened O_PATH.
    private var lowers: [Int32] = []
    /// The last parent directory resolved: its components joined by "/".
    private var cachedParent: [UInt8]? = nil
    private var cachedParentFd: Int32 = -1
    private var cachedParentGroup: gid_t? = nil
    /// What a new entry in the parent `parent()` last returned gets as its
    /// group without a chown: the parent's when it is setgid (nil if not).
    private var parentGroup: gid_t? = nil
    private var rootGroup: gid_t? = nil

    // Syscalls spared per entry (as root, whose new files are its own): no
    // chown when the archive's owner is what creation gives, no chmod when
    // the mode is what creation gives under the umask (no setuid, setgid or
    // sticky bit; no setgid parent for a directory, no default ACL).
    private let euid = geteuid(), egid = getegid()
    private var umaskBits: mode_t? = Unpacker.currentUmask()
    /// Directories whose mtime is set at the end (their contents change it).
    /// (A name that comes twice takes the later entry's.)
    private var dirTimes: [[UInt8]: (sec: Int64, nsec: Int64)] = [:]
    /// Set when a directory was removed: the cached parent may be under it.
    /// Dropped on the next lookup, not at once, since the caller may hold it.
    private var cacheStale = false
    private let resolve = Kernel.RESOLVE_IN_ROOT | Kernel.RESOLVE_NO_MAGICLINKS
    private var copyBuffer: UnsafeMutableRawPointer?

    /// `cp`'s extraction (ConfinedExtract), not a layer's: ".wh." names are
    /// plain names, no overlayfs xattr comes through, an existing directory
    /// is never replaced by a non-directory nor the reverse (Docker's
    /// "cannot overwrite").
    var plain = false

    /// Rootless (LayerUnpack's top): the uids and gids the user namespace
    /// we run in maps; nil as root of the host.
    var rootless: (uid: UInt64, gid: UInt64)?
    private var warnedXattr = false, warnedDevice = false
    /// The xattr that marks an opaque directory: user.overlay.opaque for a
    /// rootless (userxattr) overlay.
    var opaqueXattr: String { rootless != nil ? "user.overlay.opaque" : "trusted.overlay.opaque" }

    init(dir: String, lower: [String], what: String) throws {
        self.what = what
        self.dir = dir
        root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw SysError("\(what): open layer directory \(dir)") }
        try finishInit(lower: lower)
    }

    /// Over a directory already open (`fd`, which the unpacker then owns):
    /// `cp` opens its destination confined to a container's root first.
    init(rootFd fd: Int32, what: String) throws {
        self.what = what
        self.dir = what
        root = fd
        try finishInit(lower: [])
    }

    private func finishInit(lower: [String]) throws {
        rootGroup = Unpacker.setgidGroup(root)
        if euid != 0 || mc_fgetxattr(root, "system.posix_acl_default", nil, 0) >= 0 { umaskBits = nil }
        for l in lower.reversed() {
            let fd = open(l, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else {
                let e = SysError("\(what): open lower layer directory \(l)")
                close()
                throw e
            }
            lowers.append(fd)
        }
    }

    func close() {
        dropCache()
        if root >= 0 { Glibc.close(root) }
        for fd in lowers { Glibc.close(fd) }
        lowers = []
        copyBuffer?.deallocate()
        copyBuffer = nil
    }

    private func dropCache() {
        if cachedParentFd >= 0 { Glibc.close(cachedParentFd) }
        cachedParentFd = -1
        cachedParent = nil
    }

    /// The directory's group when it is setgid (its new entries take it).
    static func setgidGroup(_ fd: Int32) -> gid_t? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return st.st_mode & S_ISGID != 0 ? st.st_gid : nil
    }

    /// The process' umask, from /proc/self/status (umask(2) cannot read it
    /// without setting it); nil when unknown.
    static func currentUmask() -> mode_t? {
        guard let text = try? FS.readString("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Umask:") {
            return mode_t(line.dropFirst(6).trimmingPrefix { $0 == " " || $0 == "\t" }, radix: 8)
        }
        return nil
    }

    /// The mode to create an entry with, and whether a chmod must follow.
    private func creationMode(_ e: TarEntry, directory: Bool) -> (mode: mode_t, chmod: Bool) {
        let fallback: mode_t = directory ? 0o700 : 0o600
        guard let u = umaskBits else { return (fallback, true) }
        let perm = mode_t(e.mode) & 0o777
        let exact = e.mode & 0o7000 == 0 && perm & u == 0 && !(directory && parentGroup != nil)
        return (perm, !exact)
    }

    /// Whether the new entry's owner differs from the archive's.
    private func needsChown(_ e: TarEntry) -> Bool {
        umaskBits == nil || e.uid != euid || e.gid != (parentGroup ?? egid)
    }

    /// The entry's xattrs but overlayfs' own (trusted.overlay.* and
    /// user.overlay.*: redirects, metacopy, origins would be obeyed in a
    /// lower layer; the whiteout format says opaque with .wh..wh..opq).
    /// trusted.overlay.opaque=y is kept: it means just that.
    func xattrs(_ e: TarEntry) -> [(name: String, value: [UInt8])] {
        if plain { return e.xattrs.filter { !Unpacker.isOverlays($0.name) } }
        let x = Unpacker.xattrs(e)
        guard rootless != nil, x.contains(where: { $0.name.hasPrefix("trusted.") }) else { return x }
        var out: [(name: String, value: [UInt8])] = []
        for a in x {
            if a.name == "trusted.overlay.opaque" { out.append(("user.overlay.opaque", a.value)); continue }
            if a.name.hasPrefix("trusted.") {
                if !warnedXattr {
                    warnedXattr = true
                    Log.warn("\(what): trusted.* xattrs skipped (the first: \(Quote.quoted(a.name, max: 128)) on \(name(e))): an unprivileged user cannot set them")
                }
                continue
            }
            out.append(a)
        }
        return out
    }

    static func xattrs(_ e: TarEntry) -> [(name: String, value: [UInt8])] {
        guard e.xattrs.contains(where: { isOverlays($0.name) }) else { return e.xattrs }
        return e.xattrs.filter { !isOverlays($0.name) || ($0.name == "trusted.overlay.opaque" && $0.value == [UInt8(ascii: "y")]) }
    }

    private static func isOverlays(_ name: String) -> Bool {
        name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.")
    }

    // MARK: Names

    private func name(_ e: TarEntry) -> String { TarReader.name(e.path) }

    private func invalid(_ e: TarEntry, _ problem: String) -> Failure {
        Failure(.invalid, "\(what): \(name(e)): \(problem)")
    }

    private func sysError(_ e: TarEntry, _ doing: String, errno: Int32 = Glibc.errno) -> Failure {
        SysError("\(what): \(name(e)): \(doing)", errno: errno)
    }

    /// The components of an archive name: "/" and "./" prefixes, empty and
    /// "." components dropped; nil for a ".." component.
    static func components(_ raw: [UInt8]) -> [ArraySlice<UInt8>]? {
        var out: [ArraySlice<UInt8>] = []
        for c in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if c.count == 1 && c.first == UInt8(ascii: ".") { continue }
            if c.count == 2 && c.first == UInt8(ascii: ".") && c.last == UInt8(ascii: ".") { return nil }
            out.append(c)
        }
        return out
    }

    private static func join(_ cs: ArraySlice<ArraySlice<UInt8>>) -> [UInt8] {
        var out: [UInt8] = []
        for (i, c) in cs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "/")) }
            out.append(contentsOf: c)
        }
        return out
    }

    // MARK: Parents

    /// The directory at `parts` (beneath the layer), opened O_RDONLY |
    /// O_DIRECTORY, created (0755, root) where missing. The fd belongs to
    /// the cache (or is `root`): do not close it.
    private func parent(_ parts: ArraySlice<ArraySlice<UInt8>>, for e: TarEntry) throws -> Int32 {
        if cacheStale { dropCache(); cacheStale = false }
        if parts.isEmpty { parentGroup = rootGroup; return root }
        let path = Unpacker.join(parts)
        if let c = cachedParent, c == path { parentGroup = cachedParentGroup; return cachedParentFd }
        dropCache()
        var fd = openBeneath(path)
        if fd < 0 && errno == ENOENT {
            try makeParents(parts, for: e, template: nil)
            fd = openBeneath(path)
        }
        guard fd >= 0 else { throw parentError(e, Unpacker.join(parts)) }
        cachedParent = path
        cachedParentFd = fd
        cachedParentGroup = Unpacker.setgidGroup(fd)
        parentGroup = cachedParentGroup
        return fd
    }

    private func parentError(_ e: TarEntry, _ path: [UInt8], errno err: Int32 = Glibc.errno) -> Failure {
        let p = TarReader.name(String(decoding: path, as: UTF8.self))
        switch err {
        case ENOTDIR: return invalid(e, "parent \(p) is not a directory")
        case ENOENT: return invalid(e, "parent \(p) is a symlink that leads nowhere inside the layer")
        case ELOOP: return invalid(e, "parent \(p): too many levels of symlinks")
        default: return sysError(e, "open parent \(p)", errno: err)
        }
    }

    private func openBeneath(_ path: [UInt8]) -> Int32 {
        CName(path).with {
            mc_openat2(root, $0, UInt64(UInt32(bitPattern: O_RDONLY | O_DIRECTORY | O_CLOEXEC)), 0, resolve)
        }
    }

    /// mkdir -p beneath the layer. With `template` (a lower layer's root),
    /// each directory made takes the mode, owner and times of the same
    /// directory there, as overlayfs' copy-up does.
    private func makeParents(_ parts: ArraySlice<ArraySlice<UInt8>>, for e: TarEntry, template: Int32?) throws {
        var prev = root
        defer { if prev != root { Glibc.close(prev) } }
        for i in parts.indices {
            let prefix = Unpacker.join(parts[parts.startIndex...i])
            var fd = openBeneath(prefix)
            if fd < 0 && errno == ENOENT {
                let made = CName(parts[i]).with { mkdirat(prev, $0, 0o755) }
                if made != 0 && errno != EEXIST { throw sysError(e, "mkdir \(TarReader.name(String(decoding: prefix, as: UTF8.self)))") }
                if made == 0, let t = template { try copyDirectoryAttributes(from: t, prefix, to: prev, parts[i], for: e) }
                fd = openBeneath(prefix)
            }
            guard fd >= 0 else { throw parentError(e, prefix) }
            if prev != root { Glibc.close(prev) }
            prev = fd
        }
    }

    private func copyDirectoryAttributes(from layer: Int32, _ path: [UInt8], to parent: Int32, _ name: ArraySlice<UInt8>, for e: TarEntry) throws {
        var st = stat()
        guard CName(path).with({ fstatat(layer, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
        let n = CName(name)
        _ = n.with { fchownat(parent, $0, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) }
        _ = n.with { mc_fchmodat_nofollow(parent, $0, st.st_mode & 0o7777) }
        dirTimes[path] = (Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
    }

    // MARK: Entries

    func apply(_ e: TarEntry, _ reader: TarReader) throws {
        guard let parts = Unpacker.components(e.rawPath) else { throw invalid(e, "name has a \"..\" component") }
        if parts.isEmpty {
            guard e.kind == .directory else { throw invalid(e, "names the layer's root but is not a directory") }
            try applyRoot(e)
            return
        }
        let base = parts.last!
        let dirParts = parts.dropLast()
        let wh: [UInt8] = Array(".wh.".utf8)
        if !plain && base.starts(with: wh) {
            let rest = base.dropFirst(wh.count)
            if rest.starts(with: wh) {
                if rest.elementsEqual(".wh..opq".utf8) {
                    let p = try parent(dirParts, for: e)
                    try setXattr(p, nil, opaqueXattr, Array("y".utf8), e)
                }
                return  // .wh..wh..opq done; other .wh..wh. names are aufs' own
            }
            guard !rest.isEmpty, !rest.elementsEqual(".".utf8), !rest.elementsEqual("..".utf8) else {
                throw invalid(e, "whiteout of nothing")
            }
            let p = try parent(dirParts, for: e)
            let n = CName(rest)
            try replace(p, n, e, keepDirectory: false) {
                n.with { mknodat(p, $0, S_IFCHR, dev_t(0)) }
            }
            try check(n.with { fchownat(p, $0, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) }, e, "chown whiteout")
            return
        }
        let p = try parent(dirParts, for: e)
        let n = CName(base)
        switch e.kind {
        case .file: try writeFile(p, n, e, reader)
        case .directory: try makeDirectory(p, n, e, path: Unpacker.join(parts[...]))
        case .symlink: try makeSymlink(p, n, e)
        case .hardlink: try makeHardlink(p, n, e, parts)
        case .characterDevice, .blockDevice, .fifo: try makeNode(p, n, e)
        }
    }

    private func check(_ r: Int32, _ e: TarEntry, _ doing: String) throws {
        guard r != 0 else { return }
        if let span = rootless, errno == EINVAL, doing.hasPrefix("chown") {
            // The kernel's answer to an id the user namespace does not map.
            throw invalid(e, "owned by uid \(e.uid), gid \(e.gid): outside the \(span.uid) uids and \(span.gid) gids mapped for this user (their own and /etc/subuid's, /etc/subgid's ranges); potentially insufficient UIDs or GIDs")
        }
        throw sysError(e, doing)
    }

    /// Runs `create`; when the name is taken, removes what is there (unless
    /// it is a directory and `keepDirectory`) and runs it again. Returns
    /// false when an existing directory was kept.
    @discardableResult
    private func replace(_ p: Int32, _ n: CName, _ e: TarEntry, keepDirectory: Bool, _ create: () -> Int32) throws -> Bool {
        if create() >= 0 { return true }
        guard errno == EEXIST else { throw sysError(e, "create") }
        var st = stat()
        try check(n.with { fstatat(p, $0, &st, AT_SYMLINK_NOFOLLOW) }, e, "stat existing entry")
        if plain && ((st.st_mode & S_IFMT) == S_IFDIR) != (e.kind == .directory) {
            throw invalid(e, (st.st_mode & S_IFMT) == S_IFDIR ? "cannot overwrite a directory with a non-directory"
                                                                : "cannot overwrite a non-directory with a directory")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if keepDirectory { return false }
            try removeTree(p, n, e)
            cacheStale = true
        } else {
            try check(n.with { unlinkat(p, $0, 0) }, e, "remove existing entry")
        }
        if create() >= 0 { return true }
        throw sysError(e, "create")
    }

    /// rm -rf of the directory `n` in `p`, never following a symlink.
    private func removeTree(_ p: Int32, _ n: CName, _ e: TarEntry) throws {
        let fd = n.with { openat(p, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw sysError(e, "open existing directory") }
        guard let d = fdopendir(fd) else { Glibc.close(fd); throw sysError(e, "read existing directory") }
        defer { closedir(d) }
        while let ent = readdir(d) {
            let name: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            let c = CName(name)
            if c.with({ unlinkat(fd, $0, 0) }) == 0 { continue }
            if errno == EISDIR || errno == EPERM {
                try removeTree(fd, c, e)
            } else {
                throw sysError(e, "remove existing entry")
            }
        }
        try check(n.with { unlinkat(p, $0, AT_REMOVEDIR) }, e, "remove existing directory")
    }

    private func writeFile(_ p: Int32, _ n: CName, _ e: TarEntry, _ reader: TarReader) throws {
        var fd: Int32 = -1
        let (mode, chmod) = creationMode(e, directory: false)
        try replace(p, n, e, keepDirectory: false) {
            fd = n.with { openat(p, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
            return fd
        }
        defer { Glibc.close(fd) }
        var end: Int64 = 0
        var sparse = false
        while let (block, offset) = try reader.readBlock() {
            if offset != end {
                sparse = true
                guard lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else { throw sysError(e, "seek") }
            }
            try writeAll(fd, block, e)
            end = offset + Int64(block.count)
        }
        if sparse || end < e.size {
            try check(ftruncate(fd, off_t(max(end, e.size))), e, "truncate")
        }
        if needsChown(e) { try check(fchown(fd, e.uid, e.gid), e, "chown") }
        if chmod { try check(fchmod(fd, mode_t(e.mode)), e, "chmod") }
        for x in xattrs(e) { try setXattr(fd, nil, x.name, x.value, e, fromArchive: true) }
        var ts = Unpacker.times(e)
        try check(futimens(fd, &ts), e, "set times")
    }

    private func writeAll(_ fd: Int32, _ b: UnsafeRawBufferPointer, _ e: TarEntry) throws {
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw sysError(e, "write")
            }
            off += n
        }
    }

    static func times(_ e: TarEntry) -> [timespec] {
        let t = timespec(tv_sec: Int(e.mtime.sec), tv_nsec: Int(e.mtime.nsec))
        return [t, t]
    }

    /// Sets an xattr on `n` in `p`, or on the fd `p` itself when `n` is nil.
    /// One `fromArchive` that the kernel or the filesystem will not take
    /// (EPERM: user.* on a symlink or device node; ENOTSUP) is skipped, as
    /// docker does; our own (the opaque marker) must be set.
    private func setXattr(_ p: Int32, _ n: CName?, _ name: String, _ value: [UInt8], _ e: TarEntry, fromArchive: Bool = false) throws {
        // New entries beneath a default ACL take their mode from it, not the umask.
        if name == "system.posix_acl_default" { umaskBits = nil }
        let r: Int32 = CName(name).with { xn in
            value.withUnsafeBytes { v in
                if let n = n { return n.with { mc_lsetxattrat(p, $0, xn, v.baseAddress, v.count) } }
                return mc_fsetxattr(p, xn, v.baseAddress, v.count)
            }
        }
        if r == 0 || (fromArchive && (errno == EPERM || errno == EOPNOTSUPP)) { return }
        throw sysError(e, "set xattr \(Quote.quoted(name, max: 128))")
    }

    /// Owner (unless `created` fresh as the archive's), mode (if `chmod`),
    /// xattrs of the entry `n` in `p`.
    private func attributes(_ p: Int32, _ n: CName, _ e: TarEntry, created: Bool, chmod: Bool) throws {
        if !created || needsChown(e) {
            try check(n.with { fchownat(p, $0, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) }, e, "chown")
        }
        if chmod { try check(n.with { mc_fchmodat_nofollow(p, $0, e.mode) }, e, "chmod") }
        for x in xattrs(e) { try setXattr(p, n, x.name, x.value, e, fromArchive: true) }
    }

    private func applyRoot(_ e: TarEntry) throws {
        try check(fchown(root, e.uid, e.gid), e, "chown")
        try check(fchmod(root, mode_t(e.mode)), e, "chmod")
        for x in xattrs(e) { try setXattr(root, nil, x.name, x.value, e, fromArchive: true) }
        dirTimes[[]] = (e.mtime.sec, e.mtime.nsec)
    }

    private func makeDirectory(_ p: Int32, _ n: CName, _ e: TarEntry, path: [UInt8]) throws {
        let (mode, chmod) = creationMode(e, directory: true)
        let created = try replace(p, n, e, keepDirectory: true) { n.with { mkdirat(p, $0, mode) } }
        try attributes(p, n, e, created: created, chmod: chmod || !created)
        dirTimes[path] = (e.mtime.sec, e.mtime.nsec)
    }

    private func makeSymlink(_ p: Int32, _ n: CName, _ e: TarEntry) throws {
        let target = CName(e.rawLinkTarget ?? [])
        try replace(p, n, e, keepDirectory: false) { target.with { t in n.with { symlinkat(t, p, $0) } } }
        try attributes(p, n, e, created: true, chmod: false)
        var ts = Unpacker.times(e)
        try check(n.with { utimensat(p, $0, &ts, AT_SYMLINK_NOFOLLOW) }, e, "set times")
    }

    private func makeNode(_ p: Int32, _ n: CName, _ e: TarEntry) throws {
        let type: mode_t
        switch e.kind {
        case .characterDevice: type = S_IFCHR
        case .blockDevice: type = S_IFBLK
        default: type = S_IFIFO
        }
        let dev = e.kind == .fifo ? 0 : mc_makedev(e.devMajor, e.devMinor)
        let (mode, chmod) = creationMode(e, directory: false)
        if rootless != nil && e.kind != .fifo {
            // Only a whiteout (0/0) can be made in a user namespace.
            var made = false
            try replace(p, n, e, keepDirectory: false) {
                let r = n.with { mknodat(p, $0, type | mode, dev_t(dev)) }
                if r != 0 && errno == EPERM { return 0 }  // not made: skipped
                made = r == 0
                return r
            }
            if !made {
                if !warnedDevice {
                    warnedDevice = true
                    Log.warn("\(what): device nodes skipped (the first: \(name(e))): an unprivileged user cannot make them")
                }
                return
            }
        } else {
            try replace(p, n, e, keepDirectory: false) { n.with { mknodat(p, $0, type | mode, dev_t(dev)) } }
        }
        try attributes(p, n, e, created: true, chmod: chmod)
        var ts = Unpacker.times(e)
        try check(n.with { utimensat(p, $0, &ts, AT_SYMLINK_NOFOLLOW) }, e, "set times")
    }

    private func makeHardlink(_ p: Int32, _ n: CName, _ e: TarEntry, _ parts: [ArraySlice<UInt8>]) throws {
        guard let target = Unpacker.components(e.rawLinkTarget ?? []) else {
            throw invalid(e, "hard link target \(TarReader.name(e.linkTarget ?? "")) has a \"..\" component")
        }
        guard let tbase = target.last else { throw invalid(e, "hard link to the layer's root") }
        if target.elementsEqual(parts) { return }  // a link to itself: nothing to do
        // `p` may be the cached parent, which copyUp may drop: hold our own.
        let own = dup(p)
        guard own >= 0 else { throw sysError(e, "dup") }
        defer { Glibc.close(own) }
        let tn = CName(tbase)
        var tp = try openTargetParent(target.dropLast(), e)
        defer { if tp >= 0 && tp != root { Glibc.close(tp) } }
        var st = stat()
        if tp < 0 || tn.with({ fstatat(tp, $0, &st, AT_SYMLINK_NOFOLLOW) }) != 0 {
            guard tp >= 0 || errno == ENOENT else { throw sysError(e, "stat hard link target") }
            // Not in this layer: in a lower one, copied up first.
            try copyUp(target, e)
            if tp < 0 { tp = try openTargetParent(target.dropLast(), e) }
            guard tp >= 0 else { throw sysError(e, "open hard link target's parent") }
        } else if (st.st_mode & S_IFMT) == S_IFDIR {
            throw invalid(e, "hard link to a directory")
        }
        try replace(own, n, e, keepDirectory: false) { tn.with { t in n.with { linkat(tp, t, own, $0, 0) } } }
    }

    /// The hard link target's parent in this layer, opened; -1 (errno
    /// ENOENT) when it is not there. Not created.
    private func openTargetParent(_ parts: ArraySlice<ArraySlice<UInt8>>, _ e: TarEntry) throws -> Int32 {
        if parts.isEmpty { return root }
        let fd = openBeneath(Unpacker.join(parts))
        if fd < 0 && errno != ENOENT { throw parentError(e, Unpacker.join(parts)) }
        return fd
    }

    // MARK: Copy-up from a lower layer (hard links to its files)

    /// Finds `target` in the layers below as overlayfs would see it (a
    /// whiteout hides it, an opaque directory hides what is below it; no
    /// symlink is followed) and copies it into this layer at the same path.
    private func copyUp(_ target: [ArraySlice<UInt8>], _ e: TarEntry) throws {
        let missing = invalid(e, "hard link target \(TarReader.name(e.linkTarget ?? "")) not found in this layer or below")
        // This layer first, for its whiteouts and opaque directories above the target.
        let layers = [root] + lowers
        for (li, layer) in layers.enumerated() {
            var cur = layer
            var opaqueAbove = false
            var found = false
            defer { if cur != layer { Glibc.close(cur) } }
            for (i, c) in target.enumerated() {
                let cn = CName(c)
                var st = stat()
                guard cn.with({ fstatat(cur, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { break }
                let type = st.st_mode & S_IFMT
                if type == S_IFCHR && st.st_rdev == 0 { throw missing }  // whited out
                if i == target.count - 1 {
                    guard li > 0 else { break }
                    guard type != S_IFDIR else { throw invalid(e, "hard link to a directory") }
                    try copyEntry(from: cur, cn, st, layer: layer, to: target, e)
                    found = true
                    break
                }
                guard type == S_IFDIR else { break }
                let next = cn.with { openat(cur, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard next >= 0 else { break }
                var v: [UInt8] = [0, 0]
                let k = v.withUnsafeMutableBytes { mc_fgetxattr(next, opaqueXattr, $0.baseAddress, 2) }
                if k == 1 && v[0] == UInt8(ascii: "y") { opaqueAbove = true }
                if cur != layer { Glibc.close(cur) }
                cur = next
            }
            if found { return }
            if opaqueAbove { break }
        }
        throw missing
    }

    private func copyEntry(from dirfd: Int32, _ n: CName, _ st: stat, layer: Int32, to target: [ArraySlice<UInt8>], _ e: TarEntry) throws {
        let parentParts = target.dropLast()
        if !parentParts.isEmpty {
            cacheStale = true
            let fd = openBeneath(Unpacker.join(parentParts))
            if fd >= 0 { Glibc.close(fd) } else { try makeParents(parentParts, for: e, template: layer) }
        }
        let p = try parent(parentParts, for: e)
        let dn = CName(target.last!)
        let type = st.st_mode & S_IFMT
        switch type {
        case S_IFREG:
            let src = n.with { openat(dirfd, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
            guard src >= 0 else { throw sysError(e, "open lower layer's file") }
            defer { Glibc.close(src) }
            let dst = dn.with { openat(p, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            guard dst >= 0 else { throw sysError(e, "copy up") }
            defer { Glibc.close(dst) }
            try copyData(src, dst, e)
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let k = n.with { readlinkat(dirfd, $0, &buf, buf.count - 1) }
            guard k >= 0 else { throw sysError(e, "read lower layer's symlink") }
            try check(dn.with { symlinkat(buf, p, $0) }, e, "copy up")
        default:
            try check(dn.with { mknodat(p, $0, type | 0o600, st.st_rdev) }, e, "copy up")
        }
        try check(dn.with { fchownat(p, $0, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) }, e, "chown copy")
        if type != S_IFLNK { try check(dn.with { mc_fchmodat_nofollow(p, $0, st.st_mode & 0o7777) }, e, "chmod copy") }
        try copyXattrs(dirfd, n, p, dn, e)
        var ts = [st.st_atim, st.st_mtim]
        try check(dn.with { utimensat(p, $0, &ts, AT_SYMLINK_NOFOLLOW) }, e, "set times of copy")
    }

    private func copyData(_ src: Int32, _ dst: Int32, _ e: TarEntry) throws {
        while true {
            let k = mc_copy_file_range(src, dst, 1 << 30)
            if k > 0 { continue }
            if k == 0 { return }
            if errno == EINTR { continue }
            guard errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP else { throw sysError(e, "copy up") }
            break
        }
        if copyBuffer == nil { copyBuffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64) }
        let buf = copyBuffer!
        while true {
            let k = read(src, buf, 1 << 20)
            if k < 0 { if errno == EINTR { continue }; throw sysError(e, "copy up: read") }
            if k == 0 { return }
            try writeAll(dst, UnsafeRawBufferPointer(start: buf, count: k), e)
        }
    }

    private func copyXattrs(_ sp: Int32, _ sn: CName, _ dp: Int32, _ dn: CName, _ e: TarEntry) throws {
        var list = [CChar](repeating: 0, count: 65536)
        let k = sn.with { mc_llistxattrat(sp, $0, &list, list.count) }
        guard k > 0 else { return }
        var value = [UInt8](repeating: 0, count: 65536)
        var start = 0
        for i in 0..<k where list[i] == 0 {
            let xn = Array(list[start...i])
            start = i + 1
            let vk = sn.with { n in xn.withUnsafeBufferPointer { mc_lgetxattrat(sp, n, $0.baseAddress!, &value, value.count) } }
            guard vk >= 0 else { continue }
            let r = dn.with { n in xn.withUnsafeBufferPointer { mc_lsetxattrat(dp, n, $0.baseAddress!, value, vk) } }
            if r != 0 { throw sysError(e, "copy xattrs") }
        }
    }

    // MARK: The end

    /// Sets the directories' mtimes, now that their contents are in (a
    /// directory's own times do not change its parent's).
    func finishDirectories() throws {
        dropCache()
        for (path, t) in dirTimes {
            var ts = [timespec(tv_sec: Int(t.sec), tv_nsec: Int(t.nsec)), timespec(tv_sec: Int(t.sec), tv_nsec: Int(t.nsec))]
            if path.isEmpty {
                guard futimens(root, &ts) == 0 else { throw SysError("\(what): set times of the layer's root") }
                continue
            }
            // The parent beneath the layer, then the directory itself unfollowed.
            guard let parts = Unpacker.components(path), let last = parts.last else { continue }
            let pp = parts.dropLast()
            let p = pp.isEmpty ? root : openBeneath(Unpacker.join(pp))
            guard p >= 0 else { continue }
            defer { if p != root { Glibc.close(p) } }
            let fd = CName(last).with { openat(p, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else { continue }  // replaced by a later entry
            defer { Glibc.close(fd) }
            guard futimens(fd, &ts) == 0 else {
                throw SysError("\(what): \(TarReader.name(String(decoding: path, as: UTF8.self))): set times")
            }
        }
    }
}
