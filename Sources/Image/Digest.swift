import CShim
import Glibc

// Content digests: "sha256:<64 lowercase hex>", the only algorithm the store
// accepts, and SHA-256: with the CPU's SHA extensions where it has them
// (CShim's mc_sha256, about 1.7 GB/s here), else portable C.
//
// Not libcrypto's, though it is as fast: linked statically, libcrypto runs
// its CPU probe (OPENSSL_cpuid_setup, from .init) at every start of the
// binary, 55-85 us per exec under a hypervisor (each cpuid a VM exit),
// about 7% of `--version` -- on the path of every container's start.

public struct Digest: Hashable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// Parses "sha256:<64 lowercase hex>"; nil for anything else (another
    /// algorithm, upper case, a wrong length, a character outside [0-9a-f]).
    public init?(_ text: String) {
        guard Digest.valid(Array(text.utf8)) else { return nil }
        hex = String(decoding: text.utf8.dropFirst(7), as: UTF8.self)
    }

    private static func valid(_ u: [UInt8]) -> Bool {
        guard u.count == 7 + 64 else { return false }
        let prefix: [UInt8] = Array("sha256:".utf8)
        for i in 0..<7 where u[i] != prefix[i] { return false }
        for i in 7..<u.count {
            let c = u[i]
            guard (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) else { return false }
        }
        return true
    }

    /// For hex already validated (or made by `of`/`SHA256Stream`).
    public init(hex: String) { self.hex = hex }

    /// The digest of 32 raw bytes.
    init(raw: UnsafeRawBufferPointer) {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: raw.count * 2)
        for (i, b) in raw.enumerated() {
            out[2 * i] = digits[Int(b >> 4)]
            out[2 * i + 1] = digits[Int(b & 15)]
        }
        hex = String(decoding: out, as: UTF8.self)
    }

    public var description: String { "sha256:" + hex }

    public static func of(_ bytes: [UInt8]) -> Digest {
        var s = SHA256Stream()
        bytes.withUnsafeBytes { s.update($0) }
        return s.finish()
    }
}

/// Streaming SHA-256 (a value: a copy hashes on from where it was copied).
public struct SHA256Stream {
    private var ctx = mc_sha256_ctx()
    private var finished = false

    public init() { mc_sha256_init(&ctx) }

    public mutating func update(_ p: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256Stream.update after finish")
        guard p.count > 0 else { return }
        mc_sha256_update(&ctx, p.baseAddress, p.count)
    }

    public mutating func finish() -> Digest {
        precondition(!finished, "SHA256Stream.finish twice")
        finished = true
        var md = [UInt8](repeating: 0, count: 32)
        md.withUnsafeMutableBufferPointer { mc_sha256_final(&ctx, $0.baseAddress) }
        return md.withUnsafeBytes { Digest(raw: $0) }
    }

    /// Whether the CPU's SHA extensions do the work (for reports and tests).
    public static var accelerated: Bool { mc_sha256_accelerated(0) != 0 }
}
