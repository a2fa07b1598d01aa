import Cgroups
import CShim
import Glibc
import JSON
import Network
import Privileges
import Rootfs
import Spec
import Sys

// `create`: from this single-threaded process, make the cgroup with its
// limits, clone the init into the namespaces the spec asks for (it places
// itself, Placing.swift), map its ids, run the runtime-side hooks, and wait
// until it reports ready (blocked on exec.fifo).
// Any failure undoes everything: the init, its cgroup, the state directory.

public struct CreateOptions {
    public var id: String
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var preserveFds = 0
    /// For `run`: keep the pty master instead of sending it to a socket.
    public var keepTerminal = false
    /// The init's fds 0, 1 and 2 (RunOptions.output's pipes), else it inherits ours.
    public var stdio: [Int32]?
    /// --systemd-cgroup: where systemd runs, it is told the cgroup is a scope.
    public var systemdCgroup = false
    public init(id: String, bundle: String) { self.id = id; self.bundle = bundle }
}

public struct Created {
    public var record: Record
    public var spec: Spec
    /// The pty master, with `keepTerminal`.
    public var terminal: Int32?
}

extension Runtime {
    public func create(_ o: CreateOptions) throws -> Created {
        try createContainer(o, store: store, network: network, rootless: rootless)
    }
}

func createContainer(_ o: CreateOptions, store: Store, network: NetworkDriver, rootless: Bool = false) throws -> Created {
    try Store.validate(id: o.id)
    let bundle = try Bundle.load(o.bundle)
    var spec = bundle.spec
    let hostNamespaces = try checkSysctlNamespaces(spec)
    try checkHostSupport(spec, network: network)
    guard let process = spec.process.map({ Privileges.grantable($0, warn: Log.warn) }) else {
        throw fail("config.json has no process to run")
    }
    spec.process = process
    guard let rootPath = spec.root?.path else { throw fail("config.json has no root") }
    let rootOverlay = try RootOverlay.from(spec)
    let rootfs = Path.isAbsolute(rootPath) ? rootPath : o.bundle + "/" + rootPath
    var namespaces = spec.linux?.namespaces ?? []
    // --network container:X: join X's network namespace (issue 6).
    if let other = network.sharedContainer(spec.annotations), !namespaces.contains(where: { $0.type == "network" }) {
        guard let r = try? store.load(other), store.status(r).isLive, let path = r.namespaces?["network"] else {
            throw fail("--network container:\(other): no running container \(other)")
        }
        namespaces.append(Namespace(type: "network", path: path))
    }
    // Without a mount namespace the init shares ours and only chroots (see
    // Init.swift): no mount is ever made in, or left behind in, ours.
    if process.terminal == true && o.consoleSocket == nil && !o.keepTerminal {
        throw fail("process.terminal is set: --console-socket is required")
    }
    if o.consoleSocket != nil && process.terminal != true {
        throw fail("--console-socket was given but process.terminal is false")
    }

    // `run`: the exec stub, or the runtime re-executed from a protected
    // binary now, before anything is made (SealedExe.settle). Above the
    // fds the init keeps for the container.
    var execStub: Int32 = -1
    if let fd = try SealedExe.settle(for: spec) {
        execStub = fcntl(fd, F_DUPFD_CLOEXEC, Int32(3 + o.preserveFds))
        close(fd)
        guard execStub >= 0 else { throw SysError("exec stub") }
    }
    defer { if execStub >= 0 { close(execStub) } }

    try store.reserve(o.id)
    var cleanup = Cleanup(store: store, id: o.id, driver: network)
    do {
        let lock = try store.lock(o.id)
        defer { lock.unlock() }
        // The copy every command after this one reads (Bundle.swift).
        try FS.writeAtomically(store.configPath(o.id), bundle.config, mode: 0o600)
        // The init opens exec.fifo for writing after it has become the
        // container's user: mode 0622 whatever our umask, owned by the host
        // ids of the container's root (as runc does).
        let fifoPath = store.fifoPath(o.id)
        guard mkfifo(fifoPath, 0o622) == 0 else { throw SysError("mkfifo \(fifoPath)") }
        guard chmod(fifoPath, 0o622) == 0 else { throw SysError("chmod \(fifoPath)") }
        let rootUID = hostID(of: 0, in: spec.linux?.uidMappings), rootGID = hostID(of: 0, in: spec.linux?.gidMappings)
        if rootUID != 0 || rootGID != 0 {
            guard chown(fifoPath, rootUID, rootGID) == 0 else { throw SysError("chown \(fifoPath) to \(rootUID):\(rootGID)") }
        }

        // Clone flags for new namespaces; the cgroup namespace is unshared by
        // the init after it has been placed, so that its root is its own cgroup.
        var flags: UInt64 = 0
        var joins: [(NamespaceKind, String)] = []
        var pidNSFd: Int32 = -1
        // With linux.timeOffsets the init makes its time namespace itself:
        // one it was born in could no longer take offsets (TimeNamespace.swift).
        let timeOffsets = timensOffsetsText(spec.linux?.timeOffsets) == nil ? nil : spec.linux?.timeOffsets
        for ns in namespaces {
            let kind = try NamespaceKind.of(ns)
            if let path = ns.path {
                if kind == .pid {
                    pidNSFd = open(path, O_RDONLY | O_CLOEXEC)
                    guard pidNSFd >= 0 else { throw SysError("open pid namespace \(path)") }
                } else {
                    joins.append((kind, path))
                }
            } else if kind != .cgroup && !(kind == .time && timeOffsets != nil) {
                flags |= kind.cloneFlag
            }
        }
        // A user namespace joined by path with new namespaces beside it: the
        // init is cloned from inside it (OwnedNamespaces.swift), so that they
        // are that user namespace's; it is there from birth and joins it no more.
        let cloneInside = userNamespaceToCloneInside(namespaces)
        if cloneInside != nil { joins.removeAll { $0.0 == .user } }
        joins.sort { $0.0.joinRank < $1.0.joinRank }
        let newUserNS = namespaces.contains { $0.type == "user" && $0.path == nil }
        let unshareCgroup = namespaces.contains { $0.type == "cgroup" && $0.path == nil }

        // The cgroup exists before the init does.
        let cghost = try CgroupHost.detect()
        // Its device program is attached after the clone (below), while the init prefaults.
        let devicePrograms = DeferredDevicePrograms()
        let wanted = makeManager(host: cghost, cgroupsPath: spec.linux?.cgroupsPath, id: o.id,
                                 devicePrograms: devicePrograms)
        // Rootless: the hierarchies delegated to us only, and no limit
        // asked for without its controller (Cgroups/Delegation.swift).
        let cgroup = rootless ? delegatedPart(of: wanted) : wanted
        if rootless {
            try checkDelegated(spec.linux?.resources, delegated: cgroup, wanted: wanted)
            if !(spec.linux?.resources?.devices ?? []).isEmpty {
                Log.debugLine("rootless: linux.resources.devices left to the user namespace (no device cgroup)")
                spec.linux?.resources?.devices = nil
            }
        }
        // A cgroup that already holds processes is not the container's own:
        // kill --all, ps and delete --force walk the cgroup, and would reach
        // them (a host process in "cgroupsPath": "/shared"). runc 1.2 refuses it too.
        let squatters = (try? cgroup.procs()) ?? []
        if !squatters.isEmpty {
            throw fail("cgroup \(cgroup.paths.first ?? "") is not empty (\(squatters.count) process\(squatters.count == 1 ? "" : "es")): a container needs a cgroup of its own")
        }
        // Recorded before it is made: a runtime killed from here on leaves a
        // state that `delete --force` finds the cgroup (and the init) by.
        var record = Record(id: o.id, pid: 0, startTime: 0, bundle: o.bundle, rootfs: rootfs,
                            created: Log.timestamp(), owner: "", annotations: spec.annotations,
                            cgroups: cgroup.pathsByController, cgroupsPath: spec.linux?.cgroupsPath, namespaces: nil,
                            exitCode: nil, creating: true)
        try store.save(record)
        // A delete may remove the shared parent (/minicontainer) between our
        // mkdir of it and of our own directory: then make both again.
        for attempt in 1...3 {
            do {
                try cgroup.create()
                break
            } catch let e as SysError where e.errno == ENOENT && attempt < 3 {
                continue
            }
        }
        cleanup.cgroup = cgroup
        // Limits go on before the init exists: it never runs unlimited there.
        if let r = spec.linux?.resources { try cgroup.apply(resources: r) }
        // linux.intelRdt's group, made (checkHostSupport found resctrl) and
        // recorded before the init exists; its pid goes in once it is placed.
        var rdtGroup: Resctrl.Group?
        if let rdt = spec.linux?.intelRdt, let root = Resctrl.mountPoint() {
            let g = try Resctrl.prepare(rdt, id: o.id, root: root)
            rdtGroup = g
            cleanup.resctrl = g
            record.resctrl = g.record
            try store.save(record)
        }
        let placement = try cgroup.openPlacement()
        defer { placement.close() }

        // Only the init is born in a joined pid namespace. Everything forked
        // after it (the host-side hooks, newuidmap, network helpers: host
        // binaries) is born back in ours: there the container's processes
        // could see them, and one with CAP_SYS_PTRACE hold their
        // /proc/PID/exe and rewrite the host's file once they had exited.
        var ownPidNS: Int32 = -1
        func backToOwnPidNamespace() throws {
            guard ownPidNS >= 0 else { return }
            let r = mc_setns(ownPidNS, NamespaceKind.pid.nstype)
            close(ownPidNS)
            ownPidNS = -1
            guard r == 0 else { throw SysError("return to our own pid namespace") }
        }
        defer { try? backToOwnPidNamespace() }
        // (Cloned from inside a user namespace, the helper joins it: its
        // fork must stay in our pid namespace, so that the pid it reports is one.)
        if pidNSFd >= 0 && cloneInside == nil {
            ownPidNS = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)
            guard ownPidNS >= 0 else { throw SysError("open /proc/self/ns/pid") }
            guard mc_setns(pidNSFd, NamespaceKind.pid.nstype) == 0 else { throw SysError("join pid namespace") }
            close(pidNSFd)
        }
        defer { if pidNSFd >= 0 && cloneInside != nil { close(pidNSFd) } }

        let (parentEnd, childEnd) = try Channel.pair()
        defer { parentEnd.close() }
        let config = InitConfig(spec: spec, rootfs: rootfs, bundle: o.bundle, fifoPath: store.fifoPath(o.id),
                                noPivot: o.noPivot, preserveFds: o.preserveFds, joinPaths: joins,
                                unshareCgroup: unshareCgroup, newUserNS: newUserNS, lockFd: lock.fd,
                                placement: placement, hostNamespaces: hostNamespaces,
                                // In a new user namespace the unmapped init could not read our cache.
                                seccompCacheDir: newUserNS || cloneInside != nil || joins.contains { $0.0 == .user } ? nil : store.seccompCacheDir, stdio: o.stdio,
                                timeOffsets: timeOffsets, bornInUserNS: cloneInside != nil,
                                dumpableUntilMapped: rootless && newUserNS && !UserNamespaceMaps.privileged,
                                rootOverlay: rootOverlay,
                                cgroupMounts: flags & NamespaceKind.mount.cloneFlag != 0 && cloneInside == nil ? cghost.mounts : nil,
                                execStub: execStub)
        // Into its cgroup2 cgroup at birth; a kernel or cgroup that refuses
        // (before 5.7, a threaded or invalid domain) gets the pid written below.
        // Non-dumpable from its first instruction to its execve (which
        // resets it): the created init can't be ptraced, nor its memory,
        // exe or fds opened through /proc from inside the container.
        if !config.dumpableUntilMapped { makeNonDumpable() }
        let (pid, bornPlaced): (Int32, Bool)
        if let userPath = cloneInside {
            (pid, bornPlaced) = try clonePlacedInside(userNamespace: userPath, pidNamespace: pidNSFd, flags: flags, placement) {
                parentEnd.close()
                initMain(config, channel: childEnd)
            }
        } else {
            (pid, bornPlaced) = clonePlaced(flags, placement)
        }
        if pid < 0 { throw SysError("clone") }
        if pid == 0 {
            parentEnd.close()
            initMain(config, channel: childEnd)
        }
        childEnd.close()
        cleanup.pid = pid
        try backToOwnPidNamespace()
        guard let st = Proc.stat(pid) else { throw fail("init exited at once") }

        // The state (with `creating`, so that delete --force can undo us)
        // is written while the init prefaults.
        var nsPaths: [String: String] = [:]
        for ns in namespaces {
            nsPaths[ns.type] = try ns.path ?? "/proc/\(pid)/ns/\(NamespaceKind.of(ns).procName)"
        }
        record.pid = pid
        record.startTime = st.startTime
        record.namespaces = nsPaths
        if spec.hooks?.poststart?.isEmpty == false || spec.hooks?.poststop?.isEmpty == false { record.postHooks = true }
        try store.save(record)

        do {
            try devicePrograms.flush()
        } catch where cgroup.pathsByController["devices"] != nil {
            // Hybrid: the v1 devices controller applies the rules already.
            Log.warn("device rules: no device program (the v1 devices cgroup applies them): \(error)")
        }

        // The init first copies the pages it will write (Init.swift), then
        // places itself in the v1 hierarchies (Placement.swift).
        let initHasSeccomp = try awaitPlaced(pid, cgroup: cgroup, placement: placement, bornPlaced: bornPlaced, channel: parentEnd, what: "init")
        if o.systemdCgroup { tellSystemd(spec.linux?.cgroupsPath, pid: pid, id: o.id) }
        // linux.seccomp compiled here, on the host's side, when the init
        // found no compiled filter in the cache: it gets the bytes before go
        // and, in the container's root by then, only loads them.
        let seccomp = initHasSeccomp ? nil : try compiledSeccomp(spec, store: store)
        if let g = rdtGroup { try Resctrl.place(pid, in: g) }
        if newUserNS { try UserNamespaceMaps.write(pid: pid, uid: spec.linux?.uidMappings, gid: spec.linux?.gidMappings) }
        try sendIdmappedBinds(spec, bundle: o.bundle, namespaces: namespaces, pid: pid, channel: parentEnd)

        // linux.netDevices (Network/NetDevices.swift): moved in before the
        // hooks, which may want them. A socket in the namespace is kept until
        // create ends, so that a failure can move them back even if the init
        // has died (it keeps the namespace alive).
        if let devices = spec.linux?.netDevices, !devices.isEmpty {
            let nsPath = "/proc/\(pid)/ns/net"
            let nsFd = open(nsPath, O_RDONLY | O_CLOEXEC)
            guard nsFd >= 0 else { throw SysError("open \(nsPath)") }
            defer { close(nsFd) }
            let socket = try RouteSocket.inNamespace(ofPid: pid)
            cleanup.deviceSocket = socket
            try NetDevices.moveIn(devices, container: socket, nsFd: nsFd, moved: &cleanup.movedDevices)
        }

        // A bridged network (or lo alone) for a new network namespace
        // (issue 6), set up before the runtime-side hooks so that they see it.
        if network.configures(spec.annotations), namespaces.contains(where: { $0.type == "network" && $0.path == nil }) {
            cleanup.network = true
            record.network = try network.setUp(annotations: spec.annotations, id: o.id, pid: pid)
            try store.save(record)
        }

        // Hooks during create see "created", as crun gives them and the
        // conformance suite expects (runc says "creating").
        let state = store.state(record, status: .created).hookJSON()
        try HookRunner.runAll(spec.hooks?.prestart, kind: "prestart", state: state)
        try HookRunner.runAll(spec.hooks?.createRuntime, kind: "createRuntime", state: state)
        if let s = seccomp { try parentEnd.send(.seccomp(flags: s.flags, program: s.instructions)) }
        try parentEnd.send(.go(state: state))
        let terminal = try awaitStarted(parentEnd, untilReady: true,
                                        terminal: process.terminal != true ? nil : o.keepTerminal ? .keep : .socket(o.consoleSocket!))

        record.creating = nil
        try store.save(record)
        if let pf = o.pidFile { try FS.writeAtomically(FS.absolute(pf), "\(pid)") }
        cleanup.disarm()
        return Created(record: record, spec: spec, terminal: terminal)
    } catch {
        let e = cleanup.cgroup.map { explainedByMemoryLimit(error, cgroup: $0, limit: spec.linux?.resources?.memory?.limit) } ?? error
        cleanup.run()
        throw e
    }
}

/// --systemd-cgroup where systemd runs: the init's cgroup, made and entered
/// already, becomes a transient scope of systemd's (SystemdScope). A
/// systemd that refuses is a warning: the container runs in its cgroup all
/// the same, unknown to systemd, as without systemd.
func tellSystemd(_ cgroupsPath: String?, pid: Int32, id: String) {
    guard Features.systemdRunning() else { return }
    guard let (slice, unit) = SystemdScope.unit(cgroupsPath: cgroupsPath) else {
        Log.warn("--systemd-cgroup: cgroupsPath \(quoted(cgroupsPath ?? "")) is not \"slice:prefix:name\": systemd is not told about the container's cgroup")
        return
    }
    do {
        try SystemdScope.start(unit: unit, slice: slice, pid: pid, description: "minicontainer container \(id)")
    } catch {
        Log.warn("--systemd-cgroup: systemd did not take the container's cgroup as \(unit): \(error)")
    }
}

/// An init that died before it was ready in a cgroup whose OOM killer has
/// struck was killed by the memory limit: say so and name the limit (the
/// bare "exited before it was ready" sent users hunting elsewhere).
func explainedByMemoryLimit(_ error: Error, cgroup: CgroupManager, limit: Int64?) -> Error {
    guard let limit = limit, limit > 0, let kills = readOOMKills(cgroup), kills > 0 else { return error }
    return Failure(.failed, "the container's init was killed by its memory limit (\(limit) bytes, \(humanBytes(limit))) before it was ready: give it more memory")
}

/// 256 KiB, 1.5 MiB, 2 GiB.
func humanBytes(_ n: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    if i == 0 { return "\(n) bytes" }
    let r = (v * 10).rounded() / 10
    return (r == r.rounded() ? String(Int(r)) : String(r)) + " " + units[i]
}

/// Undoes a create that failed part way.
struct Cleanup {
    let store: Store
    let id: String
    let driver: NetworkDriver
    var pid: Int32 = 0
    var cgroup: CgroupManager?
    var network = false
    var resctrl: Resctrl.Group?
    /// linux.netDevices moved in so far, and a socket in their namespace.
    var movedDevices: [MovedDevice] = []
    var deviceSocket: RouteSocket?
    var armed = true

    mutating func disarm() { armed = false }

    func run() {
        guard armed else { return }
        // Before the init dies: the devices go back while we know where they are.
        if let s = deviceSocket { NetDevices.moveBack(movedDevices, container: s) }
        if pid > 0 {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
        }
        if let c = cgroup { try? c.destroy() }
        if let g = resctrl { Resctrl.remove(g) }
        if network { try? driver.tearDown(id: id) }
        try? FS.removeTree(store.dir(id))
    }
}

/// The host id that container id `id` maps to (itself without mappings).
func hostID(of id: UInt32, in mappings: [IDMapping]?) -> UInt32 {
    for m in mappings ?? [] where id >= m.containerID && UInt64(id) < UInt64(m.containerID) + UInt64(m.size) {
        return m.hostID + (id - m.containerID)
    }
    return id
}

/// The idmapped bind mounts of the spec, made here with the host's rights
/// once the init's ids are mapped (Rootfs/IDMap.swift), each passed to the
/// init, which attaches it. None without a mount namespace: the init then
/// mounts nothing. `idmap` alone takes the container's user namespace: the
/// init's new one (with the mappings we wrote), or the one it joins.
func sendIdmappedBinds(_ spec: Spec, bundle: String, namespaces: [Namespace], pid: Int32, channel: Channel) throws {
    guard let mnt = namespaces.first(where: { $0.type == "mount" }) else { return }
    let binds = Rootfs.idmappedBinds(mounts: spec.mounts ?? [], bundle: bundle)
    guard !binds.isEmpty else { return }
    let user = namespaces.first { $0.type == "user" }.map { ns in
        ns.path.map { ContainerUserNamespace(path: $0) }
            ?? ContainerUserNamespace(path: "/proc/\(pid)/ns/user", uidMappings: spec.linux?.uidMappings,
                                      gidMappings: spec.linux?.gidMappings)
    }
    let trees = try Rootfs.makeIdmappedBinds(binds, mountNamespace: mnt.path ?? "/proc/\(pid)/ns/mnt", userNamespace: user)
    defer { for t in trees { close(t.tree) } }
    for t in trees { try channel.send(.idmapped(index: t.index), fd: t.tree) }
}

/// Sends the pty master to the --console-socket, as runc does.
func sendConsole(_ master: Int32, name: String, socket path: String) throws {
    let s = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard s >= 0 else { throw SysError("socket") }
    defer { close(s) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw fail("console socket path too long: \(path)") }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard r == 0 else { throw SysError("connect to console socket \(path)") }
    let payload = Array(name.utf8)
    guard payload.withUnsafeBytes({ mc_send_fd(s, master, $0.baseAddress, $0.count) }) == 0 else {
        throw SysError("send terminal to \(path)")
    }
}
