import Glibc
import JSON
import Spec
import Sys

// What `stats` shows of a running container, one sample: cpu time, memory
// (less the inactive page cache, as Docker counts it) against its limit
// (the host's memory when unlimited), network bytes of its namespace,
// block I/O and pids, from its cgroup (the runtime's `events --stats`
// figures, cgroup v1 or v2) and /proc. CPU % is the growth of cpu time
// between two samples over the time between them.

/// One sample of a container's resource use.
public struct Usage {
    public var cpuNanos: UInt64 = 0
    public var memory: UInt64 = 0
    public var memoryLimit: UInt64 = 0
    public var netRx: UInt64 = 0
    public var netTx: UInt64 = 0
    public var blockRead: UInt64 = 0
    public var blockWrite: UInt64 = 0
    public var pids: UInt64 = 0
    /// CLOCK_MONOTONIC, in nanoseconds, when it was taken.
    public var at: UInt64 = 0

    public init() {}

    /// The cpu percentage between an earlier sample and this one (100 is
    /// one cpu busy).
    public func cpuPercent(since a: Usage) -> Double {
        guard at > a.at, cpuNanos >= a.cpuNanos else { return 0 }
        return Double(cpuNanos - a.cpuNanos) * 100 / Double(at - a.at)
    }

    public var memoryPercent: Double { memoryLimit == 0 ? 0 : Double(memory) * 100 / Double(memoryLimit) }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension Containers {
    /// A sample of container `id`'s use; nil when it is not running.
    public func usage(_ id: String) -> Usage? {
        let rt = runtime(of: id)
        guard let live = liveStatus(id), live.status != "created", let stats = try? rt.stats(id),
              let rec = try? rt.store.load(id) else { return nil }
        var u = Usage()
        u.at = monotonicNanos()
        func n(_ v: JSONValue?) -> UInt64 {
            switch v {
            case .int(let i)?: return UInt64(max(0, i))
            case .uint(let x)?: return x
            default: return 0
            }
        }
        let data = stats["data"]
        u.cpuNanos = n(data?["cpu"]?["usage"]?["total"])
        let mem = data?["memory"]
        let raw = mem?["raw"]
        let inactive = raw?["total_inactive_file"] != nil ? n(raw?["total_inactive_file"]) : n(raw?["inactive_file"])
        let used = n(mem?["usage"]?["usage"])
        u.memory = used > inactive ? used - inactive : used
        let host = Containers.hostMemory()
        let limit = n(mem?["usage"]?["limit"])
        u.memoryLimit = limit == 0 || (host > 0 && limit > host) ? host : limit
        u.pids = n(data?["pids"]?["current"])
        // Block I/O: v1's blkio throttle counters, else cgroup2's io.stat.
        if let d = rec.cgroups["blkio"] {
            for line in ((try? FS.readString(d + "/blkio.throttle.io_service_bytes_recursive")) ?? "").split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 3, let v = UInt64(f[2]) else { continue }
                if f[1] == "Read" { u.blockRead += v } else if f[1] == "Write" { u.blockWrite += v }
            }
        } else if let d = rec.cgroups[""] {
            for line in ((try? FS.readString(d + "/io.stat")) ?? "").split(separator: "\n") {
                for kv in line.split(separator: " ").dropFirst() {
                    let p = kv.split(separator: "=")
                    guard p.count == 2, let v = UInt64(p[1]) else { continue }
                    if p[0] == "rbytes" { u.blockRead += v } else if p[0] == "wbytes" { u.blockWrite += v }
                }
            }
        }
        // The network namespace's interfaces but lo (none of its own with --network host).
        if spec(id)?.annotations?[Annotation.network] != "host" {
            (u.netRx, u.netTx) = Containers.netBytes(pid: live.pid)
        }
        return u
    }

    /// Received and sent bytes of every interface but lo, from
    /// /proc/PID/net/dev (the kernel's view of that process's namespace).
    public static func netBytes(pid: Int32) -> (UInt64, UInt64) {
        var rx: UInt64 = 0, tx: UInt64 = 0
        for line in ((try? FS.readString("/proc/\(pid)/net/dev")) ?? "").split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingSpaces
            let f = line[line.index(after: colon)...].split(separator: " ")
            guard name != "lo", f.count >= 9, let r = UInt64(f[0]), let t = UInt64(f[8]) else { continue }
            rx += r; tx += t
        }
        return (rx, tx)
    }

    /// MemTotal, in bytes.
    static func hostMemory() -> UInt64 {
        for line in ((try? FS.readString("/proc/meminfo")) ?? "").split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let f = line.split(separator: " ")
            if f.count >= 2, let kb = UInt64(f[1]) { return kb * 1024 }
        }
        return 0
    }
}
