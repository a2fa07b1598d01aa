import XCTest
import Glibc
import Cgroups
import Network
import Spec
import Sys

// linux.netDevices' netlink messages and address parsing (byte for byte,
// no root), and linux.intelRdt's resctrl groups over a fake tree.

final class NetDevicesMessageTests: XCTestCase {
    func testMoveIsAMoveAlone() {
        // ifinfomsg for index 7, then IFLA_NET_NS_FD = 9; no IFLA_IFNAME
        // (the rename is a request of its own, in the container).
        let b = RTNL.moveLink(index: 7, nsFd: 9, name: nil).bytes(seq: 1)
        XCTAssertEqual(b.count, 16 + 16 + 8)
        XCTAssertEqual(Array(b[36..<40]), [9, 0, 0, 0])
        XCTAssertEqual(Array(b[32..<36]), [8, 0, UInt8(NL.iflaNetNsFd), 0])
    }

    func testAddressesParsedAndKept() {
        // RTM_NEWADDR: ifaddrmsg (inet, /24, flags 0x80 permanent, scope 0,
        // index 5), IFA_ADDRESS and IFA_LOCAL 10.1.2.3, IFA_FLAGS 0x80.
        func msg(flags: UInt32, scope: UInt8) -> [UInt8] {
            var m: [UInt8] = [0, 0, 0, 0, UInt8(NL.newAddr), 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                              2, 24, UInt8(flags & 0xff), scope, 5, 0, 0, 0]
            m += [8, 0, 1, 0, 10, 1, 2, 3]
            m += [8, 0, 2, 0, 10, 1, 2, 3]
            m += [8, 0, 8, 0] + (0..<4).map { UInt8((flags >> (8 * UInt32($0))) & 0xff) }
            m[0] = UInt8(m.count)
            return m
        }
        let a = parseAddresses([msg(flags: 0x80, scope: 0), msg(flags: 0, scope: 0), msg(flags: 0x80, scope: 253)])
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a[0].index, 5)
        XCTAssertEqual(a[0].prefix, 24)
        XCTAssertEqual(a[0].attributes.map { $0.type }, [1, 2])
        XCTAssertEqual(a.map { $0.kept }, [true, false, false])  // permanent and global only
        // Added again with its address attributes, not its flags.
        let add = RTNL.addAddress(a[0], index: 11).bytes(seq: 1)
        XCTAssertEqual(Array(add[16..<24]), [2, 24, 0, 0, 11, 0, 0, 0])
        XCTAssertEqual(Array(add[24...]), [8, 0, 1, 0, 10, 1, 2, 3, 8, 0, 2, 0, 10, 1, 2, 3])
    }
}

final class ResctrlTests: XCTestCase {
    var root = ""

    override func setUp() {
        var template = Array("/tmp/minicontainer-rdttest-XXXXXX".utf8CString)
        root = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
    }

    override func tearDown() {
        _ = try? FS.removeTree(root)
    }

    func testMountPointAndSupport() {
        let info = Array("22 1 0:20 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n30 22 0:40 / /mnt/rdt rw - resctrl resctrl rw\n".utf8)
        XCTAssertEqual(Resctrl.mountPoint(mountinfo: info), "/mnt/rdt")
        XCTAssertNil(Resctrl.mountPoint(mountinfo: Array("22 1 0:20 / /sys rw - sysfs sysfs rw\n".utf8)))
        XCTAssertTrue(Resctrl.kernelSupports(filesystems: "nodev\tsysfs\nnodev\tresctrl\n"))
        XCTAssertFalse(Resctrl.kernelSupports(filesystems: "nodev\tsysfs\n"))
        XCTAssertNil(Resctrl.refusal(nil, mountPoint: nil))
        XCTAssertNil(Resctrl.refusal(IntelRdt(), mountPoint: "/sys/fs/resctrl"))
        XCTAssertTrue(Resctrl.refusal(IntelRdt(), mountPoint: nil)!.hasPrefix("linux.intelRdt: resctrl is not mounted"))
    }

    func testSchemataOrder() {
        XCTAssertNil(Resctrl.schemataText(IntelRdt(closID: "x")))
        XCTAssertEqual(Resctrl.schemataText(IntelRdt(schemata: ["L2:0=ff"], l3CacheSchema: "L3:0=f", memBwSchema: "MB:0=20")),
                       "L3:0=f\nMB:0=20\nL2:0=ff\n")
    }

    func testExistingGroupComparedAndJoined() throws {
        mkdir(root + "/web", 0o755)
        mkdir(root + "/web/mon_groups", 0o755)
        try FS.writeAtomically(root + "/web/schemata", "    L3:0=00f;1=7ff\n    MB:0= 20;1=100\n")
        try FS.writeAtomically(root + "/web/tasks", "")
        // A schema the group does not have is an error; nothing is made.
        XCTAssertThrowsError(try Resctrl.prepare(IntelRdt(closID: "web", l3CacheSchema: "L3:0=fff;1=7ff"), id: "c1", root: root))
        XCTAssertFalse(FS.exists(root + "/web/mon_groups/c1"))
        var g = try Resctrl.prepare(IntelRdt(closID: "web", l3CacheSchema: "L3:0=00f;1=7ff", enableMonitoring: true),
                                    id: "c1", root: root)
        XCTAssertEqual(g, Resctrl.Group(path: root + "/web", madeGroup: nil, monitor: root + "/web/mon_groups/c1"))
        XCTAssertEqual(Resctrl.Group(record: g.record), g)
        g.monitor = nil
        try Resctrl.place(42, in: g)
        XCTAssertEqual(try FS.readString(root + "/web/tasks"), "42\n")
        Resctrl.remove(Resctrl.Group(path: root + "/web", monitor: root + "/web/mon_groups/c1"))
        XCTAssertFalse(FS.exists(root + "/web/mon_groups/c1"))
        XCTAssertTrue(FS.exists(root + "/web"), "a closID group is never removed")
    }

    func testMissingClosIDGroupWithoutSchemataRefused() {
        XCTAssertThrowsError(try Resctrl.prepare(IntelRdt(closID: "nope"), id: "c1", root: root)) { e in
            XCTAssertTrue("\(e)".contains("linux.intelRdt.closID: there is no resctrl group \"nope\""), "\(e)")
        }
    }

    func testOwnGroupMadeAndRemovedOnFailure() {
        // No closID: the group is the container id's. A fake tree has no
        // schemata file in a new directory, so the write fails: the
        // directory made goes again.
        XCTAssertThrowsError(try Resctrl.prepare(IntelRdt(l3CacheSchema: "L3:0=f"), id: "c2", root: root))
        XCTAssertFalse(FS.exists(root + "/c2"))
        // Without schemata nothing is written: the group is made, and is ours to remove.
        let g = try? Resctrl.prepare(IntelRdt(), id: "c2", root: root)
        XCTAssertEqual(g?.madeGroup, root + "/c2")
        Resctrl.remove(g!)
        XCTAssertFalse(FS.exists(root + "/c2"))
        // A group of that name already there is not taken over.
        mkdir(root + "/c3", 0o755)
        XCTAssertThrowsError(try Resctrl.prepare(IntelRdt(), id: "c3", root: root))
        XCTAssertTrue(FS.exists(root + "/c3"))
    }
}
