import XCTest
import CShim
import Image
import Sys

// Image's digests: the "sha256:<hex>" text form and SHA-256, both of its
// implementations (SHA-NI, portable C) checked against FIPS 180-4's vectors
// and against the tests' own SHA256 (plain Swift, SHA256Oracle.swift) on every length around the
// block and padding boundaries.

final class DigestTests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(Digest.of([]).description, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Digest.of(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Digest.of(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex,
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testStreamingMatchesOneShotAcrossChunkSizes() {
        var bytes = [UInt8](repeating: 0, count: 300_000)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 7) }
        let whole = Digest.of(bytes)
        var plain = SHA256()
        plain.update(bytes)
        XCTAssertEqual(whole.hex, plain.finish().map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined())
        for chunk in [1, 63, 64, 65, 4096, 100_001] {
            var s = SHA256Stream()
            var i = 0
            bytes.withUnsafeBytes { all in
                while i < all.count {
                    let n = min(chunk, all.count - i)
                    s.update(UnsafeRawBufferPointer(rebasing: all[i..<i + n]))
                    i += n
                }
            }
            XCTAssertEqual(s.finish(), whole, "chunks of \(chunk)")
        }
    }

    func hexOf(_ b: [UInt8]) -> String {
        b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    func testBothImplementationsAgreeWithTheSwiftOracle() {
        defer { _ = mc_sha256_accelerated(-1) }
        var bytes = [UInt8](repeating: 0, count: 5000)
        var x: UInt32 = 12345
        for i in bytes.indices { x = x &* 1103515245 &+ 12345; bytes[i] = UInt8(truncatingIfNeeded: x >> 16) }
        let lengths = Array(0...200) + [447, 448, 511, 512, 513, 1000, 4095, 4096, 4097, 5000]
        var reference: [Int: String] = [:]
        for n in lengths {
            var s = SHA256()
            s.update(Array(bytes[0..<n]))
            reference[n] = hexOf(s.finish())
        }
        for portable in [false, true] {
            _ = mc_sha256_accelerated(portable ? 1 : -1)
            if !portable && !SHA256Stream.accelerated { continue }  // a CPU without SHA-NI: portable only
            for n in lengths {
                XCTAssertEqual(Digest.of(Array(bytes[0..<n])).hex, reference[n], "length \(n), portable: \(portable)")
                // In two uneven pieces, too.
                var st = SHA256Stream()
                let cut = n / 3
                bytes.withUnsafeBytes { all in
                    st.update(UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                    st.update(UnsafeRawBufferPointer(rebasing: all[cut..<n]))
                }
                XCTAssertEqual(st.finish().hex, reference[n], "length \(n) in pieces, portable: \(portable)")
            }
        }
    }

    func testValueSemantics() {
        var a = SHA256Stream()
        Array("ab".utf8).withUnsafeBytes { a.update($0) }
        var b = a
        Array("c".utf8).withUnsafeBytes { a.update($0) }
        XCTAssertEqual(a.finish(), Digest.of(Array("abc".utf8)))
        XCTAssertEqual(b.finish(), Digest.of(Array("ab".utf8)), "a copy hashes on from where it was copied")
    }

    func testParsing() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        XCTAssertEqual(Digest("sha256:" + hex)?.hex, hex)
        XCTAssertEqual(Digest("sha256:" + hex), Digest(hex: hex))
        XCTAssertEqual(Digest("sha256:" + hex)?.description, "sha256:" + hex)
        for bad in ["", "sha256:", hex, "sha256:" + hex.uppercased(), "sha256:" + hex.dropLast(), "sha256:" + hex + "0",
                    "sha512:" + hex, "SHA256:" + hex, "sha256:" + hex.dropLast() + "g", " sha256:" + hex, "sha256:" + hex + "\n",
                    "sha256:" + hex.dropLast(2) + "é"] {
            XCTAssertNil(Digest(bad), "accepted \(bad.debugDescription)")
        }
        var set = Set<Digest>()
        set.insert(Digest(hex: hex))
        XCTAssertTrue(set.contains(Digest("sha256:" + hex)!))
    }

    func testCompressionSniff() {
        XCTAssertEqual(Compression.sniff([0x1f, 0x8b, 8, 0]), .gzip)
        XCTAssertEqual(Compression.sniff([0x28, 0xb5, 0x2f, 0xfd]), .zstd)
        XCTAssertEqual(Compression.sniff(Array("usr/".utf8)), .none)
        XCTAssertEqual(Compression.sniff([]), .none)
        XCTAssertEqual(Compression.sniff([0x1f]), .none)
        XCTAssertEqual(Compression.unsupported([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]), "xz")
        XCTAssertEqual(Compression.unsupported(Array("BZh9".utf8)), "bzip2")
        XCTAssertNil(Compression.unsupported([0x1f, 0x8b, 8, 0]))
    }
}
