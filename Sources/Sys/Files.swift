import CShim
import Glibc
import Spec

// Thin, errno-carrying wrappers over the file calls the runtime uses.

/// `strerror` in the lower case the rest of our messages use
/// ("no such file or directory"), which podman matches on.
public func errnoText(_ e: Int32) -> String {
    guard let p = strerror(e) else { return "errno \(e)" }
    var s = String(cString: p)
    if let f = s.first, f.isUppercase, s.dropFirst().first?.isLowercase ?? true { s = f.lowercased() + s.dropFirst() }
    return s
}

public enum FS {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The canonical absolute path, or nil if it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(cString: buf)
    }

    /// Makes `path` absolute against the current directory, then cleans it
    /// (Path.clean: `.` and `..` removed textually; the path need not exist).
    public static func absolute(_ path: String) -> String {
        Path.clean(Path.isAbsolute(path) ? path : currentDirectory() + "/" + path)
    }

    public static func readBytes(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("read \(path)")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public static func readString(_ path: String) throws -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// A regular file of the tree at `root`, `path` resolved inside it as
    /// if it were "/" (openat2 RESOLVE_IN_ROOT: "..", absolute symlinks and
    /// /proc magic links never leave it), at most `limit` bytes; nil when it
    /// is missing, not a regular file (a fifo would block), or larger. For
    /// files of a container's or an image's root read on the host's side
    /// (/etc/passwd for user names): `/etc/passwd -> /etc/shadow` in an
    /// image is the image's shadow, not the host's.
    public static func readInRoot(_ root: String, _ path: String, limit: Int = 4 << 20) -> String? {
        let dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return nil }
        defer { close(dir) }
        let fd = Int32(mc_openat2(dir, path, UInt64(O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), 0,
                                  Kernel.RESOLVE_IN_ROOT | Kernel.RESOLVE_NO_MAGICLINKS))
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size <= limit else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        while off < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + off, $0.count - off, off_t(off)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            off += n
        }
        return String(decoding: out[0..<off], as: UTF8.self)
    }

    public static func writeAll(fd: Int32, _ bytes: [UInt8], what: String) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError(what)
            }
            off += n
        }
    }

    /// Writes a file whole: to a temporary name beside it, then rename, so a
    /// reader sees the old or the new file, never a part.
    public static func writeAtomically(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// `durable`: the temporary file is a fresh one (O_EXCL, never through
    /// a symlink), gets exactly `mode` whatever the umask, and the file and
    /// its directory are synced, for what a user keeps (credentials).
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, durable: Bool = false) throws {
        let tmp = path + ".tmp-\(getpid())" + (durable ? "-\(UInt32.random(in: 0...UInt32.max))" : "")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC | (durable ? O_EXCL | O_NOFOLLOW : O_TRUNC), mode)
        guard fd >= 0 else { throw SysError("create \(tmp)") }
        do {
            if durable { guard fchmod(fd, mode) == 0 else { throw SysError("chmod \(tmp)") } }
            try writeAll(fd: fd, bytes, what: "write \(tmp)")
            if durable { guard fsync(fd) == 0 else { throw SysError("fsync \(tmp)") } }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = SysError("rename \(tmp) to \(path)")
            unlink(tmp)
            throw e
        }
        if durable {
            let dir = Path.hasSlash(path) ? Path.split(path).parent : "."
            let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if d >= 0 { fsync(d); close(d) }
        }
    }

    /// Writes a file whole, as writeAtomically, for a file rewritten several
    /// times in a row under a lock (a container's state, three times in a
    /// `run`): the bytes go into `spare`, made once and reused, and the two
    /// names are exchanged (renameat2 RENAME_EXCHANGE), so that `spare` then
    /// holds the old file. A reader sees the old or the new file, never a
    /// part, and no inode is made or freed after the second write: on ext4
    /// each replacing rename freed one, then searched past it for the next.
    /// Without `path` yet, or where exchange is not supported, a rename.
    public static func writeExchanging(_ path: String, _ bytes: [UInt8], spare: String, mode: mode_t) throws {
        let fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw SysError("create \(spare)") }
        do {
            try writeAll(fd: fd, bytes, what: "write \(spare)")
        } catch {
            close(fd)
            unlink(spare)
            throw error
        }
        close(fd)
        if mc_rename_exchange(spare, path) == 0 { return }
        let e = errno
        guard e == ENOENT || e == EINVAL || e == ENOSYS else {
            unlink(spare)
            throw SysError("exchange \(spare) and \(path)", errno: e)
        }
        guard rename(spare, path) == 0 else {
            let err = SysError("rename \(spare) to \(path)")
            unlink(spare)
            throw err
        }
    }

    /// mkdir -p; returns the directories it created, outermost first, so a
    /// failed command can remove exactly those.
    @discardableResult
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws -> [String] {
        // Usually the parent exists: one mkdir. Otherwise from the top down.
        let whole = absolute(path)
        if mkdir(whole, mode) == 0 { return [whole] }
        if errno == EEXIST {
            guard isDirectory(whole) else { throw SysError("mkdir \(whole)", errno: ENOTDIR) }
            return []
        }
        guard errno == ENOENT else { throw SysError("mkdir \(whole)") }
        var created: [String] = []
        var cur = ""
        for c in Path.components(absolute(path)) {
            cur += "/" + c
            if mkdir(cur, mode) == 0 {
                created.append(cur)
            } else if errno != EEXIST {
                throw SysError("mkdir \(cur)")
            } else if !isDirectory(cur) {
                throw SysError("mkdir \(cur)", errno: ENOTDIR)
            }
        }
        return created
    }
}

/// One entry of a directory: its name and its type as readdir(3) gives it
/// (DT_DIR, DT_REG, ..., or DT_UNKNOWN where the filesystem does not say).
public struct DirectoryEntry: Equatable {
    public var name: String
    public var type: UInt8

    public init(name: String, type: UInt8) {
        self.name = name
        self.type = type
    }
}

extension FS {
    /// The entries of the directory at `path`, in readdir's order, without
    /// "." and ".."; nil when it cannot be opened (errno says why).
    public static func directoryEntries(_ path: String) -> [DirectoryEntry]? {
        guard let d = opendir(path) else { return nil }
        return readEntries(d)
    }

    /// The same for the directory open on `fd`, which this takes: `fd` is
    /// closed when it returns, also when it returns nil (fdopendir refused
    /// it; errno says why).
    public static func directoryEntries(fd: Int32) -> [DirectoryEntry]? {
        guard let d = fdopendir(fd) else {
            let e = errno
            close(fd)
            errno = e
            return nil
        }
        return readEntries(d)
    }

    /// The names in the directory at `path`, sorted; none when it cannot be opened.
    public static func listDirectory(_ path: String) -> [String] {
        (directoryEntries(path) ?? []).map { $0.name }.sorted()
    }

    /// Whether the directory at `path` has an entry whose name `match`es:
    /// read up to the first such entry only (false when it cannot be opened).
    public static func anyEntry(_ path: String, _ match: (String) -> Bool) -> Bool {
        guard let d = opendir(path) else { return false }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." && match(name) { return true }
        }
        return false
    }

    /// Reads a directory stream to its end, then closes it.
    static func readEntries(_ d: OpaquePointer) -> [DirectoryEntry] {
        defer { closedir(d) }
        var out: [DirectoryEntry] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(DirectoryEntry(name: name, type: e.pointee.d_type)) }
        }
        return out
    }
}

public enum Env {
    public static func get(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }
}

extension FS {
    /// Reads an open descriptor to its end.
    public static func readFd(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw SysError("read fd \(fd)") }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}
