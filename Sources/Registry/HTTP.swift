import CCurl
import Glibc
import Image
import Sys

// HTTP over libcurl's multi interface: any number of transfers driven from
// this one thread (libcurl's resolver adds threads of its own, which is why
// this runs only in a pull). Only http and https, also on redirects; a
// redirect to another host drops our Authorization header (libcurl's rule
// for custom headers); TLS is verified against the system CAs plus the
// registry's own unless the caller turns it off. A body goes to memory,
// capped, or to a BlobFile that hashes and counts it as it arrives.

/// TLS settings for one registry.
public struct TLSSettings {
    public var verify = true
    /// Extra CA certificates (PEM), added to the system's.
    public var extraCAs: [UInt8] = []
    public var clientCert: String?
    public var clientKey: String?
    public init() {}
}

/// A blob being written to its partial file: hashed and counted, refused
/// past its expected size.
final class BlobFile {
    let path: String
    let expectedSize: Int64
    let digest: Digest
    private(set) var fd: Int32 = -1
    private var hash = SHA256Stream()
    /// Bytes in the file (and in the hash).
    private(set) var size: Int64 = 0
    var failure: Failure?

    /// Opens (creating) the partial file and hashes what it already holds,
    /// so that the download resumes after it.
    init(path: String, digest: Digest, expectedSize: Int64) throws {
        self.path = path
        self.digest = digest
        self.expectedSize = expectedSize
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SysError("open \(path)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SysError("fstat \(path)") }
        if st.st_size > expectedSize {
            try restart()
            return
        }
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf, 1 << 20)
            if n < 0 { if errno == EINTR { continue }; throw SysError("read \(path)") }
            if n == 0 { break }
            hash.update(UnsafeRawBufferPointer(start: buf, count: n))
            size += Int64(n)
        }
    }

    /// Empties the file (the server ignored our Range).
    func restart() throws {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw SysError("truncate \(path)") }
        hash = SHA256Stream()
        size = 0
    }

    func append(_ p: UnsafeRawBufferPointer) -> Bool {
        if size + Int64(p.count) > expectedSize {
            failure = Failure(.invalid, "blob \(digest): the registry sent more than the \(expectedSize) bytes its descriptor gives")
            return false
        }
        var off = 0
        while off < p.count {
            let n = write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                failure = Failure(.failed, "blob \(digest): writing \(path): \(String(cString: strerror(errno)))")
                return false
            }
            off += n
        }
        hash.update(p)
        size += Int64(p.count)
        return true
    }

    /// The digest of what the file holds (a copy of the stream finishes).
    func finalDigest() -> Digest {
        var h = hash
        return h.finish()
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}

/// One request and, once done, its response.
final class HTTPRequest {
    let url: String
    var headers: [String]
    let method: String
    /// Memory bodies are refused past this many bytes.
    let maxBody: Int
    /// When set, a 2xx body goes here (other bodies to memory).
    let file: BlobFile?
    /// Ask for the body from this offset (Range: bytes=N-).
    var rangeFrom: Int64 = 0
    let followRedirects: Bool

    // The response.
    var status = 0
    var responseHeaders: [(name: String, value: String)] = []
    var body: [UInt8] = []
    var tooLarge = false
    /// A 2xx answer to a Range request that was not 206 from our offset:
    /// the file restarted from 0.
    var restarted = false
    var result = CURLE_OK
    var errorText = ""
    var effectiveURL = ""
    /// Called with the bytes received so far (for progress).
    var received: Int64 = 0
    /// When the last byte (or the start) was seen: a stall is measured
    /// from here (libcurl's low-speed check averages over seconds).
    var lastActivity = 0.0
    /// We gave up on it for a stall.
    var stalled = false

    fileprivate var easy: UnsafeMutableRawPointer?
    fileprivate var slist: UnsafeMutablePointer<curl_slist>?
    /// libcurl keeps this pointer for the transfer's life.
    fileprivate let errbuf = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(_ method: String = "GET", _ url: String, headers: [String] = [], maxBody: Int = 4 << 20, file: BlobFile? = nil,
         followRedirects: Bool = true) {
        self.method = method
        self.url = url
        self.headers = headers
        self.maxBody = maxBody
        self.file = file
        self.followRedirects = followRedirects
        errbuf[0] = 0
    }

    deinit { errbuf.deallocate() }

    func header(_ name: String) -> String? {
        let n = name.lowercased()
        return responseHeaders.last(where: { $0.name == n })?.value
    }

    func headers(_ name: String) -> [String] {
        let n = name.lowercased()
        return responseHeaders.filter { $0.name == n }.map { $0.value }
    }

    var ok: Bool { result == CURLE_OK && (200..<300).contains(status) }

    /// A transport failure, in words.
    var transportError: String {
        let detail = String(cString: errbuf)
        let base = String(cString: curl_easy_strerror(result))
        return detail.isEmpty ? base : detail
    }

    func headerLine(_ p: UnsafeRawBufferPointer) {
        lastActivity = Clock.monotonicSeconds()
        var bytes = p.bindMemory(to: UInt8.self)[...]
        while let l = bytes.last, l == 0x0a || l == 0x0d { bytes = bytes.dropLast() }
        guard let line = String(validating: bytes, as: UTF8.self) else { return }
        if line.hasPrefix("HTTP/") {
            // A new response (after a redirect or a 100): its headers only.
            responseHeaders = []
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        guard let colon = line.firstIndex(of: ":"), responseHeaders.count < 200 else { return }
        let name = line[..<colon].lowercased()
        var value = line[line.index(after: colon)...]
        while value.first == " " || value.first == "\t" { value = value.dropFirst() }
        responseHeaders.append((name, String(value.prefix(8192))))
    }

    fileprivate func bodyBytes(_ p: UnsafeRawBufferPointer) -> Bool {
        lastActivity = Clock.monotonicSeconds()
        if let f = file, (200..<300).contains(status) {
            if received == 0 && rangeFrom > 0 && !restarted {
                // Did the server take our Range?
                let cr = header("content-range") ?? ""
                if status != 206 || !cr.hasPrefix("bytes \(rangeFrom)-") {
                    do { try f.restart() } catch { f.failure = Failure(.failed, "\(error)"); return false }
                    restarted = true
                }
            }
            received += Int64(p.count)
            return f.append(p)
        }
        if body.count + p.count > maxBody { tooLarge = true; return false }
        body.append(contentsOf: p.bindMemory(to: UInt8.self))
        received += Int64(p.count)
        return true
    }
}

private let writeCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
    let r = Unmanaged<HTTPRequest>.fromOpaque(ud!).takeUnretainedValue()
    let count = size * n
    guard let ptr = ptr else { return count }
    return r.bodyBytes(UnsafeRawBufferPointer(start: ptr, count: count)) ? count : 0
}

private let headerCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
    let r = Unmanaged<HTTPRequest>.fromOpaque(ud!).takeUnretainedValue()
    let count = size * n
    if let ptr = ptr { r.headerLine(UnsafeRawBufferPointer(start: ptr, count: count)) }
    return count
}

/// Timeouts, in seconds.
public struct HTTPTimeouts {
    public var connect = 30.0
    /// No byte for this long: the transfer is given up (and retried).
    public var stall = 30.0
    public init() {}
}

/// The multi handle and the requests on it.
final class HTTPEngine {
    private let multi: UnsafeMutableRawPointer
    private var active: [ObjectIdentifier: HTTPRequest] = [:]
    let timeouts: HTTPTimeouts
    static let userAgent = "minicontainer/0.1"

    init(timeouts: HTTPTimeouts) throws {
        try Curl.setUp()
        guard let m = curl_multi_init() else { throw Failure(.failed, "libcurl: curl_multi_init failed") }
        multi = m
        self.timeouts = timeouts
        _ = mc_curl_multi_setopt_long(m, CURLMOPT_MAX_HOST_CONNECTIONS, 8)
    }

    deinit {
        for r in active.values { detach(r) }
        curl_multi_cleanup(multi)
    }

    var count: Int { active.count }

    /// Starts `r` with `tls`.
    func start(_ r: HTTPRequest, tls: TLSSettings) throws {
        guard let e = curl_easy_init() else { throw Failure(.failed, "libcurl: curl_easy_init failed") }
        r.easy = e
        r.status = 0
        r.responseHeaders = []
        r.body = []
        r.tooLarge = false
        r.received = 0
        r.restarted = false
        r.result = CURLE_OK
        r.stalled = false
        r.lastActivity = Clock.monotonicSeconds()
        r.errbuf[0] = 0
        func set(_ o: CURLoption, _ v: Int) { _ = mc_curl_easy_setopt_long(e, o, v) }
        func set(_ o: CURLoption, _ s: String) { _ = s.withCString { mc_curl_easy_setopt_ptr(e, o, $0) } }
        set(CURLOPT_URL, r.url)
        set(CURLOPT_PROTOCOLS_STR, "http,https")
        set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_FOLLOWLOCATION, r.followRedirects ? 1 : 0)
        set(CURLOPT_MAXREDIRS, 5)
        set(CURLOPT_USERAGENT, HTTPEngine.userAgent)
        set(CURLOPT_CONNECTTIMEOUT_MS, Int(timeouts.connect * 1000))
        set(CURLOPT_LOW_SPEED_LIMIT, 1)
        set(CURLOPT_LOW_SPEED_TIME, max(1, Int(timeouts.stall.rounded(.up))))
        set(CURLOPT_SSL_VERIFYPEER, tls.verify ? 1 : 0)
        set(CURLOPT_SSL_VERIFYHOST, tls.verify ? 2 : 0)
        if !tls.extraCAs.isEmpty {
            var bundle = (try? FS.readBytes("/etc/ssl/certs/ca-certificates.crt")) ?? []
            bundle.append(0x0a)
            bundle += tls.extraCAs
            bundle.withUnsafeMutableBytes { b in
                var blob = curl_blob(data: b.baseAddress, len: b.count, flags: UInt32(CURL_BLOB_COPY))
                _ = mc_curl_easy_setopt_ptr(e, CURLOPT_CAINFO_BLOB, &blob)
            }
        }
        if let c = tls.clientCert, let k = tls.clientKey {
            set(CURLOPT_SSLCERT, c)
            set(CURLOPT_SSLKEY, k)
        }
        if r.method == "HEAD" { set(CURLOPT_NOBODY, 1) }
        if r.rangeFrom > 0 { set(CURLOPT_RANGE, "\(r.rangeFrom)-") }
        _ = mc_curl_easy_setopt_ptr(e, CURLOPT_ERRORBUFFER, r.errbuf)
        if let old = r.slist { curl_slist_free_all(old); r.slist = nil }
        var list: UnsafeMutablePointer<curl_slist>?
        for h in r.headers + ["Expect:"] { list = curl_slist_append(list, h) }
        r.slist = list
        _ = mc_curl_easy_setopt_ptr(e, CURLOPT_HTTPHEADER, list)
        let ud = Unmanaged.passUnretained(r).toOpaque()
        _ = mc_curl_easy_setopt_write(e, writeCallback)
        _ = mc_curl_easy_setopt_ptr(e, CURLOPT_WRITEDATA, ud)
        _ = mc_curl_easy_setopt_header(e, headerCallback)
        _ = mc_curl_easy_setopt_ptr(e, CURLOPT_HEADERDATA, ud)
        _ = mc_curl_easy_setopt_ptr(e, CURLOPT_PRIVATE, ud)
        active[ObjectIdentifier(r)] = r
        let rc = curl_multi_add_handle(multi, e)
        guard rc == CURLM_OK else {
            detach(r)
            throw Failure(.failed, "libcurl: \(String(cString: curl_multi_strerror(rc)))")
        }
    }

    private func detach(_ r: HTTPRequest) {
        if let e = r.easy {
            curl_multi_remove_handle(multi, e)
            var u: UnsafeMutablePointer<CChar>?
            if mc_curl_easy_getinfo_str(e, CURLINFO_EFFECTIVE_URL, &u) == CURLE_OK, let u = u { r.effectiveURL = String(cString: u) }
            curl_easy_cleanup(e)
            r.easy = nil
        }
        if let l = r.slist { curl_slist_free_all(l); r.slist = nil }
        active[ObjectIdentifier(r)] = nil
    }

    /// Stops `r` (its result stays as it was).
    func cancel(_ r: HTTPRequest) {
        r.result = CURLE_ABORTED_BY_CALLBACK
        detach(r)
    }

    /// Ends every transfer that has had no byte for the stall time, as
    /// timed out; returns them (finished).
    func endStalled() -> [HTTPRequest] {
        let now = Clock.monotonicSeconds()
        var out: [HTTPRequest] = []
        for r in active.values where now - r.lastActivity > timeouts.stall {
            detach(r)
            r.result = CURLE_OPERATION_TIMEDOUT
            r.stalled = true
            out.append(r)
        }
        return out
    }

    /// Drives the transfers for up to `ms` milliseconds; returns those that
    /// finished.
    /// Finished while perform waited for another: given out by the next step.
    private var finishedEarlier: [HTTPRequest] = []

    func step(ms requested: Int32) -> [HTTPRequest] {
        if !finishedEarlier.isEmpty {
            defer { finishedEarlier = [] }
            return finishedEarlier
        }
        return drive(ms: requested) + endStalled()
    }

    private func drive(ms requested: Int32) -> [HTTPRequest] {
        // With nothing to transfer, only a short wait (unpack threads finish
        // without a socket to wake us).
        let ms = active.isEmpty ? min(requested, 2) : requested
        var running: Int32 = 0
        _ = curl_multi_perform(multi, &running)
        var done: [HTTPRequest] = []
        collect(&done)
        if done.isEmpty && running > 0 {
            var n: Int32 = 0
            _ = curl_multi_poll(multi, nil, 0, ms, &n)
            _ = curl_multi_perform(multi, &running)
            collect(&done)
        } else if done.isEmpty {
            // Nothing running: only wait.
            var ts = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int(ms % 1000) * 1_000_000)
            nanosleep(&ts, nil)
        }
        return done
    }

    private func collect(_ done: inout [HTTPRequest]) {
        var left: Int32 = 0
        while let m = curl_multi_info_read(multi, &left) {
            guard m.pointee.msg == CURLMSG_DONE, let e = m.pointee.easy_handle else { continue }
            var p: UnsafeMutableRawPointer?
            _ = mc_curl_easy_getinfo_ptr(e, CURLINFO_PRIVATE, &p)
            guard let p = p else { continue }
            let r = Unmanaged<HTTPRequest>.fromOpaque(p).takeUnretainedValue()
            r.result = m.pointee.data.result
            var code = 0
            if mc_curl_easy_getinfo_long(e, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK, code != 0 { r.status = code }
            detach(r)
            done.append(r)
        }
    }

    /// Runs one request to its end.
    func perform(_ r: HTTPRequest, tls: TLSSettings, interrupted: () -> Bool) throws {
        try start(r, tls: tls)
        while true {
            if interrupted() { cancel(r); throw Interrupted() }
            var mine = false
            for d in drive(ms: 100) + endStalled() {
                if d === r { mine = true } else { finishedEarlier.append(d) }
            }
            if mine { return }
        }
    }
}

/// Ctrl-C (SIGINT or SIGTERM) arrived.
public struct Interrupted: Error {}
