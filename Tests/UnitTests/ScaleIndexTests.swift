import Dispatch
import Glibc
import XCTest
@testable import Engine
@testable import Network
import Sys

// Issue 19: what a start, a lookup and a teardown read does not grow with
// the number of containers. The name index (one file per name, taken by
// link(2), stale entries replaced), name and prefix lookups over it, and
// leases allocated from a hint and torn down by each container's own
// record, on temporary directories.

private func tempDir() -> String {
    var t = Array("/tmp/minicontainer-scaletest-XXXXXX".utf8CString)
    let p = t.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
private func rmrf(_ p: String) { _ = system("rm -rf '\(p)'") }
private func contents(_ p: String) -> String? { try? FS.readString(p) }
private func files(_ d: String) -> [String] { FS.listDirectory(d) }

final class NameIndexTests: XCTestCase {
    func testStorableNamesCannotLeaveTheDirectory() {
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "a\nb", "a\0b", ".hidden", ".claim-1", "-x", "_x", "a b", "é",
                    String(repeating: "a", count: 256)] {
            XCTAssertFalse(NameIndex.storable(bad), bad)
        }
        for good in ["web", "a..b", "mc_0123456789ab", "x.y-z", "9", String(repeating: "a", count: 255)] {
            XCTAssertTrue(NameIndex.storable(good), good)
        }
        let d = tempDir(); defer { rmrf(d) }
        let n = NameIndex(dir: d + "/names")
        for bad in ["..", "../escape", "a/b", "x\ny"] {
            XCTAssertThrowsError(try n.claim(bad, id: "c1", isLive: { _ in true })) { e in
                XCTAssertTrue("\(e)".hasPrefix("invalid name"), "\(e)")
            }
            XCTAssertNil(n.entry(bad))
        }
        XCTAssertEqual(files(d), [], "nothing made")
    }

    func testClaimLookupRelease() throws {
        let d = tempDir(); defer { rmrf(d) }
        let n = NameIndex(dir: d + "/names")
        try n.claim("web", id: "c1", isLive: { _ in true })
        XCTAssertEqual(n.entry("web"), "c1")
        XCTAssertEqual(contents(d + "/names/web"), "c1\n")
        XCTAssertThrowsError(try n.claim("web", id: "c2", isLive: { _ in true })) { e in
            XCTAssertEqual((e as? NameIndex.Taken)?.id, "c1")
            XCTAssertEqual("\(e)", "the name \"web\" is already in use by container c1")
        }
        n.release("web", id: "c2")
        XCTAssertEqual(n.entry("web"), "c1", "a release by another container leaves the entry")
        n.release("web", id: "c1")
        XCTAssertNil(n.entry("web"))
        try n.claim("web", id: "c2", isLive: { _ in true })
        XCTAssertEqual(n.entry("web"), "c2")
        XCTAssertEqual(files(d + "/names"), ["web"], "no claim file is left")
    }

    func testStaleEntryIsReplaced() throws {
        let d = tempDir(); defer { rmrf(d) }
        let n = NameIndex(dir: d + "/names")
        try n.claim("web", id: "gone", isLive: { _ in true })
        // Its container died before it had the name (or is gone).
        try n.claim("web", id: "c2", isLive: { $0 != "gone" })
        XCTAssertEqual(n.entry("web"), "c2")
        // An empty entry (written by hand; claims never leave one) is stale too.
        try FS.writeAtomically(d + "/names/api", "")
        try n.claim("api", id: "c3", isLive: { _ in true })
        XCTAssertEqual(n.entry("api"), "c3")
    }

    func testSweepRemovesStaleEntriesAndDeadClaims() throws {
        let d = tempDir(); defer { rmrf(d) }
        let n = NameIndex(dir: d + "/names")
        try n.claim("live", id: "c1", isLive: { _ in true })
        try n.claim("dead", id: "c2", isLive: { _ in true })
        try FS.writeAtomically(d + "/names/.claim-1-2", "c3\n")  // a claim killed before its link
        n.sweep { _, id in id == "c1" }
        XCTAssertEqual(files(d + "/names"), ["live"])
    }

    func testConcurrentClaimsOfOneNameHaveOneWinner() {
        let d = tempDir(); defer { rmrf(d) }
        let k = 24
        var won = [Bool](repeating: false, count: k)
        var loser = [String?](repeating: nil, count: k)
        let q = DispatchQueue(label: "results")
        DispatchQueue.concurrentPerform(iterations: k) { i in
            // Each its own value, as separate runs would be.
            let n = NameIndex(dir: d + "/names")
            do {
                try n.claim("web", id: "c\(i)", isLive: { _ in true })
                q.sync { won[i] = true }
            } catch let t as NameIndex.Taken {
                q.sync { loser[i] = t.id }
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(won.filter { $0 }.count, 1)
        let winner = "c\(won.firstIndex(of: true) ?? -1)"
        XCTAssertEqual(NameIndex(dir: d + "/names").entry("web"), winner)
        XCTAssertEqual(Set(loser.compactMap { $0 }), [winner], "every loser is told the winner")
        XCTAssertEqual(files(d + "/names"), ["web"])
    }

    func testConcurrentTakeoversOfAStaleEntryHaveOneWinner() throws {
        let d = tempDir(); defer { rmrf(d) }
        try NameIndex(dir: d + "/names").claim("web", id: "dead", isLive: { _ in true })
        let k = 24
        var won = [Bool](repeating: false, count: k)
        let q = DispatchQueue(label: "results")
        DispatchQueue.concurrentPerform(iterations: k) { i in
            let n = NameIndex(dir: d + "/names")
            if (try? n.claim("web", id: "c\(i)", isLive: { $0 != "dead" })) != nil { q.sync { won[i] = true } }
        }
        XCTAssertEqual(won.filter { $0 }.count, 1)
        XCTAssertEqual(NameIndex(dir: d + "/names").entry("web"), "c\(won.firstIndex(of: true) ?? -1)")
    }
}

/// Containers' names and lookups over the index, with container
/// directories and metadata made by hand (no container runs).
final class ContainerIndexTests: XCTestCase {
    var tmp = ""
    var c: Containers!

    override func setUp() {
        tmp = tempDir()
        c = Containers(locations: Locations(root: tmp + "/run", data: tmp + "/data", network: tmp + "/net"))
    }
    override func tearDown() { rmrf(tmp) }

    func meta(_ id: String, _ name: String, root: String? = nil) -> Meta {
        Meta(id: id, name: name, created: "", createdUnix: 0, command: [], rootfs: "/", image: nil, imageID: nil,
             ociRoot: root ?? c.ociRoot, ownerPid: nil, ownerStart: nil, started: nil, startedUnix: nil, finished: nil,
             finishedUnix: nil, exitCode: nil, autoRemove: false, detached: true)
    }

    /// What prepare does: an id, the name taken, the directory, the metadata.
    func make(_ name: String?, id: String? = nil, root: String? = nil) throws -> (id: String, name: String) {
        try FS.makeDirectories(c.base, mode: 0o711)
        let lock = try FileLock.acquire(c.base)
        defer { lock.unlock() }
        let id = id ?? c.chooseID()
        let n = try c.chooseName(name, id: id)
        XCTAssertEqual(mkdir(c.dir(id), 0o711), 0)
        try c.save(meta(id, n, root: root))
        return (id, n)
    }

    func testNamesIdsAndPrefixesResolve() throws {
        let web = try make("web")
        let anon = try make(nil)
        XCTAssertTrue(NameIndex.storable(anon.name) && anon.name.contains("_"), anon.name)
        XCTAssertEqual(try c.resolve("web"), web.id)
        XCTAssertEqual(try c.resolve(anon.name), anon.id)
        XCTAssertEqual(try c.resolve(web.id), web.id)
        XCTAssertEqual(try c.resolve(String(web.id.prefix(12))), web.id)
        XCTAssertEqual(c.tryResolve("web"), web.id)
        XCTAssertThrowsError(try c.resolve("nosuch")) { XCTAssertEqual("\($0)", "container nosuch does not exist") }
        XCTAssertThrowsError(try c.resolve("")) { XCTAssertEqual("\($0)", "container  does not exist") }
        XCTAssertThrowsError(try c.resolve("../data")) { XCTAssertEqual("\($0)", "container ../data does not exist") }
        // 64 characters that name a directory other than a container's are no id.
        let climb = String(repeating: "./", count: 32)
        XCTAssertEqual(climb.count, 64)
        XCTAssertTrue(FS.isDirectory(c.dir(climb)))
        XCTAssertThrowsError(try c.resolve(climb))
        XCTAssertEqual(Set(files(c.data + "/names")), ["web", anon.name])
    }

    func testTakenNameIsRefusedAndFreedByRemoval() throws {
        let web = try make("web")
        XCTAssertThrowsError(try make("web")) { e in
            XCTAssertEqual((e as? Failure)?.kind, .exists)
            XCTAssertEqual("\(e)", "the name \"web\" is already in use by container \(web.id.prefix(12)); remove it or choose another name")
        }
        XCTAssertEqual(c.ids().count, 1, "the refused run made no directory")
        c.removeFiles(web.id)
        XCTAssertFalse(FS.exists(c.data + "/names/web"), "the entry goes with its container")
        XCTAssertThrowsError(try c.resolve("web"))
        let again = try make("web")
        XCTAssertEqual(try c.resolve("web"), again.id)
    }

    func testStaleEntriesNeitherResolveNorBlock() throws {
        // A run killed after it took the name, before its directory existed.
        let dead = newID()
        try c.names.claim("web", id: dead, isLive: { _ in true })
        XCTAssertThrowsError(try c.resolve("web"))
        // One killed after its directory, before its metadata.
        let half = newID()
        try c.names.claim("api", id: half, isLive: { _ in true })
        try FS.makeDirectories(c.base, mode: 0o711)
        XCTAssertEqual(mkdir(c.dir(half), 0o711), 0)
        XCTAssertThrowsError(try c.resolve("api"))
        let web = try make("web"), api = try make("api")
        XCTAssertEqual(try c.resolve("web"), web.id)
        XCTAssertEqual(try c.resolve("api"), api.id)
        // A container whose directory went behind our back.
        try FS.removeTree(c.dir(web.id))
        XCTAssertThrowsError(try c.resolve("web"))
        XCTAssertNotEqual(try make("web").id, web.id)
    }

    func testRenameMovesTheEntry() throws {
        let web = try make("web")
        _ = try make("api")
        XCTAssertThrowsError(try c.rename(web.id, to: "api")) { XCTAssertEqual(($0 as? Failure)?.kind, .exists) }
        XCTAssertThrowsError(try c.rename(web.id, to: "web"), "its own name is taken") { XCTAssertEqual(($0 as? Failure)?.kind, .exists) }
        try c.rename(web.id, to: "front")
        XCTAssertEqual(try c.resolve("front"), web.id)
        XCTAssertThrowsError(try c.resolve("web"))
        XCTAssertFalse(FS.exists(c.data + "/names/web"))
        XCTAssertEqual(c.load(web.id)?.name, "front")
        _ = try make("web")
    }

    func testPrefixesAmbiguousAndOtherRoots() throws {
        let a = String(repeating: "a", count: 64), ab = "a" + String(repeating: "b", count: 63)
        _ = try make("one", id: a)
        _ = try make("two", id: ab)
        XCTAssertThrowsError(try c.resolve("a")) { XCTAssertEqual("\($0)", "\"a\" matches 2 containers: give more of the id") }
        XCTAssertEqual(try c.resolve("ab"), ab)
        let other = try make("elsewhere", root: "/other/root")
        XCTAssertThrowsError(try c.resolve("elsewhere")) { e in
            XCTAssertEqual((e as? Failure)?.kind, .notFound)
            XCTAssertTrue("\(e)".contains("was run with --root \"/other/root\""), "\(e)")
        }
        XCTAssertThrowsError(try c.resolve(String(other.id.prefix(10)))) { XCTAssertTrue("\($0)".contains("--root"), "\($0)") }
        XCTAssertThrowsError(try make("elsewhere"), "names are unique across --roots")
    }

    func testIndexIsBuiltForContainersFromBeforeIt() throws {
        // Containers made before the index: metadata only.
        try FS.makeDirectories(c.base, mode: 0o711)
        let old = newID(), unnamed = newID()
        for (id, n) in [(old, "old"), (unnamed, "")] {
            XCTAssertEqual(mkdir(c.dir(id), 0o711), 0)
            try c.save(meta(id, n))
        }
        XCTAssertFalse(FS.exists(c.data + "/names"))
        XCTAssertEqual(try c.resolve("old"), old)
        XCTAssertEqual(files(c.data + "/names"), ["old"])
        XCTAssertFalse(FS.exists(c.data + "/names.building"))
        XCTAssertThrowsError(try make("old")) { XCTAssertEqual(($0 as? Failure)?.kind, .exists) }
    }
}

final class LeaseScaleTests: XCTestCase {
    func testAllocationFollowsTheHintAndStaysLowest() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Leases(dir: d, subnet: Subnet("10.9.0.0/29")!)  // hosts .2 to .6
        let got = try (0..<4).map { i in try l.locked { try l.allocate(id: "c\(i)") }.description }
        XCTAssertEqual(got, ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"])
        XCTAssertEqual(contents(d + "/next"), "10.9.0.6\n")
        XCTAssertEqual(l.release(id: "c1").map { $0.description }, ["10.9.0.3"])
        XCTAssertEqual(contents(d + "/next"), "10.9.0.3\n", "a release lowers the hint")
        XCTAssertEqual(try l.locked { try l.allocate(id: "x") }.description, "10.9.0.3")
        // A lease the hint does not know of (made by hand) is skipped.
        try FS.writeAtomically(d + "/leases/10.9.0.6", "hand\n")
        XCTAssertThrowsError(try l.locked { try l.allocate(id: "y") }) {
            XCTAssertEqual("\($0)", "no free address in 10.9.0.0/29: all 5 are leased")
        }
        // One removed behind the hint's back is found by wrapping around.
        unlink(d + "/leases/10.9.0.2")
        XCTAssertEqual(try l.locked { try l.allocate(id: "z") }.description, "10.9.0.2")
        // A hint that is garbage or outside the subnet is ignored.
        unlink(d + "/leases/10.9.0.4")
        try FS.writeAtomically(d + "/next", "172.18.9.9\n")
        XCTAssertEqual(try l.locked { try l.allocate(id: "w") }.description, "10.9.0.4")
        unlink(d + "/leases/10.9.0.5")
        try FS.writeAtomically(d + "/next", "garbage")
        XCTAssertEqual(try l.locked { try l.allocate(id: "v") }.description, "10.9.0.5")
    }

    func testConcurrentAllocationsFromTheHintNeverCollide() {
        let d = tempDir(); defer { rmrf(d) }
        let n = 40
        var got = [String](repeating: "", count: n)
        let q = DispatchQueue(label: "results")
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let l = Leases(dir: d, subnet: Network.defaultSubnet)
            let a = (try? l.locked { () -> IPv4 in
                let a = try l.allocate(id: "c\(i)")
                if i % 3 == 0 { _ = l.unlease(a, id: "c\(i)") }  // some go again at once
                return a
            })?.description ?? "error"
            q.sync { got[i] = a }
        }
        XCTAssertFalse(got.contains("error"))
        let kept = (0..<n).filter { $0 % 3 != 0 }.map { got[$0] }
        XCTAssertEqual(Set(kept).count, kept.count)
        XCTAssertEqual(Set(files(d + "/leases")), Set(kept))
    }

    func testAnyLeasedStopsAtTheFirstLease() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Leases(dir: d, subnet: Network.defaultSubnet)
        XCTAssertFalse(l.anyLeased(), "no directory")
        _ = try l.locked { try l.allocate(id: "a") }
        XCTAssertTrue(l.anyLeased())
        l.release(id: "a")
        XCTAssertFalse(l.anyLeased())
        try FS.writeAtomically(d + "/leases/notanaddress", "x")
        XCTAssertFalse(l.anyLeased())
        XCTAssertTrue(FS.anyEntry(d + "/leases") { $0 == "notanaddress" })
    }

    func testPortClashesReadOnlyThatPort() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Network.leases(d)
        let a = try l.locked { try l.allocate(id: "a") }
        try l.locked { try l.reserve([try PortMapping("18080:80/tcp"), try PortMapping("127.0.0.1:18081:80/tcp")], id: "a", address: a) }
        XCTAssertEqual(l.clashes(with: try PortMapping("18080:81/udp")).count, 0)
        XCTAssertEqual(l.clashes(with: try PortMapping("10.0.0.1:18080:81/tcp")).map { $0.id }, ["a"], "any address holds every one")
        XCTAssertEqual(l.clashes(with: try PortMapping("18081:81/tcp")).map { $0.file }, ["tcp-18081-127.0.0.1"])
        XCTAssertEqual(l.clashes(with: try PortMapping("10.0.0.1:18081:81/tcp")).count, 0, "another address is free")
        XCTAssertEqual(Network.publisher(of: try PortMapping("18081:9/tcp"), dir: d), "a")
        // All or none, also within one request.
        XCTAssertThrowsError(try l.locked { try l.reserve([try PortMapping("18090:80/tcp"), try PortMapping("18090:81/tcp")], id: "b", address: a) }) {
            XCTAssertEqual("\($0)", "host port 18090/tcp is already published by container b")
        }
        XCTAssertFalse(FS.exists(d + "/ports/tcp-18090-any"))
    }

    /// What attach leaves in the files (without the links).
    func attachFiles(_ l: Leases, _ id: String, _ ports: [String]) throws -> IPv4 {
        let m = try ports.map { try PortMapping($0) }
        return try l.locked {
            let a = try l.allocate(id: id)
            try l.reserve(m, id: id, address: a)
            return a
        }
    }

    func testTeardownReleasesOnlyItsOwnFiles() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Network.leases(d)
        let a = try attachFiles(l, "a", ["18080:80/tcp"])
        let b = try attachFiles(l, "b", ["18081:80/tcp"])
        XCTAssertEqual(l.held("a"), Leases.Held(leases: [a], ports: ["tcp-18080-any"]))
        XCTAssertEqual(contents(d + "/held/b"), "lease \(b)\nport tcp-18081-any\n")
        // A clash: c's record names a port file that is b's.
        XCTAssertThrowsError(try attachFiles(l, "c", ["18081:81/tcp"]))
        try l.locked { Network.detach(id: "c", leases: l) }
        XCTAssertEqual(l.ports().map { $0.id }, ["a", "b"], "b's port stays")
        XCTAssertTrue(l.mayHold("a"))
        XCTAssertFalse(l.mayHold("c"))
        try Network.tearDown(id: "a", dir: d)
        XCTAssertEqual(l.all(), [b: "b"])
        XCTAssertEqual(l.ports().map { $0.id }, ["b"])
        XCTAssertEqual(files(d + "/held"), ["b"])
        XCTAssertNoThrow(try Network.tearDown(id: "nothing", dir: d))
        XCTAssertEqual(try l.locked { try l.allocate(id: "d") }, a, "its address is the lowest free again")
    }

    func testTeardownAfterACrashInAttach() throws {
        let d = tempDir(); defer { rmrf(d) }
        let l = Network.leases(d)
        // Killed after the lease: the record names it.
        let a = try l.locked { try l.allocate(id: "a") }
        XCTAssertEqual(contents(d + "/held/a"), "lease \(a)\n")
        XCTAssertTrue(l.mayHold("a"))
        try Network.tearDown(id: "a", dir: d)
        XCTAssertTrue(l.all().isEmpty && files(d + "/held").isEmpty)
        // Killed after the record, before the files: what it lists is not
        // there, or is another container's, and stays.
        let b = try attachFiles(l, "b", ["18080:80/tcp"])
        try l.locked { try l.record("c", Leases.Held(leases: [b, IPv4("172.18.0.9")!], ports: ["tcp-18080-any", "tcp-1-any"])) }
        try Network.tearDown(id: "c", dir: d)
        XCTAssertEqual(l.all(), [b: "b"])
        XCTAssertEqual(l.ports().map { $0.id }, ["b"])
        XCTAssertEqual(files(d + "/held"), ["b"])
        // A failed reservation leaves the record as it was.
        XCTAssertThrowsError(try l.locked { try l.reserve([try PortMapping("18081:80/tcp"), try PortMapping("18080:80/tcp")], id: "e", address: b) })
        XCTAssertFalse(FS.exists(d + "/held/e"))
        XCTAssertFalse(FS.exists(d + "/ports/tcp-18081-any"))
        // Prune reclaims a record whose owner is gone, even one holding nothing.
        try l.locked { try l.record("gone", Leases.Held(ports: ["tcp-2-any"])) }
        XCTAssertEqual(try Network.reclaim(alive: ["b"], dir: d), ["gone"])
        XCTAssertEqual(files(d + "/held"), ["b"])
    }

    func testDirectoryFromBeforeTheRecordsIsMigrated() throws {
        let d = tempDir(); defer { rmrf(d) }
        // Leases and ports as an older version left them: no held/.
        try FS.makeDirectories(d + "/leases", mode: 0o700)
        try FS.makeDirectories(d + "/ports", mode: 0o700)
        try FS.writeAtomically(d + "/leases/172.18.0.2", "old\n")
        try FS.writeAtomically(d + "/leases/172.18.0.3", "other\n")
        try FS.writeAtomically(d + "/ports/tcp-18080-any", "old 18080:80/tcp 172.18.0.2\n")
        let l = Network.leases(d)
        XCTAssertTrue(l.mayHold("old"), "found by reading them all")
        XCTAssertFalse(l.mayHold("nobody"))
        // The first locked operation writes a record for each owner.
        XCTAssertEqual(try l.locked { try l.allocate(id: "new") }.description, "172.18.0.4")
        XCTAssertEqual(files(d + "/held"), ["new", "old", "other"])
        XCTAssertEqual(l.held("old"), Leases.Held(leases: [IPv4("172.18.0.2")!], ports: ["tcp-18080-any"]))
        try Network.tearDown(id: "old", dir: d)
        XCTAssertEqual(Set(l.all().values), ["other", "new"])
        XCTAssertTrue(l.ports().isEmpty)
    }
}

/// The state's rewrites (Store.save, three in a `run`): the new bytes and the
/// old swap names, so that from the third write on no file is made or freed.
final class WriteExchangingTests: XCTestCase {
    private func inode(_ p: String) -> UInt64 {
        var st = stat()
        XCTAssertEqual(stat(p, &st), 0, p)
        return UInt64(st.st_ino)
    }

    func testEachWriteIsWholeAndTheInodesAreReused() throws {
        let d = tempDir()
        defer { rmrf(d) }
        let path = d + "/state.json", spare = path + ".spare"
        try FS.writeExchanging(path, Array("one".utf8), spare: spare, mode: 0o600)
        XCTAssertEqual(contents(path), "one")
        XCTAssertFalse(FS.exists(spare), "the first write renames")
        try FS.writeExchanging(path, Array("two".utf8), spare: spare, mode: 0o600)
        XCTAssertEqual(contents(path), "two")
        XCTAssertEqual(contents(spare), "one")
        let a = inode(path), b = inode(spare)
        try FS.writeExchanging(path, Array("three, longer".utf8), spare: spare, mode: 0o600)
        XCTAssertEqual(contents(path), "three, longer")
        XCTAssertEqual(contents(spare), "two")
        XCTAssertEqual(inode(path), b)
        XCTAssertEqual(inode(spare), a)
        try FS.writeExchanging(path, Array("4".utf8), spare: spare, mode: 0o600)
        XCTAssertEqual(contents(path), "4", "a shorter write leaves nothing of the longer one")
        XCTAssertEqual(inode(path), a)
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o077, 0)
        XCTAssertEqual(files(d).sorted(), ["state.json", "state.json.spare"])
    }

    /// A spare that is a symlink (planted by whoever could write the
    /// directory) is not followed.
    func testASymlinkedSpareIsRefused() throws {
        let d = tempDir()
        defer { rmrf(d) }
        let path = d + "/state.json", spare = path + ".spare"
        try FS.writeExchanging(path, Array("one".utf8), spare: spare, mode: 0o600)
        XCTAssertEqual(symlink(d + "/target", spare), 0)
        XCTAssertThrowsError(try FS.writeExchanging(path, Array("two".utf8), spare: spare, mode: 0o600))
        XCTAssertFalse(FS.exists(d + "/target"))
        XCTAssertEqual(contents(path), "one")
    }
}
