import Glibc
import JSON
import Spec
import Sys

// A pull's way into the store (the Registry module drives it). Unlike a
// load, which stages everything and commits once, a pull commits each layer
// as soon as it is downloaded, verified and unpacked: layers unpack while
// others download, and two pulls that share a layer fetch it once without
// either waiting while it holds another layer (a pull claims a ChainID's
// lock only for that layer's own download and unpack, never while it waits
// for another). A failed pull removes what it committed that no image
// references, when no other command is using the store (rollback); the
// bad blob itself never enters it. Partial downloads live in partial/,
// under their digest, so that a pull stopped by Ctrl-C or a dropped
// network resumes with a Range request.

public final class ImageIngest {
    public let store: ImageStore
    private var hold: StoreLock?
    private let work: Work
    private var committed = false
    /// Keep the layers committed even if no image is (a pull stopped by
    /// Ctrl-C: its next run resumes from them).
    public var keepLayers = false
    /// Layers this ingest put into layers/ (for rollback).
    private(set) var newChains: [Digest] = []

    /// Creates the store if needed, holds it shared (no rmi or prune runs
    /// under an ingest) and makes the work directory.
    public init(store: ImageStore) throws {
        self.store = store
        try store.create()
        hold = try StoreLock.acquire(store.gcLockPath, exclusive: false)
        do {
            work = try store.beginWork()
        } catch {
            hold?.release()
            throw error
        }
        try FS.makeDirectories(partialDir)
    }

    public var partialDir: String { store.dir + "/partial" }
    /// Where a blob is downloaded to, kept across runs for a resume.
    public func partialPath(_ d: Digest) -> String { partialDir + "/" + d.hex }
    /// A new file name in the work directory (removed at finish).
    public func workPath(_ tag: String) -> String { work.path(tag) }

    public func hasBlob(_ d: Digest) -> Bool { store.hasBlob(d) }
    public func hasLayer(_ chain: Digest) -> Bool { FS.isDirectory(store.layerDir(chain)) }

    public enum Claim {
        /// The layer and its blob are in the store: nothing to do.
        case present
        /// Another command is fetching or unpacking it: ask again later.
        case busy
        /// Ours to fetch (unless `blobPresent`) and unpack (unless
        /// `layerPresent`); commit or release it.
        case mine(LayerClaim)
    }

    /// Claims the layer `chain` (whose compressed blob is `blob`) without
    /// waiting.
    public func claim(chain: Digest, blob: Digest) throws -> Claim {
        if hasLayer(chain) && hasBlob(blob) { return .present }
        guard let lock = try StoreLock.tryTransient(store.locksDir + "/" + chain.hex) else { return .busy }
        // Another command may have committed it before we locked.
        if hasLayer(chain) && hasBlob(blob) { lock.release(); return .present }
        return .mine(LayerClaim(chain: chain, blob: blob, lock: lock, blobPresent: hasBlob(blob), layerPresent: hasLayer(chain)))
    }

    /// A fresh temporary layer directory (root/ made) for `claim`'s unpack.
    public func layerWorkDir(_ claim: LayerClaim) throws -> String {
        let dir = work.path("layer-" + claim.chain.hex.prefix(12))
        guard mkdir(dir, 0o755) == 0, mkdir(dir + "/root", 0o755) == 0 else { throw SysError("mkdir \(dir)/root") }
        return dir
    }

    /// Commits a claimed layer: the verified blob file (nil when the store
    /// has the blob), renamed into blobs/, and the unpacked directory (nil
    /// when the store has the layer), checked against `diffID`, renamed
    /// into layers/. Releases the claim.
    public func commitLayer(_ claim: LayerClaim, blobFile: String?, unpacked: (dir: String, result: LayerUnpackResult)?,
                            diffID: Digest, parent: Digest?, what: String) throws {
        defer { claim.release() }
        if let u = unpacked {
            guard u.result.diffID == diffID else {
                throw Failure(.invalid, "\(what): its uncompressed content is \(u.result.diffID), but the config's rootfs.diff_ids says \(diffID)")
            }
            var info = JSONObject()
            info["chainID"] = .string(claim.chain.description)
            info["diffID"] = .string(u.result.diffID.description)
            info["size"] = .int(u.result.size)
            info["blob"] = .string(claim.blob.description)
            if let p = parent { info["parent"] = .string(p.description) }
            try FS.writeAtomically(u.dir + "/layer.json", JSONValue.object(info).compact() + "\n")
        }
        try store.withMetadataLock {
            if let f = blobFile, !store.hasBlob(claim.blob) {
                guard rename(f, store.blobPath(claim.blob)) == 0 else { throw SysError("rename \(f) to \(store.blobPath(claim.blob))") }
            }
            if let u = unpacked, !hasLayer(claim.chain) {
                guard rename(u.dir, store.layerDir(claim.chain)) == 0 else { throw SysError("rename \(u.dir) to \(store.layerDir(claim.chain))") }
                newChains.append(claim.chain)
            }
        }
    }

    /// Puts the manifest and config (verified bytes) into blobs/ and names
    /// the image in index.json; every layer must be in the store.
    public func commitImage(manifest: [UInt8], mediaType: String, config: [UInt8], configDigest: Digest,
                            platform: Platform?, names: [Reference]) throws -> Digest {
        let md = Digest.of(manifest)
        guard Digest.of(config) == configDigest else { throw Failure(.invalid, "config \(configDigest): digest mismatch") }
        try store.withMetadataLock {
            for (d, bytes) in [(md, manifest), (configDigest, config)] where !store.hasBlob(d) {
                let p = work.path("blob")
                try FS.writeAtomically(p, bytes)
                guard rename(p, store.blobPath(d)) == 0 else { throw SysError("rename \(p) to \(store.blobPath(d))") }
            }
            var idx = try store.readIndex()
            store.addImage(&idx, manifest: Descriptor(mediaType: mediaType, digest: md, size: Int64(manifest.count)),
                           id: configDigest, platform: platform, names: names)
            try store.writeIndex(idx)
        }
        committed = true
        return md
    }

    /// Ends the ingest. One that did not commit its image removes the
    /// layers it committed, and anything else nothing references, when it
    /// can have the store to itself without waiting; otherwise the next
    /// rmi or prune does.
    public func finish() {
        work.finish()
        hold?.release()
        hold = nil
        if committed || keepLayers || newChains.isEmpty { return }
        guard let gc = StoreLock.tryAcquire(store.gcLockPath) else { return }
        defer { gc.release() }
        _ = try? store.collect()
    }

    deinit {
        if hold != nil { finish() }
    }
}

/// A claimed layer: its ChainID's lock, held until commit or release.
public final class LayerClaim {
    public let chain: Digest
    public let blob: Digest
    public let blobPresent: Bool
    public let layerPresent: Bool
    private var lock: StoreLock?

    init(chain: Digest, blob: Digest, lock: StoreLock, blobPresent: Bool, layerPresent: Bool) {
        self.chain = chain
        self.blob = blob
        self.lock = lock
        self.blobPresent = blobPresent
        self.layerPresent = layerPresent
    }

    public func release() {
        lock?.release()
        lock = nil
    }

    deinit { release() }
}

/// Unpacks one layer blob in a thread of its own, so that downloads go on
/// meanwhile; poll `done`, then read `outcome`.
public final class BackgroundUnpack {
    public let blobPath: String
    public let dir: String
    public let lowers: [String]
    public let label: String
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var finished = false
    private var result: Result<LayerUnpackResult, Error>?
    private var thread = pthread_t()

    /// Starts unpacking `blobPath` into `dir`/root (over `lowers`, the
    /// roots beneath, bottom first, only for a layer that hard-links into
    /// them).
    public init(blobPath: String, dir: String, lowers: [String] = [], label: String) throws {
        self.blobPath = blobPath
        self.dir = dir
        self.lowers = lowers
        self.label = label
        pthread_mutex_init(mutex, nil)
        let ctx = Unmanaged.passRetained(self).toOpaque()
        guard pthread_create(&thread, nil, backgroundUnpackMain, ctx) == 0 else {
            Unmanaged<BackgroundUnpack>.fromOpaque(ctx).release()
            throw SysError("pthread_create")
        }
    }

    fileprivate func run() {
        let fd = open(blobPath, O_RDONLY | O_CLOEXEC)
        let r: Result<LayerUnpackResult, Error>
        if fd < 0 {
            r = .failure(SysError("open \(blobPath)"))
        } else {
            r = Result { try LayerUnpack.unpack(fd: fd, into: dir + "/root", lower: lowers, what: label) }
            close(fd)
        }
        pthread_mutex_lock(mutex)
        result = r
        finished = true
        pthread_mutex_unlock(mutex)
    }

    public var done: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return finished
    }

    /// Waits for the thread and gives its result.
    public func outcome() -> Result<LayerUnpackResult, Error> {
        pthread_join(thread, nil)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return result ?? .failure(Failure(.failed, "\(label): the unpack gave no result"))
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
}

private func backgroundUnpackMain(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let u = Unmanaged<BackgroundUnpack>.fromOpaque(ctx!).takeRetainedValue()
    u.run()
    return nil
}

extension ImageStore {
    /// A small blob the store has, read and checked against its digest;
    /// nil when absent or not so.
    public func storedBlob(_ d: Digest, max: Int) -> [UInt8]? {
        guard hasBlob(d), let b = try? readBlob(d, what: "blob", max: max), Digest.of(b) == d else { return nil }
        return b
    }
}

extension StoreLock {
    /// `transient`'s lock without waiting: nil when another holds it.
    static func tryTransient(_ path: String) throws -> StoreLock? {
        while true {
            let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SysError("open \(path)") }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { close(fd); return nil }
            let l = StoreLock(fd: fd)
            var a = stat(), b = stat()
            if fstat(fd, &a) == 0, stat(path, &b) == 0, a.st_ino == b.st_ino, a.st_dev == b.st_dev {
                l.unlinkOnRelease = path
                return l
            }
            l.release()
        }
    }
}
