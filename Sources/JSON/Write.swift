// The JSON writer. Ours rather than jansson's dumper because jansson cannot
// hold integers above Int64.max and prints reals with 17 digits; the format is
// fixed so that goldens compare byte for byte: keys in the value's order,
// two-space indent, `"key": value`, `[]` and `{}` for empty containers.

extension JSONValue {
    /// Pretty form, two-space indent, with a trailing newline.
    public func pretty() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        write(into: &out, indent: 0, pretty: true)
        out.append(10)
        return String(decoding: out, as: UTF8.self)
    }

    /// Compact form, one line, no trailing newline.
    public func compact() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(into: &out, indent: 0, pretty: false)
        return String(decoding: out, as: UTF8.self)
    }

    private func newline(_ out: inout [UInt8], _ indent: Int) {
        out.append(10)
        for _ in 0..<indent { out.append(32); out.append(32) }
    }

    func write(into out: inout [UInt8], indent: Int, pretty: Bool) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .uint(let u): out.append(contentsOf: String(u).utf8)
        case .double(let d): out.append(contentsOf: JSONValue.formatDouble(d).utf8)
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (n, v) in a.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(&out, indent + 1) }
                v.write(into: &out, indent: indent + 1, pretty: pretty)
            }
            if pretty { newline(&out, indent) }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            if o.count == 0 { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (n, e) in o.entries.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(&out, indent + 1) }
                JSONValue.writeString(e.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(32) }
                e.value.write(into: &out, indent: indent + 1, pretty: pretty)
            }
            if pretty { newline(&out, indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func formatDouble(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if abs(d) < 1e15, let i = Int64(exactly: d) { return String(i) }
        return String(d)
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 10: out.append(contentsOf: "\\n".utf8)
            case 13: out.append(contentsOf: "\\r".utf8)
            case 9: out.append(contentsOf: "\\t".utf8)
            case 8: out.append(contentsOf: "\\b".utf8)
            case 12: out.append(contentsOf: "\\f".utf8)
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
