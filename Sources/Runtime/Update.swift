import Cgroups
import Glibc
import JSON
import Spec
import Sys

// `update`: new resource limits for a live container, merged onto the ones
// it has (runc's reading: what the update leaves unset stays as it was), and
// written into its cgroup, rebuilt from the paths saved in its state. The
// merged set is kept in the state, so that the next update merges onto it. `events`: stats once, or OOM kills as they happen.

/// Fields of `delta` that are set replace those of `base`, field by field
/// within memory, cpu, pids, block IO and network; lists and maps (hugepage
/// limits, devices, unified) replace whole, unified merging key by key. A
/// zero number or an empty cpuset list counts as unset, as runc reads them
/// (podman sends whole LinuxResources objects with zeros in them).
public func mergeResources(_ base: Resources?, _ delta: Resources) -> Resources {
    var out = base ?? Resources()
    if let d = delta.memory {
        var m = out.memory ?? Memory()
        if let v = d.limit, v != 0 { m.limit = v }
        if let v = d.reservation, v != 0 { m.reservation = v }
        if let v = d.swap, v != 0 { m.swap = v }
        if let v = d.kernel, v != 0 { m.kernel = v }
        if let v = d.kernelTCP, v != 0 { m.kernelTCP = v }
        if let v = d.swappiness { m.swappiness = v }
        if let v = d.disableOOMKiller { m.disableOOMKiller = v }
        if let v = d.useHierarchy { m.useHierarchy = v }
        if let v = d.checkBeforeUpdate { m.checkBeforeUpdate = v }
        out.memory = m
    }
    if let d = delta.cpu {
        var c = out.cpu ?? CPU()
        if let v = d.shares, v != 0 { c.shares = v }
        if let v = d.quota, v != 0 { c.quota = v }
        if let v = d.burst { c.burst = v }
        if let v = d.period, v != 0 { c.period = v }
        if let v = d.realtimeRuntime, v != 0 { c.realtimeRuntime = v }
        if let v = d.realtimePeriod, v != 0 { c.realtimePeriod = v }
        if let v = d.cpus, !v.isEmpty { c.cpus = v }
        if let v = d.mems, !v.isEmpty { c.mems = v }
        if let v = d.idle { c.idle = v }
        out.cpu = c
    }
    if let p = delta.pids, p.limit != 0 { out.pids = p }
    if let d = delta.blockIO {
        var b = out.blockIO ?? BlockIO()
        if let v = d.weight, v != 0 { b.weight = v }
        if let v = d.leafWeight, v != 0 { b.leafWeight = v }
        if let v = d.weightDevice { b.weightDevice = v }
        if let v = d.throttleReadBpsDevice { b.throttleReadBpsDevice = v }
        if let v = d.throttleWriteBpsDevice { b.throttleWriteBpsDevice = v }
        if let v = d.throttleReadIOPSDevice { b.throttleReadIOPSDevice = v }
        if let v = d.throttleWriteIOPSDevice { b.throttleWriteIOPSDevice = v }
        out.blockIO = b
    }
    if let d = delta.network {
        var n = out.network ?? NetworkResources()
        if let v = d.classID { n.classID = v }
        if let v = d.priorities { n.priorities = v }
        out.network = n
    }
    if let h = delta.hugepageLimits { out.hugepageLimits = h }
    if let d = delta.devices { out.devices = d }
    if let u = delta.unified {
        var m = out.unified ?? [:]
        for (k, v) in u { m[k] = v }
        out.unified = m
    }
    return out
}

extension Runtime {
    /// The resources the container runs with: the last update's merge, else
    /// the linux.resources of the config it was created from.
    public func currentResources(_ r: Record) throws -> Resources? {
        try r.resources ?? spec(of: r).linux?.resources
    }

    /// Writes `delta` merged onto the current resources into the container's
    /// cgroup, then records the merge. Device rules are rewritten only when
    /// `delta` has some (they replace the container's whole: a new device
    /// program in place of the old one, CgroupManager.update).
    public func update(_ id: String, resources delta: Resources) throws {
        try withContainer(id) { r, st in
            guard st.canUpdate else { throw fail("cannot update a container that has stopped") }
            var record = r
            record.resources = mergeResources(try currentResources(r), delta)
            var toApply = record.resources!
            if (delta.devices ?? []).isEmpty { toApply.devices = nil }
            try manager(r).update(resources: toApply)
            try store.save(record)
        }
    }

    /// runc's `events --stats` object: {"type":"stats","id":..,"data":{..}}.
    public func stats(_ id: String) throws -> JSONValue {
        try Store.validate(id: id)
        let r = try store.load(id)
        guard store.status(r).isLive else { throw fail("container \(id) is not running") }
        return statsEvent(id: id, readStats(try manager(r)))
    }

    /// Polls every `interval` seconds and hands `emit` an {"type":"oom"}
    /// event each time the cgroup's OOM kill count grows; with `statsEach`,
    /// also a stats event each round. Returns when the container stops.
    public func events(_ id: String, interval: Double, statsEach: Bool, emit: (JSONValue) -> Void) throws {
        try Store.validate(id: id)
        let r = try store.load(id)
        guard store.status(r).isLive else { throw fail("container \(id) is not running") }
        let m = try manager(r)
        var last = readOOMKills(m) ?? 0
        func check() {
            if let n = readOOMKills(m), n > last {
                last = n
                var o = JSONObject()
                o["type"] = .string("oom")
                o["id"] = .string(id)
                emit(.object(o))
            }
        }
        while true {
            check()
            if statsEach { emit(statsEvent(id: id, readStats(m))) }
            guard store.exists(id), store.status(r).isLive else { break }
            // Sleep in short steps so that an OOM kill of the init is seen
            // before the cgroup is deleted.
            let deadline = Clock.monotonicSeconds() + interval
            while Clock.monotonicSeconds() < deadline {
                usleep(UInt32(min(0.1, max(0.001, deadline - Clock.monotonicSeconds())) * 1e6))
                check()
                if !Proc.alive(r.pid, startTime: r.startTime) { break }
            }
        }
        check()
    }
}

/// The stats as runc prints them (its types.Stats field names).
public func statsEvent(id: String, _ s: CgroupStats) -> JSONValue {
    func n(_ v: UInt64?) -> JSONValue { .uint(v ?? 0) }
    var usage = JSONObject()
    usage["total"] = n(s.cpuTotal)
    usage["percpu"] = .array(s.cpuPercpu.map { .uint($0) })
    usage["kernel"] = n(s.cpuKernel)
    usage["user"] = n(s.cpuUser)
    var throttling = JSONObject()
    throttling["periods"] = n(s.throttlePeriods)
    throttling["throttledPeriods"] = n(s.throttledPeriods)
    throttling["throttledTime"] = n(s.throttledTime)
    var cpu = JSONObject()
    cpu["usage"] = .object(usage)
    cpu["throttling"] = .object(throttling)

    var mu = JSONObject()
    mu["usage"] = n(s.memoryUsage)
    mu["max"] = n(s.memoryMax)
    mu["limit"] = n(s.memoryLimit)
    mu["failcnt"] = n(s.memoryFailcnt)
    var sw = JSONObject()
    sw["usage"] = n(s.swapUsage)
    sw["limit"] = n(s.swapLimit)
    var raw = JSONObject()
    for (k, v) in s.memoryRaw { raw[k] = .uint(v) }
    var memory = JSONObject()
    memory["usage"] = .object(mu)
    memory["swap"] = .object(sw)
    memory["raw"] = .object(raw)
    if let o = s.oomKills { memory["oomKills"] = .uint(o) }

    var pids = JSONObject()
    pids["current"] = n(s.pidsCurrent)
    pids["limit"] = n(s.pidsLimit)

    var data = JSONObject()
    data["cpu"] = .object(cpu)
    data["memory"] = .object(memory)
    data["pids"] = .object(pids)
    data["blkio"] = .object(JSONObject())
    data["hugetlb"] = .object(JSONObject())

    var o = JSONObject()
    o["type"] = .string("stats")
    o["id"] = .string(id)
    o["data"] = .object(data)
    return .object(o)
}
