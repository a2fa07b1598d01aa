import Glibc
import JSON
import Spec
import Sys

// Removal: rmi, image prune, and the collection after them of every blob
// and layer nothing references. Images in use are those a run-mode
// container's config.json (DATA/containers/<id>/config.json) names in its
// org.minicontainer.image.id annotation; their config and layers are kept
// even when index.json no longer lists the image. Removal holds .gc.lock
// exclusively, so no load, import or run (which hold it shared) sees a
// blob or layer go from under it.

public struct RemoveReport {
    /// References taken off (full normalised names).
    public var untagged: [String] = []
    /// Image ids removed from the store.
    public var deleted: [Digest] = []
    /// Bytes freed on disk.
    public var reclaimed: Int64 = 0
}

public struct DiskUsage {
    public var images = 0
    public var activeImages = 0
    /// Blobs on disk (manifests, configs, compressed layers).
    public var imagesSize: Int64 = 0
    /// What `image prune -a` would free of them.
    public var imagesReclaimable: Int64 = 0
    public var layers = 0
    public var activeLayers = 0
    /// Unpacked layer trees on disk.
    public var layersSize: Int64 = 0
    public var layersReclaimable: Int64 = 0
}

extension ImageStore {
    /// The images run-mode containers use: image id -> container ids.
    public func inUse() -> [Digest: [String]] {
        let base = locations.data + "/containers"
        var out: [Digest: [String]] = [:]
        for id in FS.listDirectory(base) {
            let p = base + "/" + id + "/config.json"
            guard let b = try? readCapped(p, max: 16 << 20, what: p), let n = try? parseJSON(b, file: p),
                  let a = try? n.optional("annotations"), let v = try? a.optional(ImageAnnotation.imageID)?.string(),
                  let d = Digest(v) else { continue }
            out[d, default: []].append(id)
        }
        return out
    }

    /// `rmi REF`: takes the reference off; an image left without one is
    /// removed, unless a container uses it (refused without `force`; with
    /// it the image stays, untagged, until the container is gone). By id,
    /// every reference goes (refused without `force` when there are several).
    public func remove(_ ref: String, force: Bool) throws -> RemoveReport {
        guard exists else { throw Failure(.notFound, "no such image: \(ref)") }
        let gc = try StoreLock.acquire(gcLockPath, exclusive: true)
        defer { gc.release() }
        var report = RemoveReport()
        try withMetadataLock {
            var idx = try readIndex()
            guard let hit = try find(ref, in: idx) else { throw Failure(.notFound, "no such image: \(ref)") }
            let id = try imageID(hit.desc)
            let used = inUse()[id] ?? []
            var names: [String]
            if let m = hit.matched, m.digest == nil {
                names = [m.description]
            } else {
                names = hit.refs
                if names.count > 1 && !force {
                    throw Failure(.state, "image \(id.hex.prefix(12)) has \(names.count) references (\(names.map { displayName($0) }.joined(separator: ", "))): remove them by name, or use rmi -f")
                }
            }
            let remaining = hit.refs.filter { !names.contains($0) }
            if remaining.isEmpty && !used.isEmpty && !force {
                throw Failure(.state, "image \(id.hex.prefix(12)) is used by container \(used.map { String($0.prefix(12)) }.joined(separator: ", ")): remove the container first, or use rmi -f (the image then stays, untagged, until the container is removed)")
            }
            idx.manifests.removeAll { names.contains($0.annotations[ImageAnnotation.refName] ?? "") && $0.digest == hit.desc.digest }
            report.untagged = names
            if remaining.isEmpty {
                idx.manifests.removeAll { $0.digest == hit.desc.digest }
                if used.isEmpty {
                    report.deleted = [id]
                } else {
                    var d = hit.desc
                    d.annotations[ImageAnnotation.refName] = nil
                    idx.manifests.append(d)
                }
            }
            try writeIndex(idx)
        }
        report.reclaimed = try collect()
        return report
    }

    /// `image prune`: removes untagged images (`all`: every image) that no
    /// container uses, then what nothing references.
    public func prune(all: Bool) throws -> RemoveReport {
        var report = RemoveReport()
        guard exists else { return report }
        let gc = try StoreLock.acquire(gcLockPath, exclusive: true)
        defer { gc.release() }
        try withMetadataLock {
            var idx = try readIndex()
            let used = inUse()
            var drop = Set<Digest>()
            for e in entries(idx) where all || e.refs.isEmpty {
                let id = try imageID(e.desc)
                if used[id] != nil { continue }
                drop.insert(e.desc.digest)
                report.untagged += e.refs
                if !report.deleted.contains(id) { report.deleted.append(id) }
            }
            guard !drop.isEmpty else { return }
            idx.manifests.removeAll { drop.contains($0.digest) }
            try writeIndex(idx)
        }
        report.reclaimed = try collect()
        return report
    }

    /// What the index and the containers keep: blobs and ChainIDs.
    func live(_ idx: ImageIndex, used: [Digest: [String]]) -> (blobs: Set<Digest>, chains: Set<Digest>, usedChains: Set<Digest>, usedBlobs: Set<Digest>) {
        var blobs = Set<Digest>(), chains = Set<Digest>(), usedChains = Set<Digest>(), usedBlobs = Set<Digest>()
        for e in entries(idx) {
            blobs.insert(e.desc.digest)
            guard let m = try? readManifest(e.desc) else { continue }
            blobs.insert(m.config.digest)
            for l in m.layers { blobs.insert(l.digest) }
            guard let cb = try? readBlob(m.config.digest, what: "config"),
                  let c = try? ImageConfig.decode(cb, file: blobPath(m.config.digest)) else { continue }
            let cs = chainIDs(c.diffIDs)
            chains.formUnion(cs)
            if used[m.config.digest] != nil {
                usedChains.formUnion(cs)
                usedBlobs.insert(e.desc.digest)
                usedBlobs.insert(m.config.digest)
                for l in m.layers { usedBlobs.insert(l.digest) }
            }
        }
        // A container's image that the index lost still keeps its config
        // and layers (their trees are its root's lower directories).
        for id in used.keys {
            guard let cb = try? readBlob(id, what: "config"), let c = try? ImageConfig.decode(cb, file: blobPath(id)) else { continue }
            blobs.insert(id)
            usedBlobs.insert(id)
            let cs = chainIDs(c.diffIDs)
            chains.formUnion(cs)
            usedChains.formUnion(cs)
            for ch in cs { if let b = layerBlob(ch) { blobs.insert(b); usedBlobs.insert(b) } }
        }
        return (blobs, chains, usedChains, usedBlobs)
    }

    func layerBlob(_ chain: Digest) -> Digest? {
        guard let b = try? FS.readBytes(layerInfoPath(chain)), let n = try? parseJSON(b, file: layerInfoPath(chain)) else { return nil }
        return try? n.optional("blob")?.digest()
    }

    /// Removes every blob and layer nothing keeps; returns the bytes freed.
    /// Under the exclusive .gc.lock.
    @discardableResult
    func collect() throws -> Int64 {
        let work = try beginWork()
        defer { work.finish() }
        var freed: Int64 = 0
        try withMetadataLock {
            let keep = live(try readIndex(), used: inUse())
            for name in FS.listDirectory(blobsDir) {
                guard let d = Digest("sha256:" + name), !keep.blobs.contains(d) else { continue }
                freed += diskUsage(blobsDir + "/" + name)
                unlink(blobsDir + "/" + name)
            }
            for name in FS.listDirectory(layersDir) {
                guard let d = Digest("sha256:" + name), !keep.chains.contains(d) else { continue }
                freed += diskUsage(layersDir + "/" + name)
                // Out of layers/ at once; removed below, or by the sweep.
                guard rename(layersDir + "/" + name, work.path("gc")) == 0 else { throw SysError("rename \(layersDir)/\(name)") }
            }
            for name in FS.listDirectory(locksDir) { unlink(locksDir + "/" + name) }
        }
        return freed
    }

    /// Space used and reclaimable (`system df`).
    public func usage() throws -> DiskUsage {
        var u = DiskUsage()
        guard exists else { return u }
        let hold = try sharedGC()
        defer { hold?.release() }
        let idx = try readIndex()
        let used = inUse()
        let keep = live(idx, used: used)
        for e in entries(idx) {
            u.images += 1
            if let id = try? imageID(e.desc), used[id] != nil { u.activeImages += 1 }
        }
        for name in FS.listDirectory(blobsDir) {
            guard let d = Digest("sha256:" + name) else { continue }
            let s = diskUsage(blobsDir + "/" + name)
            u.imagesSize += s
            if !keep.usedBlobs.contains(d) { u.imagesReclaimable += s }
        }
        for name in FS.listDirectory(layersDir) {
            guard let d = Digest("sha256:" + name) else { continue }
            let s = diskUsage(layersDir + "/" + name)
            u.layers += 1
            u.layersSize += s
            if keep.usedChains.contains(d) { u.activeLayers += 1 } else { u.layersReclaimable += s }
        }
        return u
    }
}

/// Disk usage of a tree (du: allocated blocks, hard links once).
public func diskUsage(_ path: String) -> Int64 {
    var seen = Set<[UInt64]>()
    func walk(_ p: String) -> Int64 {
        var st = stat()
        guard lstat(p, &st) == 0 else { return 0 }
        if st.st_nlink > 1 && (st.st_mode & S_IFMT) != S_IFDIR {
            let key = [UInt64(st.st_dev), UInt64(st.st_ino)]
            if seen.contains(key) { return 0 }
            seen.insert(key)
        }
        var total = Int64(st.st_blocks) * 512
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for e in FS.directoryEntries(p) ?? [] { total += walk(p + "/" + e.name) }
        }
        return total
    }
    return walk(path)
}

/// A stored reference as Docker shows it (`busybox:latest`).
public func displayName(_ full: String) -> String {
    (try? Reference.parse(full))?.familiar ?? full
}
