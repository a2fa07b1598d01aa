// A stdlib Encoder producing JSONValue. Struct properties keep the order in
// which `encode(to:)` writes them (the CodingKeys order); dictionaries keyed by
// String are written with their keys sorted, so output never depends on hash
// order.

public enum JSONEncoding {
    public static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = Node()
        try encodeValue(value, into: root, path: [])
        return root.value
    }

    /// `encode` then the pretty form (two spaces, trailing newline).
    public static func pretty<T: Encodable>(_ value: T) throws -> String {
        try encode(value).pretty()
    }

    static func encodeValue<T: Encodable>(_ value: T, into node: Node, path: [CodingKey]) throws {
        if let v = value as? JSONValue { node.value = v; return }
        // No cast to a protocol here (`as? SomeProtocol`): each new type
        // would cost the runtime a scan of every conformance in the binary,
        // 1.5% of a Docker-style run's CPU. Dictionaries are recognised by
        // the coding key type they encode with instead (NodeEncoder).
        try value.encode(to: NodeEncoder(node: node, codingPath: path))
    }
}

/// The CodingKey type the standard library's Dictionary encodes its String
/// (and Int) keys with, found once by encoding a dictionary: a keyed
/// container of that key type is a dictionary's, whose keys are written
/// sorted.
let dictionaryKeyType: ObjectIdentifier? = {
    let probe = KeyTypeProbe()
    try? ["k": 0].encode(to: probe)
    return probe.box.key
}()

private final class KeyBox { var key: ObjectIdentifier? }

private struct KeyTypeProbe: Encoder {
    let box = KeyBox()
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        box.key = ObjectIdentifier(Key.self)
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(node: Node(), codingPath: []))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer { UnkeyedNodeContainer(node: Node(), codingPath: []) }
    func singleValueContainer() -> SingleValueEncodingContainer { SingleNodeContainer(node: Node(), codingPath: []) }
}


/// One place in the tree being built. Containers hold child nodes and fold
/// them into `value` when asked.
final class Node {
    enum Kind { case leaf, object, array }
    var kind = Kind.leaf
    var leaf: JSONValue = .null
    var objectKeys: [String] = []
    var objectNodes: [String: Node] = [:]
    var arrayNodes: [Node] = []
    /// A dictionary's: its keys are written sorted, never in hash order.
    var sortKeys = false

    var value: JSONValue {
        get {
            switch kind {
            case .leaf: return leaf
            case .object:
                var o = JSONObject()
                for k in sortKeys ? objectKeys.sorted() : objectKeys { o.appendUnchecked(k, objectNodes[k]!.value) }
                return .object(o)
            case .array: return .array(arrayNodes.map { $0.value })
            }
        }
        set { kind = .leaf; leaf = newValue }
    }

    func child(forKey key: String) -> Node {
        if kind != .object { kind = .object; objectKeys = []; objectNodes = [:] }
        if let n = objectNodes[key] { return n }
        let n = Node()
        objectKeys.append(key)
        objectNodes[key] = n
        return n
    }

    func appendChild() -> Node {
        if kind != .array { kind = .array; arrayNodes = [] }
        let n = Node()
        arrayNodes.append(n)
        return n
    }
}

struct NodeEncoder: Encoder {
    let node: Node
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if node.kind != .object { node.kind = .object; node.objectKeys = []; node.objectNodes = [:] }
        if ObjectIdentifier(Key.self) == dictionaryKeyType { node.sortKeys = true }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if node.kind != .array { node.kind = .array; node.arrayNodes = [] }
        return UnkeyedNodeContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer {
        SingleNodeContainer(node: node, codingPath: codingPath)
    }
}

func leafValue<T: Encodable>(_ v: T) -> JSONValue? {
    switch v {
    case let b as Bool: return .bool(b)
    case let s as String: return .string(s)
    case let d as Double: return .double(d)
    case let f as Float: return .double(Double(f))
    case let i as Int: return .int(Int64(i))
    case let i as Int8: return .int(Int64(i))
    case let i as Int16: return .int(Int64(i))
    case let i as Int32: return .int(Int64(i))
    case let i as Int64: return .int(i)
    case let u as UInt: return u > UInt(Int64.max) ? .uint(UInt64(u)) : .int(Int64(u))
    case let u as UInt8: return .int(Int64(u))
    case let u as UInt16: return .int(Int64(u))
    case let u as UInt32: return .int(Int64(u))
    case let u as UInt64: return u > UInt64(Int64.max) ? .uint(u) : .int(Int64(u))
    default: return nil
    }
}

func encodeAny<T: Encodable>(_ v: T, into node: Node, path: [CodingKey]) throws {
    if let leaf = leafValue(v) {
        if case .double(let d) = leaf, !d.isFinite {
            throw EncodingError.invalidValue(d, .init(codingPath: path, debugDescription: "non-finite number"))
        }
        node.value = leaf
    } else {
        try JSONEncoding.encodeValue(v, into: node, path: path)
    }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.child(forKey: key.stringValue).value = .null }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encodeAny(value, into: node.child(forKey: key.stringValue), path: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        NodeEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder { NodeEncoder(node: node.child(forKey: "super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> Encoder {
        NodeEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key])
    }
}

struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]
    var count: Int { node.arrayNodes.count }

    mutating func encodeNil() throws { node.appendChild().value = .null }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [IndexKey(count)]
        try encodeAny(value, into: node.appendChild(), path: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [IndexKey(count)]
        return NodeEncoder(node: node.appendChild(), codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let path = codingPath + [IndexKey(count)]
        return NodeEncoder(node: node.appendChild(), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder {
        let path = codingPath + [IndexKey(count)]
        return NodeEncoder(node: node.appendChild(), codingPath: path)
    }
}

struct SingleNodeContainer: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { node.value = .null }
    mutating func encode<T: Encodable>(_ value: T) throws { try encodeAny(value, into: node, path: codingPath) }
}
