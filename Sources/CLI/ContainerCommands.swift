import Compile
import Engine
import Glibc
import Image
import JSON
import Network
import Runtime
import Spec
import Sys

// The Docker-style commands over run-mode containers: `run --rootfs`, `ps`
// without an id, stop, rm, prune, logs, inspect. Containers are named by
// id, unique id prefix or name.

/// Flags `run` adds to the shared run flags in Docker mode.
let runModeFlags: [Flag] = [
    Flag(["rm"], "remove the container when it exits"),
    Flag(["cidfile"], value: "FILE", "write the container's id to FILE (which must not exist)"),
    Flag(["pull"], value: "missing|always|never", "pull the image first: when it is missing (default), always, or never"),
]

func containers(_ g: Globals) -> Containers {
    Containers(locations: g.locations)
}

/// The OCI runtime over --root, with the network driver the bundles'
/// annotations choose a mode of (Engine's BridgeNetwork).
func runtime(_ g: Globals) -> Runtime { Runtime(locations: g.locations, network: ContainerNetwork(dir: g.locations.network)) }

/// An OCI container id as given, or else the run-mode container a name or
/// unique id prefix names (so every command takes those too).
func ociID(_ ref: String, _ g: Globals) -> String {
    if runtime(g).store.exists(ref) { return ref }
    return containers(g).tryResolve(ref) ?? ref
}

/// ociID, for a command that needs the container running: a run-mode
/// container that has exited (the monitor deleted its OCI state, its
/// metadata stays for logs, inspect and rm) is "not running", named as the
/// user named it, not "does not exist".
func runningID(_ ref: String, _ g: Globals) throws -> String {
    let id = ociID(ref, g)
    if !runtime(g).store.exists(id), containers(g).tryResolve(ref) != nil {
        throw Failure(.state, "container \(ref) is not running")
    }
    return id
}

/// Runs `body` about `subject` (a container reference), whose failures
/// name it.
func docker<T>(_ subject: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch var e as Failure where e.kind != .usage {
        if e.subject == nil { e.subject = subject }
        throw e
    }
}

/// `run [flags] --rootfs PATH CMD [ARG...]`.
func dockerRun(_ p: Parsed, _ g: Globals, image ref: String? = nil) throws -> Int32 {
    programExitCodes = true
    var flags = runFlags(from: p, command: ref == nil ? p.positionals : Array(p.positionals.dropFirst()))
    do {
        return try dockerRunFlags(&flags, p, g, image: ref)
    } catch let f as PullFailed {
        return f.code
    }
}

func dockerRunFlags(_ flags: inout RunFlags, _ p: Parsed, _ g: Globals, image ref: String?) throws -> Int32 {
    return try docker {
        // An image: resolved (its layers unpacked) and held, so that no
        // rmi or prune removes it before the container's config.json names
        // it (Annotation.imageID: from then on GC sees it in use).
        var hold: ImageHold? = nil
        defer { hold?.release() }
        if let ref = ref {
            var (image, h) = try resolveImage(try pullForRun(ref, p, g), g)
            image.reference = ref  // as the user named it (inspect's Image)
            flags.image = image
            hold = h
        }
        // container:NAME or a short id: the container's OCI id, in the
        // annotation the runtime reads (it knows no names).
        if let n = flags.network, n.hasPrefix("container:") {
            flags.network = "container:" + ociID(String(n.dropFirst(10)), g)
        }
        // Volumes: -v NAME:/path and -v /path become their _data before
        // compile; what this run made goes again if it fails.
        let c = containers(g)
        var vols = RunVolumes()
        do {
            try resolveRunVolumes(&flags, c, &vols, mountFlags: p.strings("mount"))
        } catch {
            vols.undo(c)
            throw error
        }
        var ran = false
        defer { if !ran { vols.undo(c) } }
        var spec = try compile(flags, host: realHost)
        if let image = flags.image, !image.volumes.isEmpty {
            // The image's VOLUMEs no flag mounts: anonymous volumes, compiled
            // in again so they sort among the other mounts.
            if try addImageVolumes(image, &flags, mounted: spec.mounts ?? [], c, &vols) {
                spec = try compile(flags, host: realHost)
            }
        }
        // The exec stub or the re-execution, decided before the engine makes
        // anything (SealedExe.settle); a re-execution first undoes the volumes.
        // The stub made here only proves one can be (create makes its own).
        if let stub = try SealedExe.settle(for: spec, before: { vols.undo(c); hold?.release() }) { close(stub) }
        let layers = flags.image?.layers ?? spec.root.map { [$0.path] } ?? []
        for u in vols.copyUp { try c.copyUp(volume: u.volume, destination: Path.clean(u.destination), layers: layers) }
        var req = Containers.RunRequest(spec: spec, name: flags.name, hostname: spec.hostname ?? "minicontainer",
                                        rootfs: spec.root?.path ?? flags.rootfs!)
        // A cidfile is the run's until the container exists: removed if it fails.
        var prepared = false
        req.prepared = { hold?.release(); hold = nil; prepared = true; vols.hold.release() }
        req.cidfile = p.string("cidfile").map { FS.absolute($0) }
        if let image = flags.image {
            req.lower = image.layers
            req.image = image.reference
            req.imageID = image.id
        }
        req.detach = p.bool("detach")
        req.autoRemove = p.bool("rm")
        req.interactive = flags.interactive
        req.tty = flags.tty
        do {
            let code = try c.run(req)
            ran = true
            return code
        } catch {
            if prepared, let f = req.cidfile { unlink(f) }
            throw error
        }
    }
}

func psRows(_ c: Containers, all: Bool) -> [(Meta, String, String)] {
    c.mine().compactMap { m in
        let (state, text) = c.statusText(m)
        if !all && state != "running" && state != "paused" { return nil }
        return (m, state, text)
    }
}

/// A ps row as templates and filters see it: Docker's and podman's field
/// names (`{{.Names}}`, `{{.Status}}`, `{{.Labels}}`), with the types they
/// print as.
func psRowJSON(_ c: Containers, _ m: Meta, state: String, text: String) -> JSONValue {
    let ann = c.spec(m.id)?.annotations ?? [:]
    var o = JSONObject()
    o["ID"] = .string(String(m.id.prefix(12)))
    o["Id"] = .string(m.id)
    o["Names"] = .string(m.name)
    o["Image"] = .string(m.image ?? "")
    o["ImageID"] = .string(m.imageID ?? "")
    o["Command"] = .string(m.command.joined(separator: " "))
    o["CreatedAt"] = .string(goTime(m.createdUnix))
    o["Created"] = .int(m.createdUnix)
    o["RunningFor"] = .string(humanDuration(Int64(time(nil)) - m.createdUnix) + " ago")
    o["Ports"] = .string(portsText(ann[Annotation.ports]))
    o["State"] = .string(state)
    o["Status"] = .string(text)
    o["Labels"] = .object(JSONObject(containerLabels(ann).map { ($0.key, .string($0.value)) }))
    o["Networks"] = .string(ann[Annotation.network] ?? "")
    o["Pid"] = .int(Int64(state == "running" || state == "paused" ? c.liveStatus(m.id)?.pid ?? 0 : 0))
    o["ExitCode"] = .int(Int64(m.exitCode ?? 0))
    o["Exited"] = .bool(state == "exited")
    o["StartedAt"] = .int(m.startedUnix ?? 0)
    o["ExitedAt"] = .int(m.finishedUnix ?? 0)
    o["AutoRemove"] = .bool(m.autoRemove)
    o["Mounts"] = .array((c.spec(m.id)?.mounts ?? []).filter { $0.type == "bind" && !($0.source ?? "").hasPrefix(c.dir(m.id) + "/") }.map { .string($0.destination) })
    return .object(o)
}

/// The published ports of a container's annotation, those that parse
/// (a host port not yet chosen, 0, is left out).
func publishedPorts(_ annotation: String?) -> [PortMapping] {
    (annotation ?? "").split(separator: ",").compactMap { try? PortMapping(String($0)) }
}

/// The ports annotation as ps shows it: `0.0.0.0:8081->80/tcp, ...`.
func portsText(_ annotation: String?) -> String {
    publishedPorts(annotation).map { "\($0.hostIP?.description ?? "0.0.0.0"):\($0.hostPort)->\($0.containerPort)/\($0.proto)" }
        .joined(separator: ", ")
}

/// `2026-12-02 00:43:30 +0000 UTC`, as Go prints a time.
func goTime(_ unix: Int64) -> String {
    var t = time_t(unix)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func d(_ v: Int32, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    return "\(d(tmv.tm_year + 1900, 4))-\(d(tmv.tm_mon + 1, 2))-\(d(tmv.tm_mday, 2)) \(d(tmv.tm_hour, 2)):\(d(tmv.tm_min, 2)):\(d(tmv.tm_sec, 2)) +0000 UTC"
}

/// ps --filter KEY=VALUE, as podman reads them: name (a regular
/// expression, unanchored), id (a prefix), status (created, running,
/// paused, restarting, exited), label (KEY or
/// KEY=VALUE), ancestor (an image reference or id). Values of one key are
/// alternatives (but every label must match); different keys must all match.
struct PsFilter {
    var values: [String: [String]] = [:]

    static let keys = ["name", "id", "status", "label", "ancestor"]
    static let states = ["created", "running", "paused", "restarting", "exited"]

    init(_ flags: [String]) throws {
        for f in flags {
            guard let eq = f.firstIndex(of: "=") else { throw Failure(.usage, "invalid filter \(quoted(f))") }
            let k = String(f[..<eq]), v = String(f[f.index(after: eq)...])
            guard PsFilter.keys.contains(k) else { throw Failure(.usage, "\(quoted(k)) is an invalid filter") }
            if k == "status", !PsFilter.states.contains(v) {
                throw Failure(.usage, "unknown container state: \(quoted(v)): use created, running, paused, restarting or exited")
            }
            if k == "name" { _ = try PosixRegex(v) }
            values[k, default: []].append(v)
        }
    }

    var isEmpty: Bool { values.isEmpty }
    /// A status filter lists stopped containers without -a (as Docker and podman).
    var namesStatus: Bool { values["status"] != nil }

    func matches(_ c: Containers, _ m: Meta, state: String, imageIDs: (String) -> String?) -> Bool {
        for (k, vs) in values {
            let ok: Bool
            switch k {
            case "name": ok = vs.contains { (try? PosixRegex($0))?.matches(m.name) ?? false }
            case "id": ok = vs.contains { !$0.isEmpty && m.id.hasPrefix($0) }
            case "status": ok = vs.contains(state)
            case "label":
                let labels = c.labels(m.id)
                ok = vs.allSatisfy { v in
                    if let eq = v.firstIndex(of: "=") {
                        let key = String(v[..<eq]), val = String(v[v.index(after: eq)...])
                        return labels.contains { $0.key == key && $0.value == val }
                    }
                    return labels.contains { $0.key == v }
                }
            case "ancestor":
                ok = vs.contains { v in
                    guard let id = m.imageID else { return false }
                    let hex = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
                    let bare = v.hasPrefix("sha256:") ? String(v.dropFirst(7)) : v
                    if m.image == v || (bare.count >= 4 && hex.hasPrefix(bare)) { return true }
                    return imageIDs(v) == id
                }
            default: ok = false
            }
            if !ok { return false }
        }
        return true
    }
}

/// A POSIX extended regular expression (regcomp), which is what Go's
/// syntax comes to for names.
final class PosixRegex {
    var re = regex_t()

    init(_ pattern: String) throws {
        let rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB)
        guard rc == 0 else {
            var buf = [CChar](repeating: 0, count: 256)
            regerror(rc, &re, &buf, buf.count)
            throw Failure(.usage, "invalid regular expression \(quoted(pattern)): \(String(cString: buf))")
        }
    }

    deinit { regfree(&re) }

    func matches(_ s: String) -> Bool { regexec(&re, s, 0, nil, 0) == 0 }
}

let psFormat = RowFormat(name: "ps", rowType: "container", headers: ["ID": "CONTAINER ID", "Id": "CONTAINER ID", "Names": "NAMES"])

/// `ps [-a] [-q] [--filter K=V]... [--format table|json|TEMPLATE]` without an id.
func dockerPs(_ p: Parsed, _ g: Globals) throws -> Int32 {
    let c = containers(g)
    let filter = try PsFilter(p.strings("filter"))
    var rows = psRows(c, all: p.bool("all") || filter.namesStatus)
    if !filter.isEmpty {
        // ancestor=REF: the id the store gives REF (looked up once each).
        var ids: [String: String?] = [:]
        let store = try? imageStore(g)
        func imageID(_ ref: String) -> String? {
            if let v = ids[ref] { return v }
            let v = (try? store?.resolve(storeRef(ref, g)))??.id.description
            ids[ref] = v
            return v
        }
        rows = rows.filter { filter.matches(c, $0.0, state: $0.1, imageIDs: imageID) }
    }
    if p.bool("quiet") {
        writeStdout(rows.map { String($0.0.id.prefix(12)) + "\n" }.joined())
        return 0
    }
    func ago(_ m: Meta) -> String {
        m.createdUnix == 0 ? "" : humanDuration(Int64(time(nil)) - m.createdUnix) + " ago"
    }
    func command(_ m: Meta) -> String {
        let s = m.command.joined(separator: " ")
        return "\"" + (s.count > 20 ? String(s.prefix(19)) + "…" : s) + "\""
    }
    switch p.string("format") ?? "table" {
    case "json":
        let arr: [JSONValue] = rows.map { m, state, text in
            var o = JSONObject()
            o["id"] = .string(m.id)
            o["name"] = .string(m.name)
            o["command"] = .string(m.command.joined(separator: " "))
            o["state"] = .string(state)
            o["status"] = .string(text)
            o["created"] = .string(m.created)
            o["exitCode"] = m.exitCode.map { .int(Int64($0)) } ?? .null
            return .object(o)
        }
        writeStdout(JSONValue.array(arr).compact() + "\n")
    case "table":
        let table: [[String]] = [["CONTAINER ID", "NAME", "COMMAND", "STATUS", "CREATED"]]
            + rows.map { m, _, text in [String(m.id.prefix(12)), m.name, command(m), text, ago(m)] }
        var widths = [Int](repeating: 0, count: 5)
        for r in table { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in table {
            out += r.enumerated().map { i, c in i == 4 ? c : c.padded(widths[i] + 3) }.joined() + "\n"
        }
        writeStdout(out)
    case let f where RowFormat.isTemplate(f):
        writeStdout(try psFormat.render(f, rows.map { psRowJSON(c, $0.0, state: $0.1, text: $0.2) }))
    case let f:
        throw Failure(.usage, "--format must be table, json or a Go template ('{{.Names}} {{.Status}}'), not \(quoted(f))")
    }
    return 0
}

func refs(_ p: Parsed, _ command: String) throws -> [String] {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "\(command) needs at least one container (id, prefix or name)") }
    return p.positionals
}

let stopCommand = Command(name: "stop", summary: "stop run-mode containers: SIGTERM, then SIGKILL after a timeout",
                          usage: "[-t SECONDS] CONTAINER...",
                          flags: [Flag(["t", "time", "timeout"], value: "SECONDS", "seconds to wait before SIGKILL (default the container's --stop-timeout, else 10)")]) { p, g in
    let given = try timeoutFlag(p)
    let c = containers(g)
    return forEach(try refs(p, "stop"), "stop") { ref in
        let id = try c.resolve(ref)
        try c.stop(id, timeout: given ?? c.stopTimeout(id))
        writeStdout(ref + "\n")
    }
}

/// `-t SECONDS` of stop and restart: nil when not given.
func timeoutFlag(_ p: Parsed) throws -> Int? {
    guard let t = p.string("time") else { return nil }
    guard let n = Int(t), n >= 0 else { throw Failure(.usage, "-t needs a number of seconds, not \(quoted(t))") }
    return n
}

/// Runs `body` for each container reference; a failure is printed as
/// `COMMAND REF: ...` and the others go on. The exit code: the last failure's, else 0.
func forEach(_ refs: [String], _ command: String, _ body: (String) throws -> Void) -> Int32 {
    var code: Int32 = 0
    for ref in refs {
        do {
            try docker(ref) { try body(ref) }
        } catch let e as Failure {
            Log.error("\(command) \(ref): \(e)")
            code = exitCode(e, programCodes: false)
        } catch {
            Log.error("\(command) \(ref): \(error)")
            code = 125
        }
    }
    return code
}

let rmCommand = Command(name: "rm", summary: "remove stopped run-mode containers (-f: stop them first)",
                        usage: "[-f] CONTAINER...|--all",
                        flags: [Flag(["f", "force"], "kill a running container first"),
                                Flag(["a", "all"], "every stopped container (with -f, every container)"),
                                Flag(["v", "volumes"], "also remove the anonymous volumes it used (named ones stay)")]) { p, g in
    let c = containers(g)
    var list = p.positionals
    if p.bool("all") {
        list = c.mine().filter { p.bool("force") || !c.isRunning($0.id) }.map { $0.id }
    } else if list.isEmpty {
        throw Failure(.usage, "rm needs at least one container (id, prefix or name), or --all")
    }
    var code: Int32 = 0
    for ref in list {
        do {
            try docker(ref) {
                let id = try c.resolve(ref)
                if c.isRunning(id) && !p.bool("force") {
                    throw Failure(.state, "container \(id.prefix(12)) is running: stop it first or use rm -f")
                }
                c.remove(id, anonymousVolumes: p.bool("volumes"))
                writeStdout((p.bool("all") ? String(ref.prefix(12)) : ref) + "\n")
            }
        } catch let e as Failure {
            Log.error("rm \(ref): \(e)")
            code = exitCode(e, programCodes: false)
        }
    }
    return code
}

let pruneCommand = Command(name: "prune",
                           summary: "remove stopped containers, what crashed runs left, and the leases and published ports of containers that are gone",
                           usage: "[-f] [--network]",
                           flags: [Flag(["f", "force"], "do not ask (prune asks only when stdin is a terminal)"),
                                   Flag(["network"], "also remove our NAT table (nft ip minicontainer, or the iptables MINICONTAINER chains; ip_forward restored) and the bridge minicontainer0 when no container uses them")]) { p, g in
    if let extra = p.positionals.first { throw Failure(.usage, "prune takes no arguments, got \(quoted(extra))") }
    // Podman and Docker ask first; we ask a person at a terminal only, so
    // scripts (stdin not a terminal) and -f go ahead.
    if !p.bool("force") && isatty(0) == 1 {
        writeStdout("WARNING! This will remove all stopped containers. Are you sure you want to continue? [y/N] ")
        guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else { return 0 }
    }
    let c = containers(g)
    // Their disk use, taken before they go (a stopped container's root is
    // unmounted: its upper directory, log and bundle).
    var sizes: [String: Int64] = [:]
    for m in c.mine() where !c.isRunning(m.id) { sizes[m.id] = containerUsage(c.dir(m.id)) }
    let removed = c.prune()
    writeStdout(removed.map { $0.prefix(12) + "\n" }.joined())
    if !removed.isEmpty || p.bool("force") {
        writeStdout("Total reclaimed space: \(humanSize(removed.reduce(0) { $0 + (sizes[$1] ?? 0) }))\n")
    }
    // Leases and ports of containers that died unseen (any --root: a live
    // one still has its veth).
    do { _ = try c.reclaimNetwork() } catch { throw Failure(.failed, "network: \(error)") }
    if p.bool("network") {
        let done: Bool
        do { done = try Network.cleanUp(dir: g.locations.network) } catch { throw Failure(.failed, "network: \(error)") }
        if !done { Log.warn("prune --network: containers still use the network; the bridge and NAT table stay") }
    }
    return 0
}

let logsCommand = Command(name: "logs", summary: "print a container's output (stdout to stdout, stderr to stderr)",
                          usage: "[-f] [-t] [--since T] [--until T] [--tail N] CONTAINER",
                          flags: [Flag(["f", "follow"], "keep printing while the container runs"),
                                  Flag(["t", "timestamps"], "the time of each line before it"),
                                  Flag(["since"], value: "T", "only output from T on (RFC 3339 time, Unix seconds, or a duration back from now: 10m, 1h30m)"),
                                  Flag(["until"], value: "T", "only output up to T (as --since)"),
                                  Flag(["n", "tail"], value: "N", "only the last N lines (-1 or all: every line)")]) { p, g in
    let ref = try oneID(p, "logs")
    let c = containers(g)
    var q = LogQuery()
    q.follow = p.bool("follow")
    q.timestamps = p.bool("timestamps")
    if let t = p.string("tail"), t != "all", t != "-1" {
        guard let n = Int(t), n >= 0 else { throw Failure(.usage, "logs: --tail needs a number of lines, -1 or all, not \(quoted(t))") }
        q.tail = n
    }
    let now = LogTime.now()
    for key in ["since", "until"] {
        guard let v = p.string(key) else { continue }
        guard let t = LogTime.parseUser(v, now: now) else {
            throw Failure(.usage, "logs: --\(key) \(quoted(v)): not a time (RFC 3339, Unix seconds, or a duration such as 10m or 1h30m)")
        }
        if key == "since" { q.since = t } else { q.until = t }
    }
    return try docker(ref) {
        try c.printLogs(try c.resolve(ref), q)
        return 0
    }
}

let inspectFormat = RowFormat(name: "inspect", rowType: "container", tables: false)

let inspectCommand = Command(name: "inspect", summary: "print run-mode containers as a JSON array, or each through a Go template",
                             usage: "[-f|--format json|TEMPLATE] CONTAINER...",
                             flags: [Flag(["f", "format"], value: "json|TEMPLATE", "a Go template ('{{.State.Pid}}') applied to each container, or json (the default)")]) { p, g in
    let c = containers(g)
    let format = p.string("format") ?? "json"
    guard format == "json" || RowFormat.isTemplate(format) else {
        throw Failure(.usage, "--format must be json or a Go template ('{{.State.Pid}}'), not \(quoted(format))")
    }
    var out: [JSONValue] = []
    var code: Int32 = 0
    for ref in try refs(p, "inspect") {
        do {
            let id = try docker(ref) { try c.resolve(ref) }
            out.append(c.inspect(id, defaultCapabilities: runCapabilities))
        } catch let e as Failure {
            Log.error("inspect \(ref): \(e)")
            code = exitCode(e, programCodes: false)
        }
    }
    writeStdout(format == "json" ? JSONValue.array(out).pretty() : try inspectFormat.render(format, out))
    return code
}
