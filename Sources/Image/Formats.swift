import JSON
import Spec
import Sys

// The image formats we read and write, decoded by hand from the JSON
// module's JSONValue with errors that name the file and the key path
// (`d.tar: manifest.json: [0].Layers[1]: expected string, found integer`):
// the OCI image index, manifest and config, their Docker schema2 twins, and
// docker-archive's manifest.json. Only what the store needs is kept; the
// blobs themselves stay byte for byte as they came.

public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    public static let indexes: Set<String> = [ociIndex, dockerList]
    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    public static let configs: Set<String> = [ociConfig, dockerConfig]
    public static let layers: Set<String> = [ociLayer, ociLayerGzip, ociLayerZstd, dockerLayer, dockerLayerGzip]

    /// Why a media type is refused where a manifest, config or layer was
    /// expected; nil when it is one we take.
    public static func refusal(_ type: String, as role: String) -> String? {
        let allowed: Set<String>
        switch role {
        case "manifest": allowed = manifests.union(indexes)
        case "config": allowed = configs
        default: allowed = layers
        }
        if allowed.contains(type) { return nil }
        if type.hasPrefix("application/vnd.docker.distribution.manifest.v1") {
            return "unsupported media type \(quoted(type)): Docker schema 1 manifests are not supported (convert the image with skopeo copy)"
        }
        if type.contains("nondistributable") || type.contains("foreign") {
            return "unsupported media type \(quoted(type)): foreign (non-distributable) layers are not supported"
        }
        return "unsupported media type \(quoted(type)) for a \(role)"
    }

    /// The layer media type for a blob of this compression.
    public static func layer(_ c: Compression) -> String {
        switch c {
        case .none: return ociLayer
        case .gzip: return ociLayerGzip
        case .zstd: return ociLayerZstd
        }
    }
}

/// The annotation keys of image layouts (OCI, containerd), and ours that
/// image indexes and GC read (the same string as Spec's Annotation.imageID).
public enum ImageAnnotation {
    public static let refName = "org.opencontainers.image.ref.name"
    /// containerd's (and Docker 25's) full image name beside ref.name's tag.
    public static let containerdName = "io.containerd.image.name"
    /// The image id (config digest) in a run-mode container's config.json,
    /// and beside each image in our index.json.
    public static var imageID: String { Annotation.imageID }
}

// MARK: - Reading JSONValue with paths

/// A value and where it is in its document, for error messages.
struct Node {
    let value: JSONValue
    let path: String
    let file: String

    init(_ value: JSONValue, path: String = "", file: String) {
        self.value = value
        self.path = path
        self.file = file
    }

    func fail(_ message: String) -> JSONError { JSONError(file: file, path: path, message: message) }

    func child(_ key: String, _ v: JSONValue) -> Node { Node(v, path: path.isEmpty ? key : path + "." + key, file: file) }

    var isNull: Bool { if case .null = value { return true }; return false }

    func object() throws -> JSONObject {
        guard case .object(let o) = value else { throw fail("expected object, found \(value.kindName)") }
        return o
    }

    /// The property; nil when absent or null.
    func optional(_ key: String) throws -> Node? {
        guard let v = try object()[key] else { return nil }
        if case .null = v { return nil }
        return child(key, v)
    }

    func required(_ key: String) throws -> Node {
        guard let v = try object()[key] else {
            throw JSONError(file: file, path: path.isEmpty ? key : path + "." + key, message: "required property missing")
        }
        return child(key, v)
    }

    func array() throws -> [Node] {
        guard case .array(let a) = value else { throw fail("expected array, found \(value.kindName)") }
        return a.enumerated().map { Node($0.element, path: path + "[\($0.offset)]", file: file) }
    }

    func string() throws -> String {
        guard case .string(let s) = value else { throw fail("expected string, found \(value.kindName)") }
        return s
    }

    func int64() throws -> Int64 {
        switch value {
        case .int(let i): return i
        case .uint: throw fail("integer out of range")
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: throw fail("expected integer, found \(value.kindName)")
        }
    }

    func strings() throws -> [String] { try array().map { try $0.string() } }

    func stringMap() throws -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in try object().entries {
            if case .null = v { continue }
            out[k] = try child(k, v).string()
        }
        return out
    }

    /// An object used as a set (`ExposedPorts`, `Volumes`): its keys.
    func keySet() throws -> [String] { try object().keys }

    func digest() throws -> Digest {
        let s = try string()
        guard let d = Digest(s), d.description == s else {
            if s.hasPrefix("sha256:") || !s.contains(":") {
                throw fail("invalid digest \(quoted(s, max: 100)): expected sha256: and 64 lowercase hex digits")
            }
            throw fail("unsupported digest algorithm in \(quoted(s, max: 100)) (only sha256)")
        }
        return d
    }
}

func parseJSON(_ bytes: [UInt8], file: String) throws -> Node {
    Node(try JSONValue.parse(bytes, file: file), file: file)
}

// MARK: - Descriptors, indexes, manifests

public struct Platform: Equatable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// linux/amd64: what this runtime runs (the only host it builds for).
    public static let host = Platform(os: "linux", architecture: "amd64")

    public var description: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }

    /// `os/arch[/variant]`, as --platform takes it.
    public static func parse(_ text: String) throws -> Platform {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { isAlnum($0) || $0 == 95 || $0 == 45 || $0 == 46 } }) else {
            throw Failure(.usage, "--platform must be os/arch[/variant] (linux/amd64, linux/arm64/v8), not \(quoted(text, max: 80))")
        }
        return Platform(os: parts[0].lowercased(), architecture: normalArch(parts[1].lowercased()),
                        variant: parts.count == 3 ? parts[2].lowercased() : nil)
    }

    static func normalArch(_ a: String) -> String {
        switch a {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        default: return a
        }
    }

    /// Whether an image for `self` (from an index or a config) serves a
    /// request for `want`: os and architecture equal; the variant when
    /// asked for (arm64's v8 is its default).
    public func serves(_ want: Platform) -> Bool {
        guard os == want.os, Platform.normalArch(architecture) == want.architecture else { return false }
        guard let v = want.variant else { return true }
        let mine = variant ?? (want.architecture == "arm64" ? "v8" : nil)
        return mine == v
    }

    func json() -> JSONValue {
        var o = JSONObject()
        o["architecture"] = .string(architecture)
        o["os"] = .string(os)
        if let v = variant { o["variant"] = .string(v) }
        return .object(o)
    }
}

public struct Descriptor: Equatable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var annotations: [String: String] = [:]
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String] = [:], platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }

    init(_ n: Node) throws {
        mediaType = try n.required("mediaType").string()
        digest = try n.required("digest").digest()
        let sz = try n.required("size")
        size = try sz.int64()
        guard size >= 0 else { throw sz.fail("negative size") }
        annotations = try n.optional("annotations")?.stringMap() ?? [:]
        if let p = try n.optional("platform") {
            platform = Platform(os: try p.required("os").string(), architecture: try p.required("architecture").string(),
                                variant: try p.optional("variant")?.string())
        }
    }

    public func json() -> JSONValue {
        var o = JSONObject()
        o["mediaType"] = .string(mediaType)
        o["digest"] = .string(digest.description)
        o["size"] = .int(size)
        if !annotations.isEmpty {
            var a = JSONObject()
            for k in annotations.keys.sorted() { a[k] = .string(annotations[k]!) }
            o["annotations"] = .object(a)
        }
        if let p = platform { o["platform"] = p.json() }
        return .object(o)
    }
}

/// An OCI image index (or a Docker manifest list): index.json or a blob.
public struct ImageIndex {
    public var mediaType: String?
    public var manifests: [Descriptor]

    public init(mediaType: String? = MediaType.ociIndex, manifests: [Descriptor]) {
        self.mediaType = mediaType
        self.manifests = manifests
    }

    public static func decode(_ bytes: [UInt8], file: String) throws -> ImageIndex {
        let n = try parseJSON(bytes, file: file)
        let v = try n.required("schemaVersion")
        guard try v.int64() == 2 else { throw v.fail("unsupported schemaVersion \(try v.int64()) (only 2)") }
        let mt = try n.optional("mediaType")?.string()
        if let m = mt, !MediaType.indexes.contains(m) {
            throw n.child("mediaType", .string(m)).fail(MediaType.refusal(m, as: "index") ?? "not an index")
        }
        let ms = try n.optional("manifests")?.array() ?? []
        return ImageIndex(mediaType: mt, manifests: try ms.map { try Descriptor($0) })
    }

    public func json() -> JSONValue {
        var o = JSONObject()
        o["schemaVersion"] = .int(2)
        if let m = mediaType { o["mediaType"] = .string(m) }
        o["manifests"] = .array(manifests.map { $0.json() })
        return .object(o)
    }
}

/// An image manifest: OCI, or Docker schema2 (the same shape).
public struct ImageManifest {
    public var mediaType: String
    public var config: Descriptor
    public var layers: [Descriptor]

    public init(mediaType: String = MediaType.ociManifest, config: Descriptor, layers: [Descriptor]) {
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }

    /// `expectedType` is the media type its descriptor gave (used when the
    /// manifest itself names none, as OCI allows).
    public static func decode(_ bytes: [UInt8], file: String, expectedType: String? = nil) throws -> ImageManifest {
        let n = try parseJSON(bytes, file: file)
        if let m = try n.optional("mediaType")?.string(), let why = MediaType.refusal(m, as: "manifest") {
            throw n.child("mediaType", .string(m)).fail(why)
        }
        let v = try n.required("schemaVersion")
        let version = try v.int64()
        if version == 1 {
            throw v.fail(MediaType.refusal("application/vnd.docker.distribution.manifest.v1+json", as: "manifest")!)
        }
        guard version == 2 else { throw v.fail("unsupported schemaVersion \(version) (only 2)") }
        let mt = try n.optional("mediaType")?.string() ?? expectedType ?? MediaType.ociManifest
        let hasManifests = try n.optional("manifests") != nil
        if MediaType.indexes.contains(mt) || hasManifests {
            throw n.fail("an image index where an image manifest was expected")
        }
        let cn = try n.required("config")
        let config = try Descriptor(cn)
        if let why = MediaType.refusal(config.mediaType, as: "config") {
            throw cn.child("mediaType", .string(config.mediaType)).fail(why)
        }
        var layers: [Descriptor] = []
        for l in try n.required("layers").array() {
            let d = try Descriptor(l)
            if let why = MediaType.refusal(d.mediaType, as: "layer") {
                throw l.child("mediaType", .string(d.mediaType)).fail(why)
            }
            layers.append(d)
        }
        return ImageManifest(mediaType: mt, config: config, layers: layers)
    }

    public func json() -> JSONValue {
        var o = JSONObject()
        o["schemaVersion"] = .int(2)
        o["mediaType"] = .string(mediaType)
        o["config"] = config.json()
        o["layers"] = .array(layers.map { $0.json() })
        return .object(o)
    }
}

// MARK: - The image config

public struct HistoryEntry: Equatable {
    public var created: String?
    public var createdBy: String?
    public var comment: String?
    public var emptyLayer: Bool
}

/// The image config blob (OCI and Docker agree on these fields), with the
/// `config` object's fields flattened in.
public struct ImageConfig: Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?
    /// RFC 3339, as written; nil when absent.
    public var created: String?
    public var author: String?
    /// Env, Entrypoint, Cmd, WorkingDir, User, StopSignal, Labels.
    public var run = ImageRunConfig()
    /// `80/tcp`, `53/udp`.
    public var exposedPorts: [String] = []
    public var volumes: [String] = []
    /// rootfs.diff_ids, bottom first.
    public var diffIDs: [Digest]
    public var history: [HistoryEntry] = []

    public init(architecture: String, os: String, diffIDs: [Digest]) {
        self.architecture = architecture
        self.os = os
        self.diffIDs = diffIDs
    }

    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }

    public static func decode(_ bytes: [UInt8], file: String) throws -> ImageConfig {
        let n = try parseJSON(bytes, file: file)
        let rootfs = try n.required("rootfs")
        let type = try rootfs.required("type")
        guard try type.string() == "layers" else { throw type.fail("unsupported rootfs type \(quoted(try type.string())) (only \"layers\")") }
        let diffs = try rootfs.optional("diff_ids")?.array().map { try $0.digest() } ?? []
        var c = ImageConfig(architecture: try n.optional("architecture")?.string() ?? "",
                            os: try n.optional("os")?.string() ?? "", diffIDs: diffs)
        c.variant = try n.optional("variant")?.string()
        c.created = try n.optional("created")?.string()
        c.author = try n.optional("author")?.string()
        if let cfg = try n.optional("config") {
            c.run.env = try cfg.optional("Env")?.strings() ?? []
            c.run.entrypoint = try cfg.optional("Entrypoint")?.strings()
            c.run.cmd = try cfg.optional("Cmd")?.strings()
            c.run.workingDir = try cfg.optional("WorkingDir")?.string()
            c.run.user = try cfg.optional("User")?.string()
            c.run.stopSignal = try cfg.optional("StopSignal")?.string()
            c.run.labels = try cfg.optional("Labels")?.stringMap() ?? [:]
            c.exposedPorts = try cfg.optional("ExposedPorts")?.keySet() ?? []
            c.volumes = try cfg.optional("Volumes")?.keySet() ?? []
        }
        for h in try n.optional("history")?.array() ?? [] {
            var empty = false
            if let e = try h.optional("empty_layer") {
                guard case .bool(let b) = e.value else { throw e.fail("expected boolean, found \(e.value.kindName)") }
                empty = b
            }
            c.history.append(HistoryEntry(created: try h.optional("created")?.string(), createdBy: try h.optional("created_by")?.string(),
                                          comment: try h.optional("comment")?.string(), emptyLayer: empty))
        }
        return c
    }

    /// The config as a document (for configs we make: import).
    public func json() -> JSONValue {
        var o = JSONObject()
        if let c = created { o["created"] = .string(c) }
        if let a = author { o["author"] = .string(a) }
        o["architecture"] = .string(architecture)
        o["os"] = .string(os)
        if let v = variant { o["variant"] = .string(v) }
        var cfg = JSONObject()
        if let u = run.user { cfg["User"] = .string(u) }
        if !exposedPorts.isEmpty { cfg["ExposedPorts"] = .object(JSONObject(exposedPorts.map { ($0, .object(JSONObject())) })) }
        if !run.env.isEmpty { cfg["Env"] = .array(run.env.map { .string($0) }) }
        if let e = run.entrypoint { cfg["Entrypoint"] = .array(e.map { .string($0) }) }
        if let c = run.cmd { cfg["Cmd"] = .array(c.map { .string($0) }) }
        if !volumes.isEmpty { cfg["Volumes"] = .object(JSONObject(volumes.map { ($0, .object(JSONObject())) })) }
        if let w = run.workingDir { cfg["WorkingDir"] = .string(w) }
        if !run.labels.isEmpty { cfg["Labels"] = .object(JSONObject(run.labels.keys.sorted().map { ($0, .string(run.labels[$0]!)) })) }
        if let s = run.stopSignal { cfg["StopSignal"] = .string(s) }
        o["config"] = .object(cfg)
        var rootfs = JSONObject()
        rootfs["type"] = .string("layers")
        rootfs["diff_ids"] = .array(diffIDs.map { .string($0.description) })
        o["rootfs"] = .object(rootfs)
        if !history.isEmpty {
            o["history"] = .array(history.map { h in
                var e = JSONObject()
                if let c = h.created { e["created"] = .string(c) }
                if let b = h.createdBy { e["created_by"] = .string(b) }
                if let c = h.comment { e["comment"] = .string(c) }
                if h.emptyLayer { e["empty_layer"] = .bool(true) }
                return .object(e)
            })
        }
        return .object(o)
    }
}

// MARK: - docker-archive

/// One entry of a docker-archive's manifest.json (`docker save`).
public struct DockerArchiveEntry: Equatable {
    /// Paths inside the archive.
    public var config: String
    public var repoTags: [String]
    public var layers: [String]

    public static func decode(_ bytes: [UInt8], file: String) throws -> [DockerArchiveEntry] {
        let n = try parseJSON(bytes, file: file)
        return try n.array().map { e in
            DockerArchiveEntry(config: try e.required("Config").string(),
                               repoTags: try e.optional("RepoTags")?.strings() ?? [],
                               layers: try e.required("Layers").strings())
        }
    }

    public func json() -> JSONValue {
        var o = JSONObject()
        o["Config"] = .string(config)
        o["RepoTags"] = .array(repoTags.map { .string($0) })
        o["Layers"] = .array(layers.map { .string($0) })
        return .object(o)
    }
}

/// ChainIDs of a stack of DiffIDs, bottom first (image-spec's definition:
/// ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))).
public func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
    var out: [Digest] = []
    out.reserveCapacity(diffIDs.count)
    for d in diffIDs {
        if let prev = out.last {
            out.append(Digest.of(Array((prev.description + " " + d.description).utf8)))
        } else {
            out.append(d)
        }
    }
    return out
}
