import Spec

// The Docker-style run flags as a plain value, and their compilation into an
// OCI spec. Compilation is pure: what it needs to know about the host comes
// through `Host`, so the same flags always give the same bytes.

public struct RunFlags: Equatable {
    public var rootfs: String?
    public var name: String?
    public var hostname: String?
    public var env: [String] = []
    public var volumes: [String] = []
    public var memory: String?
    public var cpus: String?
    public var pidsLimit: String?
    public var tty = false
    public var interactive = false
    public var workdir: String?
    public var user: String?
    public var readOnly = false
    public var network: String?
    public var publish: [String] = []
    public var command: [String] = []
    public init() {}
}

/// What compilation may ask of the host.
public struct Host {
    /// The canonical absolute path of an existing file, else nil.
    public var realPath: (String) -> String?
    public var isDirectory: (String) -> Bool
    /// A variable of the caller's environment (for `-e NAME`).
    public var environment: (String) -> String?
    /// A text file's contents, or nil (for user names in the rootfs).
    public var readFile: (String) -> String?

    public init(realPath: @escaping (String) -> String?, isDirectory: @escaping (String) -> Bool,
                environment: @escaping (String) -> String?, readFile: @escaping (String) -> String?) {
        self.realPath = realPath
        self.isDirectory = isDirectory
        self.environment = environment
        self.readFile = readFile
    }
}

public struct CompileError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The capabilities a run-mode container keeps, as Docker grants by default.
public let runCapabilities = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

public func compile(_ f: RunFlags, host: Host) throws -> Spec {
    guard let rootfsArg = f.rootfs else { throw CompileError("--rootfs is required") }
    guard let rootfs = host.realPath(rootfsArg), host.isDirectory(rootfs) else {
        throw CompileError("rootfs \(rootfsArg) does not exist or is not a directory")
    }
    guard !f.command.isEmpty else {
        throw CompileError("no command given: put it after the flags, e.g. --rootfs \(rootfsArg) /bin/sh")
    }
    if let n = f.name, !validName(n) {
        throw CompileError("invalid name \(quoted(n)): use letters, digits, _ . - and start with a letter or digit")
    }

    var spec = Spec()
    let hostname = f.hostname ?? "minicontainer"
    if f.hostname != nil, hostname.isEmpty || hostname.count > 64 || hostname.contains("/") || hostname.contains(" ") {
        throw CompileError("invalid hostname \(quoted(hostname))")
    }

    // Process.
    var env = ["PATH=" + Spec.defaultPath, "HOSTNAME=" + hostname]
    if f.tty { env.append("TERM=xterm") }
    for e in f.env {
        let kv: String
        if let eq = e.firstIndex(of: "=") {
            guard eq != e.startIndex else { throw CompileError("invalid environment variable \(quoted(e)): the name is empty") }
            kv = e
        } else {
            guard !e.isEmpty else { throw CompileError("invalid environment variable \"\": the name is empty") }
            guard let v = host.environment(e) else { continue }  // -e NAME: taken from our environment if set
            kv = e + "=" + v
        }
        let key = kv[..<kv.firstIndex(of: "=")!]
        env.removeAll { $0.hasPrefix(key + "=") }
        env.append(kv)
    }
    let cwd = f.workdir ?? "/"
    guard cwd.hasPrefix("/") else { throw CompileError("working directory \(quoted(cwd)) must be an absolute path") }
    let user = try f.user.map { try parseUser($0, rootfs: rootfs, host: host) } ?? User()
    let caps = Capabilities(bounding: runCapabilities, effective: runCapabilities, permitted: runCapabilities)
    spec.process = Process(terminal: f.tty, user: user, args: f.command, env: env, cwd: cwd, capabilities: caps)

    spec.root = Root(path: rootfs, readonly: f.readOnly)
    spec.hostname = hostname

    // Mounts: the kernel filesystems, then volumes in the order given.
    var mounts = Spec.defaultMounts()
    for v in f.volumes {
        let m = try parseVolume(v, host: host)
        if mounts.contains(where: { $0.destination == m.destination && $0.type == "bind" }) {
            throw CompileError("volume \(quoted(v)): \(m.destination) is mounted twice")
        }
        mounts.append(m)
    }
    spec.mounts = mounts

    // Network.
    let network = f.network ?? "bridge"
    guard ["bridge", "none", "host"].contains(network) || (network.hasPrefix("container:") && network.count > 10) else {
        throw CompileError("invalid --network \(quoted(network)): use bridge, none, host or container:<id|name>")
    }
    var ports: [String] = []
    for p in f.publish { ports.append(try parsePort(p)) }
    if !ports.isEmpty && network != "bridge" {
        throw CompileError("published ports need --network bridge, not \(network)")
    }
    for (i, p) in ports.enumerated() {
        let hostPart = p.split(separator: "/")[0].split(separator: ":").dropLast().joined(separator: ":")
        let proto = p.split(separator: "/")[1]
        if ports[..<i].contains(where: {
            $0.split(separator: "/")[0].split(separator: ":").dropLast().joined(separator: ":") == hostPart
                && $0.split(separator: "/")[1] == proto
        }) {
            throw CompileError("port \(hostPart)/\(proto) is published twice")
        }
    }

    // Linux.
    var linux = Linux()
    var ns = ["pid", "ipc", "uts", "mount", "cgroup"]
    if network != "host" && !network.hasPrefix("container:") { ns.insert("network", at: 1) }
    linux.namespaces = ns.map { Namespace(type: $0) }
    var res = Resources()
    res.devices = [DeviceCgroup(allow: false, access: "rwm")]
    if let m = f.memory {
        guard let bytes = parseSize(m), bytes > 0 else {
            throw CompileError("invalid --memory \(quoted(m)): use a positive size such as 256m, 1g, 512k or 1048576")
        }
        res.memory = Memory(limit: bytes)
    }
    if let c = f.cpus {
        guard let q = parseCPUs(c) else {
            throw CompileError("invalid --cpus \(quoted(c)): use a positive number of CPUs such as 0.5 or 2")
        }
        res.cpu = CPU(quota: q, period: 100_000)
    }
    if let p = f.pidsLimit {
        guard let n = Int64(p), n >= -1 else {
            throw CompileError("invalid --pids-limit \(quoted(p)): use a positive number, or -1 for no limit")
        }
        if n > 0 { res.pids = Pids(limit: n) }
    }
    linux.resources = res
    linux.maskedPaths = Spec.defaultMaskedPaths
    linux.readonlyPaths = Spec.defaultReadonlyPaths
    linux.seccomp = defaultSeccompProfile(capabilities: runCapabilities)
    spec.linux = linux

    var ann: [String: String] = [Annotation.network: network, Annotation.rootfs: rootfs]
    if let n = f.name { ann[Annotation.name] = n }
    if !ports.isEmpty { ann[Annotation.ports] = ports.joined(separator: ",") }
    if f.interactive { ann[Annotation.interactive] = "true" }
    spec.annotations = ann
    return spec
}

public func validName(_ n: String) -> Bool {
    guard let first = n.unicodeScalars.first, first.isASCIIAlnum else { return false }
    return n.count <= 128 && n.unicodeScalars.allSatisfy { $0.isASCIIAlnum || "_.-".unicodeScalars.contains($0) }
}

extension Unicode.Scalar {
    var isASCIIAlnum: Bool {
        (value >= 48 && value <= 57) || (value >= 65 && value <= 90) || (value >= 97 && value <= 122)
    }
}

/// Sizes: a number with an optional unit b, k, m, g or t (either case,
/// optionally followed by b or ib: 256m, 256MB, 1.5g, 512KiB). Units are
/// binary (k = 1024). Nil when malformed or too large.
public func parseSize(_ text: String) -> Int64? {
    var s = Substring(text.lowercased())
    if s.hasSuffix("ib") { s = s.dropLast(2) } else if s.count > 1 && s.hasSuffix("b") && !(s.dropLast().last?.isNumber ?? true) { s = s.dropLast() }
    var mult: Double = 1
    if let u = s.last, !u.isNumber {
        switch u {
        case "b": mult = 1
        case "k": mult = 1024
        case "m": mult = 1024 * 1024
        case "g": mult = 1024 * 1024 * 1024
        case "t": mult = 1024 * 1024 * 1024 * 1024
        default: return nil
        }
        s = s.dropLast()
    }
    guard !s.isEmpty, s.allSatisfy({ $0.isNumber || $0 == "." }), s.filter({ $0 == "." }).count <= 1,
          let n = Double(s), n.isFinite else { return nil }
    let v = n * mult
    guard v < 9.2e18 else { return nil }
    let bytes = Int64(v)
    return Double(bytes) == v || mult > 1 ? bytes : nil
}

/// `--cpus 0.5` -> quota 50000 for a 100000 µs period.
public func parseCPUs(_ text: String) -> Int64? {
    guard !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "." }), let c = Double(text), c.isFinite, c > 0, c <= 1024 else { return nil }
    let quota = Int64(c * 100_000)
    return quota >= 1000 ? quota : nil
}

/// `-v HOST:CTR[:ro|rw]` -> a bind mount. The host path must exist.
public func parseVolume(_ v: String, host: Host) throws -> Mount {
    let parts = v.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw CompileError("invalid volume \(quoted(v)): use HOST:CONTAINER or HOST:CONTAINER:ro")
    }
    var readonly = false
    if parts.count == 3 {
        switch parts[2] {
        case "ro": readonly = true
        case "rw": readonly = false
        default: throw CompileError("invalid volume \(quoted(v)): the mode must be ro or rw, not \(quoted(parts[2]))")
        }
    }
    let src = parts[0]
    guard src.hasPrefix("/") || src.hasPrefix(".") else {
        throw CompileError("invalid volume \(quoted(v)): the host path must be absolute (or start with ./)")
    }
    guard let real = host.realPath(src) else {
        throw CompileError("volume \(quoted(v)): host path \(src) does not exist")
    }
    let dst = parts[1]
    guard dst.hasPrefix("/") else {
        throw CompileError("invalid volume \(quoted(v)): the container path must be absolute")
    }
    guard !dst.split(separator: "/").contains(".."), dst != "/" else {
        throw CompileError("invalid volume \(quoted(v)): the container path must not be / or contain ..")
    }
    let norm = Path.clean(dst)
    var opts = ["rbind", "rprivate"]
    if readonly { opts.append("ro") }
    return Mount(destination: norm, type: "bind", source: real, options: opts)
}

/// `-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]` -> the canonical
/// `[HOSTIP:]HOSTPORT:CTRPORT/PROTO` kept in the ports annotation.
public func parsePort(_ p: String) throws -> String {
    let bad = CompileError("invalid port \(quoted(p)): use [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], e.g. 8080:80")
    var proto = "tcp"
    var body = Substring(p)
    if let slash = p.firstIndex(of: "/") {
        proto = String(p[p.index(after: slash)...])
        body = p[..<slash]
        guard proto == "tcp" || proto == "udp" else {
            throw CompileError("invalid port \(quoted(p)): the protocol must be tcp or udp, not \(quoted(proto))")
        }
    }
    let parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2 || parts.count == 3 else { throw bad }
    func port(_ s: String) throws -> Int {
        guard let n = Int(s), (1...65535).contains(n), s.first != "+" else {
            throw CompileError("invalid port \(quoted(p)): \(quoted(s)) is not a port number (1-65535)")
        }
        return n
    }
    let hp = try port(parts[parts.count - 2])
    let cp = try port(parts[parts.count - 1])
    if parts.count == 3 {
        let ip = parts[0]
        let octets = ip.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ o in o.count <= 3 && UInt8(o) != nil }) else {
            throw CompileError("invalid port \(quoted(p)): \(quoted(ip)) is not an IPv4 address")
        }
        return "\(ip):\(hp):\(cp)/\(proto)"
    }
    return "\(hp):\(cp)/\(proto)"
}

/// `-u UID[:GID]` with numbers, or names looked up in the rootfs's
/// /etc/passwd and /etc/group.
public func parseUser(_ u: String, rootfs: String, host: Host) throws -> User {
    let parts = u.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard parts.count <= 2, !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
        throw CompileError("invalid user \(quoted(u)): use UID[:GID] or NAME[:GROUP]")
    }
    func table(_ file: String) -> [[Substring]] {
        (host.readFile(rootfs + file) ?? "").split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
    }
    var uid: UInt32
    var gid: UInt32 = 0
    if let n = UInt32(parts[0]) {
        uid = n
        if let row = table("/etc/passwd").first(where: { $0.count > 3 && UInt32($0[2]) == n }), let g = UInt32(row[3]) { gid = g }
    } else {
        guard let row = table("/etc/passwd").first(where: { $0.count > 3 && $0[0] == parts[0] }),
              let n = UInt32(row[2]), let g = UInt32(row[3]) else {
            throw CompileError("user \(quoted(parts[0])) is not in \(rootfs)/etc/passwd (give a numeric UID)")
        }
        uid = n
        gid = g
    }
    if parts.count == 2 {
        if let g = UInt32(parts[1]) {
            gid = g
        } else {
            guard let row = table("/etc/group").first(where: { $0.count > 2 && $0[0] == parts[1] }), let g = UInt32(row[2]) else {
                throw CompileError("group \(quoted(parts[1])) is not in \(rootfs)/etc/group (give a numeric GID)")
            }
            gid = g
        }
    }
    return User(uid: uid, gid: gid)
}
