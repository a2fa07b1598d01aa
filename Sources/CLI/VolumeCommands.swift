import Compile
import Engine
import Glibc
import JSON
import Spec
import Sys

// `volume create|ls|inspect|rm|prune` (Engine/Volumes.swift), as podman's,
// and run's -v NAME:/path and -v /path, resolved to the volume's _data
// before compile sees the flag.

let volumeSubcommands: [Command] = [
    Command(name: "volume create", summary: "create a volume (a random name when none is given)", usage: "[--label KEY=VALUE...] [NAME]",
            flags: [Flag(["l", "label"], value: "KEY=VALUE", "set a label", repeats: true)], run: volumeCreateRun),
    Command(name: "volume ls", summary: "list volumes", usage: "[-q] [--format json]",
            flags: [Flag(["q", "quiet"], "only the names"), Flag(["format"], value: "table|json", "table (default) or json")], run: volumeLsRun),
    Command(name: "volume inspect", summary: "print volumes as a JSON array", usage: "NAME...", flags: [], run: volumeInspectRun),
    Command(name: "volume rm", summary: "remove volumes (refused while a container uses one, unless -f)", usage: "[-f] NAME...",
            flags: [Flag(["f", "force"], "remove the containers that use it first")], run: volumeRmRun),
    Command(name: "volume prune", summary: "remove every volume no container uses", usage: "[-f]",
            flags: [Flag(["f", "force"], "do not ask (prune asks only when stdin is a terminal)")], run: volumePruneRun),
]

let volumeCommand = Command(name: "volume", summary: "manage volumes: create, ls, inspect, rm, prune",
                            usage: "create|ls|inspect|rm|prune [flags] [arguments]", flags: [], stopAtPositional: true) { p, g in
    do {
        return try dispatch("volume", volumeSubcommands, aliases: ["list": "ls", "remove": "rm"], p, g)
    } catch var e as Failure where e.kind != .usage && e.subject == nil {
        // Named `minicontainer: volume create: ...`, as the subcommand.
        e.subject = p.positionals.first
        throw e
    }
}

func volumeCreateRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count <= 1 else { throw Failure(.usage, "volume create takes at most one name, got \(p.positionals.count) arguments") }
    var labels: [String: String] = [:]
    for l in p.strings("label") {
        let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard !kv[0].isEmpty else { throw Failure(.usage, "volume create: invalid label \(quoted(l)): use KEY=VALUE") }
        labels[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
    }
    let v = try containers(g).volumes.create(p.positionals.first, labels: labels)
    writeStdout(v.0.name + "\n")
    return 0
}

func volumeLsRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    if let extra = p.positionals.first { throw Failure(.usage, "volume ls takes no arguments, got \(quoted(extra))") }
    let c = containers(g)
    let all = c.volumes.all()
    if p.bool("quiet") {
        writeStdout(all.map { $0.name + "\n" }.joined())
        return 0
    }
    switch p.string("format") ?? "table" {
    case "table":
        writeStdout("DRIVER      VOLUME NAME\n" + all.map { "local       " + $0.name + "\n" }.joined())
    case "json":
        let users = c.volumeUsers()
        writeStdout(JSONValue.array(all.map { c.volumes.inspect($0, mountCount: users[$0.name]?.count ?? 0) }).pretty())
    case let f:
        throw Failure(.usage, "--format must be table or json, not \(quoted(f))")
    }
    return 0
}

func volumeInspectRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "volume inspect needs at least one volume name") }
    let c = containers(g)
    let users = c.volumeUsers()
    var out: [JSONValue] = []
    var code: Int32 = 0
    for n in p.positionals {
        guard let v = c.volumes.get(n) else {
            Log.error("volume inspect: no such volume \(quoted(n, max: 128))")
            code = 125
            continue
        }
        out.append(c.volumes.inspect(v, mountCount: users[n]?.count ?? 0))
    }
    writeStdout(JSONValue.array(out).pretty())
    return code
}

/// `volume rm`: podman's exit codes, 1 for a volume that does not exist, 2
/// for one in use.
func volumeRmRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "volume rm needs at least one volume name") }
    let c = containers(g)
    var code: Int32 = 0
    for n in p.positionals {
        guard c.volumes.get(n) != nil else {
            Log.error("volume rm: no volume with name \(quoted(n, max: 128)) found")
            code = max(code, 1)
            continue
        }
        let users = c.volumeUsers()[n] ?? []
        if !users.isEmpty {
            guard p.bool("force") else {
                Log.error("volume rm: volume \(n) is being used by the following container(s): \(users.joined(separator: ", "))")
                code = 2
                continue
            }
            // podman's -f: the containers that use it go first.
            for id in users { c.remove(id) }
        }
        do {
            try c.volumes.remove(n)
            writeStdout(n + "\n")
        } catch let e as Failure {
            // In use by a container being set up: in use (2), as above.
            Log.error("volume rm: \(e)")
            code = e.kind == .state ? 2 : 125
        }
    }
    return code
}

func volumePruneRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    if let extra = p.positionals.first { throw Failure(.usage, "volume prune takes no arguments, got \(quoted(extra))") }
    let c = containers(g)
    let users = c.volumeUsers()
    let unused = c.volumes.all().filter { users[$0.name] == nil }.map { $0.name }
    // podman asks first; as our prune, only a person at a terminal is
    // asked: scripts (stdin not a terminal) and -f go ahead.
    if !p.bool("force") && isatty(0) == 1 {
        writeStdout("WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:\n"
                    + unused.map { $0 + "\n" }.joined() + "Are you sure you want to continue? [y/N] ")
        guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else { return 0 }
    }
    var code: Int32 = 0
    for n in unused {
        // Asked again under the store's lock would be better still; a
        // container made meanwhile names the volume in its config.json.
        if c.volumeUsers()[n] != nil { continue }
        do {
            try c.volumes.remove(n)
            writeStdout(n + "\n")
        } catch let e as Failure where e.kind == .state {
            continue  // a run is setting a container up on it: in use
        } catch let e as Failure {
            Log.error("volume prune \(n): \(e)")
            code = 125
        }
    }
    return code
}

/// What run's -v flags made and must copy up: the volumes created now (so
/// that a failed run leaves none behind), host directories made (the same),
/// and each new volume's mount point, for the image's files.
struct RunVolumes {
    /// Every volume the run uses, held until its config.json names them.
    let hold = VolumeHold()
    var created: [String] = []
    var madeDirs: [String] = []
    var copyUp: [(volume: String, destination: String)] = []

    /// Undoes what a failed run left: volumes no container uses, and the
    /// host directories made for it.
    func undo(_ c: Containers) {
        hold.release()
        let users = c.volumeUsers()
        for n in created where users[n] == nil { try? c.volumes.remove(n) }
        for d in madeDirs.reversed() { rmdir(d) }
    }
}

/// run's -v, before compile: NAME:/path[:ro] becomes the volume's _data
/// (created on first use), a lone /path an anonymous volume's, and a
/// missing absolute host path is made (Docker's -v; --mount does not).
/// `--mount type=volume,src=NAME,...` comes in -v's form (runFlags puts it
/// among the volumes); `mountFlags` (the --mount values) say which of
/// those have volume-nocopy: no copy-up for them.
func resolveRunVolumes(_ flags: inout RunFlags, _ c: Containers, _ made: inout RunVolumes, mountFlags: [String]) throws {
    var nocopy = Set<String>()
    for m in mountFlags where m.contains("volume-nocopy") && !m.contains("volume-nocopy=false") && !m.contains("volume-nocopy=0") {
        if case .volume(let v)? = try? parseMount(m, host: realHost) { nocopy.insert(v) }
    }
    flags.volumes = try flags.volumes.map { v in
        var parts = v.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 {
            guard Path.isAbsolute(v) else { return v }  // compile says what is wrong
            let (vol, _) = try c.volumes.create(nil, anonymous: true, hold: made.hold)
            made.created.append(vol.name)
            made.copyUp.append((vol.name, v))
            return c.volumes.dataPath(vol.name) + ":" + v
        }
        guard parts.count <= 3, !parts[0].isEmpty, Path.isAbsolute(parts[1]) else { return v }
        let src = parts[0]
        if Path.isAbsolute(src) {
            if !FS.exists(src) { made.madeDirs += try FS.makeDirectories(src) }
            return v
        }
        if src.hasPrefix(".") { return v }  // a relative host path
        let (vol, created) = try c.volumes.create(src, existingOK: true, hold: made.hold)
        if created { made.created.append(vol.name) }
        if !nocopy.contains(v) { made.copyUp.append((vol.name, parts[1])) }
        parts[0] = c.volumes.dataPath(vol.name)
        return parts.joined(separator: ":")
    }
}

/// The image's VOLUMEs, as Docker and podman make them: an anonymous
/// volume for each path that no flag (or the spec's own mounts) already
/// mounts, with the image's files there copied up. Whether any was added.
func addImageVolumes(_ image: ImageDefaults, _ flags: inout RunFlags, mounted: [Mount], _ c: Containers,
                     _ made: inout RunVolumes) throws -> Bool {
    let used = Set(mounted.map { Path.clean($0.destination) })
    var added = false
    for raw in image.volumes.sorted() {
        if let why = imageVolumeProblem(raw) {
            throw CompileError("image \(image.reference): VOLUME \(quoted(raw)) \(why)")
        }
        let dst = Path.clean(raw)
        guard !used.contains(dst) else { continue }
        let (vol, _) = try c.volumes.create(nil, anonymous: true, hold: made.hold)
        made.created.append(vol.name)
        made.copyUp.append((vol.name, dst))
        flags.volumes.append(c.volumes.dataPath(vol.name) + ":" + dst)
        added = true
    }
    return added
}

/// Why an image's VOLUME path cannot be a mount point, or nil. The path is
/// the image's, so hostile: it goes into -v's SOURCE:DEST form and on to the
/// kernel, so besides absolute, not "/" and no ".." component, it may hold
/// no ":" "," newline or NUL byte that either could read as a separator.
func imageVolumeProblem(_ raw: String) -> String? {
    guard Path.isAbsolute(raw) else { return "must be an absolute path" }
    if Path.hasDotDot(raw) { return "must not contain a \"..\" component" }
    if Path.clean(raw) == "/" { return "must not be /" }
    if raw.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ",") || $0 == 10 || $0 == 0 }) {
        return "must not contain \":\", \",\", a newline or NUL"
    }
    if raw.utf8.count > 4096 { return "is longer than a path may be" }
    return nil
}
