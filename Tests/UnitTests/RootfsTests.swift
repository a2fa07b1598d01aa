import XCTest
import Spec
@testable import Sys
@testable import Rootfs
import Cgroups

// MARK: - Mount options

final class RootfsOptionsTests: XCTestCase {
    func parse(_ o: [String]) -> MountOptions { Rootfs.parseOptions(o) }

    func testEmpty() {
        XCTAssertEqual(parse([]), MountOptions())
        XCTAssertEqual(parse([""]), MountOptions())
        XCTAssertEqual(parse(["defaults"]), MountOptions())
    }

    func testEverySetFlag() {
        let table: [(String, UInt)] = [
            ("ro", MS.rdonly), ("nosuid", MS.nosuid), ("nodev", MS.nodev), ("noexec", MS.noexec),
            ("sync", MS.synchronous), ("remount", MS.remount), ("mand", MS.mandlock), ("dirsync", MS.dirsync),
            ("nosymfollow", MS.nosymfollow), ("noatime", MS.noatime), ("nodiratime", MS.nodiratime),
            ("bind", MS.bind), ("rbind", MS.bind | MS.rec), ("silent", MS.silent), ("acl", MS.posixacl),
            ("relatime", MS.relatime), ("iversion", MS.iversion), ("strictatime", MS.strictatime),
            ("lazytime", MS.lazytime),
        ]
        for (name, flag) in table {
            let o = parse([name])
            XCTAssertEqual(o.flags, flag, name)
            XCTAssertEqual(o.clearedFlags, 0, name)
            XCTAssertEqual(o.data, "", name)
            XCTAssertEqual(o.propagation, [], name)
        }
    }

    func testEveryClearingFlag() {
        let table: [(String, UInt)] = [
            ("rw", MS.rdonly), ("suid", MS.nosuid), ("dev", MS.nodev), ("exec", MS.noexec),
            ("async", MS.synchronous), ("nomand", MS.mandlock), ("atime", MS.noatime),
            ("diratime", MS.nodiratime), ("norelatime", MS.relatime), ("nostrictatime", MS.strictatime),
            ("symfollow", MS.nosymfollow), ("loud", MS.silent), ("noacl", MS.posixacl),
            ("noiversion", MS.iversion), ("nolazytime", MS.lazytime),
        ]
        for (name, flag) in table {
            let o = parse([name])
            XCTAssertEqual(o.flags, 0, name)
            XCTAssertEqual(o.clearedFlags, flag, name)
            XCTAssertEqual(o.data, "", name)
        }
    }

    func testLaterOptionWins() {
        XCTAssertEqual(parse(["ro", "rw"]).flags, 0)
        XCTAssertEqual(parse(["ro", "rw"]).clearedFlags, MS.rdonly)
        XCTAssertEqual(parse(["rw", "ro"]).flags, MS.rdonly)
        XCTAssertEqual(parse(["rw", "ro"]).clearedFlags, 0)
        XCTAssertEqual(parse(["nosuid", "suid", "nosuid"]).flags, MS.nosuid)
        XCTAssertEqual(parse(["noexec", "exec"]).flags, 0)
    }

    func testDefaultSpecProcAndDev() {
        let proc = parse(["nosuid", "noexec", "nodev"])
        XCTAssertEqual(proc.flags, MS.nosuid | MS.noexec | MS.nodev)
        XCTAssertEqual(proc.data, "")

        let dev = parse(["nosuid", "strictatime", "mode=755", "size=65536k"])
        XCTAssertEqual(dev.flags, MS.nosuid | MS.strictatime)
        XCTAssertEqual(dev.data, "mode=755,size=65536k")

        let pts = parse(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        XCTAssertEqual(pts.flags, MS.nosuid | MS.noexec)
        XCTAssertEqual(pts.data, "newinstance,ptmxmode=0666,mode=0620,gid=5")

        let cg = parse(["nosuid", "noexec", "nodev", "relatime", "ro"])
        XCTAssertEqual(cg.flags, MS.nosuid | MS.noexec | MS.nodev | MS.relatime | MS.rdonly)
    }

    func testVolumeOptions() {
        let o = parse(["rbind", "rprivate", "ro"])
        XCTAssertEqual(o.flags, MS.bind | MS.rec | MS.rdonly)
        XCTAssertEqual(o.propagation, [MS.private | MS.rec])
        XCTAssertTrue(o.isBind)
        XCTAssertTrue(o.isRecursiveBind)
        XCTAssertTrue(o.needsBindRemount)

        let plain = parse(["bind"])
        XCTAssertTrue(plain.isBind)
        XCTAssertFalse(plain.isRecursiveBind)
        XCTAssertFalse(plain.needsBindRemount)
        XCTAssertFalse(parse(["rbind", "rslave"]).needsBindRemount)
        XCTAssertTrue(parse(["bind", "nosuid"]).needsBindRemount)
        XCTAssertFalse(parse(["nosuid"]).isBind)
    }

    func testEveryPropagation() {
        let table: [(String, UInt)] = [
            ("private", MS.private), ("rprivate", MS.private | MS.rec),
            ("shared", MS.shared), ("rshared", MS.shared | MS.rec),
            ("slave", MS.slave), ("rslave", MS.slave | MS.rec),
            ("unbindable", MS.unbindable), ("runbindable", MS.unbindable | MS.rec),
        ]
        for (name, flag) in table {
            let o = parse([name])
            XCTAssertEqual(o.propagation, [flag], name)
            XCTAssertEqual(o.flags, 0, name)
            XCTAssertEqual(Rootfs.propagationFlag(name), flag, name)
        }
        XCTAssertEqual(parse(["shared", "rslave"]).propagation, [MS.shared, MS.slave | MS.rec])
        XCTAssertNil(Rootfs.propagationFlag("sideways"))
        XCTAssertNil(Rootfs.propagationFlag(""))
    }

    func testRecursiveAttributes() {
        let ro = parse(["rro"])
        XCTAssertEqual(ro.recursiveSet, Kernel.MOUNT_ATTR_RDONLY)
        XCTAssertEqual(ro.recursiveClear, 0)
        XCTAssertEqual(ro.flags, 0)
        XCTAssertTrue(ro.hasRecursiveAttributes)

        let rw = parse(["rrw"])
        XCTAssertEqual(rw.recursiveSet, 0)
        XCTAssertEqual(rw.recursiveClear, Kernel.MOUNT_ATTR_RDONLY)

        let several = parse(["rnosuid", "rnodev", "rnoexec", "rnosymfollow"])
        XCTAssertEqual(several.recursiveSet, Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV | Kernel.MOUNT_ATTR_NOEXEC | Kernel.MOUNT_ATTR_NOSYMFOLLOW)
        XCTAssertEqual(parse(["rro", "rrw"]).recursiveSet, 0)
        XCTAssertEqual(parse(["rro", "rrw"]).recursiveClear, Kernel.MOUNT_ATTR_RDONLY)
        XCTAssertEqual(parse(["rrw", "rro"]).recursiveClear, 0)
        XCTAssertEqual(parse(["rsuid", "rdev", "rexec", "rsymfollow", "rdiratime"]).recursiveClear,
                       Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV | Kernel.MOUNT_ATTR_NOEXEC | Kernel.MOUNT_ATTR_NOSYMFOLLOW | Kernel.MOUNT_ATTR_NODIRATIME)
        XCTAssertFalse(parse(["ro"]).hasRecursiveAttributes)
    }

    func testRecursiveAccessTimeIsOneValue() {
        let noatime = parse(["rnoatime"])
        XCTAssertEqual(noatime.recursiveSet, Kernel.MOUNT_ATTR_NOATIME)
        XCTAssertEqual(noatime.recursiveClear, Kernel.MOUNT_ATTR__ATIME)

        let strict = parse(["rnoatime", "rstrictatime"])
        XCTAssertEqual(strict.recursiveSet, Kernel.MOUNT_ATTR_STRICTATIME)
        XCTAssertEqual(strict.recursiveClear, Kernel.MOUNT_ATTR__ATIME)

        let rel = parse(["rstrictatime", "rrelatime"])
        XCTAssertEqual(rel.recursiveSet, Kernel.MOUNT_ATTR_RELATIME)
        XCTAssertEqual(rel.recursiveClear, Kernel.MOUNT_ATTR__ATIME)
        XCTAssertTrue(rel.hasRecursiveAttributes)

        XCTAssertEqual(parse(["rnoatime", "ratime"]).recursiveSet, 0)
    }

    func testExtensionsAreNotData() {
        let o = parse(["tmpcopyup", "mode=1777", "tmpcopyup", "idmap", "size=1m"])
        XCTAssertEqual(o.extensions, ["tmpcopyup", "idmap"])
        XCTAssertEqual(o.data, "mode=1777,size=1m")
        XCTAssertEqual(parse(["notmpcopyup", "ridmap"]).extensions, ["notmpcopyup", "ridmap"])
    }

    func testUnknownOptionsKeepOrderAsData() {
        let o = parse(["size=65536k", "ro", "uid=1000", "lowerdir=/a:/b", "context=\"x,y\"", "nr_inodes=0"])
        XCTAssertEqual(o.flags, MS.rdonly)
        XCTAssertEqual(o.data, "size=65536k,uid=1000,lowerdir=/a:/b,context=\"x,y\",nr_inodes=0")
        XCTAssertEqual(parse(["RO"]).data, "RO", "options are case sensitive, as in the kernel")
    }

    func testEverythingTogether() {
        let o = parse(["rbind", "ro", "nosuid", "rslave", "rnodev", "tmpcopyup", "mode=755", "rw", "private"])
        XCTAssertEqual(o.flags, MS.bind | MS.rec | MS.nosuid)
        XCTAssertEqual(o.clearedFlags, MS.rdonly)
        XCTAssertEqual(o.propagation, [MS.slave | MS.rec, MS.private])
        XCTAssertEqual(o.recursiveSet, Kernel.MOUNT_ATTR_NODEV)
        XCTAssertEqual(o.extensions, ["tmpcopyup"])
        XCTAssertEqual(o.data, "mode=755")
    }

    func testKernelFlagValues() {
        // Spot checks against <sys/mount.h>.
        XCTAssertEqual(MS.bind, 4096)
        XCTAssertEqual(MS.rec, 16384)
        XCTAssertEqual(MS.private, 1 << 18)
        XCTAssertEqual(MS.slave, 1 << 19)
        XCTAssertEqual(MS.shared, 1 << 20)
        XCTAssertEqual(MS.strictatime, 1 << 24)
        XCTAssertEqual(Kernel.MOUNT_ATTR_NOSYMFOLLOW, 0x0020_0000)
    }
}

// MARK: - Remount flags

final class RootfsRemountTests: XCTestCase {
    func testStatfsFlags() {
        // ST_RDONLY|ST_NOSUID|ST_NODEV|ST_NOEXEC|ST_RELATIME
        XCTAssertEqual(Rootfs.msFlags(statfsFlags: 0x1 | 0x2 | 0x4 | 0x8 | 0x1000),
                       MS.rdonly | MS.nosuid | MS.nodev | MS.noexec | MS.relatime)
        XCTAssertEqual(Rootfs.msFlags(statfsFlags: 0x400), MS.noatime)
        XCTAssertEqual(Rootfs.msFlags(statfsFlags: 0x2000 | 0x1000), MS.nosymfollow | MS.relatime)
        XCTAssertEqual(Rootfs.msFlags(statfsFlags: 0), MS.strictatime, "no atime flag means strictatime")
        XCTAssertEqual(Rootfs.msFlags(statfsFlags: 0x20 | 0x1000), MS.relatime, "ST_VALID is ignored")
    }

    func testFirstTryIsWhatWasAsked() {
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.bind | MS.rec | MS.rdonly, cleared: 0, current: nil),
                       MS.bind | MS.remount | MS.rdonly)
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.rdonly | MS.private, cleared: 0, current: nil),
                       MS.bind | MS.remount | MS.rdonly)
    }

    func testRetryKeepsLockedFlagsNotCleared() {
        let current = MS.nosuid | MS.nodev | MS.noexec | MS.relatime
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.bind | MS.rdonly, cleared: 0, current: current),
                       MS.bind | MS.remount | MS.rdonly | current)
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.bind | MS.rdonly, cleared: MS.noexec, current: current),
                       MS.bind | MS.remount | MS.rdonly | MS.nosuid | MS.nodev | MS.relatime)
        // An asked-for access time replaces the current one.
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.bind | MS.noatime, cleared: 0, current: current),
                       MS.bind | MS.remount | MS.noatime | MS.nosuid | MS.nodev | MS.noexec)
        // Flags that are not per-mount (sync) are not carried over.
        XCTAssertEqual(Rootfs.bindRemountFlags(requested: MS.rdonly, cleared: 0, current: MS.synchronous | MS.relatime),
                       MS.bind | MS.remount | MS.rdonly | MS.relatime)
    }
}

// MARK: - Mount plan

final class RootfsPlanTests: XCTestCase {
    func testSplitPath() {
        XCTAssertEqual(Rootfs.splitPath("/dev/null").parent, "/dev")
        XCTAssertEqual(Rootfs.splitPath("/dev/null").name, "null")
        XCTAssertEqual(Rootfs.splitPath("/dev").parent, "/")
        XCTAssertEqual(Rootfs.splitPath("/dev").name, "dev")
        XCTAssertEqual(Rootfs.splitPath("/a/b/c").parent, "/a/b")
    }

    func testDefaultSpecPlan() {
        let spec = Spec.defaultSpec()
        let plan = Rootfs.plan(mounts: spec.mounts ?? [], bundle: "/b")
        XCTAssertEqual(plan.count, spec.mounts?.count)
        let byDest = Dictionary(plan.map { ($0.destination, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byDest["/proc"]?.kind, .filesystem("proc"))
        XCTAssertEqual(byDest["/proc"]?.label, "mount proc on /proc")
        XCTAssertEqual(byDest["/dev"]?.kind, .filesystem("tmpfs"))
        if let cg = byDest["/sys/fs/cgroup"] {
            XCTAssertEqual(cg.kind, .cgroup)
            XCTAssertEqual(cg.label, "mount cgroup on /sys/fs/cgroup")
        }
        XCTAssertTrue(Rootfs.needsDevSetup(plan))
        XCTAssertFalse(plan.contains { $0.idmapped })
    }

    func testBindClassification() {
        let mounts = [
            Mount(destination: "/a", type: "bind", source: "/host/a", options: ["rbind", "ro"]),
            Mount(destination: "/b", type: "none", source: "/host/b", options: ["bind"]),
            Mount(destination: "/c", type: nil, source: "/host/c", options: ["rbind"]),
            Mount(destination: "/d", type: "tmpfs", source: "/host/d", options: ["bind"]),
            Mount(destination: "/e", type: "bind", source: "/host/e", options: ["ro"]),
            Mount(destination: "data", type: "bind", source: "vol/x", options: ["rbind"]),
            Mount(destination: "/f", type: "bind", source: "../outside", options: ["bind"]),
        ]
        let plan = Rootfs.plan(mounts: mounts, bundle: "/bundles/c1")
        XCTAssertTrue(plan.allSatisfy { $0.kind == .bind })
        XCTAssertTrue(plan.allSatisfy { $0.options.isBind }, "type bind implies MS_BIND")
        XCTAssertEqual(plan[0].options.flags, MS.bind | MS.rec | MS.rdonly)
        XCTAssertEqual(plan[4].options.flags, MS.bind | MS.rdonly)
        XCTAssertEqual(plan[5].source, "/bundles/c1/vol/x")
        XCTAssertEqual(plan[5].destination, "/data")
        XCTAssertEqual(plan[6].source, "/bundles/outside")
        XCTAssertEqual(plan[0].label, "mount /host/a on /a")
    }

    func testFilesystemSourceDefaultsToType() {
        let plan = Rootfs.plan(mounts: [Mount(destination: "/run", type: "tmpfs", source: nil, options: nil)], bundle: "/b")
        XCTAssertEqual(plan[0].source, "tmpfs")
        XCTAssertEqual(plan[0].kind, .filesystem("tmpfs"))
        XCTAssertEqual(plan[0].options, MountOptions())
    }

    func testIdmapped() {
        var m = Mount(destination: "/a", type: "bind", source: "/x", options: ["rbind"])
        m.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        let plan = Rootfs.plan(mounts: [m, Mount(destination: "/b", type: "bind", source: "/y", options: ["rbind", "idmap"])],
                               bundle: "/b")
        XCTAssertTrue(plan[0].idmapped)
        XCTAssertTrue(plan[1].idmapped)
    }

    func testDevSetupUnlessDevIsBound() {
        let bound = Rootfs.plan(mounts: [Mount(destination: "/dev", type: "bind", source: "/dev", options: ["rbind"])], bundle: "/b")
        XCTAssertFalse(Rootfs.needsDevSetup(bound))
        let tmpfs = Rootfs.plan(mounts: [Mount(destination: "/dev", type: "tmpfs", source: "tmpfs")], bundle: "/b")
        XCTAssertTrue(Rootfs.needsDevSetup(tmpfs))
        XCTAssertTrue(Rootfs.needsDevSetup([]), "runc creates them even without a /dev mount")
    }

    func testProcDestinations() {
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/proc", kind: .filesystem("proc"), sourceIsProcfs: false))
        XCTAssertFalse(Rootfs.procMountAllowed(destination: "/proc", kind: .filesystem("tmpfs"), sourceIsProcfs: false))
        XCTAssertFalse(Rootfs.procMountAllowed(destination: "/proc", kind: .bind, sourceIsProcfs: false))
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/proc", kind: .bind, sourceIsProcfs: true))
        XCTAssertFalse(Rootfs.procMountAllowed(destination: "/proc/sys/kernel/core_pattern", kind: .bind, sourceIsProcfs: false))
        XCTAssertFalse(Rootfs.procMountAllowed(destination: "/proc/sysrq-trigger", kind: .filesystem("tmpfs"), sourceIsProcfs: false))
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/proc/meminfo", kind: .bind, sourceIsProcfs: false))
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/proc/sys/kernel/ns_last_pid", kind: .bind, sourceIsProcfs: false))
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/data", kind: .bind, sourceIsProcfs: false))
        XCTAssertTrue(Rootfs.procMountAllowed(destination: "/procfoo", kind: .bind, sourceIsProcfs: false))
    }
}

// MARK: - Devices

final class RootfsDeviceTests: XCTestCase {
    func testMakedev() {
        XCTAssertEqual(Rootfs.makedev(1, 3), 0x103)
        XCTAssertEqual(Rootfs.makedev(5, 0), 0x500)
        XCTAssertEqual(Rootfs.makedev(10, 229), 0xae5)
        XCTAssertEqual(Rootfs.makedev(259, 0x1_2345), 0x1231_0345)
        // Large numbers, as glibc's gnu_dev_makedev.
        XCTAssertEqual(Rootfs.makedev(0x1000, 0x100), (0x1 << 44) | (0x1 << 20))
    }

    func testDefaults() {
        let nodes = try! Rootfs.deviceNodes([], defaults: true)
        XCTAssertEqual(nodes.map { $0.path }, ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"])
        XCTAssertTrue(nodes.allSatisfy { $0.mode == 0o666 && $0.fileType == DeviceNode.charType && $0.uid == 0 })
        XCTAssertEqual(nodes.first { $0.path == "/dev/tty" }.map { [$0.major, $0.minor] }, [5, 0])
        XCTAssertEqual(try! Rootfs.deviceNodes([], defaults: false), [])
    }

    func testSpecDevices() throws {
        let devs = [
            Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o600, uid: 1000, gid: 1001),
            Device(type: "b", path: "/dev/sda", major: 8, minor: 0),
            Device(type: "u", path: "dev/x", major: 1, minor: 2, fileMode: 0o020666),
            Device(type: "p", path: "/dev/fifo"),
        ]
        let nodes = try Rootfs.deviceNodes(devs, defaults: false)
        XCTAssertEqual(nodes[0], DeviceNode(path: "/dev/fuse", fileType: DeviceNode.charType, major: 10, minor: 229,
                                            mode: 0o600, uid: 1000, gid: 1001))
        XCTAssertEqual(nodes[1].fileType, DeviceNode.blockType)
        XCTAssertEqual(nodes[1].mode, 0o666)
        XCTAssertEqual(nodes[2].path, "/dev/x")
        XCTAssertEqual(nodes[2].fileType, DeviceNode.charType)
        XCTAssertEqual(nodes[2].mode, 0o666, "type bits in fileMode are dropped")
        XCTAssertEqual(nodes[3].fileType, DeviceNode.fifoType)
    }

    func testSpecDeviceReplacesDefault() throws {
        let nodes = try Rootfs.deviceNodes([Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o600)],
                                           defaults: true)
        XCTAssertEqual(nodes.filter { $0.path == "/dev/null" }.count, 1)
        XCTAssertEqual(nodes.first { $0.path == "/dev/null" }?.mode, 0o600)
        XCTAssertEqual(nodes.count, 6)
    }

    func testBadDevices() {
        XCTAssertThrowsError(try Rootfs.deviceNodes([Device(type: "x", path: "/dev/x", major: 1, minor: 1)], defaults: false)) { e in
            XCTAssertEqual((e as? SysError)?.what, "create device /dev/x: unknown type \"x\"")
        }
        XCTAssertThrowsError(try Rootfs.deviceNodes([Device(type: "c", path: "/dev/y")], defaults: false)) { e in
            XCTAssertTrue(((e as? SysError)?.what ?? "").contains("major and minor"))
        }
    }

    func testSymlinks() {
        let links = Rootfs.devSymlinks(hostHasKcore: false)
        XCTAssertEqual(links.map { $0.link }, ["/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"])
        XCTAssertEqual(links.map { $0.target }, ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"])
        let withCore = Rootfs.devSymlinks(hostHasKcore: true)
        XCTAssertEqual(withCore.last?.link, "/dev/core")
        XCTAssertEqual(withCore.last?.target, "/proc/kcore")
    }

    func testInitialIDMap() {
        XCTAssertTrue(Rootfs.isInitialIDMap("         0          0 4294967295\n"))
        XCTAssertFalse(Rootfs.isInitialIDMap("         0       1000          1\n"))
        XCTAssertFalse(Rootfs.isInitialIDMap("0 0 4294967295\n1 1 1\n"))
        XCTAssertFalse(Rootfs.isInitialIDMap(""))
    }
}

// MARK: - /proc parsers and cgroups

final class RootfsProcTests: XCTestCase {
    // From a v1/hybrid host like the one this runtime is developed on.
    let hybridMountInfo = """
        22 27 0:21 / /proc rw,relatime - proc proc rw
        27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,discard
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        38 31 0:35 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/x,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
        90 27 0:38 / /var/lib/other/rootfs/sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        91 27 0:50 / /mnt/with\\040space rw - tmpfs my\\011src rw
        """
    let hybridCgroup = """
        12:name=systemd:/user.slice
        4:memory:/process_api/f585
        3:cpuset:/
        2:cpu,cpuacct:/cg/a
        0::/user.slice/x
        """

    func testParseMountInfo() {
        let m = Rootfs.parseMountInfo(hybridMountInfo)
        XCTAssertEqual(m.count, 10)
        XCTAssertEqual(m[0], MountInfo(id: 22, parent: 27, root: "/", mountPoint: "/proc", options: "rw,relatime",
                                       fsType: "proc", source: "proc", superOptions: "rw"))
        XCTAssertEqual(m[1].fsType, "ext4", "optional fields before the separator are skipped")
        XCTAssertEqual(m[1].superOptions, "rw,discard")
        XCTAssertEqual(m[9].mountPoint, "/mnt/with space")
        XCTAssertEqual(m[9].source, "my\tsrc")
        XCTAssertEqual(Rootfs.parseMountInfo("garbage\n\n1 2 3\n"), [])
    }

    func testUnescape() {
        XCTAssertEqual(Rootfs.unescapeMountInfo("/a\\134b"), "/a\\b")
        XCTAssertEqual(Rootfs.unescapeMountInfo("/a\\012"), "/a\n")
        XCTAssertEqual(Rootfs.unescapeMountInfo("/a\\9"), "/a\\9", "not an escape")
        XCTAssertEqual(Rootfs.unescapeMountInfo("/a\\04"), "/a\\04", "truncated escape")
    }

    func testParseProcCgroup() {
        let c = Rootfs.parseProcCgroup(hybridCgroup)
        XCTAssertEqual(c.count, 5)
        XCTAssertEqual(c[0], ProcCgroup(hierarchy: 12, controllers: ["name=systemd"], path: "/user.slice"))
        XCTAssertEqual(c[3].controllers, ["cpu", "cpuacct"])
        XCTAssertEqual(c[4], ProcCgroup(hierarchy: 0, controllers: [], path: "/user.slice/x"))
        XCTAssertEqual(Rootfs.parseProcCgroup("1:a:/p:with:colons\n"), [ProcCgroup(hierarchy: 1, controllers: ["a"], path: "/p:with:colons")])
    }

    /// The init is given the runtime's cgroup mounts (CgroupHost.mounts)
    /// instead of reading mountinfo again: the same hierarchies result.
    func testHierarchiesFromTheRuntimesCgroupMounts() {
        let host = CgroupHost.parse(mountinfo: hybridMountInfo)!
        XCTAssertEqual(host.mounts, CgroupHierarchy.all(in: Rootfs.parseMountInfo(hybridMountInfo)))
        XCTAssertFalse(host.mounts.isEmpty)
        let procCgroup = Rootfs.parseProcCgroup(hybridCgroup)
        let fromMountInfo = Rootfs.cgroupHierarchies(mountInfo: Rootfs.parseMountInfo(hybridMountInfo), procCgroup: procCgroup)
        let fromHost = Rootfs.cgroupHierarchies(mounts: host.mounts, procCgroup: procCgroup)
        XCTAssertEqual(fromHost.map { $0.name }, fromMountInfo.map { $0.name })
        XCTAssertEqual(fromHost.map { $0.hierarchy }, fromMountInfo.map { $0.hierarchy })
        XCTAssertEqual(fromHost.map { $0.hostPath }, fromMountInfo.map { $0.hostPath })
    }

    func testHybridHierarchies() {
        let h = Rootfs.cgroupHierarchies(mountInfo: Rootfs.parseMountInfo(hybridMountInfo),
                                         procCgroup: Rootfs.parseProcCgroup(hybridCgroup))
        XCTAssertEqual(h.map { $0.name }, ["cpu,cpuacct", "memory", "cpuset", "systemd", "unified"],
                       "only mounts directly under /sys/fs/cgroup")
        XCTAssertEqual(h[0].hierarchy, CgroupHierarchy(mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: ["cpu", "cpuacct"]))
        XCTAssertEqual(h[0].hierarchy.mountData, "cpu,cpuacct")
        XCTAssertEqual(h[0].hostPath, "/sys/fs/cgroup/cpu,cpuacct/cg/a")
        XCTAssertEqual(h[1].hostPath, "/sys/fs/cgroup/memory/process_api/f585")
        XCTAssertEqual(h[2].hierarchy.mountData, "cpuset,clone_children")
        XCTAssertEqual(h[2].hierarchy.controllers, ["cpuset"])
        XCTAssertEqual(h[2].hostPath, "/sys/fs/cgroup/cpuset")
        XCTAssertEqual(h[3].hierarchy.mountData, "xattr,name=systemd", "release_agent and rw are dropped")
        XCTAssertEqual(h[3].hierarchy.controllers, ["name=systemd"])
        XCTAssertEqual(h[3].hostPath, "/sys/fs/cgroup/systemd/user.slice")
        XCTAssertEqual(h[4].hierarchy, CgroupHierarchy(mountPoint: "/sys/fs/cgroup/unified", controllers: [],
                                                       fsType: "cgroup2", superOptions: "rw,nsdelegate"))
        XCTAssertEqual(h[4].hierarchy.mountData, "", "cgroup2 takes no data")
        XCTAssertEqual(h[4].hostPath, "/sys/fs/cgroup/unified/user.slice/x")
    }

    func testHierarchyRootedBelowTheTop() {
        // A hierarchy whose mount root is a sub-cgroup: our path is relative to it.
        let mi = Rootfs.parseMountInfo("35 31 0:32 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
        let mine = Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: Rootfs.parseProcCgroup("4:memory:/process_api/c1\n"))
        XCTAssertEqual(mine[0].hostPath, "/sys/fs/cgroup/memory/c1")
        // Outside the mounted subtree (or seen from a cgroup namespace as /..): the whole hierarchy.
        let other = Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: Rootfs.parseProcCgroup("4:memory:/elsewhere\n"))
        XCTAssertEqual(other[0].hostPath, "/sys/fs/cgroup/memory")
        let prefixOnly = Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: Rootfs.parseProcCgroup("4:memory:/process_api2\n"))
        XCTAssertEqual(prefixOnly[0].hostPath, "/sys/fs/cgroup/memory")
        let ns = Rootfs.parseMountInfo("35 31 0:32 /../.. /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
        XCTAssertEqual(Rootfs.cgroupHierarchies(mountInfo: ns, procCgroup: Rootfs.parseProcCgroup("4:memory:/\n"))[0].hostPath,
                       "/sys/fs/cgroup/memory")
        XCTAssertEqual(Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: [])[0].hostPath, "/sys/fs/cgroup/memory")
    }

    func testLaterMountOfSameNameWins() {
        let mi = Rootfs.parseMountInfo("""
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            36 35 0:32 /x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            """)
        let h = Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: Rootfs.parseProcCgroup("4:memory:/x/y\n"))
        XCTAssertEqual(h.count, 1)
        XCTAssertEqual(h[0].hostPath, "/sys/fs/cgroup/memory/y")
    }

    func testCgroupSymlinks() {
        let h = Rootfs.cgroupHierarchies(mountInfo: Rootfs.parseMountInfo(hybridMountInfo), procCgroup: [])
        let links = Rootfs.cgroupSymlinks(names: h.map { $0.name })
        XCTAssertEqual(links.map { $0.link }, ["cpu", "cpuacct"])
        XCTAssertEqual(links.map { $0.target }, ["cpu,cpuacct", "cpu,cpuacct"])
        // A host that mounts cpu and cpuacct separately needs none.
        let split = Rootfs.parseMountInfo("""
            32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
            33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
            """)
        XCTAssertTrue(Rootfs.cgroupSymlinks(names: Rootfs.cgroupHierarchies(mountInfo: split, procCgroup: []).map { $0.name }).isEmpty)
    }

    func testV2HostHasNoHierarchiesUnderTheBase() {
        let mi = Rootfs.parseMountInfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
        XCTAssertTrue(Rootfs.cgroupHierarchies(mountInfo: mi, procCgroup: []).isEmpty)
    }
}

// MARK: - Safety and errors

final class RootfsSafetyTests: XCTestCase {
    func testRefusesTheHostMountNamespace() throws {
        // This test process shares pid 1's mount namespace (when it can see it):
        // prepare must refuse before touching any mount.
        guard let mine = readLink("/proc/self/ns/mnt"), let first = readLink("/proc/1/ns/mnt"), mine == first else {
            throw XCTSkip("not in pid 1's mount namespace, or cannot see it")
        }
        XCTAssertThrowsError(try Rootfs.requireOwnMountNamespace()) { e in
            XCTAssertEqual((e as? SysError)?.what, "prepare rootfs: not in a mount namespace of its own")
        }
        XCTAssertThrowsError(try Rootfs.prepare(spec: Spec.defaultSpec(), rootfs: "/nonexistent", bundle: "/nonexistent"))
    }

    func testStepPrefixesErrors() {
        XCTAssertThrowsError(try step("mount tmpfs on /run") { throw SysError("mkdir /run", errno: 30) }) { e in
            XCTAssertEqual((e as? SysError)?.description, "mount tmpfs on /run: mkdir /run: read-only file system")
        }
        XCTAssertThrowsError(try step("mount proc on /proc") { throw SysError("mount proc on /proc", errno: 1) }) { e in
            XCTAssertEqual((e as? SysError)?.description, "mount proc on /proc: operation not permitted")
        }
    }

    func testBadRootfsPropagation() {
        var spec = Spec.defaultSpec()
        spec.linux = spec.linux ?? Linux()
        spec.linux!.rootfsPropagation = "sideways"
        XCTAssertThrowsError(try Rootfs.rootPropagation(spec, default: (MS.slave | MS.rec, "rslave"))) { e in
            XCTAssertEqual((e as? SysError)?.what, "linux.rootfsPropagation \"sideways\"")
        }
        spec.linux!.rootfsPropagation = "rshared"
        XCTAssertEqual(try Rootfs.rootPropagation(spec, default: (MS.slave | MS.rec, "rslave")).0, MS.shared | MS.rec)
        spec.linux!.rootfsPropagation = nil
        XCTAssertEqual(try Rootfs.rootPropagation(spec, default: (MS.slave | MS.rec, "rslave")).0, MS.slave | MS.rec)
        XCTAssertNil(try Rootfs.rootPropagation(spec, default: nil))
    }
}

// MARK: - The new mount API: mount(2) flags and data as fsconfig/fsmount take them

final class RootfsNewMountTests: XCTestCase {
    func testSuperblockKeys() {
        XCTAssertEqual(Rootfs.superblockKeys(0), [])
        XCTAssertEqual(Rootfs.superblockKeys(MS.rdonly | MS.nosuid | MS.nodev | MS.noexec), ["ro"])
        XCTAssertEqual(Rootfs.superblockKeys(MS.synchronous | MS.dirsync | MS.lazytime), ["sync", "dirsync", "lazytime"])
        // Dropped: only quiets the kernel log.
        XCTAssertEqual(Rootfs.superblockKeys(MS.silent), [])
        // Only mount(2) can do these.
        for f in [MS.remount, MS.move, MS.bind, MS.mandlock, MS.posixacl, MS.iversion] {
            XCTAssertNil(Rootfs.superblockKeys(f | MS.rdonly), String(f, radix: 16))
        }
    }

    func testKnownOptionsAreTheParsersAndWhatFeaturesPrinted() {
        let known = MountOptions.known
        XCTAssertEqual(known, Array(Set(known)).sorted(), "sorted, each once")
        // What `features` listed by hand before the list came from the table.
        let before = ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
                      "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private",
                      "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
                      "shared", "slave", "strictatime", "suid", "sync", "unbindable"]
        XCTAssertTrue(Set(before).isSubset(of: Set(known)))
        XCTAssertEqual(known.count, 64, "as runc 1.1's features: flags, propagation, recursive attributes, tmpcopyup; and idmap, ridmap")
        for o in known {
            XCTAssertEqual(Rootfs.parseOptions([o]).data, "", "\(o) is one the parser knows, not filesystem data")
        }
        XCTAssertFalse(known.contains("notmpcopyup"))
        for o in ["idmap", "ridmap"] { XCTAssertTrue(known.contains(o), o) }
        XCTAssertTrue(known.contains("tmpcopyup"))
    }

    func testMountAttributes() {
        XCTAssertEqual(Rootfs.mountAttributes(0), Kernel.MOUNT_ATTR_RELATIME)
        XCTAssertEqual(Rootfs.mountAttributes(MS.rdonly | MS.nosuid | MS.nodev | MS.noexec),
                       Kernel.MOUNT_ATTR_RDONLY | Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV | Kernel.MOUNT_ATTR_NOEXEC)
        XCTAssertEqual(Rootfs.mountAttributes(MS.noatime), Kernel.MOUNT_ATTR_NOATIME)
        XCTAssertEqual(Rootfs.mountAttributes(MS.relatime), Kernel.MOUNT_ATTR_RELATIME)
        // mount(2): strictatime wins over noatime.
        XCTAssertEqual(Rootfs.mountAttributes(MS.strictatime | MS.noatime), Kernel.MOUNT_ATTR_STRICTATIME)
        XCTAssertEqual(Rootfs.mountAttributes(MS.nodiratime | MS.nosymfollow), Kernel.MOUNT_ATTR_NODIRATIME | Kernel.MOUNT_ATTR_NOSYMFOLLOW)
        // Superblock flags are not mount attributes.
        XCTAssertEqual(Rootfs.mountAttributes(MS.synchronous | MS.lazytime), 0)
    }

    func testFsParameters() {
        let p = Rootfs.fsParameters("newinstance,ptmxmode=0666,mode=0620,gid=5")
        XCTAssertEqual(p.map { $0.key }, ["newinstance", "ptmxmode", "mode", "gid"])
        XCTAssertEqual(p.map { $0.value }, [nil, "0666", "0620", "5"])
        XCTAssertTrue(Rootfs.fsParameters("").isEmpty)
        XCTAssertEqual(Rootfs.fsParameters(",size=1k,,").map { $0.key }, ["size"])
        // Only the first "=" splits; the value keeps the rest.
        let o = Rootfs.fsParameters("lowerdir=/a:/b,context=system_u:object_r:x=y")
        XCTAssertEqual(o.map { $0.key }, ["lowerdir", "context"])
        XCTAssertEqual(o.map { $0.value }, ["/a:/b", "system_u:object_r:x=y"])
        XCTAssertEqual(Rootfs.fsParameters("empty=").map { $0.value }, [""])
    }
}

// MARK: - ProcFS: the procfs handle of Sys (CVE-2025-52881)

final class RootfsProcFSTests: XCTestCase {
    func testSysctlPath() {
        XCTAssertEqual(ProcFS.sysctlPath("net.ipv4.ip_forward"), "net/ipv4/ip_forward")
        XCTAssertEqual(ProcFS.sysctlPath("kernel.shm_rmid_forced"), "kernel/shm_rmid_forced")
        XCTAssertEqual(ProcFS.sysctlPath("net.ipv4.conf.all.rp_filter"), "net/ipv4/conf/all/rp_filter")
        XCTAssertEqual(ProcFS.sysctlPath("net.ipv6.conf.eth-0.disable_ipv6"), "net/ipv6/conf/eth-0/disable_ipv6")
        // Slashes: the path itself, dots kept (a VLAN interface).
        XCTAssertEqual(ProcFS.sysctlPath("net/ipv4/ip_forward"), "net/ipv4/ip_forward")
        XCTAssertEqual(ProcFS.sysctlPath("net/ipv4/conf/eth0.100/forwarding"), "net/ipv4/conf/eth0.100/forwarding")
        for bad in ["", ".", "..", "net..ipv4", ".net.ipv4", "net.ipv4.", "net//ipv4", "/net/ipv4", "net/ipv4/",
                    "net/../kernel/core_pattern", "net/./ipv4", "kernel/..", "../sys", "net.ipv4 .x", "net.ipv4.x\n",
                    "net.ipv4.*", "kernel.core_pattern\u{0}", "net.ipv4.conf.eth0:1.forwarding", "nét.x",
                    String(repeating: "a", count: 5000)] {
            XCTAssertNil(ProcFS.sysctlPath(bad), bad)
        }
    }

    func testExpandSelf() {
        let links = ["self": "42", "thread-self": "42/task/43"]
        XCTAssertEqual(ProcFS.expandSelf("self/oom_score_adj", link: { links[$0] }), "42/oom_score_adj")
        XCTAssertEqual(ProcFS.expandSelf("thread-self/attr/exec", link: { links[$0] }), "42/task/43/attr/exec")
        XCTAssertEqual(ProcFS.expandSelf("self", link: { links[$0] }), "42")
        XCTAssertEqual(ProcFS.expandSelf("sys/net/ipv4/ip_forward", link: { links[$0] }), "sys/net/ipv4/ip_forward")
        XCTAssertEqual(ProcFS.expandSelf("selfish/x", link: { links[$0] }), "selfish/x")
        // What the link says must stay beneath the procfs root.
        XCTAssertNil(ProcFS.expandSelf("self/x", link: { _ in nil }))
        XCTAssertNil(ProcFS.expandSelf("self/x", link: { _ in "/etc" }))
        XCTAssertNil(ProcFS.expandSelf("self/x", link: { _ in "../x" }))
    }

    func testOpensBeneathItsOwnProcfs() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (fsopen)")
        defer { ProcFS.close() }
        let status = String(decoding: try ProcFS.read("self/status"), as: UTF8.self)
        XCTAssertTrue(status.contains("\nPid:\t\(getpid())\n"), status)
        XCTAssertFalse(try ProcFS.read("sys/kernel/ostype").isEmpty)
        // A symlink on the way is refused (the handle's own "self" is spelled out, "mounts" is not).
        XCTAssertThrowsError(try ProcFS.read("mounts")) { e in
            XCTAssertEqual((e as? SysError)?.errno, ELOOP)
        }
        XCTAssertThrowsError(try ProcFS.read("self/../../etc/hostname"))  // out of the procfs: RESOLVE_BENEATH
        XCTAssertThrowsError(try ProcFS.writeSysctl("kernel/../../etc/passwd", "x")) { e in
            XCTAssertEqual((e as? SysError)?.description, "sysctl kernel/../../etc/passwd: not a valid sysctl name: invalid argument")
        }
        XCTAssertThrowsError(try ProcFS.writeSysctl("net.ipv4.no_such_knob", "1")) { e in
            XCTAssertEqual((e as? SysError)?.description,
                           "sysctl net.ipv4.no_such_knob: open /proc/sys/net/ipv4/no_such_knob: no such file or directory")
        }
        // The cached handle survives its number being closed behind its back.
        let fd = try ProcFS.open("self/status", O_RDONLY)
        close(fd)
        XCTAssertFalse(try ProcFS.read("self/stat").isEmpty)
    }

    func testReopen() throws {
        try XCTSkipIf(geteuid() != 0, "needs root (fsopen)")
        let path = "/tmp/procfs-reopen-\(getpid())"
        XCTAssertTrue(FileManagerless.write(path, "hello"))
        defer { unlink(path) }
        let o = open(path, Kernel.O_PATH | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(o, 0)
        defer { close(o) }
        let r = try ProcFS.reopen(o, O_RDONLY, what: "reopen")
        defer { close(r) }
        XCTAssertEqual(String(decoding: try FS.readFd(r), as: UTF8.self), "hello")
    }
}

/// A file write without Foundation, for the tests above.
enum FileManagerless {
    static func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return (try? FS.writeAll(fd: fd, Array(text.utf8), what: "write")) != nil
    }
}
