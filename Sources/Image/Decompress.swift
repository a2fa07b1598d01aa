import CArchive
import Glibc
import Sys

// The byte stream under a layer's tar: read from a descriptor in big chunks,
// decompressed here (zlib for gzip, libzstd for zstd) rather than by
// libarchive's filters, so that the exact decompressed bytes pass through one
// place, where they are hashed (the DiffID) and counted.

public enum Compression: Equatable {
    case none, gzip, zstd

    /// By the magic bytes: 1f 8b is gzip, 28 b5 2f fd zstd, anything else none.
    public static func sniff(_ firstBytes: [UInt8]) -> Compression {
        if firstBytes.count >= 2 && firstBytes[0] == 0x1f && firstBytes[1] == 0x8b { return .gzip }
        if firstBytes.count >= 4 && firstBytes[0] == 0x28 && firstBytes[1] == 0xb5 && firstBytes[2] == 0x2f && firstBytes[3] == 0xfd {
            return .zstd
        }
        return .none
    }

    /// The name of a compression we recognise but do not read (xz, bzip2,
    /// lz4, compress), so the error can say so; nil otherwise.
    public static func unsupported(_ b: [UInt8]) -> String? {
        if b.count >= 6 && b[0] == 0xfd && b[1] == 0x37 && b[2] == 0x7a && b[3] == 0x58 && b[4] == 0x5a && b[5] == 0 { return "xz" }
        if b.count >= 3 && b[0] == 0x42 && b[1] == 0x5a && b[2] == 0x68 { return "bzip2" }
        if b.count >= 4 && b[0] == 0x04 && b[1] == 0x22 && b[2] == 0x4d && b[3] == 0x18 { return "lz4" }
        if b.count >= 2 && b[0] == 0x1f && (b[1] == 0x9d || b[1] == 0xa0) { return "compress" }
        return nil
    }
}

/// Reads `fd` to its end and yields the decompressed stream chunk by chunk,
/// hashing it (and, if asked, the raw stream too). Memory is bounded: two
/// buffers of `chunkSize` and the decompressor's state (zlib's 32 KiB window,
/// zstd's window up to its default limit of 128 MiB, which a frame asking
/// for more is refused).
final class StreamDecoder {
    static let chunkSize = 1 << 20

    let fd: Int32
    let what: String
    private(set) var compression: Compression = .none

    private let inBuf: UnsafeMutableRawPointer
    private let outBuf: UnsafeMutableRawPointer
    /// Unconsumed raw bytes are inBuf[inStart..<inEnd].
    private var inStart = 0, inEnd = 0
    private var eof = false
    private var finished = false

    private var hash = SHA256Stream()
    private(set) var size: Int64 = 0
    private var rawHash: SHA256Stream?
    private(set) var rawSize: Int64 = 0

    private var zs: UnsafeMutablePointer<z_stream>?
    private var gzipMemberDone = false
    private var zd: OpaquePointer?
    private var zstdInFrame = false

    init(fd: Int32, what: String, hashRaw: Bool) throws {
        self.fd = fd
        self.what = what
        inBuf = UnsafeMutableRawPointer.allocate(byteCount: StreamDecoder.chunkSize, alignment: 64)
        outBuf = UnsafeMutableRawPointer.allocate(byteCount: StreamDecoder.chunkSize, alignment: 64)
        if hashRaw { rawHash = SHA256Stream() }
        // Enough bytes to tell the compression.
        while inEnd < 6 && !eof { try fill() }
        let head = [UInt8](UnsafeRawBufferPointer(start: inBuf, count: inEnd))
        if let name = Compression.unsupported(head) {
            throw Failure(.invalid, "\(what): \(name)-compressed data is not supported (gzip, zstd or uncompressed only)")
        }
        compression = Compression.sniff(head)
        switch compression {
        case .none: break
        case .gzip:
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            // 15 + 16: a gzip wrapper only, the largest window.
            guard inflateInit2_(z, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                z.deallocate()
                throw Failure(.failed, "\(what): zlib inflateInit2 failed")
            }
            zs = z
        case .zstd:
            guard let d = ZSTD_createDStream() else { throw Failure(.failed, "\(what): ZSTD_createDStream failed") }
            zd = d
            _ = ZSTD_initDStream(d)
        }
    }

    deinit {
        if let z = zs { inflateEnd(z); z.deallocate() }
        if let d = zd { ZSTD_freeDStream(d) }
        inBuf.deallocate()
        outBuf.deallocate()
    }

    /// Reads more raw bytes behind the unconsumed ones (moved to the front).
    private func fill() throws {
        if inStart > 0 {
            if inEnd > inStart { memmove(inBuf, inBuf + inStart, inEnd - inStart) }
            inEnd -= inStart
            inStart = 0
        }
        guard inEnd < StreamDecoder.chunkSize else { return }
        while true {
            let n = Glibc.read(fd, inBuf + inEnd, StreamDecoder.chunkSize - inEnd)
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("read \(what)")
            }
            if n == 0 { eof = true; return }
            rawHash?.update(UnsafeRawBufferPointer(start: inBuf + inEnd, count: n))
            rawSize += Int64(n)
            inEnd += n
            return
        }
    }

    private func produced(_ p: UnsafeRawPointer, _ n: Int) -> UnsafeRawBufferPointer {
        let b = UnsafeRawBufferPointer(start: p, count: n)
        hash.update(b)
        size += Int64(n)
        return b
    }

    /// The next chunk of the decompressed stream, valid until the next call;
    /// empty at its end (and from then on).
    func next() throws -> UnsafeRawBufferPointer {
        if finished { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let chunk: UnsafeRawBufferPointer
        switch compression {
        case .none: chunk = try nextPlain()
        case .gzip: chunk = try nextGzip()
        case .zstd: chunk = try nextZstd()
        }
        if chunk.count == 0 { finished = true }
        return chunk
    }

    private func nextPlain() throws -> UnsafeRawBufferPointer {
        if inEnd == inStart {
            inStart = 0; inEnd = 0
            if !eof { try fill() }
        }
        let n = inEnd - inStart
        guard n > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let p = UnsafeRawPointer(inBuf + inStart)
        inStart = inEnd
        return produced(p, n)
    }

    private func nextGzip() throws -> UnsafeRawBufferPointer {
        let z = zs!
        while true {
            if gzipMemberDone {
                // Another member, the end, or zeros (padding some writers add).
                while inEnd - inStart < 2 && !eof { try fill() }
                let avail = inEnd - inStart
                if avail == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
                let b0 = inBuf.load(fromByteOffset: inStart, as: UInt8.self)
                if avail >= 2 && b0 == 0x1f && inBuf.load(fromByteOffset: inStart + 1, as: UInt8.self) == 0x8b {
                    guard inflateReset(z) == Z_OK else { throw Failure(.failed, "\(what): zlib inflateReset failed") }
                    gzipMemberDone = false
                    continue
                }
                try skipZeros(after: "gzip data")
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
            if inStart == inEnd && !eof { try fill() }
            z.pointee.next_in = (inBuf + inStart).assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_in = uInt(inEnd - inStart)
            z.pointee.next_out = outBuf.assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = uInt(StreamDecoder.chunkSize)
            let r = inflate(z, Z_NO_FLUSH)
            inStart = inEnd - Int(z.pointee.avail_in)
            let n = StreamDecoder.chunkSize - Int(z.pointee.avail_out)
            switch r {
            case Z_STREAM_END:
                gzipMemberDone = true
            case Z_OK, Z_BUF_ERROR:
                if n == 0 && inStart == inEnd && eof {
                    throw Failure(.invalid, "\(what): truncated gzip data (unexpected end of file)")
                }
            case Z_MEM_ERROR:
                throw Failure(.failed, "\(what): gzip: out of memory")
            default:
                let msg = z.pointee.msg.map { String(cString: $0) } ?? "error \(r)"
                throw Failure(.invalid, "\(what): corrupt gzip data: \(msg)")
            }
            if n > 0 { return produced(outBuf, n) }
        }
    }

    private func nextZstd() throws -> UnsafeRawBufferPointer {
        let d = zd!
        while true {
            if inStart == inEnd && !eof { try fill() }
            var input = ZSTD_inBuffer(src: inBuf + inStart, size: inEnd - inStart, pos: 0)
            var output = ZSTD_outBuffer(dst: outBuf, size: StreamDecoder.chunkSize, pos: 0)
            let r = ZSTD_decompressStream(d, &output, &input)
            if ZSTD_isError(r) != 0 {
                throw Failure(.invalid, "\(what): corrupt zstd data: \(String(cString: ZSTD_getErrorName(r)))")
            }
            inStart += input.pos
            // 0: a frame ended and is flushed. (A call without progress
            // after that returns the next frame header's size: not counted.)
            if input.pos > 0 || output.pos > 0 { zstdInFrame = r != 0 }
            if output.pos > 0 { return produced(outBuf, output.pos) }
            if inStart == inEnd && eof {
                guard !zstdInFrame else { throw Failure(.invalid, "\(what): truncated zstd data (unexpected end of file)") }
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
        }
    }

    /// Accepts only zero bytes to the end of the file.
    private func skipZeros(after: String) throws {
        while true {
            for i in inStart..<inEnd where inBuf.load(fromByteOffset: i, as: UInt8.self) != 0 {
                throw Failure(.invalid, "\(what): trailing garbage after \(after)")
            }
            inStart = inEnd
            if eof { return }
            try fill()
        }
    }

    /// Reads the decompressed stream to its end; its digest and size.
    func finish() throws -> (digest: Digest, size: Int64) {
        while try next().count > 0 {}
        return (hash.finish(), size)
    }

    /// The raw stream's digest and size, after `finish` (when asked for).
    func rawDigest() -> (digest: Digest, size: Int64)? {
        guard finished, var h = rawHash else { return nil }
        rawHash = nil
        return (h.finish(), rawSize)
    }
}
