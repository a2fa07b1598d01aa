import Glibc

// The JSON parser: RFC 8259, strict, in one pass over the bytes straight
// into a JSONValue.
//
// It was jansson's until issue 13: jansson reads a byte at a time through a
// stream with per-character calls and builds a tree of its own that we then
// copied, ~10 ns a byte. A config.json with a Docker-sized seccomp profile
// (15 KB) took 0.25 ms to parse, on every create, start, state and delete.
// This one is ~5x faster and keeps jansson's rules and messages: the top is
// an object or an array, duplicate keys are refused (compared as bytes, as
// jansson does: "\u00e9" and "e\u0301" are two keys), UTF-8 is validated
// (no overlong forms, no surrogates, nothing above U+10FFFF), `\u0000` and
// lone surrogate escapes are refused, control characters must be escaped,
// nesting stops at 2048 levels, and errors carry the line and column.
//
// Integer policy (JSONValue.swift): integers between -2^63 and 2^63-1 are
// `.int`, those above up to 2^64-1 `.uint`, anything else an error naming
// the literal. Numbers with a fraction or exponent are doubles (strtod);
// one that overflows a double is refused.

extension JSONValue {
    /// Parses a JSON document. `file` names it in errors (`config.json`).
    public static func parse(_ bytes: [UInt8], file: String) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf, file: file)
            return try p.document()
        }
    }

    public static func parse(_ text: String, file: String) throws -> JSONValue {
        try parse(Array(text.utf8), file: file)
    }
}

struct JSONParser {
    let b: UnsafeBufferPointer<UInt8>
    let file: String
    var i = 0
    var depth = 0
    static let maxDepth = 2048
    /// Objects from this many keys on check duplicates through a set.
    static let hashedKeys = 16

    init(_ b: UnsafeBufferPointer<UInt8>, file: String) {
        self.b = b
        self.file = file
    }

    // MARK: errors

    /// Line and column (1-based, in characters) of byte offset `at`.
    func position(_ at: Int) -> (line: Int, column: Int) {
        var line = 1, column = 0
        var k = 0
        let end = min(at, b.count)
        while k < end {
            let c = b[k]
            if c == 10 { line += 1; column = 0 } else if c & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return (line, column)
    }

    /// An error at byte `at` (the column is that of the byte itself).
    func error(_ message: String, at: Int) -> JSONError {
        let (line, column) = position(at + 1)
        return JSONError(file: file, line: line, column: max(column, 1), message: message)
    }

    func syntax(_ message: String, at: Int) -> JSONError {
        error("invalid JSON: " + message, at: at)
    }

    /// jansson's "near" text: the token at `at`, or "end of file".
    func near(_ at: Int) -> String {
        guard at < b.count else { return "end of file" }
        var e = at
        if isLiteralByte(b[at]) {
            while e < b.count, isLiteralByte(b[e]), e - at < 32 { e += 1 }
        } else {
            e = at + 1
            while e < b.count, b[e] & 0xC0 == 0x80 { e += 1 }
        }
        return "'" + String(decoding: UnsafeBufferPointer(rebasing: b[at..<e]), as: UTF8.self) + "'"
    }

    func isLiteralByte(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 45 || c == 43 || c == 46
    }

    // MARK: structure

    @inline(__always) mutating func skipSpace() {
        while i < b.count {
            let c = b[i]
            guard c == 32 || c == 10 || c == 13 || c == 9 else { return }
            i += 1
        }
    }

    mutating func document() throws -> JSONValue {
        skipSpace()
        guard i < b.count else {
            throw JSONError(file: file, line: position(b.count).line, message: "invalid JSON: empty document")
        }
        let c = b[i]
        guard c == 123 || c == 91 else {
            // As jansson: the token, then where it ends.
            let start = i
            var e = i
            if isLiteralByte(c) { while e < b.count, isLiteralByte(b[e]) { e += 1 } } else { e += 1 }
            throw syntax("'[' or '{' expected near \(near(start))", at: e - 1)
        }
        let v = try value()
        skipSpace()
        if i < b.count { throw syntax("end of file expected near \(near(i))", at: i) }
        return v
    }

    mutating func value() throws -> JSONValue {
        guard i < b.count else { throw syntax("unexpected end of file", at: b.count - 1) }
        switch b[i] {
        case 123: return try object()
        case 91: return try array()
        case 34:
            let s = try string()
            return .string(s.value)
        case 116: try literal("true"); return .bool(true)
        case 102: try literal("false"); return .bool(false)
        case 110: try literal("null"); return .null
        case 45, 48...57: return try number()
        default: throw syntax("unexpected token near \(near(i))", at: i)
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
        var k = 0
        while k < n, i + k < b.count, b[i + k] == w[k] { k += 1 }
        // A whole word, not the start of a longer one ("nullx", "truefalse").
        if k < n || (i + n < b.count && isLiteralByte(b[i + n])) {
            throw syntax("invalid token near \(near(i))", at: i + k)
        }
        i += n
    }

    mutating func enter() throws {
        depth += 1
        if depth > JSONParser.maxDepth { throw syntax("maximum parsing depth reached", at: i) }
    }

    mutating func array() throws -> JSONValue {
        try enter()
        i += 1
        var out: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == 93 { i += 1; depth -= 1; return .array(out) }
        while true {
            skipSpace()
            out.append(try value())
            skipSpace()
            guard i < b.count else { throw syntax("']' expected near end of file", at: b.count - 1) }
            if b[i] == 44 { i += 1; continue }
            if b[i] == 93 { i += 1; break }
            throw syntax("']' expected near \(near(i))", at: i)
        }
        depth -= 1
        return .array(out)
    }

    mutating func object() throws -> JSONValue {
        try enter()
        i += 1
        var obj = JSONObject()
        // The keys' bytes, for jansson's duplicate rule (bytes, not Strings).
        var keys: [KeyBytes] = []
        var keySet: Set<[UInt8]>? = nil
        skipSpace()
        if i < b.count, b[i] == 125 { i += 1; depth -= 1; return .object(obj) }
        while true {
            skipSpace()
            guard i < b.count, b[i] == 34 else {
                throw syntax(i < b.count ? "string or '}' expected near \(near(i))" : "string or '}' expected near end of file",
                             at: min(i, b.count - 1))
            }
            let (key, raw) = try string()
            if isDuplicate(raw, keys: &keys, set: &keySet) {
                throw syntax("duplicate key \"\(key)\"", at: i - 1)
            }
            skipSpace()
            guard i < b.count, b[i] == 58 else {
                throw syntax("':' expected near \(near(min(i, b.count)))", at: min(i, b.count - 1))
            }
            i += 1
            skipSpace()
            obj.appendUnchecked(key, try value())
            skipSpace()
            guard i < b.count else { throw syntax("'}' expected near end of file", at: b.count - 1) }
            if b[i] == 44 { i += 1; continue }
            if b[i] == 125 { i += 1; break }
            throw syntax("'}' expected near \(near(i))", at: i)
        }
        depth -= 1
        return .object(obj)
    }

    /// jansson's rule: keys are the same when their decoded bytes are.
    /// Small objects compare key by key; larger ones through a set.
    func isDuplicate(_ key: KeyBytes, keys: inout [KeyBytes], set: inout Set<[UInt8]>?) -> Bool {
        if set == nil && keys.count < JSONParser.hashedKeys {
            for k in keys where equal(k, key) { return true }
            keys.append(key)
            return false
        }
        if set == nil {
            set = Set(keys.map(bytes))
            keys = []
        }
        return !set!.insert(bytes(key)).inserted
    }

    func bytes(_ k: KeyBytes) -> [UInt8] {
        switch k {
        case .plain(let r): return Array(b[r])
        case .decoded(let d): return d
        }
    }

    func equal(_ x: KeyBytes, _ y: KeyBytes) -> Bool {
        switch (x, y) {
        case (.plain(let r), .plain(let q)): return r.count == q.count && b[r].elementsEqual(b[q])
        case (.plain(let r), .decoded(let d)), (.decoded(let d), .plain(let r)): return r.count == d.count && b[r].elementsEqual(d)
        case (.decoded(let d), .decoded(let e)): return d == e
        }
    }

    /// A string's decoded bytes: where they lie in the document when it has
    /// no escapes, else a copy.
    enum KeyBytes {
        case plain(Range<Int>)
        case decoded([UInt8])
    }

    // MARK: strings

    /// A string at b[i] (an opening quote): its value and its bytes.
    mutating func string() throws -> (value: String, raw: KeyBytes) {
        let start = i + 1
        var k = start
        // Fast path: ASCII without escapes.
        while k < b.count {
            let c = b[k]
            if c == 34 {
                let r = start..<k
                i = k + 1
                return (String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self), .plain(r))
            }
            if c == 92 || c < 0x20 || c >= 0x80 { break }
            k += 1
        }
        // General path: escapes and UTF-8.
        var out: [UInt8] = Array(b[start..<k])
        var escaped = false
        while true {
            guard k < b.count else { throw syntax("premature end of input", at: b.count - 1) }
            let c = b[k]
            if c == 34 { break }
            if c < 0x20 {
                throw syntax("control character 0x\(String(c, radix: 16)) near \(near(start - 1))", at: k)
            }
            if c == 92 {
                escaped = true
                guard k + 1 < b.count else { throw syntax("premature end of input", at: b.count - 1) }
                let e = b[k + 1]
                k += 2
                switch e {
                case 34: out.append(34)
                case 92: out.append(92)
                case 47: out.append(47)
                case 98: out.append(8)
                case 102: out.append(12)
                case 110: out.append(10)
                case 114: out.append(13)
                case 116: out.append(9)
                case 117:
                    var u = try hex4(at: k)
                    k += 4
                    if u == 0 { throw syntax("\\u0000 is not allowed in strings", at: k - 1) }
                    if u >= 0xD800 && u <= 0xDBFF {
                        guard k + 6 <= b.count, b[k] == 92, b[k + 1] == 117 else {
                            throw syntax("invalid Unicode '\\u\(String(u, radix: 16, uppercase: true))'", at: k - 1)
                        }
                        let lo = try hex4(at: k + 2)
                        guard lo >= 0xDC00 && lo <= 0xDFFF else {
                            throw syntax("invalid Unicode '\\u\(String(u, radix: 16, uppercase: true))\\u\(String(lo, radix: 16, uppercase: true))'", at: k + 5)
                        }
                        k += 6
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                    } else if u >= 0xDC00 && u <= 0xDFFF {
                        throw syntax("invalid Unicode '\\u\(String(u, radix: 16, uppercase: true))'", at: k - 1)
                    }
                    appendUTF8(u, to: &out)
                default:
                    throw syntax("invalid escape '\\\(String(decoding: [e], as: UTF8.self))' near \(near(start - 1))", at: k - 1)
                }
                continue
            }
            if c < 0x80 { out.append(c); k += 1; continue }
            let n = try utf8Length(at: k)
            out.append(contentsOf: b[k..<(k + n)])
            k += n
        }
        i = k + 1
        let s = String(decoding: out, as: UTF8.self)
        return (s, escaped ? .decoded(out) : .plain(start..<k))
    }

    func hex4(at k: Int) throws -> UInt32 {
        guard k + 4 <= b.count else { throw syntax("premature end of input", at: b.count - 1) }
        var v: UInt32 = 0
        for j in k..<(k + 4) {
            let c = b[j]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw syntax("invalid escape near '\\u\(String(decoding: UnsafeBufferPointer(rebasing: b[k..<min(k + 4, b.count)]), as: UTF8.self))'", at: j)
            }
            v = v << 4 | d
        }
        return v
    }

    func appendUTF8(_ u: UInt32, to out: inout [UInt8]) {
        if u < 0x80 {
            out.append(UInt8(u))
        } else if u < 0x800 {
            out.append(UInt8(0xC0 | (u >> 6))); out.append(UInt8(0x80 | (u & 0x3F)))
        } else if u < 0x10000 {
            out.append(UInt8(0xE0 | (u >> 12))); out.append(UInt8(0x80 | ((u >> 6) & 0x3F))); out.append(UInt8(0x80 | (u & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (u >> 18))); out.append(UInt8(0x80 | ((u >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((u >> 6) & 0x3F))); out.append(UInt8(0x80 | (u & 0x3F)))
        }
    }

    /// The length of the well-formed UTF-8 sequence at b[k] (a byte >= 0x80),
    /// or an error: no overlong forms, no surrogates, nothing above U+10FFFF.
    func utf8Length(at k: Int) throws -> Int {
        let c = b[k]
        func cont(_ j: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            j < b.count && b[j] >= lo && b[j] <= hi
        }
        let ok: Int?
        switch c {
        case 0xC2...0xDF: ok = cont(k + 1) ? 2 : nil
        case 0xE0: ok = cont(k + 1, 0xA0) && cont(k + 2) ? 3 : nil
        case 0xE1...0xEC, 0xEE, 0xEF: ok = cont(k + 1) && cont(k + 2) ? 3 : nil
        case 0xED: ok = cont(k + 1, 0x80, 0x9F) && cont(k + 2) ? 3 : nil
        case 0xF0: ok = cont(k + 1, 0x90) && cont(k + 2) && cont(k + 3) ? 4 : nil
        case 0xF1...0xF3: ok = cont(k + 1) && cont(k + 2) && cont(k + 3) ? 4 : nil
        case 0xF4: ok = cont(k + 1, 0x80, 0x8F) && cont(k + 2) && cont(k + 3) ? 4 : nil
        default: ok = nil
        }
        guard let n = ok else { throw syntax("unable to decode byte 0x\(String(c, radix: 16))", at: k) }
        return n
    }

    // MARK: numbers

    mutating func number() throws -> JSONValue {
        let start = i
        var k = i
        if b[k] == 45 { k += 1 }
        guard k < b.count, b[k] >= 48 && b[k] <= 57 else { throw syntax("invalid token near \(near(start))", at: min(k, b.count - 1)) }
        if b[k] == 48 {
            k += 1
            if k < b.count, b[k] >= 48 && b[k] <= 57 { throw syntax("invalid token near \(near(start))", at: k) }
        } else {
            while k < b.count, b[k] >= 48 && b[k] <= 57 { k += 1 }
        }
        var integral = true
        if k < b.count, b[k] == 46 {
            integral = false
            k += 1
            guard k < b.count, b[k] >= 48 && b[k] <= 57 else { throw syntax("invalid token near \(near(start))", at: min(k, b.count - 1)) }
            while k < b.count, b[k] >= 48 && b[k] <= 57 { k += 1 }
        }
        if k < b.count, b[k] == 101 || b[k] == 69 {
            integral = false
            k += 1
            if k < b.count, b[k] == 43 || b[k] == 45 { k += 1 }
            guard k < b.count, b[k] >= 48 && b[k] <= 57 else { throw syntax("invalid token near \(near(start))", at: min(k, b.count - 1)) }
            while k < b.count, b[k] >= 48 && b[k] <= 57 { k += 1 }
        }
        // A number runs into no letter ("1x", "2true").
        if k < b.count, isLiteralByte(b[k]) { throw syntax("invalid token near \(near(start))", at: k) }
        i = k
        let digits = UnsafeBufferPointer(rebasing: b[start..<k])
        if integral {
            let negative = digits[0] == 45
            var mag: UInt64 = 0
            var overflow = false
            for c in digits.dropFirst(negative ? 1 : 0) {
                let (m, o1) = mag.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c - 48))
                if o1 || o2 { overflow = true; break }
                mag = a
            }
            if !overflow {
                if !negative {
                    return mag <= UInt64(Int64.max) ? .int(Int64(mag)) : .uint(mag)
                }
                if mag <= UInt64(Int64.max) { return .int(-Int64(mag)) }
                if mag == UInt64(Int64.max) + 1 { return .int(Int64.min) }
            }
            let text = String(decoding: digits, as: UTF8.self)
            throw error("integer \(text) is out of range (integers must lie between -9223372036854775808 and 18446744073709551615)", at: start)
        }
        // strtod on a NUL-terminated copy (the literal is short and ASCII).
        var text = Array(digits)
        text.append(0)
        let d = text.withUnsafeBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { strtod($0, nil) }
        }
        if !d.isFinite { throw syntax("real number overflow near \(near(start))", at: k - 1) }
        return .double(d)
    }
}
