// A JSON document as a Swift value. Objects keep their keys in the order they
// were read or built, so what we write back is stable.
//
// Integer policy: JSON integers are kept exactly when they lie between
// -2^63 and 2^64-1. Values up to Int64.max are `.int`; values above it (the
// uint64 fields of runtime-spec, such as rlimits of 18446744073709551615)
// are `.uint`. Anything outside that range is rejected when parsing, with
// its line and column. Decoding into a signed field rejects `.uint` values
// with a message that names the field and the range.

public enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    /// Only for integers above Int64.max.
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A short name of the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .uint: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

/// An ordered JSON object.
///
/// A small object is searched key by key; from `indexedCount` entries on,
/// it also keeps each key's first position in a dictionary, so that building
/// or reading an object of n keys costs O(n), not O(n^2) (a config.json
/// with 100000 annotations took seconds to copy into state.json; found by
/// the fuzz targets, Tests/UnitTests/FuzzFindingsTests.swift). Lookups still
/// give the first entry whose key is equal as a Swift String (keys that
/// differ in bytes but not in canonical form can both be present).
public struct JSONObject: Equatable {
    public private(set) var entries: [(key: String, value: JSONValue)] = []
    /// The first position of each key, once there are `indexedCount` entries.
    private var index: [String: Int]?
    static let indexedCount = 32

    public init() {}

    public init(_ entries: [(String, JSONValue)]) {
        for (k, v) in entries { self[k] = v }
    }

    public var count: Int { entries.count }
    public var keys: [String] { entries.map { $0.key } }

    private func position(_ key: String) -> Int? {
        if let ix = index { return ix[key] }
        return entries.firstIndex { $0.key == key }
    }

    private mutating func reindex() {
        guard entries.count >= JSONObject.indexedCount else { index = nil; return }
        var ix: [String: Int] = [:]
        ix.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() where ix[e.key] == nil { ix[e.key] = i }
        index = ix
    }

    private mutating func append(_ key: String, _ value: JSONValue) {
        entries.append((key, value))
        if index != nil {
            if index![key] == nil { index![key] = entries.count - 1 }
        } else if entries.count >= JSONObject.indexedCount {
            reindex()
        }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            position(key).map { entries[$0].value }
        }
        set {
            if let i = position(key) {
                if let v = newValue {
                    entries[i].value = v
                } else {
                    entries.remove(at: i)
                    if index != nil { reindex() }
                }
            } else if let v = newValue {
                append(key, v)
            }
        }
    }

    /// Appends without checking for an existing key (the parser has already
    /// rejected duplicates).
    mutating func appendUnchecked(_ key: String, _ value: JSONValue) {
        append(key, value)
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.entries.count == b.entries.count else { return false }
        for (x, y) in zip(a.entries, b.entries) where x.key != y.key || x.value != y.value {
            return false
        }
        return true
    }
}

/// A decoding or encoding failure, located by file and key path.
/// Its description is the one line we print:
/// `config.json: linux.resources.memory.limit: expected integer, found string`.
public struct JSONError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// `linux.resources.memory.limit`, `process.args[0]`; empty for the top.
    public var path: String
    /// Line and column, for syntax errors.
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(file: String, path: String = "", line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        var s = file
        if let line = line {
            s += ":\(line)"
            if let column = column { s += ":\(column)" }
        }
        if !path.isEmpty { s += ": " + path }
        return s + ": " + message
    }
}

/// Renders a coding path as `a.b[2].c`.
public func renderPath(_ path: [CodingKey]) -> String {
    var s = ""
    for key in path {
        if let i = key.intValue, key.stringValue.isEmpty || key.stringValue == "Index \(i)" {
            s += "[\(i)]"
        } else {
            if !s.isEmpty { s += "." }
            s += key.stringValue
        }
    }
    return s
}
