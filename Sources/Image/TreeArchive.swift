import CArchive
import Glibc
import Spec
import Sys

// `cp`'s two halves, over a tar stream: a tree written out as tar by
// descriptors only (TreeArchiver), and a tar extracted confined to a
// directory (ConfinedExtract, Unpacker in its plain mode).
//
// The tree may be a container's, whose every component can be a symlink
// or be swapped for one while we walk it. So no path string is ever
// opened below the top: each entry is opened O_PATH | O_NOFOLLOW in its
// parent's descriptor and fstat'ed there; a directory is listed through
// openat(fd, "."), a regular file read through a reopen of that very
// inode (ProcFS.reopen: /proc/PID/fd of a procfs of our own, never the
// container's), so a swap between the stat and the open can neither make
// us follow a symlink nor open a device or a fifo. A symlink is written as
// a symlink, never followed.

/// A tar stream (pax) of trees read by descriptor, written onto a file
/// descriptor by libarchive.
public final class TreeArchiver {
    private let archive: OpaquePointer
    private let what: String
    /// Our /proc/PID/fd (ProcFS.fdDirectory), opened by the caller before it
    /// entered another mount namespace.
    private let procFds: Int32
    /// Hard links: the first name written for each (dev, ino) with nlink > 1.
    private var links: [String: [UInt8]] = [:]
    private var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    private var closed = false

    /// Writes to `fd`; `procFds` is the caller's /proc/PID/fd (kept open by
    /// the caller); `what` names the stream in errors.
    public init(fd: Int32, procFds: Int32, what: String) throws {
        guard let a = archive_write_new() else { throw Failure(.failed, "\(what): archive_write_new failed") }
        archive = a
        self.what = what
        self.procFds = procFds
        archive_write_set_format_pax_restricted(a)
        archive_write_set_bytes_in_last_block(a, 1)
        guard archive_write_open_fd(a, fd) == ARCHIVE_OK else {
            let e = TreeArchiver.error(a, what)
            archive_write_free(a)
            buffer.deallocate()
            throw e
        }
    }

    deinit {
        if !closed { archive_write_free(archive) }
        buffer.deallocate()
    }

    static func error(_ a: OpaquePointer, _ what: String) -> Failure {
        let e = archive_errno(a)
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "libarchive error"
        if e > 0 { return SysError(what, errno: e) }
        return Failure(.failed, "\(what): \(msg)")
    }

    /// Adds the object open O_PATH on `fd` (not taken) and, when it is a
    /// directory, everything beneath it, under the tar name `name` (an
    /// empty name: the children alone, at the top of the archive).
    public func add(_ fd: Int32, name: [UInt8]) throws {
        try entry(fd, name: name, depth: 0)
    }

    /// Ends the archive (its two zero blocks), flushed to the descriptor.
    public func finish() throws {
        guard archive_write_close(archive) == ARCHIVE_OK else { throw TreeArchiver.error(archive, what) }
        archive_write_free(archive)
        closed = true
    }

    private func join(_ parent: [UInt8], _ child: [UInt8]) -> [UInt8] {
        parent.isEmpty ? child : parent + [UInt8(ascii: "/")] + child
    }

    private func entry(_ fd: Int32, name: [UInt8], depth: Int) throws {
        guard depth < 1024 else { throw Failure(.invalid, "\(what): \(quotedName(name)): more than 1024 directories deep") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SysError("\(what): \(quotedName(name)): stat") }
        let type = st.st_mode & S_IFMT
        if name.isEmpty {
            guard type == S_IFDIR else { throw Failure(.invalid, "\(what): not a directory") }
            try children(fd, name: name, depth: depth)
            return
        }
        guard let e = archive_entry_new() else { throw Failure(.failed, "\(what): archive_entry_new failed") }
        defer { archive_entry_free(e) }
        CName(name).with { archive_entry_copy_pathname(e, $0) }
        archive_entry_set_perm(e, st.st_mode & 0o7777)
        archive_entry_set_uid(e, la_int64_t(st.st_uid))
        archive_entry_set_gid(e, la_int64_t(st.st_gid))
        archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
        var data: Int32 = -1
        defer { if data >= 0 { close(data) } }
        switch type {
        case S_IFDIR:
            archive_entry_set_filetype(e, UInt32(Glibc.S_IFDIR))
        case S_IFREG:
            let key = "\(st.st_dev):\(st.st_ino)"
            if st.st_nlink > 1, let first = links[key] {
                archive_entry_set_filetype(e, UInt32(Glibc.S_IFREG))
                CName(first).with { archive_entry_copy_hardlink(e, $0) }
                archive_entry_set_size(e, 0)
                break
            }
            if st.st_nlink > 1 { links[key] = name }
            data = try ProcFS.reopen(fd, O_RDONLY | O_NOCTTY | O_NONBLOCK, in: procFds, what: "\(what): \(quotedName(name)): open")
            archive_entry_set_filetype(e, UInt32(Glibc.S_IFREG))
            archive_entry_set_size(e, la_int64_t(st.st_size))
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(fd, "", &buf, buf.count - 1)
            guard n >= 0 else { throw SysError("\(what): \(quotedName(name)): readlink") }
            archive_entry_set_filetype(e, UInt32(Glibc.S_IFLNK))
            archive_entry_copy_symlink(e, buf)
        case S_IFCHR, S_IFBLK:
            archive_entry_set_filetype(e, UInt32(type))
            let d = UInt64(st.st_rdev)
            archive_entry_set_rdevmajor(e, dev_t(((d >> 8) & 0xfff) | ((d >> 32) & ~0xfff)))
            archive_entry_set_rdevminor(e, dev_t((d & 0xff) | ((d >> 12) & ~0xff)))
        case S_IFIFO:
            archive_entry_set_filetype(e, UInt32(Glibc.S_IFIFO))
        default:
            return  // a socket: nothing a tar can hold
        }
        guard archive_write_header(archive, e) >= ARCHIVE_WARN else { throw TreeArchiver.error(archive, what) }
        if data >= 0 { try copyData(data, size: Int64(st.st_size), name: name) }
        if type == S_IFDIR { try children(fd, name: name, depth: depth) }
    }

    /// A file's data: exactly `size` bytes (the file may change while we
    /// read it: what is beyond is cut, what is missing is zeros).
    private func copyData(_ fd: Int32, size: Int64, name: [UInt8]) throws {
        var left = size
        while left > 0 {
            let want = Int(min(Int64(buffer.count), left))
            var n = read(fd, buffer.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("\(what): \(quotedName(name)): read")
            }
            if n == 0 {
                memset(buffer.baseAddress!, 0, want)
                n = want
            }
            guard archive_write_data(archive, buffer.baseAddress, n) == n else { throw TreeArchiver.error(archive, what) }
            left -= Int64(n)
        }
    }

    private func children(_ fd: Int32, name: [UInt8], depth: Int) throws {
        let dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw SysError("\(what): \(quotedName(name)): open directory") }
        for child in try TreeArchiver.names(dir, what: "\(what): \(quotedName(name))") {
            let c = CName(child).with { openat(fd, $0, Kernel.O_PATH | O_NOFOLLOW | O_CLOEXEC) }
            if c < 0 {
                if errno == ENOENT { continue }  // gone while we looked
                throw SysError("\(what): \(quotedName(join(name, child))): open")
            }
            defer { close(c) }
            try entry(c, name: join(name, child), depth: depth + 1)
        }
    }

    /// The names in the directory open on `dir` (which this closes) as raw
    /// bytes, sorted, without "." and "..".
    static func names(_ dir: Int32, what: String) throws -> [[UInt8]] {
        guard let d = fdopendir(dir) else {
            let e = SysError("\(what): read directory")
            close(dir)
            throw e
        }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let ent = readdir(d) {
            let n: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if n == [0x2e] || n == [0x2e, 0x2e] { continue }
            out.append(n)
        }
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func quotedName(_ n: [UInt8]) -> String { Quote.quoted(String(decoding: n, as: UTF8.self), max: 256) }
}

/// How ConfinedExtract treats each entry on the way in.
public struct ExtractPolicy {
    /// Every entry's owner, instead of the archive's (nil: the archive's).
    public var owner: (uid: UInt32, gid: UInt32)?
    /// Setuid and setgid bits dropped (what a container hands the host).
    public var dropSetID = false
    /// Device nodes skipped (counted in `skipped`) instead of made.
    public var skipDevices = false
    public init() {}
}

/// A tar extracted into a directory, confined to it: Unpacker in its plain
/// mode (no whiteouts, no overlayfs xattrs, no directory replaced by a
/// non-directory), every parent resolved beneath the directory with
/// RESOLVE_IN_ROOT, so a symlink the archive plants (`x -> /etc`, then
/// `x/passwd`) resolves inside it, never beyond; ".." names are refused.
public final class ConfinedExtract {
    private let unpacker: Unpacker
    public let policy: ExtractPolicy
    /// Device nodes left out (skipDevices).
    public private(set) var skipped = 0

    /// Into the directory open on `dir` (taken: closed with the extractor).
    public init(into dir: Int32, policy: ExtractPolicy, what: String) throws {
        unpacker = try Unpacker(rootFd: dir, what: what)
        unpacker.plain = true
        self.policy = policy
    }

    deinit { unpacker.close() }

    /// Writes one entry (its data read from `reader`), after the policy.
    public func apply(_ entry: TarEntry, _ reader: TarReader) throws {
        var e = entry
        if policy.skipDevices && (e.kind == .characterDevice || e.kind == .blockDevice) {
            skipped += 1
            return
        }
        if let o = policy.owner { e.uid = o.uid; e.gid = o.gid }
        if policy.dropSetID && e.kind != .directory { e.mode &= ~UInt32(0o6000) }
        try unpacker.apply(e, reader)
    }

    /// Sets the directories' times; call once every entry is in.
    public func finish() throws { try unpacker.finishDirectories() }

    /// An archive name's components ("/" and "./" prefixes and "."
    /// dropped); nil for one with a ".." component.
    public static func components(_ raw: [UInt8]) -> [[UInt8]]? {
        Unpacker.components(raw).map { $0.map { Array($0) } }
    }
}
