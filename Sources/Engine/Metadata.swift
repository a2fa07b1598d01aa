import Glibc
import JSON
import Spec
import Sys

// What we keep about a run-mode container beside its OCI state (container.json),
// and how containers are named: 64-hex-digit ids, names, references resolved.

/// What we keep about a run-mode container, beside the OCI state.
public struct Meta: Codable, Equatable {
    public var id: String
    public var name: String
    public var created: String
    public var createdUnix: Int64
    public var command: [String]
    /// The --rootfs directory, or the top layer of the image.
    public var rootfs: String
    /// `run IMAGE`: the reference given and the image's id (sha256:...).
    public var image: String?
    public var imageID: String?
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
    /// The overlay's lower layers, top first (the image's layers, or
    /// [rootfs]): what `start` mounts again. Nil in metadata written before
    /// it was kept (then [rootfs]).
    public var lower: [String]? = nil
    /// Set by stop, rm -f and restart: the owner must not restart it.
    public var stopRequested: Bool? = nil
    /// How many times the restart policy ran it again.
    public var restartCount: Int? = nil
    /// True while the owner waits to restart it (after an exit, before the
    /// next create): `ps` says Restarting.
    public var restarting: Bool? = nil
}

/// 64 hex digits from /dev/urandom (the system generator as a fallback).
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

let adjectives = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
                  "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen", "bold", "cool"]
let nouns = ["turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "liskov",
             "hamilton", "curie", "noether", "babbage", "shannon", "kernighan", "pike", "cerf", "wirth", "backus", "church"]

extension Containers {
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
        let before = m
        change(&m)
        // An update that changes nothing writes nothing (a new file each time).
        if m != before { try? save(m) }
    }

    /// Every container directory, with its metadata (a stand-in for a
    /// directory left without it), newest first.
    public func all() -> [Meta] {
        FS.listDirectory(base).filter { $0.count == 64 && FS.isDirectory(dir($0)) }.map { id in
            load(id) ?? Meta(id: id, name: "", created: "", createdUnix: 0, command: [], rootfs: "", image: nil, imageID: nil, ociRoot: ociRoot,
                             ownerPid: nil, ownerStart: nil, started: nil, startedUnix: nil, finished: nil,
                             finishedUnix: nil, exitCode: nil, autoRemove: false, detached: false)
        }.sorted { $0.createdUnix > $1.createdUnix }
    }

    /// The index of names (NameIndex), DATA/names.
    public var names: NameIndex { NameIndex(dir: data + "/names") }

    /// Whether container `id` has `name`: what makes an index entry held.
    func hasName(_ id: String, _ name: String) -> Bool { load(id)?.name == name }

    /// The index, made once from the containers' metadata when the data
    /// dir has containers from before it (built aside, then renamed in, so
    /// a crash leaves none half made). `locked`: the caller holds the lock
    /// on the containers directory (else it is taken for the build).
    func nameIndex(locked: Bool) throws -> NameIndex {
        let n = names
        if FS.isDirectory(n.dir) { return n }
        try FS.makeDirectories(base, mode: 0o711)
        let lock = locked ? nil : try FileLock.acquire(base)
        defer { lock?.unlock() }
        if FS.isDirectory(n.dir) { return n }
        let building = n.dir + ".building"
        try FS.removeTree(building)
        guard mkdir(building, 0o700) == 0 else { throw SysError("mkdir \(building)") }
        let aside = NameIndex(dir: building)
        // Oldest first: were a name found twice, the older keeps it, as the
        // scan that `run` made before would have refused the newer.
        for m in all().reversed() where NameIndex.storable(m.name) && aside.entry(m.name) == nil {
            try aside.claim(m.name, id: m.id, isLive: { _ in true })
        }
        guard Glibc.rename(building, n.dir) == 0 else {
            let e = SysError("rename \(building) to \(n.dir)")
            try? FS.removeTree(building)
            throw e
        }
        return n
    }

    /// The requested name, refused when another container has it; else a
    /// random `adjective_scientist` none has (after 20 tries, mc_ and the id).
    /// Taken in the index for `id` (release it if the container is not
    /// made). Called under the lock on the containers directory.
    func chooseName(_ requested: String?, id: String) throws -> String {
        let index = try nameIndex(locked: true)
        func take(_ n: String) throws -> Bool {
            do {
                try index.claim(n, id: id, isLive: { hasName($0, n) })
                return true
            } catch let t as NameIndex.Taken {
                if requested != nil { throw Failure(.exists, "\(t); remove it or choose another name") }
                return false
            }
        }
        if let n = requested, !n.isEmpty {
            _ = try take(n)
            return n
        }
        if requested == nil {
            for _ in 0..<20 {
                let cand = adjectives[Int.random(in: 0..<adjectives.count)] + "_" + nouns[Int.random(in: 0..<nouns.count)]
                if try take(cand) { return cand }
            }
        }
        let n = "mc_" + id.prefix(12)
        _ = try take(n)
        return n
    }

    /// Whether `s` is a container id as `newID` makes them: 64 hex digits
    /// (so also a safe file name).
    static func isID(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The ids of the container directories (names only: nothing is read).
    func ids(prefix: String = "") -> [String] {
        (FS.directoryEntries(base) ?? []).map { $0.name }.filter { $0.count == 64 && $0.hasPrefix(prefix) }
    }

    /// A new id whose 12-digit short form names no container here, and that
    /// no OCI container under --root has.
    func chooseID() -> String {
        var id = newID()
        while !ids(prefix: String(id.prefix(12))).isEmpty || runtime.store.exists(id) { id = newID() }
        return id
    }

    /// The containers run with this --root (`all` has every one of the
    /// data dir: names and ids are unique across it).
    public func mine() -> [Meta] { all().filter { $0.ociRoot == ociRoot } }

    /// An id, a name or a unique prefix of an id -> the full id, among the
    /// containers of this --root; one of another --root is named in the
    /// error. Reads the name's index entry and the metadata of the
    /// containers it finds, never every container's.
    public func resolve(_ ref: String) throws -> String {
        guard FS.isDirectory(base), !ref.isEmpty else { throw Failure(.notFound, "container \(ref) does not exist") }
        // The --root of a container directory (a stand-in's, without metadata, is ours).
        func root(_ id: String) -> String { load(id)?.ociRoot ?? ociRoot }
        var exact: String? = nil
        if Containers.isID(ref), FS.isDirectory(dir(ref)) { exact = ref }
        var named: String? = nil
        if let id = (try? nameIndex(locked: false))?.entry(ref), Containers.isID(id), FS.isDirectory(dir(id)), hasName(id, ref) { named = id }
        var hits: [String]? = nil
        func prefixed() -> [String] {
            if let h = hits { return h }
            let h = ids(prefix: ref).filter { FS.isDirectory(dir($0)) }
            hits = h
            return h
        }
        // This --root's first: the id, the name, a unique prefix.
        if let id = exact, root(id) == ociRoot { return id }
        if let id = named, root(id) == ociRoot { return id }
        let mine = prefixed().filter { root($0) == ociRoot }
        if mine.count == 1 { return mine[0] }
        if mine.count > 1 { throw Failure(.invalid, "\(quoted(ref)) matches \(mine.count) containers: give more of the id") }
        // Then another --root's, named in the error.
        let other = exact ?? named ?? (prefixed().count == 1 ? prefixed()[0] : nil)
        if let id = other {
            throw Failure(.notFound, "container \(quoted(ref, max: 128)) was run with --root \(quoted(root(id), max: 256)), not \(quoted(ociRoot, max: 256)): give that --root")
        }
        throw Failure(.notFound, "container \(ref) does not exist")
    }

    /// Resolves without throwing (for runc-style commands that fall back).
    public func tryResolve(_ ref: String) -> String? {
        guard FS.isDirectory(base) else { return nil }
        return try? resolve(ref)
    }
}
