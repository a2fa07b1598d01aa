import Glibc
import JSON
import Spec
import Sys

// What we keep about a run-mode container beside its OCI state (container.json),
// and how containers are named: 64-hex-digit ids, names, references resolved.

/// What we keep about a run-mode container, beside the OCI state.
public struct Meta: Codable {
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
        change(&m)
        try? save(m)
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

    /// The requested name, refused when another container has it; else a
    /// random `adjective_scientist` none has (after 20 tries, mc_ and the id).
    /// Called under the lock on the containers directory.
    func chooseName(_ requested: String?, id: String, among metas: [Meta]) throws -> String {
        if let n = requested {
            if let other = metas.first(where: { $0.name == n }) {
                throw Failure(.exists, "the name \(quoted(n)) is already in use by container \(other.id.prefix(12)); remove it or choose another name")
            }
            if !n.isEmpty { return n }
        } else {
            for _ in 0..<20 {
                let cand = adjectives[Int.random(in: 0..<adjectives.count)] + "_" + nouns[Int.random(in: 0..<nouns.count)]
                if !metas.contains(where: { $0.name == cand }) { return cand }
            }
        }
        return "mc_" + id.prefix(12)
    }

    /// A new id whose 12-digit short form names no container here, and that
    /// no OCI container under --root has.
    func chooseID(among metas: [Meta]) -> String {
        var id = newID()
        while metas.contains(where: { $0.id.hasPrefix(id.prefix(12)) }) || runtime.store.exists(id) { id = newID() }
        return id
    }

    /// The containers run with this --root (`all` has every one of the
    /// data dir: names and ids are unique across it).
    public func mine() -> [Meta] { all().filter { $0.ociRoot == ociRoot } }

    /// An id, a name or a unique prefix of an id -> the full id, among the
    /// containers of this --root; one of another --root is named in the error.
    public func resolve(_ ref: String) throws -> String {
        func find(_ metas: [Meta]) throws -> String? {
            if metas.contains(where: { $0.id == ref }) { return ref }
            if let m = metas.first(where: { $0.name == ref }) { return m.id }
            let hits = ref.isEmpty ? [] : metas.filter { $0.id.hasPrefix(ref) }
            if hits.count == 1 { return hits[0].id }
            if hits.count > 1 { throw Failure(.invalid, "\(quoted(ref)) matches \(hits.count) containers: give more of the id") }
            return nil
        }
        let every = all()
        if let id = try find(every.filter { $0.ociRoot == ociRoot }) { return id }
        if let id = try? find(every), let m = every.first(where: { $0.id == id }) {
            throw Failure(.notFound, "container \(quoted(ref, max: 128)) was run with --root \(quoted(m.ociRoot, max: 256)), not \(quoted(ociRoot, max: 256)): give that --root")
        }
        throw Failure(.notFound, "container \(ref) does not exist")
    }

    /// Resolves without throwing (for runc-style commands that fall back).
    public func tryResolve(_ ref: String) -> String? {
        guard FS.isDirectory(base) else { return nil }
        return try? resolve(ref)
    }
}
