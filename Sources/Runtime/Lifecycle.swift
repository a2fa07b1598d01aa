import Cgroups
import CShim
import Glibc
import JSON
import Spec
import SpecJSON
import Sys

// start, kill, delete, pause, resume and the queries, each under the
// container's lock, each deciding from the status the kernel shows.

public struct Runtime {
    public let store: Store
    /// What create connects a new network namespace with (NetworkDriver.swift).
    public let network: NetworkDriver
    /// The parent cgroup that delete removes with its last container
    /// (Locations.cgroupParent: run mode's, as Docker's /docker).
    let sharedCgroupParent: String
    /// Rootless (Locations.rootless): cgroups only where delegated, id
    /// mappings through newuidmap/newgidmap.
    public let rootless: Bool

    public init(locations: Locations, network: NetworkDriver) {
        store = Store(root: locations.root)
        self.network = network
        sharedCgroupParent = locations.cgroupParent
        rootless = locations.rootless
    }

    public init(root: String, network: NetworkDriver) { self.init(locations: Locations(root: root), network: network) }

    func manager(_ r: Record) throws -> CgroupManager {
        makeManager(host: try CgroupHost.detect(), savedPaths: r.cgroups)
    }

    /// The config.json the container was created from: the copy create
    /// kept, never the bundle's (which may have been edited since).
    func spec(of r: Record) throws -> Spec {
        let path = store.configPath(r.id)
        let bytes: [UInt8]
        do { bytes = try FS.readBytes(path) } catch {
            throw fail("cannot read the container's config (\(path)): \(error)")
        }
        return try Bundle.decode(bytes, file: path)
    }

    /// Runs `body` with the container's record and status, under its lock.
    func withContainer<T>(_ id: String, _ body: (Record, ContainerStatus) throws -> T) throws -> T {
        try Store.validate(id: id)
        let lock = try store.lock(id)
        defer { lock.unlock() }
        let r = try store.load(id)
        return try body(r, store.status(r))
    }

    // MARK: start

    public func start(_ id: String) throws {
        try withContainer(id) { r, st in
            guard st.canStart else {
                throw fail(st == .stopped ? "cannot start a container that has stopped" : "cannot start a container that is \(st)", .state)
            }
            let hooks = r.postHooks == true ? try spec(of: r).hooks?.poststart : nil
            try releaseInit(r)
            HookRunner.runWarning(hooks, kind: "poststart", state: store.state(r, status: .running).hookJSON())
        }
    }

    /// Opens exec.fifo for reading, which lets the blocked init go on, and
    /// reads its byte; then removes the fifo and waits for the init's execve.
    func releaseInit(_ r: Record) throws {
        let path = store.fifoPath(r.id)
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n == 1 { break }
            if n < 0 && errno != EAGAIN && errno != EINTR { throw SysError("read \(path)") }
            guard Proc.alive(r.pid, startTime: r.startTime) else {
                // It may have written its byte, and exited, since the read.
                if read(fd, &byte, 1) == 1 { break }
                unlink(path)
                throw fail("the container's init exited before start")
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
        }
        unlink(path)
        // The init keeps its end open until its execve (Init.swift): the
        // fifo's end means the container's process is executing (or the
        // init is gone), so poststart hooks run after it, as the spec says.
        while true {
            let n = read(fd, &byte, 1)
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { break }
            guard Proc.alive(r.pid, startTime: r.startTime) else { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
        }
    }

    // MARK: kill

    public func kill(_ id: String, signal: Int32, all: Bool) throws {
        try withContainer(id) { r, st in
            if all {
                guard st.isLive || !((try? manager(r).procs()) ?? []).isEmpty else { throw fail("container not running", .state) }
                if r.cgroups.isEmpty {
                    // No cgroup of its own (rootless, none delegated): its pid namespace's members.
                    for p in members(r) where p != r.pid { _ = Glibc.kill(p, signal) }
                    if st.isLive { _ = Glibc.kill(r.pid, signal) }
                    return
                }
                try manager(r).kill(signal: signal)
                return
            }
            guard st.canKill else { throw fail("container not running", .state) }
            guard Glibc.kill(r.pid, signal) == 0 else { throw SysError("kill \(r.pid)") }
        }
    }

    // MARK: delete

    public func delete(_ id: String, force: Bool) throws {
        try Store.validate(id: id)
        let lock = try store.lock(id)
        defer { lock.unlock() }
        guard let r = try? store.load(id) else {
            // A create that died before writing its state: only remove.
            guard force else { throw fail("container \(id) has no state (it may be being created); use delete --force") }
            try? network.tearDown(id: id)
            try FS.removeTree(store.dir(id))
            return
        }
        let st = store.status(r)
        switch st {
        case .stopped:
            // A create killed midway: its init (if it got that far) may
            // still be in the cgroup, which is the container's own.
            if r.creating == true { try stopAll(r) }
        case .created, .creating:
            try stopAll(r)
        case .running, .paused:
            guard force else { throw fail("cannot delete container \(id) that is not stopped: \(st)", .state) }
            try stopAll(r)
        }
        try destroy(r)
    }

    /// Kills every process of the container and waits for the init to go.
    func stopAll(_ r: Record) throws {
        let cg = try? manager(r)
        if let cg = cg, cg.isFrozen() { try? cg.thaw() }
        try? cg?.kill(signal: SIGKILL)
        // pid 0: recorded before the init existed (never kill(0, ...)).
        if r.pid > 0 { _ = Glibc.kill(r.pid, SIGKILL) }
        if r.pid > 0 && !Proc.waitGone(r.pid, startTime: r.startTime, timeoutMs: 10_000) {
            throw fail("the container's init \(r.pid) did not die after SIGKILL")
        }
        Proc.reapIfOurs(r.pid, startTime: r.startTime)
        // Without a pid namespace of its own, other processes may remain.
        for _ in 0..<200 {
            guard let left = try? cg?.procs(), !left.isEmpty else { break }
            for p in left { _ = Glibc.kill(p, SIGKILL) }
            usleep(5000)
        }
    }

    /// Removes the cgroup and the state, then runs poststop hooks (their
    /// failures are warnings).
    func destroy(_ r: Record) throws {
        let cg = try manager(r)
        do { try cg.destroy() } catch { throw fail("remove cgroup: \(error)") }
        if let g = r.resctrl { Resctrl.remove(Resctrl.Group(record: g)) }
        // Run mode's shared parent (/minicontainer in each hierarchy) goes
        // with its last container; a busy or non-empty one stays.
        if r.cgroupsPath == sharedCgroupParent + "/" + r.id {
            for path in Set(r.cgroups.values) {
                let parent = Path.split(path).parent
                if Path.hasSlash(path), parent.utf8.reversed().starts(with: sharedCgroupParent.utf8.reversed()) {
                    _ = rmdir(parent)
                }
            }
        }
        // Only a config with such hooks is read again (a create killed before
        // it recorded them has none to run).
        let hooks = r.postHooks == true ? (try? spec(of: r))?.hooks?.poststop : nil
        // Leases and ports exist only for containers whose spec asked for a network.
        if r.network != nil || network.configures(r.annotations) {
            do { try network.tearDown(id: r.id) } catch { throw fail("network: \(error)") }
        }
        try FS.removeTree(store.dir(r.id))
        HookRunner.runWarning(hooks, kind: "poststop", state: store.state(r, status: .stopped).hookJSON())
    }

    // MARK: pause / resume

    public func pause(_ id: String) throws {
        try withContainer(id) { r, st in
            guard st.canPause else { throw fail("cannot pause a container that is \(st)", .state) }
            guard !r.cgroups.isEmpty else {
                throw fail("pause needs a freezer cgroup, and container \(id) has no cgroup of its own (rootless: none is delegated to you)", .state)
            }
            try manager(r).freeze()
        }
    }

    public func resume(_ id: String) throws {
        try withContainer(id) { r, st in
            guard st.canResume else { throw fail("cannot resume a container that is \(st)", .state) }
            try manager(r).thaw()
        }
    }

    // MARK: queries

    public func state(_ id: String) throws -> JSONValue {
        try Store.validate(id: id)
        guard store.exists(id) else { throw fail("container \(id) does not exist", .notFound) }
        return store.stateJSON(try store.load(id))
    }

    public func list() -> [JSONValue] {
        store.ids().compactMap { id in (try? store.load(id)).map { store.stateJSON($0) } }
    }

    public func processes(_ id: String) throws -> [Int32] {
        try Store.validate(id: id)
        let r = try store.load(id)
        guard store.status(r).isLive else { return [] }
        if r.cgroups.isEmpty { return members(r) }
        return try manager(r).procs().sorted()
    }

    /// The processes of a container without a cgroup (rootless, none
    /// delegated): those in its own pid namespace, else its init alone.
    func members(_ r: Record) -> [Int32] {
        guard Proc.alive(r.pid, startTime: r.startTime) else { return [] }
        var own = stat()
        guard r.namespaces?["pid"] == "/proc/\(r.pid)/ns/pid", stat("/proc/\(r.pid)/ns/pid", &own) == 0 else { return [r.pid] }
        var out: [Int32] = []
        for name in FS.listDirectory("/proc") {
            guard let p = Int32(name) else { continue }
            var st = stat()
            if stat("/proc/\(p)/ns/pid", &st) == 0 && st.st_ino == own.st_ino && st.st_dev == own.st_dev { out.append(p) }
        }
        return out.sorted()
    }
}
