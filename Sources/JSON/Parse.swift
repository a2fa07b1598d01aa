import CJansson

// Parsing is jansson's: it checks the syntax, rejects duplicate keys and
// invalid UTF-8, and builds a tree that we copy into a JSONValue.
//
// jansson's integers are signed 64-bit. For the uint64 fields of the OCI spec
// we first let jansson try; only when it reports an integer too big for it do
// we take a slower path: a scan that rewrites each such integer into a marked
// string (a NUL byte, then the digits), which jansson accepts when told to
// allow NUL in strings, and which we turn back into `.uint` here. The scan
// refuses any `\u0000` the document itself contains, so a marker can only come
// from the scan.

private let marker: UInt8 = 0

extension JSONValue {
    /// Parses a JSON document. `file` names it in errors (`config.json`).
    public static func parse(_ bytes: [UInt8], file: String) throws -> JSONValue {
        do {
            return try load(bytes, flags: 0, file: file)
        } catch let e as JSONError where e.message.hasPrefix("invalid JSON: too big") {
            let rewritten = try rewriteBigIntegers(bytes, file: file)
            return try load(rewritten, flags: Int(JSON_ALLOW_NUL), file: file)
        }
    }

    public static func parse(_ text: String, file: String) throws -> JSONValue {
        try parse(Array(text.utf8), file: file)
    }

    private static func load(_ bytes: [UInt8], flags: Int, file: String) throws -> JSONValue {
        var err = json_error_t()
        let allFlags = Int(JSON_REJECT_DUPLICATES) | flags
        let root: UnsafeMutablePointer<json_t>? = bytes.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(buf.count, 1)) { p in
                json_loadb(p, buf.count, allFlags, &err)
            }
        }
        guard let root = root else {
            throw syntaxError(err, file: file)
        }
        defer { json_decref(root) }
        return try convert(root, file: file)
    }

    private static func syntaxError(_ err: json_error_t, file: String) -> JSONError {
        var e = err
        var text = withUnsafeBytes(of: &e.text) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        // jansson says `duplicate object key near '"a"'`; keep its words but
        // make them read as one sentence of ours.
        let dup = "duplicate object key near '"
        if text.hasPrefix(dup) && text.hasSuffix("'") {
            text = "duplicate key " + text.dropFirst(dup.count).dropLast()
        }
        if text == "'[' or '{' expected near end of file" {
            text = "empty document"
        }
        return JSONError(file: file, line: e.line > 0 ? Int(e.line) : nil, column: e.column > 0 ? Int(e.column) : nil,
                         message: "invalid JSON: " + text)
    }

    private static func convert(_ j: UnsafeMutablePointer<json_t>, file: String) throws -> JSONValue {
        switch j.pointee.type {
        case JSON_NULL: return .null
        case JSON_TRUE: return .bool(true)
        case JSON_FALSE: return .bool(false)
        case JSON_INTEGER: return .int(Int64(json_integer_value(j)))
        case JSON_REAL: return .double(json_real_value(j))
        case JSON_STRING:
            let len = json_string_length(j)
            let p = UnsafeRawPointer(json_string_value(j)!).assumingMemoryBound(to: UInt8.self)
            let buf = UnsafeBufferPointer(start: p, count: len)
            if len > 0 && buf[0] == marker {
                var v: UInt64 = 0
                for c in buf.dropFirst() { v = v &* 10 &+ UInt64(c - 48) }
                return .uint(v)
            }
            return .string(String(decoding: buf, as: UTF8.self))
        case JSON_ARRAY:
            let n = json_array_size(j)
            var out: [JSONValue] = []
            out.reserveCapacity(n)
            for i in 0..<n {
                out.append(try convert(json_array_get(j, i)!, file: file))
            }
            return .array(out)
        case JSON_OBJECT:
            var obj = JSONObject()
            var it = json_object_iter(j)
            while let iter = it {
                let klen = json_object_iter_key_len(iter)
                let kp = UnsafeRawPointer(json_object_iter_key(iter)!).assumingMemoryBound(to: UInt8.self)
                let key = String(decoding: UnsafeBufferPointer(start: kp, count: klen), as: UTF8.self)
                obj.appendUnchecked(key, try convert(json_object_iter_value(iter)!, file: file))
                it = json_object_iter_next(j, iter)
            }
            return .object(obj)
        default:
            throw JSONError(file: file, message: "invalid JSON: unknown value type")
        }
    }

    /// Rewrites integer literals beyond Int64 into marked strings; rejects
    /// integers beyond UInt64 and any `\u0000` in the text.
    private static func rewriteBigIntegers(_ b: [UInt8], file: String) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count + 32)
        var i = 0
        var line = 1, lineStart = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\n") { line += 1; lineStart = i + 1 }
            if c == UInt8(ascii: "\"") {
                // Copy the string through, checking for \u0000.
                out.append(c); i += 1
                while i < b.count && b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") && i + 1 < b.count {
                        if b[i + 1] == UInt8(ascii: "u") && i + 5 < b.count && Array(b[(i + 2)...(i + 5)]) == Array("0000".utf8) {
                            throw JSONError(file: file, line: line, column: i - lineStart + 1,
                                            message: "invalid JSON: \\u0000 is not allowed in strings")
                        }
                        out.append(b[i]); i += 1
                    }
                    out.append(b[i]); i += 1
                }
                if i < b.count { out.append(b[i]); i += 1 }
                continue
            }
            if c == UInt8(ascii: "-") || (c >= 48 && c <= 57) {
                let start = i
                var j = i + 1
                var integral = true
                while j < b.count {
                    let d = b[j]
                    if d >= 48 && d <= 57 { j += 1; continue }
                    if d == UInt8(ascii: ".") || d == UInt8(ascii: "e") || d == UInt8(ascii: "E")
                        || d == UInt8(ascii: "+") || d == UInt8(ascii: "-") {
                        integral = false; j += 1; continue
                    }
                    break
                }
                let token = b[start..<j]
                // A leading zero makes the literal invalid JSON: leave it for
                // jansson to reject rather than turn it into a number.
                let leadingZero = token.drop(while: { $0 == UInt8(ascii: "-") }).first == UInt8(ascii: "0")
                if integral && token.count >= 19 && !leadingZero {
                    let text = String(decoding: token, as: UTF8.self)
                    if Int64(text) == nil {
                        guard let _ = UInt64(text) else {
                            throw JSONError(file: file, line: line, column: start - lineStart + 1,
                                            message: "integer \(text) is out of range (integers must lie between -9223372036854775808 and 18446744073709551615)")
                        }
                        out.append(UInt8(ascii: "\""))
                        out.append(contentsOf: Array("\\u0000".utf8))
                        out.append(contentsOf: token)
                        out.append(UInt8(ascii: "\""))
                        i = j
                        continue
                    }
                }
                out.append(contentsOf: token)
                i = j
                continue
            }
            out.append(c)
            i += 1
        }
        return out
    }
}
