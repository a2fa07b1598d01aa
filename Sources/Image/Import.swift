import Glibc
import JSON
import Spec
import Sys

// `import TARBALL|- [REF]`: a flat root filesystem tar (plain, gzip or
// zstd) becomes a one-layer image, as `docker import` makes: the tarball
// is the layer blob as given, the config has no command (the run supplies
// one) and a history line naming the source.

public struct ImportOptions {
    public var reference: Reference?
    public var message: String?
    public var platform = Platform.host

    public init(reference: Reference? = nil, message: String? = nil) {
        self.reference = reference
        self.message = message
    }
}

extension ImageStore {
    public func importTarball(path: String, options: ImportOptions = ImportOptions()) throws -> LoadedImage {
        try naming(path == "-" ? "stdin" : path) { try importUnnamed(path: path, options: options) }
    }

    func importUnnamed(path: String, options: ImportOptions) throws -> LoadedImage {
        try create()
        let hold = try StoreLock.acquire(gcLockPath, exclusive: false)
        defer { hold.release() }
        let work = try beginWork()
        defer { work.finish() }
        let name = path == "-" ? "stdin" : path
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open") }
        defer { if fd != 0 { close(fd) } }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            throw Failure(.invalid, "\(name) is a directory: import takes a tar file (load takes an OCI layout directory)")
        }
        let blobFile = work.path("blob")
        let (digest, size) = try copyToBlob(fd: fd, path: blobFile, what: name)
        guard size > 0 else { throw Failure(.invalid, "\(name): empty") }
        let compression = Compression.sniff(readHead(blobFile))

        // The layer's DiffID is known only once it is unpacked.
        var job = UnpackJob(store: self, work: work)
        let tmp = work.path("layer")
        guard mkdir(tmp, 0o755) == 0, mkdir(tmp + "/root", 0o755) == 0 else { throw SysError("mkdir \(tmp)/root") }
        let lfd = open(blobFile, O_RDONLY | O_CLOEXEC)
        guard lfd >= 0 else { throw SysError("open \(blobFile)") }
        let result: LayerUnpackResult
        do {
            defer { close(lfd) }
            result = try LayerUnpack.unpack(fd: lfd, into: tmp + "/root", lower: [], what: name)
        }
        let now = rfc3339Now()
        var config = ImageConfig(architecture: options.platform.architecture, os: options.platform.os, diffIDs: [result.diffID])
        config.created = now
        config.history = [HistoryEntry(created: now, createdBy: "minicontainer import \(name == "stdin" ? "-" : name)",
                                       comment: options.message ?? "imported from \(name == "stdin" ? "stdin" : name)", emptyLayer: false)]
        let cb = Array(config.json().compact().utf8)
        let cd = Digest.of(cb)
        let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cd, size: Int64(cb.count)),
                                     layers: [Descriptor(mediaType: MediaType.layer(compression), digest: digest, size: size)])
        let mb = Array(manifest.json().compact().utf8)
        let md = Digest.of(mb)

        let chain = result.diffID
        try job.lockChains([chain])
        defer { job.releaseLocks() }
        try withMetadataLock {
            for s in [Staged(digest: md, size: Int64(mb.count), place: .memory(mb)),
                      Staged(digest: cd, size: Int64(cb.count), place: .memory(cb)),
                      Staged(digest: digest, size: size, place: .file(blobFile))] {
                try place(s, work: work)
            }
            if !FS.isDirectory(layerDir(chain)) {
                var info = JSONObject()
                info["chainID"] = .string(chain.description)
                info["diffID"] = .string(result.diffID.description)
                info["size"] = .int(result.size)
                info["blob"] = .string(digest.description)
                try FS.writeAtomically(tmp + "/layer.json", JSONValue.object(info).compact() + "\n")
                guard rename(tmp, layerDir(chain)) == 0 else { throw SysError("rename \(tmp) to \(layerDir(chain))") }
            }
            var idx = try readIndex()
            addImage(&idx, manifest: Descriptor(mediaType: MediaType.ociManifest, digest: md, size: Int64(mb.count)), id: cd,
                     platform: options.platform, names: options.reference.map { [$0] } ?? [])
            try writeIndex(idx)
        }
        _ = job
        return LoadedImage(id: cd, manifestDigest: md, references: options.reference.map { [$0] } ?? [])
    }
}
