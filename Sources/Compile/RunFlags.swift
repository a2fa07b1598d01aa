import Spec

// The Docker-style run flags as a plain value, and their compilation into an
// OCI spec. Compilation is pure: what it needs to know about the host comes
// through `Host`, so the same flags always give the same bytes.

public struct RunFlags: Equatable {
    /// `--rootfs DIR`, or else an image (`run IMAGE`), resolved by the caller.
    public var rootfs: String?
    public var image: ImageDefaults?
    /// `--entrypoint`: replaces the image's Entrypoint ("" clears it) and drops its Cmd.
    public var entrypoint: String?
    /// `--entrypoint '["/bin/sh","-c"]'`: podman's JSON array form, over `entrypoint`.
    public var entrypointList: [String]?
    public var name: String?
    public var hostname: String?
    public var env: [String] = []
    /// `--env-file FILE`s, read before -e (which wins over them).
    public var envFiles: [String] = []
    /// `--label KEY[=VALUE]` and `--label-file FILE`: annotations of their
    /// own keys, over the image's labels (the files first, then --label).
    public var labels: [String] = []
    public var labelFiles: [String] = []
    public var volumes: [String] = []
    /// `--mount type=bind|tmpfs|volume,...` (Docker's CSV syntax).
    public var mounts: [String] = []
    /// `--tmpfs PATH[:OPTIONS]`.
    public var tmpfs: [String] = []
    /// `--shm-size SIZE`: the /dev/shm tmpfs's size (default 64m).
    public var shmSize: String?
    /// `--ulimit NAME=SOFT[:HARD]` -> process.rlimits.
    public var ulimits: [String] = []
    /// `--init`: a minimal init as PID 1 (Annotation.initProcess).
    public var initProcess = false
    public var memory: String?
    public var cpus: String?
    public var pidsLimit: String?
    public var tty = false
    public var interactive = false
    public var workdir: String?
    public var user: String?
    public var readOnly = false
    /// With readOnly: tmpfs on /run, /tmp and /var/tmp (podman's
    /// --read-only-tmpfs: true, the default when nil, or false).
    public var readOnlyTmpfs: String?
    public var network: String?
    /// The mode when --network is not given: bridge as root; a rootless
    /// caller sets slirp4netns (podman's default) here.
    public var defaultNetwork = "bridge"
    /// `--add-host NAME:IP`, `--dns IP`, `--dns-search DOMAIN`, `--dns-option OPT`:
    /// the generated /etc/hosts and /etc/resolv.conf (DNS.swift).
    public var addHosts: [String] = []
    public var dns: [String] = []
    public var dnsSearch: [String] = []
    public var dnsOptions: [String] = []
    public var publish: [String] = []
    /// `-P`: every port the image exposes, each on a random host port.
    public var publishAll = false
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var privileged = false
    public var securityOpts: [String] = []
    public var devices: [String] = []
    public var sysctls: [String] = []
    public var userns: String?
    /// `--restart no|on-failure[:N]|always|unless-stopped`.
    public var restart: String?
    /// `--rm` (a `run` flag): refused with a restart policy other than no.
    public var autoRemove = false
    /// `--stop-timeout SECONDS`: what `stop` waits before SIGKILL without -t.
    public var stopTimeout: String?
    /// `--stop-signal SIG`: replaces the image's StopSignal.
    public var stopSignal: String?
    public var command: [String] = []
    public init() {}
}

/// The smallest `--memory` run and spec accept: 1 MiB.
public let minimumMemory: Int64 = 1 << 20

/// What an image gives `run IMAGE`: its layers and the defaults of its
/// config (OCI image-spec's config), which flags override as Docker's do.
/// Filled by the caller from the image store; compile only reads it.
public struct ImageDefaults: Equatable {
    /// The reference as the user wrote it, and the image's id (its config's digest).
    public var reference: String
    public var id: String
    /// The unpacked layer directories, top first (overlayfs's lowerdir order).
    public var layers: [String]
    /// Env, Entrypoint, Cmd, WorkingDir, User, StopSignal, labels.
    public var run = ImageRunConfig()
    /// The config's ExposedPorts ("80/tcp", "53/udp", "8080"), for -P.
    public var exposedPorts: [String] = []
    /// The config's Volumes (the image's, so hostile: imageVolumeProblem).
    public var volumes: [String] = []
    public init(reference: String, id: String, layers: [String]) {
        self.reference = reference; self.id = id; self.layers = layers
    }
}

/// What compilation may ask of the host.
public struct Host {
    /// The canonical absolute path of an existing file, else nil.
    public var realPath: (String) -> String?
    public var isDirectory: (String) -> Bool
    /// A variable of the caller's environment (for `-e NAME`).
    public var environment: (String) -> String?
    /// A text file's contents, or nil.
    public var readFile: (String) -> String?
    /// A file of a root filesystem (a directory: --rootfs, or one image
    /// layer), resolved inside it as if it were "/" (symlinks included:
    /// an image's /etc/passwd -> /etc/shadow is the layer's, never the
    /// host's); nil when missing. For user names.
    public var readFileInRoot: (_ root: String, _ path: String) -> String?
    /// What `path` is, following symlinks (for `--device`); nil when it does not exist.
    public var device: (String) -> HostDevice?
    /// The host's device nodes, as `--privileged` gives them (the CLI walks /dev).
    public var hostDevices: () -> [Device]
    /// The seccomp profile in the JSON file at a path (`--security-opt
    /// seccomp=PATH`); throws a CompileError naming the path (and, for a
    /// parse error, where in it).
    public var seccompProfile: (String) throws -> Seccomp
    /// The capabilities the caller holds in its bounding set: what "all
    /// capabilities" (--privileged, --cap-add ALL) can give.
    public var boundingSet: () -> [String]

    public init(realPath: @escaping (String) -> String?, isDirectory: @escaping (String) -> Bool,
                environment: @escaping (String) -> String?, readFile: @escaping (String) -> String?,
                readFileInRoot: ((String, String) -> String?)? = nil,
                device: @escaping (String) -> HostDevice? = { _ in nil },
                hostDevices: @escaping () -> [Device] = { [] },
                seccompProfile: @escaping (String) throws -> Seccomp = { throw CompileError("seccomp profile \($0): cannot be read here") },
                boundingSet: @escaping () -> [String] = { allCapabilities }) {
        self.realPath = realPath
        self.isDirectory = isDirectory
        self.environment = environment
        self.readFile = readFile
        self.readFileInRoot = readFileInRoot ?? { root, path in readFile(root + path) }
        self.device = device
        self.hostDevices = hostDevices
        self.seccompProfile = seccompProfile
        self.boundingSet = boundingSet
    }
}

/// A file as `--device` sees it: its type ("c", "b", or "" when it is not
/// a character or block device), its device numbers and permission bits.
public struct HostDevice: Equatable {
    public var type: String
    public var major: Int64
    public var minor: Int64
    public var fileMode: UInt32
    public init(type: String, major: Int64 = 0, minor: Int64 = 0, fileMode: UInt32 = 0o666) {
        self.type = type
        self.major = major
        self.minor = minor
        self.fileMode = fileMode
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

/// The --network modes besides container:X.
public let networkModes: Set<String> = ["bridge", "slirp4netns", "pasta", "none", "host"]
/// The modes -p publishes ports in.
public let publishingModes: Set<String> = ["bridge", "slirp4netns", "pasta"]

public func compile(_ f: RunFlags, host: Host) throws -> Spec {
    // The root: a directory (--rootfs), or an image's layers, top first.
    let rootfs: String
    let layers: [String]
    if let image = f.image {
        guard f.rootfs == nil else { throw CompileError("--rootfs and an image exclude each other") }
        guard let top = image.layers.first else { throw CompileError("image \(image.reference) has no layers") }
        rootfs = top
        layers = image.layers
    } else {
        guard let rootfsArg = f.rootfs else { throw CompileError("--rootfs or an image is required") }
        guard let r = host.realPath(rootfsArg), host.isDirectory(r) else {
            throw CompileError("rootfs \(rootfsArg) does not exist or is not a directory")
        }
        rootfs = r
        layers = [r]
    }
    // The command: Docker's rules. --entrypoint replaces the image's
    // Entrypoint and drops its Cmd; arguments after the image replace Cmd.
    var args: [String]
    let entrypoint = f.entrypointList ?? f.entrypoint.map { $0.isEmpty ? [] : [$0] }
    if let image = f.image {
        let entry = entrypoint ?? image.run.entrypoint ?? []
        let cmd = !f.command.isEmpty ? f.command : entrypoint != nil ? [] : image.run.cmd ?? []
        args = entry + cmd
        guard !args.isEmpty else {
            throw CompileError("no command given and image \(image.reference) has no Entrypoint or Cmd: put one after the image")
        }
    } else {
        args = (entrypoint ?? []) + f.command
        guard !args.isEmpty else {
            throw CompileError("no command given: put it after the flags, e.g. --rootfs \(f.rootfs!) /bin/sh")
        }
    }
    if let n = f.name, !validName(n) {
        throw CompileError("invalid name \(quoted(n)): use letters, digits, _ . - and start with a letter or digit")
    }

    var spec = Spec()
    let hostname = f.hostname ?? "minicontainer"
    if f.hostname != nil, hostname.isEmpty || hostname.utf8.count > 64 || Path.hasSlash(hostname)
        || hostname.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) {
        throw CompileError("invalid hostname \(quoted(hostname))")
    }

    // Process.
    // The image's Env replaces the defaults it names (PATH); -e wins over both.
    var env = ["PATH=" + Spec.defaultPath, "HOSTNAME=" + hostname]
    for e in f.image?.run.env ?? [] {
        guard let eq = e.firstIndex(of: "="), eq != e.startIndex else {
            throw CompileError("image \(f.image!.reference): invalid Env entry \(quoted(e)) (NAME=VALUE)")
        }
        env.append(e)
    }
    if f.tty { env.append("TERM=xterm") }
    // A later variable replaces an earlier one of the same name and takes
    // its place at the end: kept in the order of each name's last setting.
    // One pass and a dictionary (a scan per -e was quadratic: 20,000 -e
    // took 20 s; found by fuzz-args).
    var entries = env
    var given: [String] = []
    for path in f.envFiles {
        given += try parseKeyValueFile(try readFlagFile(path, flag: "--env-file", host: host), flag: "--env-file", path: path)
    }
    for e in given + f.env {
        if let eq = e.firstIndex(of: "=") {
            guard eq != e.startIndex else { throw CompileError("invalid environment variable \(quoted(e)): the name is empty") }
            entries.append(e)
        } else {
            guard !e.isEmpty else { throw CompileError("invalid environment variable \"\": the name is empty") }
            guard let v = host.environment(e) else { continue }  // -e NAME: taken from our environment if set
            entries.append(e + "=" + v)
        }
    }
    var last: [Substring: Int] = [:]
    for (i, kv) in entries.enumerated() { last[kv[..<kv.firstIndex(of: "=")!]] = i }
    env = entries.enumerated().filter { last[$0.element[..<$0.element.firstIndex(of: "=")!]] == $0.offset }.map(\.element)
    let imageDir = f.image?.run.workingDir.flatMap { $0.isEmpty ? nil : $0 }
    let cwd = f.workdir ?? imageDir ?? "/"
    guard Path.isAbsolute(cwd) else {
        throw CompileError(f.workdir == nil ? "image \(f.image!.reference): WorkingDir \(quoted(cwd)) must be an absolute path"
                                             : "working directory \(quoted(cwd)) must be an absolute path")
    }
    let userSpec = f.user ?? f.image?.run.user.flatMap { $0.isEmpty ? nil : $0 }
    let user = try userSpec.map { try parseUser($0, layers: layers, host: host) } ?? User()
    let capSet = try capabilitySet(add: f.capAdd, drop: f.capDrop, privileged: f.privileged,
                                   available: host.boundingSet())
    let security = try parseSecurityOptions(f.securityOpts)
    if let u = f.userns, !u.isEmpty, u != "host" {
        throw CompileError("invalid --userns \(quoted(u)): only host (the default) is supported for now")
    }
    let caps = Capabilities(bounding: capSet, effective: capSet, permitted: capSet)
    spec.process = Process(terminal: f.tty, user: user, args: args, env: env, cwd: cwd, capabilities: caps)
    let rlimits = try parseUlimits(f.ulimits)
    if !rlimits.isEmpty { spec.process!.rlimits = rlimits }
    if security.noNewPrivileges == true { spec.process!.noNewPrivileges = true }
    spec.process!.apparmorProfile = security.apparmorProfile
    spec.process!.selinuxLabel = security.selinuxLabel

    spec.root = Root(path: rootfs, readonly: f.readOnly)
    spec.hostname = hostname

    // Mounts: the kernel filesystems (/dev/shm of --shm-size), then -v,
    // --mount and --tmpfs, each in the order given, shallower paths first
    // (as Docker sorts them: a volume at /data/x stays visible over a
    // tmpfs at /data); a path mounted twice is refused.
    var mounts = Spec.defaultMounts()
    if let s = f.shmSize {
        let size = try shmSizeOption(s)
        for i in mounts.indices where mounts[i].destination == "/dev/shm" {
            mounts[i].options = (mounts[i].options ?? []).filter { !$0.hasPrefix("size=") } + [size]
        }
    }
    var volumes = f.volumes
    var own: [(Mount, String)] = []
    for m in f.mounts {
        switch try parseMount(m, host: host) {
        case .mount(let x): own.append((x, "--mount \(quoted(m))"))
        case .volume(let v): volumes.append(v)
        }
    }
    own = try volumes.map { (try parseVolume($0, host: host), "volume \(quoted($0))") } + own
    for t in f.tmpfs { own.append((try parseTmpfs(t), "--tmpfs \(quoted(t))")) }
    var destinations = Set<String>()
    for (m, what) in own where !destinations.insert(m.destination).inserted {
        throw CompileError("\(what): \(m.destination) is mounted twice")
    }
    let depth = { (m: Mount) in Path.components(m.destination).count }
    mounts += own.map(\.0).enumerated().sorted { (depth($0.element), $0.offset) < (depth($1.element), $1.offset) }.map(\.element)
    let roTmpfs: Bool
    switch f.readOnlyTmpfs {
    case nil, "true", "1": roTmpfs = true
    case "false", "0": roTmpfs = false
    case let v?: throw CompileError("invalid --read-only-tmpfs \(quoted(v)): use true or false")
    }
    if f.readOnly && roTmpfs {
        // A read-only root keeps the places programs write to writable,
        // unless a volume is there already.
        for (dir, mode) in [("/run", "755"), ("/tmp", "1777"), ("/var/tmp", "1777")] where !mounts.contains(where: { $0.destination == dir }) {
            mounts.append(Mount(destination: dir, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=" + mode]))
        }
    }
    if f.privileged {
        // A writable /sys (and cgroup tree), as Docker gives privileged containers.
        for i in mounts.indices where mounts[i].destination == "/sys" || mounts[i].destination == "/sys/fs/cgroup" {
            mounts[i].options = mounts[i].options?.filter { $0 != "ro" }
        }
    }
    spec.mounts = mounts

    // Network.
    let network = f.network ?? f.defaultNetwork
    guard networkModes.contains(network) || (network.hasPrefix("container:") && network.count > 10) else {
        throw CompileError("invalid --network \(quoted(network)): use bridge, slirp4netns, pasta, none, host or container:<id|name>")
    }
    var ports: [String] = []
    for p in f.publish { ports += try parsePorts(p) }
    // -P: every port the image exposes that no -p publishes already.
    if f.publishAll, let image = f.image {
        let given = Set(ports.map { $0.split(separator: ":").last! })  // "80/tcp"
        for key in image.exposedPorts.sorted() {
            let p = try exposedPort(key, image: image.reference)
            if !given.contains(p.split(separator: ":").last!) { ports.append(p) }
        }
    }
    if !ports.isEmpty && !publishingModes.contains(network) {
        throw CompileError("published ports need --network bridge, slirp4netns or pasta, not \(network)")
    }
    var published = Set<String>()  // "HOSTPART/PROTO" (a scan per -p was quadratic; found by fuzz-args)
    for p in ports {
        let hostPart = p.split(separator: "/")[0].split(separator: ":").dropLast().joined(separator: ":")
        let proto = p.split(separator: "/")[1]
        if hostPart.hasSuffix(":0") || hostPart == "0" { continue }  // a random port: never the same one twice
        guard published.insert(hostPart + "/" + proto).inserted else {
            throw CompileError("port \(hostPart)/\(proto) is published twice")
        }
    }

    // Linux.
    var linux = Linux()
    var ns = ["pid", "ipc", "uts", "mount", "cgroup"]
    if network != "host" && !network.hasPrefix("container:") { ns.insert("network", at: 1) }
    linux.namespaces = ns.map { Namespace(type: $0) }
    var res = Resources()
    // Devices: the host's with --privileged (every one allowed), then --device's.
    var devices: [Device] = []
    var deviceRules = [DeviceCgroup(allow: f.privileged, access: "rwm")]
    for d in f.devices {
        let (dev, rule) = try parseDevice(d, host: host)
        if devices.contains(where: { $0.path == dev.path }) {
            throw CompileError("invalid --device \(quoted(d)): \(dev.path) is given twice")
        }
        devices.append(dev)
        if !f.privileged { deviceRules.append(rule) }
    }
    if f.privileged {
        let own = Set(devices.map { $0.path })
        devices = host.hostDevices().filter { !own.contains($0.path) }.sorted { $0.path < $1.path } + devices
    }
    if !devices.isEmpty { linux.devices = devices }
    var sysctl: [String: String] = [:]
    for s in f.sysctls {
        let (k, v) = try parseSysctl(s, network: network)
        sysctl[k] = v
    }
    if !sysctl.isEmpty { linux.sysctl = sysctl }
    res.devices = deviceRules
    if let m = f.memory {
        guard let bytes = parseSize(m), bytes > 0 else {
            throw CompileError("invalid --memory \(quoted(m)): use a positive size such as 256m, 1g, 512k or 1048576")
        }
        // Below this the container's own init does not fit before the
        // program starts (measured: 256 KiB runs /bin/true, 200 KiB is
        // killed before exec); a floor with room, as Docker's 6 MB is.
        guard bytes >= minimumMemory else {
            throw CompileError("--memory \(quoted(m)) is below the minimum of 1m (1 MiB): the container would be killed by its memory limit before its program starts")
        }
        res.memory = Memory(limit: bytes)
    }
    if let c = f.cpus {
        guard let q = parseCPUs(c) else {
            if c.allSatisfy({ $0.isNumber || $0 == "." }), let d = Double(c), d.isFinite, d > 0 {
                throw CompileError(d > 1024 ? "invalid --cpus \(quoted(c)): at most 1024 CPUs"
                    : "invalid --cpus \(quoted(c)): at least 0.01 CPUs (the kernel's smallest quota is 1 ms of each 100 ms)")
            }
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
    if !f.privileged {
        linux.maskedPaths = Spec.defaultMaskedPaths
        linux.readonlyPaths = Spec.defaultReadonlyPaths
    }
    // Seccomp: none when privileged or unconfined (Docker's order: privileged
    // wins over a profile), else the file's profile, else the default one for
    // the capabilities the container is bounded by.
    if !f.privileged && !security.seccompUnconfined {
        if let path = security.seccompPath {
            do {
                linux.seccomp = try host.seccompProfile(path)
            } catch let e as CompileError {
                throw e
            } catch {
                throw CompileError("--security-opt seccomp=\(path): \(error)")
            }
        } else {
            linux.seccomp = defaultSeccompProfile(capabilities: capSet)
        }
    }
    spec.linux = linux

    // An image's labels become annotations, as podman's do, but none of
    // ours: a label "org.minicontainer.network" must not configure the
    // network (or anything else) of the host. Flags are set after them.
    var ann: [String: String] = [:]
    if let image = f.image {
        for (k, v) in image.run.labels where !k.hasPrefix(Annotation.prefix) && !k.isEmpty { ann[k] = v }
        ann[Annotation.image] = image.reference
        ann[Annotation.imageID] = image.id
        if let s = image.run.stopSignal, !s.isEmpty {
            guard Signal.parse(s) != nil else { throw CompileError("image \(image.reference): unknown StopSignal \(quoted(s))") }
            ann[Annotation.stopSignal] = s
        }
    } else {
        ann[Annotation.rootfs] = rootfs
    }
    for (k, v) in try parseLabels(f, host: host) { ann[k] = v }
    for (k, v) in try dnsAnnotations(f) { ann[k] = v }
    ann[Annotation.network] = network
    if let n = f.name { ann[Annotation.name] = n }
    if !ports.isEmpty { ann[Annotation.ports] = ports.joined(separator: ",") }
    if f.interactive { ann[Annotation.interactive] = "true" }
    if f.initProcess { ann[Annotation.initProcess] = "true" }
    if let r = try parseRestart(f.restart) {
        guard !f.autoRemove else {
            throw CompileError("the --rm option conflicts with --restart \(r): the restart policy must be no")
        }
        ann[Annotation.restart] = r
    }
    if let t = f.stopTimeout {
        guard let n = Int32(t), n >= 0, t.first != "+" else {
            throw CompileError("invalid --stop-timeout \(quoted(t)): use a number of seconds (0 or more)")
        }
        ann[Annotation.stopTimeout] = String(n)
    }
    if let s = f.stopSignal {
        guard let n = Signal.parse(s) else { throw CompileError("invalid --stop-signal \(quoted(s)): not a signal name or number") }
        ann[Annotation.stopSignal] = Signal.name(n).map { "SIG" + $0 } ?? String(n)
    }
    spec.annotations = ann
    return spec
}

/// A file a flag names (--env-file, --label-file), or a one-line error.
func readFlagFile(_ path: String, flag: String, host: Host) throws -> String {
    guard let text = host.readFile(path) else { throw CompileError("\(flag) \(path): cannot be read (no such file, or not a text file)") }
    return text
}

/// `--label-file`s then `--label`s, in order (a later one of a key wins):
/// KEY=VALUE, or KEY alone for an empty value, as Docker. Our own prefix
/// is refused, as for an image's labels: a label must not configure the
/// runtime.
func parseLabels(_ f: RunFlags, host: Host) throws -> [(String, String)] {
    var entries: [String] = []
    for path in f.labelFiles {
        entries += try parseKeyValueFile(try readFlagFile(path, flag: "--label-file", host: host), flag: "--label-file", path: path)
    }
    return try (entries + f.labels).map { l in
        let eq = l.firstIndex(of: "=")
        let key = String(eq.map { l[..<$0] } ?? Substring(l))
        guard !key.isEmpty else { throw CompileError("invalid label \(quoted(l)): the key is empty") }
        guard !key.hasPrefix(Annotation.prefix) else {
            throw CompileError("invalid label \(quoted(key)): keys starting with \(Annotation.prefix) are minicontainer's own")
        }
        return (key, eq.map { String(l[l.index(after: $0)...]) } ?? "")
    }
}

/// `--restart`'s policy in its canonical form (`on-failure`, `on-failure:3`,
/// `always`, `unless-stopped`), nil for none (`no`, or no flag): Docker's
/// names, a retry count only with on-failure, and a positive one.
public func parseRestart(_ text: String?) throws -> String? {
    guard let text = text, text != "no", text != "" else { return nil }
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    let policy = String(parts[0])
    guard ["on-failure", "always", "unless-stopped"].contains(policy) else {
        throw CompileError("invalid --restart \(quoted(text)): use no, on-failure[:N], always or unless-stopped")
    }
    guard parts.count == 2 else { return policy }
    guard policy == "on-failure" else {
        throw CompileError("invalid --restart \(quoted(text)): only on-failure takes a retry count")
    }
    let count = parts[1]
    guard count.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int32(count), n > 0 else {
        throw CompileError("invalid --restart \(quoted(text)): the retry count must be a positive integer")
    }
    return "on-failure:\(n)"
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
    guard Path.isAbsolute(src) || src.hasPrefix(".") else {
        throw CompileError("invalid volume \(quoted(v)): the host path must be absolute (or start with ./)")
    }
    guard let real = host.realPath(src) else {
        throw CompileError("volume \(quoted(v)): host path \(src) does not exist")
    }
    let dst = parts[1]
    guard Path.isAbsolute(dst) else {
        throw CompileError("invalid volume \(quoted(v)): the container path must be absolute")
    }
    guard !Path.hasDotDot(dst), dst != "/" else {
        throw CompileError("invalid volume \(quoted(v)): the container path must not be / or contain ..")
    }
    let norm = Path.clean(dst)
    var opts = ["rbind", "rprivate"]
    if readonly { opts.append("ro") }
    return Mount(destination: norm, type: "bind", source: real, options: opts)
}

/// `-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp]` -> the canonical
/// `[HOSTIP:]HOSTPORT:CTRPORT/PROTO` kept in the ports annotation; one
/// entry only (parsePorts takes ranges).
public func parsePort(_ p: String) throws -> String {
    let all = try parsePorts(p)
    guard all.count == 1 else { throw CompileError("invalid port \(quoted(p)): a range, where one port was expected") }
    return all[0]
}

/// `-p` in all of Docker's forms, each published port canonical:
/// `CTR` (a random host port, written as host port 0, which the network
/// replaces with a free one at run time), `HOST:CTR`, `IP:HOST:CTR`,
/// `IP::CTR`, and ranges `8000-8002:80-82` (one entry a port; the two
/// ranges as long as each other, so `8000-8002:80` is refused, as podman).
public func parsePorts(_ p: String) throws -> [String] {
    let bad = CompileError("invalid port \(quoted(p)): use [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/tcp|udp], e.g. 8080:80, 80 or 8000-8002:80-82")
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
    guard (1...3).contains(parts.count) else { throw bad }
    func port(_ s: Substring, zero: Bool = false) throws -> Int {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), s.count <= 5, let n = Int(s),
              (1...65535).contains(n) || (zero && n == 0), s == "0" || s.first != "0" else {
            throw CompileError("invalid port \(quoted(p)): \(quoted(String(s))) is not a port number (1-65535)")
        }
        return n
    }
    /// "N" or "N-M" (N <= M).
    func range(_ s: String, zero: Bool = false) throws -> ClosedRange<Int> {
        let ends = s.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count <= 2 else { throw bad }
        let lo = try port(ends[0], zero: zero && ends.count == 1)
        let hi = ends.count == 2 ? try port(ends[1]) : lo
        guard lo <= hi else { throw CompileError("invalid port \(quoted(p)): the range \(s) ends before it starts") }
        return lo...hi
    }
    let ctr = try range(parts[parts.count - 1])
    let hostText = parts.count >= 2 ? parts[parts.count - 2] : ""
    guard !hostText.isEmpty || parts.count != 2 else { throw bad }  // ":80"
    let host = hostText.isEmpty ? 0...0 : try range(hostText, zero: true)
    let random = host == 0...0
    guard random || host.count == ctr.count else {
        throw CompileError("invalid port \(quoted(p)): the host and container port ranges have different lengths (\(host.count) and \(ctr.count))")
    }
    var prefix = ""
    if parts.count == 3 {
        let ip = parts[0]
        let octets = ip.split(separator: ".", omittingEmptySubsequences: false)
        // Decimal octets as the network reads them back (Network's IPv4):
        // digits only, no leading zero ("013" is not 13 there, "+1" not 1).
        guard octets.count == 4, octets.allSatisfy({ o in
            o.count <= 3 && o.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) && (o == "0" || o.first != "0") && UInt8(o) != nil
        }) else {
            throw CompileError("invalid port \(quoted(p)): \(quoted(ip)) is not an IPv4 address")
        }
        prefix = ip + ":"
    }
    return ctr.enumerated().map { i, c in "\(prefix)\(random ? 0 : host.lowerBound + i):\(c)/\(proto)" }
}

/// An image's ExposedPorts key ("80/tcp", "53/udp", "8080") as `-P`
/// publishes it: on a random host port.
func exposedPort(_ key: String, image: String) throws -> String {
    do {
        return try parsePort(key)
    } catch {
        throw CompileError("image \(image): invalid ExposedPorts entry \(quoted(key)) (PORT[/tcp|udp])")
    }
}

/// `-u UID[:GID]` with numbers, or names looked up in the rootfs's
/// /etc/passwd and /etc/group.
public func parseUser(_ u: String, rootfs: String, host: Host) throws -> User {
    try parseUser(u, layers: [rootfs], host: host)
}

/// The same for the layers of an image (top first): a file is read from
/// the top layer that has it, each resolved inside its own directory.
public func parseUser(_ u: String, layers: [String], host: Host) throws -> User {
    let rootfs = layers.count == 1 ? layers[0] : "the image"
    let parts = u.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard parts.count <= 2, !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
        throw CompileError("invalid user \(quoted(u)): use UID[:GID] or NAME[:GROUP]")
    }
    func table(_ file: String) -> [[Substring]] {
        (layers.lazy.compactMap { host.readFileInRoot($0, file) }.first ?? "").split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
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
    // The user's supplementary groups, as Docker and runc take them: every
    // group of /etc/group that lists the user's name.
    let name = UInt32(parts[0]) == nil ? Substring(parts[0])
        : table("/etc/passwd").first(where: { $0.count > 3 && UInt32($0[2]) == uid })?[0]
    var extra: [UInt32] = []
    if let n = name, !n.isEmpty {
        for row in table("/etc/group") where row.count > 3 && row[3].split(separator: ",").contains(n) {
            if let g = UInt32(row[2]), g != gid, !extra.contains(g) { extra.append(g) }
        }
    }
    return User(uid: uid, gid: gid, additionalGids: extra.isEmpty ? nil : extra)
}
