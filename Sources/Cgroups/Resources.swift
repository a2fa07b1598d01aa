import Glibc
import Spec
import Sys

// linux.resources written into a container's cgroup: the v1 control files
// (and the cgroup2 ones beside them on a hybrid host) and their cgroup2
// equivalents, with runc's readings of the spec: a zero shares, period,
// quota, weight or reservation means "not set"; -1 means unlimited; a limit
// that cannot be written (no such hierarchy or file) fails the create.

/// The device rules every container gets after the spec's own, as runc and
/// crun add them: mknod of any character or block device, and the standard
/// character devices (null, zero, full, random, urandom, tty, console, ptmx,
/// the pty slaves).
public let defaultDeviceRules: [DeviceCgroup] = [
    DeviceCgroup(allow: true, type: "c", access: "m"),
    DeviceCgroup(allow: true, type: "b", access: "m"),
] + [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)].map {
    DeviceCgroup(allow: true, type: "c", major: $0.0, minor: $0.1, access: "rwm")
} + [DeviceCgroup(allow: true, type: "c", major: 136, access: "rwm")]

/// A rule as devices.allow and devices.deny take it: "c 1:3 rwm", "a *:* rwm".
/// nil for a type or access the spec does not allow.
public func deviceRuleText(_ d: DeviceCgroup) -> String? {
    let type = d.type ?? "a"
    let access = d.access ?? "rwm"
    guard ["a", "b", "c"].contains(type), !access.isEmpty, access.allSatisfy({ "rwm".contains($0) }) else { return nil }
    if type == "a" { return "a *:* \(access)" }
    func num(_ n: Int64?) -> String { n.map { $0 < 0 ? "*" : String($0) } ?? "*" }
    return "\(type) \(num(d.major)):\(num(d.minor)) \(access)"
}

/// cpu.shares (2...262144) to cpu.weight (1...10000), the conversion runc
/// and crun use; 0 stays 0 (not set).
public func cpuWeight(fromShares s: UInt64) -> UInt64 {
    s == 0 ? 0 : 1 + ((max(s, 2) - 2) * 9999) / 262142
}

/// blkio.weight (10...1000) to io.weight (1...10000), as runc converts it.
public func ioWeight(fromBlkioWeight w: UInt16) -> UInt64 {
    w == 0 ? 0 : 1 + (UInt64(max(w, 10)) - 10) * 9999 / 990
}

/// A hugepage size as the control files name it ("2MB", "1GB"): letters and digits only.
func validPageSize(_ s: String) -> Bool {
    !s.isEmpty && s.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("A"..."Z").contains($0) || ("a"..."z").contains($0) }
}

/// A key of linux.resources.unified: a file name of the cgroup directory.
func validUnifiedKey(_ k: String) -> Bool {
    !k.isEmpty && !Path.hasSlash(k) && !k.bytesStart(with: ".") && k.holdsByte(".")
}

/// Writes `value` to `dir`/`file`, naming both in the error.
func set(_ dir: String, _ file: String, _ value: String) throws {
    do {
        try Control.write(dir + "/" + file, value)
    } catch let e as SysError {
        throw SysError("set \(file) to \(value) in \(dir)", errno: e.errno)
    }
}

func unsupported(_ what: String) -> SysError { SysError(what, errno: ENOTSUP) }

/// linux.resources.devices checked once, in both forms: the lines for v1's
/// devices.allow and devices.deny (the defaults after the spec's rules) and
/// the device program (made on pure v1 too: its checks are the stricter).
struct DeviceRules {
    let spec: [DeviceCgroup]
    let v1: [(allow: Bool, text: String)]
    let program: [BPFInstruction]

    init(_ rules: [DeviceCgroup]) throws {
        spec = rules
        // The program's checks name the bad rule and field.
        program = try DeviceFilter.containerProgram(rules)
        v1 = try (rules + defaultDeviceRules).map { rule in
            guard let text = deviceRuleText(rule) else {
                throw SysError("device rule: invalid type \"\(rule.type ?? "")\" or access \"\(rule.access ?? "")\"", errno: EINVAL)
            }
            return (rule.allow, text)
        }
    }
}

// MARK: - cgroup v1

extension V1Manager {
    func needDir(_ controller: String, for what: String) throws -> String {
        guard let d = dir(controller) else { throw unsupported("\(what): no \(controller) cgroup hierarchy") }
        return d
    }

    func applyV1(_ r: Resources, updating: Bool = false) throws {
        // Device rules and unified keys are checked before anything is written.
        let devices = try (r.devices ?? []).isEmpty ? nil : DeviceRules(r.devices!)
        if let u = r.unified, !u.isEmpty {
            guard let v2 = unified else { throw unsupported("linux.resources.unified: no cgroup2 hierarchy") }
            // Hybrid: the controllers are v1's, so no file of the unified
            // cgroup appears later: each key must name one now.
            try v2.checkUnified(u, filesExist: true)
        }
        if let pids = r.pids {
            let d = try needDir("pids", for: "pids limit")
            try set(d, "pids.max", pids.limit > 0 ? String(pids.limit) : "max")
        }
        if let cpu = r.cpu { try applyCPU(cpu) }
        if let m = r.memory { try applyMemory(m) }
        if let b = r.blockIO { try applyBlockIO(b) }
        if let n = r.network {
            if let id = n.classID { try set(try needDir("net_cls", for: "network classID"), "net_cls.classid", String(id)) }
            for p in n.priorities ?? [] {
                try set(try needDir("net_prio", for: "network priorities"), "net_prio.ifpriomap", "\(p.name) \(p.priority)")
            }
        }
        if let h = r.hugepageLimits, !h.isEmpty { try applyHugetlb(h) }
        if let d = devices { try applyDevices(d, updating: updating) }
        if let u = r.unified, !u.isEmpty { try unified?.applyUnified(u) }
    }

    func applyCPU(_ c: CPU) throws {
        let wantsCPU = (c.shares ?? 0) != 0 || (c.quota ?? 0) != 0 || (c.period ?? 0) != 0 || c.burst != nil
            || (c.realtimePeriod ?? 0) != 0 || (c.realtimeRuntime ?? 0) != 0 || (c.idle ?? 0) != 0
        if wantsCPU {
            let d = try needDir("cpu", for: "cpu limits")
            if let s = c.shares, s != 0 { try set(d, "cpu.shares", String(s)) }
            var quotaDone = false
            if let p = c.period, p != 0 {
                do {
                    try set(d, "cpu.cfs_period_us", String(p))
                } catch let e as SysError where e.errno == EINVAL && (c.quota ?? 0) != 0 {
                    // The new period is refused with the old quota: quota first.
                    try set(d, "cpu.cfs_quota_us", String(c.quota!))
                    try set(d, "cpu.cfs_period_us", String(p))
                    quotaDone = true
                }
            }
            if let q = c.quota, q != 0, !quotaDone { try set(d, "cpu.cfs_quota_us", String(q)) }
            if let b = c.burst { try set(d, "cpu.cfs_burst_us", String(b)) }
            if let p = c.realtimePeriod, p != 0 { try set(d, "cpu.rt_period_us", String(p)) }
            if let rt = c.realtimeRuntime, rt != 0 { try set(d, "cpu.rt_runtime_us", String(rt)) }
            if let i = c.idle, i != 0 { try set(d, "cpu.idle", String(i)) }
        }
        if let cpus = c.cpus, !cpus.isEmpty { try set(try needDir("cpuset", for: "cpuset"), "cpuset.cpus", cpus) }
        if let mems = c.mems, !mems.isEmpty { try set(try needDir("cpuset", for: "cpuset"), "cpuset.mems", mems) }
    }

    func applyMemory(_ m: Memory) throws {
        let limit = m.limit.flatMap { $0 == 0 ? nil : $0 }
        var swap = m.swap.flatMap { $0 == 0 ? nil : $0 }
        let wants = limit != nil || swap != nil || (m.reservation ?? 0) != 0 || (m.kernel ?? 0) != 0
            || (m.kernelTCP ?? 0) != 0 || m.swappiness != nil || m.disableOOMKiller == true
        guard wants else { return }
        let d = try needDir("memory", for: "memory limits")
        let memsw = "memory.memsw.limit_in_bytes"
        let hasMemsw = FS.exists(d + "/" + memsw)
        // An unlimited memory limit lifts the swap limit too (runc).
        if limit == -1 && swap == nil && hasMemsw { swap = -1 }
        if swap != nil && !hasMemsw {
            throw unsupported("memory swap limit: \(memsw) is missing (no swap accounting)")
        }
        switch (limit, swap) {
        case let (l?, s?):
            // memsw may never be below the memory limit: raise it first when it grows.
            let current = Int64(Control.readTrimmed(d + "/" + memsw) ?? "") ?? Int64.max
            if s == -1 || s > current {
                try set(d, memsw, String(s))
                try set(d, "memory.limit_in_bytes", String(l))
            } else {
                try set(d, "memory.limit_in_bytes", String(l))
                try set(d, memsw, String(s))
            }
        case let (l?, nil):
            try set(d, "memory.limit_in_bytes", String(l))
        case let (nil, s?):
            try set(d, memsw, String(s))
        case (nil, nil):
            break
        }
        if let r = m.reservation, r != 0 { try set(d, "memory.soft_limit_in_bytes", String(r)) }
        if let k = m.kernel, k != 0 {
            // Deprecated, and refused by kernels since 6.x; runc ignores it too.
            do { try set(d, "memory.kmem.limit_in_bytes", String(k)) } catch { Log.warn("kernel memory limit not set: \(error)") }
        }
        if let t = m.kernelTCP, t != 0 { try set(d, "memory.kmem.tcp.limit_in_bytes", String(t)) }
        if let s = m.swappiness {
            guard s <= 100 else { throw SysError("memory swappiness \(s) is above 100", errno: EINVAL) }
            try set(d, "memory.swappiness", String(s))
        }
        if m.disableOOMKiller == true { try set(d, "memory.oom_control", "1") }
    }

    func applyBlockIO(_ b: BlockIO) throws {
        let wants = (b.weight ?? 0) != 0 || (b.leafWeight ?? 0) != 0 || !(b.weightDevice ?? []).isEmpty
            || !(b.throttleReadBpsDevice ?? []).isEmpty || !(b.throttleWriteBpsDevice ?? []).isEmpty
            || !(b.throttleReadIOPSDevice ?? []).isEmpty || !(b.throttleWriteIOPSDevice ?? []).isEmpty
        guard wants else { return }
        let d = try needDir("blkio", for: "block IO limits")
        // CFQ's files, else BFQ's (kernels since 5.0 have only BFQ).
        let bfq = !FS.exists(d + "/blkio.weight") && FS.exists(d + "/blkio.bfq.weight")
        if let w = b.weight, w != 0 { try set(d, bfq ? "blkio.bfq.weight" : "blkio.weight", String(w)) }
        if let w = b.leafWeight, w != 0 { try set(d, "blkio.leaf_weight", String(w)) }
        for wd in b.weightDevice ?? [] {
            if let w = wd.weight, w != 0 {
                try set(d, bfq ? "blkio.bfq.weight_device" : "blkio.weight_device", "\(wd.major):\(wd.minor) \(w)")
            }
            if let w = wd.leafWeight, w != 0 { try set(d, "blkio.leaf_weight_device", "\(wd.major):\(wd.minor) \(w)") }
        }
        for (file, list) in [("blkio.throttle.read_bps_device", b.throttleReadBpsDevice),
                             ("blkio.throttle.write_bps_device", b.throttleWriteBpsDevice),
                             ("blkio.throttle.read_iops_device", b.throttleReadIOPSDevice),
                             ("blkio.throttle.write_iops_device", b.throttleWriteIOPSDevice)] {
            for t in list ?? [] { try set(d, file, "\(t.major):\(t.minor) \(t.rate)") }
        }
    }

    /// A v1 hugetlb hierarchy, else (hybrid) the cgroup2 hugetlb controller.
    func applyHugetlb(_ limits: [HugepageLimit]) throws {
        for l in limits where !validPageSize(l.pageSize) {
            throw SysError("hugepage limit: invalid page size \"\(l.pageSize)\"", errno: EINVAL)
        }
        if let d = dir("hugetlb") {
            for l in limits { try set(d, "hugetlb.\(l.pageSize).limit_in_bytes", String(l.limit)) }
            return
        }
        guard let v2 = unified, v2.hasController("hugetlb") else {
            throw unsupported("hugepage limits: no hugetlb cgroup hierarchy")
        }
        try v2.applyHugetlb(limits)
    }

    /// The spec's rules in order, then the defaults, each to devices.allow or
    /// devices.deny (a new cgroup starts as its parent: allow all); on a
    /// hybrid host the same rules as a device program in the cgroup2 cgroup
    /// too (attached first). Where the v1 hierarchy is there, a program the
    /// kernel refuses is a warning: v1 enforces the rules already.
    ///
    /// `updating`: the container has rules already, which v1 adds to rather
    /// than replaces. New rules starting by denying all reset the list
    /// themselves; others need it reset to allow all first, which is done
    /// only under the new device program (v1 alone would allow everything
    /// for a moment).
    func applyDevices(_ rules: DeviceRules, updating: Bool) throws {
        let v1 = dir("devices")
        guard v1 != nil || unified != nil else { throw unsupported("device rules: no devices cgroup hierarchy") }
        var filtered = false
        if let u = unified {
            do {
                try u.devicePrograms.install(rules.program, in: u.path)
                filtered = true
            } catch where v1 != nil {
                Log.warn("device rules: no device program in \(u.path) (the v1 devices cgroup applies them): \(error)")
            }
        }
        guard let d = v1 else { return }
        if updating, let first = rules.spec.first, !DeviceFilter.deniesAll(first) {
            guard filtered else {
                throw unsupported("device rules on update: cgroup v1 replaces rules only when the first denies all devices")
            }
            try set(d, "devices.allow", "a")
        }
        try writeRules(rules.v1, in: d)
    }

    /// Each rule one write(2), in order, as the kernel parses a write of
    /// devices.allow or devices.deny as one rule; each file opened once
    /// (a lookup in a new cgroup's directory is the costly part: 12 opens of
    /// a default container's rules were 2).
    func writeRules(_ rules: [(allow: Bool, text: String)], in d: String) throws {
        var fds: [Int32] = [-1, -1]  // devices.deny, devices.allow
        defer { for fd in fds where fd >= 0 { close(fd) } }
        for (allow, text) in rules {
            let file = allow ? "devices.allow" : "devices.deny"
            let k = allow ? 1 : 0
            if fds[k] < 0 {
                fds[k] = open(d + "/" + file, O_WRONLY | O_CLOEXEC)
                guard fds[k] >= 0 else { throw SysError("set \(file) to \(text) in \(d)") }
            }
            do {
                // "\n" ends a rule as the kernel reads it (as echo writes it).
                try FS.writeAll(fd: fds[k], Array((text + "\n").utf8), what: "write \(text) to \(d)/\(file)")
            } catch let e as SysError {
                throw SysError("set \(file) to \(text) in \(d)", errno: e.errno)
            }
        }
    }
}

// MARK: - cgroup2

extension V2Manager {
    /// Whether the hierarchy offers `controller` (the mount point's cgroup.controllers).
    func hasController(_ controller: String) -> Bool {
        (Control.readTrimmed(mountPoint + "/cgroup.controllers") ?? "").split(separator: " ").contains { $0 == controller }
    }

    func applyV2(_ r: Resources) throws {
        // Device rules are checked (and made a program) before anything is written.
        let deviceProgram = try (r.devices ?? []).isEmpty ? nil : DeviceFilter.containerProgram(r.devices!)
        // So are the unified keys (their files may appear once a controller is enabled).
        if let u = r.unified, !u.isEmpty { try checkUnified(u, filesExist: false) }
        if let pids = r.pids {
            try enableControllers(["pids"])
            try set(path, "pids.max", pids.limit > 0 ? String(pids.limit) : "max")
        }
        if let c = r.cpu { try applyCPU(c) }
        if let m = r.memory { try applyMemory(m) }
        if let b = r.blockIO { try applyIO(b) }
        if let n = r.network, n.classID != nil || !(n.priorities ?? []).isEmpty {
            throw unsupported("network classID and priorities: no net_cls or net_prio on cgroup v2")
        }
        if let h = r.hugepageLimits, !h.isEmpty {
            for l in h where !validPageSize(l.pageSize) {
                throw SysError("hugepage limit: invalid page size \"\(l.pageSize)\"", errno: EINVAL)
            }
            try applyHugetlb(h)
        }
        if let p = deviceProgram { try devicePrograms.install(p, in: path) }
        if let u = r.unified, !u.isEmpty { try applyUnified(u) }
    }

    func applyCPU(_ c: CPU) throws {
        if (c.realtimePeriod ?? 0) != 0 || (c.realtimeRuntime ?? 0) != 0 {
            throw unsupported("realtime cpu limits: not available on cgroup v2")
        }
        let quota = c.quota ?? 0, period = c.period ?? 0
        let wantsCPU = (c.shares ?? 0) != 0 || quota != 0 || period != 0 || c.burst != nil || c.idle != nil
        if wantsCPU {
            try enableControllers(["cpu"])
            if let s = c.shares, s != 0 { try set(path, "cpu.weight", String(cpuWeight(fromShares: s))) }
            if quota != 0 || period != 0 {
                try set(path, "cpu.max", "\(quota > 0 ? String(quota) : "max") \(period != 0 ? period : 100_000)")
            }
            if let b = c.burst { try set(path, "cpu.max.burst", String(b)) }
            if let i = c.idle { try set(path, "cpu.idle", String(i)) }
        }
        if !(c.cpus ?? "").isEmpty || !(c.mems ?? "").isEmpty {
            try enableControllers(["cpuset"])
            if let cpus = c.cpus, !cpus.isEmpty { try set(path, "cpuset.cpus", cpus) }
            if let mems = c.mems, !mems.isEmpty { try set(path, "cpuset.mems", mems) }
        }
    }

    func applyMemory(_ m: Memory) throws {
        let limit = m.limit ?? 0, swap = m.swap ?? 0
        guard limit != 0 || swap != 0 || (m.reservation ?? 0) != 0 else {
            // swappiness, kernel memory and the OOM killer switch have no cgroup2 files.
            return
        }
        try enableControllers(["memory"])
        func v(_ n: Int64) -> String { n < 0 ? "max" : String(n) }
        // memory.swap.max is swap alone, the spec's swap is memory plus swap (runc's conversion).
        if swap != 0 {
            let swapOnly: Int64
            if swap == -1 {
                swapOnly = -1
            } else {
                guard limit > 0 else { throw SysError("memory swap limit needs a memory limit on cgroup v2", errno: EINVAL) }
                guard swap >= limit else { throw SysError("memory swap limit \(swap) is below the memory limit \(limit)", errno: EINVAL) }
                swapOnly = swap - limit
            }
            try set(path, "memory.swap.max", v(swapOnly))
        }
        if limit != 0 { try set(path, "memory.max", v(limit)) }
        if let r = m.reservation, r != 0 { try set(path, "memory.low", v(r)) }
    }

    func applyIO(_ b: BlockIO) throws {
        var lines: [(String, String)] = []
        if let w = b.weight, w != 0 { lines.append(("io.weight", "default \(ioWeight(fromBlkioWeight: w))")) }
        for wd in b.weightDevice ?? [] {
            if let w = wd.weight, w != 0 { lines.append(("io.weight", "\(wd.major):\(wd.minor) \(ioWeight(fromBlkioWeight: w))")) }
        }
        for (key, list) in [("rbps", b.throttleReadBpsDevice), ("wbps", b.throttleWriteBpsDevice),
                            ("riops", b.throttleReadIOPSDevice), ("wiops", b.throttleWriteIOPSDevice)] {
            for t in list ?? [] { lines.append(("io.max", "\(t.major):\(t.minor) \(key)=\(t.rate)")) }
        }
        guard !lines.isEmpty else { return }
        try enableControllers(["io"])
        for (file, value) in lines { try set(path, file, value) }
    }

    func applyHugetlb(_ limits: [HugepageLimit]) throws {
        try enableControllers(["hugetlb"])
        for l in limits { try set(path, "hugetlb.\(l.pageSize).max", String(l.limit)) }
    }

    /// Refuses a key that is no file name of the cgroup directory and, with
    /// `filesExist`, one naming no file there; called before any write, so a
    /// refused update (containerd's `update --resources -`) changes nothing.
    func checkUnified(_ u: [String: String], filesExist: Bool) throws {
        for key in u.keys.sorted() {
            guard validUnifiedKey(key) else {
                throw SysError("linux.resources.unified: invalid key \"\(key)\"", errno: EINVAL)
            }
            if filesExist && !FS.exists(path + "/" + key) {
                throw SysError("linux.resources.unified: \"\(key)\": no such file in \(path)", errno: ENOENT)
            }
        }
    }

    func applyUnified(_ u: [String: String]) throws {
        try checkUnified(u, filesExist: false)
        for key in u.keys.sorted() {
            // The controller a file belongs to ("memory.high" -> memory) must be enabled.
            let controller = String(key.split(separator: ".")[0])
            if controller != "cgroup" && hasController(controller) { try enableControllers([controller]) }
            try set(path, key, u[key]!)
        }
    }
}
