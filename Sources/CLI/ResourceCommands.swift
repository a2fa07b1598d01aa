import Compile
import Glibc
import JSON
import Runtime
import Spec
import SpecJSON
import Sys

// `update` and `events`, with runc's names and flags.

let updateFlags: [Flag] = [
    Flag(["r", "resources"], value: "FILE", "the new limits as OCI LinuxResources JSON; - reads stdin"),
    Flag(["memory"], value: "BYTES", "memory limit (256m, 1g; -1 for none)"),
    Flag(["memory-swap"], value: "BYTES", "memory plus swap limit (-1 for none)"),
    Flag(["memory-reservation"], value: "BYTES", "memory soft limit"),
    Flag(["kernel-memory"], value: "BYTES", "kernel memory limit (deprecated, ignored by new kernels)"),
    Flag(["kernel-memory-tcp"], value: "BYTES", "kernel TCP buffer limit"),
    Flag(["cpu-quota"], value: "N", "cpu time per period in microseconds (-1 for none)"),
    Flag(["cpu-period"], value: "N", "cpu period in microseconds"),
    Flag(["cpu-rt-runtime"], value: "N", "realtime cpu time per period in microseconds"),
    Flag(["cpu-rt-period"], value: "N", "realtime cpu period in microseconds"),
    Flag(["cpu-share", "cpu-shares"], value: "N", "relative cpu weight (cpu.shares)"),
    Flag(["cpuset-cpus"], value: "LIST", "cpus the container may use (0-1, 0,2)"),
    Flag(["cpuset-mems"], value: "LIST", "memory nodes the container may use"),
    Flag(["pids-limit"], value: "N", "maximum number of tasks (-1 for none)"),
    Flag(["blkio-weight"], value: "N", "relative block IO weight (10-1000)"),
]

/// LinuxResources from --resources (if any), then each flag over it.
func updateResources(_ p: Parsed) throws -> Resources {
    var r = Resources()
    if let file = p.string("resources") {
        r = try decodeFlagFile(file, stdinName: "resources (stdin)", SpecJSON.resources(_:file:))
    }
    func bytes(_ key: String) throws -> Int64? {
        guard let s = p.string(key) else { return nil }
        if s == "-1" { return -1 }
        guard let n = parseSize(s) else { throw Failure(.usage, "--\(key) needs a size in bytes (256m, 1g, -1), not \(quoted(s))") }
        return n
    }
    func int(_ key: String) throws -> Int64? {
        guard let s = p.string(key) else { return nil }
        guard let n = Int64(s) else { throw Failure(.usage, "--\(key) needs a number, not \(quoted(s))") }
        return n
    }
    func uint(_ key: String) throws -> UInt64? {
        guard let s = p.string(key) else { return nil }
        guard let n = UInt64(s) else { throw Failure(.usage, "--\(key) needs a non-negative number, not \(quoted(s))") }
        return n
    }
    let memFlags = (limit: try bytes("memory"), swap: try bytes("memory-swap"), res: try bytes("memory-reservation"),
                    kernel: try bytes("kernel-memory"), tcp: try bytes("kernel-memory-tcp"))
    if memFlags.limit != nil || memFlags.swap != nil || memFlags.res != nil || memFlags.kernel != nil || memFlags.tcp != nil {
        var m = r.memory ?? Memory()
        if let v = memFlags.limit { m.limit = v }
        if let v = memFlags.swap { m.swap = v }
        if let v = memFlags.res { m.reservation = v }
        if let v = memFlags.kernel { m.kernel = v }
        if let v = memFlags.tcp { m.kernelTCP = v }
        r.memory = m
    }
    let quota = try int("cpu-quota"), period = try uint("cpu-period"), shares = try uint("cpu-share")
    let rtRuntime = try int("cpu-rt-runtime"), rtPeriod = try uint("cpu-rt-period")
    let cpus = p.string("cpuset-cpus"), mems = p.string("cpuset-mems")
    if quota != nil || period != nil || shares != nil || rtRuntime != nil || rtPeriod != nil || cpus != nil || mems != nil {
        var c = r.cpu ?? CPU()
        if let v = quota { c.quota = v }
        if let v = period { c.period = v }
        if let v = shares { c.shares = v }
        if let v = rtRuntime { c.realtimeRuntime = v }
        if let v = rtPeriod { c.realtimePeriod = v }
        if let v = cpus { c.cpus = v }
        if let v = mems { c.mems = v }
        r.cpu = c
    }
    if let v = try int("pids-limit") { r.pids = Pids(limit: v) }
    if let s = p.string("blkio-weight") {
        guard let w = UInt16(s) else { throw Failure(.usage, "--blkio-weight needs a number from 10 to 1000, not \(quoted(s))") }
        var b = r.blockIO ?? BlockIO()
        b.weight = w
        r.blockIO = b
    }
    return r
}

let updateCommand = Command(name: "update", summary: "change the resource limits of a running container",
                            usage: "[--resources FILE|-] [limit flags] ID", flags: updateFlags) { p, g in
    let ref = try oneID(p, "update")
    let id = ociID(ref, g)
    let r = try updateResources(p)
    return try about(ref) {
        try runtime(g).update(id, resources: r)
        return 0
    }
}

/// "5s", "500ms", "1m", "2" (seconds), "1.5s".
func parseDuration(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000001), ("ns", 1e-9), ("h", 3600), ("m", 60), ("s", 1)]
    for (u, f) in units where text.hasSuffix(u) {
        guard let n = Double(text.dropLast(u.count)), n.isFinite, n >= 0 else { return nil }
        return n * f
    }
    guard let n = Double(text), n.isFinite, n >= 0 else { return nil }
    return n
}

let eventsCommand = Command(name: "events", summary: "print a container's resource usage, or its OOM events as they happen",
                            usage: "[--stats] [--interval DURATION] ID",
                            flags: [Flag(["stats"], "print the stats once and exit"),
                                    Flag(["interval"], value: "DURATION", "how often to look (default 5s)")]) { p, g in
    let ref = try oneID(p, "events")
    let id = ociID(ref, g)
    let text = p.string("interval") ?? "5s"
    guard let interval = parseDuration(text), interval > 0 else {
        throw Failure(.usage, "--interval needs a positive duration (5s, 500ms), not \(quoted(text))")
    }
    return try about(ref) {
        let rt = runtime(g)
        if p.bool("stats") {
            writeStdout(try rt.stats(id).compact() + "\n")
            return 0
        }
        try rt.events(id, interval: interval, statsEach: false) { writeStdout($0.compact() + "\n") }
        return 0
    }
}
