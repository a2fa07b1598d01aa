import Glibc
import XCTest
@testable import Cgroups
import Spec
import Sys

/// The cgroup v2 device program, instruction by instruction and by what it
/// decides (DeviceFilter.evaluate runs it as the kernel would).
final class DeviceFilterTests: XCTestCase {
    typealias I = BPFInstruction

    func testInstructionsOfOneRule() throws {
        let p = try DeviceFilter.program([DeviceCgroup(allow: true, type: "c", major: 1, minor: 3, access: "rw")])
        XCTAssertEqual(p, [
            // access_type, split into type (r2) and access (r3); major r4, minor r5
            I(0x61, dst: 2, src: 1, off: 0), I(0xbf, dst: 3, src: 2), I(0x57, dst: 2, imm: 0xffff),
            I(0x77, dst: 3, imm: 16), I(0x61, dst: 4, src: 1, off: 4), I(0x61, dst: 5, src: 1, off: 8),
            // the rule: char, no mknod asked, 1, 3 -> allow
            I(0x55, dst: 2, off: 7, imm: 2),
            I(0xbf, dst: 6, src: 3), I(0x57, dst: 6, imm: 1), I(0x55, dst: 6, off: 4, imm: 0),
            I(0x55, dst: 4, off: 3, imm: 1), I(0x55, dst: 5, off: 2, imm: 3),
            I(0xb7, dst: 0, imm: 1), I(0x95),
            // nothing matched: deny
            I(0xb7, dst: 0, imm: 0), I(0x95),
        ])
        XCTAssertEqual(I(0x55, dst: 2, off: 7, imm: 2).bytes, [0x55, 0x02, 7, 0, 2, 0, 0, 0])
        XCTAssertEqual(I(0x61, dst: 4, src: 1, off: 4).bytes, [0x61, 0x14, 4, 0, 0, 0, 0, 0])
        XCTAssertEqual(I(0x57, dst: 2, imm: -1).bytes, [0x57, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff])
    }

    func testWhatTheDefaultRulesAllow() throws {
        // As run mode writes them: deny everything, then the usual devices.
        let rules = [DeviceCgroup(allow: false, access: "rwm"),
                     DeviceCgroup(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),   // null
                     DeviceCgroup(allow: true, type: "c", major: 1, minor: 9, access: "rw"),    // urandom
                     DeviceCgroup(allow: true, type: "c", major: 136, minor: -1, access: "rwm")] // pts
        let p = try DeviceFilter.program(rules)
        func decide(_ t: UInt32, _ a: UInt32, _ ma: UInt32, _ mi: UInt32) -> Int64? {
            DeviceFilter.evaluate(p, type: t, access: a, major: ma, minor: mi)
        }
        let (block, char): (UInt32, UInt32) = (1, 2)
        let (mknod, read, write): (UInt32, UInt32, UInt32) = (1, 2, 4)
        XCTAssertEqual(decide(char, read | write, 1, 3), 1)
        XCTAssertEqual(decide(char, mknod, 1, 3), 1)
        XCTAssertEqual(decide(char, read, 1, 9), 1)
        XCTAssertEqual(decide(char, mknod, 1, 9), 0, "urandom: no mknod")
        XCTAssertEqual(decide(char, read | mknod, 1, 9), 0, "part of the access outside the rule")
        XCTAssertEqual(decide(char, write, 136, 42), 1, "any minor")
        XCTAssertEqual(decide(block, read, 1, 3), 0, "a block device 1:3 is not /dev/null")
        XCTAssertEqual(decide(block, read, 8, 0), 0, "the host's disk")
        XCTAssertEqual(decide(char, read, 10, 200), 0, "/dev/net/tun")
    }

    func testALaterRuleOverridesAnEarlierOneAndNoRulesDeny() throws {
        let allowAll = DeviceCgroup(allow: true)
        let denyDisk = DeviceCgroup(allow: false, type: "b", major: 8, access: "w")
        let p = try DeviceFilter.program([allowAll, denyDisk])
        XCTAssertEqual(DeviceFilter.evaluate(p, type: 1, access: 4, major: 8, minor: 1), 0)
        XCTAssertEqual(DeviceFilter.evaluate(p, type: 1, access: 2, major: 8, minor: 1), 1, "reading is still allowed")
        XCTAssertEqual(DeviceFilter.evaluate(p, type: 2, access: 4, major: 8, minor: 1), 1, "a char device 8:1")
        let q = try DeviceFilter.program([denyDisk, allowAll])
        XCTAssertEqual(DeviceFilter.evaluate(q, type: 1, access: 4, major: 8, minor: 1), 1)
        // Tested first, the allow-all rule ends the program: nothing after it could run.
        XCTAssertEqual(q.count, 6 + 2)
        XCTAssertEqual(DeviceFilter.evaluate(try DeviceFilter.program([]), type: 2, access: 2, major: 1, minor: 3), 0)
    }

    func testBadRulesAreOneLineEach() {
        func message(_ r: DeviceCgroup) -> String {
            do { _ = try DeviceFilter.program([DeviceCgroup(allow: false), r]); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(DeviceCgroup(allow: true, type: "p")), "linux.resources.devices[1].type: \"p\" is not a, b or c")
        XCTAssertEqual(message(DeviceCgroup(allow: true, access: "rx")), "linux.resources.devices[1].access: \"rx\" is not made of r, w and m")
        XCTAssertEqual(message(DeviceCgroup(allow: true, major: 1 << 40)), "linux.resources.devices[1].major: 1099511627776 is out of range")
    }

    /// For real: the program attached to a cgroup2 cgroup of the host's
    /// unified hierarchy (here /sys/fs/cgroup/unified; no controller needed),
    /// a process in it may open /dev/zero and not /dev/null. As root.
    func testAttachedProgramDecidesForRealInTheUnifiedHierarchy() throws {
        let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].first { FS.exists($0 + "/cgroup.procs") && FS.exists($0 + "/cgroup.controllers") }
        try XCTSkipUnless(getuid() == 0 && unified != nil, "needs root and a cgroup2 hierarchy")
        let cg = unified! + "/mc-devtest-\(getpid())"
        XCTAssertEqual(mkdir(cg, 0o755), 0, "mkdir \(cg)")
        defer { _ = rmdir(cg) }
        try DeviceFilter.attach(try DeviceFilter.program([DeviceCgroup(allow: false),
                                                          DeviceCgroup(allow: true, type: "c", major: 1, minor: 5, access: "rwm")]),
                                toCgroup: cg)
        var go: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&go), 0)
        let child = fork()
        if child == 0 {
            var b: UInt8 = 0
            _ = read(go[0], &b, 1)
            let null = open("/dev/null", O_RDONLY), nullErr = errno
            let zero = open("/dev/zero", O_RDONLY)
            _exit((null < 0 && nullErr == EPERM ? 1 : 0) | (zero >= 0 ? 2 : 0))
        }
        close(go[0])
        let procs = open(cg + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(procs, 0)
        let pidText = Array("\(child)".utf8)
        XCTAssertEqual(write(procs, pidText, pidText.count), pidText.count)
        close(procs)
        XCTAssertEqual(write(go[1], "g", 1), 1)
        close(go[1])
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertEqual(Proc.exitCode(fromWaitStatus: status), 3, "bit 1: /dev/null refused with EPERM, bit 2: /dev/zero opened")
    }
}
