import Spec

// The mount flags beyond -v: `--tmpfs PATH[:OPTIONS]`, `--mount` (Docker's
// CSV syntax: type=bind|tmpfs|volume,src=...,dst=...,ro,...) and
// `--shm-size`. Every option is checked here, so a bad one is a one-line
// error at compile, never a mount that fails inside create.

/// A container path a mount flag names: absolute, not "/", no ".." (as -v),
/// cleaned.
func mountDestination(_ d: String, _ what: String) throws -> String {
    guard Path.isAbsolute(d) else { throw CompileError("invalid \(what): the container path \(quoted(d)) must be absolute") }
    guard !Path.hasDotDot(d), Path.clean(d) != "/" else {
        throw CompileError("invalid \(what): the container path must not be / or contain ..")
    }
    return Path.clean(d)
}

/// The options a tmpfs mount may be given (flags, propagation, tmpfs's own
/// size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=, and tmpcopyup or
/// notmpcopyup), in podman's form: the options given, then rw, rprivate,
/// nosuid, nodev and tmpcopyup where the given ones do not say otherwise.
func tmpfsOptions(_ given: [String], _ what: String) throws -> [String] {
    let flags: Set<String> = ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async", "dirsync",
                              "noatime", "atime", "nodiratime", "diratime", "relatime", "norelatime", "strictatime",
                              "nostrictatime", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                              "unbindable", "runbindable", "tmpcopyup", "notmpcopyup"]
    var out: [String] = []
    var seen = Set<String>()
    for o in given {
        let key = o.firstIndex(of: "=").map { String(o[..<$0]) } ?? o
        let value = o.firstIndex(of: "=").map { String(o[o.index(after: $0)...]) }
        func bad(_ why: String) -> CompileError { CompileError("invalid \(what): \(why)") }
        switch (key, value) {
        case (_, nil) where flags.contains(key):
            break
        case ("size", let v?):
            // A size (k, m, g, as tmpfs reads it) or a percentage of memory.
            let digits = v.hasSuffix("%") ? Substring(v.dropLast()) : Substring(v)
            let ok = v.hasSuffix("%") ? (!digits.isEmpty && digits.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && (Int(digits) ?? 0) > 0)
                : parseSize(v).map { $0 > 0 } == true && !v.contains(".")
            guard ok else { throw bad("size=\(quoted(v)): use a size such as 64m, or a percentage such as 50%") }
        case ("mode", let v?):
            guard !v.isEmpty, v.count <= 4, v.utf8.allSatisfy({ $0 >= 48 && $0 <= 55 }) else {
                throw bad("mode=\(quoted(v)): use octal permission bits such as 1777")
            }
        case ("uid", let v?), ("gid", let v?), ("nr_inodes", let v?), ("nr_blocks", let v?):
            guard !v.isEmpty, v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), (key.hasPrefix("nr_") ? UInt64(v) != nil : UInt32(v) != nil) else {
                throw bad("\(key)=\(quoted(v)): use a number")
            }
        default:
            throw bad("unknown tmpfs option \(quoted(o))")
        }
        guard seen.insert(key).inserted else { throw CompileError("invalid \(what): \(key) is given twice") }
        if key != "notmpcopyup" { out.append(o) }  // the runtime copies up given either one
    }
    let opposite: [(String, [String])] = [("rw", ["ro", "rw"]), ("rprivate", ["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"]),
                                          ("nosuid", ["suid", "nosuid"]), ("nodev", ["dev", "nodev"]), ("tmpcopyup", ["tmpcopyup", "notmpcopyup"])]
    for (dflt, overrides) in opposite where seen.isDisjoint(with: overrides) { out.append(dflt) }
    return out
}

/// `--tmpfs PATH[:OPTIONS]`: a tmpfs (the path has no ":"; use --mount for one that does).
public func parseTmpfs(_ t: String) throws -> Mount {
    let what = "--tmpfs \(quoted(t))"
    let colon = t.firstIndex(of: ":")
    let dst = try mountDestination(String(colon.map { t[..<$0] } ?? Substring(t)), what)
    let given = colon.map { t[t.index(after: $0)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
    if given.contains("") { throw CompileError("invalid \(what): an empty option") }
    return Mount(destination: dst, type: "tmpfs", source: "tmpfs", options: try tmpfsOptions(given, what))
}

/// The fields of one CSV record, as Go's encoding/csv reads them (Docker's
/// and podman's --mount): a field starting with " is quoted, "" inside it
/// is one ", and it ends at a " followed by , or the end; a " anywhere
/// else is an error. So `"src=/a,b"` keeps its comma.
public func csvFields(_ s: String) throws -> [String] {
    var fields: [String] = []
    var it = Array(s.unicodeScalars)[...]
    var field = String.UnicodeScalarView()
    while true {
        if it.first == "\"" {
            it = it.dropFirst()
            var closed = false
            while let c = it.first {
                it = it.dropFirst()
                if c == "\"" {
                    if it.first == "\"" { field.append("\""); it = it.dropFirst(); continue }
                    closed = true
                    break
                }
                field.append(c)
            }
            guard closed, it.isEmpty || it.first == "," else {
                throw CompileError("extraneous or missing \" in a quoted field")
            }
        } else {
            while let c = it.first, c != "," {
                guard c != "\"" else { throw CompileError("a bare \" in a field that is not quoted (quote the whole field: \"src=...\")") }
                field.append(c)
                it = it.dropFirst()
            }
        }
        fields.append(String(field))
        field = String.UnicodeScalarView()
        guard it.first == "," else { break }
        it = it.dropFirst()
    }
    return fields
}

/// A boolean option of --mount: alone, or =true|false|1|0.
func mountBool(_ v: String?, _ key: String, _ what: String) throws -> Bool {
    switch v {
    case nil, "true", "1": return true
    case "false", "0": return false
    case let v?: throw CompileError("invalid \(what): \(key)=\(quoted(v)): use true or false")
    }
}

/// What one `--mount` compiles to: a mount of the spec, or, for
/// type=volume, the `-v NAME:/PATH[:ro]` form named volumes are resolved
/// from (by the caller, before compile, into a bind of the volume's data).
public enum MountFlag: Equatable {
    case mount(Mount)
    case volume(String)
}

/// `--mount type=bind|tmpfs|volume,...` with Docker's keys (src/source,
/// dst/destination/target, ro/readonly, bind-propagation,
/// bind-nonrecursive, tmpfs-size, tmpfs-mode, volume-nocopy) and podman's
/// tmpcopyup/notmpcopyup for tmpfs.
public func parseMount(_ m: String, host: Host) throws -> MountFlag {
    let what = "--mount \(quoted(m))"
    let fields: [String]
    do { fields = try csvFields(m) } catch let e as CompileError { throw CompileError("invalid \(what): \(e.message)") }
    var type: String?
    var src: String?
    var dst: String?
    var readonly = false
    var propagation: String?
    var recursive = true
    var tmpfs: [String] = []
    var seen = Set<String>()
    for f in fields {
        guard !f.isEmpty else { throw CompileError("invalid \(what): an empty field") }
        let eq = f.firstIndex(of: "=")
        let key = String(eq.map { f[..<$0] } ?? Substring(f)).lowercased()
        let value = eq.map { String(f[f.index(after: $0)...]) }
        let canonical = ["source": "src", "destination": "dst", "target": "dst", "readonly": "ro"][key] ?? key
        guard seen.insert(canonical).inserted else { throw CompileError("invalid \(what): \(key) is given twice") }
        func needs() throws -> String {
            guard let v = value, !v.isEmpty else { throw CompileError("invalid \(what): \(key) needs a value (\(key)=...)") }
            return v
        }
        switch canonical {
        case "type": type = try needs()
        case "src": src = try needs()
        case "dst": dst = try needs()
        case "ro": readonly = try mountBool(value, key, what)
        case "consistency": _ = try needs()  // Docker for Mac's; meaningless here, as on Docker for Linux
        case "bind-propagation":
            let p = try needs()
            guard ["private", "rprivate", "shared", "rshared", "slave", "rslave"].contains(p) else {
                throw CompileError("invalid \(what): bind-propagation=\(quoted(p)): use private, rprivate, shared, rshared, slave or rslave")
            }
            propagation = p
        case "bind-nonrecursive": recursive = !(try mountBool(value, key, what))
        case "tmpfs-size":
            let v = try needs()
            guard let n = parseSize(v), n > 0 else { throw CompileError("invalid \(what): tmpfs-size=\(quoted(v)): use a size such as 64m") }
            tmpfs.append("size=\(n)")
        case "tmpfs-mode":
            let v = try needs()
            guard v.count <= 4, v.utf8.allSatisfy({ $0 >= 48 && $0 <= 55 }) else {
                throw CompileError("invalid \(what): tmpfs-mode=\(quoted(v)): use octal permission bits such as 1777")
            }
            tmpfs.append("mode=" + v)
        case "tmpcopyup", "notmpcopyup":
            guard value == nil else { throw CompileError("invalid \(what): \(key) takes no value") }
            tmpfs.append(key)
        case "volume-nocopy": _ = try mountBool(value, key, what)  // our volumes are never filled from the image
        default:
            throw CompileError("invalid \(what): unknown option \(quoted(key))")
        }
    }
    guard let t = type else { throw CompileError("invalid \(what): type= is required (bind, tmpfs or volume)") }
    guard let d = dst else { throw CompileError("invalid \(what): dst= (the container path) is required") }
    let destination = try mountDestination(d, what)
    func only(_ keys: [String], _ forType: String) throws {
        for k in keys where seen.contains(k) { throw CompileError("invalid \(what): \(k) is only for type=\(forType)") }
    }
    switch t {
    case "bind":
        try only(["tmpfs-size", "tmpfs-mode", "tmpcopyup", "notmpcopyup"], "tmpfs")
        try only(["volume-nocopy"], "volume")
        guard let s = src else { throw CompileError("invalid \(what): type=bind needs src= (the host path)") }
        guard Path.isAbsolute(s) else { throw CompileError("invalid \(what): the host path \(quoted(s)) must be absolute") }
        guard let real = host.realPath(s) else { throw CompileError("\(what): host path \(s) does not exist") }
        var opts = [recursive ? "rbind" : "bind", propagation ?? "rprivate"]
        if readonly { opts.append("ro") }
        return .mount(Mount(destination: destination, type: "bind", source: real, options: opts))
    case "tmpfs":
        try only(["bind-propagation", "bind-nonrecursive"], "bind")
        try only(["volume-nocopy"], "volume")
        guard src == nil else { throw CompileError("invalid \(what): type=tmpfs takes no src=") }
        return .mount(Mount(destination: destination, type: "tmpfs", source: "tmpfs",
                            options: try tmpfsOptions((readonly ? ["ro"] : []) + tmpfs, what)))
    case "volume":
        try only(["tmpfs-size", "tmpfs-mode", "tmpcopyup", "notmpcopyup"], "tmpfs")
        try only(["bind-propagation", "bind-nonrecursive"], "bind")
        guard let name = src else { throw CompileError("invalid \(what): type=volume needs src= (the volume's name)") }
        guard validName(name) else {
            throw CompileError("invalid \(what): \(quoted(name)) is not a volume name (letters, digits, _ . -; for a host path use type=bind)")
        }
        guard !destination.holdsByte(":") else {
            throw CompileError("invalid \(what): a volume's container path cannot contain \":\"")
        }
        return .volume(name + ":" + destination + (readonly ? ":ro" : ""))
    default:
        throw CompileError("invalid \(what): type=\(quoted(t)): use bind, tmpfs or volume")
    }
}

/// `--shm-size SIZE`: the size= of the /dev/shm tmpfs (in k when it is a
/// whole number of them, as the default 65536k).
public func shmSizeOption(_ s: String) throws -> String {
    guard let n = parseSize(s), n > 0 else {
        throw CompileError("invalid --shm-size \(quoted(s)): use a positive size such as 64m or 1g")
    }
    return n % 1024 == 0 ? "size=\(n / 1024)k" : "size=\(n)"
}
