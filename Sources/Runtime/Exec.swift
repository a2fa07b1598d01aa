import Cgroups
import CShim
import Glibc
import JSON
import Privileges
import Spec
import Sys

// `exec`: run another process in a running container. The runtime joins the
// container's pid namespace for its children, clones a child that joins the
// other namespaces (user first, mount last) once the runtime has put it in
// the container's cgroup, and which then gets the same treatment as the init
// (rlimits, user, capabilities, no_new_privs, seccomp, closed fds) before
// execve. Success is the channel closing on exec (it is close-on-exec).

public struct ExecOptions {
    public var id: String
    public var process: Process
    public var consoleSocket: String?
    public var detach = false
    public var pidFile: String?
    public var preserveFds = 0
    public init(id: String, process: Process) { self.id = id; self.process = process }
}

extension Runtime {
    /// The container's own process settings, for exec to start from.
    public func baseProcess(_ id: String) throws -> Process {
        try Store.validate(id: id)
        let r = try store.load(id)
        guard let p = try spec(of: r).process else { throw fail("the container's config has no process") }
        return p
    }

    /// Returns the process's exit code, or 0 once it started with `detach`.
    public func exec(_ o: ExecOptions) throws -> Int32 {
        try Store.validate(id: o.id)
        try checkProcessConfinement(o.process)
        let (r, spec, pid) = try withLockedRecord(o.id)
        var process = Privileges.grantable(o.process, warn: Log.warn)
        guard !(process.args ?? []).isEmpty else { throw fail("exec needs a command") }
        // As runc: the container's scheduler, I/O priority and exec CPU
        // affinity unless the process has its own (exec --process).
        process.scheduler = process.scheduler ?? spec.process?.scheduler
        process.ioPriority = process.ioPriority ?? spec.process?.ioPriority
        process.execCPUAffinity = process.execCPUAffinity ?? spec.process?.execCPUAffinity
        if let p = process.settingsProblems(at: "process").first { throw fail("\(p)", .invalid) }
        if process.terminal == true && o.consoleSocket == nil && o.detach {
            throw fail("exec --tty --detach needs --console-socket")
        }

        // Namespace files of the init, opened while we know it is alive.
        var joins: [(NamespaceKind, Int32)] = []
        var pidNS: Int32 = -1
        defer {
            for (_, fd) in joins { close(fd) }
            if pidNS >= 0 { close(pidNS) }
        }
        for ns in spec.linux?.namespaces ?? [] {
            let kind = try NamespaceKind.of(ns)
            let path = "/proc/\(pid)/ns/\(kind.procName)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(path)") }
            if kind == .pid { pidNS = fd } else { joins.append((kind, fd)) }
        }
        joins.sort { $0.0.joinRank < $1.0.joinRank }
        guard Proc.alive(pid, startTime: r.startTime) else { throw fail("container \(o.id) is not running") }
        // Rootless: we hold no capability over the container's namespaces
        // but through its user namespace (ours to enter: we made it), so we
        // enter it first; our ids are its root's, the child inherits both.
        if let i = joins.firstIndex(where: { $0.0 == .user }), !UserNamespaceMaps.privileged {
            guard mc_setns(joins[i].1, NamespaceKind.user.nstype) == 0 else { throw SysError("join user namespace") }
            close(joins[i].1)
            joins.remove(at: i)
        }
        // Our children are born in the container's pid namespace from here
        // on: the exec'd child is the only one we fork (create, which forks
        // host-side hooks, returns to its own after the clone).
        if pidNS >= 0 {
            guard mc_setns(pidNS, NamespaceKind.pid.nstype) == 0 else { throw SysError("join pid namespace") }
        }

        // Placed as the init is (Placement.swift): born in the cgroup2
        // cgroup, moving itself into the v1 ones.
        let cgroup = makeManager(host: try CgroupHost.detect(), savedPaths: r.cgroups)
        let placement = try cgroup.openPlacement()
        defer { placement.close() }
        let (parentEnd, childEnd) = try Channel.pair()
        defer { parentEnd.close() }
        if !o.detach { Kernel.becomeChildSubreaper() }
        // The child is in the container's pid namespace from its first
        // instruction: it must be non-dumpable from then (no ptrace, no
        // /proc/PID/mem or fd from the container), so we are before clone.
        makeNonDumpable()
        // execCPUAffinity.initial: ours while we clone, for the child to inherit.
        let ownAffinity = try setInitialExecAffinity(process)
        let (child, bornPlaced) = clonePlaced(0, placement)
        if child < 0 { restoreAffinity(ownAffinity); throw SysError("clone") }
        if child == 0 {
            parentEnd.close()
            execChild(process: process, linux: spec.linux, wantSeccomp: spec.linux?.seccomp != nil, joins: joins,
                      preserveFds: o.preserveFds, placement: placement, channel: childEnd)
        }
        restoreAffinity(ownAffinity)
        childEnd.close()
        if !o.detach { forwardSignals(to: child) }
        do {
            // Compiled while the child places itself; sent before go.
            let seccomp = try compiledSeccomp(spec, store: store)
            try awaitPlaced(child, cgroup: cgroup, placement: placement, bornPlaced: bornPlaced, channel: parentEnd,
                            what: "the exec'd process")
            if let s = seccomp { try parentEnd.send(.seccomp(flags: s.flags, program: s.instructions)) }
            try parentEnd.send(.go(state: ""))
            let terminal = try awaitStarted(parentEnd, untilReady: false,
                                            terminal: process.terminal != true ? nil : o.consoleSocket.map { .socket($0) } ?? .keep)
            if let pf = o.pidFile { try FS.writeAtomically(FS.absolute(pf), "\(child)") }
            if o.detach { return 0 }
            let code = waitFor(pid: child, terminal: terminal)
            if let t = terminal { close(t) }
            return code
        } catch {
            Glibc.kill(child, SIGKILL)
            var s: Int32 = 0
            waitpid(child, &s, 0)
            throw error
        }
    }

    /// The record, spec and init pid of a running container, read under its lock.
    func withLockedRecord(_ id: String) throws -> (Record, Spec, Int32) {
        let lock = try store.lock(id)
        defer { lock.unlock() }
        let r = try store.load(id)
        let st = store.status(r)
        guard st.canExec else { throw fail("cannot exec in a container that is \(st)", .state) }
        return (r, try spec(of: r), r.pid)
    }
}

/// The exec'd process, after clone. Never returns.
func execChild(process: Process, linux: Linux?, wantSeccomp: Bool, joins: [(NamespaceKind, Int32)],
               preserveFds: Int, placement: Placement, channel: Channel) -> Never {
    var stage = "start"
    do {
        // Non-dumpable since birth (the runtime cleared it before clone):
        // nobody in the container may read our memory or open our fds.
        // The caller's fds go first (CVE-2024-21626: exec --cwd /proc/self/fd/N).
        try closeInheritedFds(preserveFds: preserveFds, own: [channel.fd] + joins.map { $0.1 } + placement.fds)
        try placeSelf(placement, channel: channel)
        guard let (_, seccomp, idmapped) = try channel.receiveGo(wantSeccomp: wantSeccomp) else { _exit(1) }
        if !idmapped.isEmpty { throw fail("the runtime sent idmapped mounts to an exec'd process") }
        stage = "join namespaces"
        for (kind, fd) in joins {
            guard mc_setns(fd, 0) == 0 else { throw SysError("join \(kind) namespace") }
            close(fd)
            if kind == .user {
                guard mc_setresgid(0, 0, 0) == 0, mc_setresuid(0, 0, 0) == 0 else { throw SysError("become root in the user namespace") }
            }
        }
        let path = try prepareProcess(process, channel: channel, stage: &stage)
        // HOME from the container's /etc/passwd, as the init's (we are in its mount namespace and root).
        let env = withHome(process.env ?? [], uid: process.user.uid)
        // In the cgroup and the namespaces, still privileged (ProcessSettings.swift).
        try applyProcessSettings(process, linux: linux, execFinalAffinity: true, stage: &stage)
        stage = "drop privileges"
        try dropPrivileges(process, seccomp: seccomp)
        var keep = Set((0..<Int32(3 + preserveFds)).map { $0 })
        keep.insert(channel.fd)
        try Privileges.closeFds(keep: keep)
        stage = "exec"
        let argv = process.args!.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        Proc.resetSignals()  // as the init's (Init.swift)
        execve(path, argv, envp)
        throw SysError("exec \(path)")
    } catch {
        _ = try? channel.send(.error(InitFailure(stage: stage, error)))
        _exit(1)
    }
}
