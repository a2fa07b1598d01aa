import JSON
import Spec

// config.json -> Spec by hand, without Codable.
//
// `JSONDecoding.decode(Spec.self, ...)` works, but nearly all of its cost is
// the Swift runtime instantiating generic metadata (a KeyedDecodingContainer
// per type, decodeIfPresent<T> per field type) on every start of the runtime.
// This decoder walks the parsed JSONValue with plain functions, one per type
// of Config.swift, and must give exactly what the Codable path gives: the same
// values, and for bad input the same JSONError (file, key path, message).
// Tests/UnitTests/SpecJSONTests.swift checks the two against each other.
//
// The rules, all Codable's (see Sources/JSON/Decoder.swift):
// - properties are decoded in declaration order, so the first bad one in that
//   order is the one reported;
// - unknown keys are ignored;
// - an optional property that is absent or null is nil; a required one that
//   is absent is "required property missing" at its path, and a null there
//   is a type mismatch such as "expected string, found null";
// - integers must fit the field's Swift type, with Codable's range message;
// - key lookup is JSONObject's (Swift String equality, first match).
//
// Paths are built only when something fails: every function takes a `Where`,
// a non-escaping closure that renders the path of the value at hand, and
// children extend it with another closure. Nothing is allocated for a path
// until an error is thrown.

public enum SpecJSON {
    /// Parses `bytes` and decodes a Spec from them; `file` names the document
    /// in errors (`config.json`).
    public static func decode(_ bytes: [UInt8], file: String) throws -> Spec {
        try decode(JSONValue.parse(bytes, file: file), file: file)
    }

    /// Decodes a Spec from a parsed document.
    public static func decode(_ value: JSONValue, file: String) throws -> Spec {
        try named(file) { try decodeSpec(value, { "" }) }
    }

    /// linux.resources alone (the state record, `update --resources`).
    public static func resources(_ value: JSONValue, file: String) throws -> Resources {
        try named(file) { try decodeResources(value, { "" }) }
    }

    /// hooks alone (the state record).
    public static func hooks(_ value: JSONValue, file: String) throws -> Hooks {
        try named(file) { try decodeHooks(value, { "" }) }
    }

    /// process alone (`exec --process`).
    public static func process(_ value: JSONValue, file: String) throws -> Process {
        try named(file) { try decodeProcess(value, { "" }) }
    }

    /// A seccomp profile alone, in linux.seccomp's shape (`run --security-opt
    /// seccomp=PATH`).
    public static func seccomp(_ value: JSONValue, file: String) throws -> Seccomp {
        try named(file) { try decodeSeccomp(value, { "" }) }
    }

    static func named<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let f as Failure {
            throw JSONError(file: file, path: f.path, message: f.message)
        }
    }
}

// MARK: - Paths and errors

/// Renders the key path of the value being decoded, `linux.resources` or
/// `process.args[1]`; "" for the document itself. Only called on error.
typealias Where = () -> String

/// A decoding failure before the file name is added.
struct Failure: Error {
    let path: String
    let message: String
}

/// The path of property `name` of the object at `at` (renderPath's rule: a
/// dot between names, none before the first).
func key(_ at: Where, _ name: String) -> String {
    let p = at()
    return p.isEmpty ? name : p + "." + name
}

/// The path of element `i` of the array at `at`.
func index(_ at: Where, _ i: Int) -> String {
    at() + "[\(i)]"
}

func fail(_ at: Where, _ message: String) -> Failure {
    Failure(path: at(), message: message)
}

func mismatch(_ expected: String, _ found: JSONValue, _ at: Where) -> Failure {
    fail(at, "expected \(expected), found \(found.kindName)")
}

// MARK: - Objects, arrays and property lookup

func object(_ v: JSONValue, _ at: Where) throws -> JSONObject {
    guard case .object(let o) = v else { throw mismatch("object", v, at) }
    return o
}

func array(_ v: JSONValue, _ at: Where) throws -> [JSONValue] {
    guard case .array(let a) = v else { throw mismatch("array", v, at) }
    return a
}

/// An array whose elements `one` decodes, given each element and its index
/// (callers make the element's path from theirs: `{ index(at, i) }`).
func list<T>(_ v: JSONValue, _ at: Where, _ one: (JSONValue, Int) throws -> T) throws -> [T] {
    let a = try array(v, at)
    var out: [T] = []
    out.reserveCapacity(a.count)
    for i in a.indices { out.append(try one(a[i], i)) }
    return out
}

/// An optional property's value; nil when it is absent or null.
func present(_ o: JSONObject, _ name: String) -> JSONValue? {
    guard let v = o[name] else { return nil }
    if case .null = v { return nil }
    return v
}

/// A required property's value. Only absence is an error here: a null is
/// passed on, and the type's decoder rejects it as Codable does.
func required(_ o: JSONObject, _ name: String, _ at: Where) throws -> JSONValue {
    guard let v = o[name] else { throw fail({ key(at, name) }, "required property missing") }
    return v
}

// MARK: - Scalars

func string(_ v: JSONValue, _ at: Where) throws -> String {
    guard case .string(let s) = v else { throw mismatch("string", v, at) }
    return s
}

func bool(_ v: JSONValue, _ at: Where) throws -> Bool {
    guard case .bool(let b) = v else { throw mismatch("boolean", v, at) }
    return b
}

/// The message for a fractional number where an integer is wanted; the
/// number is printed as the JSON writer prints it, as Codable's does.
func notInteger(_ d: Double, _ at: Where) -> Failure {
    fail(at, "expected integer, found number \(JSONValue.double(d).compact())")
}

/// An integer for a field of an unsigned type whose largest value is `max`.
/// The parser gives `.int` up to Int64.max and `.uint` above it; either may
/// be out of the field's range (negative, or too big), and the message names
/// the range the way Codable's `T(exactly:)` check does: "0 and max".
func unsigned(_ v: JSONValue, max: UInt64, _ at: Where) throws -> UInt64 {
    switch v {
    case .int(let i):
        guard i >= 0, UInt64(i) <= max else { throw fail(at, "\(i) is out of range (must lie between 0 and \(max))") }
        return UInt64(i)
    case .uint(let u):
        guard u <= max else { throw fail(at, "\(u) is out of range (must lie between 0 and \(max))") }
        return u
    case .double(let d):
        throw notInteger(d, at)
    default:
        throw mismatch("integer", v, at)
    }
}

/// An integer for a field of a signed type ranging over `min...max`. A
/// `.uint` is above Int64.max, so never fits.
func signed(_ v: JSONValue, min: Int64, max: Int64, _ at: Where) throws -> Int64 {
    switch v {
    case .int(let i):
        guard i >= min, i <= max else { throw fail(at, "\(i) is out of range (must lie between \(min) and \(max))") }
        return i
    case .uint(let u):
        throw fail(at, "\(u) is out of range (must lie between \(min) and \(max))")
    case .double(let d):
        throw notInteger(d, at)
    default:
        throw mismatch("integer", v, at)
    }
}

func uint16(_ v: JSONValue, _ at: Where) throws -> UInt16 {
    UInt16(truncatingIfNeeded: try unsigned(v, max: UInt64(UInt16.max), at))
}

func uint32(_ v: JSONValue, _ at: Where) throws -> UInt32 {
    UInt32(truncatingIfNeeded: try unsigned(v, max: UInt64(UInt32.max), at))
}

func uint64(_ v: JSONValue, _ at: Where) throws -> UInt64 {
    try unsigned(v, max: UInt64.max, at)
}

func uint(_ v: JSONValue, _ at: Where) throws -> UInt {
    UInt(truncatingIfNeeded: try unsigned(v, max: UInt64(UInt.max), at))
}

func int64(_ v: JSONValue, _ at: Where) throws -> Int64 {
    try signed(v, min: Int64.min, max: Int64.max, at)
}

func int(_ v: JSONValue, _ at: Where) throws -> Int {
    Int(truncatingIfNeeded: try signed(v, min: Int64(Int.min), max: Int64(Int.max), at))
}

// MARK: - Collections of scalars

func strings(_ v: JSONValue, _ at: Where) throws -> [String] { try list(v, at) { x, i in try string(x, { index(at, i) }) } }

func uint32s(_ v: JSONValue, _ at: Where) throws -> [UInt32] { try list(v, at) { x, i in try uint32(x, { index(at, i) }) } }

/// A `[String: String]` (annotations, sysctl, unified), in the document's
/// key order, each key's path being `parent.key` whatever characters it has.
///
/// Codable looks every key up again by Swift String equality, which is
/// canonical equivalence: of two keys that differ only in Unicode
/// normalisation, both get the first one's value. Skipping a key already in
/// the result does the same (the first one's value is already there, and it
/// decoded without error).
func stringMap(_ v: JSONValue, _ at: Where) throws -> [String: String] {
    let o = try object(v, at)
    var out: [String: String] = [:]
    out.reserveCapacity(o.count)
    for e in o.entries where out[e.key] == nil {
        guard case .string(let s) = e.value else { throw mismatch("string", e.value, { key(at, e.key) }) }
        out[e.key] = s
    }
    return out
}

// MARK: - Properties of scalar types
//
// `req*` for required properties, `opt*` for optional ones; `at` is the
// path of the object `o`.

func reqString(_ o: JSONObject, _ name: String, _ at: Where) throws -> String {
    try string(required(o, name, at), { key(at, name) })
}

func optString(_ o: JSONObject, _ name: String, _ at: Where) throws -> String? {
    guard let v = present(o, name) else { return nil }
    return try string(v, { key(at, name) })
}

func reqBool(_ o: JSONObject, _ name: String, _ at: Where) throws -> Bool {
    try bool(required(o, name, at), { key(at, name) })
}

func optBool(_ o: JSONObject, _ name: String, _ at: Where) throws -> Bool? {
    guard let v = present(o, name) else { return nil }
    return try bool(v, { key(at, name) })
}

func optUInt16(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt16? {
    guard let v = present(o, name) else { return nil }
    return try uint16(v, { key(at, name) })
}

func reqUInt32(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt32 {
    try uint32(required(o, name, at), { key(at, name) })
}

func optUInt32(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt32? {
    guard let v = present(o, name) else { return nil }
    return try uint32(v, { key(at, name) })
}

func reqUInt64(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt64 {
    try uint64(required(o, name, at), { key(at, name) })
}

func optUInt64(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt64? {
    guard let v = present(o, name) else { return nil }
    return try uint64(v, { key(at, name) })
}

func reqUInt(_ o: JSONObject, _ name: String, _ at: Where) throws -> UInt {
    try uint(required(o, name, at), { key(at, name) })
}

func reqInt64(_ o: JSONObject, _ name: String, _ at: Where) throws -> Int64 {
    try int64(required(o, name, at), { key(at, name) })
}

func optInt64(_ o: JSONObject, _ name: String, _ at: Where) throws -> Int64? {
    guard let v = present(o, name) else { return nil }
    return try int64(v, { key(at, name) })
}

func optInt(_ o: JSONObject, _ name: String, _ at: Where) throws -> Int? {
    guard let v = present(o, name) else { return nil }
    return try int(v, { key(at, name) })
}

func reqStrings(_ o: JSONObject, _ name: String, _ at: Where) throws -> [String] {
    try strings(required(o, name, at), { key(at, name) })
}

func optStrings(_ o: JSONObject, _ name: String, _ at: Where) throws -> [String]? {
    guard let v = present(o, name) else { return nil }
    return try strings(v, { key(at, name) })
}

func optUInt32s(_ o: JSONObject, _ name: String, _ at: Where) throws -> [UInt32]? {
    guard let v = present(o, name) else { return nil }
    return try uint32s(v, { key(at, name) })
}

func optStringMap(_ o: JSONObject, _ name: String, _ at: Where) throws -> [String: String]? {
    guard let v = present(o, name) else { return nil }
    return try stringMap(v, { key(at, name) })
}
