import CCurl
import Glibc
import XCTest
@testable import Image
@testable import Registry
import Sys

/// The pull's own parts that need no registry: the partial blob file that
/// a resume continues (its hash covers what an earlier run wrote), what a
/// finished request means (retry, re-authenticate, fail), header parsing,
/// and the store's layer claims, which two pulls of one layer contend for.
final class RegistryPullTests: XCTestCase {
    var dir = ""

    override func setUp() {
        var template = Array("/tmp/mc-regpull-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    override func tearDown() { try? FS.removeTree(dir) }

    func bytes(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

    // MARK: - BlobFile

    func testABlobFileResumesWithTheHashOfWhatItHolds() throws {
        let data = bytes(300_000)
        let d = Digest.of(data)
        let path = dir + "/partial"
        // An earlier run wrote the first 100000 bytes.
        try FS.writeAtomically(path, Array(data[0..<100_000]))
        let f = try BlobFile(path: path, digest: d, expectedSize: Int64(data.count))
        XCTAssertEqual(f.size, 100_000)
        data[100_000...].withUnsafeBytes { XCTAssertTrue(f.append($0)) }
        XCTAssertEqual(f.finalDigest(), d)
        f.close()
        XCTAssertEqual(try FS.readBytes(path), data)
    }

    func testABlobFileRefusesMoreThanItsDescriptorSays() throws {
        let data = bytes(1000)
        let f = try BlobFile(path: dir + "/p", digest: Digest.of(data), expectedSize: 999)
        data.withUnsafeBytes { XCTAssertFalse(f.append($0)) }
        XCTAssertNotNil(f.failure)
        XCTAssertTrue(f.failure!.what.contains("more than the 999 bytes"), f.failure!.what)
    }

    func testABlobFileLargerThanExpectedStartsOver() throws {
        let path = dir + "/p"
        try FS.writeAtomically(path, bytes(50))
        let f = try BlobFile(path: path, digest: Digest.of(bytes(10)), expectedSize: 10)
        XCTAssertEqual(f.size, 0)
        bytes(10).withUnsafeBytes { XCTAssertTrue(f.append($0)) }
        XCTAssertEqual(f.finalDigest(), Digest.of(bytes(10)))
    }

    func testARestartEmptiesTheFileAndTheHash() throws {
        let data = bytes(64)
        let f = try BlobFile(path: dir + "/p", digest: Digest.of(data), expectedSize: 64)
        bytes(20).reversed().withUnsafeBytes { XCTAssertTrue(f.append(UnsafeRawBufferPointer($0))) }
        try f.restart()
        data.withUnsafeBytes { XCTAssertTrue(f.append($0)) }
        XCTAssertEqual(f.finalDigest(), Digest.of(data))
    }

    // MARK: - Verdicts

    func client() throws -> RegistryClient {
        RegistryClient(host: "127.0.0.1:1", tls: TLSSettings(), insecure: true, credential: nil,
                       engine: try HTTPEngine(timeouts: HTTPTimeouts()), retryTimeout: 10, interrupted: { false })
    }

    func answered(_ status: Int, headers: [(String, String)] = [], result: CURLcode = CURLE_OK) -> HTTPRequest {
        let r = HTTPRequest("GET", "http://127.0.0.1:1/v2/x/blobs/sha256:00")
        r.status = status
        r.responseHeaders = headers
        r.result = result
        return r
    }

    func testVerdicts() throws {
        let c = try client()
        guard case .ok = c.verdict(answered(200), attempt: 0) else { return XCTFail("200") }
        guard case .retry(let a, _) = c.verdict(answered(503), attempt: 0), a == 0.5 else { return XCTFail("503") }
        guard case .retry(let b, _) = c.verdict(answered(429, headers: [("retry-after", "3")]), attempt: 0), b == 3 else {
            return XCTFail("429 with Retry-After")
        }
        // A registry cannot make us wait more than a minute per try.
        guard case .retry(let m, _) = c.verdict(answered(503, headers: [("retry-after", "86400")]), attempt: 0), m == 60 else {
            return XCTFail("capped Retry-After")
        }
        guard case .reauthenticate = c.verdict(answered(401), attempt: 0) else { return XCTFail("401") }
        let scope = #"Bearer realm="http://t/token",error="insufficient_scope",scope="repository:x:pull""#
        guard case .reauthenticate(let ch) = c.verdict(answered(403, headers: [("www-authenticate", scope)]), attempt: 0),
              ch?.scope == "repository:x:pull" else { return XCTFail("insufficient_scope") }
        guard case .fail = c.verdict(answered(403), attempt: 0) else { return XCTFail("403") }
        guard case .retry = c.verdict(answered(0, result: CURLE_PARTIAL_FILE), attempt: 0) else { return XCTFail("partial") }
        guard case .retry(_, let why) = c.verdict(answered(0, result: CURLE_OPERATION_TIMEDOUT), attempt: 0), why.contains("timed out") else {
            return XCTFail("stall")
        }
        guard case .fail(let f) = c.verdict(answered(0, result: CURLE_COULDNT_RESOLVE_HOST), attempt: 0), f.what.contains("unknown host") else {
            return XCTFail("resolve")
        }
        guard case .fail(let t) = c.verdict(answered(0, result: CURLE_PEER_FAILED_VERIFICATION), attempt: 0), t.what.contains("TLS") else {
            return XCTFail("tls")
        }
    }

    func testBackoffGrowsAndIsCapped() {
        XCTAssertEqual((0..<8).map { RegistryClient.backoff($0) }, [0.5, 1, 2, 4, 8, 10, 10, 10])
    }

    func testRegistryErrorBodiesAreQuotedInOneLine() throws {
        let r = answered(404)
        r.body = Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown"}]}"#.utf8)
        let d = try client().errorDetail(r)
        XCTAssertTrue(d.hasPrefix(": MANIFEST_UNKNOWN: manifest"), d)
        XCTAssertFalse(d.contains("\n"))
    }

    func testHeaderLinesStartAfreshOnEachResponse() {
        let r = HTTPRequest("GET", "http://x/")
        for l in ["HTTP/1.1 307 Temporary Redirect\r\n", "Location: http://y/\r\n", "\r\n",
                  "HTTP/1.1 200 OK\r\n", "Content-Type: application/json; charset=utf-8\r\n", "X-Empty:\r\n"] {
            Array(l.utf8).withUnsafeBytes { r.headerLine($0) }
        }
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(r.header("location"))
        XCTAssertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
        XCTAssertEqual(r.header("x-empty"), "")
    }

    func testURLEncodingAndHosts() {
        XCTAssertEqual(urlEncode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull")
        XCTAssertEqual(urlEncode("a b&c=d\n"), "a%20b%26c%3Dd%0A")
        XCTAssertEqual(hostOf("https://h.example:5000/v2/x?y"), "h.example:5000")
        XCTAssertEqual(decimalSize(999), "999B")
        XCTAssertEqual(decimalSize(12_345_678), "12.3MB")
    }

    // MARK: - Claims

    func testAClaimedLayerIsBusyForAnotherPullUntilCommitted() throws {
        let store = try ImageStore(locations: Locations(root: dir + "/run", data: dir + "/data"))
        let a = try ImageIngest(store: store)
        let b = try ImageIngest(store: store)
        let blob = Digest.of(bytes(10)), chain = Digest.of(bytes(11))
        guard case .mine(let claim) = try a.claim(chain: chain, blob: blob) else { return XCTFail("first claim") }
        XCTAssertFalse(claim.blobPresent)
        guard case .busy = try b.claim(chain: chain, blob: blob) else { return XCTFail("second claim must wait") }
        // a commits the blob and an (empty) layer.
        let file = a.workPath("blob")
        try FS.writeAtomically(file, bytes(10))
        let ldir = try a.layerWorkDir(claim)
        let result = LayerUnpackResult(diffID: chain, size: 0)
        try a.commitLayer(claim, blobFile: file, unpacked: (ldir, result), diffID: chain, parent: nil, what: "test")
        guard case .present = try b.claim(chain: chain, blob: blob) else { return XCTFail("present after commit") }
        // A diffID that differs from the config's is refused.
        let other = Digest.of(bytes(12))
        guard case .mine(let c2) = try b.claim(chain: other, blob: other) else { return XCTFail("claim") }
        let d2 = try b.layerWorkDir(c2)
        XCTAssertThrowsError(try b.commitLayer(c2, blobFile: nil, unpacked: (d2, result), diffID: other, parent: nil, what: "test"))
        b.finish()
        a.finish()
        // Neither committed an image: a, with the store to itself at its
        // end, removes the layer it committed, which nothing references.
        XCTAssertFalse(FS.exists(store.layerDir(chain)))
        XCTAssertFalse(store.hasBlob(blob))
    }
}
