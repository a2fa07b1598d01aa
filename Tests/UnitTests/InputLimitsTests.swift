import XCTest
import Glibc
import Spec
import Sys
@testable import CLI
@testable import Privileges
@testable import Rootfs
@testable import Runtime

// Input an attacker controls (a config field, an id, an argument): bounded
// one-line messages, the sysctls a container may set, exec --cap, the LSM
// fields, overlay layer paths (issue 11, items 4, 5, 7, 9, 10).

final class QuoteTests: XCTestCase {
    func testShortPlainTextIsQuotedAsItIs() {
        XCTAssertEqual(quoted("abc"), "\"abc\"")
        XCTAssertEqual(quoted(""), "\"\"")
        XCTAssertEqual(quoted("/a b/ü"), "\"/a b/ü\"")
    }

    func testControlCharactersAreEscaped() {
        XCTAssertEqual(quoted("a\nb\tc\rd"), #""a\nb\tc\rd""#)
        XCTAssertEqual(quoted("x\u{1b}[31my"), #""x\x1b[31my""#)
        XCTAssertEqual(quoted("\u{7f}\u{85}\u{0}"), #""\x7f\x85\x00""#)
        XCTAssertEqual(quoted("a\u{202e}b\u{2028}"), #""a\u{202e}b\u{2028}""#)
        XCTAssertEqual(quoted(#"q"b\s"#), #""q\"b\\s""#)
    }

    func testLongValuesKeepTheirStartAndEnd() {
        let s = "/" + String(repeating: "a", count: 4000) + "/../x"
        let q = quoted(s)
        XCTAssertLessThanOrEqual(q.utf8.count, Quote.defaultMax + 40)
        XCTAssertTrue(q.hasPrefix("\"/aaa"), q)
        XCTAssertTrue(q.hasSuffix("a/../x\""), q)
        let cut = s.utf8.count - (q.utf8.count - 2 - "[... 3750 bytes ...]".utf8.count)
        XCTAssertTrue(q.contains("[... \(cut) bytes ...]"), q)
    }

    func testCutsFallBetweenCharacters() {
        let s = String(repeating: "é", count: 1000)  // 2 bytes each
        let q = quoted(s, max: 101)
        XCTAssertFalse(q.unicodeScalars.contains("\u{fffd}"))
        XCTAssertTrue(q.contains("é[..."), q)
        let l = Quote.line(s, max: 101)
        XCTAssertLessThanOrEqual(l.utf8.count, 101 + 30)
    }

    func testLineEscapesAndCaps() {
        XCTAssertEqual(Quote.line("plain", max: 10), "plain")
        XCTAssertEqual(Quote.line("a\nb", max: 10), #"a\nb"#)
        XCTAssertEqual(Quote.line(#"keeps "quotes" and \ as they are"#, max: 100), #"keeps "quotes" and \ as they are"#)
        let long = String(repeating: "x", count: 589_035) + ": invalid argument"
        let l = Quote.line(long, max: 1024)
        XCTAssertLessThanOrEqual(l.utf8.count, 1024 + 40)
        XCTAssertTrue(l.hasSuffix(": invalid argument"), String(l.suffix(40)))
        XCTAssertTrue(l.contains("bytes cut ...]"))
        XCTAssertFalse(l.contains("\n"))
    }

    func testList() {
        XCTAssertEqual(Quote.list([1, 2, 3]), "[1 2 3]")
        XCTAssertEqual(Quote.list(Array(0..<100_000), max: 3), "[0 1 2 ... (99997 more)]")
    }

    func testErrorsAreBoundedWhereTheyAreMade() {
        let e = SysError("open " + String(repeating: "p", count: 100_000) + "\nX", errno: ENOENT)
        XCTAssertLessThanOrEqual(e.description.utf8.count, Log.maxSysError + 80)
        XCTAssertFalse(e.description.contains("\n"))
        XCTAssertTrue(e.description.hasSuffix(#"ppp\nX: no such file or directory"#), e.description)
        XCTAssertEqual(SysError("open /x", errno: ENOENT).description, "open /x: no such file or directory")
        XCTAssertLessThanOrEqual(Log.oneLine(String(repeating: "m", count: 10_000)).utf8.count, Log.maxMessage + 40)
    }

    func testContainerIDErrorIsOneBoundedLine() {
        for id in ["a\nb", String(repeating: "x", count: 100_000) + "\n", "\u{1b}]0;title\u{7}"] {
            XCTAssertThrowsError(try Store.validate(id: id)) { e in
                let text = "\(e)"
                XCTAssertFalse(text.unicodeScalars.contains(where: Quote.isControl), text)
                XCTAssertLessThanOrEqual(text.utf8.count, 300, text)
            }
        }
    }

    func testSetgroupsErrorQuotesAFewGroups() {
        // Validation refuses this many first; this is the message if the kernel does.
        let gids = Array(UInt32(0)..<100_000)
        XCTAssertEqual(Quote.list(gids).utf8.count, "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 ... (99984 more)]".utf8.count)
    }
}

final class InputValidationTests: XCTestCase {
    var base: Spec { Spec.defaultSpec() }
    func problems(_ s: Spec) -> [SpecError] { s.problems(bundle: "/b", exists: { _ in true }) }

    func testTooManyGroups() {
        var s = base
        s.process!.user.additionalGids = Array(0..<100_000)
        let ps = problems(s)
        XCTAssertEqual(ps.map { $0.path }, ["process.user.additionalGids"])
        XCTAssertEqual(ps.first?.message, "100000 groups, more than the kernel allows (65536)")
        s.process!.user.additionalGids = Array(0..<65_536)
        XCTAssertEqual(problems(s), [])
    }

    func testLongMountPath() {
        var s = base
        let long = "/" + String(repeating: "a", count: 4096)
        s.mounts!.append(Mount(destination: long, type: "tmpfs", source: "tmpfs"))
        let ps = problems(s)
        XCTAssertEqual(ps.map { $0.path }, ["mounts[\(s.mounts!.count - 1)].destination"])
        XCTAssertLessThanOrEqual(ps[0].description.utf8.count, 400, ps[0].description)
        XCTAssertTrue(ps[0].message.contains("4097 bytes long"), ps[0].message)
        s.mounts![s.mounts!.count - 1].destination = long + "/../x"
        XCTAssertLessThanOrEqual(problems(s)[0].description.utf8.count, 400)
        // 4 KiB in components of 200 is a path the kernel takes.
        s.mounts![s.mounts!.count - 1].destination = "/" + Array(repeating: String(repeating: "a", count: 200), count: 20).joined(separator: "/")
        XCTAssertEqual(problems(s), [])
    }

    func testQuotedValuesAreBounded() {
        var s = base
        s.process!.env = ["NOEQUALS" + String(repeating: "z", count: 100_000) + "\n"]
        let ps = problems(s)
        XCTAssertEqual(ps.count, 1)
        XCTAssertLessThanOrEqual(ps[0].description.utf8.count, 400)
        XCTAssertFalse(ps[0].description.contains("\n"))
    }
}

final class SysctlPolicyTests: XCTestCase {
    func testComponents() {
        XCTAssertEqual(Sysctl.components("net.ipv4.ip_forward"), ["net", "ipv4", "ip_forward"])
        XCTAssertEqual(Sysctl.components("net/ipv4/ip_forward"), ["net", "ipv4", "ip_forward"])
        // sysctl(8): the first separator decides; the other one is a dot in a name.
        XCTAssertEqual(Sysctl.components("net/ipv4/conf/eth0.100/forwarding"), ["net", "ipv4", "conf", "eth0.100", "forwarding"])
        XCTAssertEqual(Sysctl.components("net.ipv4.conf.eth0/100.forwarding"), ["net", "ipv4", "conf", "eth0.100", "forwarding"])
        XCTAssertEqual(ProcFS.sysctlPath("kernel/shmmax"), "kernel/shmmax")
        XCTAssertEqual(ProcFS.sysctlPath("net.ipv4.conf.eth0/100.forwarding"), "net/ipv4/conf/eth0.100/forwarding")
        for bad in ["", ".", "net..ipv4", "net/../kernel/core_pattern", "/net/ipv4", "net.ipv4.", "net/./x", "net\u{0}.x",
                    "fs.mqueue/../../kernel/core_pattern"] {
            XCTAssertNil(Sysctl.components(bad), bad)
        }
    }

    func testNamespaces() {
        XCTAssertEqual(Sysctl.namespace(of: "kernel.shmmax"), "ipc")
        XCTAssertEqual(Sysctl.namespace(of: "kernel/sem"), "ipc")
        XCTAssertEqual(Sysctl.namespace(of: "fs.mqueue.queues_max"), "ipc")
        XCTAssertEqual(Sysctl.namespace(of: "net.ipv4.ip_forward"), "network")
        XCTAssertEqual(Sysctl.namespace(of: "kernel.domainname"), "uts")
        XCTAssertEqual(Sysctl.namespace(of: "kernel.hostname"), "uts")
        for host in ["fs.lease-break-time", "kernel.core_pattern", "kernel/core_pattern", "kernel.shm_next_id",
                     "vm.overcommit_memory", "user.max_user_namespaces", "fs.mqueue", "net", "net.core.bpf_jit_enable",
                     "net.ipv4.neigh.default.gc_thresh1", "net/nf_conntrack_max", "kernel.msgmaxx"] {
            XCTAssertNil(Sysctl.namespace(of: host), host)
        }
    }

    func problems(_ sysctl: [String: String], without: String? = nil) -> [SpecError] {
        var s = Spec.defaultSpec()
        s.linux!.sysctl = sysctl
        if let w = without { s.linux!.namespaces!.removeAll { $0.type == w } }
        return s.problems(bundle: "/b", exists: { _ in true })
    }

    func testValidation() {
        XCTAssertEqual(problems(["fs.lease-break-time": "52"]).map { $0.description },
                       [#"linux.sysctl: "fs.lease-break-time" is not isolated by any namespace of the container"#])
        XCTAssertEqual(problems(["kernel/core_pattern": "|/x"]).map { $0.path }, ["linux.sysctl"])
        XCTAssertTrue(problems(["net.core.bpf_jit_enable": "1"])[0].message.contains("global"))
        XCTAssertTrue(problems(["net/../kernel/core_pattern": "x"])[0].message.contains("not a sysctl name"))
        XCTAssertEqual(problems(["kernel.shmmax": "1", "fs.mqueue.msg_max": "20", "net.ipv4.ip_forward": "1",
                                 "net/ipv4/conf/all/forwarding": "1", "kernel.domainname": "d"]), [])
        XCTAssertTrue(problems(["net.ipv4.ip_forward": "1"], without: "network")[0].message.contains("network namespace"))
        XCTAssertTrue(problems(["kernel.shmmax": "1"], without: "ipc")[0].message.contains("ipc namespace"))
        XCTAssertTrue(problems(["kernel.domainname": "d"], without: "uts")[0].message.contains("uts namespace"))
        // Every refused key is its own line, bounded.
        let ps = problems(["vm.a": "1", "vm.b": "1", String(repeating: "k", count: 10_000): "1"])
        XCTAssertEqual(ps.count, 3)
        XCTAssertTrue(ps.allSatisfy { $0.description.utf8.count < 300 })
    }

    func testJoinedHostNamespaceIsRefused() throws {
        var s = Spec.defaultSpec()
        s.linux!.sysctl = ["net.ipv4.ip_forward": "1"]
        s.linux!.namespaces = s.linux!.namespaces!.map { $0.type == "network" ? Namespace(type: "network", path: "/proc/self/ns/net") : $0 }
        XCTAssertThrowsError(try checkSysctlNamespaces(s)) { e in
            XCTAssertTrue("\(e)".contains("is the host's own"), "\(e)")
        }
        // Without a sysctl that needs it, joining is not ours to judge.
        s.linux!.sysctl = ["kernel.shmmax": "1"]
        let host = try checkSysctlNamespaces(s)
        XCTAssertTrue(host.entries.isEmpty)
        XCTAssertNoThrow(try verifySysctlNamespaces(host))
    }
}

final class ExecCapabilityTests: XCTestCase {
    func testCapNeverInheritableOrAmbient() {
        let base = Capabilities(bounding: ["CAP_KILL"], effective: ["CAP_KILL"], inheritable: nil, permitted: ["CAP_KILL"],
                                ambient: nil)
        let c = execCapabilities(base, adding: ["CAP_NET_RAW", "CAP_KILL"])
        XCTAssertEqual(c.bounding, ["CAP_KILL", "CAP_NET_RAW"])
        XCTAssertEqual(c.effective, ["CAP_KILL", "CAP_NET_RAW"])
        XCTAssertEqual(c.permitted, ["CAP_KILL", "CAP_NET_RAW"])
        XCTAssertNil(c.inheritable)
        XCTAssertNil(c.ambient)
        let d = execCapabilities(nil, adding: ["CAP_SYS_ADMIN"])
        XCTAssertEqual(d.permitted, ["CAP_SYS_ADMIN"])
        XCTAssertNil(d.inheritable)
        XCTAssertNil(d.ambient)
    }
}

final class LSMTests: XCTestCase {
    func testRefusedWithoutTheModule() {
        let no = { false }, yes = { true }
        XCTAssertNil(LSM.refusal(apparmorProfile: nil, selinuxLabel: nil, appArmor: no, selinux: no))
        XCTAssertNil(LSM.refusal(apparmorProfile: "", selinuxLabel: "", mountLabel: "", appArmor: no, selinux: no))
        XCTAssertEqual(LSM.refusal(apparmorProfile: "x", selinuxLabel: nil, appArmor: no, selinux: yes),
                       #"process.apparmorProfile "x": AppArmor is not enabled on this host"#)
        XCTAssertNil(LSM.refusal(apparmorProfile: "x", selinuxLabel: nil, appArmor: yes, selinux: no))
        XCTAssertEqual(LSM.refusal(apparmorProfile: nil, selinuxLabel: "l", appArmor: yes, selinux: no),
                       #"process.selinuxLabel "l": SELinux is not enabled on this host"#)
        XCTAssertEqual(LSM.refusal(apparmorProfile: nil, selinuxLabel: nil, mountLabel: "m", appArmor: yes, selinux: no),
                       #"linux.mountLabel "m": SELinux is not enabled on this host"#)
        XCTAssertNil(LSM.refusal(apparmorProfile: nil, selinuxLabel: "l", mountLabel: "m", appArmor: no, selinux: yes))
        XCTAssertLessThan(LSM.refusal(apparmorProfile: String(repeating: "p", count: 100_000) + "\n", selinuxLabel: nil,
                                      appArmor: no, selinux: no)!.utf8.count, 250)
    }

    func testThisHostHasNeither() {
        // The VM these tests run on loads no LSM (/proc/self/attr/current: EINVAL).
        if !FS.exists("/sys/module/apparmor") { XCTAssertFalse(LSM.appArmorEnabled()) }
        if !FS.exists("/sys/fs/selinux") { XCTAssertFalse(LSM.selinuxEnabled()) }
    }

    func testProcAttrWriteReportsTheKernelsAnswer() {
        // Without an LSM the kernel refuses attr/exec (EINVAL): the write is
        // made, and its failure is an error, not ignored.
        guard !LSM.appArmorEnabled() && !LSM.selinuxEnabled() else { return }
        XCTAssertThrowsError(try LSM.writeProcAttr("attr/exec", "exec unconfined")) { e in
            XCTAssertEqual((e as? SysError)?.errno, EINVAL, "\(e)")
        }
        XCTAssertNoThrow(try LSM.applyExecLabels(Process(args: ["true"])))
        var p = Process(args: ["true"])
        p.apparmorProfile = "x"
        XCTAssertThrowsError(try LSM.applyExecLabels(p)) { e in
            XCTAssertTrue("\(e)".hasPrefix("apply AppArmor profile \"x\": write /proc/thread-self/attr/exec"), "\(e)")
        }
    }

    func testMountLabelGoesWhereRuncPutsIt() {
        var s = Spec.defaultSpec()
        XCTAssertEqual(s.withMountLabel(), s)
        s.linux!.mountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
        s.mounts!.append(Mount(destination: "/data", type: "none", source: "/srv", options: ["rbind"]))
        s.mounts!.append(Mount(destination: "/t", type: "tmpfs", source: "tmpfs", options: ["context=\"other\""]))
        let l = s.withMountLabel()
        let ctx = "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        for m in l.mounts! {
            let labeled = m.options?.contains(ctx) ?? false
            switch m.destination {
            case "/dev", "/dev/pts", "/dev/shm": XCTAssertTrue(labeled, m.destination)
            default: XCTAssertFalse(labeled, m.destination)  // proc, sysfs, mqueue, cgroup, binds, one labeled already
            }
        }
    }
}

final class OverlayPathTests: XCTestCase {
    func testPaths() {
        XCTAssertNil(Rootfs.overlayPathProblem("/var/lib/x", legacy: true))
        XCTAssertNil(Rootfs.overlayPathProblem("/", legacy: true))
        for bad in ["rel", "", "/a//b", "/a/", "/a/./b", "/a/../b", "/a\nb", "/a\u{0}"] {
            XCTAssertNotNil(Rootfs.overlayPathProblem(bad, legacy: false), bad)
        }
        // With lowerdir+ these are plain names; in mount(2)'s option string, syntax.
        for syntax in ["/a,lowerdir=/b:/etc", "/a:b", #"/a\b"#] {
            XCTAssertNil(Rootfs.overlayPathProblem(syntax, legacy: false), syntax)
            XCTAssertNotNil(Rootfs.overlayPathProblem(syntax, legacy: true), syntax)
        }
    }

    /// As root: the injected rootfs of issue 11 is one layer, a directory by that name.
    func testInjectionIsALiteralLayer() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root") }
        let d = "/tmp/mc-overlay-test-\(getpid())"
        let evil = d + "/x,lowerdir=" + d + "/secret"
        // The attacker's directory: its name holds the option string's syntax.
        for sub in ["/x", "/secret", "/upper", "/work", "/merged", "/x,lowerdir=" + d + "/secret"] {
            try FS.makeDirectories(d + sub, mode: 0o755)
        }
        try FS.writeAtomically(d + "/secret/shadow", "secret\n")
        try FS.writeAtomically(evil + "/mine", "mine\n")
        defer {
            umount2(d + "/merged", Int32(MNT_DETACH))
            _ = try? FS.removeTree(d)
        }
        XCTAssertThrowsError(try Rootfs.mountOverlay(lower: [evil], upper: d + "/upper", work: d + "/work",
                                                     target: d + "/merged", legacy: true))
        guard Rootfs.kernelAtLeast(6, 8) else { throw XCTSkip("lowerdir+ needs Linux 6.8") }
        try Rootfs.mountOverlay(lower: [evil], upper: d + "/upper", work: d + "/work", target: d + "/merged")
        XCTAssertTrue(FS.exists(d + "/merged/mine"))
        XCTAssertFalse(FS.exists(d + "/merged/shadow"))
        umount2(d + "/merged", Int32(MNT_DETACH))
        // Several layers, top first.
        try FS.writeAtomically(d + "/x/mine", "top\n")
        try Rootfs.mountOverlay(lower: [d + "/x", evil], upper: d + "/upper", work: d + "/work", target: d + "/merged")
        XCTAssertEqual(try FS.readString(d + "/merged/mine"), "top\n")
    }
}
