// IPv4 addresses and subnets, as values.

public struct IPv4: Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// A dotted quad without leading zeros.
    public init?(_ s: String) {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  p == "0" || p.first != "0", let o = UInt8(p) else { return nil }
            v = v << 8 | UInt32(o)
        }
        value = v
    }

    public var octets: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    public var description: String { octets.map(String.init).joined(separator: ".") }
    public static func < (a: IPv4, b: IPv4) -> Bool { a.value < b.value }
}

public struct Subnet: Equatable, CustomStringConvertible {
    public var network: IPv4
    public var prefix: Int

    public init(_ a: IPv4, prefix: Int) {
        precondition((0...32).contains(prefix))
        self.prefix = prefix
        network = IPv4(a.value & Subnet.mask(prefix))
    }

    /// "172.18.0.0/16".
    public init?(_ s: String) {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let a = IPv4(String(parts[0])), let p = Int(parts[1]), (0...32).contains(p) else { return nil }
        self.init(a, prefix: p)
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }
    public var mask: UInt32 { Subnet.mask(prefix) }
    public var broadcast: IPv4 { IPv4(network.value | ~mask) }
    /// The first host address, our gateway by convention.
    public var gateway: IPv4 { IPv4(network.value + 1) }
    public func contains(_ a: IPv4) -> Bool { a.value & mask == network.value }
    public var description: String { "\(network)/\(prefix)" }
}
