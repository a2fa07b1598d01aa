import Glibc
import Sys

// Usage figures of a container's cgroup, as `events --stats` reports them
// (runc's fields): cpu time, memory usage and limit with memory.stat, pids,
// and the count of OOM kills that `events` watches. v1 reads the cpuacct,
// cpu, memory and pids hierarchies; cgroup2 (pure v2) reads cpu.stat,
// memory.current/max/events/stat and pids.current/max. A missing file
// leaves its figure out (nil), so a fake tree or a host without a
// controller gives a partial answer, not an error.

public struct CgroupStats: Equatable {
    /// Total cpu time in nanoseconds, and per cpu (v1 only), user and system.
    public var cpuTotal: UInt64?
    public var cpuPercpu: [UInt64] = []
    public var cpuUser: UInt64?
    public var cpuKernel: UInt64?
    /// cpu.stat: nr_periods, nr_throttled, throttled time (ns).
    public var throttlePeriods: UInt64?
    public var throttledPeriods: UInt64?
    public var throttledTime: UInt64?
    /// Bytes. `memoryLimit` is UInt64.max when unlimited on cgroup2 (as runc).
    public var memoryUsage: UInt64?
    public var memoryMax: UInt64?
    public var memoryLimit: UInt64?
    public var memoryFailcnt: UInt64?
    public var swapUsage: UInt64?
    public var swapLimit: UInt64?
    /// memory.stat, in file order.
    public var memoryRaw: [(String, UInt64)] = []
    public var pidsCurrent: UInt64?
    /// 0 when unlimited ("max"), as runc reports it.
    public var pidsLimit: UInt64?
    /// OOM kills in the cgroup: v1 memory.oom_control "oom_kill", v2
    /// memory.events "oom_kill".
    public var oomKills: UInt64?

    public init() {}

    public static func == (a: CgroupStats, b: CgroupStats) -> Bool {
        a.cpuTotal == b.cpuTotal && a.cpuPercpu == b.cpuPercpu && a.cpuUser == b.cpuUser && a.cpuKernel == b.cpuKernel
            && a.throttlePeriods == b.throttlePeriods && a.throttledPeriods == b.throttledPeriods
            && a.throttledTime == b.throttledTime && a.memoryUsage == b.memoryUsage && a.memoryMax == b.memoryMax
            && a.memoryLimit == b.memoryLimit && a.memoryFailcnt == b.memoryFailcnt && a.swapUsage == b.swapUsage
            && a.swapLimit == b.swapLimit && a.memoryRaw.map { $0.0 } == b.memoryRaw.map { $0.0 }
            && a.memoryRaw.map { $0.1 } == b.memoryRaw.map { $0.1 } && a.pidsCurrent == b.pidsCurrent
            && a.pidsLimit == b.pidsLimit && a.oomKills == b.oomKills
    }
}

/// The stats of the cgroup `m` manages.
public func readStats(_ m: CgroupManager) -> CgroupStats {
    if let v1 = m as? V1Manager { return v1.stats() }
    if let v2 = m as? V2Manager { return v2.stats() }
    return CgroupStats()
}

/// Just the OOM kill counter (nil when the memory controller is absent).
public func readOOMKills(_ m: CgroupManager) -> UInt64? {
    if let v1 = m as? V1Manager {
        if let d = v1.dir("memory") { return StatFiles.keyed(d + "/memory.oom_control")["oom_kill"] }
        return v1.unified.flatMap { StatFiles.keyed($0.path + "/memory.events")["oom_kill"] }
    }
    if let v2 = m as? V2Manager { return StatFiles.keyed(v2.path + "/memory.events")["oom_kill"] }
    return nil
}

enum StatFiles {
    /// A file holding one number; "max" reads as `maxValue`.
    static func number(_ path: String, maxValue: UInt64 = UInt64.max) -> UInt64? {
        guard let s = Control.readTrimmed(path), !s.isEmpty else { return nil }
        if s == "max" { return maxValue }
        return UInt64(s)
    }

    /// "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
    static func pairs(_ path: String) -> [(String, UInt64)] {
        guard let text = try? Control.read(path) else { return [] }
        var out: [(String, UInt64)] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { out.append((String(f[0]), v)) }
        }
        return out
    }

    static func keyed(_ path: String) -> [String: UInt64] {
        var d: [String: UInt64] = [:]
        for (k, v) in pairs(path) { d[k] = v }
        return d
    }

    /// Space-separated numbers on one line (cpuacct.usage_percpu).
    static func list(_ path: String) -> [UInt64] {
        (Control.readTrimmed(path) ?? "").split(separator: " ").compactMap { UInt64($0) }
    }
}

extension V1Manager {
    func stats() -> CgroupStats {
        var s = CgroupStats()
        if let d = dir("cpuacct") {
            s.cpuTotal = StatFiles.number(d + "/cpuacct.usage")
            s.cpuPercpu = StatFiles.list(d + "/cpuacct.usage_percpu")
            s.cpuUser = StatFiles.number(d + "/cpuacct.usage_user")
            s.cpuKernel = StatFiles.number(d + "/cpuacct.usage_sys")
        }
        if let d = dir("cpu") {
            let st = StatFiles.keyed(d + "/cpu.stat")
            s.throttlePeriods = st["nr_periods"]
            s.throttledPeriods = st["nr_throttled"]
            s.throttledTime = st["throttled_time"]
        }
        if let d = dir("memory") {
            s.memoryUsage = StatFiles.number(d + "/memory.usage_in_bytes")
            s.memoryMax = StatFiles.number(d + "/memory.max_usage_in_bytes")
            s.memoryLimit = StatFiles.number(d + "/memory.limit_in_bytes")
            s.memoryFailcnt = StatFiles.number(d + "/memory.failcnt")
            s.swapUsage = StatFiles.number(d + "/memory.memsw.usage_in_bytes")
            s.swapLimit = StatFiles.number(d + "/memory.memsw.limit_in_bytes")
            s.memoryRaw = StatFiles.pairs(d + "/memory.stat")
            s.oomKills = StatFiles.keyed(d + "/memory.oom_control")["oom_kill"]
        }
        if let d = dir("pids") {
            s.pidsCurrent = StatFiles.number(d + "/pids.current")
            s.pidsLimit = StatFiles.number(d + "/pids.max", maxValue: 0)
        }
        return s
    }
}

extension V2Manager {
    func stats() -> CgroupStats {
        var s = CgroupStats()
        let cpu = StatFiles.keyed(path + "/cpu.stat")
        // cgroup2 counts microseconds; runc reports nanoseconds.
        s.cpuTotal = cpu["usage_usec"].map { $0 &* 1000 }
        s.cpuUser = cpu["user_usec"].map { $0 &* 1000 }
        s.cpuKernel = cpu["system_usec"].map { $0 &* 1000 }
        s.throttlePeriods = cpu["nr_periods"]
        s.throttledPeriods = cpu["nr_throttled"]
        s.throttledTime = cpu["throttled_usec"].map { $0 &* 1000 }
        s.memoryUsage = StatFiles.number(path + "/memory.current")
        s.memoryMax = StatFiles.number(path + "/memory.peak")
        s.memoryLimit = StatFiles.number(path + "/memory.max")
        s.swapUsage = StatFiles.number(path + "/memory.swap.current")
        s.swapLimit = StatFiles.number(path + "/memory.swap.max")
        s.memoryRaw = StatFiles.pairs(path + "/memory.stat")
        let events = StatFiles.keyed(path + "/memory.events")
        s.oomKills = events["oom_kill"]
        s.memoryFailcnt = events["max"]
        s.pidsCurrent = StatFiles.number(path + "/pids.current")
        s.pidsLimit = StatFiles.number(path + "/pids.max", maxValue: 0)
        return s
    }
}
