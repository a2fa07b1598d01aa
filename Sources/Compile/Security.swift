import Spec

// The security run flags, Docker's: --cap-add, --cap-drop, --privileged,
// --security-opt, --device, --sysctl and --userns. Each is read into part of
// the spec here; compile() puts the parts in place. Every bad value is one
// CompileError line naming the flag and the value.

/// Every capability of Linux 6.x, in number order (Spec's table).
public let allCapabilities = linuxCapabilities

/// A capability as a flag names it (`sys_admin`, `CAP_SYS_ADMIN`, `Sys_Admin`)
/// in the spec's spelling, "ALL" for all; nil when Linux has no such one.
public func capabilityName(_ text: String) -> String? {
    let up = text.uppercased()
    if up == "ALL" { return "ALL" }
    let name = up.hasPrefix("CAP_") ? up : "CAP_" + up
    return allCapabilities.contains(name) ? name : nil
}

/// The capability set of a container, as Docker computes it: with
/// `--cap-add ALL` every capability but those dropped; with `--cap-drop ALL`
/// only those added; otherwise the base set (the default one, or all with
/// --privileged) less those dropped, then those added. "Every capability" is
/// every one of `available` (the caller's bounding set: a runtime that lacks
/// one cannot grant it, and a privileged container should still start).
public func capabilitySet(add: [String], drop: [String], privileged: Bool,
                          available: [String] = allCapabilities) throws -> [String] {
    let all = allCapabilities.filter { available.contains($0) }
    func names(_ list: [String], _ flag: String) throws -> [String] {
        try list.map {
            guard let n = capabilityName($0) else {
                throw CompileError("invalid \(flag) \(quoted($0)): no such capability (use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)")
            }
            return n
        }
    }
    let adds = try names(add, "--cap-add"), drops = try names(drop, "--cap-drop")
    var caps: [String]
    if adds.contains("ALL") {
        caps = all.filter { !drops.contains($0) }
    } else if drops.contains("ALL") {
        caps = []
        for a in adds where !caps.contains(a) { caps.append(a) }
    } else {
        caps = (privileged ? all : runCapabilities).filter { !drops.contains($0) }
        for a in adds where !caps.contains(a) { caps.append(a) }
    }
    return caps
}

/// What the --security-opt values ask for.
public struct SecurityOptions: Equatable {
    /// No linux.seccomp at all.
    public var seccompUnconfined = false
    /// A profile file instead of the default profile.
    public var seccompPath: String?
    public var noNewPrivileges: Bool?
    public var apparmorProfile: String?
    /// nil: no label asked for; the fields set by label=user:, role:, type:, level:.
    public var labelFields: [String: String] = [:]
    public var labelDisabled = false
    public init() {}

    /// process.selinuxLabel: the fields given over the usual container
    /// context (system_u:system_r:container_t:s0); nil without any, or with
    /// label=disable.
    public var selinuxLabel: String? {
        guard !labelDisabled, !labelFields.isEmpty else { return nil }
        return [("user", "system_u"), ("role", "system_r"), ("type", "container_t"), ("level", "s0")]
            .map { labelFields[$0.0] ?? $0.1 }.joined(separator: ":")
    }
}

/// `--security-opt` values: `KEY=VALUE`, or Docker's older `KEY:VALUE`.
public func parseSecurityOptions(_ opts: [String]) throws -> SecurityOptions {
    var s = SecurityOptions()
    for opt in opts {
        let bad = { (why: String) in CompileError("invalid --security-opt \(quoted(opt)): \(why)") }
        var key = opt, value: String?
        if let eq = opt.firstIndex(of: "=") {
            key = String(opt[..<eq])
            value = String(opt[opt.index(after: eq)...])
        } else if let colon = opt.firstIndex(of: ":") {
            key = String(opt[..<colon])
            value = String(opt[opt.index(after: colon)...])
        }
        switch key {
        case "no-new-privileges":
            switch value {
            case nil, "true": s.noNewPrivileges = true
            case "false": s.noNewPrivileges = false
            default: throw bad("no-new-privileges takes true or false")
            }
        case "seccomp":
            guard let v = value, !v.isEmpty else { throw bad("use seccomp=unconfined or seccomp=PATH (a JSON profile)") }
            if v == "unconfined" {
                s.seccompUnconfined = true
                s.seccompPath = nil
            } else {
                s.seccompUnconfined = false
                s.seccompPath = v
            }
        case "apparmor":
            guard let v = value, !v.isEmpty else { throw bad("use apparmor=PROFILE or apparmor=unconfined") }
            s.apparmorProfile = v == "unconfined" ? nil : v
        case "label":
            guard let v = value, !v.isEmpty else { throw bad("use label=disable, label=user:U, role:R, type:T or level:L") }
            if v == "disable" {
                s.labelDisabled = true
                continue
            }
            guard let c = v.firstIndex(of: ":"), ["user", "role", "type", "level"].contains(String(v[..<c])) else {
                throw bad("the label option must be disable, user:U, role:R, type:T or level:L")
            }
            let field = String(v[..<c]), text = String(v[v.index(after: c)...])
            guard !text.isEmpty, !text.contains(" "), field == "level" || !text.contains(":") else {
                throw bad("\(quoted(text)) is not a valid SELinux \(field)")
            }
            s.labelFields[field] = text
        default:
            throw bad("unknown option (use seccomp=, no-new-privileges, apparmor= or label=)")
        }
    }
    return s
}

/// `--device HOST[:CTR][:PERMS]`: the host path must be a character or block
/// device; the container gets a node at CTR (default HOST) and a cgroup rule
/// allowing PERMS (default rwm) on it.
public func parseDevice(_ text: String, host: Host) throws -> (Device, DeviceCgroup) {
    let usage = "use HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/sda:/dev/xvda:r"
    let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
        throw CompileError("invalid --device \(quoted(text)): \(usage)")
    }
    let src = parts[0]
    var dst = src, perms = "rwm"
    if parts.count == 3 {
        dst = parts[1]
        perms = parts[2]
    } else if parts.count == 2 {
        if Path.isAbsolute(parts[1]) { dst = parts[1] } else { perms = parts[1] }
    }
    guard perms.count <= 3, perms.allSatisfy({ "rwm".contains($0) }), Set(perms).count == perms.count else {
        throw CompileError("invalid --device \(quoted(text)): the permissions must be letters of rwm, not \(quoted(perms))")
    }
    guard Path.isAbsolute(src) else { throw CompileError("invalid --device \(quoted(text)): the host path must be absolute") }
    guard Path.isAbsolute(dst), dst != "/", !Path.hasDotDot(dst) else {
        throw CompileError("invalid --device \(quoted(text)): the container path must be absolute, not / and without ..")
    }
    guard let d = host.device(src) else { throw CompileError("--device \(quoted(text)): \(src) does not exist") }
    guard d.type == "c" || d.type == "b" else {
        throw CompileError("--device \(quoted(text)): \(src) is not a character or block device")
    }
    let dev = Device(type: d.type, path: Path.clean(dst), major: d.major, minor: d.minor,
                     fileMode: d.fileMode & 0o777, uid: 0, gid: 0)
    return (dev, DeviceCgroup(allow: true, type: d.type, major: d.major, minor: d.minor, access: perms))
}

/// `--sysctl KEY=VALUE`, allowed as Docker allows it: a key isolated by a
/// namespace the container has of its own. net.* needs its own network
/// namespace (not --network host, nor another container's); the ipc keys
/// and fs.mqueue.* the ipc namespace it always has; the uts ones are set by
/// --hostname instead; anything else would change the host.
public func parseSysctl(_ text: String, network: String) throws -> (String, String) {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
        throw CompileError("invalid --sysctl \(quoted(text)): use KEY=VALUE, e.g. net.ipv4.ip_forward=1")
    }
    let key = String(text[..<eq]), value = String(text[text.index(after: eq)...])
    guard let name = Sysctl.name(key) else {
        throw CompileError("invalid --sysctl \(quoted(text)): \(quoted(key)) is not a sysctl name")
    }
    guard !value.holdsByte("\n"), !value.holdsByte("\u{0}") else {
        throw CompileError("invalid --sysctl \(quoted(text)): the value must be one line")
    }
    let refused = { (why: String) in CompileError("--sysctl \(quoted(text)) is not allowed: \(why)") }
    switch Sysctl.namespace(of: key) {
    case "network":
        if network == "host" { throw refused("\(name) would change the host's network namespace (--network host)") }
        if network.hasPrefix("container:") {
            throw refused("\(name) would change the network namespace of \(network.dropFirst(10)), which this container joins")
        }
    case "ipc":
        break
    case "uts":
        throw refused("\(name) is set by --hostname")
    default:
        if name.hasPrefix("net."), let why = Sysctl.refusal(key, namespaces: ["network"]) { throw refused(why) }
        throw refused("\(name) is not namespaced: it would change the host's")
    }
    return (key, value)
}
