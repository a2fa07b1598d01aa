import Compile
import Engine
import Glibc
import JSON
import Network
import Spec
import Sys

// The read-side Docker commands over run-mode containers, with podman's
// output: stats (resource use, live or once), top (a container's
// processes, ps columns), port (published ports), wait (until each stops:
// its exit code), rename.

// MARK: - Shared

/// The run-mode container `ref` names, as its full id.
func runModeID(_ c: Containers, _ ref: String) throws -> String {
    try docker(ref) { try c.resolve(ref) }
}

/// `233.5kB`, `25.28GB`: decimal units with four significant digits, as
/// podman's stats (go-units' HumanSize).
func statSize(_ n: UInt64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return significant(v, 4) + units[u]
}

/// `v` with `digits` significant digits, trailing zeros dropped (%g).
func significant(_ v: Double, _ digits: Int) -> String {
    guard v != 0 else { return "0" }
    var intDigits = 1
    var x = 10.0
    while v >= x { intDigits += 1; x *= 10 }
    let decimals = max(0, digits - intDigits)
    return fixed(v, decimals, trim: true)
}

/// `v` with `decimals` decimals (trailing zeros dropped when `trim`).
func fixed(_ v: Double, _ decimals: Int, trim: Bool = false) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (v * scale).rounded()
    let whole = Int64(r / scale)
    var frac = String(Int64(r - Double(whole) * scale))
    while frac.count < decimals { frac = "0" + frac }
    if trim { while frac.hasSuffix("0") { frac.removeLast() } }
    return decimals == 0 || frac.isEmpty ? String(whole) : "\(whole).\(frac)"
}

/// A duration as Go prints one: `56.016836ms`, `1m14.918478503s`, `0s`.
func goDuration(_ ns: UInt64) -> String {
    func frac(_ v: UInt64, _ unit: UInt64, _ width: Int) -> String {
        let whole = v / unit, rem = v % unit
        if rem == 0 { return String(whole) }
        var d = String(rem)
        while d.count < width { d = "0" + d }
        while d.hasSuffix("0") { d.removeLast() }
        return "\(whole).\(d)"
    }
    if ns == 0 { return "0s" }
    if ns < 1000 { return "\(ns)ns" }
    if ns < 1_000_000 { return frac(ns, 1000, 3) + "µs" }
    if ns < 1_000_000_000 { return frac(ns, 1_000_000, 6) + "ms" }
    let h = ns / 3_600_000_000_000, m = ns / 60_000_000_000 % 60, s = ns % 60_000_000_000
    return (h > 0 ? "\(h)h" : "") + (h > 0 || m > 0 ? "\(m)m" : "") + frac(s, 1_000_000_000, 9) + "s"
}

func realtimeNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// MARK: - stats

let statsFormat = RowFormat(name: "stats", rowType: "stats", headers: [
    "ID": "ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET IO",
    "BlockIO": "BLOCK IO", "PIDs": "PIDS", "CPU": "CPU TIME", "AVGCPU": "AVG CPU %",
])

let statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}\t{{.CPU}}\t{{.AVGCPU}}"

/// One row of stats for container `m`: from two samples (nil when it is
/// not running: zeros, as podman shows a stopped one).
func statsRow(_ m: Meta, _ before: Usage?, _ now: Usage?) -> JSONValue {
    let u = now ?? Usage()
    let cpu = before.map { u.cpuPercent(since: $0) } ?? 0
    var avg = 0.0
    if now != nil, let started = m.startedUnix {
        let up = Double(realtimeNanos()) - Double(started) * 1e9
        if up > 0 { avg = Double(u.cpuNanos) * 100 / up }
    }
    var o = JSONObject()
    o["ID"] = .string(String(m.id.prefix(12)))
    o["Name"] = .string(m.name)
    o["CPUPerc"] = .string(fixed(cpu, 2) + "%")
    o["MemUsage"] = .string(statSize(u.memory) + " / " + statSize(u.memoryLimit))
    o["MemPerc"] = .string(fixed(u.memoryPercent, 2) + "%")
    o["NetIO"] = .string(statSize(u.netRx) + " / " + statSize(u.netTx))
    o["BlockIO"] = .string(statSize(u.blockRead) + " / " + statSize(u.blockWrite))
    o["PIDs"] = .string(String(u.pids))
    o["CPU"] = .string(goDuration(u.cpuNanos))
    o["AVGCPU"] = .string(fixed(avg, 2) + "%")
    // The figures themselves, for templates and scripts.
    o["CPUNanos"] = .uint(u.cpuNanos)
    o["MemBytes"] = .uint(u.memory)
    o["MemLimit"] = .uint(u.memoryLimit)
    o["NetInput"] = .uint(u.netRx)
    o["NetOutput"] = .uint(u.netTx)
    o["BlockInput"] = .uint(u.blockRead)
    o["BlockOutput"] = .uint(u.blockWrite)
    return .object(o)
}

/// podman's `stats --format json` object of a row.
func statsJSON(_ row: JSONValue) -> JSONValue {
    func s(_ k: String) -> JSONValue { row[k] ?? .string("") }
    return .object(JSONObject([("id", s("ID")), ("name", s("Name")), ("cpu_time", s("CPU")), ("cpu_percent", s("CPUPerc")),
                               ("avg_cpu", s("AVGCPU")), ("mem_usage", s("MemUsage")), ("mem_percent", s("MemPerc")),
                               ("net_io", s("NetIO")), ("block_io", s("BlockIO")), ("pids", s("PIDs"))]))
}

func statsRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    let c = containers(g)
    let format = p.string("format") ?? "table"
    guard format == "table" || format == "json" || RowFormat.isTemplate(format) else {
        throw Failure(.usage, "--format must be table, json or a Go template ('{{.Name}} {{.CPUPerc}}'), not \(quoted(format))")
    }
    let intervalText = p.string("interval") ?? "1"
    guard let interval = Double(intervalText), interval > 0, interval <= 3600 else {
        throw Failure(.usage, "--interval needs a number of seconds above 0, not \(quoted(intervalText))")
    }
    // Named containers stay in the table when they stop (zeros); without
    // names, the running ones (-a: every one), listed afresh each round.
    let named = try p.positionals.map { try runModeID(c, $0) }
    func metas() -> [Meta] {
        if !named.isEmpty { return named.compactMap { c.load($0) } }
        return c.mine().filter { p.bool("all") || c.isRunning($0.id) }
    }
    func render(_ rows: [JSONValue]) throws -> String {
        switch format {
        case "json": return JSONValue.array(rows.map(statsJSON)).pretty()
        case "table": return try statsFormat.render(statsTable, rows)
        default: return try statsFormat.render(format, rows)
        }
    }
    let live = !p.bool("no-stream") && isatty(1) == 1
    var before: [String: Usage] = [:]
    for m in metas() { before[m.id] = c.usage(m.id) }
    while true {
        usleep(UInt32(interval * 1_000_000))
        var rows: [JSONValue] = []
        var now: [String: Usage] = [:]
        for m in metas() {
            let u = c.usage(m.id)
            now[m.id] = u
            rows.append(statsRow(m, before[m.id], u))
        }
        let text = try render(rows)
        if !live {
            writeStdout(text)
            if p.bool("no-stream") { return 0 }
        } else {
            // Redrawn in place each round, as podman does, until Ctrl-C.
            writeStdout("\u{1B}[2J\u{1B}[H" + text)
        }
        before = now
    }
}

let statsCommand = Command(name: "stats", summary: "resource use of run-mode containers: cpu, memory, network and block I/O, pids (live, or once with --no-stream)",
                           usage: "[--no-stream] [-a] [--interval SECONDS] [--format table|json|TEMPLATE] [CONTAINER...]",
                           flags: [Flag(["no-stream"], "print one table (two samples an interval apart) and exit"),
                                   Flag(["a", "all"], "every container, stopped ones too (their figures are zeros)"),
                                   Flag(["i", "interval"], value: "SECONDS", "time between samples (default 1)"),
                                   Flag(["format"], value: "table|json|TEMPLATE", "table (the default), json, or a Go template ('{{.Name}} {{.CPUPerc}} {{.MemUsage}}')")],
                           run: statsRun)

// MARK: - top

/// A process of a container as top shows it, read from the host's /proc.
struct ProcessInfo {
    var hostPID: Int32
    var pid: Int32
    var ppid: Int32
    var hostPPID: Int32
    var pgid: Int32
    var uid: UInt32
    var gid: UInt32
    var state: String
    var nice: Int
    var tty: String
    /// utime + stime, in clock ticks.
    var cpuTicks: UInt64
    /// Seconds since boot at which it started, in ticks.
    var startTicks: UInt64
    var vszKiB: UInt64
    var rssKiB: UInt64
    var comm: String
    var args: String

    /// /proc/PID/stat, status and cmdline; nil when it is gone.
    init?(_ pid: Int32) {
        guard let stat = try? FS.readString("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")"),
              let open = stat.firstIndex(of: "(") else { return nil }
        comm = String(stat[stat.index(after: open)..<close])
        let f = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard f.count > 22 else { return nil }
        hostPID = pid
        state = String(f[0])
        hostPPID = Int32(f[1]) ?? 0
        pgid = Int32(f[2]) ?? 0
        let ttyNr = Int(f[4]) ?? 0
        cpuTicks = (UInt64(f[11]) ?? 0) + (UInt64(f[12]) ?? 0)
        nice = Int(f[16]) ?? 0
        startTicks = UInt64(f[19]) ?? 0
        vszKiB = (UInt64(f[20]) ?? 0) / 1024
        rssKiB = (UInt64(f[21]) ?? 0) * UInt64(sysconf(Int32(_SC_PAGESIZE))) / 1024
        let major = (ttyNr >> 8) & 0xfff, minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00)
        tty = ttyNr == 0 ? "?" : (136...143).contains(major) ? "pts/\((major - 136) * 256 + minor)" : "tty\(minor)"
        uid = 0; gid = 0
        self.pid = pid
        ppid = 0
        for line in ((try? FS.readString("/proc/\(pid)/status")) ?? "").split(separator: "\n") {
            let kv = line.split(separator: "\t")
            guard kv.count >= 2 else { continue }
            switch kv[0] {
            case "Uid:": uid = UInt32(kv[1]) ?? 0
            case "Gid:": gid = UInt32(kv[1]) ?? 0
            case "NSpid:": self.pid = Int32(kv.last!) ?? pid
            default: break
            }
        }
        let cmd = ((try? FS.readBytes("/proc/\(pid)/cmdline")) ?? []).map { $0 == 0 ? 32 : $0 }
        args = String(decoding: cmd, as: UTF8.self)
        while args.hasSuffix(" ") { args.removeLast() }
        if args.isEmpty { args = "[\(comm)]" }
    }
}

/// The ps descriptors top takes (psgo's, as podman's top): name and header.
let topDescriptors: [(String, String)] = [
    ("user", "USER"), ("pid", "PID"), ("ppid", "PPID"), ("pcpu", "%CPU"), ("etime", "ELAPSED"), ("tty", "TTY"),
    ("time", "TIME"), ("args", "COMMAND"), ("comm", "COMMAND"), ("group", "GROUP"), ("hgroup", "HGROUP"),
    ("hpid", "HPID"), ("huser", "HUSER"), ("nice", "NI"), ("pgid", "PGID"), ("state", "STATE"), ("stime", "STIME"),
    ("vsz", "VSZ"), ("rss", "RSS"),
]

/// uid (or gid) -> name from a passwd (or group) file's text.
func idNames(_ text: String?) -> [UInt32: String] {
    var out: [UInt32: String] = [:]
    for line in (text ?? "").split(separator: "\n") {
        let f = line.split(separator: ":", omittingEmptySubsequences: false)
        if f.count >= 3, let id = UInt32(f[2]), out[id] == nil { out[id] = String(f[0]) }
    }
    return out
}

func topRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard let ref = p.positionals.first else { throw Failure(.usage, "top needs a container (id, prefix or name)") }
    var wanted = Array(p.positionals.dropFirst()).flatMap { $0.split(separator: ",").map(String.init) }
    if wanted.isEmpty { wanted = ["user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"] }
    for w in wanted where !topDescriptors.contains(where: { $0.0 == w }) {
        throw Failure(.usage, "top: unknown descriptor \(quoted(w)): use \(topDescriptors.map { $0.0 }.joined(separator: ", "))")
    }
    let c = containers(g)
    let id = try runModeID(c, ref)
    return try docker(ref) {
        guard let live = c.liveStatus(id), live.status != "created" else { throw Failure(.state, "container \(ref) is not running") }
        let procs = try runtime(g).processes(id).compactMap { ProcessInfo($0) }
        // Names from the container's own files, resolved inside its root
        // (a symlink there never reaches the host's).
        let root = "/proc/\(live.pid)/root"
        let users = idNames(FS.readInRoot(root, "/etc/passwd", limit: 1 << 20))
        let groups = idNames(FS.readInRoot(root, "/etc/group", limit: 1 << 20))
        let hostUsers = idNames(try? FS.readString("/etc/passwd")), hostGroups = idNames(try? FS.readString("/etc/group"))
        let ticks = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        var btime: UInt64 = 0
        for line in ((try? FS.readString("/proc/stat")) ?? "").split(separator: "\n") where line.hasPrefix("btime ") {
            btime = UInt64(line.dropFirst(6)) ?? 0
        }
        let now = realtimeNanos()
        let nsPID = Dictionary(procs.map { ($0.hostPID, $0.pid) }, uniquingKeysWith: { a, _ in a })
        var rows: [[String]] = [wanted.map { w in topDescriptors.first { $0.0 == w }!.1 }]
        for pr in procs {
            let started = btime * 1_000_000_000 + pr.startTicks * 1_000_000_000 / ticks
            let elapsed = now > started ? now - started : 0
            let cpuNs = pr.cpuTicks * 1_000_000_000 / ticks
            rows.append(wanted.map { w in
                switch w {
                case "user": return users[pr.uid] ?? String(pr.uid)
                case "huser": return hostUsers[pr.uid] ?? String(pr.uid)
                case "group": return groups[pr.gid] ?? String(pr.gid)
                case "hgroup": return hostGroups[pr.gid] ?? String(pr.gid)
                case "pid": return String(pr.pid)
                case "hpid": return String(pr.hostPID)
                case "ppid": return String(nsPID[pr.hostPPID] ?? 0)
                case "pgid": return String(nsPID[pr.pgid] ?? pr.pgid)
                case "pcpu": return fixed(elapsed == 0 ? 0 : Double(cpuNs) * 100 / Double(elapsed), 3)
                case "etime": return goDuration(elapsed)
                case "tty": return pr.tty
                case "time": return goDuration(cpuNs / 1_000_000_000 * 1_000_000_000)
                case "args": return pr.args
                case "comm": return pr.comm
                case "nice": return String(pr.nice)
                case "state": return pr.state
                case "stime": return goTime(Int64(started / 1_000_000_000))
                case "vsz": return String(pr.vszKiB)
                case "rss": return String(pr.rssKiB)
                default: return ""
                }
            })
        }
        writeStdout(RowFormat.align(rows.map { $0.joined(separator: "\t") }.joined(separator: "\n")) + "\n")
        return 0
    }
}

let topCommand = Command(name: "top", summary: "the processes of a running container, with ps columns",
                         usage: "CONTAINER [DESCRIPTOR...]\n\nDescriptors: " + String.plainJoin(topDescriptors.map { $0.0 }, separator: ", ")
                             + " (default: user pid ppid pcpu etime tty time args)",
                         flags: [], stopAtPositional: true, run: topRun)

// MARK: - port

func portRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard let ref = p.positionals.first else { throw Failure(.usage, "port needs a container (id, prefix or name)") }
    guard p.positionals.count <= 2 else { throw Failure(.usage, "port takes a container and at most one PRIVATE_PORT[/PROTO], got \(p.positionals.count) arguments") }
    let c = containers(g)
    let id = try runModeID(c, ref)
    let ports = publishedPorts(c.spec(id)?.annotations?[Annotation.ports])
    func host(_ m: PortMapping) -> String { "\(m.hostIP?.description ?? "0.0.0.0"):\(m.hostPort)" }
    guard p.positionals.count == 2 else {
        writeStdout(ports.map { "\($0.containerPort)/\($0.proto) -> \(host($0))\n" }.joined())
        return 0
    }
    let want = p.positionals[1]
    let parts = want.split(separator: "/", maxSplits: 1).map(String.init)
    let proto = parts.count == 2 ? parts[1] : "tcp"
    let hits = ports.filter { parts.first.flatMap { Int($0) } == $0.containerPort && $0.proto == proto }
    guard !hits.isEmpty else { throw Failure(.notFound, "failed to find published port \(quoted(want))") }
    writeStdout(hits.map { host($0) + "\n" }.joined())
    return 0
}

let portCommand = Command(name: "port", summary: "a container's published ports: PRIVATE/PROTO -> HOSTIP:HOSTPORT",
                          usage: "CONTAINER [PRIVATE_PORT[/PROTO]]", flags: [], run: portRun)

// MARK: - wait

func waitRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    let c = containers(g)
    var code: Int32 = 0
    for ref in try refs(p, "wait") {
        do {
            try docker(ref) {
                let id = try c.resolve(ref)
                while true {
                    guard let m = c.load(id) else {
                        throw Failure(.notFound, "container \(ref) was removed before its exit code could be read")
                    }
                    if c.statusText(m).state == "exited" {
                        writeStdout("\(m.exitCode ?? -1)\n")
                        return
                    }
                    usleep(100_000)
                }
            }
        } catch let e as Failure {
            Log.error("wait \(ref): \(e)")
            code = exitCode(e, programCodes: false)
        }
    }
    return code
}

let waitCommand = Command(name: "wait", summary: "block until containers stop, then print their exit codes",
                          usage: "CONTAINER...", flags: [], run: waitRun)

// MARK: - rename

func renameRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count == 2 else { throw Failure(.usage, "rename takes a container and its new name, got \(p.positionals.count) arguments") }
    let (ref, name) = (p.positionals[0], p.positionals[1])
    guard validName(name) else {
        throw Failure(.invalid, "invalid name \(quoted(name)): use letters, digits, _ . - and start with a letter or digit")
    }
    let c = containers(g)
    let id = try runModeID(c, ref)
    try docker(ref) { try c.rename(id, to: name) }
    return 0
}

let renameCommand = Command(name: "rename", summary: "give a container another name (running or stopped)",
                            usage: "CONTAINER NEW_NAME", flags: [], run: renameRun)
