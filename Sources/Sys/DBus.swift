import Glibc

// The little of D-Bus that asking systemd for a scope takes: the wire
// format (little-endian marshalling of the basic and container types, the
// message header), EXTERNAL authentication over a unix socket, one method
// call and its reply. No threads, no library: the create path stays a
// single-threaded process. Written from the D-Bus specification
// ("Message Protocol", "Authentication Protocol").

/// A D-Bus value with its type.
public indirect enum DBusValue: Equatable {
    case byte(UInt8)
    case bool(Bool)
    case int32(Int32)
    case uint32(UInt32)
    case uint64(UInt64)
    case string(String)
    case objectPath(String)
    case signature(String)
    /// An array of `element`-typed values (the element signature, so that
    /// an empty array has a type too).
    case array(element: String, [DBusValue])
    case structure([DBusValue])
    case variant(DBusValue)

    /// The value's type signature ("s", "a(sv)", ...).
    public var signature: String {
        switch self {
        case .byte: return "y"
        case .bool: return "b"
        case .int32: return "i"
        case .uint32: return "u"
        case .uint64: return "t"
        case .string: return "s"
        case .objectPath: return "o"
        case .signature: return "g"
        case .array(let e, _): return "a" + e
        case .structure(let l): return "(" + l.map(\.signature).joined() + ")"
        case .variant: return "v"
        }
    }
}

/// A D-Bus message: its header fields and body.
public struct DBusMessage: Equatable {
    public enum Kind: UInt8 { case methodCall = 1, methodReturn = 2, error = 3, signal = 4 }
    public var kind: Kind
    public var serial: UInt32
    public var flags: UInt8 = 0
    public var path: String?
    public var interface: String?
    public var member: String?
    public var errorName: String?
    public var replySerial: UInt32?
    public var destination: String?
    public var sender: String?
    public var body: [DBusValue] = []

    public init(kind: Kind, serial: UInt32) { self.kind = kind; self.serial = serial }

    /// A method call to `destination`'s `path`, `interface.member(body)`.
    public static func call(serial: UInt32, destination: String, path: String, interface: String,
                            member: String, body: [DBusValue]) -> DBusMessage {
        var m = DBusMessage(kind: .methodCall, serial: serial)
        m.destination = destination; m.path = path; m.interface = interface; m.member = member; m.body = body
        return m
    }

    /// The message on the wire, little-endian.
    public func encoded() -> [UInt8] {
        var body = DBusWriter()
        for v in self.body { body.write(v) }
        var fields: [DBusValue] = []
        func field(_ code: UInt8, _ v: DBusValue?) { if let v = v { fields.append(.structure([.byte(code), .variant(v)])) } }
        field(1, path.map { .objectPath($0) })
        field(2, interface.map { .string($0) })
        field(3, member.map { .string($0) })
        field(4, errorName.map { .string($0) })
        field(5, replySerial.map { .uint32($0) })
        field(6, destination.map { .string($0) })
        field(7, sender.map { .string($0) })
        if !self.body.isEmpty { field(8, .signature(self.body.map(\.signature).joined())) }
        var w = DBusWriter()
        w.write(.byte(UInt8(ascii: "l")))
        w.write(.byte(kind.rawValue))
        w.write(.byte(flags))
        w.write(.byte(1))
        w.write(.uint32(UInt32(body.bytes.count)))
        w.write(.uint32(serial))
        w.write(.array(element: "(yv)", fields))
        w.pad(to: 8)
        return w.bytes + body.bytes
    }

    /// The whole message at the start of `bytes` and its length; nil when
    /// more bytes are needed. Throws on a message that is not well formed.
    public static func decode(_ bytes: [UInt8]) throws -> (DBusMessage, Int)? {
        guard bytes.count >= 16 else { return nil }
        guard bytes[0] == UInt8(ascii: "l") else { throw DBusError("big-endian messages are not supported") }
        var r = DBusReader(bytes)
        r.offset = 4
        let bodyLength = Int(try r.uint32())
        let serial = try r.uint32()
        let fieldsLength = Int(try r.uint32())
        guard bodyLength <= 1 << 27, fieldsLength <= 1 << 26 else { throw DBusError("message too long") }
        let headerEnd = (16 + fieldsLength + 7) & ~7
        guard bytes.count >= headerEnd + bodyLength else { return nil }
        guard let kind = Kind(rawValue: bytes[1]) else { throw DBusError("unknown message type \(bytes[1])") }
        var m = DBusMessage(kind: kind, serial: serial)
        m.flags = bytes[2]
        r.offset = 12
        guard case .array(_, let fields) = try r.read("a(yv)") else { throw DBusError("bad header fields") }
        var signature = ""
        for f in fields {
            guard case .structure(let l) = f, l.count == 2, case .byte(let code) = l[0], case .variant(let v) = l[1] else {
                throw DBusError("bad header field")
            }
            switch (code, v) {
            case (1, .objectPath(let s)): m.path = s
            case (2, .string(let s)): m.interface = s
            case (3, .string(let s)): m.member = s
            case (4, .string(let s)): m.errorName = s
            case (5, .uint32(let u)): m.replySerial = u
            case (6, .string(let s)): m.destination = s
            case (7, .string(let s)): m.sender = s
            case (8, .signature(let s)): signature = s
            default: break  // unknown or unused fields (UNIX_FDS)
            }
        }
        r = DBusReader(Array(bytes[headerEnd..<headerEnd + bodyLength]))
        for t in try DBusReader.splitSignature(signature) { m.body.append(try r.read(t)) }
        return (m, headerEnd + bodyLength)
    }
}

public struct DBusError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Marshalling into a buffer that starts at a message's (or a body's)
/// first byte, which is what alignment is relative to.
struct DBusWriter {
    var bytes: [UInt8] = []

    mutating func pad(to n: Int) { while bytes.count % n != 0 { bytes.append(0) } }

    mutating func u32(_ v: UInt32) {
        pad(to: 4)
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ v: DBusValue) {
        switch v {
        case .byte(let b): bytes.append(b)
        case .bool(let b): u32(b ? 1 : 0)
        case .int32(let i): u32(UInt32(bitPattern: i))
        case .uint32(let u): u32(u)
        case .uint64(let u):
            pad(to: 8)
            withUnsafeBytes(of: u.littleEndian) { bytes.append(contentsOf: $0) }
        case .string(let s), .objectPath(let s):
            u32(UInt32(s.utf8.count)); bytes += Array(s.utf8); bytes.append(0)
        case .signature(let s):
            bytes.append(UInt8(s.utf8.count)); bytes += Array(s.utf8); bytes.append(0)
        case .array(let element, let items):
            u32(0)
            let lengthAt = bytes.count - 4
            pad(to: DBusReader.alignment(of: element))
            let start = bytes.count
            for i in items { write(i) }
            let n = UInt32(bytes.count - start).littleEndian
            withUnsafeBytes(of: n) { for (k, b) in $0.enumerated() { bytes[lengthAt + k] = b } }
        case .structure(let l):
            pad(to: 8)
            for i in l { write(i) }
        case .variant(let inner):
            write(.signature(inner.signature))
            write(inner)
        }
    }
}

/// Unmarshalling by signature.
struct DBusReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ b: [UInt8]) { bytes = b }

    static func alignment(of type: String) -> Int {
        switch type.first {
        case "y", "g", "v": return 1
        case "t", "x", "d", "(", "{": return 8
        default: return 4
        }
    }

    /// "sa(sv)u" -> ["s", "a(sv)", "u"].
    static func splitSignature(_ s: String) throws -> [String] {
        var out: [String] = []
        var chars = Array(s)[...]
        while !chars.isEmpty { out.append(try oneType(&chars)) }
        return out
    }

    static func oneType(_ c: inout ArraySlice<Character>) throws -> String {
        guard let first = c.popFirst() else { throw DBusError("signature ends early") }
        switch first {
        case "a": return "a" + (try oneType(&c))
        case "(", "{":
            let close: Character = first == "(" ? ")" : "}"
            var t = String(first)
            while c.first != close {
                guard !c.isEmpty else { throw DBusError("unclosed \(first) in signature") }
                t += try oneType(&c)
            }
            c.removeFirst()
            return t + String(close)
        case "y", "b", "n", "q", "i", "u", "x", "t", "d", "s", "o", "g", "v", "h": return String(first)
        default: throw DBusError("unknown type \(first) in signature")
        }
    }

    mutating func align(_ n: Int) throws {
        let next = (offset + n - 1) / n * n
        guard next <= bytes.count else { throw DBusError("message ends early") }
        offset = next
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, offset + n <= bytes.count else { throw DBusError("message ends early") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    mutating func uint32() throws -> UInt32 {
        try align(4)
        return try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func text(_ n: Int) throws -> String {
        let s = String(decoding: try take(n), as: UTF8.self)
        _ = try take(1)  // the NUL
        return s
    }

    mutating func read(_ type: String) throws -> DBusValue {
        switch type.first {
        case "y": return .byte(try take(1).first!)
        case "b": return .bool(try uint32() != 0)
        case "i": return .int32(Int32(bitPattern: try uint32()))
        case "u", "h": return .uint32(try uint32())
        case "n", "q":
            try align(2)
            let b = try take(2)
            return .uint32(UInt32(b[b.startIndex]) | UInt32(b[b.startIndex + 1]) << 8)
        case "t", "x", "d":
            try align(8)
            return .uint64(try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) })
        case "s": return .string(try text(Int(try uint32())))
        case "o": return .objectPath(try text(Int(try uint32())))
        case "g": return .signature(try text(Int(try take(1).first!)))
        case "v":
            guard case .signature(let sig) = try read("g") else { throw DBusError("bad variant") }
            let types = try DBusReader.splitSignature(sig)
            guard types.count == 1 else { throw DBusError("a variant holds one type, not \(sig)") }
            return .variant(try read(types[0]))
        case "a":
            let element = String(type.dropFirst())
            let length = Int(try uint32())
            guard length <= 1 << 26 else { throw DBusError("array too long") }
            try align(DBusReader.alignment(of: element))
            let end = offset + length
            guard end <= bytes.count else { throw DBusError("message ends early") }
            var items: [DBusValue] = []
            while offset < end { items.append(try read(element)) }
            return .array(element: element, items)
        case "(", "{":
            try align(8)
            var inner = Array(type.dropFirst().dropLast())[...]
            var items: [DBusValue] = []
            while !inner.isEmpty { items.append(try read(try DBusReader.oneType(&inner))) }
            return .structure(items)
        default:
            throw DBusError("cannot read type \(type)")
        }
    }
}

/// A connection to a bus (or to a peer such as systemd's private socket),
/// authenticated as our uid.
public final class DBusConnection {
    let fd: Int32
    var serial: UInt32 = 0
    var pending: [UInt8] = []

    /// Connects to the unix socket at `path` and authenticates (EXTERNAL).
    /// `hello`: a message bus wants org.freedesktop.DBus.Hello first; a
    /// peer does not.
    public init(path: String, hello: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DBusError("socket: \(errnoText(errno))") }
        do {
            // A bus that never answers must not hang create for ever.
            var tv = timeval(tv_sec: 25, tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let p = Array(path.utf8)
            guard p.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw DBusError("socket path too long") }
            withUnsafeMutableBytes(of: &addr.sun_path) { b in for (i, c) in p.enumerated() { b[i] = c } }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else { throw DBusError("connect \(path): \(errnoText(errno))") }
            try authenticate()
            if hello { try sayHello() }
        } catch {
            close(fd)
            throw error
        }
    }

    /// Over a socket connected already (a socketpair in the tests):
    /// authenticates, and says Hello when `hello`.
    init(connected: Int32, hello: Bool) throws {
        fd = connected
        do {
            try authenticate()
            if hello { try sayHello() }
        } catch {
            close(fd)
            throw error
        }
    }

    func sayHello() throws {
        _ = try call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                     interface: "org.freedesktop.DBus", member: "Hello", body: [])
    }

    deinit { close(fd) }

    /// The client's side of the authentication conversation: a NUL byte,
    /// AUTH EXTERNAL with our uid in hex-encoded decimal, OK, BEGIN.
    func authenticate() throws {
        let uid = String(getuid())
        let hex = uid.utf8.map { String($0, radix: 16) }.joined()
        try send(Array("\0AUTH EXTERNAL \(hex)\r\n".utf8))
        let line = try readLine()
        guard line.hasPrefix("OK ") else { throw DBusError("authentication refused: \(line.prefix(80))") }
        try send(Array("BEGIN\r\n".utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DBusError("send: \(errnoText(errno))") }
            done += n
        }
    }

    func fill() throws {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DBusError(n == 0 ? "the bus closed the connection" : "recv: \(errnoText(errno))") }
            pending += buf[0..<n]
            return
        }
    }

    func readLine() throws -> String {
        while true {
            if let i = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<i], as: UTF8.self)
                pending.removeFirst(i + 1)
                return line.hasSuffix("\r") ? String(line.dropLast()) : line
            }
            guard pending.count < 4096 else { throw DBusError("authentication line too long") }
            try fill()
        }
    }

    /// Calls a method and returns the reply's body; an error reply throws
    /// its name and message. Signals and other replies in between are skipped.
    public func call(destination: String, path: String, interface: String, member: String,
                     body: [DBusValue]) throws -> [DBusValue] {
        serial += 1
        let mine = serial
        try send(DBusMessage.call(serial: mine, destination: destination, path: path, interface: interface,
                                  member: member, body: body).encoded())
        while true {
            if let (m, n) = try DBusMessage.decode(pending) {
                pending.removeFirst(n)
                guard m.replySerial == mine, m.kind == .methodReturn || m.kind == .error else { continue }
                if m.kind == .error {
                    var text = m.errorName ?? "error"
                    if case .string(let s)? = m.body.first { text += ": " + s }
                    throw DBusError(text)
                }
                return m.body
            }
            try fill()
        }
    }
}
