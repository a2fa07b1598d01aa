import Glibc
import JSON
import Spec
import Sys

// `save`: images out as an archive, written as a stream by our own ustar
// writer (every name we write is under 100 bytes; sizes of 8 GiB and more
// use the base-256 form GNU tar and libarchive read).
//
// - oci-archive (the default): oci-layout, index.json (each reference as
//   ref.name and io.containerd.image.name, both the full name, so skopeo's
//   `oci-archive:F:docker.io/library/x:1` and Docker 25's load find it),
//   and the blobs as stored.
// - docker-archive: Docker 25's form, which every docker load reads:
//   manifest.json (Config, RepoTags, Layers pointing into blobs/) beside an
//   OCI layout whose manifest has the layers uncompressed, as docker-archive
//   wants them (a compressed stored layer is decompressed on the way out).

public enum ArchiveFormat: String {
    case oci = "oci-archive"
    case docker = "docker-archive"
}

/// A ustar stream onto a file descriptor.
final class TarWriter {
    let fd: Int32
    let what: String
    private var buf: [UInt8] = []
    private let flushAt = 1 << 20

    init(fd: Int32, what: String) {
        self.fd = fd
        self.what = what
        buf.reserveCapacity(flushAt + 4096)
    }

    static func header(name: String, size: Int64, mode: Int, type: UInt8) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ off: Int, _ len: Int) {
            for (i, b) in s.utf8.prefix(len).enumerated() { h[off + i] = b }
        }
        func octal(_ v: Int64, _ off: Int, _ len: Int) {
            var s = String(v, radix: 8)
            while s.count < len - 1 { s = "0" + s }
            put(s, off, len - 1)
        }
        precondition(name.utf8.count <= 100)
        put(name, 0, 100)
        octal(Int64(mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        if size < 0o77777777777 {
            octal(size, 124, 12)
        } else {
            h[124] = 0x80
            var v = size
            for i in stride(from: 135, to: 124, by: -1) { h[i] = UInt8(v & 0xff); v >>= 8 }
        }
        octal(0, 136, 12)
        for i in 148..<156 { h[i] = 32 }
        h[156] = type
        put("ustar", 257, 6)
        put("00", 263, 2)
        put("root", 265, 32)
        put("root", 297, 32)
        let sum = h.reduce(0) { $0 + Int($1) }
        var s = String(sum, radix: 8)
        while s.count < 6 { s = "0" + s }
        put(s, 148, 6)
        h[154] = 0
        h[155] = 32
        return h
    }

    private func flush() throws {
        try FS.writeAll(fd: fd, buf, what: what)
        buf.removeAll(keepingCapacity: true)
    }

    private func append(_ b: UnsafeRawBufferPointer) throws {
        if buf.count + b.count > flushAt {
            try flush()
            if b.count >= flushAt {
                var off = 0
                while off < b.count {
                    let n = write(fd, b.baseAddress! + off, b.count - off)
                    if n < 0 { if errno == EINTR { continue }; throw SysError(what) }
                    off += n
                }
                return
            }
        }
        buf.append(contentsOf: b)
    }

    private func pad(_ size: Int64) throws {
        let r = Int(size % 512)
        if r != 0 { try [UInt8](repeating: 0, count: 512 - r).withUnsafeBytes { try append($0) } }
    }

    func directory(_ name: String) throws {
        try TarWriter.header(name: name, size: 0, mode: 0o755, type: UInt8(ascii: "5")).withUnsafeBytes { try append($0) }
    }

    func file(_ name: String, _ bytes: [UInt8]) throws {
        try TarWriter.header(name: name, size: Int64(bytes.count), mode: 0o644, type: UInt8(ascii: "0")).withUnsafeBytes { try append($0) }
        try bytes.withUnsafeBytes { try append($0) }
        try pad(Int64(bytes.count))
    }

    /// A file of `size` bytes that `body` produces, by calls to `emit`.
    func file(_ name: String, size: Int64, _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try TarWriter.header(name: name, size: size, mode: 0o644, type: UInt8(ascii: "0")).withUnsafeBytes { try append($0) }
        var written: Int64 = 0
        try body { chunk in
            written += Int64(chunk.count)
            guard written <= size else { throw Failure(.failed, "\(name): more than the \(size) bytes expected") }
            try append(chunk)
        }
        guard written == size else { throw Failure(.failed, "\(name): \(written) bytes, \(size) expected") }
        try pad(size)
    }

    func finish() throws {
        try [UInt8](repeating: 0, count: 1024).withUnsafeBytes { try append($0) }
        try flush()
    }
}

/// Reads a file in big chunks.
func streamFile(_ path: String, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SysError("open \(path)") }
    defer { close(fd) }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: copyBuffer, alignment: 4096)
    defer { buf.deallocate() }
    while true {
        let n = read(fd, buf.baseAddress, buf.count)
        if n < 0 { if errno == EINTR { continue }; throw SysError("read \(path)") }
        if n == 0 { return }
        try emit(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
    }
}

/// Decompresses a (gzip or zstd) blob file as a stream (the unpacker's
/// StreamDecoder), with the uncompressed stream's digest and size.
func streamDecompressed(_ path: String, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> (Digest, Int64) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SysError("open \(path)") }
    defer { close(fd) }
    let dec = try StreamDecoder(fd: fd, what: path, hashRaw: false)
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: copyBuffer, alignment: 4096)
    defer { buf.deallocate() }
    while true {
        let n = try dec.read(into: buf.baseAddress!, capacity: buf.count)
        if n == 0 { break }
        try emit(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
    }
    let r = try dec.finish(scratch: buf.baseAddress!, capacity: buf.count)
    return (r.digest, r.size)
}

extension ImageStore {
    /// Writes the images `refs` name as one archive onto `fd`.
    public func save(_ refs: [String], to fd: Int32, format: ArchiveFormat, what: String) throws {
        guard exists, let hold = try sharedGC() else { throw Failure(.notFound, "no such image: \(refs.first ?? "")") }
        defer { hold.release() }
        let idx = try readIndex()
        // Each image once, with the names it was asked by.
        var images: [(ResolvedImage, [Reference])] = []
        for r in refs {
            guard let hit = try find(r, in: idx) else { throw Failure(.notFound, "no such image: \(r)") }
            let img = try image(hit.desc, refs: hit.refs)
            var name: Reference?
            if let m = hit.matched {
                name = m
                if m.digest != nil, m.tag == nil { name = nil }
            }
            if let i = images.firstIndex(where: { $0.0.manifestDigest == img.manifestDigest }) {
                if let n = name, !images[i].1.contains(n) { images[i].1.append(n) }
            } else {
                images.append((img, name.map { [$0] } ?? []))
            }
        }
        let tar = TarWriter(fd: fd, what: what)
        var written = Set<Digest>()
        try tar.file("oci-layout", Array("{\"imageLayoutVersion\":\"1.0.0\"}".utf8))
        try tar.directory("blobs/")
        try tar.directory("blobs/sha256/")
        var index = ImageIndex(manifests: [])
        var dockerEntries: [DockerArchiveEntry] = []

        func blob(_ d: Digest) throws {
            guard !written.contains(d) else { return }
            written.insert(d)
            var st = stat()
            guard stat(blobPath(d), &st) == 0 else { throw SysError("stat \(blobPath(d))") }
            try tar.file("blobs/sha256/" + d.hex, size: Int64(st.st_size)) { emit in try streamFile(blobPath(d), emit) }
        }

        for (img, names) in images {
            let desc: Descriptor
            switch format {
            case .oci:
                try blob(img.manifestDigest)
                try blob(img.manifest.config.digest)
                for l in img.manifest.layers { try blob(l.digest) }
                var st = stat()
                _ = stat(blobPath(img.manifestDigest), &st)
                desc = Descriptor(mediaType: img.manifest.mediaType, digest: img.manifestDigest, size: Int64(st.st_size))
            case .docker:
                try blob(img.manifest.config.digest)
                var layers: [Descriptor] = []
                for (i, l) in img.manifest.layers.enumerated() {
                    let diff = img.config.diffIDs[i]
                    if Compression.sniff(readHead(blobPath(l.digest))) == .none {
                        try blob(l.digest)
                        layers.append(Descriptor(mediaType: MediaType.ociLayer, digest: l.digest, size: l.size))
                        continue
                    }
                    guard let size = layerInfo(img.chainIDs[i])?.size else {
                        throw Failure(.failed, "layer \(img.chainIDs[i]) has no layer.json (its uncompressed size)")
                    }
                    layers.append(Descriptor(mediaType: MediaType.ociLayer, digest: diff, size: size))
                    guard !written.contains(diff) else { continue }
                    written.insert(diff)
                    let path = blobPath(l.digest)
                    try tar.file("blobs/sha256/" + diff.hex, size: size) { emit in
                        let (got, n) = try streamDecompressed(path, emit)
                        guard got == diff, n == size else {
                            throw Failure(.invalid, "\(path): decompressed it is \(got) (\(n) bytes), the config says \(diff) (\(size))")
                        }
                    }
                }
                let m = ImageManifest(config: img.manifest.config, layers: layers)
                let mb = Array(m.json().compact().utf8)
                let md = Digest.of(mb)
                if !written.contains(md) {
                    written.insert(md)
                    try tar.file("blobs/sha256/" + md.hex, mb)
                }
                desc = Descriptor(mediaType: MediaType.ociManifest, digest: md, size: Int64(mb.count))
                dockerEntries.append(DockerArchiveEntry(config: "blobs/sha256/" + img.manifest.config.digest.hex,
                                                        repoTags: names.filter { $0.tag != nil }.map { Reference(domain: $0.domain, path: $0.path, tag: $0.tag, digest: nil).familiar },
                                                        layers: layers.map { "blobs/sha256/" + $0.digest.hex }))
            }
            if names.isEmpty {
                index.manifests.append(desc)
            }
            for n in names {
                var d = desc
                d.annotations = [ImageAnnotation.refName: n.description, ImageAnnotation.containerdName: n.description]
                index.manifests.append(d)
            }
        }
        try tar.file("index.json", Array(index.json().compact().utf8))
        if format == .docker {
            try tar.file("manifest.json", Array(JSONValue.array(dockerEntries.map { $0.json() }).compact().utf8))
        }
        try tar.finish()
    }
}
