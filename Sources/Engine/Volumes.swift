import CShim
import Glibc
import Image
import JSON
import Spec
import Sys

// Named and anonymous volumes: directories the engine owns, DATA/volumes/
// NAME/_data, with NAME/volume.json beside it. A container uses a volume
// when its config.json bind-mounts that _data (run -v NAME:/path is
// rewritten to the _data path before compile), so `volume rm`, `volume
// prune` and `rm -v` all read the same thing: the containers' configs.
//
// Names follow Docker's and podman's rule, [a-zA-Z0-9][a-zA-Z0-9_.-]*: no
// "/", "..", ",", ":" or newline can ever be one, so a name is one path
// component of ours and never an option of a mount.

/// What we keep about a volume (volume.json).
public struct Volume: Codable {
    public var name: String
    public var createdAt: String
    public var labels: [String: String]
    /// Made by `run -v /path` (a random name): removed with its container by
    /// `rm -v` and by --rm.
    public var anonymous: Bool
}

/// The volume store under DATA/volumes.
public struct Volumes {
    public let locations: Locations
    public init(locations: Locations) { self.locations = locations }

    public var base: String { locations.data + "/volumes" }
    func dir(_ name: String) -> String { base + "/" + name }
    /// The directory containers mount.
    public func dataPath(_ name: String) -> String { dir(name) + "/_data" }
    func metaPath(_ name: String) -> String { dir(name) + "/volume.json" }

    /// Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
    public static func isValidName(_ n: String) -> Bool {
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        let b = Array(n.utf8)
        guard let f = b.first, alnum(f), b.count <= 255 else { return false }
        return b.dropFirst().allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    public static func checkName(_ n: String) throws {
        guard isValidName(n) else {
            throw Failure(.invalid, "invalid volume name \(quoted(n, max: 128)): names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        }
    }

    public func get(_ name: String) -> Volume? {
        guard Volumes.isValidName(name), let b = try? FS.readBytes(metaPath(name)) else { return nil }
        return try? JSONDecoding.decode(Volume.self, from: b, file: metaPath(name))
    }

    /// Every volume, by name.
    public func all() -> [Volume] {
        FS.listDirectory(base).compactMap { get($0) }
    }

    /// Runs `body` under the lock on the store (created first).
    func locked<T>(_ body: () throws -> T) throws -> T {
        try FS.makeDirectories(base, mode: 0o700)
        let lock = try FileLock.acquire(base)
        defer { lock.unlock() }
        return try body()
    }

    /// Creates a volume: `name` (nil: a random 64-hex one). `existingOK`:
    /// an existing one is returned as it is (run -v NAME: created on first
    /// use), else it is an error (podman's `volume create`). Returns the
    /// volume and whether it was made now.
    /// With `hold`, the volume is also held (VolumeHold) from within the
    /// store's lock, so no rm or prune can take it between its creation
    /// and the run's config.json naming it.
    public func create(_ name: String?, labels: [String: String] = [:], anonymous: Bool = false,
                       existingOK: Bool = false, hold: VolumeHold? = nil) throws -> (Volume, created: Bool) {
        let n = name ?? newID()
        try Volumes.checkName(n)
        return try locked {
            if let v = get(n) {
                guard existingOK else { throw Failure(.exists, "volume with name \(n) already exists") }
                try hold?.add(dir(n))
                return (v, false)
            }
            if FS.exists(dir(n)) { try? FS.removeTreeMapped(dir(n)) }  // a half-made one: no volume.json
            guard mkdir(dir(n), 0o700) == 0 else { throw SysError("mkdir \(dir(n))") }
            do {
                guard mkdir(dataPath(n), 0o755) == 0 else { throw SysError("mkdir \(dataPath(n))") }
                let v = Volume(name: n, createdAt: Log.timestamp(), labels: labels, anonymous: anonymous)
                try FS.writeAtomically(metaPath(n), try JSONEncoding.pretty(v), mode: 0o600)
                try hold?.add(dir(n))
                return (v, true)
            } catch {
                try? FS.removeTreeMapped(dir(n))
                throw error
            }
        }
    }

    /// Removes a volume's directory, data and all (the caller checked that
    /// no container uses it).
    public func remove(_ name: String) throws {
        try Volumes.checkName(name)
        try locked {
            guard get(name) != nil else { throw Failure(.notFound, "no volume with name \(quoted(name)) found") }
            // A run that is setting a container up on it holds it (shared).
            let fd = open(dir(name), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(dir(name))") }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                throw Failure(.state, "volume \(name) is being used by a container being created")
            }
            try FS.removeTreeMapped(dir(name))
        }
    }

    /// Whether its _data is empty (a new volume gets the image's files).
    func isEmpty(_ name: String) -> Bool { FS.listDirectory(dataPath(name)).isEmpty }

    /// podman's `volume inspect` object.
    public func inspect(_ v: Volume, mountCount: Int) -> JSONValue {
        var o = JSONObject()
        o["Name"] = .string(v.name)
        o["Driver"] = .string("local")
        o["Mountpoint"] = .string(dataPath(v.name))
        o["CreatedAt"] = .string(v.createdAt)
        o["Labels"] = .object(JSONObject(v.labels.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }))
        o["Scope"] = .string("local")
        o["Options"] = .object(JSONObject())
        o["MountCount"] = .int(Int64(mountCount))
        o["Anonymous"] = .bool(v.anonymous)
        return .object(o)
    }
}

/// Shared locks on volume directories, which `Volumes.remove` will not
/// break: what a run holds from resolving its -v flags until its
/// config.json names the volumes (then the configs say they are used).
public final class VolumeHold {
    private var fds: [Int32] = []
    public init() {}
    deinit { release() }

    func add(_ dir: String) throws {
        fds.append(try FileLock.lockedFD(dir, exclusive: false))
    }

    public func release() {
        for fd in fds { close(fd) }
        fds = []
    }
}

extension Containers {
    public var volumes: Volumes { Volumes(locations: locations) }

    /// The volumes container `id` mounts, by name: its config.json's bind
    /// sources that are some volume's _data.
    public func volumesUsed(_ id: String) -> [String] {
        let path = dir(id) + "/config.json"
        guard let b = try? FS.readBytes(path), let cfg = try? JSONDecoding.decode(CopyConfig.self, from: b, file: path) else { return [] }
        let vb = volumes.base + "/"
        let real = FS.realPath(volumes.base).map { $0 + "/" }
        var out: [String] = []
        for m in cfg.mounts ?? [] where m.type == "bind" {
            guard let s = m.source else { continue }
            for prefix in [vb, real].compactMap({ $0 }) {
                guard let tail = Path.dropPrefix(prefix, of: s) else { continue }
                let rest = tail.utf8.split(separator: 47, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                if rest.count == 2, rest[1] == "_data", !out.contains(rest[0]) { out.append(rest[0]) }
            }
        }
        return out
    }

    /// Every container (of any --root: volumes are the data dir's) using
    /// each volume.
    public func volumeUsers() -> [String: [String]] {
        var users: [String: [String]] = [:]
        for m in all() {
            for v in volumesUsed(m.id) { users[v, default: []].append(m.id) }
        }
        return users
    }

    /// Removes the anonymous volumes `volumeNames` (those a container just
    /// removed used) that no container uses any more.
    func removeAnonymousVolumes(_ volumeNames: [String]) {
        guard !volumeNames.isEmpty else { return }
        let users = volumeUsers()
        for n in volumeNames where users[n] == nil {
            if let v = volumes.get(n), v.anonymous { try? volumes.remove(n) }
        }
    }

    /// Docker's copy-up: a new (empty) volume mounted at `destination` gets
    /// what the image (its layers, top first) has there, owners, modes and
    /// all, when that is a directory. The image is hostile like any
    /// container root: its layers are seen through a read-only overlay
    /// that is mounted nowhere (fsmount's descriptor is the root), the path
    /// resolved inside it (RESOLVE_IN_ROOT), the tree walked and extracted
    /// by descriptor (TreeArchiver in a child, ConfinedExtract here).
    public func copyUp(volume: String, destination: String, layers: [String]) throws {
        guard volumes.isEmpty(volume), !layers.isEmpty else { return }
        let root = try Containers.imageRoot(layers)
        defer { close(root) }
        let top = PathOpener.confined(root, "the image").open(destination, Kernel.O_PATH)
        guard top >= 0 else { return }  // not in the image: nothing to copy
        defer { close(top) }
        var st = stat()
        guard fstat(top, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return }
        let data = open(volumes.dataPath(volume), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard data >= 0 else { throw SysError("open \(volumes.dataPath(volume))") }
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0], errFds: [Int32] = [0, 0]
        guard mc_pipe2(&fds, O_CLOEXEC) == 0, mc_pipe2(&errFds, O_CLOEXEC) == 0 else { close(data); throw SysError("pipe") }
        let what = "volume \(volume): copy-up of \(destination)"
        let pid = mc_clone3(0, -1, 0, nil)
        if pid < 0 { close(data); throw SysError("fork") }
        if pid == 0 {
            close(fds[0])
            close(errFds[0])
            do {
                // Our own /proc/PID/fd: the reopen is of this process' descriptors.
                let procFds = try ProcFS.fdDirectory(what: what)
                let a = try TreeArchiver(fd: fds[1], procFds: procFds, what: what)
                try a.add(top, name: Array(".".utf8))
                try a.finish()
                _exit(0)
            } catch {
                Failure.exitReporting(error, to: errFds[1])
            }
        }
        close(fds[1])
        close(errFds[1])
        let got = Result { () throws -> Void in
            defer { close(fds[0]) }
            let reader = try TarReader(fd: fds[0], what: what, threaded: false)
            let x = try ConfinedExtract(into: data, policy: ExtractPolicy(), what: what)
            while let e = try reader.next() { try x.apply(e, reader) }
            try x.finish()
            _ = try reader.finish()
        }
        try finishPair(CopyChild(pid: pid, errors: errFds[0], lock: nil), got)
    }

    /// A read-only view of `layers` (top first): the one directory, or an
    /// overlay of them that is attached nowhere; O_PATH.
    static func imageRoot(_ layers: [String]) throws -> Int32 {
        if layers.count == 1 {
            let fd = open(layers[0], Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(layers[0])") }
            return fd
        }
        let fs = mc_fsopen("overlay", Kernel.FSOPEN_CLOEXEC)
        guard fs >= 0 else { throw SysError("fsopen overlay") }
        defer { close(fs) }
        for l in layers {
            guard mc_fsconfig(fs, Kernel.FSCONFIG_SET_STRING, "lowerdir+", l, 0) == 0 else { throw SysError("overlay lower layer \(l)") }
        }
        guard mc_fsconfig(fs, Kernel.FSCONFIG_CMD_CREATE, nil, nil, 0) == 0 else { throw SysError("create a read-only overlay of the image") }
        let m = mc_fsmount(fs, Kernel.FSMOUNT_CLOEXEC, UInt32(Kernel.MOUNT_ATTR_RDONLY | Kernel.MOUNT_ATTR_NODEV | Kernel.MOUNT_ATTR_NOSUID))
        guard m >= 0 else { throw SysError("fsmount overlay") }
        return m
    }
}
