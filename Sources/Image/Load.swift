import Glibc
import JSON
import Spec
import Sys

// `load`: docker-archive (docker save; Docker 25+'s, an OCI layout with a
// manifest.json pointing into blobs/), oci-archive, or an OCI layout
// directory, with any number of images in it. The outer tar is read as a
// stream (TarReader, which also takes it gzip- or zstd-compressed): each
// file becomes a verified blob in the command's work directory (small
// ones stay in memory), links are remembered by path; the index or
// manifest.json is read at the end, since `docker save` writes it last.
// Then every layer the store lacks is unpacked, and only when all of that
// succeeded is anything renamed into the store and index.json rewritten: a
// load that fails changes nothing.

public struct LoadOptions {
    /// The platform to take from an index (linux/amd64 here).
    public var platform = Platform.host
    /// --platform was given: an image of another platform is an error.
    public var platformGiven = false

    public init(platform: Platform? = nil) {
        if let p = platform { self.platform = p; platformGiven = true }
    }
}

public struct LoadedImage {
    public var id: Digest
    public var manifestDigest: Digest
    public var references: [Reference]
}

/// A blob made ready for the store: verified, and in memory, in the work
/// directory, or in the store already.
struct Staged {
    enum Place {
        case memory([UInt8])
        case file(String)
        case store
    }
    var digest: Digest
    var size: Int64
    var place: Place
}

/// Where a load reads from: a streamed archive or a layout directory.
protocol ImageSource: AnyObject {
    /// The file as the user gave it, for messages.
    var name: String { get }
    /// A small file at the top (index.json, manifest.json); nil if absent.
    func document(_ path: String) throws -> [UInt8]?
    /// A blob by digest (blobs/sha256/<hex>), verified; nil if absent.
    func blob(_ d: Digest) throws -> Staged?
    /// A file by its path in the archive (docker-archive's Config and
    /// Layers), with its computed digest; nil if absent.
    func file(_ path: String) throws -> Staged?
}

/// Lexically cleaned archive path: no leading "/" or "./", no "." parts;
/// nil for one with ".." or nothing left.
func cleanArchivePath(_ p: String) -> String? {
    var parts: [String] = []
    for c in Path.components(p) {
        if c == "." { continue }
        if c == ".." { return nil }
        parts.append(c)
    }
    return parts.isEmpty ? nil : parts.joined(separator: "/")
}

/// The hex of a `blobs/sha256/<hex>` path.
func blobHex(_ p: String) -> String? {
    guard p.hasPrefix("blobs/sha256/") else { return nil }
    let h = String(p.dropFirst(13))
    return Digest("sha256:" + h) != nil ? h : nil
}

let memoryBlobMax: Int64 = 1 << 20

func ms(_ seconds: Double) -> Int { Int((seconds * 1000).rounded()) }
let documentMax = 64 << 20
let copyBuffer = 4 << 20

/// Writes a blob to a file, hashing as it goes.
final class BlobWriter {
    let path: String
    let fd: Int32
    var hash = SHA256Stream()
    var size: Int64 = 0
    let what: String

    init(path: String, what: String) throws {
        self.path = path
        self.what = what
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SysError("\(what): create \(path)") }
    }

    func write(_ p: UnsafeRawBufferPointer) throws {
        hash.update(p)
        var off = 0
        while off < p.count {
            let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("\(what): writing to the store (\(path))")
            }
            off += n
        }
        size += Int64(p.count)
    }

    func finish() throws -> (Digest, Int64) {
        guard close(fd) == 0 else { throw SysError("\(what): writing to the store (\(path))") }
        return (hash.finish(), size)
    }

    func abandon() {
        close(fd)
        unlink(path)
    }
}

/// Copies `fd` to its end into a new blob file.
func copyToBlob(fd: Int32, path: String, what: String) throws -> (Digest, Int64) {
    let w = try BlobWriter(path: path, what: what)
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: copyBuffer, alignment: 4096)
    defer { buf.deallocate() }
    do {
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 { if errno == EINTR { continue }; throw SysError("\(what): read") }
            if n == 0 { break }
            try w.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return try w.finish()
    } catch {
        w.abandon()
        throw error
    }
}

func readCapped(_ path: String, max: Int, what: String) throws -> [UInt8] {
    var st = stat()
    guard stat(path, &st) == 0 else { throw SysError("\(what): stat \(path)") }
    guard Int(st.st_size) <= max else { throw Failure(.invalid, "\(what): \(st.st_size) bytes, more than \(max)") }
    return try FS.readBytes(path)
}

/// A streamed tar archive, read whole into the work directory.
final class ArchiveSource: ImageSource {
    let name: String
    let store: ImageStore
    var files: [String: Staged] = [:]
    var links: [String: String] = [:]

    init(fd: Int32, name: String, store: ImageStore, work: Work) throws {
        self.name = name
        self.store = store
        let tar = try TarReader(fd: fd, what: name)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: copyBuffer, alignment: 4096)
        defer { buf.deallocate() }
        var sawEntry = false
        while let e = try tar.next() {
            sawEntry = true
            guard let p = cleanArchivePath(e.path) else { continue }
            switch e.kind {
            case .symlink:
                let link = e.linkTarget ?? ""
                let target = Path.isAbsolute(link) ? link : (Path.hasSlash(p) ? Path.split(p).parent + "/" : "") + link
                if let t = cleanArchivePath(target) { links[p] = t }
            case .hardlink:
                if let t = cleanArchivePath(e.linkTarget ?? "") { links[p] = t }
            case .file:
                let known = blobHex(p).map { Digest(hex: $0) }
                if let d = known, store.hasBlob(d) {
                    files[p] = Staged(digest: d, size: e.size, place: .store)
                    continue
                }
                let what = "\(name): \(p)"
                var staged: Staged
                if e.size <= memoryBlobMax {
                    var bytes = [UInt8](repeating: 0, count: Int(e.size))
                    var got = 0
                    while got < bytes.count {
                        let n = try bytes.withUnsafeMutableBytes { try tar.read(UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }
                        if n == 0 { break }
                        got += n
                    }
                    guard got == bytes.count else { throw Failure(.invalid, "\(what): truncated (\(got) of \(e.size) bytes)") }
                    staged = Staged(digest: Digest.of(bytes), size: e.size, place: .memory(bytes))
                } else {
                    let path = work.path("blob")
                    let w = try BlobWriter(path: path, what: what)
                    do {
                        while true {
                            let n = try tar.read(buf)
                            if n == 0 { break }
                            try w.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                        }
                        let (d, size) = try w.finish()
                        guard size == e.size else { throw Failure(.invalid, "\(what): truncated (\(size) of \(e.size) bytes)") }
                        staged = Staged(digest: d, size: size, place: .file(path))
                    } catch {
                        w.abandon()
                        throw error
                    }
                }
                if let d = known, staged.digest != d {
                    throw Failure(.invalid, "\(what): digest mismatch: the content is \(staged.digest)")
                }
                files[p] = staged
            default:
                continue
            }
        }
        _ = try tar.finish()
        guard sawEntry else { throw Failure(.invalid, "\(name): an empty archive") }
    }

    func lookup(_ path: String) -> Staged? {
        guard var p = cleanArchivePath(path) else { return nil }
        for _ in 0..<16 {
            if let s = files[p] { return s }
            guard let t = links[p] else { return nil }
            p = t
        }
        return nil
    }

    func document(_ path: String) throws -> [UInt8]? {
        guard let s = lookup(path) else { return nil }
        return try bytes(of: s, store: store, what: "\(name): \(path)")
    }

    func blob(_ d: Digest) throws -> Staged? {
        if let s = lookup("blobs/sha256/" + d.hex) { return s }
        return nil
    }

    func file(_ path: String) throws -> Staged? { lookup(path) }
}

/// An OCI image layout (or an unpacked docker-archive) directory.
final class LayoutSource: ImageSource {
    let name: String
    let dir: String
    let store: ImageStore
    let work: Work
    var cache: [String: Staged] = [:]

    init(dir: String, store: ImageStore, work: Work) {
        name = dir
        self.dir = dir
        self.store = store
        self.work = work
    }

    func document(_ path: String) throws -> [UInt8]? {
        guard let p = cleanArchivePath(path), FS.exists(dir + "/" + p) else { return nil }
        return try readCapped(dir + "/" + p, max: documentMax, what: "\(name): \(p)")
    }

    func blob(_ d: Digest) throws -> Staged? {
        if store.hasBlob(d) {
            var st = stat()
            if stat(store.blobPath(d), &st) == 0 { return Staged(digest: d, size: Int64(st.st_size), place: .store) }
        }
        guard let s = try file("blobs/sha256/" + d.hex) else { return nil }
        guard s.digest == d else { throw Failure(.invalid, "\(name): blobs/sha256/\(d.hex): digest mismatch: the content is \(s.digest)") }
        return s
    }

    func file(_ path: String) throws -> Staged? {
        guard let p = cleanArchivePath(path) else { return nil }
        if let s = cache[p] { return s }
        let full = dir + "/" + p
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw SysError("\(name): open \(p)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw Failure(.invalid, "\(name): \(p) is not a regular file") }
        let dest = work.path("blob")
        let (d, size) = try copyToBlob(fd: fd, path: dest, what: "\(name): \(p)")
        let s = Staged(digest: d, size: size, place: .file(dest))
        cache[p] = s
        return s
    }
}

func bytes(of s: Staged, store: ImageStore, what: String) throws -> [UInt8] {
    switch s.place {
    case .memory(let b): return b
    case .file(let p): return try readCapped(p, max: documentMax, what: what)
    case .store: return try store.readBlob(s.digest, what: what)
    }
}

/// The first bytes of a staged blob (to tell its compression).
func head(of s: Staged, store: ImageStore) -> [UInt8] {
    switch s.place {
    case .memory(let b): return Array(b.prefix(8))
    case .file(let p): return readHead(p)
    case .store: return readHead(store.blobPath(s.digest))
    }
}

func readHead(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var b = [UInt8](repeating: 0, count: 8)
    let n = read(fd, &b, 8)
    return n > 0 ? Array(b[0..<n]) : []
}

/// An image a load found, checked, not yet in the store.
struct PlannedImage {
    var names: [Reference]
    var manifestDesc: Descriptor
    var manifest: Staged
    var config: ImageConfig
    var configBlob: Staged
    var layers: [Staged]
    var label: String
}

extension ImageStore {
    /// Loads every image of the archive (a file, "-" for stdin, or a layout
    /// directory) into the store.
    public func load(path: String, options: LoadOptions = LoadOptions()) throws -> [LoadedImage] {
        try naming(path == "-" ? "stdin" : path) { try loadUnnamed(path: path, options: options) }
    }

    func loadUnnamed(path: String, options: LoadOptions) throws -> [LoadedImage] {
        try create()
        let hold = try StoreLock.acquire(gcLockPath, exclusive: false)
        defer { hold.release() }
        let work = try beginWork()
        defer { work.finish() }
        let t0 = Clock.monotonicSeconds()
        let source: ImageSource
        if path != "-" && FS.isDirectory(path) {
            source = LayoutSource(dir: path, store: self, work: work)
        } else {
            let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open") }
            defer { if fd != 0 { close(fd) } }
            source = try ArchiveSource(fd: fd, name: path == "-" ? "stdin" : path, store: self, work: work)
        }
        let plans = try plan(source, options: options)
        let t1 = Clock.monotonicSeconds()
        Log.debugLine("load \(path): archive read and blobs verified in \(ms(t1 - t0)) ms")
        try install(plans, work: work)
        Log.debugLine("load \(path): layers unpacked and committed in \(ms(Clock.monotonicSeconds() - t1)) ms")
        return plans.map { LoadedImage(id: $0.configBlob.digest, manifestDigest: $0.manifestDesc.digest, references: $0.names) }
    }

    /// Runs `body`, whose failures all name `file` (the archive) first.
    func naming<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var f as Failure {
            if !f.what.hasPrefix(file) { f.what = Log.oneLine(file + ": " + f.what, max: Log.maxError) }
            throw f
        }
    }

    /// Unpacks the planned images' layers, then puts blobs, layers and
    /// references into the store.
    func install(_ plans: [PlannedImage], work: Work) throws {
        var job = UnpackJob(store: self, work: work)
        try job.lockChains(Set(plans.flatMap { chainIDs($0.config.diffIDs) }))
        defer { job.releaseLocks() }
        var images: [(layers: [(digest: Digest, path: String, what: String)], diffIDs: [Digest])] = []
        for p in plans {
            var layers: [(digest: Digest, path: String, what: String)] = []
            for (i, l) in p.layers.enumerated() {
                layers.append((l.digest, try materialise(l, work: work, what: "\(p.label): layer \(i + 1)"), p.label))
            }
            images.append((layers, p.config.diffIDs))
        }
        try job.unpack(images)
        try withMetadataLock {
            for p in plans {
                for s in [p.manifest, p.configBlob] + p.layers { try place(s, work: work) }
            }
            try job.commitLayers()
            var idx = try readIndex()
            for p in plans {
                addImage(&idx, manifest: p.manifestDesc, id: p.configBlob.digest, platform: p.config.platform, names: p.names)
            }
            try writeIndex(idx)
        }
    }

    /// The path of a staged blob's file (a small one is written out first).
    func materialise(_ s: Staged, work: Work, what: String) throws -> String {
        switch s.place {
        case .file(let p): return p
        case .store: return blobPath(s.digest)
        case .memory(let b):
            let p = work.path("blob")
            let w = try BlobWriter(path: p, what: what)
            do {
                try b.withUnsafeBytes { try w.write($0) }
                _ = try w.finish()
            } catch { w.abandon(); throw error }
            return p
        }
    }

    /// Renames a verified blob into blobs/ (one there already wins). Under
    /// the metadata lock.
    func place(_ s: Staged, work: Work) throws {
        if hasBlob(s.digest) { return }
        let src: String
        switch s.place {
        case .store: throw Failure(.failed, "blob \(s.digest) vanished from the store")
        case .file(let p): src = p
        case .memory: src = try materialise(s, work: work, what: "blob \(s.digest)")
        }
        guard rename(src, blobPath(s.digest)) == 0 else { throw SysError("rename \(src) to \(blobPath(s.digest))") }
    }

    /// Points `names` at the manifest in index.json: an image a name moves
    /// away from stays, untagged, when nothing else names it; an image with
    /// names has no untagged entry.
    func addImage(_ idx: inout ImageIndex, manifest: Descriptor, id: Digest, platform: Platform?, names: [Reference]) {
        var base = Descriptor(mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size,
                              annotations: [ImageAnnotation.imageID: id.description], platform: platform)
        base.annotations[ImageAnnotation.refName] = nil
        for n in names.map({ $0.description }) {
            guard let i = idx.manifests.firstIndex(where: { $0.annotations[ImageAnnotation.refName] == n }) else { continue }
            let old = idx.manifests[i]
            if old.digest == manifest.digest { continue }
            idx.manifests.remove(at: i)
            if !idx.manifests.contains(where: { $0.digest == old.digest }) {
                var u = old
                u.annotations[ImageAnnotation.refName] = nil
                idx.manifests.append(u)
            }
        }
        if names.isEmpty {
            if !idx.manifests.contains(where: { $0.digest == manifest.digest }) { idx.manifests.append(base) }
            return
        }
        idx.manifests.removeAll { $0.digest == manifest.digest && $0.annotations[ImageAnnotation.refName] == nil }
        for n in names.map({ $0.description }) where !idx.manifests.contains(where: { $0.digest == manifest.digest && $0.annotations[ImageAnnotation.refName] == n }) {
            var e = base
            e.annotations[ImageAnnotation.refName] = n
            idx.manifests.append(e)
        }
    }

    // MARK: - Planning

    /// The images of the source, checked: media types, sizes, digests, the
    /// config and its layers.
    func plan(_ src: ImageSource, options: LoadOptions) throws -> [PlannedImage] {
        let dockerManifest = try src.document("manifest.json").map { try DockerArchiveEntry.decode($0, file: "\(src.name): manifest.json") }
        if let ib = try src.document("index.json") {
            return try planOCI(src, index: ImageIndex.decode(ib, file: "\(src.name): index.json"), docker: dockerManifest, options: options)
        }
        if let entries = dockerManifest { return try planDocker(src, entries: entries, options: options) }
        throw Failure(.invalid, "\(src.name): neither a docker-archive (no manifest.json) nor an OCI archive or layout (no index.json)")
    }

    /// An OCI index's images (one per platform-selected manifest).
    func planOCI(_ src: ImageSource, index: ImageIndex, docker: [DockerArchiveEntry]?, options: LoadOptions) throws -> [PlannedImage] {
        var plans: [PlannedImage] = []
        var skipped: [String] = []
        for (i, d) in index.manifests.enumerated() {
            let at = "\(src.name): index.json: manifests[\(i)]"
            if let p = d.platform, !p.serves(options.platform) { skipped.append(p.description); continue }
            var names = try referenceNames(d.annotations, what: at)
            let m = try selectManifest(src, d, options: options, what: at, depth: 0)
            var plan = try planManifest(src, m, names: names, options: options, what: at)
            if names.isEmpty, let entries = docker,
               let e = entries.first(where: { cleanArchivePath($0.config) == "blobs/sha256/" + plan.configBlob.digest.hex }) {
                names = try e.repoTags.map { try parseName($0, what: "\(src.name): manifest.json: RepoTags") }
                plan.names = names
                plan.label = names.first?.familiar ?? plan.label
            }
            if let j = plans.firstIndex(where: { $0.manifestDesc.digest == plan.manifestDesc.digest }) {
                for n in plan.names where !plans[j].names.contains(n) { plans[j].names.append(n) }
            } else {
                plans.append(plan)
            }
        }
        if plans.isEmpty {
            if !skipped.isEmpty {
                throw Failure(.invalid, "\(src.name): no image for platform \(options.platform) (it has \(skipped.joined(separator: ", ")))")
            }
            throw Failure(.invalid, "\(src.name): index.json lists no images")
        }
        return plans
    }

    /// The image manifest a descriptor leads to, choosing the platform in
    /// an index.
    func selectManifest(_ src: ImageSource, _ d: Descriptor, options: LoadOptions, what: String, depth: Int) throws -> Descriptor {
        if MediaType.manifests.contains(d.mediaType) { return d }
        guard MediaType.indexes.contains(d.mediaType) else {
            throw Failure(.invalid, "\(what): \(MediaType.refusal(d.mediaType, as: "manifest") ?? "unsupported")")
        }
        guard depth < 4 else { throw Failure(.invalid, "\(what): indexes nested more than 4 deep") }
        let blob = try need(src, d, what: "\(what): index")
        let name = "\(src.name): blobs/sha256/\(d.digest.hex)"
        let idx = try ImageIndex.decode(try bytes(of: blob, store: self, what: name), file: name)
        var have: [String] = []
        for (i, m) in idx.manifests.enumerated() {
            guard let p = m.platform else { continue }
            if p.os == "unknown" { continue }
            have.append(p.description)
            if p.serves(options.platform) {
                return try selectManifest(src, m, options: options, what: "\(name): manifests[\(i)]", depth: depth + 1)
            }
        }
        throw Failure(.invalid, "\(what): no image for platform \(options.platform) in index \(d.digest) (it has \(have.isEmpty ? "none" : have.joined(separator: ", ")))")
    }

    /// A blob the archive must have, of the size its descriptor says.
    func need(_ src: ImageSource, _ d: Descriptor, what: String) throws -> Staged {
        guard let s = try src.blob(d.digest) else {
            throw Failure(.invalid, "\(what) \(d.digest) is not in the archive")
        }
        guard s.size == d.size else {
            throw Failure(.invalid, "\(what) \(d.digest): size mismatch: the descriptor says \(d.size) bytes, the blob has \(s.size)")
        }
        return s
    }

    func planManifest(_ src: ImageSource, _ d: Descriptor, names: [Reference], options: LoadOptions, what: String) throws -> PlannedImage {
        let ms = try need(src, d, what: "\(what): manifest")
        let mname = "\(src.name): blobs/sha256/\(d.digest.hex)"
        let m = try ImageManifest.decode(try bytes(of: ms, store: self, what: mname), file: mname, expectedType: d.mediaType)
        let label = names.first?.familiar ?? "image \(d.digest)"
        let cs = try need(src, m.config, what: "\(label): config")
        let cname = "\(src.name): blobs/sha256/\(m.config.digest.hex)"
        let config = try ImageConfig.decode(try bytes(of: cs, store: self, what: cname), file: cname)
        try checkConfig(config, layers: m.layers.count, what: "\(src.name): \(label)", options: options)
        var layers: [Staged] = []
        for (i, l) in m.layers.enumerated() { layers.append(try need(src, l, what: "\(src.name): \(label): layer \(i + 1)")) }
        var desc = d
        desc.annotations = [:]
        desc.platform = nil
        return PlannedImage(names: names, manifestDesc: desc, manifest: ms, config: config, configBlob: cs, layers: layers,
                            label: "\(src.name): \(label)")
    }

    func checkConfig(_ c: ImageConfig, layers: Int, what: String, options: LoadOptions) throws {
        guard c.diffIDs.count == layers else {
            throw Failure(.invalid, "\(what): the config lists \(c.diffIDs.count) layers (rootfs.diff_ids), the manifest \(layers)")
        }
        if options.platformGiven && !c.platform.serves(options.platform) {
            throw Failure(.invalid, "\(what): the image is for \(c.platform), not \(options.platform)")
        }
    }

    /// docker-archive: manifest.json's entries, each a config file and
    /// layer files; the manifest is made here (OCI, the layers' media types
    /// from their content).
    func planDocker(_ src: ImageSource, entries: [DockerArchiveEntry], options: LoadOptions) throws -> [PlannedImage] {
        var plans: [PlannedImage] = []
        for (i, e) in entries.enumerated() {
            let at = "\(src.name): manifest.json: [\(i)]"
            let names = try e.repoTags.map { try parseName($0, what: "\(at).RepoTags") }
            let label = names.first?.familiar ?? "image \(i + 1)"
            guard let cs = try src.file(e.config) else { throw Failure(.invalid, "\(at).Config: \(quoted(e.config, max: 200)) is not in the archive") }
            let stem = e.config.split(separator: "/").last.map { String($0) }.map { $0.hasSuffix(".json") ? String($0.dropLast(5)) : $0 } ?? ""
            if Digest("sha256:" + stem) != nil, cs.digest.hex != stem {
                throw Failure(.invalid, "\(src.name): \(e.config): digest mismatch: the content is \(cs.digest)")
            }
            let config = try ImageConfig.decode(try bytes(of: cs, store: self, what: "\(src.name): \(e.config)"), file: "\(src.name): \(e.config)")
            try checkConfig(config, layers: e.layers.count, what: "\(src.name): \(label)", options: options)
            var layers: [Staged] = []
            var descs: [Descriptor] = []
            for (j, lp) in e.layers.enumerated() {
                guard let ls = try src.file(lp) else {
                    throw Failure(.invalid, "\(at).Layers[\(j)]: \(quoted(lp, max: 200)) is not in the archive")
                }
                layers.append(ls)
                descs.append(Descriptor(mediaType: MediaType.layer(Compression.sniff(head(of: ls, store: self))), digest: ls.digest, size: ls.size))
            }
            let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cs.digest, size: cs.size), layers: descs)
            let mb = Array(manifest.json().compact().utf8)
            let md = Digest.of(mb)
            let desc = Descriptor(mediaType: MediaType.ociManifest, digest: md, size: Int64(mb.count))
            if let j = plans.firstIndex(where: { $0.manifestDesc.digest == md }) {
                for n in names where !plans[j].names.contains(n) { plans[j].names.append(n) }
                continue
            }
            plans.append(PlannedImage(names: names, manifestDesc: desc, manifest: Staged(digest: md, size: Int64(mb.count), place: .memory(mb)),
                                      config: config, configBlob: cs, layers: layers, label: "\(src.name): \(label)"))
        }
        guard !plans.isEmpty else { throw Failure(.invalid, "\(src.name): manifest.json lists no images") }
        return plans
    }

    /// The names an index entry gives its image: containerd's full name, or
    /// ref.name when it is a whole reference (`docker.io/library/x:1`,
    /// `x:1`); a bare ref.name (`latest`) is only a tag, and names nothing.
    func referenceNames(_ a: [String: String], what: String) throws -> [Reference] {
        if let n = a[ImageAnnotation.containerdName] { return [try parseName(n, what: "\(what).annotations[\(ImageAnnotation.containerdName)]")] }
        if let n = a[ImageAnnotation.refName], n.holdsByte("/") || n.holdsByte(":") || n.holdsByte("@") {
            return [try parseName(n, what: "\(what).annotations[\(ImageAnnotation.refName)]")]
        }
        return []
    }

    func parseName(_ s: String, what: String) throws -> Reference {
        do {
            return try Reference.parse(s)
        } catch let f as Failure {
            throw Failure(.invalid, "\(what): \(f.what)")
        }
    }
}
