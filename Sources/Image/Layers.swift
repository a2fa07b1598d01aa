import Glibc
import JSON
import Spec
import Sys

// Unpacking an image's layers into the store, once per ChainID: each layer
// is unpacked (LayerUnpack) into the command's work directory, its DiffID
// checked against the config's rootfs.diff_ids, and renamed into layers/
// only at commit. A lock per ChainID (locks/<hex>, taken in ChainID order)
// makes concurrent loads of one image unpack it once: the second waits,
// then finds the layer there.

struct UnpackJob {
    let store: ImageStore
    let work: Work
    private(set) var locks: [StoreLock] = []
    /// Layers unpacked by this job, not yet committed: ChainID -> the
    /// temporary layer directory (root/ and layer.json inside).
    private(set) var done: [Digest: String] = [:]
    private(set) var order: [Digest] = []

    init(store: ImageStore, work: Work) {
        self.store = store
        self.work = work
    }

    /// Locks every ChainID of `chains` that the store lacks, in ChainID
    /// order (so that loads of images sharing layers cannot deadlock).
    mutating func lockChains(_ chains: Set<Digest>) throws {
        for c in chains.sorted(by: { $0.hex < $1.hex }) where !FS.isDirectory(store.layerDir(c)) {
            locks.append(try StoreLock.transient(store.locksDir + "/" + c.hex))
        }
    }

    mutating func releaseLocks() {
        for l in locks { l.release() }
        locks = []
    }

    /// The tree of a layer: the store's, or this job's uncommitted one.
    func root(_ chain: Digest) -> String {
        if let d = done[chain] { return d + "/root" }
        return store.layerRoot(chain)
    }

    /// Unpacks each layer (a blob file) whose ChainID the store lacks.
    /// `what` names the image in errors.
    mutating func unpack(layers: [(digest: Digest, path: String, what: String)], diffIDs: [Digest], what: String) throws {
        try unpack([(layers, diffIDs)])
    }

    /// Unpacks the layers of several images (each its layer blobs and
    /// DiffIDs), each ChainID the store lacks once. Every layer is first
    /// unpacked on its own, several at a time (a thread each, up to the
    /// CPUs): the layers beneath matter only to a hard link into one of
    /// them (LayerUnpack copies its target up), and such a layer fails on
    /// its own; it is unpacked again, in order, over its lower layers.
    mutating func unpack(_ images: [(layers: [(digest: Digest, path: String, what: String)], diffIDs: [Digest])]) throws {
        var tasks: [LayerTask] = []
        var planned = Set<Digest>()
        for img in images {
            let chains = chainIDs(img.diffIDs)
            for (i, layer) in img.layers.enumerated() {
                let chain = chains[i]
                if done[chain] != nil || planned.contains(chain) || FS.isDirectory(store.layerDir(chain)) { continue }
                planned.insert(chain)
                let dir = work.path("layer-" + chain.hex.prefix(12))
                guard mkdir(dir, 0o755) == 0, mkdir(dir + "/root", 0o755) == 0 else { throw SysError("mkdir \(dir)/root") }
                tasks.append(LayerTask(chain: chain, index: i, lowers: Array(chains[..<i]), blob: layer.digest, path: layer.path,
                                       diffID: img.diffIDs[i], dir: dir,
                                       label: "\(layer.what) (layer \(i + 1) of \(img.layers.count), \(layer.digest))"))
            }
        }
        guard !tasks.isEmpty else { return }
        let pool = UnpackPool(tasks)
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        pool.run(threads: min(tasks.count, max(1, min(cpus, 4))))
        for (n, t) in tasks.enumerated() {
            var outcome = pool.outcomes[n]!
            if case .failure = outcome.result, !t.lowers.isEmpty {
                // Again, over the layers beneath (all unpacked by now).
                try FS.removeTreeMapped(t.dir + "/root")
                guard mkdir(t.dir + "/root", 0o755) == 0 else { throw SysError("mkdir \(t.dir)/root") }
                outcome = UnpackPool.unpack(t, lower: t.lowers.map { root($0) })
            }
            let result = try outcome.result.get()
            Log.debugLine("unpack \(t.label): \(result.size) bytes in \(ms(outcome.seconds)) ms")
            guard result.diffID == t.diffID else {
                throw Failure(.invalid, "\(t.label): its uncompressed content is \(result.diffID), but the config's rootfs.diff_ids[\(t.index)] is \(t.diffID)")
            }
            var info = JSONObject()
            info["chainID"] = .string(t.chain.description)
            info["diffID"] = .string(result.diffID.description)
            info["size"] = .int(result.size)
            info["blob"] = .string(t.blob.description)
            if let p = t.lowers.last { info["parent"] = .string(p.description) }
            try FS.writeAtomically(t.dir + "/layer.json", JSONValue.object(info).compact() + "\n")
            done[t.chain] = t.dir
            order.append(t.chain)
        }
    }

    /// Renames the unpacked layers into layers/ (one there already wins).
    /// Under the metadata lock.
    mutating func commitLayers() throws {
        for chain in order {
            guard let tmp = done[chain] else { continue }
            let dest = store.layerDir(chain)
            if FS.isDirectory(dest) { continue }
            guard rename(tmp, dest) == 0 else { throw SysError("rename \(tmp) to \(dest)") }
        }
        done = [:]
        order = []
    }
}

struct LayerTask {
    let chain: Digest
    let index: Int
    /// The ChainIDs beneath, bottom first.
    let lowers: [Digest]
    let blob: Digest
    let path: String
    let diffID: Digest
    /// The temporary layer directory (root/ made).
    let dir: String
    let label: String
}

/// Runs LayerUnpack on tasks from a few threads, each task on its own
/// (no lower layers); the outcomes by task.
final class UnpackPool {
    struct Outcome {
        var result: Result<LayerUnpackResult, Error>
        var seconds: Double
    }

    let tasks: [LayerTask]
    /// One slot per task, each written by the one thread that ran it and
    /// read after every thread is joined.
    let outcomes: UnsafeMutablePointer<Outcome?>
    private var next = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ tasks: [LayerTask]) {
        self.tasks = tasks
        outcomes = UnsafeMutablePointer<Outcome?>.allocate(capacity: tasks.count)
        outcomes.initialize(repeating: nil, count: tasks.count)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        outcomes.deinitialize(count: tasks.count)
        outcomes.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    static func unpack(_ t: LayerTask, lower: [String]) -> Outcome {
        let t0 = Clock.monotonicSeconds()
        let fd = open(t.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return Outcome(result: .failure(SysError("open \(t.path)")), seconds: 0) }
        defer { close(fd) }
        let r = Result { try LayerUnpack.unpack(fd: fd, into: t.dir + "/root", lower: lower, what: t.label) }
        return Outcome(result: r, seconds: Clock.monotonicSeconds() - t0)
    }

    /// Takes tasks until none is left.
    fileprivate func work() {
        while true {
            pthread_mutex_lock(mutex)
            let n = next
            next += 1
            pthread_mutex_unlock(mutex)
            guard n < tasks.count else { return }
            outcomes[n] = UnpackPool.unpack(tasks[n], lower: [])
        }
    }

    /// `threads` workers, this thread being one; returns when all are done.
    func run(threads: Int) {
        var started: [pthread_t] = []
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        for _ in 1..<max(1, threads) {
            var t = pthread_t()
            if pthread_create(&t, nil, unpackPoolMain, ctx) == 0 { started.append(t) }
        }
        work()
        for t in started { pthread_join(t, nil) }
    }
}

private func unpackPoolMain(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<UnpackPool>.fromOpaque(ctx!).takeUnretainedValue().work()
    return nil
}
