import CShim
import Glibc
import XCTest
@testable import Cgroups
import Spec
import Sys

// The device program as the container gets it: what containerProgram
// decides for the v1 path's rules (pure), how the managers install, replace
// and detach it (fake trees, a recording DevicePrograms), and, as root, the
// kernel's programs in a cgroup of the host's unified hierarchy.

private let denyAll = DeviceCgroup(allow: false, access: "rwm")
private let allowTun = DeviceCgroup(allow: true, type: "c", major: 10, minor: 200, access: "rwm")
private let mknodBit: UInt32 = 1, readBit: UInt32 = 2, writeBit: UInt32 = 4

private func decide(_ p: [BPFInstruction], _ type: UInt32, _ major: UInt32, _ minor: UInt32, _ access: UInt32) -> Int64? {
    DeviceFilter.evaluate(p, type: type, access: access, major: major, minor: minor)
}

/// glibc's encoding of a device number, for majors below 4096 and minors below 256.
private func devNumber(_ major: UInt32, _ minor: UInt32) -> dev_t { dev_t(major << 8 | minor) }

/// Records what a manager asks of the kernel's device programs.
final class RecordingDevicePrograms: DevicePrograms {
    var installed: [String: [BPFInstruction]] = [:]
    var log: [String] = []
    var refuse: Int32?

    func install(_ program: [BPFInstruction], in cgroup: String) throws {
        if let e = refuse { throw SysError("attach the device program to \(cgroup)", errno: e) }
        log.append("install \(cgroup)")
        installed[cgroup] = program
    }

    func attached(to cgroup: String) throws -> [UInt32] { installed[cgroup] == nil ? [] : [1] }

    func detachAll(from cgroup: String) throws -> Int {
        log.append("detach \(cgroup)" + (FS.isDirectory(cgroup) ? "" : " (gone)"))
        return installed.removeValue(forKey: cgroup) == nil ? 0 : 1
    }
}

final class DeviceFilterContainerProgramTests: XCTestCase {
    /// The spec's deny-all, then the defaults: /dev/null and friends, mknod
    /// of any char or block device, nothing else.
    func testDenyAllThenTheDefaults() throws {
        let p = try DeviceFilter.containerProgram([denyAll])
        XCTAssertEqual(decide(p, 2, 1, 3, readBit | writeBit), 1, "/dev/null")
        XCTAssertEqual(decide(p, 2, 1, 5, readBit), 1, "/dev/zero")
        XCTAssertEqual(decide(p, 2, 136, 4, readBit | writeBit), 1, "a pty slave")
        XCTAssertEqual(decide(p, 2, 10, 200, readBit), 0, "/dev/net/tun")
        XCTAssertEqual(decide(p, 1, 8, 0, readBit), 0, "a disk")
        XCTAssertEqual(decide(p, 2, 10, 200, mknodBit), 1, "mknod of any char device")
        XCTAssertEqual(decide(p, 1, 8, 0, mknodBit), 1, "mknod of any block device")
        XCTAssertEqual(decide(p, 2, 1, 3, mknodBit | readBit), 1)
        XCTAssertEqual(decide(p, 2, 10, 200, mknodBit | readBit), 0, "mknod allowed, read not")
    }

    /// A new v1 cgroup starts as its parent, allowing all: so does the
    /// program when the spec's rules do not deny all first.
    func testWithoutADenyAllEverythingElseIsAllowedAsInV1() throws {
        let p = try DeviceFilter.containerProgram([DeviceCgroup(allow: false, type: "c", major: 10, minor: 200, access: "rw")])
        XCTAssertEqual(decide(p, 2, 10, 200, readBit), 0, "denied by the spec")
        XCTAssertEqual(decide(p, 2, 10, 200, mknodBit), 1, "mknod by the defaults")
        XCTAssertEqual(decide(p, 1, 8, 0, readBit | writeBit), 1, "the parent's allow-all")
        // A deny the defaults allow again is allowed, as in v1.
        let q = try DeviceFilter.containerProgram([DeviceCgroup(allow: false, type: "c", major: 1, minor: 3, access: "rwm")])
        XCTAssertEqual(decide(q, 2, 1, 3, readBit | writeBit), 1)
    }

    /// v1 reads a rule of type a as "allow all" or "deny all", whatever its
    /// access: "a *:* r" into devices.deny denies writes too.
    func testTypeAIsAResetWhateverItsAccess() throws {
        let p = try DeviceFilter.containerProgram([DeviceCgroup(allow: false, access: "r"), allowTun])
        XCTAssertEqual(decide(p, 1, 8, 0, writeBit), 0)
        XCTAssertEqual(decide(p, 2, 10, 200, readBit | writeBit), 1)
        let q = try DeviceFilter.containerProgram([denyAll, DeviceCgroup(allow: true, major: 7, access: "m")])
        XCTAssertEqual(decide(q, 1, 8, 0, readBit | writeBit), 1, "allow a: everything, as v1's \"a *:* m\" into devices.allow")
    }

    /// Errors name the spec's own index, not the program's.
    func testBadRuleNamesTheSpecIndex() {
        XCTAssertThrowsError(try DeviceFilter.containerProgram([denyAll, DeviceCgroup(allow: true, type: "c", major: 1 << 40)])) {
            XCTAssertEqual("\($0)", "linux.resources.devices[1].major: 1099511627776 is out of range")
            XCTAssertEqual(($0 as? Failure)?.kind, .invalid)
        }
    }
}

final class DeviceFilterManagerTests: XCTestCase {
    var dirs: [String] = []

    override func tearDown() {
        for d in dirs.reversed() { _ = try? FS.removeTree(d) }
        dirs = []
    }

    func temp() -> String {
        var template = Array("/tmp/minicontainer-devtest-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil)
        let d = String(cString: p!)
        dirs.append(d)
        return d
    }

    func fakeV2() -> String {
        let root = temp() + "/cgroup"
        XCTAssertNoThrow(try FS.makeDirectories(root))
        XCTAssertNoThrow(try FS.writeAtomically(root + "/cgroup.controllers", "cpu memory pids"))
        return root
    }

    func resources(_ devices: [DeviceCgroup]?, pids: Int64? = nil) -> Resources {
        var r = Resources()
        r.devices = devices
        if let p = pids { r.pids = Pids(limit: p) }
        return r
    }

    /// create's deferred programs: the manager's install reaches the kernel
    /// only at flush (after the clone), a destroy before it drops what is
    /// pending, and a refused attach stays pending and is the flush's error.
    func testDeferredProgramsAttachAtFlush() throws {
        let root = fakeV2()
        let rec = RecordingDevicePrograms()
        let deferred = DeferredDevicePrograms(rec)
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/minicontainer/c1", id: "c1", devicePrograms: deferred)
        let path = root + "/minicontainer/c1"
        try m.create()
        try m.apply(resources: resources([denyAll]))
        XCTAssertEqual(rec.log, [], "nothing attached before the flush")
        try deferred.flush()
        XCTAssertEqual(rec.log, ["install \(path)"])
        XCTAssertEqual(rec.installed[path], try DeviceFilter.containerProgram([denyAll]))
        try deferred.flush()
        XCTAssertEqual(rec.log, ["install \(path)"], "a second flush attaches nothing again")

        try m.apply(resources: resources([denyAll, allowTun]))
        rec.refuse = EPERM
        XCTAssertThrowsError(try deferred.flush()) { XCTAssertEqual(($0 as? SysError)?.errno, EPERM) }
        rec.refuse = nil
        try m.destroy()
        try deferred.flush()
        XCTAssertEqual(rec.log, ["install \(path)", "detach \(path)"], "destroy dropped the pending program")
    }

    /// Pure v2: create installs the container's program (the spec's rules
    /// and the defaults), update replaces it, destroy detaches it before the
    /// rmdir; no rules, no program.
    func testV2InstallsReplacesAndDetaches() throws {
        let root = fakeV2()
        let rec = RecordingDevicePrograms()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/minicontainer/c1", id: "c1", devicePrograms: rec)
        let path = root + "/minicontainer/c1"
        try m.create()
        try FS.writeAtomically(path + "/pids.max", "max")
        try m.apply(resources: resources(nil, pids: 10))
        XCTAssertEqual(try FS.readString(path + "/pids.max"), "10")
        XCTAssertEqual(rec.log, [], "no device rules: no program, as the v1 path writes none")
        try m.apply(resources: resources([denyAll]))
        XCTAssertEqual(rec.log, ["install \(path)"])
        XCTAssertEqual(rec.installed[path], try DeviceFilter.containerProgram([denyAll]))
        XCTAssertEqual(decide(rec.installed[path]!, 2, 10, 200, readBit), 0)

        try m.update(resources: resources([denyAll, allowTun]))
        XCTAssertEqual(rec.log, ["install \(path)", "install \(path)"])
        XCTAssertEqual(decide(rec.installed[path]!, 2, 10, 200, readBit), 1, "the new rules")

        try m.destroy()
        XCTAssertEqual(rec.log.last, "detach \(path)", "detached while the directory is still there")
        XCTAssertNil(rec.installed[path])
        XCTAssertFalse(FS.exists(path))
    }

    /// A rule the kernel cannot be given fails before anything is written.
    func testV2BadRuleWritesNothing() throws {
        let root = fakeV2()
        let rec = RecordingDevicePrograms()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/c1", id: "c1", devicePrograms: rec)
        try m.create()
        XCTAssertThrowsError(try m.apply(resources: resources([denyAll, DeviceCgroup(allow: true, type: "c", minor: 1 << 33)], pids: 10))) {
            XCTAssertEqual("\($0)", "linux.resources.devices[1].minor: 8589934592 is out of range")
        }
        XCTAssertFalse(FS.exists(root + "/c1/pids.max"), "the pids limit before the devices was not written either")
        XCTAssertEqual(rec.log, [])
        try m.destroy()
    }

    /// A hybrid layout as this VM's: v1 devices controller plus a cgroup2
    /// cgroup. Both get the rules; the program first.
    func hybrid(_ rec: RecordingDevicePrograms, v1Devices: Bool = true, unified: Bool = true) throws -> (V1Manager, String, String) {
        let root = temp()
        let dev = root + "/devices/c1", u = root + "/unified/c1"
        var dirs: [V1Manager.Dir] = []
        if v1Devices {
            try FS.makeDirectories(dev)
            for f in ["devices.allow", "devices.deny"] { try FS.writeAtomically(dev + "/" + f, "") }
            dirs.append(V1Manager.Dir(hierarchy: CgroupHierarchy(mountPoint: root + "/devices", controllers: ["devices"]), path: dev))
        }
        var v2 = V2Manager(mountPoint: root + "/unified", path: u)
        v2.devicePrograms = rec
        if unified { try FS.makeDirectories(u) }
        return (V1Manager(dirs: dirs, unified: unified ? v2 : nil), dev, u)
    }

    /// The last rule written to a plain file standing for devices.allow or
    /// devices.deny (each rule is one write ending in a newline).
    func lastRule(_ path: String) throws -> String {
        String(try FS.readString(path).split(separator: "\n").last ?? "")
    }

    /// Every rule goes in, one line each, in order: a default container's
    /// rules through one open of each file.
    func testV1RulesAreEachOneLine() throws {
        let rec = RecordingDevicePrograms()
        let (m, dev, _) = try hybrid(rec)
        try m.apply(resources: resources([denyAll, allowTun]))
        let allow = try FS.readString(dev + "/devices.allow").split(separator: "\n").map(String.init)
        XCTAssertEqual(try FS.readString(dev + "/devices.deny"), "a *:* rwm\n")
        XCTAssertEqual(allow.first, "c 10:200 rwm")
        XCTAssertEqual(allow.last, "c 136:* rwm")
        XCTAssertTrue(allow.contains("c 1:3 rwm"), "\(allow)")
        try m.destroy()
    }

    func testHybridWritesV1AndInstallsTheProgram() throws {
        let rec = RecordingDevicePrograms()
        let (m, dev, u) = try hybrid(rec)
        try m.apply(resources: resources([denyAll, allowTun]))
        XCTAssertEqual(rec.log, ["install \(u)"])
        XCTAssertEqual(rec.installed[u], try DeviceFilter.containerProgram([denyAll, allowTun]))
        // Plain files keep the last line written: the spec's deny, the defaults' last allow.
        XCTAssertEqual(try lastRule(dev + "/devices.deny"), "a *:* rwm")
        XCTAssertEqual(try lastRule(dev + "/devices.allow"), "c 136:* rwm")

        // update without a leading deny-all: v1's list reset to allow-all
        // under the new program, then the rules.
        try m.update(resources: resources([DeviceCgroup(allow: false, type: "b", access: "rwm")]))
        XCTAssertEqual(rec.log, ["install \(u)", "install \(u)"])
        XCTAssertEqual(try lastRule(dev + "/devices.deny"), "b *:* rwm")
        try m.destroy()
        XCTAssertEqual(rec.log.last, "detach \(u)")
    }

    /// Where v1's devices controller enforces, a program the kernel refuses
    /// is a warning at create; on update a v1 reset without it is refused.
    func testHybridWithoutBPF() throws {
        let rec = RecordingDevicePrograms()
        rec.refuse = EPERM
        let (m, dev, _) = try hybrid(rec)
        try m.apply(resources: resources([denyAll]))
        XCTAssertEqual(try lastRule(dev + "/devices.deny"), "a *:* rwm")
        try m.update(resources: resources([denyAll, allowTun]))  // the deny-all resets v1 itself
        XCTAssertEqual(try lastRule(dev + "/devices.allow"), "c 136:* rwm")
        XCTAssertThrowsError(try m.update(resources: resources([allowTun]))) { XCTAssertEqual(($0 as? SysError)?.errno, ENOTSUP) }
        try m.destroy()

        // No v1 devices controller: the program is all there is, its failure fails.
        let (n, _, _) = try hybrid(rec, v1Devices: false)
        XCTAssertThrowsError(try n.apply(resources: resources([denyAll]))) { XCTAssertEqual(($0 as? SysError)?.errno, EPERM) }
        try n.destroy()
    }

    /// Pure v1: update takes new rules only after a deny-all.
    func testPureV1Update() throws {
        let rec = RecordingDevicePrograms()
        let (m, dev, _) = try hybrid(rec, unified: false)
        try m.update(resources: resources([denyAll, allowTun]))
        XCTAssertEqual(try lastRule(dev + "/devices.deny"), "a *:* rwm")
        XCTAssertThrowsError(try m.update(resources: resources([allowTun]))) { XCTAssertEqual(($0 as? SysError)?.errno, ENOTSUP) }
        XCTAssertEqual(rec.log, [])
        try m.destroy()
    }
}

/// For real, as root, in a cgroup of the host's cgroup2 hierarchy (here
/// /sys/fs/cgroup/unified; a device program needs no controller). Each test
/// removes its cgroup; its child processes have exited by then.
final class DeviceFilterKernelTests: XCTestCase {
    var cgroup = ""
    var scratch = ""

    override func setUpWithError() throws {
        let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].first { FS.exists($0 + "/cgroup.procs") && FS.exists($0 + "/cgroup.controllers") }
        try XCTSkipUnless(getuid() == 0 && unified != nil, "needs root and a cgroup2 hierarchy")
        cgroup = unified! + "/mc-devkernel-\(getpid())"
        XCTAssertEqual(mkdir(cgroup, 0o755), 0, "mkdir \(cgroup)")
        var template = Array("/tmp/minicontainer-devnodes-XXXXXX".utf8CString)
        scratch = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        // A node of /dev/net/tun's numbers (opening it O_RDONLY does nothing).
        XCTAssertEqual(mknod(scratch + "/tun", S_IFCHR | 0o600, devNumber(10, 200)), 0)
    }

    override func tearDown() {
        if !cgroup.isEmpty { _ = rmdir(cgroup) }
        if !scratch.isEmpty { _ = try? FS.removeTree(scratch) }
    }

    /// Runs `body` in a child placed in the cgroup first; its exit code.
    func inCgroup(_ body: () -> Int32) throws -> Int32 {
        var go: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&go), 0)
        let child = fork()
        if child == 0 {
            var b: UInt8 = 0
            _ = read(go[0], &b, 1)
            _exit(body())
        }
        close(go[0])
        defer { close(go[1]) }
        var status: Int32 = 0
        do {
            try Control.write(cgroup + "/cgroup.procs", "\(child)")
        } catch {
            kill(child, SIGKILL)
            _ = waitpid(child, &status, 0)
            throw error
        }
        XCTAssertEqual(write(go[1], "g", 1), 1)
        XCTAssertEqual(waitpid(child, &status, 0), child)
        return Proc.exitCode(fromWaitStatus: status)
    }

    /// 0 opened, 1 EPERM (the device cgroup's no), 2 another error.
    static func opens(_ path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        if fd >= 0 { close(fd); return 0 }
        return errno == EPERM ? 1 : 2
    }

    func testContainerProgramAllowsDeniesAndIsReplaced() throws {
        let kernel = KernelDevicePrograms()
        try kernel.install(try DeviceFilter.containerProgram([denyAll]), in: cgroup)
        let first = try kernel.attached(to: cgroup)
        XCTAssertEqual(first.count, 1)
        let tun = scratch + "/tun", made = scratch + "/made"
        // null and zero open, the tun node not; mknod of a char device is a default.
        let before = try inCgroup {
            Self.opens("/dev/null") | Self.opens("/dev/zero") << 2 | Self.opens(tun) << 4
                | (mknod(made, S_IFCHR | 0o600, devNumber(10, 200)) == 0 ? 0 : 1) << 6
        }
        XCTAssertEqual(before, 1 << 4, "null and zero opened, tun EPERM, mknod done")
        XCTAssertTrue(FS.exists(made))

        // The update: the new program in place of the old, which is gone.
        try kernel.install(try DeviceFilter.containerProgram([denyAll, allowTun]), in: cgroup)
        let second = try kernel.attached(to: cgroup)
        XCTAssertEqual(second.count, 1)
        XCTAssertNotEqual(second, first)
        XCTAssertEqual(try inCgroup { Self.opens(tun) | Self.opens("/dev/null") << 2 }, 0, "tun allowed now")

        // Several attached (another runtime's, say): install leaves one.
        try attachRaw(try DeviceFilter.program([DeviceCgroup(allow: true)]))
        XCTAssertEqual(try kernel.attached(to: cgroup).count, 2)
        try kernel.install(try DeviceFilter.containerProgram([denyAll]), in: cgroup)
        XCTAssertEqual(try kernel.attached(to: cgroup).count, 1)
        XCTAssertEqual(try inCgroup { Self.opens(tun) }, 1)

        XCTAssertEqual(try kernel.detachAll(from: cgroup), 1)
        XCTAssertEqual(try kernel.attached(to: cgroup), [])
        XCTAssertEqual(try inCgroup { Self.opens(tun) }, 0, "no program: the parent's rules (none)")
        XCTAssertEqual(try kernel.detachAll(from: cgroup + "-missing"), 0)
    }

    /// mknod refused by a program without the defaults' mknod rules.
    func testMknodDenied() throws {
        try KernelDevicePrograms().install(try DeviceFilter.program([denyAll, DeviceCgroup(allow: true, type: "c", major: 1, minor: 5, access: "rwm")]), in: cgroup)
        let a = scratch + "/zero", b = scratch + "/null"
        let code = try inCgroup {
            let ok = mknod(a, S_IFCHR | 0o600, devNumber(1, 5)) == 0 ? 0 : 1
            let denied = mknod(b, S_IFCHR | 0o600, devNumber(1, 3)) != 0 && errno == EPERM ? 0 : 2
            return Int32(ok | denied)
        }
        XCTAssertEqual(code, 0, "mknod c 1:5 done, mknod c 1:3 EPERM")
        XCTAssertTrue(FS.exists(a))
        XCTAssertFalse(FS.exists(b))
        XCTAssertEqual(try KernelDevicePrograms().detachAll(from: cgroup), 1)
    }

    /// A second program attached beside (ALLOW_MULTI, no replace).
    func attachRaw(_ program: [BPFInstruction]) throws {
        let kernel = KernelDevicePrograms()
        let prog = try kernel.load(program)
        defer { close(prog) }
        let dir = try kernel.openCgroup(cgroup)
        defer { close(dir) }
        XCTAssertEqual(mc_bpf_attach_device_program(dir, prog, -1), 0)
    }
}
