// A fast content name for the seccomp filter cache.

/// FNV-1a, 64 bits: a fast name for content that is also compared in full
/// (the seccomp cache stores its whole key and checks it byte for byte, so
/// a collision costs a rebuild, never a wrong filter).
public func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    bytes.withUnsafeBufferPointer { p in
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
    return h
}

/// `v` as 16 lower-case hex digits.
public func hex16(_ v: UInt64) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: (0..<16).map { digits[Int((v >> (60 - 4 * UInt64($0))) & 15)] }, as: UTF8.self)
}
