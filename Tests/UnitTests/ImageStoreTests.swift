import Glibc
import JSON
import XCTest
@testable import CLI
@testable import Image
import Sys

/// References, the image formats' decoding errors, and the store's
/// invariants (the sweep of dead commands' work, verify-then-rename, the
/// index's bookkeeping), on a temporary data dir.
final class ImageStoreTests: XCTestCase {
    var data = ""

    override func setUp() {
        data = "/tmp/mc-image-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
    }

    override func tearDown() {
        try? FS.removeTree(data)
    }

    // MARK: - References

    func testReferencesNormaliseAsDocker() throws {
        let cases: [(String, String, String)] = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
            ("team/app:v1.2-rc_3", "docker.io/team/app:v1.2-rc_3", "team/app:v1.2-rc_3"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("localhost:5000/x:y", "localhost:5000/x:y", "localhost:5000/x:y"),
            ("quay.io/a/b/c:1", "quay.io/a/b/c:1", "quay.io/a/b/c:1"),
            ("Registry/x", "Registry/x:latest", "Registry/x:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ("a.b-c__d---e", "docker.io/library/a.b-c__d---e:latest", "a.b-c__d---e:latest"),
        ]
        for (input, full, familiar) in cases {
            let r = try Reference.parse(input)
            XCTAssertEqual(r.description, full, input)
            XCTAssertEqual(r.familiar, familiar, input)
        }
        let hex = String(repeating: "ab", count: 32)
        let d = try Reference.parse("busybox@sha256:" + hex)
        XCTAssertNil(d.tag)
        XCTAssertEqual(d.description, "docker.io/library/busybox@sha256:" + hex)
        let both = try Reference.parse("x:1@sha256:" + hex)
        XCTAssertEqual(both.tag, "1")
        XCTAssertEqual(both.digest?.hex, hex)
    }

    func testBadReferencesAreRefusedWithAReason() {
        let bad: [(String, String)] = [
            ("", "empty"), ("a,b", "path components"), ("x/UPPER", "lowercase"), ("x:..", "the tag"),
            ("x:-t", "the tag"), ("x\ny", "newline"), ("a b", "space"), ("../x", "registry"),
            ("a//b", "empty path component"), ("x@sha256:abc", "the digest"), ("x@md5:" + String(repeating: "a", count: 32), "the digest"),
            (String(repeating: "a", count: 64), "64 hexadecimal"), ("x:" + String(repeating: "t", count: 129), "the tag"),
            ("bad_host:port/x", "registry"), ("h:99999x/x", "registry"), ("é", "non-ASCII"), ("x:", "the tag"), (":t", "no repository"),
            (String(repeating: "a/", count: 130) + "a", "255"),
        ]
        for (input, why) in bad {
            do {
                let r = try Reference.parse(input)
                XCTFail("\(input) parsed as \(r)")
            } catch let f as Failure {
                XCTAssertEqual(f.kind, .invalid, input)
                XCTAssertTrue(f.what.hasPrefix("invalid reference "), f.what)
                XCTAssertTrue(f.what.contains(why), "\(input): \(f.what)")
                XCTAssertFalse(f.what.contains("\n"))
            } catch {
                XCTFail("\(error)")
            }
        }
    }

    func testIDPrefixes() {
        XCTAssertEqual(Reference.idPrefix("sha256:abc"), "abc")
        XCTAssertEqual(Reference.idPrefix("0123"), "0123")
        XCTAssertNil(Reference.idPrefix("ABC"))
        XCTAssertNil(Reference.idPrefix("xyz"))
        XCTAssertNil(Reference.idPrefix(String(repeating: "a", count: 65)))
    }

    func testPlatforms() throws {
        XCTAssertEqual(try Platform.parse("linux/amd64"), Platform(os: "linux", architecture: "amd64"))
        XCTAssertEqual(try Platform.parse("linux/x86_64").architecture, "amd64")
        XCTAssertEqual(try Platform.parse("linux/arm64/v8").variant, "v8")
        XCTAssertThrowsError(try Platform.parse("linux"))
        XCTAssertThrowsError(try Platform.parse("linux/amd64/v1/x"))
        XCTAssertThrowsError(try Platform.parse("linux//"))
        let arm = Platform(os: "linux", architecture: "arm64")
        XCTAssertTrue(arm.serves(try Platform.parse("linux/arm64/v8")))
        XCTAssertFalse(Platform(os: "linux", architecture: "arm", variant: "v6").serves(try Platform.parse("linux/arm/v7")))
        XCTAssertTrue(Platform.host.serves(Platform.host))
        XCTAssertFalse(Platform.host.serves(arm))
    }

    // MARK: - Formats

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    let hexA = String(repeating: "a", count: 64)
    let hexB = String(repeating: "b", count: 64)

    func testManifestErrorsNameTheFileAndPath() {
        func manifest(_ layers: String, config: String? = nil) -> [UInt8] {
            let c = config ?? #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:\#(hexA)","size":2}"#
            return Array(#"{"schemaVersion":2,"config":\#(c),"layers":\#(layers)}"#.utf8)
        }
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest("[]"), file: "m") }, "")
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest(#"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:\#(hexB)","size":"1"}]"#), file: "a.tar: m") },
                       "a.tar: m: layers[0].size: expected integer, found string")
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest(#"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:xyz","size":1}]"#), file: "m") },
                       "m: layers[0].digest: invalid digest \"sha256:xyz\": expected sha256: and 64 lowercase hex digits")
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest(#"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha512:ab","size":1}]"#), file: "m") },
                       "m: layers[0].digest: unsupported digest algorithm in \"sha512:ab\" (only sha256)")
        XCTAssertTrue(message { _ = try ImageManifest.decode(manifest(#"[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:\#(hexB)","size":1}]"#), file: "m") }
            .hasPrefix("m: layers[0].mediaType: unsupported media type \"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\": foreign"))
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest(#"[{"digest":"sha256:\#(hexB)","size":1}]"#), file: "m") },
                       "m: layers[0].mediaType: required property missing")
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest("[]", config: #"{"mediaType":"text/plain","digest":"sha256:\#(hexA)","size":2}"#), file: "m") },
                       "m: config.mediaType: unsupported media type \"text/plain\" for a config")
        XCTAssertTrue(message { _ = try ImageManifest.decode(Array(#"{"schemaVersion":1,"name":"x"}"#.utf8), file: "m") }.contains("schema 1"))
        XCTAssertTrue(message { _ = try ImageManifest.decode(Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.utf8), file: "m") }
            .contains("an image index where an image manifest was expected"))
        XCTAssertTrue(message { _ = try ImageManifest.decode(Array("{".utf8), file: "m") }.hasPrefix("m:"))
        XCTAssertEqual(message { _ = try ImageManifest.decode(manifest("[]", config: #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:\#(hexA)","size":-1}"#), file: "m") },
                       "m: config.size: negative size")
    }

    func testConfigDecoding() throws {
        let text = #"""
        {"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05.5Z",
         "config":{"Env":["PATH=/bin"],"Entrypoint":["/e"],"Cmd":null,"WorkingDir":"/w","User":"1:2","StopSignal":"SIGINT",
                   "Labels":{"a":"b"},"ExposedPorts":{"80/tcp":{}},"Volumes":{"/v":{}}},
         "rootfs":{"type":"layers","diff_ids":["sha256:\#(hexA)","sha256:\#(hexB)"]},
         "history":[{"created_by":"x","empty_layer":true}]}
        """#
        let c = try ImageConfig.decode(Array(text.utf8), file: "c")
        XCTAssertEqual(c.run.env, ["PATH=/bin"])
        XCTAssertEqual(c.run.entrypoint, ["/e"])
        XCTAssertNil(c.run.cmd)
        XCTAssertEqual(c.run.workingDir, "/w")
        XCTAssertEqual(c.run.user, "1:2")
        XCTAssertEqual(c.run.stopSignal, "SIGINT")
        XCTAssertEqual(c.run.labels, ["a": "b"])
        XCTAssertEqual(c.exposedPorts, ["80/tcp"])
        XCTAssertEqual(c.volumes, ["/v"])
        XCTAssertEqual(c.diffIDs.map { $0.hex }, [hexA, hexB])
        XCTAssertEqual(c.history.first?.emptyLayer, true)
        XCTAssertEqual(parseTimestamp(c.created!), 1_704_164_645)
        // Our own configs read back the same.
        XCTAssertEqual(try ImageConfig.decode(Array(c.json().compact().utf8), file: "c2"), c)
        XCTAssertEqual(message { _ = try ImageConfig.decode(Array(#"{"rootfs":{"type":"layers","diff_ids":[1]}}"#.utf8), file: "c") },
                       "c: rootfs.diff_ids[0]: expected string, found integer")
        XCTAssertEqual(message { _ = try ImageConfig.decode(Array(#"{"config":{"Env":"x"},"rootfs":{"type":"layers"}}"#.utf8), file: "c") },
                       "c: config.Env: expected array, found string")
        XCTAssertEqual(message { _ = try ImageConfig.decode(Array(#"{}"#.utf8), file: "c") }, "c: rootfs: required property missing")
    }

    func testDockerManifestAndIndex() throws {
        let m = try DockerArchiveEntry.decode(Array(#"[{"Config":"c.json","RepoTags":null,"Layers":["a/layer.tar"]}]"#.utf8), file: "x")
        XCTAssertEqual(m, [DockerArchiveEntry(config: "c.json", repoTags: [], layers: ["a/layer.tar"])])
        XCTAssertEqual(message { _ = try DockerArchiveEntry.decode(Array(#"[{"Config":"c","Layers":[1]}]"#.utf8), file: "d.tar: manifest.json") },
                       "d.tar: manifest.json: [0].Layers[0]: expected string, found integer")
        XCTAssertEqual(message { _ = try DockerArchiveEntry.decode(Array(#"{}"#.utf8), file: "x") }, "x: expected array, found object")
        let idx = try ImageIndex.decode(Array(#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:\#(hexA)","size":3,"platform":{"os":"linux","architecture":"arm64","variant":"v8"},"annotations":{"org.opencontainers.image.ref.name":"x:1"}}]}"#.utf8), file: "i")
        XCTAssertEqual(idx.manifests[0].platform?.description, "linux/arm64/v8")
        XCTAssertEqual(idx.manifests[0].annotations[ImageAnnotation.refName], "x:1")
        XCTAssertEqual(message { _ = try ImageIndex.decode(Array(#"{"schemaVersion":3}"#.utf8), file: "i") }, "i: schemaVersion: unsupported schemaVersion 3 (only 2)")
        XCTAssertEqual(message { _ = try ImageIndex.decode(Array(#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:\#(hexA)"}]}"#.utf8), file: "i") },
                       "i: manifests[0].size: required property missing")
    }

    func testChainIDs() {
        let a = Digest(hex: hexA), b = Digest(hex: hexB)
        let c = chainIDs([a, b, a])
        XCTAssertEqual(c[0], a)
        XCTAssertEqual(c[1], Digest.of(Array("sha256:\(hexA) sha256:\(hexB)".utf8)))
        XCTAssertEqual(c[2], Digest.of(Array("\(c[1]) sha256:\(hexA)".utf8)))
        XCTAssertEqual(chainIDs([]), [])
    }

    func testArchivePathsAndTimestamps() {
        XCTAssertEqual(cleanArchivePath("./blobs//sha256/./x"), "blobs/sha256/x")
        XCTAssertEqual(cleanArchivePath("/manifest.json"), "manifest.json")
        XCTAssertNil(cleanArchivePath("a/../b"))
        XCTAssertNil(cleanArchivePath("./"))
        XCTAssertEqual(blobHex("blobs/sha256/" + hexA), hexA)
        XCTAssertNil(blobHex("blobs/sha256/../" + hexA))
        XCTAssertNil(blobHex("blobs/sha512/" + hexA))
        XCTAssertEqual(parseTimestamp("1970-01-01T00:00:00Z"), 0)
        XCTAssertEqual(parseTimestamp("2024-01-02T03:04:05+01:00"), 1_704_164_645 - 3600)
        XCTAssertNil(parseTimestamp("yesterday"))
        XCTAssertEqual(humanSize(0), "0B")
        XCTAssertEqual(humanSize(999), "999B")
        XCTAssertEqual(humanSize(4_260_000), "4.26MB")
        XCTAssertEqual(humanSize(205_000_000), "205MB")
        XCTAssertEqual(humanSize(1_000_000), "1MB")
        XCTAssertEqual(humanSize(12_340), "12.3kB")
    }

    func testTarWriterHeaders() {
        let h = TarWriter.header(name: "blobs/sha256/" + hexA, size: 1234, mode: 0o644, type: UInt8(ascii: "0"))
        XCTAssertEqual(h.count, 512)
        XCTAssertEqual(String(decoding: h[257..<262], as: UTF8.self), "ustar")
        XCTAssertEqual(String(decoding: h[124..<135], as: UTF8.self), "00000002322")
        var sum = 0
        for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
        XCTAssertEqual(Int(String(decoding: h[148..<154], as: UTF8.self), radix: 8), sum)
        let big = TarWriter.header(name: "x", size: 1 << 40, mode: 0o644, type: UInt8(ascii: "0"))
        XCTAssertEqual(big[124], 0x80)
        XCTAssertEqual(big[130], 1 << 0)
    }

    // MARK: - The store's invariants

    func store() throws -> ImageStore { try ImageStore(locations: Locations(data: data)) }

    func testNoStoreIsMadeByReading() throws {
        let s = try store()
        XCTAssertEqual(try s.list().count, 0)
        XCTAssertThrowsError(try s.resolve("busybox")) { e in
            XCTAssertEqual("\(e)", "no such image: busybox")
        }
        XCTAssertFalse(FS.exists(data))
    }

    func testSweepRemovesOnlyDeadWork() throws {
        let s = try store()
        let live = try s.beginWork()
        FS.writeAll(path: live.dir + "/partial", "x")
        // A dead command's work: a directory and a lock file nobody holds.
        let dead = s.tmpDir + "/deadbeef"
        XCTAssertEqual(mkdir(dead, 0o700), 0)
        FS.writeAll(path: dead + "/half-a-layer", "x")
        FS.writeAll(path: dead + ".lock", "")
        // A stray directory without a lock, and a stale layer lock.
        XCTAssertEqual(mkdir(s.tmpDir + "/stray", 0o700), 0)
        FS.writeAll(path: s.locksDir + "/" + hexA, "")
        _ = try store()   // opening sweeps
        XCTAssertFalse(FS.exists(dead))
        XCTAssertFalse(FS.exists(dead + ".lock"))
        XCTAssertFalse(FS.exists(s.tmpDir + "/stray"))
        XCTAssertFalse(FS.exists(s.locksDir + "/" + hexA))
        XCTAssertTrue(FS.exists(live.dir + "/partial"))
        live.finish()
        XCTAssertEqual(FS.listDirectory(s.tmpDir), [])
    }

    func testABlobThatFailsVerificationNeverEnters() throws {
        let s = try store()
        // A layout whose manifest's config blob has the wrong content.
        let lay = data + "-layout"
        defer { try? FS.removeTree(lay) }
        try FS.makeDirectories(lay + "/blobs/sha256")
        let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let cd = Digest.of(config)
        FS.writeAll(path: lay + "/blobs/sha256/" + cd.hex, #"{"tampered":true}"#)
        let man = Array(#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(cd)","size":\#(config.count)},"layers":[]}"#.utf8)
        let md = Digest.of(man)
        FS.writeAll(path: lay + "/blobs/sha256/" + md.hex, String(decoding: man, as: UTF8.self))
        FS.writeAll(path: lay + "/index.json", #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(md)","size":\#(man.count),"annotations":{"org.opencontainers.image.ref.name":"x:1"}}]}"#)
        XCTAssertThrowsError(try s.load(path: lay)) { e in
            XCTAssertTrue("\(e)".contains("blobs/sha256/\(cd.hex): digest mismatch"), "\(e)")
        }
        XCTAssertEqual(FS.listDirectory(s.blobsDir), [])
        XCTAssertEqual(FS.listDirectory(s.tmpDir), [])
        XCTAssertEqual(try s.readIndex().manifests.count, 0)
        // Right content: it loads (an image with no layers), and is found by name and id.
        FS.writeAll(path: lay + "/blobs/sha256/" + cd.hex, String(decoding: config, as: UTF8.self))
        let loaded = try s.load(path: lay)
        XCTAssertEqual(loaded.map { $0.references.map { $0.description } }, [["docker.io/library/x:1"]])
        XCTAssertEqual(Set(FS.listDirectory(s.blobsDir)), [cd.hex, md.hex])
        XCTAssertEqual(try s.resolve("x:1").id, cd)
        XCTAssertEqual(try s.resolve(String(cd.hex.prefix(6))).manifestDigest, md)
        XCTAssertEqual(try s.list().map { $0.references }, [["docker.io/library/x:1"]])
        // Removed: nothing left.
        let r = try s.remove("x:1", force: false)
        XCTAssertEqual(r.deleted, [cd])
        XCTAssertEqual(FS.listDirectory(s.blobsDir), [])
    }

    func testIndexBookkeeping() throws {
        let s = try store()
        func desc(_ hex: String) -> Descriptor { Descriptor(mediaType: MediaType.ociManifest, digest: Digest(hex: hex), size: 1) }
        var idx = ImageIndex(manifests: [])
        let a = try Reference.parse("a:1"), b = try Reference.parse("b:1")
        s.addImage(&idx, manifest: desc(hexA), id: Digest(hex: hexA), platform: nil, names: [])
        XCTAssertEqual(s.entries(idx).map { $0.refs }, [[]])
        // Naming it drops the untagged entry.
        s.addImage(&idx, manifest: desc(hexA), id: Digest(hex: hexA), platform: nil, names: [a, b])
        XCTAssertEqual(s.entries(idx).map { $0.refs }, [["docker.io/library/a:1", "docker.io/library/b:1"]])
        // A name moves to another image; the first keeps its other name.
        s.addImage(&idx, manifest: desc(hexB), id: Digest(hex: hexB), platform: nil, names: [a])
        XCTAssertEqual(s.entries(idx).map { $0.refs }, [["docker.io/library/b:1"], ["docker.io/library/a:1"]])
        // And when it loses its last name, it stays, untagged.
        s.addImage(&idx, manifest: desc(hexB), id: Digest(hex: hexB), platform: nil, names: [b])
        XCTAssertEqual(s.entries(idx).map { $0.desc.digest.hex }, [hexB, hexA])
        XCTAssertEqual(s.entries(idx).map { $0.refs }, [["docker.io/library/a:1", "docker.io/library/b:1"], []])
    }

    func testLayerLocksAreTransient() throws {
        let s = try store()
        try s.create()
        let l = try StoreLock.transient(s.locksDir + "/" + hexA)
        XCTAssertNil(StoreLock.tryAcquire(s.locksDir + "/" + hexA))
        l.release()
        XCTAssertFalse(FS.exists(s.locksDir + "/" + hexA))
    }
}

extension FS {
    static func writeAll(path: String, _ text: String) {
        try? FS.writeAtomically(path, text)
    }
}
