import CCurl
import Glibc
import Image
import JSON
import Spec
import Sys

// `pull`: a reference -> its manifest (an index resolved to the platform's
// manifest), config and layers, into the store. Every document and blob is
// checked against its digest and size as it streams, before it enters the
// store. Up to 6 layers download at once; each unpacks (a thread) as soon
// as it is verified, and commits on its own (ImageIngest). A dropped or
// stalled download resumes with Range from what its partial file holds.

public struct PullOptions {
    public var platform: Platform?
    public var tlsVerify: Bool?
    public var certDir: String?
    public var authFile: String
    public var progress: ProgressMode = .plain
    public var env: (String) -> String? = Env.get

    public init(authFile: String) { self.authFile = authFile }
}

public struct PulledImage {
    public var id: Digest
    public var manifestDigest: Digest
    public var reference: Reference
}

/// Limits on what a registry may send.
enum PullLimits {
    /// Manifests and indexes (containers/image's limit).
    static let manifest = 4 << 20
    /// An image config.
    static let config = 16 << 20
    static let parallel = 6
}

/// Set by SIGINT/SIGTERM during a pull.
private let stopFlag: UnsafeMutablePointer<sig_atomic_t> = {
    let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    p.pointee = 0
    return p
}()

private func onStopSignal(_ sig: Int32) { stopFlag.pointee = 1 }

/// Catches Ctrl-C for the pull's duration.
func catchInterrupts() {
    var sa = sigaction()
    sa.__sigaction_handler.sa_handler = onStopSignal
    sigemptyset(&sa.sa_mask)
    sa.sa_flags = 0
    sigaction(SIGINT, &sa, nil)
    sigaction(SIGTERM, &sa, nil)
}

public final class Puller {
    let store: ImageStore
    let config: RegistryConfig
    let options: PullOptions
    let engine: HTTPEngine
    let progress: Progress
    private var clients: [String: RegistryClient] = [:]

    public init(store: ImageStore, config: RegistryConfig, options: PullOptions) throws {
        self.store = store
        self.config = config
        self.options = options
        var t = HTTPTimeouts()
        t.connect = config.connectTimeout
        t.stall = config.stallTimeout
        engine = try HTTPEngine(timeouts: t)
        progress = Progress(mode: options.progress)
    }

    var interrupted: Bool { stopFlag.pointee != 0 }

    /// The client for `host`: TLS settings from --tls-verify, the config's
    /// insecure list and the certificate directories; credentials from the
    /// auth file or Docker's config.
    func client(_ host: String, credential given: Credential? = nil) throws -> RegistryClient {
        if given == nil, let c = clients[host] { return c }
        if config.isBlocked(host) {
            throw Failure(.failed, "\(host) is blocked (registries.json: \"blocked\"): nothing is pulled from it")
        }
        var tls = TLSSettings()
        let insecure = options.tlsVerify == false || config.isInsecure(host)
        tls.verify = !insecure
        var dirs = ["/etc/containers/certs.d/" + host, "/etc/docker/certs.d/" + host]
        if let d = options.certDir { dirs.insert(d, at: 0) }
        for d in dirs where FS.isDirectory(d) {
            for name in FS.listDirectory(d).sorted() {
                let p = d + "/" + name
                if name.hasSuffix(".crt") {
                    guard let b = try? FS.readBytes(p), b.count < 1 << 20 else { continue }
                    tls.extraCAs += b + [0x0a]
                } else if name.hasSuffix(".cert"), tls.clientCert == nil {
                    let key = p.dropLast(5) + ".key"
                    if FS.exists(String(key)) { tls.clientCert = p; tls.clientKey = String(key) }
                }
            }
        }
        let cred = try given ?? lookupCredential(host: host, authFile: options.authFile, env: options.env, warn: { Log.warn($0) })
        let c = RegistryClient(host: host, tls: tls, insecure: insecure, credential: cred, engine: engine,
                               retryTimeout: config.retryTimeout, interrupted: { stopFlag.pointee != 0 })
        try c.ping()
        if given == nil { clients[host] = c }
        return c
    }

    /// `login`: checks `credential` against `host` (Basic: GET /v2/ with
    /// it; Bearer: a token from the realm with it).
    public func login(host: String, credential: Credential) throws {
        catchInterrupts()
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        let c = try client(host, credential: credential)
        guard c.hasChallenge else {
            throw Failure(.failed, "\(host) asks for no authentication (GET /v2/ answered 200): nothing to log in to")
        }
        if c.usesBasic {
            let r = try c.send(scope: "") { HTTPRequest("GET", "\(c.base)/v2/", maxBody: 64 << 10) }
            guard r.ok else { throw c.unauthorized(r, scope: "") }
        } else {
            _ = try c.authorization(scope: "")
        }
    }

    /// Pulls `text` (a user's reference: short names go through the
    /// default and search registries).
    public func pull(_ text: String) throws -> PulledImage {
        catchInterrupts()
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        let candidates = try config.candidates(text)
        var notFound: [String] = []
        for (i, ref) in candidates.enumerated() {
            do {
                return try pull(ref: ref)
            } catch let e as NotFound where i + 1 < candidates.count {
                notFound.append(e.what)
                continue
            } catch let e as NotFound {
                notFound.append(e.what)
                throw Failure(.notFound, notFound.count == 1 ? notFound[0] : "\(text): not found in any registry (\(notFound.joined(separator: "; ")))")
            }
        }
        throw Failure(.notFound, "\(text): no registry to pull from")
    }

    struct NotFound: Error { var what: String }

    // MARK: - Manifests

    /// The manifest `ref` names, for the platform.
    func resolve(_ ref: Reference, client c: RegistryClient) throws -> (bytes: [UInt8], mediaType: String, manifest: ImageManifest) {
        let scope = "repository:\(ref.path):pull"
        var want = ref.digest.map { $0.description } ?? ref.tag ?? "latest"
        var expected = ref.digest
        var expectedSize: Int64?
        let platform = options.platform ?? Platform.host
        for _ in 0..<5 {
            let r = try c.send(scope: scope) {
                HTTPRequest("GET", "\(c.base)/v2/\(ref.path)/manifests/\(want)", headers: ["Accept: " + acceptManifests], maxBody: PullLimits.manifest)
            }
            if r.status == 404 {
                throw NotFound(what: "\(ref): not found in \(c.host)\(c.errorDetail(r))")
            }
            guard r.ok else { throw Failure(.failed, "\(ref): the manifest: \(c.host) answered \(r.status)\(c.errorDetail(r))") }
            let bytes = r.body
            let d = Digest.of(bytes)
            if let e = expected, d != e {
                throw Failure(.invalid, "\(ref): the manifest's digest is \(d), not \(e) (digest mismatch)")
            }
            if expected == nil, let h = r.header("docker-content-digest"), let hd = Digest(h), hd != d {
                throw Failure(.invalid, "\(ref): the manifest's digest is \(d), but the registry says \(hd) (digest mismatch)")
            }
            if let s = expectedSize, Int64(bytes.count) != s {
                throw Failure(.invalid, "\(ref): the manifest has \(bytes.count) bytes, its descriptor says \(s)")
            }
            let type = try mediaType(of: r, bytes: bytes, ref: ref)
            if MediaType.manifests.contains(type) {
                let m = try ImageManifest.decode(bytes, file: "\(ref): manifest \(d)", expectedType: type)
                return (bytes, type, m)
            }
            // An index: the platform's manifest.
            let idx = try ImageIndex.decode(bytes, file: "\(ref): index \(d)")
            var have: [String] = []
            var chosen: Descriptor?
            for m in idx.manifests {
                guard let p = m.platform, p.os != "unknown" else { continue }
                have.append(p.description)
                if chosen == nil && p.serves(platform) { chosen = m }
            }
            guard let m = chosen else {
                throw Failure(.invalid, "\(ref): no image for platform \(platform) (the index has \(have.isEmpty ? "none" : have.joined(separator: ", ")))")
            }
            want = m.digest.description
            expected = m.digest
            expectedSize = m.size
        }
        throw Failure(.invalid, "\(ref): indexes nested more than 4 deep")
    }

    let acceptManifests = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest].joined(separator: ", ")

    /// The media type of a manifest answer: Content-Type, else the body's
    /// mediaType; schema 1 is refused here.
    func mediaType(of r: HTTPRequest, bytes: [UInt8], ref: Reference) throws -> String {
        var ct = (r.header("content-type") ?? "").split(separator: ";").first.map { String($0).trimmingSpaces() } ?? ""
        var schemaVersion: Int64?
        if let v = try? JSONValue.parse(bytes, file: "manifest"), case .object(let o) = v {
            if case .int(let n)? = o["schemaVersion"] { schemaVersion = n }
            if case .string(let t)? = o["mediaType"], ct.isEmpty || ct == "application/json" || ct == "text/plain" { ct = t }
        }
        if ct.hasPrefix("application/vnd.docker.distribution.manifest.v1") || schemaVersion == 1 {
            throw Failure(.invalid, "\(ref): the registry has only a Docker schema1 manifest (deprecated since 2017, unsupported); push the image again with a current tool")
        }
        if MediaType.manifests.contains(ct) || MediaType.indexes.contains(ct) { return ct }
        if ct.isEmpty || ct == "application/json" {
            // An OCI manifest or index may omit mediaType: by shape.
            if let v = try? JSONValue.parse(bytes, file: "manifest"), case .object(let o) = v {
                if o["manifests"] != nil { return MediaType.ociIndex }
                if o["config"] != nil { return MediaType.ociManifest }
            }
        }
        throw Failure(.invalid, "\(ref): unsupported manifest type \(quoted(ct, max: 100))")
    }

    /// A small blob (the config), verified, in memory.
    func smallBlob(_ ref: Reference, _ d: Descriptor, client c: RegistryClient, what: String, max: Int) throws -> [UInt8] {
        guard d.size <= Int64(max) else { throw Failure(.invalid, "\(ref): the \(what) is \(d.size) bytes, larger than the \(max >> 20) MiB limit") }
        let r = try c.send(scope: "repository:\(ref.path):pull") {
            HTTPRequest("GET", "\(c.base)/v2/\(ref.path)/blobs/\(d.digest)", maxBody: max)
        }
        guard r.ok else { throw Failure(.failed, "\(ref): the \(what) \(d.digest): \(c.host) answered \(r.status)\(c.errorDetail(r))") }
        guard Int64(r.body.count) == d.size else {
            throw Failure(.invalid, "\(ref): the \(what) \(d.digest) has \(r.body.count) bytes, its descriptor says \(d.size)")
        }
        let got = Digest.of(r.body)
        guard got == d.digest else { throw Failure(.invalid, "\(ref): the \(what) \(d.digest): digest mismatch (the content is \(got))") }
        return r.body
    }

    // MARK: - The pull

    func pull(ref: Reference) throws -> PulledImage {
        let c = try client(ref.domain)
        progress.begin("Pulling \(ref)")
        let (mbytes, mtype, manifest) = try resolve(ref, client: c)
        let mdigest = Digest.of(mbytes)
        let cbytes: [UInt8]
        if let b = store.storedBlob(manifest.config.digest, max: PullLimits.config), Int64(b.count) == manifest.config.size {
            cbytes = b
        } else {
            cbytes = try smallBlob(ref, manifest.config, client: c, what: "config", max: PullLimits.config)
        }
        let cfg = try ImageConfig.decode(cbytes, file: "\(ref): config \(manifest.config.digest)")
        guard cfg.diffIDs.count == manifest.layers.count else {
            throw Failure(.invalid, "\(ref): the config lists \(cfg.diffIDs.count) layers (rootfs.diff_ids), the manifest \(manifest.layers.count)")
        }
        if let p = options.platform, !cfg.platform.serves(p) {
            throw Failure(.invalid, "\(ref): the image is for \(cfg.platform), not \(p)")
        }
        for (i, l) in manifest.layers.enumerated() where !MediaType.layers.contains(l.mediaType) {
            throw Failure(.invalid, "\(ref): layer \(i + 1) has media type \(quoted(l.mediaType, max: 100)), not a layer we can unpack")
        }
        let ingest = try ImageIngest(store: store)
        defer { ingest.finish() }
        let t0 = Clock.monotonicSeconds()
        let fetched: Int64
        do {
            fetched = try LayerScheduler(puller: self, client: c, ref: ref, ingest: ingest, manifest: manifest, config: cfg).run()
        } catch let e as Interrupted {
            ingest.keepLayers = true
            throw e
        }
        let md = try ingest.commitImage(manifest: mbytes, mediaType: mtype, config: cbytes, configDigest: manifest.config.digest,
                                        platform: cfg.platform, names: [ref])
        progress.summary(ref: ref, digest: mdigest, layers: manifest.layers.count, bytes: fetched, seconds: Clock.monotonicSeconds() - t0)
        return PulledImage(id: manifest.config.digest, manifestDigest: md, reference: ref)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

// MARK: - Layers

/// One layer of the image being pulled.
final class LayerJob {
    enum State {
        case waiting
        /// Another command has it; ask again at this time.
        case busy(until: Double)
        case downloading(HTTPRequest)
        case retry(at: Double)
        /// Downloaded and verified, waiting for an unpack slot.
        case verified
        case unpacking(BackgroundUnpack)
        /// Unpacked alone it failed (a hard link into a lower layer): again
        /// over the layers beneath once they are in the store.
        case redo(Error)
        case done
    }

    let index: Int
    let desc: Descriptor
    let chain: Digest
    let diffID: Digest
    let lowers: [Digest]
    var state = State.waiting
    var claim: LayerClaim?
    var file: BlobFile?
    var workDir: String?
    var attempts = 0
    var retryDeadline: Double?
    var redone = false
    /// Bytes downloaded by this pull (for the summary).
    var fetched: Int64 = 0
    var startedAt = 0.0
    var note = "Waiting"

    init(index: Int, desc: Descriptor, chain: Digest, diffID: Digest, lowers: [Digest]) {
        self.index = index
        self.desc = desc
        self.chain = chain
        self.diffID = diffID
        self.lowers = lowers
    }

    var short: String { String(desc.digest.hex.prefix(12)) }
    var isDone: Bool { if case .done = state { return true }; return false }
}

/// Runs the layers: claims, downloads (up to 6), retries, unpacks (up to
/// the CPUs), commits.
struct LayerScheduler {
    let puller: Puller
    let client: RegistryClient
    let ref: Reference
    let ingest: ImageIngest
    let jobs: [LayerJob]
    let unpackSlots: Int

    init(puller: Puller, client: RegistryClient, ref: Reference, ingest: ImageIngest, manifest: ImageManifest, config: ImageConfig) {
        self.puller = puller
        self.client = client
        self.ref = ref
        self.ingest = ingest
        let chains = chainIDs(config.diffIDs)
        var jobs: [LayerJob] = []
        for (i, l) in manifest.layers.enumerated() {
            jobs.append(LayerJob(index: i, desc: l, chain: chains[i], diffID: config.diffIDs[i], lowers: Array(chains[..<i])))
        }
        self.jobs = jobs
        unpackSlots = max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    }

    var label: String { ref.description }

    func what(_ j: LayerJob) -> String { "\(label): layer \(j.index + 1) of \(jobs.count) (\(j.desc.digest))" }

    /// Bytes downloaded.
    func run() throws -> Int64 {
        do {
            try loop()
        } catch {
            stopAll()
            if let d = error as? DigestMismatch { throw d.failure }
            throw error
        }
        return jobs.reduce(0) { $0 + $1.fetched }
    }

    struct DigestMismatch: Error { var failure: Failure }

    private func loop() throws {
        let progress = puller.progress
        for j in jobs { progress.layer(j, event: .queued) }
        while !jobs.allSatisfy({ $0.isDone }) {
            if puller.interrupted { throw Interrupted() }
            let now = Clock.monotonicSeconds()
            var downloading = jobs.filter { if case .downloading = $0.state { return true }; return false }.count
            var unpacking = jobs.filter { if case .unpacking = $0.state { return true }; return false }.count
            // Claims and (re)starts.
            for j in jobs {
                switch j.state {
                case .waiting where downloading < PullLimits.parallel:
                    if try claim(j) { downloading += 1 }
                case .busy(let until) where until <= now && downloading < PullLimits.parallel:
                    if try claim(j) { downloading += 1 }
                case .retry(let at) where at <= now:
                    try startDownload(j)
                default: break
                }
            }
            // Unpacks.
            for j in jobs {
                switch j.state {
                case .verified where unpacking < unpackSlots:
                    try startUnpack(j, over: [])
                    unpacking += 1
                case .unpacking(let u) where u.done:
                    try finishUnpack(j, u.outcome())
                    unpacking -= 1
                case .redo(let e) where j.lowers.allSatisfy({ ingest.hasLayer($0) }) && unpacking < unpackSlots:
                    guard !j.redone else { throw e }
                    j.redone = true
                    try startUnpack(j, over: j.lowers.map { ingest.store.layerRoot($0) })
                    unpacking += 1
                default: break
                }
            }
            for r in puller.engine.step(ms: unpacking > 0 ? 10 : 100) {
                guard let j = jobs.first(where: { if case .downloading(let x) = $0.state { return x === r }; return false }) else { continue }
                try finishDownload(j, r)
            }
            progress.tick(jobs)
        }
        progress.finish(jobs)
    }

    /// Claims `j`; true when a download started.
    private func claim(_ j: LayerJob) throws -> Bool {
        switch try ingest.claim(chain: j.chain, blob: j.desc.digest) {
        case .present:
            j.state = .done
            puller.progress.layer(j, event: .present)
            return false
        case .busy:
            if case .busy = j.state {} else { puller.progress.layer(j, event: .waitingForOther) }
            j.state = .busy(until: Clock.monotonicSeconds() + 0.2)
            return false
        case .mine(let c):
            j.claim = c
            if c.blobPresent {
                j.state = .verified
                return false
            }
            j.file = try BlobFile(path: ingest.partialPath(j.desc.digest), digest: j.desc.digest, expectedSize: j.desc.size)
            j.startedAt = Clock.monotonicSeconds()
            puller.progress.layer(j, event: .started)
            if j.file!.size == j.desc.size {
                // A complete partial file from an earlier pull.
                try verified(j)
                return false
            }
            try startDownload(j)
            return true
        }
    }

    private func startDownload(_ j: LayerJob) throws {
        guard let f = j.file else { return }
        let r = HTTPRequest("GET", "\(client.base)/v2/\(ref.path)/blobs/\(j.desc.digest)", maxBody: 64 << 10, file: f)
        r.rangeFrom = f.size
        if let a = try client.authorization(scope: "repository:\(ref.path):pull") { r.headers.append(a) }
        try puller.engine.start(r, tls: client.tls)
        j.state = .downloading(r)
    }

    private func finishDownload(_ j: LayerJob, _ r: HTTPRequest) throws {
        guard let f = j.file else { return }
        j.fetched += r.received
        var v = client.verdict(r, attempt: j.attempts)
        if case .ok = v, !(200..<300).contains(r.status) {
            v = .fail(Failure(.failed, "\(what(j)): \(client.host) answered \(r.status)\(client.errorDetail(r))"))
        }
        if case .ok = v, f.size != j.desc.size {
            // The server closed early without an error: resume.
            v = .retry(after: RegistryClient.backoff(j.attempts), why: "the download of \(j.short) ended at \(f.size) of \(j.desc.size) bytes")
        }
        switch v {
        case .ok:
            try verified(j)
        case .fail(let e):
            if f.failure != nil { throw DigestMismatch(failure: Failure(.invalid, "\(what(j)): \(e.what)")) }
            throw Failure(e.kind, "\(what(j)): \(e.what)")
        case .reauthenticate(let c):
            j.attempts += 1
            guard j.attempts < 4 else { throw client.unauthorized(r, scope: "repository:\(ref.path):pull") }
            try client.renew(scope: "repository:\(ref.path):pull", challenge: c)
            try startDownload(j)
        case .retry(let after, let why):
            j.attempts += 1
            let now = Clock.monotonicSeconds()
            if j.retryDeadline == nil { j.retryDeadline = now + client.retryTimeout }
            guard now + after <= j.retryDeadline! else {
                throw Failure(.failed, "\(what(j)): \(why); gave up after retrying for \(Int(client.retryTimeout)) s")
            }
            puller.progress.layer(j, event: .retrying(why))
            j.state = .retry(at: now + after)
        }
    }

    /// The whole blob is in its file: check its digest.
    private func verified(_ j: LayerJob) throws {
        guard let f = j.file else { return }
        let got = f.finalDigest()
        f.close()
        guard got == j.desc.digest else {
            unlink(f.path)
            throw DigestMismatch(failure: Failure(.invalid, "\(what(j)): digest mismatch: the downloaded content is \(got); nothing was stored"))
        }
        j.state = .verified
        puller.progress.layer(j, event: .downloaded)
    }

    private func startUnpack(_ j: LayerJob, over lowers: [String]) throws {
        guard let c = j.claim else { return }
        if c.layerPresent {
            // Only the blob was missing.
            try ingest.commitLayer(c, blobFile: j.file?.path, unpacked: nil, diffID: j.diffID, parent: j.lowers.last, what: what(j))
            j.claim = nil
            j.state = .done
            puller.progress.layer(j, event: .complete)
            return
        }
        if let old = j.workDir { try? FS.removeTreeMapped(old) }
        let dir = try ingest.layerWorkDir(c)
        j.workDir = dir
        let blob = j.file?.path ?? ingest.store.blobPath(j.desc.digest)
        j.state = .unpacking(try BackgroundUnpack(blobPath: blob, dir: dir, lowers: lowers, label: what(j)))
        puller.progress.layer(j, event: .extracting)
    }

    private func finishUnpack(_ j: LayerJob, _ outcome: Result<LayerUnpackResult, Error>) throws {
        guard let c = j.claim, let dir = j.workDir else { return }
        switch outcome {
        case .failure(let e):
            if !j.lowers.isEmpty && !j.redone { j.state = .redo(e); return }
            throw e
        case .success(let result):
            try ingest.commitLayer(c, blobFile: j.file?.path, unpacked: (dir, result), diffID: j.diffID, parent: j.lowers.last, what: what(j))
            j.claim = nil
            j.workDir = nil
            j.state = .done
            puller.progress.layer(j, event: .complete)
        }
    }

    /// After a failure: stops downloads, waits for unpacks, releases claims.
    private func stopAll() {
        for j in jobs {
            switch j.state {
            case .downloading(let r): puller.engine.cancel(r)
            case .unpacking(let u): _ = u.outcome()
            default: break
            }
            j.file?.close()
            j.claim?.release()
            j.claim = nil
        }
    }
}
