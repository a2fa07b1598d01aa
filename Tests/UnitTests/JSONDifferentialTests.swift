import XCTest
import CJansson
import Glibc
@testable import JSON

// Our parser (JSON/Parse.swift) against jansson, which parsed for us until
// issue 13 and stays here as the oracle: on the repository's JSON files and
// on mutations of them, both accept the same documents and give the same
// values. jansson's one difference is by design: integers above Int64.max,
// which it refuses and we read as .uint (JSONValue.swift).

private func jansson(_ bytes: [UInt8]) -> JSONValue?? {
    var err = json_error_t()
    let root: UnsafeMutablePointer<json_t>? = bytes.withUnsafeBufferPointer { buf in
        buf.baseAddress.map { p in
            p.withMemoryRebound(to: CChar.self, capacity: max(buf.count, 1)) {
                json_loadb($0, buf.count, Int(JSON_REJECT_DUPLICATES), &err)
            }
        } ?? json_loadb("", 0, Int(JSON_REJECT_DUPLICATES), &err)
    }
    guard let r = root else {
        let text = withUnsafeBytes(of: &err.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return text.contains("too big") ? .some(nil) : nil   // .some(nil): refused as a big integer
    }
    defer { json_decref(r) }
    return .some(convert(r))
}

private func convert(_ j: UnsafeMutablePointer<json_t>) -> JSONValue {
    switch j.pointee.type {
    case JSON_NULL: return .null
    case JSON_TRUE: return .bool(true)
    case JSON_FALSE: return .bool(false)
    case JSON_INTEGER: return .int(Int64(json_integer_value(j)))
    case JSON_REAL: return .double(json_real_value(j))
    case JSON_STRING:
        let p = UnsafeRawPointer(json_string_value(j)!).assumingMemoryBound(to: UInt8.self)
        return .string(String(decoding: UnsafeBufferPointer(start: p, count: json_string_length(j)), as: UTF8.self))
    case JSON_ARRAY:
        return .array((0..<json_array_size(j)).map { convert(json_array_get(j, $0)!) })
    default:
        var o = JSONObject()
        var it = json_object_iter(j)
        while let i = it {
            let kp = UnsafeRawPointer(json_object_iter_key(i)!).assumingMemoryBound(to: UInt8.self)
            o.appendUnchecked(String(decoding: UnsafeBufferPointer(start: kp, count: json_object_iter_key_len(i)), as: UTF8.self),
                              convert(json_object_iter_value(i)!))
            it = json_object_iter_next(j, i)
        }
        return .object(o)
    }
}

private let repoRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// The repository's JSON files (Specs goldens, schema, the seccomp table).
private func corpus() -> [[UInt8]] {
    var out: [[UInt8]] = []
    func walk(_ dir: String, _ depth: Int) {
        guard depth < 6, let d = opendir(dir) else { return }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            let path = dir + "/" + name
            if e.pointee.d_type == UInt8(DT_DIR) { walk(path, depth + 1); continue }
            guard name.hasSuffix(".json"), let f = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buf, 1, buf.count, f)
                if n <= 0 { break }
                bytes += buf[0..<n]
            }
            fclose(f)
            out.append(bytes)
        }
    }
    for d in ["Specs", "schema"] { walk(repoRoot + "/" + d, 0) }
    return out
}

final class JSONDifferentialTests: XCTestCase {
    func agree(_ doc: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let ours = try? JSONValue.parse(doc, file: "x.json")
        switch jansson(doc) {
        case nil:
            XCTAssertNil(ours, "jansson refuses, we accept: \(String(decoding: doc.prefix(200), as: UTF8.self).debugDescription)", file: file, line: line)
        case .some(nil):
            break  // a big integer: ours may take it
        case .some(let v?):
            XCTAssertEqual(ours, v, "\(String(decoding: doc.prefix(200), as: UTF8.self).debugDescription)", file: file, line: line)
        }
    }

    func testHandPickedDocuments() {
        let docs = [
            "{}", "[]", " [ ] ", "[1,2]", "[1,]", "{\"a\":1,}", "[01]", "[-0]", "[-]", "[1.]", "[.5]", "[1e5]", "[1E+5]", "[1e-5]",
            "[1e400]", "[-1e400]", "[1.5e308]", "[\"\\u0041\"]", "[\"\\ud83d\\ude00\"]", "[\"\\ud83d\"]", "[\"\\ude00\"]",
            "[\"\\ud83dx\"]", "[\"\\u00e9\"]", "[\"\\x\"]", "[\"\t\"]", "[\"a\nb\"]", "[tru]", "[true]", "[truex]", "[nul]",
            "[null,false]", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{\"a\":1 \"b\":2}", "[1 2]", "null", "1", "\"s\"", "", " ",
            "[]]", "[][]", "{\"é\":1,\"e\\u0301\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"\\u0061\":1,\"a\":2}",
            "[9223372036854775807]", "[-9223372036854775808]", "[-9223372036854775809]", "[\"\\/\"]", "[\"\\b\\f\\n\\r\\t\"]",
            "\u{FEFF}[]", "[1]\u{0}", "[\"a\u{7f}\"]",
        ]
        for d in docs { agree(Array(d.utf8)) }
        // Invalid UTF-8 of every kind.
        for bad: [UInt8] in [[0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                             [0xF5, 0x80, 0x80, 0x80], [0x80], [0xFF], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3, 0xA9], [0xE2, 0x82, 0xAC],
                             [0xF0, 0x9F, 0x98, 0x80], [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF]] {
            agree(Array("[\"".utf8) + bad + Array("\"]".utf8))
            agree(Array("{\"".utf8) + bad + Array("\":1}".utf8))
        }
        // Deep nesting, at and beyond jansson's limit.
        for n in [2047, 2048, 2049, 5000] {
            agree(Array(repeating: 91, count: n) + Array(repeating: 93, count: n))
        }
    }

    func testRepositoryFilesAndMutations() {
        let files = corpus()
        XCTAssertGreaterThan(files.count, 10)
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        let bytes: [UInt8] = Array("{}[]\",:\\0123456789-+.eEtrufalsn u\u{1}".utf8) + [0x80, 0xC3, 0xA9, 0xFF, 0xED]
        var checked = 0
        for f in files {
            agree(f)
            guard f.count < 40_000 else { continue }
            for _ in 0..<60 {
                var m = f
                for _ in 0..<(1 + Int(next() % 3)) {
                    let at = Int(next() % UInt64(max(m.count, 1)))
                    switch next() % 3 {
                    case 0: if !m.isEmpty { m[at] = bytes[Int(next() % UInt64(bytes.count))] }
                    case 1: m.insert(bytes[Int(next() % UInt64(bytes.count))], at: at)
                    default: if !m.isEmpty { m.remove(at: at) }
                    }
                }
                agree(m)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 500)
    }
}
