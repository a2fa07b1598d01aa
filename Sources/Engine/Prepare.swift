import Glibc
import JSON
import Network
import Rootfs
import Runtime
import Spec
import Sys

// Bundle preparation for `run --rootfs`: the container directory and metadata,
// the generated hostname, hosts and resolv.conf, the overlay root, config.json.

/// The host's resolv.conf without loopback nameservers (they mean nothing in
/// the container's network namespace); Google's when none is left, as Docker.
/// Network.resolvConf's, under the name the unit tests know.
public func containerResolvConf(host: String) -> String { Network.resolvConf(host: host) }

extension Containers {
    /// Creates the container directory and metadata (the name is reserved
    /// under a lock on the containers directory) and prepares the bundle:
    /// generated files, the overlay mount, config.json.
    func prepare(_ req: RunRequest) throws -> String {
        try FS.makeDirectories(base, mode: 0o711)
        let lock = try FileLock.acquire(base)
        defer { lock.unlock() }
        let id = chooseID()
        // Taken in the index before the directory exists: a crash from here
        // on leaves an entry whose container lacks the name (stale, taken
        // over by the next claim).
        let name = try chooseName(req.name, id: id)
        let d = dir(id)
        let layer = rootLayer(id)
        guard mkdir(d, 0o711) == 0 else {
            let e = SysError("mkdir \(d)")
            names.release(name, id: id)
            throw e
        }
        let st = Proc.stat(getpid())
        let meta = Meta(id: id, name: name, created: Log.timestamp(), createdUnix: now(), command: req.spec.process?.args ?? [],
                        rootfs: req.rootfs, image: req.image, imageID: req.imageID, ociRoot: ociRoot, ownerPid: getpid(), ownerStart: st?.startTime,
                        started: nil, startedUnix: nil, finished: nil, finishedUnix: nil, exitCode: nil,
                        autoRemove: req.autoRemove, detached: req.detach, lower: req.lower.isEmpty ? [req.rootfs] : req.lower)
        do {
            try save(meta)
            try layer.makeDirectories()
            // Files the container sees at /etc/hostname, /etc/hosts, /etc/resolv.conf.
            // /etc/hosts is rewritten with the address once create has leased
            // one (writeHosts); until then the name is on 127.0.1.1.
            try FS.writeAtomically(d + "/hostname", Network.hostnameFile(req.hostname))
            let given = req.spec.annotations ?? [:]
            try FS.writeAtomically(d + "/hosts", Network.hostsFile(hostname: req.hostname, address: nil, aliases: [name],
                                                                   extra: Containers.list(given[Annotation.addHosts])))
            try FS.writeAtomically(d + "/resolv.conf", resolvConf(given))
            try layer.mount(lower: req.lower.isEmpty ? [req.rootfs] : req.lower)
            var spec = req.spec
            spec.root = Root(path: layer.merged, readonly: req.spec.root?.readonly)
            if locations.rootless { try makeRootless(&spec, layer: layer, lower: req.lower.isEmpty ? [req.rootfs] : req.lower) }
            var mounts = spec.mounts ?? []
            for f in ["hostname", "hosts", "resolv.conf"] where !mounts.contains(where: { $0.destination == "/etc/" + f }) {
                mounts.append(Mount(destination: "/etc/" + f, type: "bind", source: d + "/" + f, options: ["rbind", "rprivate"]))
            }
            spec.mounts = mounts
            var ann = spec.annotations ?? [:]
            ann[Annotation.name] = name
            spec.annotations = ann
            // Run-mode containers share a parent cgroup, as Docker's /docker/<id>.
            // Rootless, under our own cgroup (where delegation puts us) or --cgroup-parent.
            if spec.linux?.cgroupsPath == nil {
                spec.linux?.cgroupsPath = locations.rootless && locations.cgroupParent.isEmpty ? id : locations.cgroupParent + "/" + id
            }
            try FS.writeAtomically(d + "/config.json", try JSONEncoding.pretty(spec))
            if let c = req.cidfile { try writeCidfile(c, id: id) }
        } catch {
            removeFiles(id)
            names.release(name, id: id)
            throw error
        }
        return id
    }

    /// The seconds `stop` waits before SIGKILL when not given -t: the
    /// container's --stop-timeout (Annotation.stopTimeout), else Docker's 10.
    public func stopTimeout(_ id: String) -> Int {
        guard let r = try? runtime(of: id).store.load(id), let t = r.annotations?[Annotation.stopTimeout],
              let n = Int(t), n >= 0 else { return 10 }
        return n
    }

    /// `--cidfile`: the full id, in a file that must not exist yet (as
    /// Docker: another container may be using it). Exclusive and without
    /// following a symlink, so an existing file is never touched.
    func writeCidfile(_ path: String, id: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EEXIST {
            throw Failure(.exists, "--cidfile \(path) exists: another container may be using it; remove it first")
        }
        guard fd >= 0 else { throw SysError("--cidfile: open \(path)") }
        defer { close(fd) }
        do {
            try FS.writeAll(fd: fd, Array(id.utf8), what: "write \(path)")
        } catch {
            unlink(path)
            throw error
        }
    }

    /// The container's resolv.conf: the host's, with --dns, --dns-search
    /// and --dns-option (their annotations) in place of its own.
    func resolvConf(_ ann: [String: String]) -> String {
        Network.resolvConf(host: (try? FS.readString("/etc/resolv.conf")) ?? "", servers: Containers.list(ann[Annotation.dns]),
                           search: Containers.list(ann[Annotation.dnsSearch]), options: Containers.list(ann[Annotation.dnsOptions]))
    }

    /// A comma-separated annotation's entries.
    static func list(_ value: String?) -> [String] { value.map { $0.split(separator: ",").map(String.init) } ?? [] }

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
        let extra = Containers.list(r.annotations?[Annotation.addHosts])
        try FS.writeAll(fd: fd, Array(Network.hostsFile(hostname: hostname, address: a, aliases: [name], extra: extra).utf8),
                        what: "write \(path)")
    }
}
