// A stdlib Decoder over JSONValue. Every error is a JSONError naming the file
// and the full key path, e.g.
// `config.json: linux.resources.memory.limit: expected integer, found string`.
// Unknown keys are ignored (the OCI spec requires it).

public enum JSONDecoding {
    /// Parses `bytes` and decodes a `T` from them.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], file: String) throws -> T {
        try decode(type, from: JSONValue.parse(bytes, file: file), file: file)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, file: String) throws -> T {
        let d = ValueDecoder(value: value, path: [], file: file)
        do {
            return try T(from: d)
        } catch let e as JSONError {
            throw e
        } catch let e as DecodingError {
            throw convert(e, file: file)
        }
    }

    /// Turns errors thrown by hand-written `init(from:)` code into ours.
    static func convert(_ e: DecodingError, file: String) -> JSONError {
        switch e {
        case .dataCorrupted(let c):
            return JSONError(file: file, path: renderPath(c.codingPath), message: c.debugDescription)
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            return JSONError(file: file, path: renderPath(c.codingPath), message: c.debugDescription)
        case .keyNotFound(let k, let c):
            return JSONError(file: file, path: renderPath(c.codingPath + [k]), message: "required property missing")
        @unknown default:
            return JSONError(file: file, message: "\(e)")
        }
    }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "" }
    init(_ i: Int) { intValue = i }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    let file: String
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSONValue, path: [CodingKey], file: String) {
        self.value = value
        self.codingPath = path
        self.file = file
    }

    func fail(_ message: String, at path: [CodingKey]? = nil) -> JSONError {
        JSONError(file: file, path: renderPath(path ?? codingPath), message: message)
    }

    func mismatch(_ expected: String, _ found: JSONValue, at path: [CodingKey]? = nil) -> JSONError {
        fail("expected \(expected), found \(found.kindName)", at: path)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let o) = value else { throw mismatch("object", value) }
        return KeyedDecodingContainer(KeyedContainer<Key>(object: o, decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let a) = value else { throw mismatch("array", value) }
        return UnkeyedContainer(array: a, decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { self }
}

extension ValueDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch("boolean", value) }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch("string", value) }
        return s
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        default: throw mismatch("number", value)
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let range = "\(T.min) and \(T.max)"
        switch value {
        case .int(let i):
            guard let v = T(exactly: i) else { throw fail("\(i) is out of range (must lie between \(range))") }
            return v
        case .uint(let u):
            guard let v = T(exactly: u) else { throw fail("\(u) is out of range (must lie between \(range))") }
            return v
        case .double(let d):
            throw fail("expected integer, found number \(JSONValue.formatDouble(d))")
        default:
            throw mismatch("integer", value)
        }
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        return try T(from: self)
    }
}

struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: JSONObject
    let decoder: ValueDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    func child(_ key: Key) throws -> ValueDecoder {
        guard let v = object[key.stringValue] else {
            throw decoder.fail("required property missing", at: codingPath + [key])
        }
        return ValueDecoder(value: v, path: codingPath + [key], file: decoder.file)
    }

    func decodeNil(forKey key: Key) throws -> Bool { (object[key.stringValue] ?? .null) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try child(key).decode(type)
    }

    // Optional properties: absent or null give nil.
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = object[key.stringValue], v != .null else { return nil }
        return try ValueDecoder(value: v, path: codingPath + [key], file: decoder.file).decode(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try child(key).unkeyedContainer()
    }

    func superDecoder() throws -> Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

struct UnkeyedContainer: UnkeyedDecodingContainer {
    let array: [JSONValue]
    let decoder: ValueDecoder
    var currentIndex = 0
    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    init(array: [JSONValue], decoder: ValueDecoder) {
        self.array = array
        self.decoder = decoder
    }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw decoder.fail("unexpected end of array", at: codingPath + [IndexKey(currentIndex)])
        }
        let d = ValueDecoder(value: array[currentIndex], path: codingPath + [IndexKey(currentIndex)], file: decoder.file)
        currentIndex += 1
        return d
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd && array[currentIndex] == .null { currentIndex += 1; return true }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next().decode(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        try next().unkeyedContainer()
    }

    mutating func superDecoder() throws -> Decoder { try next() }
}
