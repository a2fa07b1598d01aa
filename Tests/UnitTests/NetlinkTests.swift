import XCTest
import Dispatch
import Glibc
@testable import Network

// rtnetlink messages byte for byte, reply parsing, address leases and port
// reservations on a temporary directory, and the generated texts. No root.

private func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined(separator: " ") }
private func bytes(_ s: String) -> [UInt8] { s.split(separator: " ").map { UInt8($0, radix: 16)! } }

private func tempDir() -> String {
    var t = Array("/tmp/minicontainer-nettest-XXXXXX".utf8CString)
    let p = t.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
private func rmrf(_ p: String) { _ = system("rm -rf '\(p)'") }

final class NetlinkTests: XCTestCase {
    func testGetLinkBytes() {
        let b = RTNL.getLink(name: "lo").bytes(seq: 1)
        XCTAssertEqual(hex(b), hex(bytes("""
        28 00 00 00 12 00 01 00 01 00 00 00 00 00 00 00 \
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
        07 00 03 00 6c 6f 00 00
        """)))
    }

    func testNewBridgeBytes() {
        let b = RTNL.newBridge(name: "br0").bytes(seq: 7)
        XCTAssertEqual(hex(b), hex(bytes("""
        38 00 00 00 10 00 05 06 07 00 00 00 00 00 00 00 \
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
        08 00 03 00 62 72 30 00 \
        10 00 12 00 0b 00 01 00 62 72 69 64 67 65 00 00
        """)))
    }

    func testNewVethBytes() {
        let b = RTNL.newVeth(name: "mcA", peer: "mpA").bytes(seq: 2)
        XCTAssertEqual(hex(b), hex(bytes("""
        58 00 00 00 10 00 05 06 02 00 00 00 00 00 00 00 \
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
        08 00 03 00 6d 63 41 00 \
        30 00 12 00 09 00 01 00 76 65 74 68 00 00 00 00 \
        20 00 02 00 1c 00 01 00 \
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
        08 00 03 00 6d 70 41 00
        """)))
    }

    func testMoveAndRenameBytes() {
        let b = RTNL.setLink(index: 7, nsPid: 1234, name: "eth0").bytes(seq: 2)
        XCTAssertEqual(hex(b), hex(bytes("""
        34 00 00 00 10 00 05 00 02 00 00 00 00 00 00 00 \
        00 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 \
        08 00 13 00 d2 04 00 00 \
        09 00 03 00 65 74 68 30 00 00 00 00
        """)))
    }

    func testSetUpAndMasterBytes() {
        let up = RTNL.setLink(index: 3, up: true).bytes(seq: 9)
        XCTAssertEqual(hex(up), hex(bytes("""
        20 00 00 00 10 00 05 00 09 00 00 00 00 00 00 00 \
        00 00 00 00 03 00 00 00 01 00 00 00 01 00 00 00
        """)))
        let m = RTNL.setLink(index: 3, master: 4).bytes(seq: 1)
        XCTAssertEqual(Array(m[32...]), bytes("08 00 0a 00 04 00 00 00"))
        XCTAssertEqual(Array(m[24..<32]), [UInt8](repeating: 0, count: 8), "no flag change")
    }

    func testAddAddressBytes() {
        let b = RTNL.addAddress(index: 5, IPv4("172.18.0.2")!, prefix: 16).bytes(seq: 3)
        XCTAssertEqual(hex(b), hex(bytes("""
        30 00 00 00 14 00 05 06 03 00 00 00 00 00 00 00 \
        02 10 00 00 05 00 00 00 \
        08 00 02 00 ac 12 00 02 \
        08 00 01 00 ac 12 00 02 \
        08 00 04 00 ac 12 ff ff
        """)))
    }

    func testDefaultRouteBytes() {
        let b = RTNL.addDefaultRoute(gateway: IPv4("172.18.0.1")!, index: 5).bytes(seq: 4)
        XCTAssertEqual(hex(b), hex(bytes("""
        2c 00 00 00 18 00 05 06 04 00 00 00 00 00 00 00 \
        02 00 00 00 fe 03 00 01 00 00 00 00 \
        08 00 05 00 ac 12 00 01 \
        08 00 04 00 05 00 00 00
        """)))
    }

    func testDeleteLinkBytes() {
        let b = RTNL.deleteLink(name: "mc0011aabb").bytes(seq: 5)
        XCTAssertEqual(Array(b[0..<8]), bytes("30 00 00 00 11 00 05 00"))
        XCTAssertEqual(Array(b[32...]), bytes("0f 00 03 00 6d 63 30 30 31 31 61 61 62 62 00 00"))
    }

    func testParseAckErrorAndLink() {
        // NLMSG_ERROR -EEXIST for seq 3, then an ack (0) for seq 4.
        let err = bytes("24 00 00 00 02 00 00 01 03 00 00 00 00 00 00 00 ef ff ff ff") + [UInt8](repeating: 0, count: 16)
        let ack = bytes("24 00 00 00 02 00 00 01 04 00 00 00 00 00 00 00 00 00 00 00") + [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(parseNetlink(err + ack), [.ack(errno: EEXIST), .ack(errno: 0)])
        XCTAssertEqual(parseNetlink(err + ack, seq: 4), [.ack(errno: 0)])
        // RTM_NEWLINK for index 9, up, named "eth0".
        let link = bytes("""
        2c 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00 \
        00 00 01 00 09 00 00 00 43 10 01 00 00 00 00 00 \
        09 00 03 00 65 74 68 30 00 00 00 00
        """)
        XCTAssertEqual(parseNetlink(link), [.link(index: 9, flags: 0x11043, name: "eth0")])
        XCTAssertEqual(parseNetlink(Array(link[0..<20])), [], "a truncated message is dropped")
    }

    func testAddresses() {
        XCTAssertEqual(IPv4("172.18.0.1")?.value, 0xac12_0001)
        XCTAssertNil(IPv4("172.018.0.1")); XCTAssertNil(IPv4("1.2.3")); XCTAssertNil(IPv4("256.1.1.1"))
        let s = Subnet("172.18.5.9/16")!
        XCTAssertEqual(s.description, "172.18.0.0/16")
        XCTAssertEqual(s.gateway.description, "172.18.0.1")
        XCTAssertEqual(s.broadcast.description, "172.18.255.255")
        XCTAssertTrue(s.contains(IPv4("172.18.200.3")!)); XCTAssertFalse(s.contains(IPv4("172.19.0.1")!))
    }

    func testPortMappings() throws {
        XCTAssertEqual(try PortMapping("8080:80/tcp"), PortMapping(hostPort: 8080, containerPort: 80))
        XCTAssertEqual(try PortMapping("127.0.0.1:5353:53/udp"),
                       PortMapping(hostIP: IPv4("127.0.0.1"), hostPort: 5353, containerPort: 53, proto: "udp"))
        XCTAssertEqual(try PortMapping.list("1:2/tcp,3:4/udp").count, 2)
        // Host port 0 asks run for a free one (HeldPorts); container port 0 is no port.
        XCTAssertEqual(try PortMapping("0:80/tcp").hostPort, 0)
        XCTAssertThrowsError(try PortMapping("80:0/tcp"))
        XCTAssertThrowsError(try PortMapping("65536:80/tcp"))
        XCTAssertThrowsError(try PortMapping("80:80/sctp"))
        XCTAssertEqual(Firewall.nftElement(try PortMapping("18080:8080/tcp"), address: IPv4("172.18.0.2")!, add: true),
                       "add element ip minicontainer ports { tcp . 18080 : 172.18.0.2 . 8080 }\n")
        XCTAssertEqual(Firewall.nftElement(try PortMapping("127.0.0.1:18080:8080/udp"), address: IPv4("172.18.0.2")!, add: false),
                       "delete element ip minicontainer hostports { 127.0.0.1 . udp . 18080 }\n")
        let script = Firewall.nftInstallScript(subnet: Network.defaultSubnet, bridge: "minicontainer0")
        XCTAssertTrue(script.contains("add rule ip minicontainer postrouting ip saddr 172.18.0.0/16 oifname != \"minicontainer0\" masquerade\n"))
        XCTAssertTrue(script.contains("oifname \"minicontainer0\" ip saddr 127.0.0.0/8 masquerade"))
    }

    func testVethNames() {
        let n = Network.hostVethName("c1")
        XCTAssertTrue(n.hasPrefix("mc") && n.count == 10, n)
        XCTAssertEqual(n, Network.hostVethName("c1"))
        XCTAssertNotEqual(n, Network.hostVethName("c2"))
        XCTAssertLessThanOrEqual(Network.hostVethName(String(repeating: "x", count: 300)).count, 15)
    }

    func testLeasesSkipGatewayAndReuse() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Leases(dir: d, subnet: Subnet("10.9.0.0/29")!)
        let a = try l.locked { try l.allocate(id: "a") }
        let b = try l.locked { try l.allocate(id: "b") }
        XCTAssertEqual([a, b].map { $0.description }, ["10.9.0.2", "10.9.0.3"])
        XCTAssertEqual(try FS_read(d + "/leases/10.9.0.2"), "a\n")
        XCTAssertEqual(l.release(id: "a"), [a])
        XCTAssertEqual(try l.locked { try l.allocate(id: "c") }, a, "a released address is handed out again")
        XCTAssertEqual(l.owned(by: "c"), [a])
    }

    func testFullSubnetIsAClearError() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Leases(dir: d, subnet: Subnet("10.9.0.0/30")!)  // .1 gateway, .2 the only host, .3 broadcast
        XCTAssertEqual(try l.locked { try l.allocate(id: "a") }.description, "10.9.0.2")
        XCTAssertThrowsError(try l.locked { try l.allocate(id: "b") }) { e in
            XCTAssertEqual("\(e)", "no free address in 10.9.0.0/30: all 1 are leased")
        }
    }

    func testConcurrentAllocationsNeverCollide() throws {
        let d = tempDir(); defer { rmrf(d) }
        let n = 40
        var got = [String](repeating: "", count: n)
        let q = DispatchQueue(label: "results")
        DispatchQueue.concurrentPerform(iterations: n) { i in
            // Each its own Leases value and lock fd, as separate processes would.
            let l = Leases(dir: d, subnet: Network.defaultSubnet)
            let a = (try? l.locked { try l.allocate(id: "c\(i)") })?.description ?? "error"
            q.sync { got[i] = a }
        }
        XCTAssertFalse(got.contains("error"))
        XCTAssertEqual(Set(got).count, n)
        XCTAssertFalse(got.contains("172.18.0.1"))
    }

    func testPortConflictsAndReclaim() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Network.leases(d)
        let a = try l.locked { try l.allocate(id: "a") }
        try l.locked { try l.reserve([try PortMapping("18080:80/tcp")], id: "a", address: a) }
        XCTAssertThrowsError(try l.reserve([try PortMapping("127.0.0.1:18080:81/tcp")], id: "b", address: a)) { e in
            XCTAssertEqual("\(e)", "host port 127.0.0.1:18080/tcp is already published by container a")
        }
        XCTAssertNoThrow(try l.reserve([try PortMapping("18080:80/udp")], id: "b", address: a), "another protocol is free")
        XCTAssertEqual(try Network.reclaim(alive: ["b"], dir: d), ["a"])
        XCTAssertTrue(l.owned(by: "a").isEmpty)
        XCTAssertEqual(l.ports().map { $0.id }, ["b"])
        XCTAssertNoThrow(try Network.tearDown(id: "b", dir: d))
        XCTAssertTrue(l.ports().isEmpty)
    }

    func testTexts() {
        XCTAssertEqual(Network.hostsFile(hostname: "web", address: IPv4("172.18.0.2")).split(separator: "\n").last, "172.18.0.2\tweb")
        XCTAssertTrue(Network.hostsFile(hostname: "web", address: nil).hasPrefix("127.0.0.1\tlocalhost\n"))
        XCTAssertEqual(Network.hostnameFile("web"), "web\n")
        XCTAssertEqual(Network.resolvConf(host: "# x\nnameserver 127.0.0.53\noptions edns0\nsearch lan\n"),
                       "options edns0\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")
        XCTAssertEqual(Network.resolvConf(host: "nameserver 10.0.0.2\nnameserver ::1\n"), "nameserver 10.0.0.2\n")
    }
}

private func FS_read(_ p: String) throws -> String {
    guard let f = fopen(p, "r") else { throw NSErrorLike() }
    defer { fclose(f) }
    var out = ""
    var c = fgetc(f)
    while c != EOF { out.append(Character(UnicodeScalar(UInt8(c)))); c = fgetc(f) }
    return out
}
private struct NSErrorLike: Error {}
