import Spec

// What the spec's linux.resources become, file by file, in each cgroup mode.
// Pure: the managers write the plan into their directories; tests read it.
// Conversions between v1 and v2 units follow runc's, so a bundle means the
// same on either host.

/// One control-file write: the controller's hierarchy (v1; "" on v2), the
/// file name and the value.
public struct LimitWrite: Equatable, CustomStringConvertible {
    public var controller: String
    public var file: String
    public var value: String
    public init(_ controller: String, _ file: String, _ value: String) {
        self.controller = controller
        self.file = file
        self.value = value
    }
    public var description: String { "\(controller.isEmpty ? "" : controller + ":")\(file)=\(value)" }
}

public enum LimitPlan {
    /// cpu.shares (2..262144) -> cpu.weight (1..10000), runc's formula.
    public static func weight(fromShares s: UInt64) -> UInt64 {
        s == 0 ? 0 : 1 + ((max(s, 2) - 2) * 9999) / 262_142
    }

    /// blkio.weight (10..1000) -> io.weight (1..10000).
    public static func ioWeight(fromBlkio w: UInt16) -> UInt64 {
        w == 0 ? 0 : 1 + (UInt64(max(w, 10)) - 10) * 9999 / 990
    }

    static func limit(_ v: Int64) -> String { v < 0 ? "max" : String(v) }

    /// The writes for cgroup v1 hierarchies.
    public static func v1(_ r: Resources) -> [LimitWrite] {
        var w: [LimitWrite] = []
        if let m = r.memory {
            // memsw must stay >= memory: the caller orders these two writes
            // against the current values (see `orderMemoryV1`).
            if let l = m.limit, l != 0 { w.append(.init("memory", "memory.limit_in_bytes", String(l))) }
            if let s = m.swap, s != 0 { w.append(.init("memory", "memory.memsw.limit_in_bytes", String(s))) }
            if let v = m.reservation, v != 0 { w.append(.init("memory", "memory.soft_limit_in_bytes", String(v))) }
            if let k = m.kernelTCP, k != 0 { w.append(.init("memory", "memory.kmem.tcp.limit_in_bytes", String(k))) }
            if let s = m.swappiness, s <= 100 { w.append(.init("memory", "memory.swappiness", String(s))) }
            if m.disableOOMKiller == true { w.append(.init("memory", "memory.oom_control", "1")) }
        }
        if let c = r.cpu {
            if let s = c.shares, s != 0 { w.append(.init("cpu", "cpu.shares", String(s))) }
            if let p = c.period, p != 0 { w.append(.init("cpu", "cpu.cfs_period_us", String(p))) }
            if let q = c.quota, q != 0 { w.append(.init("cpu", "cpu.cfs_quota_us", String(q))) }
            if let b = c.burst { w.append(.init("cpu", "cpu.cfs_burst_us", String(b))) }
            if let p = c.realtimePeriod, p != 0 { w.append(.init("cpu", "cpu.rt_period_us", String(p))) }
            if let rt = c.realtimeRuntime, rt != 0 { w.append(.init("cpu", "cpu.rt_runtime_us", String(rt))) }
            if let s = c.cpus, !s.isEmpty { w.append(.init("cpuset", "cpuset.cpus", s)) }
            if let s = c.mems, !s.isEmpty { w.append(.init("cpuset", "cpuset.mems", s)) }
            if let i = c.idle { w.append(.init("cpu", "cpu.idle", String(i))) }
        }
        if let p = r.pids { w.append(.init("pids", "pids.max", p.limit > 0 ? String(p.limit) : "max")) }
        if let b = r.blockIO {
            if let x = b.weight, x != 0 { w.append(.init("blkio", "blkio.weight", String(x))) }
            if let x = b.leafWeight, x != 0 { w.append(.init("blkio", "blkio.leaf_weight", String(x))) }
            for d in b.weightDevice ?? [] {
                if let x = d.weight { w.append(.init("blkio", "blkio.weight_device", "\(d.major):\(d.minor) \(x)")) }
                if let x = d.leafWeight { w.append(.init("blkio", "blkio.leaf_weight_device", "\(d.major):\(d.minor) \(x)")) }
            }
            let throttles: [(String, [ThrottleDevice]?)] = [
                ("blkio.throttle.read_bps_device", b.throttleReadBpsDevice),
                ("blkio.throttle.write_bps_device", b.throttleWriteBpsDevice),
                ("blkio.throttle.read_iops_device", b.throttleReadIOPSDevice),
                ("blkio.throttle.write_iops_device", b.throttleWriteIOPSDevice),
            ]
            for (file, list) in throttles {
                for d in list ?? [] { w.append(.init("blkio", file, "\(d.major):\(d.minor) \(d.rate)")) }
            }
        }
        for h in r.hugepageLimits ?? [] {
            w.append(.init("hugetlb", "hugetlb.\(h.pageSize).limit_in_bytes", String(h.limit)))
        }
        if let n = r.network {
            if let id = n.classID { w.append(.init("net_cls", "net_cls.classid", String(id))) }
            for p in n.priorities ?? [] { w.append(.init("net_prio", "net_prio.ifpriomap", "\(p.name) \(p.priority)")) }
        }
        return w
    }

    /// The writes for a cgroup2 directory. `unified` entries come last and
    /// win, as the spec says.
    public static func v2(_ r: Resources) -> [LimitWrite] {
        var w: [LimitWrite] = []
        if let m = r.memory {
            if let v = m.reservation, v != 0 { w.append(.init("", "memory.low", limit(v))) }
            if let l = m.limit, l != 0 { w.append(.init("", "memory.max", limit(l))) }
            if let s = m.swap, s != 0 {
                // OCI swap is memory+swap; v2's memory.swap.max is swap alone.
                let value: String
                if s < 0 { value = "max" } else if let l = m.limit, l > 0 { value = String(max(s - l, 0)) } else { value = String(s) }
                w.append(.init("", "memory.swap.max", value))
            }
            if m.disableOOMKiller == true { w.append(.init("", "memory.oom.group", "0")) }
        }
        if let c = r.cpu {
            if let s = c.shares, s != 0 { w.append(.init("", "cpu.weight", String(weight(fromShares: s)))) }
            if c.quota != nil || c.period != nil {
                let q = c.quota ?? -1
                let p = (c.period ?? 0) == 0 ? 100_000 : c.period!
                w.append(.init("", "cpu.max", "\(q <= 0 ? "max" : String(q)) \(p)"))
            }
            if let b = c.burst { w.append(.init("", "cpu.max.burst", String(b))) }
            if let s = c.cpus, !s.isEmpty { w.append(.init("", "cpuset.cpus", s)) }
            if let s = c.mems, !s.isEmpty { w.append(.init("", "cpuset.mems", s)) }
            if let i = c.idle { w.append(.init("", "cpu.idle", String(i))) }
        }
        if let p = r.pids { w.append(.init("", "pids.max", p.limit > 0 ? String(p.limit) : "max")) }
        if let b = r.blockIO {
            if let x = b.weight, x != 0 { w.append(.init("", "io.bfq.weight", String(x))) }
            for d in b.weightDevice ?? [] {
                if let x = d.weight { w.append(.init("", "io.bfq.weight", "\(d.major):\(d.minor) \(x)")) }
            }
            var maxLines: [String: [String]] = [:]
            let throttles: [(String, [ThrottleDevice]?)] = [
                ("rbps", b.throttleReadBpsDevice), ("wbps", b.throttleWriteBpsDevice),
                ("riops", b.throttleReadIOPSDevice), ("wiops", b.throttleWriteIOPSDevice),
            ]
            var order: [String] = []
            for (key, list) in throttles {
                for d in list ?? [] {
                    let dev = "\(d.major):\(d.minor)"
                    if maxLines[dev] == nil { order.append(dev) }
                    maxLines[dev, default: []].append("\(key)=\(d.rate)")
                }
            }
            for dev in order { w.append(.init("", "io.max", dev + " " + maxLines[dev]!.joined(separator: " "))) }
        }
        for h in r.hugepageLimits ?? [] {
            w.append(.init("", "hugetlb.\(h.pageSize).max", String(h.limit)))
        }
        for key in (r.unified ?? [:]).keys.sorted() {
            w.append(.init("", key, r.unified![key]!))
        }
        return w
    }

    /// The v2 controllers a plan needs enabled in the parents'
    /// cgroup.subtree_control.
    public static func controllers(of plan: [LimitWrite]) -> [String] {
        var out: [String] = []
        for w in plan {
            guard let dot = w.file.firstIndex(of: ".") else { continue }
            let c = String(w.file[..<dot])
            if ["memory", "cpu", "cpuset", "pids", "io", "hugetlb"].contains(c), !out.contains(c) { out.append(c) }
        }
        return out
    }
}
