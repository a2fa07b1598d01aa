import Compile
import CShim
import Glibc
import JSON
import Rootfs
import Runtime
import Spec
import SpecJSON
import Sys

// The OCI lifecycle commands, with runc's names, flags and output.

/// Runs `body` about container `id`; its errors are reported as
/// `minicontainer: <command> <id>: <what>`.
func about<T>(_ id: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch var e as Failure where e.kind != .usage {
        if e.subject == nil { e.subject = id }
        throw e
    }
}

func oneID(_ p: Parsed, _ command: String) throws -> String {
    guard let id = p.positionals.first else { throw Failure(.usage, "\(command) needs a container id (see 'minicontainer \(command) --help')") }
    guard p.positionals.count == 1 else { throw Failure(.usage, "\(command) takes one container id, got \(p.positionals.count) arguments") }
    return id
}

func intFlag(_ p: Parsed, _ key: String) throws -> Int {
    guard let s = p.string(key) else { return 0 }
    guard let n = Int(s), n >= 0 else { throw Failure(.usage, "--\(key) needs a non-negative number, not \(quoted(s))") }
    return n
}

let createFlags: [Flag] = [
    Flag(["b", "bundle"], value: "DIR", "the bundle directory (default .)"),
    Flag(["console-socket"], value: "PATH", "a unix socket to send the terminal's master to"),
    Flag(["pid-file"], value: "FILE", "write the init's pid to FILE"),
    Flag(["no-pivot"], "do not use pivot_root (for a rootfs on ramfs)"),
    Flag(["no-new-keyring"], "accepted for runc compatibility"),
    Flag(["preserve-fds"], value: "N", "pass N more file descriptors (3..3+N-1) to the container"),
]

func createOptions(_ p: Parsed, id: String) throws -> CreateOptions {
    var o = CreateOptions(id: id, bundle: FS.absolute(p.string("bundle") ?? "."))
    o.pidFile = p.string("pid-file")
    o.consoleSocket = p.string("console-socket").map { FS.absolute($0) }
    o.noPivot = p.bool("no-pivot")
    o.preserveFds = try intFlag(p, "preserve-fds")
    return o
}

let createCommand = Command(name: "create", summary: "create a container from a bundle; it waits for start",
                            usage: "[flags] ID", flags: createFlags) { p, g in
    let id = try oneID(p, "create")
    return try about(id) {
        var o = try createOptions(p, id: id)
        o.systemdCgroup = g.systemdCgroup
        _ = try runtime(g).create(o)
        return 0
    }
}

let startCommand = Command(name: "start", summary: "run the process of a created container, or start stopped run-mode containers again",
                           usage: "ID | CONTAINER...", flags: []) { p, g in
    // An OCI container under --root: runc's start. Else Docker's: each
    // stopped run-mode container runs again, detached, with its root and settings.
    if p.positionals.count == 1, runtime(g).store.exists(p.positionals[0]) {
        let id = p.positionals[0]
        return try about(id) { try runtime(g).start(id); return 0 }
    }
    if p.positionals.isEmpty { throw Failure(.usage, "start needs a container id (or run-mode containers' names)") }
    let c = containers(g)
    return forEach(p.positionals, "start") { ref in
        guard let id = c.tryResolve(ref) else {
            // Not ours: the OCI start of a name runc would take (its error).
            try runtime(g).start(ref)
            return
        }
        if runtime(g).store.exists(id), c.liveStatus(id)?.status == "created" {
            try runtime(g).start(id)
        } else {
            try c.startAgain(id)
        }
        writeStdout(ref + "\n")
    }
}

let restartCommand = Command(name: "restart", summary: "stop run-mode containers (as stop does) and start them again",
                             usage: "[-t SECONDS] CONTAINER...",
                             flags: [Flag(["t", "time", "timeout"], value: "SECONDS", "seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10)")]) { p, g in
    if p.positionals.isEmpty { throw Failure(.usage, "restart needs at least one container (id, prefix or name)") }
    let given = try timeoutFlag(p)
    let c = containers(g)
    return forEach(p.positionals, "restart") { ref in
        let id = try c.resolve(ref)
        try c.stop(id, timeout: given ?? c.stopTimeout(id))
        try c.startAgain(id)
        writeStdout(ref + "\n")
    }
}

let stateCommand = Command(name: "state", summary: "print a container's OCI state as JSON", usage: "ID", flags: []) { p, g in
    let id = ociID(try oneID(p, "state"), g)
    return try about(id) {
        writeStdout(try runtime(g).state(id).pretty())
        return 0
    }
}

let killCommand = Command(name: "kill", summary: "send a signal (default SIGTERM) to a container's init",
                          usage: "[--all] ID [SIGNAL]",
                          flags: [Flag(["a", "all"], "signal every process in the container")]) { p, g in
    guard let ref = p.positionals.first else { throw Failure(.usage, "kill needs a container id") }
    guard p.positionals.count <= 2 else { throw Failure(.usage, "kill takes an id and a signal") }
    let name = p.positionals.count == 2 ? p.positionals[1] : "SIGTERM"
    guard let sig = Signal.parse(name) else { throw Failure(.invalid, "unknown signal \(quoted(name))") }
    return try about(ref) { try runtime(g).kill(try runningID(ref, g), signal: sig, all: p.bool("all")); return 0 }
}

let deleteCommand = Command(name: "delete", summary: "remove a container's state, cgroup and processes",
                            usage: "[--force] ID",
                            flags: [Flag(["f", "force"], "kill a running container first")]) { p, g in
    let id = try oneID(p, "delete")
    let rt = runtime(g)
    if p.bool("force") && !rt.store.exists(id) {
        return 0  // runc: delete --force of a missing container succeeds
    }
    return try about(id) { try rt.delete(id, force: p.bool("force")); return 0 }
}

let runCommand = Command(name: "run", summary: "run a container: an image or --rootfs Docker-style, or a bundle as runc does",
                         usage: "[run flags] IMAGE [COMMAND [ARG...]] | [run flags] --rootfs PATH COMMAND [ARG...] | [--bundle DIR] [flags] ID\n\n" + runModeRule,
                         flags: createFlags + [Flag(["d", "detach"], "return after start; the container runs on"),
                                               Flag(["keep"], "accepted for runc compatibility")]
                             + runFlagTable + runModeFlags,
                         stopAtPositional: true) { p, g in
    switch try runMode(p, g) {
    case .rootfs: return try dockerRun(p, g)
    case .image(let ref): return try dockerRun(p, g, image: ref)
    case .bundle: break
    }
    let id = try oneID(p, "run")
    return try about(id) {
        var o = RunOptions(create: try createOptions(p, id: id))
        o.create.systemdCgroup = g.systemdCgroup
        o.detach = p.bool("detach")
        return try runtime(g).run(o)
    }
}

let listCommand = Command(name: "list", summary: "list containers", usage: "[--format table|json] [-q]",
                          flags: [Flag(["f", "format"], value: "table|json", "output format"),
                                  Flag(["q", "quiet"], "print the ids only")]) { p, g in
    let states = runtime(g).list()
    if p.bool("quiet") {
        writeStdout(states.map { ($0["id"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? "") + "\n" }.joined())
        return 0
    }
    switch p.string("format") ?? "table" {
    case "json":
        writeStdout(JSONValue.array(states).compact() + "\n")
    case "table":
        // Columns as wide as their widest cell (runc's tabwriter), so a
        // 64-hex id does not run into its PID.
        var rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        for s in states {
            func str(_ k: String) -> String {
                switch s[k] { case .string(let v)?: return v; case .int(let i)?: return String(i); default: return "" }
            }
            rows.append(["id", "pid", "status", "bundle", "created", "owner"].map(str))
        }
        writeStdout(table(rows))
    case let f:
        throw Failure(.usage, "--format must be table or json, not \(quoted(f))")
    }
    return 0
}

let psCommand = Command(name: "ps", summary: "list run-mode containers, or the processes in a container",
                        usage: "[-a] [-q] [--filter KEY=VALUE]... [--format table|json|TEMPLATE] | [--format table|json] ID",
                        flags: [Flag(["format"], value: "table|json|TEMPLATE", "output format: table, json, or a Go template ('{{.Names}} {{.Status}}', 'table {{.ID}}\\t{{.Names}}')"),
                                Flag(["a", "all"], "every run-mode container, stopped ones too"),
                                Flag(["f", "filter"], value: "KEY=VALUE", "only containers that match: name=REGEX, id=PREFIX, status=created|running|paused|restarting|exited, label=KEY[=VALUE], ancestor=IMAGE (repeatable)", repeats: true),
                                Flag(["q", "quiet"], "print the ids only")]) { p, g in
    if p.has("filter") && !p.positionals.isEmpty { throw Failure(.usage, "ps: --filter lists run-mode containers; it takes no container id") }
    guard var id = p.positionals.first else { return try dockerPs(p, g) }
    if !runtime(g).store.exists(id), let full = containers(g).tryResolve(id) { id = full }
    return try about(id) {
        let pids = try runtime(g).processes(id)
        switch p.string("format") ?? "table" {
        case "json":
            writeStdout(JSONValue.array(pids.map { .int(Int64($0)) }).compact() + "\n")
        case "table":
            var out = "PID".padded(10) + "CMD\n"
            for pid in pids {
                let cmd = ((try? FS.readBytes("/proc/\(pid)/cmdline")) ?? []).map { $0 == 0 ? 32 : $0 }
                out += String(pid).padded(10) + String(decoding: cmd, as: UTF8.self) + "\n"
            }
            writeStdout(out)
        case let f:
            throw Failure(.usage, "--format must be table or json, not \(quoted(f))")
        }
        return 0
    }
}

let pauseCommand = Command(name: "pause", summary: "freeze every process of a container", usage: "ID", flags: []) { p, g in
    let ref = try oneID(p, "pause")
    return try about(ref) { try runtime(g).pause(try runningID(ref, g)); return 0 }
}

let resumeCommand = Command(name: "resume", summary: "thaw a paused container", usage: "ID", flags: []) { p, g in
    let ref = try oneID(p, "resume")
    return try about(ref) { try runtime(g).resume(try runningID(ref, g)); return 0 }
}

let featuresCommand = Command(name: "features", summary: "print what this runtime supports, as JSON", usage: "", flags: []) { p, _ in
    if let extra = p.positionals.first { throw Failure(.usage, "features takes no arguments, got \(quoted(extra))") }
    writeStdout(Features.document(runtimeVersion: version, commit: String(cString: mc_commit())).pretty())
    return 0
}

/// `exec --cap`: the capabilities go into the bounding, effective and
/// permitted sets only, never the inheritable or ambient ones (as runc since
/// 1.1.2, CVE-2022-29162): there they would survive an execve into a
/// program of a non-root user, who would then hold them.
func execCapabilities(_ base: Capabilities?, adding caps: [String]) -> Capabilities {
    var c = base ?? Capabilities()
    func add(_ l: [String]?) -> [String] { (l ?? []) + caps.filter { !(l ?? []).contains($0) } }
    c.bounding = add(c.bounding); c.effective = add(c.effective); c.permitted = add(c.permitted)
    return c
}

let execCommand = Command(
    name: "exec", summary: "run a process in a running container",
    usage: "[flags] ID [COMMAND [ARG...]]",
    flags: [
        Flag(["p", "process"], value: "FILE", "the process as OCI JSON (args, env, cwd, user, ...); - reads stdin"),
        Flag(["t", "tty"], "allocate a terminal"),
        Flag(["console-socket"], value: "PATH", "send the terminal's master to this unix socket"),
        Flag(["d", "detach"], "return once the process started"),
        Flag(["pid-file"], value: "FILE", "write the process's pid to FILE"),
        Flag(["cwd"], value: "DIR", "working directory"),
        Flag(["w", "workdir"], value: "DIR", "working directory (as --cwd)"),
        Flag(["i", "interactive"], "keep standard input open (run-mode containers: else it is /dev/null)"),
        Flag(["e", "env"], value: "KEY=VALUE", "add an environment variable", repeats: true),
        Flag(["u", "user"], value: "UID[:GID]", "user and group ids"),
        Flag(["additional-gids", "g"], value: "GID", "an additional group", repeats: true),
        Flag(["c", "cap"], value: "CAP", "add a capability", repeats: true),
        Flag(["no-new-privs"], "set no_new_privs"),
        Flag(["preserve-fds"], value: "N", "pass N more file descriptors"),
        Flag(["process-label"], value: "LABEL", "the SELinux label of the process (refused where SELinux is off)"),
        Flag(["apparmor"], value: "PROFILE", "the AppArmor profile of the process (refused where AppArmor is off)"),
        Flag(["cgroup"], value: "PATH", "accepted for runc compatibility"),
    ],
    stopAtPositional: true
) { p, g in
    guard var id = p.positionals.first else { throw Failure(.usage, "exec needs a container id") }
    let rt = runtime(g)
    var runModeRoot: String?
    if containers(g).tryResolve(id) != nil { programExitCodes = true }
    if !rt.store.exists(id), let full = containers(g).tryResolve(id) {
        if !rt.store.exists(full) {
            throw Failure(.state, "container \(p.positionals[0]) is not running")
        }
        id = full
        runModeRoot = containers(g).dir(id) + "/merged"
        if !p.bool("interactive") {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if null >= 0 { dup2(null, 0); close(null) }
        }
    }
    return try about(p.positionals[0]) {
        var process: Process
        if let file = p.string("process") {
            process = try decodeFlagFile(file, stdinName: "process.json", SpecJSON.process(_:file:))
        } else {
            let args = Array(p.positionals.dropFirst())
            guard !args.isEmpty else { throw Failure(.usage, "exec needs a command after the container id (or --process FILE)") }
            process = try rt.baseProcess(id)
            process.args = args
            process.terminal = p.bool("tty")
            // Docker's exec -t: TERM=xterm unless the container has a TERM
            // (run-mode containers only; an OCI exec takes the config's env).
            if programExitCodes && p.bool("tty") && !(process.env ?? []).contains(where: { $0.hasPrefix("TERM=") }) {
                process.env = (process.env ?? []) + ["TERM=xterm"]
            }
            if let cwd = p.string("cwd") ?? p.string("workdir") { process.cwd = cwd }
            for e in p.strings("env") {
                let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
                process.env = (process.env ?? []).filter { !$0.hasPrefix(key + "=") } + [e]
            }
            if let u = p.string("user"), let merged = runModeRoot {
                // Run-mode containers: names too, looked up in the container's root.
                do {
                    process.user = try parseUser(u, rootfs: merged, host: realHost)
                } catch let e as CompileError {
                    throw Failure(.invalid, e.message)
                }
            } else if let u = p.string("user") {
                // Empty fields kept: "" and ":" are refused, not an empty array indexed.
                let parts = u.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard parts.count <= 2, let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                    throw Failure(.usage, "--user must be UID[:GID] in numbers, not \(quoted(u))")
                }
                process.user = User(uid: uid, gid: parts.count == 2 ? UInt32(parts[1])! : 0)
            }
            let gids = try p.strings("additional-gids").map { s -> UInt32 in
                guard let n = UInt32(s) else { throw Failure(.usage, "--additional-gids needs numbers, not \(quoted(s))") }
                return n
            }
            if !gids.isEmpty { process.user.additionalGids = gids }
            let caps = p.strings("cap")
            if !caps.isEmpty { process.capabilities = execCapabilities(process.capabilities, adding: caps) }
            // As runc: the process's own confinement (checked at exec against the host's LSMs).
            if let a = p.string("apparmor"), !a.isEmpty { process.apparmorProfile = a }
            if let l = p.string("process-label"), !l.isEmpty { process.selinuxLabel = l }
            if p.bool("no-new-privs") { process.noNewPrivileges = true }
        }
        if p.string("process") != nil && p.bool("tty") { process.terminal = true }
        var o = ExecOptions(id: id, process: process)
        o.consoleSocket = p.string("console-socket").map { FS.absolute($0) }
        o.detach = p.bool("detach")
        o.pidFile = p.string("pid-file")
        o.preserveFds = try intFlag(p, "preserve-fds")
        return try rt.exec(o)
    }
}
