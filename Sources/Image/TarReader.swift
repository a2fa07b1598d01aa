import CArchive
import Glibc
import Spec
import Sys

// A tar stream, parsed by libarchive (ustar, pax, GNU long names and sparse
// files, SCHILY.xattr and LIBARCHIVE.xattr records) over our own
// decompression (StreamDecoder), which hashes the decompressed bytes: the
// layer's DiffID.

public struct TarEntry {
    public enum Kind: Equatable { case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo }

    /// As in the archive, without NUL (decoded as UTF-8; `rawPath` has the bytes).
    public var path: String
    public var kind: Kind
    /// The permission bits with setuid, setgid and sticky (07777).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var mtime: (sec: Int64, nsec: Int64)
    /// A symlink's target or a hard link's target path.
    public var linkTarget: String?
    public var devMajor: UInt32
    public var devMinor: UInt32
    public var xattrs: [(name: String, value: [UInt8])]

    /// The path's bytes as the archive has them (not necessarily UTF-8).
    public var rawPath: [UInt8]
    /// The link target's bytes.
    public var rawLinkTarget: [UInt8]?
}

public final class TarReader {
    private let archive: OpaquePointer
    let source: ChunkSource
    public let what: String
    /// An error thrown inside libarchive's read callback, rethrown to our caller.
    private var pendingError: Error?
    private var atEnd = false
    private var finished = false
    private var result: (diffID: Digest, size: Int64)?

    /// Reads the tar on `fd` (gzip, zstd or uncompressed, by its first
    /// bytes); `what` names the file in errors. With `hashRaw`, the raw
    /// (compressed) stream is hashed too: `rawDigest` after `finish`. When
    /// `fd` is a regular file, a second thread reads, decompresses and
    /// hashes ahead (`threaded: false` keeps it all on the caller's thread);
    /// it is stopped and joined by `finish` or when the reader goes away.
    public init(fd: Int32, what: String, hashRaw: Bool = false, threaded: Bool = true) throws {
        self.what = what
        source = ChunkSource(decoder: try StreamDecoder(fd: fd, what: what, hashRaw: hashRaw), threaded: threaded)
        guard let a = archive_read_new() else { throw Failure(.failed, "\(what): archive_read_new failed") }
        archive = a
        archive_read_support_format_tar(a)
        archive_read_support_format_empty(a)
        let client = Unmanaged.passUnretained(self).toOpaque()
        let r = archive_read_open(a, client, nil, tarReaderRead, nil)
        // (On a throw, deinit frees the archive: every property is set.)
        if r != ARCHIVE_OK { throw error(r) }
    }

    deinit {
        archive_read_free(archive)
        source.stop()
    }

    /// The compression the stream was found in.
    public var compression: Compression { source.decoder.compression }

    /// libarchive's read callback: the next decompressed chunk.
    fileprivate func supply(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        do {
            let c = try source.next()
            out.pointee = c.baseAddress
            return c.count
        } catch {
            pendingError = error
            return -1
        }
    }

    private func error(_ r: Int32) -> Error {
        if let e = pendingError { return e }
        let msg = archive_error_string(archive).map { String(cString: $0) } ?? "libarchive error \(r)"
        return Failure(.invalid, "\(what): \(TarReader.explain(msg))")
    }

    private static func explain(_ msg: String) -> String {
        switch msg {
        case "Unrecognized archive format": return "not a tar archive"
        case "Damaged tar archive": return "damaged tar archive (bad header checksum)"
        default: return msg.prefix(1).lowercased() + msg.dropFirst()
        }
    }

    /// The next entry's header; nil at the end of the archive.
    public func next() throws -> TarEntry? {
        guard !atEnd else { return nil }
        var entry: OpaquePointer?
        let r = archive_read_next_header(archive, &entry)
        if r == ARCHIVE_EOF { atEnd = true; return nil }
        // WARN: an unconvertible name or a malformed pax record libarchive
        // skipped; the entry itself is whole.
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e = entry else { throw error(r) }
        return try TarReader.convert(e, what: what)
    }

    /// Reads the current entry's data; 0 at its end.
    public func read(_ buf: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buf.count > 0 else { return 0 }
        let n = archive_read_data(archive, buf.baseAddress, buf.count)
        if n < 0 { throw error(Int32(truncatingIfNeeded: n)) }
        return n
    }

    /// The current entry's data block by block, without copying: each block
    /// (valid until the next call) and its offset in the file (sparse files
    /// have gaps); nil at the entry's end.
    func readBlock() throws -> (UnsafeRawBufferPointer, Int64)? {
        var p: UnsafeRawPointer?
        var n = 0
        var off: la_int64_t = 0
        let r = archive_read_data_block(archive, &p, &n, &off)
        if r == ARCHIVE_EOF { return nil }
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN else { throw error(r) }
        return (UnsafeRawBufferPointer(start: p, count: n), off)
    }

    /// Drains the rest of the decompressed stream (the padding after the
    /// archive's end is part of it); its SHA-256 and byte count.
    public func finish() throws -> (diffID: Digest, size: Int64) {
        if let r = result { return r }
        if let e = pendingError { throw e }
        let r = try source.finish()
        result = (r.digest, r.size)
        return result!
    }

    /// The raw stream's digest and size, after `finish`, when asked for with `hashRaw`.
    public func rawDigest() -> (digest: Digest, size: Int64)? { result == nil ? nil : source.decoder.rawDigest() }

    // Names: the process runs in the C locale (nothing calls setlocale), in
    // which libarchive hands names over as the archive's bytes, UTF-8 or
    // not (UnpackTests checks a pax UTF-8 name, a Latin-1 ustar name and a
    // pax hdrcharset=BINARY one).

    /// An entry's name as errors quote it.
    static func name(_ path: String) -> String { Quote.quoted(path, max: 256) }

    static func bytes(_ p: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let p = p else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }

    static func convert(_ e: OpaquePointer, what: String) throws -> TarEntry {
        let raw = bytes(archive_entry_pathname(e)) ?? []
        let path = String(decoding: raw, as: UTF8.self)
        var kind: TarEntry.Kind
        var rawTarget: [UInt8]?
        if let h = bytes(archive_entry_hardlink(e)) {
            kind = .hardlink
            rawTarget = h
        } else {
            switch archive_entry_filetype(e) {
            case UInt32(Glibc.S_IFREG): kind = .file
            case UInt32(Glibc.S_IFDIR): kind = .directory
            case UInt32(Glibc.S_IFLNK): kind = .symlink; rawTarget = bytes(archive_entry_symlink(e)) ?? []
            case UInt32(Glibc.S_IFCHR): kind = .characterDevice
            case UInt32(Glibc.S_IFBLK): kind = .blockDevice
            case UInt32(Glibc.S_IFIFO): kind = .fifo
            case let t:
                throw Failure(.invalid, "\(what): \(TarReader.name(path)): unsupported entry type (mode \(String(t, radix: 8)))")
            }
        }
        let uid = archive_entry_uid(e), gid = archive_entry_gid(e)
        guard uid >= 0 && uid < 0xffff_ffff && gid >= 0 && gid < 0xffff_ffff else {
            throw Failure(.invalid, "\(what): \(TarReader.name(path)): owner \(uid):\(gid) out of range")
        }
        let size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0
        guard size >= 0 else { throw Failure(.invalid, "\(what): \(TarReader.name(path)): negative size") }
        var xattrs: [(name: String, value: [UInt8])] = []
        if archive_entry_xattr_reset(e) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var vsize = 0
            while archive_entry_xattr_next(e, &name, &value, &vsize) == ARCHIVE_OK {
                guard let n = name else { continue }
                let v = vsize > 0 && value != nil ? [UInt8](UnsafeRawBufferPointer(start: value, count: vsize)) : []
                xattrs.append((String(cString: n), v))
            }
        }
        return TarEntry(
            path: path, kind: kind, mode: UInt32(archive_entry_perm(e)) & 0o7777,
            uid: UInt32(uid), gid: UInt32(gid), size: size,
            mtime: (archive_entry_mtime_is_set(e) != 0 ? Int64(archive_entry_mtime(e)) : 0,
                    archive_entry_mtime_is_set(e) != 0 ? Int64(archive_entry_mtime_nsec(e)) : 0),
            linkTarget: rawTarget.map { String(decoding: $0, as: UTF8.self) },
            devMajor: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(e)),
            devMinor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(e)),
            xattrs: xattrs, rawPath: raw, rawLinkTarget: rawTarget)
    }
}

private func tarReaderRead(_ a: OpaquePointer?, _ client: UnsafeMutableRawPointer?,
                           _ out: UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t {
    let reader = Unmanaged<TarReader>.fromOpaque(client!).takeUnretainedValue()
    return reader.supply(out!)
}
