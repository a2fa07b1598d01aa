import Glibc
import Spec
import Sys

// One interface over the container's cgroup, whatever the host's layout:
// V2Manager for a cgroup2 tree, V1Manager for v1 hierarchies (with a
// V2Manager inside for the hybrid unified tree). Both are rooted at whatever
// paths the host gives them, so unit tests run them over a temporary tree.

public protocol CgroupManager {
    /// Every directory the container's cgroup occupies: one per v1
    /// hierarchy, plus the cgroup2 one.
    var paths: [String] { get }
    /// The same, keyed as runc's state.json cgroup_paths: by controller on v1
    /// ("memory", "cpu", "cpuacct", "name=systemd"), "" for cgroup2. Save it
    /// in the container state and rebuild with `makeManager(host:savedPaths:)`,
    /// since a relative cgroupsPath depends on the caller's own cgroup.
    var pathsByController: [String: String] { get }
    /// The cgroup2 directory (pure v2, or hybrid's unified) for
    /// clone3(CLONE_INTO_CGROUP); nil without cgroup2. On hybrid that places
    /// the child in cgroup2 only: `add(pid:)` is still needed for v1.
    var unifiedPathForCloneIntoCgroup: String? { get }

    /// mkdir -p in every hierarchy; on v1 fills an empty cpuset.cpus/mems
    /// from the parent at each level. On failure removes what it made.
    func create() throws
    /// Writes `pid` into cgroup.procs in every hierarchy.
    func add(pid: Int32) throws
    /// What a new init needs to be placed cheaply (Placement.swift).
    func openPlacement() throws -> Placement
    /// Pids in the container's cgroup and the cgroups below it (union over
    /// hierarchies), sorted. Nothing when the cgroup does not exist.
    func procs() throws -> [Int32]
    /// v1: freezer.state FROZEN, waiting until the kernel says FROZEN.
    /// v2: cgroup.freeze 1, waiting for "frozen 1" in cgroup.events.
    func freeze() throws
    func thaw() throws
    func isFrozen() -> Bool
    /// v2 with SIGKILL: cgroup.kill when the kernel has it. Otherwise freeze
    /// (so nothing forks meanwhile), signal every pid, and thaw again: always
    /// after SIGKILL (a v1-frozen task dies only once thawed), else only if
    /// the cgroup was not frozen before.
    func kill(signal: Int32) throws
    /// rmdir every path and the cgroups below it; missing is fine; EBUSY is
    /// retried briefly, then reported with the pids still inside. Leaves the
    /// parents (the shared "/minicontainer") in place.
    func destroy() throws
    /// Writes the spec's resource limits (Resources.swift): pids, cpu,
    /// cpuset, memory, block IO, network, hugetlb, device rules (v1's
    /// devices controller, and the cgroup2 device program) and `unified`.
    /// A limit that cannot be written is an error.
    func apply(resources: Resources) throws
    /// The same for a live container (`update`): device rules given replace
    /// the ones it has, with no moment without them.
    func update(resources: Resources) throws
}

/// The manager for a container's cgroup on `host`. `root` stands in for
/// /sys/fs/cgroup: mount points below /sys/fs/cgroup are moved under it (so
/// a detected or parsed host can be pointed at a fake tree), and a v2 host
/// without a known mount point uses `root` itself.
/// `devicePrograms` stands in for the kernel's device programs.
public func makeManager(host: CgroupHost, cgroupsPath: String?, id: String,
                        root: String = "/sys/fs/cgroup",
                        devicePrograms: DevicePrograms = KernelDevicePrograms()) -> CgroupManager {
    let want = CgroupPath.requested(cgroupsPath, id: id)
    func unifiedPart(_ mount: String) -> V2Manager {
        let mp = rebase(mount, root: root)
        var m = V2Manager(mountPoint: mp, path: CgroupPath.directory(
            mountPoint: mp, mountRoot: host.unifiedMountRoot, ownCgroup: host.selfCgroups[""], requested: want))
        m.devicePrograms = devicePrograms
        return m
    }
    switch host.mode {
    case .v2:
        return unifiedPart(host.unified ?? root)
    case .v1, .hybrid:
        let dirs = host.hierarchies.map { h -> V1Manager.Dir in
            var hh = h
            hh.mountPoint = rebase(h.mountPoint, root: root)
            let own = h.controllers.lazy.compactMap { host.selfCgroups[$0] }.first
            return V1Manager.Dir(hierarchy: hh, path: CgroupPath.directory(
                mountPoint: hh.mountPoint, mountRoot: h.mountRoot, ownCgroup: own, requested: want))
        }
        let unified = host.mode == .hybrid ? host.unified.map(unifiedPart) : nil
        return V1Manager(dirs: dirs, unified: unified)
    }
}

/// The manager for cgroup paths saved from `pathsByController` (as runc
/// keeps them in state.json). Hierarchies with no saved path are left out;
/// a saved path outside its hierarchy's mount point is ignored.
public func makeManager(host: CgroupHost, savedPaths: [String: String]) -> CgroupManager {
    func v2(_ mount: String) -> V2Manager? {
        guard let p = savedPaths[""].map(Path.clean), p != mount, under(p, mount) else { return nil }
        return V2Manager(mountPoint: mount, path: p)
    }
    if host.mode == .v2 {
        // Nothing saved: a manager over no directories, whose calls do nothing.
        return v2(host.unified ?? "/sys/fs/cgroup") ?? V1Manager(dirs: [])
    }
    let dirs = host.hierarchies.compactMap { h -> V1Manager.Dir? in
        guard let p = h.controllers.lazy.compactMap({ savedPaths[$0] }).first.map(Path.clean),
              p != h.mountPoint, under(p, h.mountPoint) else { return nil }
        return V1Manager.Dir(hierarchy: h, path: p)
    }
    return V1Manager(dirs: dirs, unified: host.mode == .hybrid ? host.unified.flatMap(v2) : nil)
}

func rebase(_ mountPoint: String, root: String) -> String {
    let std = "/sys/fs/cgroup"
    guard root != std, under(mountPoint, std) else { return mountPoint }
    return CgroupPath.join(root, Path.dropPrefix(std, of: mountPoint) ?? "")
}

/// Freeze, signal, thaw: the pid walk shared by both managers.
func signalAll(_ m: CgroupManager, canFreeze: Bool, signal sig: Int32) throws {
    let wasFrozen = canFreeze && m.isFrozen()
    var froze = false
    if canFreeze && !wasFrozen { froze = (try? m.freeze()) != nil }
    var failure: Error?
    do { try Control.signal(m.procs(), sig) } catch { failure = error }
    if froze || (wasFrozen && sig == SIGKILL) {
        do { try m.thaw() } catch { failure = failure ?? error }
    }
    if let f = failure { throw f }
}

// MARK: - cgroup2

public struct V2Manager: CgroupManager {
    public let mountPoint: String
    /// The container's cgroup2 directory.
    public let path: String
    /// How long freeze() waits for cgroup.events to say "frozen 1".
    public var freezeTimeout: Double = 5
    /// How long destroy() retries an rmdir that fails with EBUSY.
    public var destroyRetry: Double = 1
    /// Where the device program goes (the kernel, or a fake in tests).
    public var devicePrograms: DevicePrograms = KernelDevicePrograms()

    public init(mountPoint: String, path: String) {
        self.mountPoint = mountPoint
        self.path = path
    }

    public var paths: [String] { [path] }
    public var pathsByController: [String: String] { ["": path] }
    public var unifiedPathForCloneIntoCgroup: String? { path }

    public func create() throws { _ = try createReturningMade() }

    func createReturningMade() throws -> [String] {
        try checkNotRoot(path, mountPoint)
        return try FS.makeDirectories(path)
    }

    public func add(pid: Int32) throws { try Control.write(path + "/cgroup.procs", String(pid), append: true) }

    public func procs() throws -> [Int32] { Array(Set(try Control.pids(in: path))).sorted() }

    public func freeze() throws {
        try Control.write(path + "/cgroup.freeze", "1")
        guard FS.exists(path + "/cgroup.events") else { return }
        let deadline = Clock.monotonicSeconds() + freezeTimeout
        while !eventsFrozen(true) {
            if Clock.monotonicSeconds() > deadline {
                try? Control.write(path + "/cgroup.freeze", "0")
                throw SysError("freeze \(path): cgroup.events not frozen after \(freezeTimeout)s", errno: ETIMEDOUT)
            }
            Control.sleep(seconds: 0.001)
        }
    }

    public func thaw() throws {
        try Control.write(path + "/cgroup.freeze", "0")
        guard FS.exists(path + "/cgroup.events") else { return }
        // Thawing is prompt, unless an ancestor is frozen: wait a little.
        let deadline = Clock.monotonicSeconds() + 1
        while !eventsFrozen(false) && Clock.monotonicSeconds() < deadline { Control.sleep(seconds: 0.001) }
    }

    public func isFrozen() -> Bool {
        if FS.exists(path + "/cgroup.events") { return eventsFrozen(true) }
        return Control.readTrimmed(path + "/cgroup.freeze") == "1"
    }

    func eventsFrozen(_ want: Bool) -> Bool {
        guard let ev = try? Control.read(path + "/cgroup.events") else { return false }
        return ev.split(separator: "\n").contains { Control.trim(String($0)) == (want ? "frozen 1" : "frozen 0") }
    }

    public func kill(signal sig: Int32) throws {
        if sig == SIGKILL && FS.exists(path + "/cgroup.kill") {
            try Control.write(path + "/cgroup.kill", "1")
            return
        }
        try signalAll(self, canFreeze: FS.exists(path + "/cgroup.freeze"), signal: sig)
    }

    public func destroy() throws { try destroy(deadline: Clock.monotonicSeconds() + destroyRetry) }

    func destroy(deadline: Double) throws {
        guard !path.isEmpty else { return }
        // The kernel frees the device program with the cgroup; detached first
        // all the same, so that a cgroup left behind (busy) holds none of ours.
        // Not a cgroup (a fake tree) or no bpf(2): nothing was attached.
        do { try devicePrograms.detachAll(from: path) } catch { Log.debugLine("destroy \(path): \(error)") }
        try Control.removeCgroup(path, mountPoint: mountPoint, deadline: deadline)
    }

    public func apply(resources: Resources) throws { try applyV2(resources) }
    public func update(resources: Resources) throws { try applyV2(resources) }

    /// "+c" into cgroup.subtree_control from the mount point down to the
    /// parent, so the leaf gets the controllers' files. Levels without the
    /// file (a fake tree) are skipped.
    func enableControllers(_ controllers: [String]) throws {
        var dir = mountPoint
        let rel = Path.components(Path.dropPrefix(mountPoint, of: path) ?? "")
        for comp in [""] + rel.dropLast() {
            if !comp.isEmpty { dir += "/" + comp }
            let file = dir + "/cgroup.subtree_control"
            guard FS.exists(file) else { continue }
            let on = Set((Control.readTrimmed(file) ?? "").split(separator: " ").map(String.init))
            for c in controllers where !on.contains(c) { try Control.write(file, "+" + c) }
        }
    }
}

func checkNotRoot(_ path: String, _ mountPoint: String) throws {
    guard !path.isEmpty, path != mountPoint, under(path, mountPoint) else {
        throw SysError("cgroup \(path.isEmpty ? "(none)" : path) is not below the hierarchy root \(mountPoint)", errno: EINVAL)
    }
}

// MARK: - cgroup v1 (and hybrid)

public struct V1Manager: CgroupManager {
    public struct Dir: Equatable {
        public var hierarchy: CgroupHierarchy
        public var path: String
        public init(hierarchy: CgroupHierarchy, path: String) { self.hierarchy = hierarchy; self.path = path }
    }

    public let dirs: [Dir]
    /// Hybrid hosts: the container's cgroup in the cgroup2 tree beside.
    public let unified: V2Manager?
    public var freezeTimeout: Double = 5
    /// How long destroy() retries, over all hierarchies, rmdirs failing EBUSY.
    public var destroyRetry: Double = 1

    public init(dirs: [Dir], unified: V2Manager? = nil) {
        self.dirs = dirs
        self.unified = unified
    }

    public var paths: [String] { dirs.map { $0.path } + (unified?.paths ?? []) }

    public var pathsByController: [String: String] {
        var out: [String: String] = [:]
        for d in dirs { for c in d.hierarchy.controllers { out[c] = d.path } }
        if let u = unified { out[""] = u.path }
        return out
    }

    public var unifiedPathForCloneIntoCgroup: String? { unified?.path }

    func dir(_ controller: String) -> String? { dirs.first { $0.hierarchy.has(controller) }?.path }

    public func create() throws {
        for d in dirs { try checkNotRoot(d.path, d.hierarchy.mountPoint) }
        var made: [String] = []
        do {
            for d in dirs {
                made += try FS.makeDirectories(d.path)
                if d.hierarchy.has("cpuset") { try fillCpuset(d) }
            }
            if let u = unified { made += try u.createReturningMade() }
        } catch {
            for m in made.reversed() { rmdir(m) }
            throw error
        }
    }

    /// A new v1 cpuset has empty cpus and mems, and then takes no tasks:
    /// copy the parent's down each level from the mount point.
    func fillCpuset(_ d: Dir) throws {
        var parent = d.hierarchy.mountPoint
        for comp in Path.components(Path.dropPrefix(parent, of: d.path) ?? "") {
            let cur = parent + "/" + comp
            for f in ["cpuset.cpus", "cpuset.mems"] where FS.exists(cur + "/" + f) {
                guard Control.readTrimmed(cur + "/" + f)?.isEmpty ?? false,
                      let up = Control.readTrimmed(parent + "/" + f), !up.isEmpty else { continue }
                try Control.write(cur + "/" + f, up)
            }
            parent = cur
        }
    }

    public func add(pid: Int32) throws {
        for d in dirs { try Control.write(d.path + "/cgroup.procs", String(pid), append: true) }
        try unified?.add(pid: pid)
    }

    public func procs() throws -> [Int32] {
        var all = Set<Int32>()
        for p in paths { all.formUnion(try Control.pids(in: p)) }
        return all.sorted()
    }

    public func freeze() throws {
        guard let f = dir("freezer") else {
            if let u = unified { return try u.freeze() }
            throw SysError("freeze: no freezer hierarchy", errno: ENOTSUP)
        }
        let state = f + "/freezer.state"
        let deadline = Clock.monotonicSeconds() + freezeTimeout
        var round = 0
        while true {
            // As runc: now and then thaw, to unstick a cgroup left FREEZING.
            if round % 50 == 49 { try? Control.write(state, "THAWED"); Control.sleep(seconds: 0.01) }
            try Control.write(state, "FROZEN")
            let s = Control.readTrimmed(state) ?? ""
            if s == "FROZEN" { return }
            if s != "FREEZING" {
                throw SysError("freeze \(f): freezer.state is \(s.isEmpty ? "unreadable" : s)", errno: EIO)
            }
            if Clock.monotonicSeconds() > deadline {
                try? Control.write(state, "THAWED")
                throw SysError("freeze \(f): still FREEZING after \(freezeTimeout)s", errno: ETIMEDOUT)
            }
            Control.sleep(seconds: 0.001)
            round += 1
        }
    }

    public func thaw() throws {
        guard let f = dir("freezer") else {
            if let u = unified { return try u.thaw() }
            throw SysError("thaw: no freezer hierarchy", errno: ENOTSUP)
        }
        try Control.write(f + "/freezer.state", "THAWED")
    }

    public func isFrozen() -> Bool {
        guard let f = dir("freezer") else { return unified?.isFrozen() ?? false }
        return Control.readTrimmed(f + "/freezer.state") == "FROZEN"
    }

    public func kill(signal sig: Int32) throws {
        let canFreeze = dir("freezer") != nil || (unified.map { FS.exists($0.path + "/cgroup.freeze") } ?? false)
        try signalAll(self, canFreeze: canFreeze, signal: sig)
    }

    public func destroy() throws {
        let deadline = Clock.monotonicSeconds() + destroyRetry
        var first: Error?
        for d in dirs {
            do {
                try Control.removeCgroup(d.path, mountPoint: d.hierarchy.mountPoint, deadline: deadline)
            } catch {
                first = first ?? error
            }
        }
        do { try unified?.destroy(deadline: deadline) } catch { first = first ?? error }
        if let e = first { throw e }
    }

    public func apply(resources: Resources) throws { try applyV1(resources) }
    public func update(resources: Resources) throws { try applyV1(resources, updating: true) }
}
