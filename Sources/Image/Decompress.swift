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

/// Reads `fd` to its end and yields the decompressed stream into buffers
/// it is given, hashing it (and, if asked, the raw stream too). Memory is
/// bounded: one input buffer of `chunkSize` and the decompressor's state
/// (zlib's 32 KiB window; zstd's window, up to its default limit of 128 MiB,
/// beyond which a frame is refused).
final class StreamDecoder {
    static let chunkSize = 1 << 20

    let fd: Int32
    let what: String
    private(set) var compression: Compression = .none

    private let inBuf: UnsafeMutableRawPointer
    /// Unconsumed raw bytes are inBuf[inStart..<inEnd].
    private var inStart = 0, inEnd = 0
    private var eof = false
    private var finished = false

    private var hash = SHA256Stream()
    private(set) var size: Int64 = 0
    private var rawHash: SHA256Stream?
    private(set) var rawSize: Int64 = 0
    private var hashRaw: Bool
    private var result: (digest: Digest, size: Int64)?

    private var zs: UnsafeMutablePointer<z_stream>?
    private var gzipMemberDone = false
    private var zd: OpaquePointer?
    private var zstdInFrame = false

    init(fd: Int32, what: String, hashRaw: Bool) throws {
        self.fd = fd
        self.what = what
        self.hashRaw = hashRaw
        inBuf = UnsafeMutableRawPointer.allocate(byteCount: StreamDecoder.chunkSize, alignment: 64)
        if hashRaw { rawHash = SHA256Stream() }
        // Enough bytes to tell the compression.
        while inEnd < 6 && !eof { try fill() }
        let head = [UInt8](UnsafeRawBufferPointer(start: inBuf, count: inEnd))
        if let name = Compression.unsupported(head) {
            throw Failure(.invalid, "\(what): \(name)-compressed data is not supported (gzip, zstd or uncompressed only)")
        }
        compression = Compression.sniff(head)
        switch compression {
        case .none:
            rawHash = nil  // the raw stream is the plain one: one hash for both
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
    }

    /// Whether `fd` is a regular file (reads never wait on a writer).
    var isRegularFile: Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Reads more raw bytes behind the unconsumed ones (moved to the front).
    private func fill() throws {
        if inStart > 0 {
            if inEnd > inStart { memmove(inBuf, inBuf + inStart, inEnd - inStart) }
            inEnd -= inStart
            inStart = 0
        }
        guard inEnd < StreamDecoder.chunkSize else { return }
        let n = try readRaw(inBuf + inEnd, StreamDecoder.chunkSize - inEnd)
        if n == 0 { eof = true; return }
        rawHash?.update(UnsafeRawBufferPointer(start: inBuf + inEnd, count: n))
        inEnd += n
    }

    private func readRaw(_ p: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        while true {
            let n = Glibc.read(fd, p, cap)
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("read \(what)")
            }
            rawSize += Int64(n)
            return n
        }
    }

    /// Decompresses the next bytes of the stream into `dst` (at most `cap`,
    /// at least 1 unless at the end); 0 at the end, and from then on.
    func read(into dst: UnsafeMutableRawPointer, capacity cap: Int) throws -> Int {
        if finished { return 0 }
        let n: Int
        switch compression {
        case .none: n = try readPlain(dst, cap)
        case .gzip: n = try readGzip(dst, cap)
        case .zstd: n = try readZstd(dst, cap)
        }
        if n == 0 { finished = true } else {
            hash.update(UnsafeRawBufferPointer(start: dst, count: n))
            size += Int64(n)
        }
        return n
    }

    private func readPlain(_ dst: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        if inStart < inEnd {  // what the sniffing read
            let n = min(cap, inEnd - inStart)
            memcpy(dst, inBuf + inStart, n)
            inStart += n
            return n
        }
        if eof { return 0 }
        let n = try readRaw(dst, cap)
        if n == 0 { eof = true }
        return n
    }

    private func readGzip(_ dst: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        let z = zs!
        while true {
            if gzipMemberDone {
                // Another member, the end, or zeros (padding some writers add).
                while inEnd - inStart < 2 && !eof { try fill() }
                let avail = inEnd - inStart
                if avail == 0 { return 0 }
                let b0 = inBuf.load(fromByteOffset: inStart, as: UInt8.self)
                if avail >= 2 && b0 == 0x1f && inBuf.load(fromByteOffset: inStart + 1, as: UInt8.self) == 0x8b {
                    guard inflateReset(z) == Z_OK else { throw Failure(.failed, "\(what): zlib inflateReset failed") }
                    gzipMemberDone = false
                    continue
                }
                try skipZeros(after: "gzip data")
                return 0
            }
            if inStart == inEnd && !eof { try fill() }
            z.pointee.next_in = (inBuf + inStart).assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_in = uInt(inEnd - inStart)
            z.pointee.next_out = dst.assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = uInt(cap)
            let r = inflate(z, Z_NO_FLUSH)
            inStart = inEnd - Int(z.pointee.avail_in)
            let n = cap - Int(z.pointee.avail_out)
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
            if n > 0 { return n }
        }
    }

    private func readZstd(_ dst: UnsafeMutableRawPointer, _ cap: Int) throws -> Int {
        let d = zd!
        while true {
            if inStart == inEnd && !eof { try fill() }
            var input = ZSTD_inBuffer(src: inBuf + inStart, size: inEnd - inStart, pos: 0)
            var output = ZSTD_outBuffer(dst: dst, size: cap, pos: 0)
            let r = ZSTD_decompressStream(d, &output, &input)
            if ZSTD_isError(r) != 0 {
                throw Failure(.invalid, "\(what): corrupt zstd data: \(String(cString: ZSTD_getErrorName(r)))")
            }
            inStart += input.pos
            // 0: a frame ended and is flushed. (A call without progress
            // after that returns the next frame header's size: not counted.)
            if input.pos > 0 || output.pos > 0 { zstdInFrame = r != 0 }
            if output.pos > 0 { return output.pos }
            if inStart == inEnd && eof {
                guard !zstdInFrame else { throw Failure(.invalid, "\(what): truncated zstd data (unexpected end of file)") }
                return 0
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

    /// Reads the decompressed stream to its end (into `scratch`); its
    /// digest and size.
    func finish(scratch: UnsafeMutableRawPointer, capacity: Int) throws -> (digest: Digest, size: Int64) {
        if let r = result { return r }
        while try read(into: scratch, capacity: capacity) > 0 {}
        let r = (hash.finish(), size)
        result = r
        return r
    }

    /// The raw stream's digest and size, after `finish` (when asked for).
    func rawDigest() -> (digest: Digest, size: Int64)? {
        guard hashRaw, let r = result else { return nil }
        hashRaw = false
        if compression == .none { return (r.digest, rawSize) }
        guard var h = rawHash else { return nil }
        rawHash = nil
        return (h.finish(), rawSize)
    }
}

/// The decompressed stream one chunk at a time, as libarchive's read
/// callback wants it. With `threaded`, a second thread reads, decompresses
/// and hashes ahead into a ring of buffers while the caller parses and
/// writes files (the two overlap: about the cost of the slower instead of
/// the sum); only for a regular file, whose reads never wait on a writer,
/// so that stopping early never waits long.
final class ChunkSource {
    let decoder: StreamDecoder
    private static let slots = 4
    private let buffers: [UnsafeMutableRawPointer]
    private var lengths = [Int](repeating: 0, count: ChunkSource.slots)
    private let threaded: Bool

    // The ring, under `mutex`: `count` filled slots from `head`; the
    // consumer holds slot `head` while `held`.
    private var head = 0, tail = 0, count = 0
    private var held = false
    private var done = false
    private var failure: Error?
    private var cancelled = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let filled = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let freed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?
    private var result: (digest: Digest, size: Int64)?

    init(decoder: StreamDecoder, threaded wanted: Bool) {
        self.decoder = decoder
        threaded = wanted && decoder.isRegularFile
        buffers = (0..<(threaded ? ChunkSource.slots : 1)).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: StreamDecoder.chunkSize, alignment: 64)
        }
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(filled, nil)
        pthread_cond_init(freed, nil)
        guard threaded else { return }
        var t = pthread_t()
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        if pthread_create(&t, nil, chunkSourceMain, ctx) == 0 { thread = t } else { done = true; failure = SysError("pthread_create") }
    }

    deinit {
        stop()
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(filled)
        pthread_cond_destroy(freed)
        mutex.deallocate()
        filled.deallocate()
        freed.deallocate()
        for b in buffers { b.deallocate() }
    }

    /// Stops the reading thread (if any) and waits for it.
    func stop() {
        guard let t = thread else { return }
        pthread_mutex_lock(mutex)
        cancelled = true
        pthread_cond_signal(freed)
        pthread_mutex_unlock(mutex)
        pthread_join(t, nil)
        thread = nil
    }

    /// The reading thread.
    fileprivate func produce() {
        while true {
            pthread_mutex_lock(mutex)
            // `count` counts the filled slots, the one the consumer holds among
            // them: below `slots`, `tail` is free.
            while count >= ChunkSource.slots && !cancelled { pthread_cond_wait(freed, mutex) }
            let stop = cancelled
            let slot = tail
            pthread_mutex_unlock(mutex)
            if stop { return }
            var n = 0
            var caught: Error?
            do { n = try decoder.read(into: buffers[slot], capacity: StreamDecoder.chunkSize) } catch { caught = error }
            pthread_mutex_lock(mutex)
            if let e = caught {
                failure = e
                done = true
            } else {
                lengths[slot] = n
                tail = (tail + 1) % ChunkSource.slots
                count += 1
                if n == 0 { done = true }
            }
            let finished = done
            pthread_cond_signal(filled)
            pthread_mutex_unlock(mutex)
            if finished { return }
        }
    }

    /// The next chunk, valid until the next call; empty at the end.
    func next() throws -> UnsafeRawBufferPointer {
        guard threaded else {
            let n = try decoder.read(into: buffers[0], capacity: StreamDecoder.chunkSize)
            return UnsafeRawBufferPointer(start: buffers[0], count: n)
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if held {
            held = false
            head = (head + 1) % ChunkSource.slots
            count -= 1
            pthread_cond_signal(freed)
        }
        while count == 0 && !done { pthread_cond_wait(filled, mutex) }
        if count > 0 {
            let n = lengths[head]
            if n == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }  // the end, kept for later calls
            held = true
            return UnsafeRawBufferPointer(start: buffers[head], count: n)
        }
        if let e = failure { throw e }
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// Reads to the end of the stream; its digest and size.
    func finish() throws -> (digest: Digest, size: Int64) {
        if let r = result { return r }
        if threaded {
            while try next().count > 0 {}
            stop()
        }
        let r = try decoder.finish(scratch: buffers[0], capacity: StreamDecoder.chunkSize)
        result = r
        return r
    }
}

private func chunkSourceMain(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<ChunkSource>.fromOpaque(ctx!).takeUnretainedValue().produce()
    return nil
}
