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
        let chains = chainIDs(diffIDs)
        for (i, layer) in layers.enumerated() {
            let chain = chains[i]
            if done[chain] != nil || FS.isDirectory(store.layerDir(chain)) { continue }
            let fd = open(layer.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(layer.path)") }
            defer { close(fd) }
            let tmp = work.path("layer-" + chain.hex.prefix(12))
            guard mkdir(tmp, 0o755) == 0, mkdir(tmp + "/root", 0o755) == 0 else { throw SysError("mkdir \(tmp)/root") }
            let label = "\(layer.what) (layer \(i + 1) of \(layers.count), \(layer.digest))"
            let t0 = Clock.monotonicSeconds()
            let result = try LayerUnpack.unpack(fd: fd, into: tmp + "/root", lower: chains[..<i].map { root($0) }, what: label)
            Log.debugLine("unpack \(label): \(result.size) bytes in \(ms(Clock.monotonicSeconds() - t0)) ms")
            guard result.diffID == diffIDs[i] else {
                throw Failure(.invalid, "\(label): its uncompressed content is \(result.diffID), but the config's rootfs.diff_ids[\(i)] is \(diffIDs[i])")
            }
            var info = JSONObject()
            info["chainID"] = .string(chain.description)
            info["diffID"] = .string(result.diffID.description)
            info["size"] = .int(result.size)
            info["blob"] = .string(layer.digest.description)
            if i > 0 { info["parent"] = .string(chains[i - 1].description) }
            try FS.writeAtomically(tmp + "/layer.json", JSONValue.object(info).compact() + "\n")
            done[chain] = tmp
            order.append(chain)
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
