import Glibc
import JSON
import Spec
import Sys

// The image store: DATA/images, itself a valid OCI image layout that skopeo
// and umoci read (`skopeo inspect oci:DATA/images:docker.io/library/busybox:latest`,
// `umoci ls --layout DATA/images`).
//
//   oci-layout, index.json     the layout; each manifest's descriptor carries
//                              org.opencontainers.image.ref.name = the full
//                              normalised reference (an image without one is
//                              untagged), and org.minicontainer.image.id
//   blobs/sha256/<hex>         content-addressed; written to tmp/, verified
//                              (digest, size), then renamed in
//   layers/<chainid hex>/      a layer unpacked once per ChainID: root/ (the
//                              overlay lower directory) and layer.json; made in
//                              tmp/ and renamed here only when complete
//   tmp/<work>, tmp/<work>.lock  one work directory per command that writes,
//                              flocked while it lives; swept once its lock is free
//   locks/<chainid hex>        held while that layer is being unpacked
//   .lock                      metadata: index.json, renames into blobs/ and
//                              layers/, making and sweeping work directories
//   .gc.lock                   shared by every command that reads or adds,
//                              exclusive for removal (rmi, prune)
//
// Lock order: .gc.lock, then locks/* in ChainID order, then .lock. A SIGKILL
// anywhere leaves: complete blobs and layers (maybe unreferenced, which
// prune removes), index.json old or new (it is replaced by rename), and a
// work directory the next command sweeps. Nothing names a layer directory
// before it is complete.

public struct ImageStore {
    public let locations: Locations
    /// DATA/images.
    public let dir: String

    public init(locations: Locations) throws {
        self.locations = locations
        dir = locations.data + "/images"
        try sweepIfNeeded()
    }

    var indexPath: String { dir + "/index.json" }
    var blobsDir: String { dir + "/blobs/sha256" }
    var layersDir: String { dir + "/layers" }
    var tmpDir: String { dir + "/tmp" }
    var locksDir: String { dir + "/locks" }
    var metaLockPath: String { dir + "/.lock" }
    var gcLockPath: String { dir + "/.gc.lock" }

    public func blobPath(_ d: Digest) -> String { blobsDir + "/" + d.hex }
    public func layerDir(_ chain: Digest) -> String { layersDir + "/" + chain.hex }
    /// The directory an overlay stacks: the layer's tree.
    public func layerRoot(_ chain: Digest) -> String { layerDir(chain) + "/root" }
    func layerInfoPath(_ chain: Digest) -> String { layerDir(chain) + "/layer.json" }

    public var exists: Bool { FS.exists(dir + "/oci-layout") }

    // MARK: - Flavour

    var flavourPath: String { dir + "/overlay-xattrs" }

    /// Whether this store's layers are for an overlay mounted with
    /// `userxattr`: unpacked rootless (their opaque directories marked
    /// user.overlay.opaque, their owners the user's mapped ids; see
    /// LayerUnpack). From the store's record (DATA/images/overlay-xattrs:
    /// "user" or "trusted"); a store without one is a rootful one made
    /// before the record, and a store not made yet is what this process
    /// would make (LayerUnpack.mapped).
    public var userXattrs: Bool {
        guard let t = try? FS.readString(flavourPath) else { return exists ? false : LayerUnpack.mapped }
        return t.hasPrefix("user")
    }

    /// Records the flavour of a store that has none (a new one: this
    /// process's; an old one with layers: trusted), and refuses to add
    /// layers of the other flavour to it.
    func checkFlavour() throws {
        if !FS.exists(flavourPath) {
            let mine = FS.listDirectory(layersDir).isEmpty ? LayerUnpack.mapped : false
            try FS.writeAtomically(flavourPath, mine ? "user\n" : "trusted\n")
        }
        let theirs = userXattrs
        guard theirs != LayerUnpack.mapped else { return }
        throw Failure(.invalid, theirs
            ? "the image store \(dir) was made rootless (layers owned by a user's mapped ids, user.overlay.* xattrs): root cannot add layers to it; use a store of its own (MINICONTAINER_DATA)"
            : "the image store \(dir) was made by root (trusted.overlay.* xattrs): an unprivileged user cannot add layers to it; use a store of your own (MINICONTAINER_DATA or XDG_DATA_HOME)")
    }

    /// Makes the layout's directories and files if they are missing; with
    /// `adding` (layers to be unpacked), records and checks the flavour.
    func create(adding: Bool = true) throws {
        if exists && FS.isDirectory(tmpDir) && FS.isDirectory(locksDir) && FS.isDirectory(layersDir) {
            if adding { try withMetadataLock { try checkFlavour() } }
            return
        }
        for d in [dir, dir + "/blobs", blobsDir, layersDir, tmpDir, locksDir] { try FS.makeDirectories(d) }
        for l in [metaLockPath, gcLockPath] {
            let fd = open(l, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SysError("create \(l)") }
            close(fd)
        }
        try withMetadataLock {
            if !FS.exists(indexPath) { try writeIndex(ImageIndex(mediaType: MediaType.ociIndex, manifests: [])) }
            if !FS.exists(dir + "/oci-layout") {
                try FS.writeAtomically(dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")
            }
            if adding { try checkFlavour() }
        }
    }

    // MARK: - Locks

    func withMetadataLock<T>(_ body: () throws -> T) throws -> T {
        let l = try StoreLock.acquire(metaLockPath, exclusive: true)
        defer { l.release() }
        return try body()
    }

    /// Held by every command that reads or adds images, so that removal
    /// (exclusive) never runs under it.
    func sharedGC() throws -> StoreLock? {
        guard FS.exists(gcLockPath) else { return nil }
        return try StoreLock.acquire(gcLockPath, exclusive: false)
    }

    /// A hold on the store: while it lives, no image or layer is removed
    /// (rmi and prune wait). `run IMAGE` keeps one from resolve until the
    /// container's config.json (with org.minicontainer.image.id) exists.
    public func hold() throws -> ImageHold { ImageHold(lock: try sharedGC()) }

    // MARK: - Work directories and the sweep

    /// A new work directory in tmp/, locked for this process's life.
    func beginWork() throws -> Work {
        try create(adding: false)
        return try withMetadataLock {
            let name = randomHex(16)
            let lock = try StoreLock.create(tmpDir + "/" + name + ".lock")
            guard mkdir(tmpDir + "/" + name, 0o700) == 0 else {
                let e = SysError("mkdir \(tmpDir)/\(name)")
                lock.release()
                unlink(tmpDir + "/" + name + ".lock")
                throw e
            }
            return Work(dir: tmpDir + "/" + name, lockPath: tmpDir + "/" + name + ".lock", lock: lock)
        }
    }

    func sweepIfNeeded() throws {
        guard let names = FS.directoryEntries(tmpDir), !names.isEmpty else { return }
        try withMetadataLock { sweep() }
    }

    /// Removes what dead commands left in tmp/: every work directory whose
    /// lock nobody holds (and anything else there without a live lock).
    /// Under the metadata lock.
    func sweep() {
        let names = FS.listDirectory(tmpDir)
        let set = Set(names)
        for n in names where n.hasSuffix(".lock") {
            let base = String(n.dropLast(5))
            guard let l = StoreLock.tryAcquire(tmpDir + "/" + n) else { continue }
            try? FS.removeTreeMapped(tmpDir + "/" + base)
            unlink(tmpDir + "/" + n)
            l.release()
        }
        for n in names where !n.hasSuffix(".lock") && !set.contains(n + ".lock") {
            try? FS.removeTreeMapped(tmpDir + "/" + n)
        }
        // Layer locks a killed command held (a live holder keeps its lock;
        // one that waits on a file removed here tries again).
        for n in FS.listDirectory(locksDir) {
            guard let l = StoreLock.tryAcquire(locksDir + "/" + n) else { continue }
            unlink(locksDir + "/" + n)
            l.release()
        }
    }

    // MARK: - index.json

    func readIndex() throws -> ImageIndex {
        guard FS.exists(indexPath) else { return ImageIndex(manifests: []) }
        return try ImageIndex.decode(try FS.readBytes(indexPath), file: indexPath)
    }

    /// Under the metadata lock.
    func writeIndex(_ idx: ImageIndex) throws {
        try FS.writeAtomically(indexPath, Array(idx.json().compact().utf8))
    }

    // MARK: - Blobs

    public func hasBlob(_ d: Digest) -> Bool { FS.exists(blobPath(d)) }

    /// A small blob (manifest, config), read whole and verified.
    func readBlob(_ d: Digest, what: String, max: Int = 64 << 20) throws -> [UInt8] {
        let p = blobPath(d)
        var st = stat()
        guard stat(p, &st) == 0 else {
            throw Failure(.invalid, "\(what) \(d) is missing from the store (\(p))", errno: errno)
        }
        guard Int(st.st_size) <= max else { throw Failure(.invalid, "\(what) \(d) is \(st.st_size) bytes, more than \(max)") }
        let b = try FS.readBytes(p)
        let got = Digest.of(b)
        guard got == d else { throw Failure(.invalid, "\(what) \(d) in the store is corrupt: its content is \(got)") }
        return b
    }

    // MARK: - Images

    /// The images of index.json, grouped by manifest: the manifest's
    /// descriptor (of its first entry) and its references, in index order.
    func entries(_ idx: ImageIndex) -> [(desc: Descriptor, refs: [String])] {
        var order: [Digest] = []
        var byDigest: [Digest: (Descriptor, [String])] = [:]
        for m in idx.manifests {
            if byDigest[m.digest] == nil { order.append(m.digest); byDigest[m.digest] = (m, []) }
            if let r = m.annotations[ImageAnnotation.refName] { byDigest[m.digest]!.1.append(r) }
        }
        return order.map { (byDigest[$0]!.0, byDigest[$0]!.1) }
    }

    /// The config digest of an index entry: our annotation, else from the manifest.
    func imageID(_ desc: Descriptor) throws -> Digest {
        if let s = desc.annotations[ImageAnnotation.imageID], let d = Digest(s) { return d }
        return try readManifest(desc).config.digest
    }

    func readManifest(_ desc: Descriptor) throws -> ImageManifest {
        if MediaType.indexes.contains(desc.mediaType) {
            throw Failure(.invalid, "\(indexPath): \(desc.digest) is an image index; the store keeps image manifests only")
        }
        let b = try readBlob(desc.digest, what: "manifest")
        return try ImageManifest.decode(b, file: blobPath(desc.digest), expectedType: desc.mediaType)
    }

    /// Finds an image by reference, by id (`sha256:<hex>`) or by a unique
    /// prefix of its id, as docker does.
    func find(_ text: String, in idx: ImageIndex) throws -> (desc: Descriptor, refs: [String], matched: Reference?)? {
        let all = entries(idx)
        if let r = try? Reference.parse(text) {
            if let d = r.digest {
                for e in all where e.desc.digest == d {
                    if e.refs.contains(where: { (try? Reference.parse($0))?.name == r.name }) { return (e.desc, e.refs, r) }
                }
            } else {
                let full = r.description
                if let e = all.first(where: { $0.refs.contains(full) }) { return (e.desc, e.refs, r) }
            }
        }
        guard let prefix = Reference.idPrefix(text) else { return nil }
        var hits: [(Descriptor, [String])] = []
        var seen = Set<Digest>()
        for e in all {
            let id = try imageID(e.desc)
            if id.hex.hasPrefix(prefix), !seen.contains(id) { seen.insert(id); hits.append((e.desc, e.refs)) }
        }
        if hits.count > 1 { throw Failure(.invalid, "\(quoted(text, max: 80)) matches \(hits.count) images: give more of the id") }
        return hits.first.map { ($0.0, $0.1, nil) }
    }

    /// Whether an image by that reference, id or unique id prefix is here
    /// (index.json only: nothing is unpacked or verified).
    public func has(_ ref: String) -> Bool {
        guard exists, let idx = try? readIndex(), let hit = try? find(ref, in: idx) else { return false }
        return hit != nil
    }

    /// An image by reference, id or unique id prefix, with its layers
    /// unpacked (a layer missing from layers/, as after a `skopeo copy` into
    /// the store, is unpacked from its blob now).
    public func resolve(_ ref: String) throws -> ResolvedImage {
        guard exists, let hold = try sharedGC() else { throw Failure(.notFound, "no such image: \(ref)") }
        defer { hold.release() }
        let idx = try readIndex()
        guard let hit = try find(ref, in: idx) else { throw Failure(.notFound, "no such image: \(ref)") }
        return try image(hit.desc, refs: hit.refs)
    }

    func image(_ desc: Descriptor, refs: [String]) throws -> ResolvedImage {
        let manifest = try readManifest(desc)
        let cb = try readBlob(manifest.config.digest, what: "config")
        let config = try ImageConfig.decode(cb, file: blobPath(manifest.config.digest))
        guard config.diffIDs.count == manifest.layers.count else {
            throw Failure(.invalid, "image \(desc.digest): its config lists \(config.diffIDs.count) layers, its manifest \(manifest.layers.count)")
        }
        let chains = chainIDs(config.diffIDs)
        if chains.contains(where: { !FS.isDirectory(layerDir($0)) }) {
            try unpackMissing(manifest: manifest, config: config)
        }
        return ResolvedImage(id: manifest.config.digest, manifestDigest: desc.digest, references: refs, config: config,
                             layerDirs: chains.map { layerRoot($0) }, chainIDs: chains, manifest: manifest)
    }

    /// Unpacks the layers of a stored image that layers/ lacks, from its blobs.
    func unpackMissing(manifest: ImageManifest, config: ImageConfig) throws {
        try create()
        let work = try beginWork()
        defer { work.finish() }
        var job = UnpackJob(store: self, work: work)
        let blobs = manifest.layers.map { (digest: $0.digest, path: blobPath($0.digest), what: "\(blobPath($0.digest))") }
        try job.lockChains(Set(chainIDs(config.diffIDs)))
        defer { job.releaseLocks() }
        try job.unpack(layers: blobs, diffIDs: config.diffIDs, what: "image \(manifest.config.digest)")
        try withMetadataLock { try job.commitLayers() }
    }

    /// Every image, newest first.
    public func list() throws -> [ImageSummary] {
        guard exists else { return [] }
        let hold = try sharedGC()
        defer { hold?.release() }
        let idx = try readIndex()
        var out: [ImageSummary] = []
        for e in entries(idx) {
            let manifest = try readManifest(e.desc)
            let cb = try readBlob(manifest.config.digest, what: "config")
            let config = try ImageConfig.decode(cb, file: blobPath(manifest.config.digest))
            let chains = chainIDs(config.diffIDs)
            var size: Int64 = 0
            for (i, c) in chains.enumerated() {
                if let info = layerInfo(c) { size += info.size } else if i < manifest.layers.count { size += manifest.layers[i].size }
            }
            out.append(ImageSummary(id: manifest.config.digest, manifestDigest: e.desc.digest, references: e.refs,
                                    created: config.created, createdUnix: config.created.flatMap(parseTimestamp),
                                    size: size, platform: config.platform, layers: chains.count))
        }
        return out.sorted { ($0.createdUnix ?? 0) > ($1.createdUnix ?? 0) }
    }

    /// `tag SOURCE TARGET`: TARGET (a reference with a tag) names the
    /// image SOURCE names; an image it named before keeps its other names
    /// (or stays, untagged).
    @discardableResult
    public func tag(_ source: String, _ target: String) throws -> Reference {
        let t = try Reference.parse(target)
        guard t.digest == nil else { throw Failure(.invalid, "refusing to create a tag with a digest reference: \(quoted(target, max: 200))") }
        guard exists, let hold = try sharedGC() else { throw Failure(.notFound, "no such image: \(source)") }
        defer { hold.release() }
        try withMetadataLock {
            var idx = try readIndex()
            guard let hit = try find(source, in: idx) else { throw Failure(.notFound, "no such image: \(source)") }
            addImage(&idx, manifest: hit.desc, id: try imageID(hit.desc), platform: hit.desc.platform, names: [t])
            try writeIndex(idx)
        }
        return t
    }

    struct LayerInfo {
        var diffID: Digest
        var size: Int64
    }

    func layerInfo(_ chain: Digest) -> LayerInfo? {
        guard let b = try? FS.readBytes(layerInfoPath(chain)), let n = try? parseJSON(b, file: layerInfoPath(chain)),
              let d = try? n.required("diffID").digest(), let s = try? n.required("size").int64() else { return nil }
        return LayerInfo(diffID: d, size: s)
    }
}

/// An image ready to run.
public struct ResolvedImage {
    /// The config's digest: the image id.
    public var id: Digest
    public var manifestDigest: Digest
    /// Full normalised references (`docker.io/library/busybox:latest`).
    public var references: [String]
    public var config: ImageConfig
    /// The unpacked layers' trees, bottom first (overlay wants them top
    /// first in lowerdir).
    public var layerDirs: [String]
    public var chainIDs: [Digest]
    public var manifest: ImageManifest
}

public struct ImageSummary {
    public var id: Digest
    public var manifestDigest: Digest
    public var references: [String]
    public var created: String?
    public var createdUnix: Int64?
    /// Uncompressed size of its layers.
    public var size: Int64
    public var platform: Platform
    public var layers: Int
}

/// A shared hold on the store (ImageStore.hold): removal waits for it.
public final class ImageHold {
    let lock: StoreLock?
    init(lock: StoreLock?) { self.lock = lock }
    public func release() { lock?.release() }
    deinit { lock?.release() }
}

// MARK: - Locks, work directories

/// A flock on a file, shared or exclusive, released once.
final class StoreLock {
    private(set) var fd: Int32
    var unlinkOnRelease: String?

    init(fd: Int32) { self.fd = fd }

    static func acquire(_ path: String, exclusive: Bool) throws -> StoreLock {
        StoreLock(fd: try FileLock.lockedFD(path, exclusive: exclusive))
    }

    /// Creates `path` (or opens it) and locks it exclusively, waiting.
    static func create(_ path: String) throws -> StoreLock {
        StoreLock(fd: try FileLock.lockedFD(path, create: true))
    }

    /// A lock file that exists only while held: created, locked, checked
    /// to still be the file at `path` (a holder unlinks it on release, so
    /// a waiter may have locked a removed one: it tries again).
    static func transient(_ path: String) throws -> StoreLock {
        while true {
            let l = try create(path)
            var a = stat(), b = stat()
            if fstat(l.fd, &a) == 0, stat(path, &b) == 0, a.st_ino == b.st_ino, a.st_dev == b.st_dev {
                l.unlinkOnRelease = path
                return l
            }
            l.release()
        }
    }

    /// The exclusive lock if nobody holds the file; nil otherwise.
    static func tryAcquire(_ path: String) -> StoreLock? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return nil }
        return StoreLock(fd: fd)
    }

    func release() {
        if let p = unlinkOnRelease { unlink(p); unlinkOnRelease = nil }
        if fd >= 0 { close(fd); fd = -1 }
    }

    deinit { release() }
}

/// A command's directory in tmp/: blobs being written, layers being unpacked.
final class Work {
    let dir: String
    let lockPath: String
    let lock: StoreLock
    private var counter = 0

    init(dir: String, lockPath: String, lock: StoreLock) {
        self.dir = dir
        self.lockPath = lockPath
        self.lock = lock
    }

    func path(_ tag: String) -> String {
        counter += 1
        return dir + "/\(counter)-" + tag
    }

    /// Removes the directory, then its lock (the sweep's order: a directory
    /// without its lock file is never a live one).
    func finish() {
        try? FS.removeTreeMapped(dir)
        unlink(lockPath)
        lock.release()
    }
}

func randomHex(_ n: Int) -> String {
    var bytes = [UInt8](repeating: 0, count: (n + 1) / 2)
    let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    var got = 0
    if fd >= 0 { got = read(fd, &bytes, bytes.count); close(fd) }
    if got != bytes.count {
        var g = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &g) }
    }
    let hex = Array("0123456789abcdef")
    return String(String(bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }).prefix(n))
}

/// RFC 3339 (`2026-12-01T19:09:27.150980235Z`, `...+02:00`) -> seconds since the epoch.
public func parseTimestamp(_ s: String) -> Int64? {
    let b = Array(s.utf8)
    guard b.count >= 20 else { return nil }
    func num(_ from: Int, _ len: Int) -> Int? {
        var v = 0
        for i in from..<(from + len) {
            guard i < b.count, b[i] >= 48, b[i] <= 57 else { return nil }
            v = v * 10 + Int(b[i] - 48)
        }
        return v
    }
    guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2),
          b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58 else { return nil }
    var i = 19
    if i < b.count, b[i] == 46 { i += 1; while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 } }
    var offset = 0
    if i < b.count, b[i] == 43 || b[i] == 45 {
        guard let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
        offset = (oh * 3600 + om * 60) * (b[i] == 43 ? 1 : -1)
    }
    var t = tm()
    t.tm_year = Int32(y - 1900)
    t.tm_mon = Int32(mo - 1)
    t.tm_mday = Int32(d)
    t.tm_hour = Int32(h)
    t.tm_min = Int32(mi)
    t.tm_sec = Int32(sec)
    return Int64(timegm(&t)) - Int64(offset)
}

/// Now, as RFC 3339 with nanoseconds, UTC.
public func rfc3339Now() -> String { Log.timestamp() }
