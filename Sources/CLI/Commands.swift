import CShim
import Glibc
import Runtime
import Spec
import Sys

// The command table and dispatch. Exit codes: 0 success; 125 for any error of
// minicontainer itself (usage, bad input, a failed operation); `run` returns
// the container's own code (126 cannot execute, 127 not found, 128+N killed
// by signal N).

public let version = "0.1.0"

public struct Globals {
    /// --root and the run-mode, network and cgroup homes (Sys/Locations.swift).
    public var locations = Locations()
    public var root: String { locations.root }
    public var log: String?
    public var logFormat = LogFormat.text
    public var debug = false
    public var systemdCgroup = false
    public init() {}
}

/// The exit code of a failed command: the one place kinds become codes.
/// 125 for every failure of minicontainer's own; a Docker-style run whose
/// program cannot start gives a shell's 127 (not found) or 126 (cannot
/// execute), from the init's errno. The pure layers' errors (JSONError,
/// SpecError, CompileError) are bad input: 125.
/// Set by a Docker-style run (--rootfs or an image) and by exec in a
/// run-mode container: their program's failure to start exits 127 or 126,
/// as a shell's (an OCI exec, as runc's, stays 125).
var programExitCodes = false

/// Rootless (Locations.rootless), for the run flags' defaults: a
/// user-mode network (slirp4netns, as podman's) in place of the bridge.
var runningRootless = false

func exitCode(_ error: Error, programCodes: Bool) -> Int32 {
    if programCodes, let f = error as? Failure, f.kind == .program, let c = Failure.programExitCode(f.errno) { return c }
    return 125
}

public struct Command {
    public var name: String
    public var summary: String
    public var usage: String
    public var flags: [Flag]
    /// The first positional ends the flags (a command line to run follows).
    public var stopAtPositional = false
    public var run: (Parsed, Globals) throws -> Int32
}

let globalFlags: [Flag] = [
    Flag(["root"], value: "DIR", "where container state lives (default /run/minicontainer)"),
    Flag(["log"], value: "FILE", "also write errors to FILE"),
    Flag(["log-format"], value: "text|json", "format of --log (default text)"),
    Flag(["debug"], "write debug lines to --log"),
    Flag(["systemd-cgroup"], "take cgroupsPath as slice:prefix:name; where systemd runs, the cgroup becomes its scope"),
    Flag(["rootless"], value: "auto|true|false", "run as an unprivileged user: state under $XDG_RUNTIME_DIR, data under $XDG_DATA_HOME, cgroups only where delegated (default auto: when not root)"),
    Flag(["h", "help"], "show help"),
    Flag(["v", "version"], "print the version"),
]

public let commands: [Command] = [
    specCommand,
    checkCommand,
    createCommand, startCommand, restartCommand, stateCommand, killCommand, deleteCommand, runCommand,
    execCommand, listCommand, psCommand, pauseCommand, resumeCommand, featuresCommand,
    stopCommand, rmCommand, pruneCommand, logsCommand, attachCommand, inspectCommand,
    updateCommand, eventsCommand, copyCommand, volumeCommand,
    statsCommand, topCommand, portCommand, waitCommand, renameCommand,
    pullCommand, loginCommand, logoutCommand, completionCommand, completeCommand, manCommand,
    loadCommand, importCommand, saveCommand, imagesCommand, imageCommand, tagCommand, rmiCommand, systemCommand,
    Command(name: "version", summary: "print the version", usage: "", flags: []) { _, _ in
        writeStdout(versionText())
        return 0
    },
]

/// Docker and podman commands that are not ours, with what comes closest:
/// a user typing one gets that, not a near-miss of another word
/// (`unpause` is not `pause`).
let dockerCommandsWeLack: [String: String] = [
    "build": "", "push": "", "commit": "", "diff": "", "export": "", "history": "", "search": "",
    "unpause": "thawing is 'minicontainer resume ID'",
    "network": "networks are chosen with run --network bridge|slirp4netns|pasta|none|host|container:NAME",
    "compose": "", "info": "'minicontainer features' and 'minicontainer system df' say what is here",
]

func versionText() -> String {
    "minicontainer version \(version)\ncommit: \(String(cString: mc_commit()))\nspec: \(Spec.version)\n"
}

func toolHelp() -> String {
    var s = "minicontainer: a Linux container runtime (OCI, runc-compatible)\n\n"
    s += "Usage: minicontainer [global flags] COMMAND [flags] [arguments]\n\nCommands:\n"
    for c in visibleCommands { s += "  " + c.name.padded(10) + c.summary + "\n" }
    s += "\nGlobal flags:\n"
    for f in globalFlags { s += "  " + f.display.padded(24) + f.help + "\n" }
    s += "\nExit codes: 0 success, 125 minicontainer error; run returns the container's code.\n"
    s += "Run 'minicontainer COMMAND --help' for a command's flags.\n"
    return s
}

/// The flags of `run` that only its OCI form (`run --bundle DIR ID`, as
/// runc's) reads: its help shows them apart from the Docker-style ones.
let bundleOnlyRunFlags: Set<String> = ["bundle", "console-socket", "pid-file", "no-pivot", "no-new-keyring", "preserve-fds", "keep"]

func commandHelp(_ c: Command) -> String {
    // The usage's first line, then any paragraphs after it, wrapped.
    let parts = paragraphs(c.usage)
    var s = "Usage: minicontainer \(c.name)\(parts[0].isEmpty ? "" : " " + parts[0])\n\n"
    s += wrap(c.summary, width: 80).joined(separator: "\n") + "\n"
    for para in parts.dropFirst() { s += "\n" + wrap(para, width: 80).joined(separator: "\n") + "\n" }
    if c.name == "run" {
        s += flagSection("Docker-style flags (run IMAGE, run --rootfs PATH)", c.flags.filter { !bundleOnlyRunFlags.contains($0.key) })
        s += flagSection("Bundle flags (run [--bundle DIR] ID, as runc's run; -d too)", c.flags.filter { bundleOnlyRunFlags.contains($0.key) })
    } else if !c.flags.isEmpty {
        s += flagSection("Flags", c.flags)
    }
    return s
}

/// "Title:" and one entry a flag: its spelling, then its description from
/// column 32, wrapped at 80; a spelling too long for the column puts the
/// description on the next line, never against it.
func flagSection(_ title: String, _ flags: [Flag]) -> String {
    var s = "\n\(title):\n"
    let col = 32
    for f in flags {
        let head = "  " + f.display
        let lines = wrap(f.help, width: 80 - col)
        if head.count <= col - 2 {
            s += head.padded(col) + (lines.first ?? "") + "\n"
        } else {
            s += head + "\n" + String(repeating: " ", count: col) + (lines.first ?? "") + "\n"
        }
        for l in lines.dropFirst() { s += String(repeating: " ", count: col) + l + "\n" }
    }
    return s
}

/// `text` split at its blank lines.
func paragraphs(_ text: String) -> [String] {
    var out: [String] = []
    var cur: [Substring] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.isEmpty {
            if !cur.isEmpty { out.append(cur.joined(separator: " ")); cur = [] }
        } else {
            cur.append(line)
        }
    }
    if !cur.isEmpty || out.isEmpty { out.append(cur.joined(separator: " ")) }
    return out
}

/// Words of `text` in lines of at most `width` columns (a longer word
/// stands alone).
func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var line = ""
    for w in text.split(separator: " ", omittingEmptySubsequences: true) {
        if line.isEmpty {
            line = String(w)
        } else if line.count + 1 + w.count <= width {
            line += " " + w
        } else {
            lines.append(line)
            line = String(w)
        }
    }
    if !line.isEmpty || lines.isEmpty { lines.append(line) }
    return lines
}

extension String {
    func padded(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}

/// Runs the tool on `args` (without argv[0]) and returns the exit code.
public func runCLI(_ args: [String]) -> Int32 {
    var g = Globals()
    // Global flags stand before the command.
    let i = commandIndex(args)
    let globalArgs = Array(args[..<i])
    let parsed: Parsed
    do {
        parsed = try parseArgs(globalArgs, flags: globalFlags, stopAtPositional: false, context: "")
    } catch {
        Log.error("\(error)")
        return 125
    }
    var mode = Rootless.Mode.auto
    if let r = parsed.string("rootless") {
        guard let m = Rootless.Mode(rawValue: r) else {
            Log.error("--rootless must be auto, true or false, not \(quoted(r))")
            return 125
        }
        mode = m
    }
    g.locations = Locations.from(root: parsed.string("root"), rootless: Rootless.resolve(mode), uid: geteuid())
    runningRootless = g.locations.rootless
    g.log = parsed.string("log")
    g.debug = parsed.bool("debug")
    g.systemdCgroup = parsed.bool("systemd-cgroup")
    Log.file = g.log
    Log.debug = g.debug
    if let f = parsed.string("log-format") {
        guard let lf = LogFormat(rawValue: f) else {
            Log.error("--log-format must be text or json, not \"\(f)\"")
            return 125
        }
        g.logFormat = lf
        Log.format = lf
    }
    if parsed.bool("version") { writeStdout(versionText()); return 0 }
    guard i < args.count else {
        if parsed.bool("help") { writeStdout(toolHelp()); return 0 }
        writeStderr(toolHelp())
        return 125
    }
    let name = args[i]
    if name == "help" {
        if i + 1 < args.count, let c = commands.first(where: { $0.name == args[i + 1] }) {
            writeStdout(commandHelp(c))
        } else {
            writeStdout(toolHelp())
        }
        return 0
    }
    guard let cmd = commands.first(where: { $0.name == name }) else {
        if let hint = dockerCommandsWeLack[name] {
            Log.error("\"\(name)\" is a Docker command minicontainer does not have\(hint.isEmpty ? "" : "; " + hint); see 'minicontainer --help'")
            return 125
        }
        var msg = "unknown command \"\(name)\""
        if let c = closest(name, in: visibleCommands.map { $0.name }) { msg += " (did you mean \"\(c)\"?)" }
        Log.error(msg + "; see 'minicontainer --help'")
        return 125
    }
    let rest = Array(args[(i + 1)...])
    if rest.contains(where: { $0 == "--help" || $0 == "-h" }),
       !(cmd.stopAtPositional && rest.firstIndex(where: { !$0.hasPrefix("-") }).map { p in rest.firstIndex(of: "--help") ?? rest.firstIndex(of: "-h")! > p } ?? false) {
        writeStdout(commandHelp(cmd))
        return 0
    }
    // Rootless without a runtime dir: every command that keeps state says so.
    if let problem = g.locations.problem, !["spec", "features", "completion", "__man"].contains(cmd.name) {
        Log.error(problem)
        return 125
    }
    do {
        let p = try parseArgs(rest, flags: cmd.flags, stopAtPositional: cmd.stopAtPositional, context: cmd.name)
        return try cmd.run(p, g)
    } catch let e as Failure where e.kind == .usage {
        Log.error(usageError(cmd.name, e.message))
        return 125
    } catch {
        // A failure is printed as `minicontainer: <command> [<subject>]: <what>`;
        // the subject is input (an id, a name): at most 128 bytes of it.
        let subject = (error as? Failure)?.subject.map { " " + Log.oneLine($0, max: 128) } ?? ""
        Log.error("\(cmd.name)\(subject): \(error)")
        return exitCode(error, programCodes: programExitCodes)
    }
}

/// `minicontainer: COMMAND: message`, as every other error is: a usage
/// message that starts with the command's name ("stop needs ...") says it once.
func usageError(_ command: String, _ message: String) -> String {
    if message.hasPrefix(command + " ") { return command + ": " + message.dropFirst(command.count + 1) }
    if message.hasPrefix(command + ":") { return message }
    return command + ": " + message
}

public func runMain() -> Never {
    var args: [String] = []
    args.reserveCapacity(Int(mc_argc()))
    for i in 1..<max(1, mc_argc()) { args.append(String(cString: mc_argv(Int32(i))!)) }
    // The commands that clone processes into containers run from a file the
    // container cannot write (CVE-2019-5736, Runtime/SealedExe.swift). First
    // thing, before any other work: where it re-executes, all of that would
    // be done twice. `run` puts it off until its spec is known, and then
    // mostly does not need it (SealedExe.settle: the exec stub).
    if entersContainers(args) {
        if args[commandIndex(args)] == "run" {
            SealedExe.deferred = true
        } else {
            do { try SealedExe.ensure() } catch {
                Log.error("\(error)")
                exit(125)
            }
        }
    }
    exit(runCLI(args))
}

/// Where the command is: the first argument that is not a global flag or a
/// global flag's value (args.count when there is none).
func commandIndex(_ args: [String]) -> Int {
    var i = 0
    while i < args.count, args[i].hasPrefix("-") {
        let name = args[i].drop(while: { $0 == "-" })
        if !name.contains("="), let f = globalFlags.first(where: { $0.names.contains(String(name)) }), f.value != nil, i + 1 < args.count {
            i += 1
        }
        i += 1
    }
    return i
}

/// Whether the command is create, run or exec.
func entersContainers(_ args: [String]) -> Bool {
    let i = commandIndex(args)
    guard i < args.count else { return false }
    return args[i] == "create" || args[i] == "run" || args[i] == "exec"
}
