import CShim
import Cgroups
import Compile
import Glibc
import JSON
import Network
import Rootfs
import Runtime
import Spec
import Sys

// Docker-style containers on top of bundles. `run --rootfs` compiles its
// flags into a bundle under DATA/containers/<id>/ (config.json, an overlayfs
// root in upper/work/merged, generated hostname/hosts/resolv.conf, the log and
// our metadata in container.json) and drives the OCI create/start/delete
// state machine with the same id under --root. DATA is $MINICONTAINER_DATA,
// default /var/lib/minicontainer.

public struct ContainerError: Error, CustomStringConvertible {
    public var message: String
    public var code: Int32
    public init(_ message: String, code: Int32 = 125) { self.message = message; self.code = code }
    public var description: String { message }
}

/// What we keep about a run-mode container, beside the OCI state.
public struct Meta: Codable {
    public var id: String
    public var name: String
    public var created: String
    public var createdUnix: Int64
    public var command: [String]
    public var rootfs: String
    public var ociRoot: String
    /// The process that waits for the init (foreground run or monitor).
    public var ownerPid: Int32?
    public var ownerStart: UInt64?
    public var started: String?
    public var startedUnix: Int64?
    public var finished: String?
    public var finishedUnix: Int64?
    public var exitCode: Int32?
    public var autoRemove: Bool
    public var detached: Bool
}

func now() -> Int64 { Int64(time(nil)) }

/// 64 hex digits from getrandom (urandom as a fallback).
public func newID() -> String {
    var bytes = [UInt8](repeating: 0, count: 32)
    // /dev/urandom (getrandom(2) is not exported to Swift by Glibc).
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    var got = 0
    if fd >= 0 { got = read(fd, &bytes, 32); close(fd) }
    if got != 32 {
        var g = SystemRandomNumberGenerator()
        for i in 0..<32 { bytes[i] = UInt8.random(in: 0...255, using: &g) }
    }
    let hex = Array("0123456789abcdef")
    return String(bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] })
}

/// "5 seconds", "3 minutes", "2 hours", "4 days".
public func humanDuration(_ s: Int64) -> String {
    let s = max(0, s)
    if s < 1 { return "Less than a second" }
    if s < 60 { return s == 1 ? "1 second" : "\(s) seconds" }
    let m = s / 60
    if m < 60 { return m == 1 ? "About a minute" : "\(m) minutes" }
    let h = m / 60
    if h < 48 { return h == 1 ? "About an hour" : "\(h) hours" }
    return "\(h / 24) days"
}

/// Mount points listed in /proc/self/mountinfo (octal escapes decoded).
public func mountPoints() -> [String] {
    guard let text = try? FS.readString("/proc/self/mountinfo") else { return [] }
    return text.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ")
        guard f.count > 4 else { return nil }
        return unescapeMount(String(f[4]))
    }
}

func unescapeMount(_ s: String) -> String {
    guard s.contains("\\") else { return s }
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
        if b[i] == 92, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
            out.append(v); i += 4
        } else {
            out.append(b[i]); i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// The host's resolv.conf without loopback nameservers (they mean nothing in
/// the container's network namespace); Google's when none is left, as Docker.
/// Network.resolvConf's, under the name the unit tests know.
public func containerResolvConf(host: String) -> String { Network.resolvConf(host: host) }

public func isMounted(_ path: String) -> Bool { mountPoints().contains(path) }

/// Lazily unmounts everything mounted at `path`.
public func unmountAll(_ path: String) {
    for _ in 0..<16 {
        guard isMounted(path) else { return }
        if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINTR { return }
    }
}

let adjectives = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
                  "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen", "bold", "cool"]
let nouns = ["turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "liskov",
             "hamilton", "curie", "noether", "babbage", "shannon", "kernighan", "pike", "cerf", "wirth", "backus", "church"]

public struct Containers {
    public let data: String
    public let ociRoot: String
    public let networkDir: String
    public var runtime: Runtime { Runtime(root: ociRoot, network: BridgeNetwork(dir: networkDir)) }

    public init(ociRoot: String, data: String = Locations.defaultData, networkDir: String = Locations.defaultNetwork) {
        self.data = FS.absolute(data)
        self.ociRoot = ociRoot
        self.networkDir = networkDir
    }

    public var base: String { data + "/containers" }
    public func dir(_ id: String) -> String { base + "/" + id }
    func metaPath(_ id: String) -> String { dir(id) + "/container.json" }
    public func logPath(_ id: String) -> String { dir(id) + "/container.log" }
    func merged(_ id: String) -> String { dir(id) + "/merged" }

    // MARK: metadata

    public func load(_ id: String) -> Meta? {
        guard let bytes = try? FS.readBytes(metaPath(id)) else { return nil }
        return try? JSONDecoding.decode(Meta.self, from: bytes, file: metaPath(id))
    }

    func save(_ m: Meta) throws {
        try FS.writeAtomically(metaPath(m.id), try JSONEncoding.pretty(m), mode: 0o600)
    }

    /// Read-modify-write of the metadata under the container's lock; nothing
    /// when the container is gone.
    func update(_ id: String, _ change: (inout Meta) -> Void) {
        guard FS.isDirectory(dir(id)), let lock = try? FileLock.acquire(dir(id)) else { return }
        defer { lock.unlock() }
        guard var m = load(id) else { return }
        change(&m)
        try? save(m)
    }

    /// Every container directory, with its metadata (a stand-in for a
    /// directory left without it), newest first.
    public func all() -> [Meta] {
        FS.listDirectory(base).filter { $0.count == 64 && FS.isDirectory(dir($0)) }.map { id in
            load(id) ?? Meta(id: id, name: "", created: "", createdUnix: 0, command: [], rootfs: "", ociRoot: ociRoot,
                             ownerPid: nil, ownerStart: nil, started: nil, startedUnix: nil, finished: nil,
                             finishedUnix: nil, exitCode: nil, autoRemove: false, detached: false)
        }.sorted { $0.createdUnix > $1.createdUnix }
    }

    /// An id, a name or a unique prefix of an id -> the full id.
    public func resolve(_ ref: String) throws -> String {
        let metas = all()
        if metas.contains(where: { $0.id == ref }) { return ref }
        if let m = metas.first(where: { $0.name == ref }) { return m.id }
        let hits = ref.isEmpty ? [] : metas.filter { $0.id.hasPrefix(ref) }
        if hits.count == 1 { return hits[0].id }
        if hits.count > 1 { throw ContainerError("\(quoted(ref)) matches \(hits.count) containers: give more of the id") }
        throw ContainerError("no such container: \(ref)")
    }

    /// Resolves without throwing (for runc-style commands that fall back).
    public func tryResolve(_ ref: String) -> String? {
        guard FS.isDirectory(base) else { return nil }
        return try? resolve(ref)
    }

    // MARK: status

    /// The OCI status (created, running, paused, creating) while the init
    /// lives, else nil.
    public func liveStatus(_ id: String) -> (status: String, pid: Int32)? {
        let store = runtime.store
        guard store.exists(id), let r = try? store.load(id) else { return nil }
        let st = store.status(r)
        return st == .stopped ? nil : (st.rawValue, r.pid)
    }

    func ownerAlive(_ m: Meta) -> Bool {
        guard let p = m.ownerPid, let s = m.ownerStart, p != getpid() else { return false }
        return Proc.alive(p, startTime: s)
    }

    /// `Up 5 seconds`, `Exited (0) 3 seconds ago`, `Created`.
    public func statusText(_ m: Meta) -> (state: String, text: String) {
        if let live = liveStatus(m.id) {
            let up = "Up " + humanDuration(now() - (m.startedUnix ?? m.createdUnix))
            switch live.status {
            case "running": return ("running", up)
            case "paused": return ("paused", up + " (Paused)")
            default: return ("created", "Created")
            }
        }
        if let c = m.exitCode {
            return ("exited", "Exited (\(c)) " + humanDuration(now() - (m.finishedUnix ?? now())) + " ago")
        }
        if m.startedUnix == nil || ownerAlive(m) { return ("created", "Created") }
        return ("exited", "Exited (unknown)")
    }

    // MARK: run

    public struct RunRequest {
        public var spec: Spec
        public var name: String?
        public var hostname: String
        public var rootfs: String
        public var detach = false
        public var autoRemove = false
        public var interactive = false
        public var tty = false
        public init(spec: Spec, name: String?, hostname: String, rootfs: String) {
            self.spec = spec; self.name = name; self.hostname = hostname; self.rootfs = rootfs
        }
    }

    /// Creates the container directory and metadata (the name is reserved
    /// under a lock on the containers directory) and prepares the bundle:
    /// generated files, the overlay mount, config.json.
    func prepare(_ req: RunRequest) throws -> String {
        try FS.makeDirectories(base, mode: 0o711)
        let lock = try FileLock.acquire(base)
        defer { lock.unlock() }
        let metas = all()
        var name = req.name ?? ""
        if let n = req.name {
            if let other = metas.first(where: { $0.name == n }) {
                throw ContainerError("the name \(quoted(n)) is already in use by container \(other.id.prefix(12)); remove it or choose another name")
            }
        } else {
            for _ in 0..<20 {
                let cand = adjectives[Int.random(in: 0..<adjectives.count)] + "_" + nouns[Int.random(in: 0..<nouns.count)]
                if !metas.contains(where: { $0.name == cand }) { name = cand; break }
            }
        }
        var id = newID()
        while metas.contains(where: { $0.id.hasPrefix(id.prefix(12)) }) || runtime.store.exists(id) { id = newID() }
        if name.isEmpty { name = "mc_" + id.prefix(12) }
        let d = dir(id)
        guard mkdir(d, 0o711) == 0 else { throw SysError("mkdir \(d)") }
        let st = Proc.stat(getpid())
        let meta = Meta(id: id, name: name, created: Log.timestamp(), createdUnix: now(), command: req.spec.process?.args ?? [],
                        rootfs: req.rootfs, ociRoot: ociRoot, ownerPid: getpid(), ownerStart: st?.startTime,
                        started: nil, startedUnix: nil, finished: nil, finishedUnix: nil, exitCode: nil,
                        autoRemove: req.autoRemove, detached: req.detach)
        do {
            try save(meta)
            for sub in ["upper", "work", "merged"] {
                guard mkdir(d + "/" + sub, 0o755) == 0 else { throw SysError("mkdir \(d)/\(sub)") }
            }
            // Files the container sees at /etc/hostname, /etc/hosts, /etc/resolv.conf.
            // /etc/hosts is rewritten with the address once create has leased
            // one (writeHosts); until then the name is on 127.0.1.1.
            try FS.writeAtomically(d + "/hostname", Network.hostnameFile(req.hostname))
            try FS.writeAtomically(d + "/hosts", Network.hostsFile(hostname: req.hostname, address: nil, aliases: [name]))
            try FS.writeAtomically(d + "/resolv.conf", resolvConf())
            // Each layer passed as a path, never spliced into an option string
            // (Rootfs/Overlay.swift).
            try Rootfs.mountOverlay(lower: [req.rootfs], upper: d + "/upper", work: d + "/work", target: d + "/merged")
            var spec = req.spec
            spec.root = Root(path: d + "/merged", readonly: req.spec.root?.readonly)
            var mounts = spec.mounts ?? []
            for f in ["hostname", "hosts", "resolv.conf"] where !mounts.contains(where: { $0.destination == "/etc/" + f }) {
                mounts.append(Mount(destination: "/etc/" + f, type: "bind", source: d + "/" + f, options: ["rbind", "rprivate"]))
            }
            spec.mounts = mounts
            var ann = spec.annotations ?? [:]
            ann[Annotation.name] = name
            spec.annotations = ann
            // Run-mode containers share a parent cgroup, as Docker's /docker/<id>.
            if spec.linux?.cgroupsPath == nil { spec.linux?.cgroupsPath = CgroupParent.runMode + "/" + id }
            try FS.writeAtomically(d + "/config.json", try JSONEncoding.pretty(spec))
        } catch {
            removeFiles(id)
            throw error
        }
        return id
    }

    func resolvConf() -> String { Network.resolvConf(host: (try? FS.readString("/etc/resolv.conf")) ?? "") }

    /// The bridged address a created container was given (Record.network,
    /// "172.18.0.2/16"), without the prefix length.
    static func address(of r: Record) -> IPv4? {
        guard let a = r.network?["address"], let ip = a.split(separator: "/").first else { return nil }
        return IPv4(String(ip))
    }

    /// After create, before start: puts the leased address in the
    /// container's /etc/hosts. In place (O_TRUNC, no rename): the file is
    /// bind-mounted into the container, and a rename would leave the mount
    /// on the old inode. Nothing to do without a bridged address.
    func writeHosts(_ id: String, record r: Record, hostname: String) throws {
        guard let a = Containers.address(of: r) else { return }
        let name = load(id)?.name ?? ""
        let path = dir(id) + "/hosts"
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        try FS.writeAll(fd: fd, Array(Network.hostsFile(hostname: hostname, address: a, aliases: [name]).utf8), what: "write \(path)")
    }

    /// Maps an init's create error to Docker's codes: 127 not found, 126
    /// cannot execute.
    public static func exitCode(forCreateError text: String) -> Int32 {
        if text.contains("exec") {
            if text.contains("executable file not found") || text.hasSuffix("no such file or directory") { return 127 }
            if text.hasSuffix("permission denied") || text.contains("exec format error") { return 126 }
        }
        return 125
    }

    /// Runs a prepared request: in the foreground (the container's exit
    /// code) or detached (prints the id; a monitor stays behind).
    public func run(_ req: RunRequest) throws -> Int32 {
        let id = try prepare(req)
        if req.detach { return try runDetached(id, req) }
        if !req.interactive {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if null >= 0 { dup2(null, 0); close(null) }
        }
        update(id) { $0.started = Log.timestamp(); $0.startedUnix = now() }
        var o = RunOptions(create: CreateOptions(id: id, bundle: dir(id)))
        o.relayStdin = req.interactive
        o.afterCreate = { created in try self.writeHosts(id, record: created.record, hostname: req.hostname) }
        let code: Int32
        do {
            code = try runtime.run(o)
        } catch {
            let text = "\(error)"
            remove(id)
            throw ContainerError(text, code: Containers.exitCode(forCreateError: text))
        }
        finish(id, exitCode: code)
        if req.autoRemove { remove(id) }
        return code
    }

    /// Detached: a monitor (a fork that calls setsid) creates and starts the
    /// container, so the init is its child; it keeps the container's output
    /// in container.log, records the exit and honours --rm.
    func runDetached(_ id: String, _ req: RunRequest) throws -> Int32 {
        var fds: [Int32] = [0, 0]
        guard mc_pipe2(&fds, O_CLOEXEC) == 0 else { remove(id); throw SysError("pipe") }
        let pid = mc_clone3(0, -1, 0, nil)
        if pid < 0 { remove(id); throw SysError("fork the monitor") }
        if pid == 0 {
            close(fds[0])
            monitor(id, req, report: fds[1])
        }
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 4096)
        var got: [UInt8] = []
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += buf[0..<n]
        }
        close(fds[0])
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}  // the monitor's first fork (it forks again)
        let text = String(decoding: got, as: UTF8.self)
        if text == "ok" {
            writeStdout(id + "\n")
            return 0
        }
        if let nul = text.firstIndex(of: "\u{0}"), let code = Int32(text[..<nul]) {
            throw ContainerError(String(text[text.index(after: nul)...]), code: code)
        }
        remove(id)
        throw ContainerError("the container monitor exited before the container started")
    }

    func monitor(_ id: String, _ req: RunRequest, report: Int32) -> Never {
        _ = setsid()
        // Forked once more so the monitor is nobody's child but init's (or a subreaper's).
        let again = mc_clone3(0, -1, 0, nil)
        if again < 0 { _exit(1) }
        if again > 0 { _exit(0) }
        for s in [SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTTOU, SIGTTIN] { signal(s, SIG_IGN) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        let log = open(logPath(id), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if null >= 0 { dup2(null, 0) }
        if log >= 0 { dup2(log, 1); dup2(log, 2) }
        if null > 2 { close(null) }
        if log > 2 { close(log) }
        let me = Proc.stat(getpid())
        update(id) { $0.ownerPid = getpid(); $0.ownerStart = me?.startTime; $0.started = Log.timestamp(); $0.startedUnix = now() }
        func tell(_ s: String) {
            let b = Array(s.utf8)
            _ = b.withUnsafeBytes { write(report, $0.baseAddress, $0.count) }
            close(report)
        }
        _ = mc_prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0)
        let rt = runtime
        var co = CreateOptions(id: id, bundle: dir(id))
        co.keepTerminal = true
        let created: Created
        do {
            created = try rt.create(co)
            do {
                try writeHosts(id, record: (try? rt.store.load(id)) ?? created.record, hostname: req.hostname)
                try rt.start(id)
            } catch { try? rt.delete(id, force: true); throw error }
        } catch {
            let text = "\(error)"
            remove(id)
            tell("\(Containers.exitCode(forCreateError: text))\u{0}\(text)")
            _exit(1)
        }
        tell("ok")
        let initPid = created.record.pid
        if let master = created.terminal {
            var buf = [UInt8](repeating: 0, count: 32768)
            while true {
                let n = read(master, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                try? FS.writeAll(fd: 1, Array(buf[0..<n]), what: "log")
            }
            close(master)
        }
        var status: Int32 = 0
        var code: Int32 = 0
        while true {
            let r = waitpid(-1, &status, 0)
            if r == initPid { code = Proc.exitCode(fromWaitStatus: status); break }
            if r < 0 && errno == ECHILD { break }
        }
        while waitpid(-1, &status, WNOHANG) > 0 {}
        try? rt.delete(id, force: true)
        finish(id, exitCode: code)
        if req.autoRemove { remove(id) }
        _exit(0)
    }

    /// After the init has gone: the OCI state and the overlay mount go, the
    /// exit code and time are recorded (when known).
    public func finish(_ id: String, exitCode: Int32?) {
        if runtime.store.exists(id), liveStatus(id) == nil { try? runtime.delete(id, force: true) }
        unmountAll(merged(id))
        update(id) { m in
            if let c = exitCode, m.exitCode == nil { m.exitCode = c }
            if m.finished == nil { m.finished = Log.timestamp(); m.finishedUnix = now() }
        }
    }

    /// Removes everything of a container: its init (killed), OCI state and
    /// cgroup, overlay mount, directory.
    public func remove(_ id: String) {
        if runtime.store.exists(id) { try? runtime.delete(id, force: true) }
        if runtime.store.exists(id) { try? FS.removeTree(runtime.store.dir(id)) }
        removeFiles(id)
    }

    func removeFiles(_ id: String) {
        // Under the container's lock, so that an owner recording the exit
        // (update) cannot write into a directory being removed.
        let lock = FS.isDirectory(dir(id)) ? try? FileLock.acquire(dir(id)) : nil
        defer { lock?.unlock() }
        unmountAll(merged(id))
        // Never recurse into a mount we failed to remove.
        if isMounted(merged(id)) { return }
        try? FS.removeTree(dir(id))
    }

    // MARK: stop, rm, prune

    /// SIGTERM, then SIGKILL after `timeout` seconds; waits for the init.
    public func stop(_ id: String, timeout: Int) throws {
        let rt = runtime
        if let live = liveStatus(id), let r = try? rt.store.load(id) {
            if live.status == "paused" { try? rt.resume(id) }
            if live.status == "created" || live.status == "creating" {
                try? rt.kill(id, signal: SIGKILL, all: false)
            } else {
                try? rt.kill(id, signal: SIGTERM, all: false)
                if !Proc.waitGone(r.pid, startTime: r.startTime, timeoutMs: timeout * 1000) {
                    try? rt.kill(id, signal: SIGKILL, all: false)
                }
            }
            guard Proc.waitGone(r.pid, startTime: r.startTime, timeoutMs: 10_000) else {
                throw ContainerError("container \(id.prefix(12)) did not stop")
            }
        }
        // Let the owner record the exit code; finish ourselves if it is gone.
        for _ in 0..<100 {
            guard let m = load(id), m.exitCode == nil, ownerAlive(m) else { break }
            usleep(20_000)
        }
        finish(id, exitCode: nil)
    }

    public func isRunning(_ id: String) -> Bool { liveStatus(id) != nil }

    /// Stopped containers and what crashed runs left: directories whose OCI
    /// state is gone or stopped, overlay mounts without a container.
    public func prune() -> [String] {
        var removed: [String] = []
        for m in all() where !isRunning(m.id) {
            // A run or monitor still at work (preparing, creating, or
            // about to record the exit) is left alone.
            if m.exitCode == nil && ownerAlive(m) { continue }
            remove(m.id)
            removed.append(m.id)
        }
        for mp in mountPoints() where mp.hasPrefix(base + "/") {
            let id = String(mp.dropFirst(base.count + 1).split(separator: "/").first ?? "")
            if !FS.isDirectory(dir(id)) || !isRunning(id) { unmountAll(mp) }
        }
        return removed
    }

    /// For prune: frees the leases and published ports of containers that
    /// no longer exist. Alive are this root's running containers and any
    /// container whose veth is still there (one of another --root);
    /// returns the ids whose network was released.
    public func reclaimNetwork() throws -> [String] {
        try Network.reclaim(dir: networkDir, isAlive: { id in
            Network.attached(id) || liveStatus(id) != nil
        })
    }

    // MARK: inspect

    public func inspect(_ id: String) -> JSONValue {
        guard let m = load(id) else { return .null }
        var o = JSONObject()
        o["id"] = .string(m.id)
        o["name"] = .string(m.name)
        o["created"] = .string(m.created)
        o["command"] = .array(m.command.map { .string($0) })
        o["rootfs"] = .string(m.rootfs)
        o["bundle"] = .string(dir(id))
        o["logPath"] = .string(logPath(id))
        var st = JSONObject()
        let (state, text) = statusText(m)
        let live = liveStatus(id)
        st["status"] = .string(state)
        st["text"] = .string(text)
        st["running"] = .bool(live?.status == "running")
        st["pid"] = .int(Int64(live?.pid ?? 0))
        st["exitCode"] = m.exitCode.map { .int(Int64($0)) } ?? .null
        st["startedAt"] = m.started.map { .string($0) } ?? .null
        st["finishedAt"] = m.finished.map { .string($0) } ?? .null
        o["state"] = .object(st)
        let specValue = (try? FS.readBytes(dir(id) + "/config.json")).flatMap { try? JSONValue.parse($0, file: "config.json") } ?? .null
        var mounts: [JSONValue] = []
        var network = JSONObject()
        if case .object(let so) = specValue {
            if case .array(let ms)? = so["mounts"] {
                for mv in ms where mv["type"] == .string("bind") {
                    var mo = JSONObject()
                    mo["source"] = mv["source"] ?? .null
                    mo["destination"] = mv["destination"] ?? .null
                    var ro = false
                    if case .array(let opts)? = mv["options"] { ro = opts.contains(.string("ro")) }
                    mo["readOnly"] = .bool(ro)
                    mounts.append(.object(mo))
                }
            }
            if case .object(let ann)? = so["annotations"] {
                network["mode"] = ann[Annotation.network] ?? .null
                if case .string(let p)? = ann[Annotation.ports] {
                    network["ports"] = .array(p.split(separator: ",").map { .string(String($0)) })
                } else {
                    network["ports"] = .array([])
                }
            }
        }
        // The address and gateway while the container lives (its OCI state
        // has them; they are released when it stops).
        let rec = live != nil ? try? runtime.store.load(id) : nil
        network["address"] = rec.flatMap { Containers.address(of: $0) }.map { .string($0.description) } ?? .null
        network["prefixLength"] = rec?.network?["address"].flatMap { $0.split(separator: "/").last.flatMap { Int64(String($0)) } }.map { .int($0) } ?? .null
        network["gateway"] = rec?.network?["gateway"].map { .string($0) } ?? .null
        o["mounts"] = .array(mounts)
        o["network"] = .object(network)
        o["spec"] = specValue
        return .object(o)
    }
}
