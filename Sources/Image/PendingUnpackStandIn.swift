import CArchive
import CCrypto
import Glibc
import Sys

// TEMPORARY stand-in for the unpack helper's API (Digest, SHA256Stream,
// Compression, TarReader, LayerUnpack), so the store compiles and runs
// before that work lands on main. Deleted in the merge that brings it.

public struct Digest: Hashable, CustomStringConvertible {
    public let hex: String
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let h = String(text.dropFirst(7))
        guard h.utf8.count == 64, h.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        hex = h
    }
    public init(hex: String) { self.hex = hex }
    public var description: String { "sha256:" + hex }
    public static func of(_ bytes: [UInt8]) -> Digest {
        var s = SHA256Stream()
        bytes.withUnsafeBytes { s.update($0) }
        return s.finish()
    }
}

public struct SHA256Stream {
    final class Box { var ctx = SHA256_CTX() }
    let box = Box()
    public init() { SHA256_Init(&box.ctx) }
    public mutating func update(_ p: UnsafeRawBufferPointer) { if p.count > 0 { SHA256_Update(&box.ctx, p.baseAddress, p.count) } }
    public mutating func finish() -> Digest {
        var md = [UInt8](repeating: 0, count: 32)
        SHA256_Final(&md, &box.ctx)
        let hexd = Array("0123456789abcdef")
        return Digest(hex: String(md.flatMap { [hexd[Int($0 >> 4)], hexd[Int($0 & 15)]] }))
    }
}

public enum Compression {
    case none, gzip, zstd
    public static func sniff(_ b: [UInt8]) -> Compression {
        if b.count >= 2, b[0] == 0x1f, b[1] == 0x8b { return .gzip }
        if b.count >= 4, b[0] == 0x28, b[1] == 0xb5, b[2] == 0x2f, b[3] == 0xfd { return .zstd }
        return .none
    }
}


public struct TarEntry {
    public enum Kind: Equatable { case file, directory, symlink, hardlink, characterDevice, blockDevice, fifo }
    public var path: String
    public var kind: Kind
    public var mode: UInt32 = 0
    public var size: Int64
    public var linkTarget: String?
}

public final class TarReader {
    let a: OpaquePointer
    let what: String
    public init(fd: Int32, what: String) throws {
        a = archive_read_new()
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        self.what = what
        guard archive_read_open_fd(a, fd, 1 << 20) == ARCHIVE_OK else {
            throw Failure(.invalid, "\(what): \(String(cString: archive_error_string(a)))")
        }
    }
    deinit { archive_read_free(a) }
    public func next() throws -> TarEntry? {
        var e: OpaquePointer?
        let r = archive_read_next_header(a, &e)
        if r == ARCHIVE_EOF { return nil }
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e = e else {
            throw Failure(.invalid, "\(what): \(archive_error_string(a).map { String(cString: $0) } ?? "bad tar")")
        }
        let t = archive_entry_filetype(e)
        var kind = TarEntry.Kind.fifo
        if archive_entry_hardlink(e) != nil { kind = .hardlink }
        else if t == 0o100000 { kind = .file }
        else if t == 0o040000 { kind = .directory }
        else if t == 0o120000 { kind = .symlink }
        let link = archive_entry_hardlink(e) ?? archive_entry_symlink(e)
        return TarEntry(path: String(cString: archive_entry_pathname(e)), kind: kind, size: archive_entry_size(e),
                        linkTarget: link.map { String(cString: $0) })
    }
    public func read(_ buf: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = archive_read_data(a, buf.baseAddress, buf.count)
        guard n >= 0 else { throw Failure(.invalid, "\(what): \(String(cString: archive_error_string(a)))") }
        return n
    }
    public func finish() throws -> (diffID: Digest, size: Int64) { (Digest.of([]), 0) }
}

public struct LayerUnpackResult { public var diffID: Digest; public var size: Int64 }

public enum LayerUnpack {
    public static func unpack(fd: Int32, into dir: String, lower: [String], what: String) throws -> LayerUnpackResult {
        // Pass 1: the uncompressed stream's digest.
        let r = archive_read_new()!
        defer { archive_read_free(r) }
        archive_read_support_filter_all(r)
        archive_read_support_format_raw(r)
        guard archive_read_open_fd(r, fd, 1 << 20) == ARCHIVE_OK else { throw Failure(.invalid, "\(what): cannot read") }
        var e: OpaquePointer?
        var h = SHA256Stream()
        var size: Int64 = 0
        if archive_read_next_header(r, &e) == ARCHIVE_OK {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buf.withUnsafeMutableBytes { archive_read_data(r, $0.baseAddress, $0.count) }
                guard n >= 0 else { throw Failure(.invalid, "\(what): \(String(cString: archive_error_string(r)))") }
                if n == 0 { break }
                buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                size += Int64(n)
            }
        }
        // Pass 2: extract.
        lseek(fd, 0, SEEK_SET)
        mkdir(dir, 0o755)
        let x = archive_read_new()!
        defer { archive_read_free(x) }
        archive_read_support_filter_all(x)
        archive_read_support_format_tar(x)
        guard archive_read_open_fd(x, fd, 1 << 20) == ARCHIVE_OK else { throw Failure(.invalid, "\(what): cannot read") }
        let w = archive_write_disk_new()!
        defer { archive_write_free(w) }
        archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS)
        while true {
            let rr = archive_read_next_header(x, &e)
            if rr == ARCHIVE_EOF { break }
            guard rr == ARCHIVE_OK || rr == ARCHIVE_WARN, let ent = e else { throw Failure(.invalid, "\(what): \(String(cString: archive_error_string(x)))") }
            let p = String(cString: archive_entry_pathname(ent))
            archive_entry_set_pathname(ent, dir + "/" + p)
            if let hl = archive_entry_hardlink(ent) { archive_entry_set_hardlink(ent, dir + "/" + String(cString: hl)) }
            if archive_write_header(w, ent) == ARCHIVE_OK {
                var buf: UnsafeRawPointer?
                var len = 0
                var off: la_int64_t = 0
                while archive_read_data_block(x, &buf, &len, &off) == ARCHIVE_OK {
                    archive_write_data_block(w, buf, len, off)
                }
            }
            archive_write_finish_entry(w)
        }
        return LayerUnpackResult(diffID: h.finish(), size: size)
    }
}
