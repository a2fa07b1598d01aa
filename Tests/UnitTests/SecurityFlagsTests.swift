import Compile
import Spec
import Sys
import XCTest

/// The security run flags compiled into the spec, against a fake host.
final class SecurityFlagsTests: XCTestCase {
    let fuse = HostDevice(type: "c", major: 10, minor: 229, fileMode: 0o20666)
    let sda = HostDevice(type: "b", major: 8, minor: 0, fileMode: 0o60660)

    func host(profile: Seccomp? = nil) -> Compile.Host {
        Compile.Host(realPath: { $0 }, isDirectory: { $0 == "/rootfs" }, environment: { _ in nil }, readFile: { _ in nil },
             device: { p in
                 switch p {
                 case "/dev/fuse": return self.fuse
                 case "/dev/sda": return self.sda
                 case "/etc/passwd": return HostDevice(type: "")
                 default: return nil
                 }
             },
             hostDevices: {
                 [Device(type: "c", path: "/dev/zero", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0),
                  Device(type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0),
                  Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0)]
             },
             seccompProfile: { p in
                 guard let s = profile else { throw CompileError("--security-opt seccomp=\(p): no such file") }
                 return s
             })
    }

    func flags(_ edit: (inout RunFlags) -> Void) -> RunFlags {
        var f = RunFlags()
        f.rootfs = "/rootfs"
        f.network = "none"
        f.command = ["/bin/true"]
        edit(&f)
        return f
    }

    func spec(_ edit: (inout RunFlags) -> Void, host h: Compile.Host? = nil) throws -> Spec {
        try compile(flags(edit), host: h ?? host())
    }

    func error(_ edit: (inout RunFlags) -> Void, host h: Compile.Host? = nil) -> String? {
        do {
            _ = try compile(flags(edit), host: h ?? host())
            return nil
        } catch let e as CompileError {
            XCTAssertFalse(e.message.contains("\n"), e.message)
            return e.message
        } catch {
            return "not a CompileError: \(error)"
        }
    }

    // MARK: hostname

    /// The hostname is limited in bytes as create validates it (64), not in
    /// characters, and no whitespace or control character (a newline would
    /// add lines to the generated /etc/hosts) gets through.
    func testHostnameIsCheckedInBytesAndWithoutControlCharacters() throws {
        XCTAssertNotNil(error { $0.hostname = String(repeating: "é", count: 33) })  // 33 characters, 66 bytes
        XCTAssertNil(error { $0.hostname = String(repeating: "é", count: 32) })
        XCTAssertNotNil(error { $0.hostname = "a\nb" })
        XCTAssertNotNil(error { $0.hostname = "a\tb" })
        XCTAssertNotNil(error { $0.hostname = "a\u{7f}" })
        XCTAssertEqual(try spec { $0.hostname = "web-1.local" }.hostname, "web-1.local")
    }

    // MARK: capabilities

    func testAllCapabilitiesMatchTheKernel() {
        XCTAssertEqual(allCapabilities.count, 41)
        XCTAssertEqual(Set(allCapabilities).count, 41)
        XCTAssertEqual(allCapabilities.last, "CAP_CHECKPOINT_RESTORE")
        XCTAssertTrue(Set(runCapabilities).isSubset(of: Set(allCapabilities)))
        // The kernel's own count, where it can be read.
        if let t = try? FS.readString("/proc/sys/kernel/cap_last_cap"), let n = Int(t.filter { $0.isNumber }) {
            XCTAssertEqual(n + 1, allCapabilities.count)
        }
    }

    func testNamesWithOrWithoutPrefixAnyCase() {
        XCTAssertEqual(capabilityName("net_admin"), "CAP_NET_ADMIN")
        XCTAssertEqual(capabilityName("CAP_NET_ADMIN"), "CAP_NET_ADMIN")
        XCTAssertEqual(capabilityName("cap_Sys_Admin"), "CAP_SYS_ADMIN")
        XCTAssertEqual(capabilityName("all"), "ALL")
        XCTAssertNil(capabilityName("CAP_FLY"))
        XCTAssertNil(capabilityName(""))
    }

    func testDefaultSetIsUnchanged() throws {
        let c = try spec { _ in }.process!.capabilities!
        XCTAssertEqual(c.bounding, runCapabilities)
        XCTAssertEqual(c.effective, runCapabilities)
        XCTAssertEqual(c.permitted, runCapabilities)
        XCTAssertNil(c.inheritable)
        XCTAssertNil(c.ambient)
    }

    func testDropThenAdd() throws {
        let c = try spec { $0.capDrop = ["chown", "CAP_KILL"]; $0.capAdd = ["sys_admin", "CAP_CHOWN", "SYS_ADMIN"] }.process!.capabilities!
        let want = runCapabilities.filter { $0 != "CAP_CHOWN" && $0 != "CAP_KILL" } + ["CAP_SYS_ADMIN", "CAP_CHOWN"]
        XCTAssertEqual(c.bounding, want)
        XCTAssertEqual(c.effective, want)
        XCTAssertEqual(c.permitted, want)
    }

    func testDropAllThenAddOnlyThose() throws {
        XCTAssertEqual(try spec { $0.capDrop = ["ALL"] }.process!.capabilities!.bounding, [])
        XCTAssertEqual(try spec { $0.capDrop = ["all"]; $0.capAdd = ["net_raw"] }.process!.capabilities!.effective, ["CAP_NET_RAW"])
    }

    func testAddAllGivesEveryOneLessDrops() throws {
        XCTAssertEqual(try spec { $0.capAdd = ["ALL"] }.process!.capabilities!.bounding, allCapabilities)
        XCTAssertEqual(try spec { $0.capAdd = ["ALL"]; $0.capDrop = ["sys_admin"] }.process!.capabilities!.bounding,
                       allCapabilities.filter { $0 != "CAP_SYS_ADMIN" })
    }

    func testAllIsWhatTheCallerCanGive() throws {
        let lacking = Compile.Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil },
                           boundingSet: { allCapabilities.filter { $0 != "CAP_SYS_RESOURCE" } })
        let want = allCapabilities.filter { $0 != "CAP_SYS_RESOURCE" }
        XCTAssertEqual(try spec({ $0.privileged = true }, host: lacking).process!.capabilities!.bounding, want)
        XCTAssertEqual(try spec({ $0.capAdd = ["all"] }, host: lacking).process!.capabilities!.bounding, want)
        // Named ones are asked for as given (the runtime says if it cannot).
        XCTAssertEqual(try spec({ $0.capAdd = ["sys_resource"] }, host: lacking).process!.capabilities!.bounding,
                       runCapabilities + ["CAP_SYS_RESOURCE"])
    }

    func testUnknownCapability() {
        XCTAssertEqual(error { $0.capAdd = ["FLY"] },
                       "invalid --cap-add \"FLY\": no such capability (use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)")
        XCTAssertNotNil(error { $0.capDrop = ["CAP_"] })
    }

    // MARK: privileged

    func testPrivileged() throws {
        let s = try spec { $0.privileged = true }
        XCTAssertEqual(s.process!.capabilities!.bounding, allCapabilities)
        XCTAssertEqual(s.process!.capabilities!.effective, allCapabilities)
        XCTAssertNil(s.linux!.seccomp)
        XCTAssertNil(s.linux!.maskedPaths)
        XCTAssertNil(s.linux!.readonlyPaths)
        XCTAssertEqual(s.linux!.resources!.devices, [DeviceCgroup(allow: true, access: "rwm")])
        XCTAssertEqual(s.linux!.devices!.map { $0.path }, ["/dev/fuse", "/dev/null", "/dev/zero"])
        let sys = s.mounts!.first { $0.destination == "/sys" }!
        XCTAssertFalse(sys.options!.contains("ro"))
        XCTAssertFalse(s.mounts!.first { $0.destination == "/sys/fs/cgroup" }!.options!.contains("ro"))
        // Not privileged: /sys read-only, masked paths, the default profile.
        let d = try spec { _ in }
        XCTAssertTrue(d.mounts!.first { $0.destination == "/sys" }!.options!.contains("ro"))
        XCTAssertEqual(d.linux!.maskedPaths, Spec.defaultMaskedPaths)
        XCTAssertNil(d.linux!.devices)
    }

    func testPrivilegedWithCapDropAndDevice() throws {
        let s = try spec { $0.privileged = true; $0.capDrop = ["sys_admin"]; $0.devices = ["/dev/fuse:/dev/fuse:r"] }
        XCTAssertEqual(s.process!.capabilities!.bounding, allCapabilities.filter { $0 != "CAP_SYS_ADMIN" })
        // The --device entry replaces the host's at its path; every device stays allowed.
        XCTAssertEqual(s.linux!.devices!.map { $0.path }, ["/dev/null", "/dev/zero", "/dev/fuse"])
        XCTAssertEqual(s.linux!.devices!.last!.uid, 0)
        XCTAssertEqual(s.linux!.resources!.devices, [DeviceCgroup(allow: true, access: "rwm")])
    }

    // MARK: seccomp

    func testDefaultProfileFollowsTheFinalBoundingSet() throws {
        XCTAssertEqual(try spec { _ in }.linux!.seccomp, defaultSeccompProfile(capabilities: runCapabilities))
        let caps = runCapabilities.filter { $0 != "CAP_CHOWN" } + ["CAP_SYS_ADMIN"]
        XCTAssertEqual(try spec { $0.capDrop = ["CHOWN"]; $0.capAdd = ["SYS_ADMIN"] }.linux!.seccomp,
                       defaultSeccompProfile(capabilities: caps))
    }

    func testSeccompUnconfinedAndPath() throws {
        XCTAssertNil(try spec { $0.securityOpts = ["seccomp=unconfined"] }.linux!.seccomp)
        XCTAssertNil(try spec { $0.securityOpts = ["seccomp:unconfined"] }.linux!.seccomp)
        var p = Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        p.syscalls = [Syscall(names: ["read"], action: "SCMP_ACT_ALLOW")]
        XCTAssertEqual(try spec({ $0.securityOpts = ["seccomp=/p.json"] }, host: host(profile: p)).linux!.seccomp, p)
        // The last one given wins.
        XCTAssertNil(try spec({ $0.securityOpts = ["seccomp=/p.json", "seccomp=unconfined"] }, host: host(profile: p)).linux!.seccomp)
        XCTAssertEqual(error { $0.securityOpts = ["seccomp=/missing.json"] }, "--security-opt seccomp=/missing.json: no such file")
        XCTAssertNotNil(error { $0.securityOpts = ["seccomp="] })
        // Privileged: no seccomp, as Docker.
        XCTAssertNil(try spec({ $0.privileged = true; $0.securityOpts = ["seccomp=/p.json"] }, host: host(profile: p)).linux!.seccomp)
    }

    func testHostErrorsOtherThanCompileErrorsStayOneLine() {
        let h = Compile.Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil },
                     seccompProfile: { _ in throw SomeError() })
        XCTAssertEqual(error({ $0.securityOpts = ["seccomp=/x"] }, host: h), "--security-opt seccomp=/x: some error")
    }

    struct SomeError: Error, CustomStringConvertible { var description: String { "some error" } }

    // MARK: other security options

    func testNoNewPrivileges() throws {
        for o in ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"] {
            XCTAssertEqual(try spec { $0.securityOpts = [o] }.process!.noNewPrivileges, true, o)
        }
        XCTAssertNil(try spec { $0.securityOpts = ["no-new-privileges=false"] }.process!.noNewPrivileges)
        XCTAssertNil(try spec { _ in }.process!.noNewPrivileges)
        XCTAssertNotNil(error { $0.securityOpts = ["no-new-privileges=yes"] })
    }

    func testAppArmor() throws {
        XCTAssertEqual(try spec { $0.securityOpts = ["apparmor=my-profile"] }.process!.apparmorProfile, "my-profile")
        XCTAssertNil(try spec { $0.securityOpts = ["apparmor=unconfined"] }.process!.apparmorProfile)
        XCTAssertNotNil(error { $0.securityOpts = ["apparmor="] })
    }

    func testLabels() throws {
        XCTAssertEqual(try spec { $0.securityOpts = ["label=type:spc_t"] }.process!.selinuxLabel,
                       "system_u:system_r:spc_t:s0")
        XCTAssertEqual(try spec { $0.securityOpts = ["label=user:u", "label=role:r", "label=type:t", "label=level:s0:c1,c2"] }
                           .process!.selinuxLabel, "u:r:t:s0:c1,c2")
        XCTAssertNil(try spec { $0.securityOpts = ["label=type:t", "label=disable"] }.process!.selinuxLabel)
        XCTAssertNil(try spec { _ in }.process!.selinuxLabel)
        XCTAssertNotNil(error { $0.securityOpts = ["label=colour:red"] })
        XCTAssertNotNil(error { $0.securityOpts = ["label=type:"] })
        XCTAssertNotNil(error { $0.securityOpts = ["label=user:a:b"] })
    }

    func testUnknownSecurityOpt() {
        XCTAssertEqual(error { $0.securityOpts = ["fly=high"] },
                       "invalid --security-opt \"fly=high\": unknown option (use seccomp=, no-new-privileges, apparmor= or label=)")
        XCTAssertNotNil(error { $0.securityOpts = ["seccomp"] })
        XCTAssertNotNil(error { $0.securityOpts = [""] })
    }

    // MARK: devices

    func testDevice() throws {
        let s = try spec { $0.devices = ["/dev/fuse"] }
        XCTAssertEqual(s.linux!.devices, [Device(type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0)])
        XCTAssertEqual(s.linux!.resources!.devices, [DeviceCgroup(allow: false, access: "rwm"),
                                                     DeviceCgroup(allow: true, type: "c", major: 10, minor: 229, access: "rwm")])
    }

    func testDeviceWithPathAndPermissions() throws {
        let s = try spec { $0.devices = ["/dev/sda:/dev/xvda:r", "/dev/fuse:mr"] }
        XCTAssertEqual(s.linux!.devices!.map { $0.path }, ["/dev/xvda", "/dev/fuse"])
        XCTAssertEqual(s.linux!.devices![0].type, "b")
        XCTAssertEqual(s.linux!.devices![0].fileMode, 0o660)
        XCTAssertEqual(s.linux!.resources!.devices!.map { $0.access }, ["rwm", "r", "mr"])
        XCTAssertEqual(try spec { $0.devices = ["/dev/fuse:/dev/x"] }.linux!.resources!.devices!.last!.access, "rwm")
    }

    func testBadDevices() {
        XCTAssertEqual(error { $0.devices = ["/dev/nope"] }, "--device \"/dev/nope\": /dev/nope does not exist")
        XCTAssertEqual(error { $0.devices = ["/etc/passwd"] }, "--device \"/etc/passwd\": /etc/passwd is not a character or block device")
        XCTAssertEqual(error { $0.devices = ["/dev/fuse:rwx"] },
                       "invalid --device \"/dev/fuse:rwx\": the permissions must be letters of rwm, not \"rwx\"")
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:/dev/fuse:rr"] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:/dev/fuse:"] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:x/y:r"] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:/:r"] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:/dev/../x"] })
        XCTAssertNotNil(error { $0.devices = ["dev/fuse"] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse:/a:r:w"] })
        XCTAssertNotNil(error { $0.devices = [""] })
        XCTAssertNotNil(error { $0.devices = ["/dev/fuse", "/dev/sda:/dev/fuse"] })
    }

    // MARK: sysctl

    func testSysctlsAllowed() throws {
        let s = try spec { $0.sysctls = ["net.ipv4.ip_forward=1", "kernel.shmmax=1000000", "fs.mqueue.msg_max=20", "kernel.sem=1 2 3 4"] }
        XCTAssertEqual(s.linux!.sysctl, ["net.ipv4.ip_forward": "1", "kernel.shmmax": "1000000",
                                         "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4"])
        XCTAssertEqual(try spec { $0.sysctls = ["kernel.shmmni=1", "kernel.shmmni=2"] }.linux!.sysctl, ["kernel.shmmni": "2"])
        XCTAssertEqual(try spec { $0.sysctls = ["net.core.somaxconn="] }.linux!.sysctl, ["net.core.somaxconn": ""])
        XCTAssertNil(try spec { _ in }.linux!.sysctl)
        // net.* with the container's own network namespace: bridge too.
        XCTAssertNotNil(try spec { $0.network = "bridge"; $0.sysctls = ["net.ipv4.ip_forward=1"] }.linux!.sysctl)
    }

    func testSysctlsRefused() {
        XCTAssertEqual(error { $0.network = "host"; $0.sysctls = ["net.ipv4.ip_forward=1"] },
                       "--sysctl \"net.ipv4.ip_forward=1\" is not allowed: net.ipv4.ip_forward would change the host's network namespace (--network host)")
        XCTAssertNotNil(error { $0.network = "container:web"; $0.sysctls = ["net.ipv4.ip_forward=1"] })
        XCTAssertEqual(error { $0.sysctls = ["kernel.hostname=x"] },
                       "--sysctl \"kernel.hostname=x\" is not allowed: kernel.hostname is set by --hostname")
        XCTAssertNotNil(error { $0.sysctls = ["kernel.domainname=x"] })
        XCTAssertEqual(error { $0.sysctls = ["kernel.core_pattern=|/x"] },
                       "--sysctl \"kernel.core_pattern=|/x\" is not allowed: kernel.core_pattern is not namespaced: it would change the host's")
        XCTAssertNotNil(error { $0.sysctls = ["vm.swappiness=1"] })
        XCTAssertNotNil(error { $0.sysctls = ["net.core.bpf_jit_enable=0"] })
        // ipc keys are fine with any network.
        XCTAssertNil(error { $0.network = "host"; $0.sysctls = ["kernel.msgmax=100"] })
    }

    func testSysctlSyntax() {
        for bad in ["noequals", "=1", "net..x=1", "net.ipv4.ip_forward=1\n2", "./x=1"] {
            XCTAssertNotNil(error { $0.sysctls = [bad] }, bad)
        }
        XCTAssertEqual(error { $0.sysctls = ["x"] }, "invalid --sysctl \"x\": use KEY=VALUE, e.g. net.ipv4.ip_forward=1")
    }

    // MARK: userns

    func testUserns() throws {
        XCTAssertNoThrow(try spec { $0.userns = "host" })
        XCTAssertNoThrow(try spec { $0.userns = "" })
        XCTAssertEqual(error { $0.userns = "keep-id" }, "invalid --userns \"keep-id\": only host (the default) is supported for now")
        XCTAssertFalse(try spec { $0.userns = "host" }.linux!.namespaces!.contains { $0.type == "user" })
    }
}
