import Glibc
import XCTest
@testable import Cgroups
@testable import Sys

/// The D-Bus wire format and client (Sys/DBus.swift) and the scope request
/// (Cgroups/SystemdScope.swift). Against a real peer: test_features.py's fake
/// systemd, which parses our messages with jeepney.
final class DBusTests: XCTestCase {
    /// The D-Bus specification's rules, byte by byte: a Hello call.
    func testHelloCallBytes() {
        let m = DBusMessage.call(serial: 1, destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                 interface: "org.freedesktop.DBus", member: "Hello", body: [])
        let b = m.encoded()
        XCTAssertEqual(Array(b[0..<4]), [UInt8(ascii: "l"), 1, 0, 1])
        XCTAssertEqual(Array(b[4..<8]), [0, 0, 0, 0], "no body")
        XCTAssertEqual(Array(b[8..<12]), [1, 0, 0, 0], "serial")
        // Fields: PATH (o) of 21 bytes, INTERFACE (s), MEMBER (s), DESTINATION (s), each a struct on 8.
        let fieldsLength = Int(b[12]) | Int(b[13]) << 8
        XCTAssertEqual(b.count, (16 + fieldsLength + 7) & ~7)
        XCTAssertEqual(Array(b[16..<20]), [1, 1, UInt8(ascii: "o"), 0], "field 1, signature \"o\"")
        XCTAssertEqual(Array(b[20..<24]), [21, 0, 0, 0], "length of /org/freedesktop/DBus")
        XCTAssertEqual(b.count % 8, 0)
    }

    func testRoundTripOfEveryType() throws {
        var m = DBusMessage.call(serial: 7, destination: "d.e", path: "/p", interface: "i.f", member: "M", body: [
            .byte(3), .bool(true), .int32(-2), .uint32(4_000_000_000), .uint64(1 << 40), .string("héllo"),
            .objectPath("/a/b"), .signature("a(sv)"),
            .array(element: "(sv)", [.structure([.string("k"), .variant(.uint32(9))]),
                                     .structure([.string("l"), .variant(.array(element: "u", [.uint32(1), .uint32(2)]))])]),
            .array(element: "(sa(sv))", []), .array(element: "t", [.uint64(5)]),
        ])
        m.flags = 0
        let bytes = m.encoded()
        let (back, n) = try XCTUnwrap(DBusMessage.decode(bytes))
        XCTAssertEqual(n, bytes.count)
        XCTAssertEqual(back, m)
        XCTAssertNil(try DBusMessage.decode(Array(bytes.dropLast())), "a partial message waits for more")
    }

    func testHostileMessagesThrow() {
        var bytes = DBusMessage.call(serial: 1, destination: "d", path: "/", interface: "i", member: "m",
                                     body: [.string("x")]).encoded()
        bytes[0] = UInt8(ascii: "B")
        XCTAssertThrowsError(try DBusMessage.decode(bytes))
        // A string length that runs past the body.
        var m = DBusMessage(kind: .methodReturn, serial: 2)
        m.replySerial = 1
        m.body = [.string("abc")]
        var b = m.encoded()
        let bodyAt = b.count - 8
        b[bodyAt] = 200
        XCTAssertThrowsError(try DBusMessage.decode(b))
        XCTAssertThrowsError(try DBusReader.splitSignature("a(su"))
        XCTAssertThrowsError(try DBusReader.splitSignature("z"))
        // A huge declared body never allocates: it is refused.
        var huge = m.encoded()
        huge[4] = 0xff; huge[5] = 0xff; huge[6] = 0xff; huge[7] = 0x7f
        XCTAssertThrowsError(try DBusMessage.decode(huge))
    }

    /// The client over a socketpair whose other end holds the peer's
    /// answers already: authentication, a call, a signal skipped, the reply.
    func testCallOverASocketpair() throws {
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv), 0)
        defer { close(sv[1]) }
        var signal = DBusMessage(kind: .signal, serial: 1)
        signal.path = "/x"; signal.interface = "i.j"; signal.member = "Sig"
        var reply = DBusMessage(kind: .methodReturn, serial: 2)
        reply.replySerial = 1
        reply.body = [.objectPath("/org/freedesktop/systemd1/job/7")]
        let answers = Array("OK 00112233445566778899aabbccddeeff\r\n".utf8) + signal.encoded() + reply.encoded()
        XCTAssertEqual(answers.withUnsafeBytes { write(sv[1], $0.baseAddress, $0.count) }, answers.count)
        let c = try DBusConnection(connected: sv[0], hello: false)
        try SystemdScope.start(unit: "mc-x.scope", slice: "system.slice", pid: 42, description: "d", connection: c)

        var sent = [UInt8](repeating: 0, count: 4096)
        let n = sent.withUnsafeMutableBytes { read(sv[1], $0.baseAddress, $0.count) }
        sent = Array(sent[0..<n])
        let auth = Array("\0AUTH EXTERNAL \(String(getuid()).utf8.map { String($0, radix: 16) }.joined())\r\nBEGIN\r\n".utf8)
        XCTAssertEqual(Array(sent[0..<auth.count]), auth)
        let (call, _) = try XCTUnwrap(DBusMessage.decode(Array(sent[auth.count...])))
        XCTAssertEqual(call.member, "StartTransientUnit")
        XCTAssertEqual(call.body, SystemdScope.startArguments(unit: "mc-x.scope", slice: "system.slice", pid: 42, description: "d"))
        XCTAssertEqual(call.body.map(\.signature).joined(), "ssa(sv)a(sa(sv))")
    }

    func testAnErrorReplyThrowsItsNameAndMessage() throws {
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv), 0)
        defer { close(sv[1]) }
        var err = DBusMessage(kind: .error, serial: 5)
        err.replySerial = 1
        err.errorName = "org.freedesktop.DBus.Error.AccessDenied"
        err.body = [.string("no")]
        let answers = Array("OK 00\r\n".utf8) + err.encoded()
        _ = answers.withUnsafeBytes { write(sv[1], $0.baseAddress, $0.count) }
        let c = try DBusConnection(connected: sv[0], hello: false)
        XCTAssertThrowsError(try SystemdScope.start(unit: "u.scope", slice: "s.slice", pid: 1, description: "", connection: c)) {
            XCTAssertEqual("\($0)", "org.freedesktop.DBus.Error.AccessDenied: no")
        }
    }

    func testRefusedAuthentication() {
        var sv: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv), 0)
        defer { close(sv[1]) }
        let answers = Array("REJECTED EXTERNAL\r\n".utf8)
        _ = answers.withUnsafeBytes { write(sv[1], $0.baseAddress, $0.count) }
        XCTAssertThrowsError(try DBusConnection(connected: sv[0], hello: false))
    }

    func testScopeUnitNames() {
        XCTAssertEqual(SystemdScope.unit(cgroupsPath: "system.slice:docker:abc")?.unit, "docker-abc.scope")
        XCTAssertEqual(SystemdScope.unit(cgroupsPath: ":crio:abc")?.slice, "system.slice")
        XCTAssertEqual(SystemdScope.unit(cgroupsPath: "a.slice::abc")?.unit, "abc.scope")
        XCTAssertNil(SystemdScope.unit(cgroupsPath: "/a/b"))
        XCTAssertNil(SystemdScope.unit(cgroupsPath: "a.slice:p:b.slice"), "a slice is not a scope")
        XCTAssertNil(SystemdScope.unit(cgroupsPath: "a.slice:p:x/../../y"), "no path in a unit name")
        XCTAssertNil(SystemdScope.unit(cgroupsPath: "a.slice:p:x\ny"))
        XCTAssertNil(SystemdScope.unit(cgroupsPath: "a.slice:p:x,y"))
    }
}
