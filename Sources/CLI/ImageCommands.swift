import Engine
import Glibc
import Image
import JSON
import Spec
import Sys

// The image commands, Docker's names and output: load, import, save,
// images, tag, rmi, image (ls, inspect, rm, load, save, import, tag,
// prune), system df. The store is DATA/images (Image/Store.swift).

func imageStore(_ g: Globals) throws -> ImageStore { try ImageStore(locations: g.locations) }

/// Runs `body` about `subject` (an image reference or file), whose failures name it.
func imageOp<T>(_ subject: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch var e as Failure where e.kind != .usage {
        if e.subject == nil { e.subject = subject }
        throw e
    }
}

/// `4.26MB`, `205MB`, `0B`: decimal units, three significant digits, as docker.
func humanSize(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    let decimals = v >= 100 ? 0 : v >= 10 ? 1 : 2
    let scale = decimals == 0 ? 1.0 : decimals == 1 ? 10.0 : 100.0
    let r = (v * scale).rounded() / scale
    var s: String
    if decimals == 0 {
        s = String(Int64(r))
    } else {
        let whole = Int64(r)
        var frac = String(Int64(((r - Double(whole)) * scale).rounded()))
        while frac.count < decimals { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        s = frac.isEmpty ? String(whole) : "\(whole).\(frac)"
    }
    return s + units[u]
}

func platformFlag(_ p: Parsed) throws -> Platform? {
    try p.string("platform").map { try Platform.parse($0) }
}

func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    var out = ""
    for r in rows {
        out += r.enumerated().map { i, c in i == r.count - 1 ? c : c.padded(widths[i] + 3) }.joined() + "\n"
    }
    return out
}

// MARK: - load, import, save

func loadRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    if let extra = p.positionals.first { throw Failure(.usage, "load takes no arguments (the archive is -i FILE), got \(quoted(extra))") }
    let input = p.string("input") ?? "-"
    if input == "-" && isatty(0) == 1 {
        throw Failure(.usage, "load: no archive: give -i FILE (or -i DIR, an OCI layout) or pipe one to stdin")
    }
    let opts = LoadOptions(platform: try platformFlag(p))
    let loaded = try imageStore(g).load(path: input, options: opts)
    var out = ""
    for l in loaded {
        if l.references.isEmpty { out += "Loaded image ID: \(l.id)\n" }
        for r in l.references { out += "Loaded image: \(r.familiar)\n" }
    }
    writeStdout(out)
    return 0
}

let loadFlags: [Flag] = [
    Flag(["i", "input"], value: "FILE", "the archive (docker-archive, oci-archive, plain or compressed) or an OCI layout directory; - or absent: stdin"),
    Flag(["platform"], value: "OS/ARCH[/VARIANT]", "the image to take from a multi-platform index (default linux/amd64)"),
    Flag(["q", "quiet"], "accepted for docker compatibility (load prints no progress)"),
]

let loadCommand = Command(name: "load", summary: "load images from a docker-archive, an oci-archive or an OCI layout",
                          usage: "[-i FILE|DIR|-] [--platform OS/ARCH]", flags: loadFlags, run: loadRun)

func importRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard let src = p.positionals.first else { throw Failure(.usage, "import needs a tarball (a file, or - for stdin)") }
    guard p.positionals.count <= 2 else { throw Failure(.usage, "import takes a tarball and at most one reference, got \(p.positionals.count) arguments") }
    var opts = ImportOptions(message: p.string("message"))
    if p.positionals.count == 2 { opts.reference = try Reference.parse(p.positionals[1]) }
    if let pl = try platformFlag(p) { opts.platform = pl }
    if src == "-" && isatty(0) == 1 { throw Failure(.usage, "import: stdin is a terminal: pipe a tarball to it, or give a file") }
    let img = try imageStore(g).importTarball(path: src, options: opts)
    writeStdout(img.id.description + "\n")
    return 0
}

let importFlags: [Flag] = [
    Flag(["m", "message"], value: "TEXT", "the history comment"),
    Flag(["platform"], value: "OS/ARCH[/VARIANT]", "the platform the config names (default linux/amd64)"),
]

let importCommand = Command(name: "import", summary: "make a one-layer image from a root filesystem tarball",
                            usage: "TARBALL|- [REFERENCE]", flags: importFlags, run: importRun)

func saveRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "save needs at least one image (reference or id)") }
    let formatText = p.string("format") ?? "oci-archive"
    guard let format = ArchiveFormat(rawValue: formatText) else {
        throw Failure(.usage, "--format must be oci-archive or docker-archive, not \(quoted(formatText))")
    }
    let store = try imageStore(g)
    let output = p.string("output") ?? "-"
    if output == "-" {
        guard isatty(1) == 0 else { throw Failure(.usage, "save: refusing to write an archive to a terminal: give -o FILE or redirect stdout") }
        try imageOp(p.positionals[0]) { try store.save(p.positionals.map { storeRef($0, g) }, to: 1, format: format, what: "write stdout") }
        return 0
    }
    // A temporary file beside the output, renamed when whole.
    let tmp = output + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SysError("create \(tmp)") }
    do {
        try imageOp(p.positionals.count == 1 ? p.positionals[0] : nil) { try store.save(p.positionals.map { storeRef($0, g) }, to: fd, format: format, what: "write \(output)") }
        guard close(fd) == 0 else { throw SysError("write \(output)") }
    } catch {
        close(fd)
        unlink(tmp)
        throw error
    }
    guard rename(tmp, output) == 0 else {
        let e = SysError("rename \(tmp) to \(output)")
        unlink(tmp)
        throw e
    }
    return 0
}

let saveFlags: [Flag] = [
    Flag(["o", "output"], value: "FILE", "where to write the archive (default stdout, when it is not a terminal)"),
    Flag(["format"], value: "oci-archive|docker-archive", "the archive format (default oci-archive)"),
]

let saveCommand = Command(name: "save", summary: "write images to an oci-archive (or a docker-archive)",
                          usage: "[-o FILE] [--format oci-archive|docker-archive] IMAGE...", flags: saveFlags, run: saveRun)

// MARK: - images, inspect

/// One row per reference (one for an untagged image), as docker lists.
func imageRows(_ list: [ImageSummary]) -> [(ImageSummary, String, String)] {
    var rows: [(ImageSummary, String, String)] = []
    for s in list {
        if s.references.isEmpty { rows.append((s, "<none>", "<none>")); continue }
        for r in s.references {
            if let ref = try? Reference.parse(r) {
                rows.append((s, ref.familiarName, ref.tag ?? "<none>"))
            } else {
                rows.append((s, r, "<none>"))
            }
        }
    }
    return rows
}

func imagesRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count <= 1 else { throw Failure(.usage, "images takes at most one REPOSITORY[:TAG], got \(p.positionals.count) arguments") }
    var rows = imageRows(try imageStore(g).list())
    if let filter = p.positionals.first {
        let f = try Reference.parse(filter.contains(":") || filter.contains("@") ? filter : filter + ":x")
        let wantTag = filter.contains(":") && !filter.hasSuffix(":") ? f.tag : nil
        // A short name is also the default and search registries' (pull).
        var names: Set<String> = [f.name]
        if let cands = try? registryConfig().candidates(filter.contains(":") || filter.contains("@") ? filter : filter + ":x") {
            for c in cands { names.insert(c.name) }
        }
        rows = rows.filter { row in
            guard let r = try? Reference.parse(row.1 + ":x") else { return false }
            return names.contains(r.name) && (wantTag == nil || row.2 == wantTag)
        }
    }
    if p.bool("quiet") {
        var seen = Set<String>()
        var out = ""
        for r in rows where !seen.contains(r.0.id.hex) {
            seen.insert(r.0.id.hex)
            out += String(r.0.id.hex.prefix(12)) + "\n"
        }
        writeStdout(out)
        return 0
    }
    let now = Int64(time(nil))
    switch p.string("format") ?? "table" {
    case "json":
        let arr: [JSONValue] = rows.map { s, repo, tag in
            var o = JSONObject()
            o["id"] = .string(s.id.description)
            o["repository"] = .string(repo)
            o["tag"] = .string(tag)
            o["references"] = .array(s.references.map { .string($0) })
            o["digest"] = .string(s.manifestDigest.description)
            o["created"] = s.created.map { .string($0) } ?? .null
            o["size"] = .int(s.size)
            o["platform"] = .string(s.platform.description)
            o["layers"] = .int(Int64(s.layers))
            return .object(o)
        }
        writeStdout(JSONValue.array(arr).compact() + "\n")
    case "table":
        let digests = p.bool("digests")
        let t: [[String]] = [["REPOSITORY", "TAG"] + (digests ? ["DIGEST"] : []) + ["IMAGE ID", "CREATED", "SIZE"]] + rows.map { s, repo, tag in
            [repo, tag] + (digests ? [s.manifestDigest.description] : [])
                + [String(s.id.hex.prefix(12)), s.createdUnix.map { humanDuration(now - $0) + " ago" } ?? "N/A", humanSize(s.size)]
        }
        writeStdout(table(t))
    case let f where RowFormat.isTemplate(f):
        writeStdout(try imagesFormat.render(f, rows.map { s, repo, tag in
            var o = JSONObject()
            o["ID"] = .string(String(s.id.hex.prefix(12)))
            o["Id"] = .string(s.id.description)
            o["Repository"] = .string(repo)
            o["Tag"] = .string(tag)
            o["Digest"] = .string(s.manifestDigest.description)
            o["CreatedAt"] = .string(s.createdUnix.map { goTime($0) } ?? "")
            o["CreatedSince"] = .string(s.createdUnix.map { humanDuration(now - $0) + " ago" } ?? "N/A")
            o["Created"] = .int(s.createdUnix ?? 0)
            o["Size"] = .string(humanSize(s.size))
            o["VirtualSize"] = .string(humanSize(s.size))
            o["Names"] = .array(s.references.map { .string(displayName($0)) })
            o["Platform"] = .string(s.platform.description)
            o["Layers"] = .int(Int64(s.layers))
            return .object(o)
        }))
    case let f:
        throw Failure(.usage, "--format must be table, json or a Go template ('{{.Repository}}:{{.Tag}}'), not \(quoted(f))")
    }
    return 0
}

let imagesFormat = RowFormat(name: "images", rowType: "image", headers: ["ID": "IMAGE ID", "Id": "IMAGE ID", "CreatedSince": "CREATED"])

let imagesFlags: [Flag] = [
    Flag(["q", "quiet"], "only the image ids"),
    Flag(["format"], value: "table|json|TEMPLATE", "the output format: table (the default), json, or a Go template ('table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}')"),
    Flag(["digests"], "show each image's manifest digest"),
]

let imagesCommand = Command(name: "images", summary: "list images", usage: "[-q] [--digests] [--format table|json] [REPOSITORY[:TAG]]",
                            flags: imagesFlags, run: imagesRun)

func strings(_ a: [String]?) -> JSONValue { a.map { .array($0.map { .string($0) }) } ?? .null }

func inspectJSON(_ r: ResolvedImage, store: ImageStore) -> JSONValue {
    let c = r.config
    var o = JSONObject()
    o["Id"] = .string(r.id.description)
    o["RepoTags"] = .array(r.references.compactMap { (try? Reference.parse($0))?.tag != nil ? .string(displayName($0)) : nil })
    // name@digest, one per repository (the manifest's digest: pulling it
    // gives this image).
    var repoDigests: [String] = []
    for ref in r.references {
        guard let parsed = try? Reference.parse(ref) else { continue }
        let d = parsed.familiarName + "@" + r.manifestDigest.description
        if !repoDigests.contains(d) { repoDigests.append(d) }
    }
    o["RepoDigests"] = .array(repoDigests.map { .string($0) })
    o["References"] = .array(r.references.map { .string($0) })
    o["ManifestDigest"] = .string(r.manifestDigest.description)
    o["Created"] = c.created.map { .string($0) } ?? .null
    o["Author"] = c.author.map { .string($0) } ?? .null
    o["Architecture"] = .string(c.architecture)
    o["Os"] = .string(c.os)
    if let v = c.variant { o["Variant"] = .string(v) }
    var cfg = JSONObject()
    cfg["User"] = .string(c.run.user ?? "")
    cfg["Env"] = .array(c.run.env.map { .string($0) })
    cfg["Entrypoint"] = strings(c.run.entrypoint)
    cfg["Cmd"] = strings(c.run.cmd)
    cfg["WorkingDir"] = .string(c.run.workingDir ?? "")
    cfg["Labels"] = .object(JSONObject(c.run.labels.keys.sorted().map { ($0, .string(c.run.labels[$0]!)) }))
    cfg["StopSignal"] = c.run.stopSignal.map { .string($0) } ?? .null
    cfg["ExposedPorts"] = .object(JSONObject(c.exposedPorts.map { ($0, .object(JSONObject())) }))
    cfg["Volumes"] = .object(JSONObject(c.volumes.map { ($0, .object(JSONObject())) }))
    o["Config"] = .object(cfg)
    var rootfs = JSONObject()
    rootfs["Type"] = .string("layers")
    rootfs["Layers"] = .array(c.diffIDs.map { .string($0.description) })
    o["RootFS"] = .object(rootfs)
    o["Layers"] = .array(zip(r.manifest.layers, r.layerDirs).map { l, dir in
        var e = JSONObject()
        e["MediaType"] = .string(l.mediaType)
        e["Digest"] = .string(l.digest.description)
        e["Size"] = .int(l.size)
        e["Dir"] = .string(dir)
        return .object(e)
    })
    return .object(o)
}

func imageInspectRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "image inspect needs at least one image (reference or id)") }
    let store = try imageStore(g)
    var out: [JSONValue] = []
    var code: Int32 = 0
    for ref in p.positionals {
        do {
            out.append(try imageOp(ref) { inspectJSON(try store.resolve(storeRef(ref, g)), store: store) })
        } catch let e as Failure {
            Log.error("image inspect \(ref): \(e)")
            code = 125
        }
    }
    let format = p.string("format") ?? "json"
    guard format == "json" || RowFormat.isTemplate(format) else {
        throw Failure(.usage, "--format must be json or a Go template ('{{.Id}}'), not \(quoted(format))")
    }
    writeStdout(format == "json" ? JSONValue.array(out).pretty()
                : try RowFormat(name: "inspect", rowType: "image", tables: false).render(format, out))
    return code
}

// MARK: - tag, rmi, prune

func tagRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count == 2 else { throw Failure(.usage, "tag takes SOURCE_IMAGE and TARGET_IMAGE[:TAG], got \(p.positionals.count) arguments") }
    try imageOp(p.positionals[0]) { _ = try imageStore(g).tag(storeRef(p.positionals[0], g), p.positionals[1]) }
    return 0
}

let tagCommand = Command(name: "tag", summary: "give an image another reference", usage: "SOURCE_IMAGE TARGET_IMAGE[:TAG]",
                         flags: [], run: tagRun)

func rmiRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard !p.positionals.isEmpty else { throw Failure(.usage, "rmi needs at least one image (reference or id)") }
    let store = try imageStore(g)
    var code: Int32 = 0
    for ref in p.positionals {
        do {
            let r = try imageOp(ref) { try store.remove(storeRef(ref, g), force: p.bool("force")) }
            writeStdout(r.untagged.map { "Untagged: \(displayName($0))\n" }.joined() + r.deleted.map { "Deleted: \($0)\n" }.joined())
        } catch let e as Failure {
            Log.error("rmi \(ref): \(e)")
            code = 125
        }
    }
    return code
}

let rmiCommand = Command(name: "rmi", summary: "remove images (refused for one a container uses, unless -f)", usage: "[-f] IMAGE...",
                         flags: [Flag(["f", "force"], "untag an image a container uses (it stays until the container goes), or one with several references by id")],
                         run: rmiRun)

func imagePruneRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    if let extra = p.positionals.first { throw Failure(.usage, "image prune takes no arguments, got \(quoted(extra))") }
    let r = try imageStore(g).prune(all: p.bool("all"))
    var out = ""
    if !r.untagged.isEmpty || !r.deleted.isEmpty {
        out += "Deleted Images:\n"
        out += r.untagged.map { "untagged: \(displayName($0))\n" }.joined()
        out += r.deleted.map { "deleted: \($0)\n" }.joined()
        out += "\n"
    }
    out += "Total reclaimed space: \(humanSize(r.reclaimed))\n"
    writeStdout(out)
    return 0
}

// MARK: - image SUBCOMMAND, system df

let imageSubcommands: [Command] = [
    Command(name: "image ls", summary: "list images", usage: imagesCommand.usage, flags: imagesFlags, run: imagesRun),
    Command(name: "image inspect", summary: "print images as a JSON array, or each through a Go template", usage: "[-f|--format json|TEMPLATE] IMAGE...",
            flags: [Flag(["f", "format"], value: "json|TEMPLATE", "a Go template ('{{.Id}}') applied to each image, or json (the default)")], run: imageInspectRun),
    Command(name: "image rm", summary: rmiCommand.summary, usage: rmiCommand.usage, flags: rmiCommand.flags, run: rmiRun),
    Command(name: "image load", summary: loadCommand.summary, usage: loadCommand.usage, flags: loadFlags, run: loadRun),
    Command(name: "image import", summary: importCommand.summary, usage: importCommand.usage, flags: importFlags, run: importRun),
    Command(name: "image save", summary: saveCommand.summary, usage: saveCommand.usage, flags: saveFlags, run: saveRun),
    Command(name: "image tag", summary: tagCommand.summary, usage: tagCommand.usage, flags: [], run: tagRun),
    Command(name: "image prune", summary: "remove untagged images no container uses (-a: every image no container uses)", usage: "[-a]",
            flags: [Flag(["a", "all"], "every image no container uses, not only untagged ones")], run: imagePruneRun),
]

/// `NAME SUB [flags] [args]`: dispatches to `subs` ("NAME SUB"), with
/// aliases (ls: list).
func dispatch(_ name: String, _ subs: [Command], aliases: [String: String], _ p: Parsed, _ g: Globals) throws -> Int32 {
    guard let first = p.positionals.first else {
        let list = subs.map { String($0.name.dropFirst(name.count + 1)) }.joined(separator: ", ")
        throw Failure(.usage, "\(name) needs a subcommand: \(list) (see 'minicontainer \(name) SUBCOMMAND --help')")
    }
    let sub = aliases[first] ?? first
    guard let c = subs.first(where: { $0.name == name + " " + sub }) else {
        var msg = "unknown command \"\(name) \(first)\""
        if let s = closest(first, in: subs.map { String($0.name.dropFirst(name.count + 1)) }) { msg += " (did you mean \"\(name) \(s)\"?)" }
        throw Failure(.usage, msg + "; see 'minicontainer \(name) --help'")
    }
    let rest = Array(p.positionals.dropFirst())
    if rest.contains("--help") || rest.contains("-h") {
        writeStdout(commandHelp(c))
        return 0
    }
    let parsed = try parseArgs(rest, flags: c.flags, stopAtPositional: false, context: c.name)
    return try c.run(parsed, g)
}

let imageCommand = Command(name: "image", summary: "manage images: ls, inspect, rm, load, save, import, tag, prune",
                           usage: "ls|inspect|rm|load|save|import|tag|prune [flags] [arguments]", flags: [], stopAtPositional: true) { p, g in
    try dispatch("image", imageSubcommands, aliases: ["list": "ls", "rmi": "rm", "remove": "rm"], p, g)
}

/// du of a container's directory, without its mounted root (`merged`).
func containerUsage(_ dir: String) -> Int64 {
    var total: Int64 = 0
    for e in FS.directoryEntries(dir) ?? [] where e.name != "merged" { total += diskUsage(dir + "/" + e.name) }
    return total
}

func systemDfRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    if let extra = p.positionals.first { throw Failure(.usage, "system df takes no arguments, got \(quoted(extra))") }
    let u = try imageStore(g).usage()
    let c = containers(g)
    let all = c.all()
    var cSize: Int64 = 0, cReclaim: Int64 = 0, cActive = 0
    for m in all {
        let s = containerUsage(c.dir(m.id))
        cSize += s
        if c.isRunning(m.id) { cActive += 1 } else { cReclaim += s }
    }
    func pct(_ part: Int64, _ whole: Int64) -> String {
        whole == 0 ? "" : " (\(Int((Double(part) * 100 / Double(whole)).rounded()))%)"
    }
    let rows: [[String]] = [
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        ["Images", "\(u.images)", "\(u.activeImages)", humanSize(u.imagesSize), humanSize(u.imagesReclaimable) + pct(u.imagesReclaimable, u.imagesSize)],
        ["Layers", "\(u.layers)", "\(u.activeLayers)", humanSize(u.layersSize), humanSize(u.layersReclaimable) + pct(u.layersReclaimable, u.layersSize)],
        ["Containers", "\(all.count)", "\(cActive)", humanSize(cSize), humanSize(cReclaim) + pct(cReclaim, cSize)],
        ["Local Volumes", "0", "0", "0B", "0B"],
    ]
    if p.string("format") == "json" {
        var o = JSONObject()
        for r in rows.dropFirst() {
            var e = JSONObject()
            e["total"] = .int(Int64(r[1])!)
            e["active"] = .int(Int64(r[2])!)
            o[r[0]] = .object(e)
        }
        o["Images"] = .object(JSONObject([("total", .int(Int64(u.images))), ("active", .int(Int64(u.activeImages))),
                                          ("size", .int(u.imagesSize)), ("reclaimable", .int(u.imagesReclaimable))]))
        o["Layers"] = .object(JSONObject([("total", .int(Int64(u.layers))), ("active", .int(Int64(u.activeLayers))),
                                          ("size", .int(u.layersSize)), ("reclaimable", .int(u.layersReclaimable))]))
        o["Containers"] = .object(JSONObject([("total", .int(Int64(all.count))), ("active", .int(Int64(cActive))),
                                              ("size", .int(cSize)), ("reclaimable", .int(cReclaim))]))
        o["Local Volumes"] = .object(JSONObject([("total", .int(0)), ("active", .int(0)), ("size", .int(0)), ("reclaimable", .int(0))]))
        writeStdout(JSONValue.object(o).pretty())
        return 0
    }
    writeStdout(table(rows))
    return 0
}

let systemSubcommands: [Command] = [
    Command(name: "system df", summary: "space used by images, layers, containers and volumes, and what prune would reclaim",
            usage: "[--format table|json]", flags: [Flag(["format"], value: "table|json", "the output format (default table)")], run: systemDfRun),
]

let systemCommand = Command(name: "system", summary: "system-wide information: df", usage: "df [flags]", flags: [],
                            stopAtPositional: true) { p, g in
    try dispatch("system", systemSubcommands, aliases: [:], p, g)
}
