// Input quoted in messages: bounded and on one line. A config field, an id
// or an argument may be megabytes long or hold newlines and terminal escape
// sequences; a message quotes an excerpt of it, with its control characters
// escaped, so that an error stays one readable line of bounded length.

public enum Quote {
    /// The most bytes of one quoted value in a message.
    public static let defaultMax = 256

    /// Whether `u` must not reach a terminal or a log line as itself: C0
    /// controls, DEL, C1 controls, the line and paragraph separators and the
    /// bidirectional overrides (which reorder what follows them on screen).
    public static func isControl(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v < 0x20 || (0x7f...0x9f).contains(v) || v == 0x2028 || v == 0x2029
            || (0x202a...0x202e).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// `u` as printed: itself, or an escape (\n, \t, \r, \xNN, \u{NNNN}).
    /// With `quoting`, `"` and `\` are escaped too, so that the quoted text
    /// reads back unambiguously.
    static func append(_ u: Unicode.Scalar, quoting: Bool, to out: inout String) {
        switch u {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case "\"" where quoting: out += "\\\""
        case "\\" where quoting: out += "\\\\"
        default:
            guard isControl(u) else { out.unicodeScalars.append(u); return }
            let hex = Array("0123456789abcdef".unicodeScalars)
            if u.value < 0x100 {
                out += "\\x"
                out.unicodeScalars.append(hex[Int(u.value >> 4)])
                out.unicodeScalars.append(hex[Int(u.value & 15)])
            } else {
                out += "\\u{"
                for shift in stride(from: 12, through: 0, by: -4) { out.unicodeScalars.append(hex[Int(u.value >> UInt32(shift) & 15)]) }
                out += "}"
            }
        }
    }

    /// `s` with its control characters escaped, in at most about `max`
    /// bytes: when it is longer, its start and its end (where an error says
    /// why: "...: no such file or directory") with `[... N bytes cut ...]`
    /// between them. For whole messages (a value quoted in one is escaped
    /// already: `\` and `"` are left alone here).
    public static func line(_ s: String, max: Int) -> String {
        if s.utf8.count <= max && !s.unicodeScalars.contains(where: isControl) { return s }
        let (whole, covered) = escapedPrefix(s.unicodeScalars, max: max, quoting: false)
        let total = s.utf8.count
        if covered == total { return whole }
        let headMax = max * 2 / 3
        let (head, headBytes) = escapedPrefix(s.unicodeScalars, max: headMax, quoting: false)
        let (tail, tailBytes) = escapedTail(s, max: max - headMax, quoting: false)
        return head + "[... \(total - headBytes - tailBytes) bytes cut ...]" + tail
    }

    /// The escaped text of `scalars`, stopping before `max` bytes; returns it
    /// with the number of input bytes it covers.
    static func escapedPrefix<S: Sequence>(_ scalars: S, max: Int, quoting: Bool = true) -> (String, Int)
        where S.Element == Unicode.Scalar {
        var out = ""
        var used = 0
        for u in scalars {
            var piece = ""
            append(u, quoting: quoting, to: &piece)
            if out.utf8.count + piece.utf8.count > max { break }
            out += piece
            used += String(u).utf8.count
        }
        return (out, used)
    }

    /// `s` between double quotes, escaped; when its escaped form is longer
    /// than `max` bytes, its start and end with `[... N bytes ...]` between
    /// them (the end of a path is often what tells).
    public static func quoted(_ s: String, max: Int = defaultMax) -> String {
        let total = s.utf8.count
        if total <= max && !s.unicodeScalars.contains(where: { isControl($0) || $0 == "\"" || $0 == "\\" }) {
            return "\"" + s + "\""
        }
        let (whole, covered) = escapedPrefix(s.unicodeScalars, max: max)
        if covered == total { return "\"" + whole + "\"" }
        let headMax = max * 2 / 3
        let (head, headBytes) = escapedPrefix(s.unicodeScalars, max: headMax)
        let (tail, tailBytes) = escapedTail(s, max: max - headMax)
        return "\"" + head + "[... \(total - headBytes - tailBytes) bytes ...]" + tail + "\""
    }

    /// The escaped end of `s`, at most `max` bytes, with the input bytes it covers.
    static func escapedTail(_ s: String, max: Int, quoting: Bool = true) -> (String, Int) {
        var pieces: [String] = []
        var size = 0, used = 0
        for u in s.unicodeScalars.reversed() {
            var piece = ""
            append(u, quoting: quoting, to: &piece)
            if size + piece.utf8.count > max { break }
            pieces.append(piece)
            size += piece.utf8.count
            used += String(u).utf8.count
        }
        return (pieces.reversed().joined(), used)
    }

    /// Up to `max` items of a list, space-separated in brackets, with how
    /// many more there are: `[0 1 2 ... (99997 more)]`.
    public static func list<T>(_ items: [T], max: Int = 16) -> String {
        let shown = items.prefix(max).map { "\($0)" }.joined(separator: " ")
        return "[" + shown + (items.count > max ? " ... (\(items.count - max) more)" : "") + "]"
    }
}

/// `s` quoted for a message: escaped, and cut to about `max` bytes.
public func quoted(_ s: String, max: Int = Quote.defaultMax) -> String { Quote.quoted(s, max: max) }
