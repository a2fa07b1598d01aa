import CCrypto
import Glibc

// Content digests: "sha256:<64 lowercase hex>", the only algorithm the store
// accepts, and SHA-256 by libcrypto (SHA-NI or AVX2 where the CPU has them).

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

/// Streaming SHA-256 over libcrypto's EVP interface. A value type over one
/// EVP context: copies share it, so copy it only to hand it on.
public struct SHA256Stream {
    private final class Context {
        let ctx: OpaquePointer
        init() {
            guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
            ctx = c
            guard EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else { fatalError("EVP_DigestInit_ex(sha256) failed") }
        }
        deinit { EVP_MD_CTX_free(ctx) }
    }

    private let context = Context()
    private var finished = false

    public init() {}

    public mutating func update(_ p: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256Stream.update after finish")
        guard p.count > 0 else { return }
        _ = EVP_DigestUpdate(context.ctx, p.baseAddress, p.count)
    }

    public mutating func finish() -> Digest {
        precondition(!finished, "SHA256Stream.finish twice")
        finished = true
        var md = [UInt8](repeating: 0, count: 64)
        var n: UInt32 = 0
        _ = md.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context.ctx, $0.baseAddress, &n) }
        return md.withUnsafeBytes { Digest(raw: UnsafeRawBufferPointer(rebasing: $0[0..<Int(n)])) }
    }
}
