import XCTest
import Spec

// MARK: - Validation

final class SpecValidationTests: XCTestCase {
    /// The problems of `spec` with bundle /b; `exists` answers for every path.
    func problems(_ spec: Spec, exists: Bool = true) -> [SpecError] {
        spec.problems(bundle: "/b", exists: { _ in exists })
    }

    func paths(_ spec: Spec, exists: Bool = true) -> [String] {
        problems(spec, exists: exists).map { $0.path }
    }

    /// Asserts the spec has exactly one problem, at `path`, whose message
    /// contains `fragment`.
    func assertOnlyProblem(_ spec: Spec, _ path: String, _ fragment: String = "", exists: Bool = true,
                           file: StaticString = #filePath, line: UInt = #line) {
        let ps = problems(spec, exists: exists)
        XCTAssertEqual(ps.map { $0.path }, [path], "\(ps)", file: file, line: line)
        if let p = ps.first, !fragment.isEmpty {
            XCTAssertTrue(p.message.contains(fragment), "\(p)", file: file, line: line)
        }
    }

    var base: Spec { Spec.defaultSpec() }

    func testDefaultSpecsHaveNoProblems() {
        var asked: [String] = []
        let ps = Spec.defaultSpec().problems(bundle: "/b", exists: { asked.append($0); return true })
        XCTAssertEqual(ps, [])
        XCTAssertEqual(asked, ["/b/rootfs"])
        XCTAssertEqual(problems(Spec.defaultSpec(rootless: true, uid: 1000, gid: 1000)), [])
    }

    func testEmptyArgs() {
        var s = base
        s.process!.args = []
        assertOnlyProblem(s, "process.args", "empty")
        s.process!.args = nil
        assertOnlyProblem(s, "process.args")
    }

    func testRelativeCwd() {
        var s = base
        s.process!.cwd = "tmp/work"
        assertOnlyProblem(s, "process.cwd", "\"tmp/work\"")
        s.process!.cwd = ""
        assertOnlyProblem(s, "process.cwd")
    }

    func testRelativeRootMissing() {
        let ps = problems(base, exists: false)
        XCTAssertEqual(ps.map { $0.path }, ["root.path"])
        XCTAssertTrue(ps.first?.message.contains("/b/rootfs") ?? false, "\(ps)")
        XCTAssertEqual(ps.first?.description, "root.path: \"/b/rootfs\" does not exist")
    }

    func testAbsoluteRootIsNotResolvedAgainstBundle() {
        var s = base
        s.root = Root(path: "/srv/rootfs")
        var asked: [String] = []
        let ps = s.problems(bundle: "/b", exists: { asked.append($0); return false })
        XCTAssertEqual(asked, ["/srv/rootfs"])
        XCTAssertEqual(ps.map { $0.description }, ["root.path: \"/srv/rootfs\" does not exist"])
        s.root = Root(path: "")
        assertOnlyProblem(s, "root.path", "empty")
    }

    func testNamespaceListedTwice() {
        var s = base
        let n = s.linux!.namespaces!.count
        s.linux!.namespaces!.append(Namespace(type: "pid"))
        assertOnlyProblem(s, "linux.namespaces[\(n)].type", "listed twice")
    }

    func testUnknownNamespace() {
        var s = base
        s.linux!.namespaces![1] = Namespace(type: "net")
        assertOnlyProblem(s, "linux.namespaces[1].type", "unknown namespace \"net\"")
    }

    func testRelativeNamespacePath() {
        var s = base
        s.linux!.namespaces![0].path = "proc/1/ns/pid"
        assertOnlyProblem(s, "linux.namespaces[0].path")
    }

    func testMappingsWithoutUserNamespace() {
        var s = base
        XCTAssertFalse(s.linux!.namespaces!.contains { $0.type == "user" })
        s.linux!.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        assertOnlyProblem(s, "linux.uidMappings", "user namespace")
        s.linux!.gidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        XCTAssertEqual(paths(s), ["linux.uidMappings", "linux.gidMappings"])
        s.linux!.namespaces!.append(Namespace(type: "user"))
        XCTAssertEqual(paths(s), [])
    }

    func testRelativeMountDestination() {
        var s = base
        s.mounts!.append(Mount(destination: "data", type: "bind", source: "/srv"))
        assertOnlyProblem(s, "mounts[\(s.mounts!.count - 1)].destination", "absolute")
    }

    func testMountDestinationWithDotDot() {
        var s = base
        s.mounts![2].destination = "/dev/../etc"
        assertOnlyProblem(s, "mounts[2].destination", "..")
        s.mounts![2].destination = "/dev/.."
        assertOnlyProblem(s, "mounts[2].destination")
        // A name that merely starts with two dots is fine.
        s.mounts![2].destination = "/dev/..pts"
        XCTAssertEqual(paths(s), [])
        s.mounts![2].destination = ""
        assertOnlyProblem(s, "mounts[2].destination", "empty")
    }

    func testBadRlimitType() {
        var s = base
        s.process!.rlimits!.append(Rlimit(type: "RLIMIT_BOGUS", hard: 1, soft: 1))
        assertOnlyProblem(s, "process.rlimits[1].type", "RLIMIT_BOGUS")
        s.process!.rlimits![1].type = "nofile"
        assertOnlyProblem(s, "process.rlimits[1].type")
    }

    func testRlimitListedTwice() {
        var s = base
        s.process!.rlimits!.append(Rlimit(type: "RLIMIT_NOFILE", hard: 1, soft: 1))
        assertOnlyProblem(s, "process.rlimits[1].type", "twice")
    }

    func testSoftAboveHard() {
        var s = base
        s.process!.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 10, soft: 11)]
        assertOnlyProblem(s, "process.rlimits[0]", "soft limit 11 is above hard limit 10")
        s.process!.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: .max, soft: .max)]
        XCTAssertEqual(paths(s), [])
    }

    func testRelativeHookPath() {
        var s = base
        var hooks = Hooks()
        hooks.prestart = [Hook(path: "/bin/true")]
        hooks.createRuntime = [Hook(path: "/bin/true"), Hook(path: "hooks/net.sh")]
        s.hooks = hooks
        assertOnlyProblem(s, "hooks.createRuntime[1].path", "hooks/net.sh")
        s.hooks!.createRuntime = nil
        s.hooks!.poststop = [Hook(path: "/bin/true", timeout: 0)]
        assertOnlyProblem(s, "hooks.poststop[0].timeout", "positive")
    }

    func testHostnameWithoutUTSNamespace() {
        var s = base
        s.linux!.namespaces!.removeAll { $0.type == "uts" }
        XCTAssertEqual(s.hostname, "minicontainer")
        assertOnlyProblem(s, "hostname", "uts")
        s.hostname = nil
        XCTAssertEqual(paths(s), [])
        s.hostname = String(repeating: "h", count: 65)
        s.linux!.namespaces!.append(Namespace(type: "uts"))
        assertOnlyProblem(s, "hostname", "64")
    }

    func testBadSeccompAction() {
        var s = base
        s.linux!.seccomp = Seccomp(defaultAction: "SCMP_ACT_NOPE")
        assertOnlyProblem(s, "linux.seccomp.defaultAction", "SCMP_ACT_NOPE")
        s.linux!.seccomp = Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        s.linux!.seccomp!.syscalls = [Syscall(names: ["read"], action: "SCMP_ACT_ALLOW"),
                                      Syscall(names: ["write"], action: "ALLOW")]
        assertOnlyProblem(s, "linux.seccomp.syscalls[1].action", "\"ALLOW\"")
        s.linux!.seccomp!.syscalls = [Syscall(names: [], action: "SCMP_ACT_ALLOW")]
        assertOnlyProblem(s, "linux.seccomp.syscalls[0].names")
    }

    func testBadDeviceCgroupAccess() {
        var s = base
        XCTAssertEqual(s.linux?.resources?.devices?.count, 1)
        s.linux!.resources!.devices![0].access = "rwx"
        assertOnlyProblem(s, "linux.resources.devices[0].access", "rwx")
        s.linux!.resources!.devices![0].access = ""
        assertOnlyProblem(s, "linux.resources.devices[0].access")
        s.linux!.resources!.devices![0].access = "mr"
        XCTAssertEqual(paths(s), [])
        s.linux!.resources!.devices!.append(DeviceCgroup(allow: true, type: "x", access: "r"))
        assertOnlyProblem(s, "linux.resources.devices[1].type")
    }

    func testOtherChecks() {
        var s = base
        s.ociVersion = "2.0.0"
        assertOnlyProblem(s, "ociVersion", "not supported")
        s.ociVersion = "latest"
        assertOnlyProblem(s, "ociVersion")
        s.ociVersion = "1.0.2-dev"
        XCTAssertEqual(paths(s), [])

        s = base
        s.process!.env!.append("NOEQUALS")
        s.process!.env!.append("=x")
        XCTAssertEqual(paths(s), ["process.env[2]", "process.env[3]"])

        s = base
        s.process!.capabilities!.effective![1] = "KILL"
        assertOnlyProblem(s, "process.capabilities.effective[1]", "CAP_")

        s = base
        s.process!.oomScoreAdj = 1001
        assertOnlyProblem(s, "process.oomScoreAdj")
        s.process!.oomScoreAdj = -1000
        XCTAssertEqual(paths(s), [])

        s = base
        s.linux!.maskedPaths!.append("proc/kcore")
        assertOnlyProblem(s, "linux.maskedPaths[\(s.linux!.maskedPaths!.count - 1)]")

        s = base
        s.linux!.rootfsPropagation = "private-ish"
        assertOnlyProblem(s, "linux.rootfsPropagation")

        s = base
        s.linux!.devices = [Device(type: "c", path: "/dev/null", major: 1, minor: 3), Device(type: "x", path: "/dev/y", major: 1, minor: 1)]
        assertOnlyProblem(s, "linux.devices[1].type")
        s.linux!.devices = [Device(type: "c", path: "/dev/null")]
        assertOnlyProblem(s, "linux.devices[0]", "major and minor")
        s.linux!.devices = [Device(type: "p", path: "/dev/fifo")]
        XCTAssertEqual(paths(s), [])

        s = base
        s.linux!.resources!.memory = Memory(limit: -2, reservation: -1, swap: 0)
        s.linux!.resources!.memory!.swappiness = 101
        XCTAssertEqual(paths(s), ["linux.resources.memory.limit", "linux.resources.memory.swappiness"])

        s = base
        s.linux!.resources!.cpu = CPU(quota: 500, period: 999)
        XCTAssertEqual(paths(s), ["linux.resources.cpu.period", "linux.resources.cpu.quota"])
        s.linux!.resources!.cpu = CPU(quota: -1, period: 100000)
        XCTAssertEqual(paths(s), [])

        s = base
        s.linux!.personality = Personality(domain: "LINUX64")
        assertOnlyProblem(s, "linux.personality.domain")
    }

    /// runtime-spec 1.3's process settings (ProcessSettings.swift in Spec).
    func testScheduler() {
        var s = base
        for (sched, path, fragment) in [
            (Scheduler(policy: "SCHED_BOGUS"), "process.scheduler.policy", "unknown policy \"SCHED_BOGUS\" (one of SCHED_OTHER"),
            (Scheduler(policy: "sched_other"), "process.scheduler.policy", "unknown policy"),
            (Scheduler(policy: "SCHED_OTHER", nice: 20), "process.scheduler.nice", "20 is outside -20...19"),
            (Scheduler(policy: "SCHED_BATCH", nice: -21), "process.scheduler.nice", "-21 is outside"),
            (Scheduler(policy: "SCHED_FIFO"), "process.scheduler.priority", "SCHED_FIFO needs a priority in 1...99, not 0"),
            (Scheduler(policy: "SCHED_RR", priority: 100), "process.scheduler.priority", "not 100"),
            (Scheduler(policy: "SCHED_OTHER", priority: 1), "process.scheduler.priority", "only SCHED_FIFO and SCHED_RR"),
            (Scheduler(policy: "SCHED_OTHER", flags: ["SCHED_FLAG_RECLAIM", "X"]), "process.scheduler.flags[1]", "unknown flag \"X\""),
            (Scheduler(policy: "SCHED_IDLE", period: 1), "process.scheduler", "only SCHED_DEADLINE takes runtime"),
            (Scheduler(policy: "SCHED_DEADLINE"), "process.scheduler.runtime", "at least 1024 ns, not 0"),
            (Scheduler(policy: "SCHED_DEADLINE", runtime: 2000, deadline: 1000), "process.scheduler.deadline", "at least the runtime"),
            (Scheduler(policy: "SCHED_DEADLINE", runtime: 2000, deadline: 3000, period: 2500), "process.scheduler.period", "at least the deadline"),
        ] {
            s.process!.scheduler = sched
            assertOnlyProblem(s, path, fragment)
        }
        for ok in [Scheduler(policy: "SCHED_OTHER", nice: -20), Scheduler(policy: "SCHED_FIFO", priority: 99),
                   Scheduler(policy: "SCHED_DEADLINE", runtime: 1024, deadline: 1024),
                   Scheduler(policy: "SCHED_DEADLINE", runtime: 1024, deadline: 2048, period: 4096),
                   Scheduler(policy: "SCHED_ISO"), Scheduler(policy: "SCHED_BATCH", flags: Scheduler.flags)] {
            s.process!.scheduler = ok
            XCTAssertEqual(problems(s), [], "\(ok)")
        }
        XCTAssertEqual(Scheduler(policy: "SCHED_DEADLINE").policyNumber, 6)
        XCTAssertEqual(Scheduler(policy: "SCHED_OTHER", flags: ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX"]).flagBits, 0x41)
    }

    func testIOPriorityAndAffinity() {
        var s = base
        s.process!.ioPriority = IOPriority(class: "IOPRIO_CLASS_RT", priority: 8)
        assertOnlyProblem(s, "process.ioPriority.priority", "8 is outside 0...7")
        s.process!.ioPriority = IOPriority(class: "IOPRIO_CLASS_RT", priority: -1)
        assertOnlyProblem(s, "process.ioPriority.priority", "-1 is outside 0...7")
        s.process!.ioPriority = IOPriority(class: "BE", priority: 0)
        assertOnlyProblem(s, "process.ioPriority.class", "unknown class \"BE\"")
        s.process!.ioPriority = IOPriority(class: "IOPRIO_CLASS_IDLE", priority: 7)
        XCTAssertEqual(problems(s), [])
        XCTAssertEqual(s.process!.ioPriority!.value, 3 << 13 | 7)

        s = base
        for (text, path, fragment) in [("1-0", "process.execCPUAffinity.final", "range \"1-0\" in \"1-0\" runs backwards"),
                                       ("0,x", "process.execCPUAffinity.final", "\"x\" in \"0,x\" is not a number or a range"),
                                       ("0-", "process.execCPUAffinity.final", "is not a number"),
                                       ("-1", "process.execCPUAffinity.final", "is not a number"),
                                       ("1-2-3", "process.execCPUAffinity.final", "is not a number"),
                                       ("65536", "process.execCPUAffinity.final", "65536 in \"65536\" is above 65535"),
                                       (" , ", "process.execCPUAffinity.final", "names no CPU")] {
            s.process!.execCPUAffinity = CPUAffinity(final: text)
            assertOnlyProblem(s, path, fragment)
        }
        s.process!.execCPUAffinity = CPUAffinity(initial: "0x1", final: "")
        assertOnlyProblem(s, "process.execCPUAffinity.initial")
        for ok in ["0", "0-3,7", " 0 , 2-3 ,", "3,1,1-2", "65535"] {
            s.process!.execCPUAffinity = CPUAffinity(initial: ok, final: ok)
            XCTAssertEqual(problems(s), [], ok)
        }
        XCTAssertEqual(try IDList.parse(" 3,1,1-2 ,,7").get(), [1, 2, 3, 7])
        XCTAssertEqual(IDList.mask([0, 2, 64, 130]), [0b101, 1, 4])
        // Also exec's process alone (at: ""), as Runtime.exec checks it.
        var p = base.process!
        p.scheduler = Scheduler(policy: "SCHED_RR")
        XCTAssertEqual(p.settingsProblems(at: "process").map { $0.path }, ["process.scheduler.priority"])
    }

    func testMemoryPolicyAndPersonality() {
        var s = base
        for (mp, path, fragment) in [
            (MemoryPolicy(mode: "MPOL_SOMETIMES"), "linux.memoryPolicy.mode", "unknown mode \"MPOL_SOMETIMES\" (one of MPOL_DEFAULT"),
            (MemoryPolicy(mode: "MPOL_DEFAULT", nodes: "0"), "linux.memoryPolicy.nodes", "MPOL_DEFAULT takes no nodes, not \"0\""),
            (MemoryPolicy(mode: "MPOL_LOCAL", nodes: "0-1"), "linux.memoryPolicy.nodes", "MPOL_LOCAL takes no nodes"),
            (MemoryPolicy(mode: "MPOL_LOCAL", flags: ["MPOL_F_STATIC_NODES"]), "linux.memoryPolicy.flags", "takes no nodes, so no MPOL_F_STATIC_NODES"),
            (MemoryPolicy(mode: "MPOL_BIND"), "linux.memoryPolicy.nodes", "MPOL_BIND needs at least one node"),
            (MemoryPolicy(mode: "MPOL_INTERLEAVE", nodes: ","), "linux.memoryPolicy.nodes", "needs at least one node"),
            (MemoryPolicy(mode: "MPOL_BIND", nodes: "a"), "linux.memoryPolicy.nodes", "is not a number"),
            (MemoryPolicy(mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_X"]), "linux.memoryPolicy.flags[0]", "unknown flag \"MPOL_F_X\""),
            (MemoryPolicy(mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]),
             "linux.memoryPolicy.flags", "exclude each other"),
            (MemoryPolicy(mode: "MPOL_INTERLEAVE", nodes: "0", flags: ["MPOL_F_NUMA_BALANCING"]),
             "linux.memoryPolicy.flags", "MPOL_F_NUMA_BALANCING needs MPOL_BIND or MPOL_PREFERRED_MANY"),
        ] {
            s.linux!.memoryPolicy = mp
            assertOnlyProblem(s, path, fragment)
        }
        for ok in [MemoryPolicy(mode: "MPOL_DEFAULT"), MemoryPolicy(mode: "MPOL_LOCAL", nodes: ""), MemoryPolicy(mode: "MPOL_PREFERRED"),
                   MemoryPolicy(mode: "MPOL_PREFERRED", nodes: "0"), MemoryPolicy(mode: "MPOL_WEIGHTED_INTERLEAVE", nodes: "0-1"),
                   MemoryPolicy(mode: "MPOL_BIND", nodes: "0", flags: ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES"])] {
            s.linux!.memoryPolicy = ok
            XCTAssertEqual(problems(s), [], "\(ok)")
        }
        XCTAssertEqual(MemoryPolicy(mode: "MPOL_BIND", flags: ["MPOL_F_STATIC_NODES"]).modeWithFlags, 2 | 1 << 15)
        XCTAssertEqual(MemoryPolicy(mode: "MPOL_WEIGHTED_INTERLEAVE").modeWithFlags, 6)

        s = base
        s.linux!.personality = Personality(domain: "LINUX", flags: ["ADDR_NO_RANDOMIZE"])
        assertOnlyProblem(s, "linux.personality.flags[0]", "unsupported flag \"ADDR_NO_RANDOMIZE\"")
        s.linux!.personality = Personality(domain: "LINUX32", flags: [])
        XCTAssertEqual(problems(s), [])
        XCTAssertEqual(s.linux!.personality!.value, 8)
    }

    func testProblemsInDocumentOrder() {
        var s = base
        s.process!.cwd = "rel"
        s.mounts![0].destination = "proc"
        s.linux!.seccomp = Seccomp(defaultAction: "bad")
        s.process!.args = []
        XCTAssertEqual(paths(s, exists: false),
                       ["process.args", "process.cwd", "root.path", "mounts[0].destination", "linux.seccomp.defaultAction"])
    }

    func testSpecErrorDescription() {
        XCTAssertEqual(SpecError("process.cwd", "must be absolute").description, "process.cwd: must be absolute")
        XCTAssertEqual(SpecError("", "whole thing").description, "whole thing")
    }
}

// MARK: - Signals

final class SignalTests: XCTestCase {
    func testNames() {
        XCTAssertEqual(Signal.parse("TERM"), 15)
        XCTAssertEqual(Signal.parse("SIGTERM"), 15)
        XCTAssertEqual(Signal.parse("term"), 15)
        XCTAssertEqual(Signal.parse("sigkill"), 9)
        XCTAssertEqual(Signal.parse("KILL"), 9)
        XCTAssertEqual(Signal.parse("HUP"), 1)
        XCTAssertEqual(Signal.parse("SIGWINCH"), 28)
        XCTAssertEqual(Signal.parse("IOT"), 6)
        XCTAssertEqual(Signal.parse("CHLD"), 17)
    }

    func testNumbers() {
        XCTAssertEqual(Signal.parse("9"), 9)
        XCTAssertEqual(Signal.parse("1"), 1)
        XCTAssertEqual(Signal.parse("64"), 64)
        XCTAssertEqual(Signal.parse("34"), 34)
    }

    func testRealtime() {
        XCTAssertEqual(Signal.parse("RTMIN"), 34)
        XCTAssertEqual(Signal.parse("RTMIN+2"), 36)
        XCTAssertEqual(Signal.parse("SIGRTMIN+2"), 36)
        XCTAssertEqual(Signal.parse("rtmin+30"), 64)
        XCTAssertEqual(Signal.parse("RTMAX"), 64)
        XCTAssertEqual(Signal.parse("SIGRTMAX"), 64)
        XCTAssertEqual(Signal.parse("RTMAX-2"), 62)
        XCTAssertEqual(Signal.parse("RTMAX-30"), 34)
        XCTAssertNil(Signal.parse("RTMIN+31"))
        XCTAssertNil(Signal.parse("RTMIN-1"))
        XCTAssertNil(Signal.parse("RTMAX+1"))
        XCTAssertNil(Signal.parse("RTMAX-31"))
        XCTAssertNil(Signal.parse("RTMIN+"))
        XCTAssertNil(Signal.parse("RTMINX"))
    }

    func testRejects() {
        XCTAssertNil(Signal.parse("NOPE"))
        XCTAssertNil(Signal.parse("0"))
        XCTAssertNil(Signal.parse("65"))
        XCTAssertNil(Signal.parse("SIG"))
        XCTAssertNil(Signal.parse(""))
        XCTAssertNil(Signal.parse("-9"))
        XCTAssertNil(Signal.parse("SIGSIGTERM"))
        XCTAssertNil(Signal.parse(" TERM"))
        XCTAssertNil(Signal.parse("99999999999"))
    }

    func testName() {
        XCTAssertEqual(Signal.name(15), "TERM")
        XCTAssertEqual(Signal.name(9), "KILL")
        XCTAssertNil(Signal.name(40))
        // Every listed name parses back to its number.
        for (name, n) in Signal.names {
            XCTAssertEqual(Signal.parse(name), n, name)
            XCTAssertEqual(Signal.parse("SIG" + name.lowercased()), n, name)
        }
    }
}

// MARK: - Default spec

final class DefaultSpecTests: XCTestCase {
    func testRootlessDefault() {
        let s = Spec.defaultSpec(rootless: true, uid: 1000, gid: 1000)
        let types = s.linux?.namespaces?.map { $0.type } ?? []
        XCTAssertTrue(types.contains("user"), "\(types)")
        XCTAssertFalse(types.contains("network"), "\(types)")
        XCTAssertTrue(types.contains("uts"), "hostname needs uts: \(types)")
        XCTAssertEqual(s.linux?.uidMappings, [IDMapping(containerID: 0, hostID: 1000, size: 1)])
        XCTAssertEqual(s.linux?.gidMappings, [IDMapping(containerID: 0, hostID: 1000, size: 1)])
        XCTAssertNil(s.linux?.resources, "no cgroup device rules rootless")
        let dests = s.mounts?.map { $0.destination } ?? []
        XCTAssertFalse(dests.contains("/sys/fs/cgroup"))
        XCTAssertEqual(s.mounts?.first { $0.destination == "/sys" }?.options?.first, "rbind")
        XCTAssertFalse(s.mounts?.first { $0.destination == "/dev/pts" }?.options?.contains("gid=5") ?? true)
        XCTAssertEqual(s.process?.user.uid, 0)
        XCTAssertEqual(s.problems(bundle: "/b", exists: { _ in true }), [])
    }

    func testRootlessUidAndGidKeptApart() {
        let s = Spec.defaultSpec(rootless: true, uid: 1000, gid: 2000)
        XCTAssertEqual(s.linux?.uidMappings?.first?.hostID, 1000)
        XCTAssertEqual(s.linux?.gidMappings?.first?.hostID, 2000)
        XCTAssertEqual(s.linux?.uidMappings?.first?.containerID, 0)
    }

    func testRootfulDefault() {
        let s = Spec.defaultSpec()
        let types = s.linux?.namespaces?.map { $0.type } ?? []
        XCTAssertEqual(Set(types), ["pid", "network", "ipc", "uts", "mount", "cgroup"])
        XCTAssertNil(s.linux?.uidMappings)
        XCTAssertNil(s.linux?.gidMappings)
        XCTAssertEqual(s.linux?.resources?.devices, [DeviceCgroup(allow: false, access: "rwm")])
        XCTAssertEqual(s.ociVersion, Spec.version)
        XCTAssertEqual(s.root, Root(path: "rootfs", readonly: true))
        XCTAssertEqual(s.process?.args, ["sh"])
        XCTAssertEqual(s.process?.cwd, "/")
        XCTAssertEqual(s.process?.terminal, true)
        XCTAssertEqual(s.process?.env?.first, "PATH=" + Spec.defaultPath)
        XCTAssertEqual(s.mounts?.map { $0.destination },
                       ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"])
        XCTAssertTrue(s.mounts?.first { $0.destination == "/dev/pts" }?.options?.contains("gid=5") ?? false)
    }
}
