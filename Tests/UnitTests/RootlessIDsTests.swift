import Glibc
import Spec
import Sys
import XCTest

/// Issue 18's shared pieces: the subordinate ranges, the rootless
/// mappings built from them, and a body run as root of a mapped user
/// namespace (as root here, so the maps are written directly).
final class RootlessIDsTests: XCTestCase {
    let me = Identity(uid: 23450, gid: 23451, name: "mcrootless", home: "/home/mcrootless")

    func testRangesByNameOrUidInFileOrderMalformedSkipped() {
        let text = """
        other:100000:65536
        mcrootless:300000:65536
        23450:400000:10
        mcrootless:x:10
        mcrootless:500000:0
        mcrootless:4294967295:2
        mcrootless:600000
        mcrootless:700000:5

        """
        let r = SubordinateIDs.ranges(text, name: me.name, uid: me.uid)
        XCTAssertEqual(r.map { $0.start }, [300000, 400000, 700000])
        XCTAssertEqual(r.map { $0.count }, [65536, 10, 5])
    }

    func testRootlessMappingsOwnIdThenRanges() {
        let m = SubordinateIDs.rootlessMappings(identity: me, subuid: "mcrootless:300000:65536\n",
                                                subgid: "mcrootless:300000:65536\nmcrootless:900000:4\n")
        XCTAssertTrue(m.complete)
        XCTAssertEqual(m.uid, [IDMapping(containerID: 0, hostID: 23450, size: 1),
                               IDMapping(containerID: 1, hostID: 300000, size: 65536)])
        XCTAssertEqual(m.gid, [IDMapping(containerID: 0, hostID: 23451, size: 1),
                               IDMapping(containerID: 1, hostID: 300000, size: 65536),
                               IDMapping(containerID: 65537, hostID: 900000, size: 4)])
        XCTAssertEqual(SubordinateIDs.hostID(0, m.uid), 23450)
        XCTAssertEqual(SubordinateIDs.hostID(1000, m.uid), 300999)
        XCTAssertEqual(SubordinateIDs.hostID(65536, m.uid), 365535)
        XCTAssertNil(SubordinateIDs.hostID(65537, m.uid))
        XCTAssertEqual(SubordinateIDs.hostID(65538, m.gid), 900001)
    }

    func testRootlessMappingsWithoutRangesAreOwnIdsAndIncomplete() {
        for (u, g) in [(nil, nil), ("other:1:2\n", "mcrootless:5:5\n"), ("mcrootless:5:5\n", "")] as [(String?, String?)] {
            let m = SubordinateIDs.rootlessMappings(identity: me, subuid: u, subgid: g)
            XCTAssertFalse(m.complete, "\(String(describing: u)) \(String(describing: g))")
            XCTAssertEqual(m.uid, [IDMapping(containerID: 0, hostID: 23450, size: 1)])
            XCTAssertEqual(m.gid, [IDMapping(containerID: 0, hostID: 23451, size: 1)])
        }
        let m = SubordinateIDs.rootlessMappings(identity: me, subuid: nil, subgid: nil)
        XCTAssertEqual(m.uid, [IDMapping(containerID: 0, hostID: 23450, size: 1)])
        XCTAssertEqual(m.gid, [IDMapping(containerID: 0, hostID: 23451, size: 1)])
    }

    /// A file chowned to 0 and 7 inside lands on the mapped host ids; the
    /// body's failure comes back as the same one-line Failure; a body that
    /// dies is an error; no child is left.
    func testInMappedNamespaceChownsThroughTheMapsAndReportsFailures() throws {
        try XCTSkipIf(!UserNamespaceMaps.privileged, "needs root")
        let dir = "/tmp/mc-rootless-ids-\(getpid())"
        XCTAssertEqual(mkdir(dir, 0o755), 0)
        XCTAssertEqual(chmod(dir, 0o777), 0)  // the namespace's root is 1200000 here
        defer { try? FS.removeTree(dir) }
        let maps = [IDMapping(containerID: 0, hostID: 1_200_000, size: 1), IDMapping(containerID: 1, hostID: 1_300_000, size: 100)]
        try UserNamespaceMaps.inMappedNamespace(uid: maps, gid: maps, what: "test") {
            guard getuid() == 0, getgid() == 0 else { throw Failure(.failed, "not root inside: \(getuid())") }
            for (name, id) in [("a", 0), ("b", 7)] as [(String, UInt32)] {
                let fd = open(dir + "/" + name, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw SysError("create \(name)") }
                defer { close(fd) }
                guard fchown(fd, id, id) == 0 else { throw SysError("chown \(name)") }
            }
            // An id outside the maps cannot be given.
            guard chown(dir + "/a", 500, 500) != 0, errno == EINVAL else { throw Failure(.failed, "chown 500 worked") }
        }
        var st = stat()
        XCTAssertEqual(stat(dir + "/a", &st), 0)
        XCTAssertEqual(st.st_uid, 1_200_000); XCTAssertEqual(st.st_gid, 1_200_000)
        XCTAssertEqual(stat(dir + "/b", &st), 0)
        XCTAssertEqual(st.st_uid, 1_300_006); XCTAssertEqual(st.st_gid, 1_300_006)

        XCTAssertThrowsError(try UserNamespaceMaps.inMappedNamespace(uid: maps, gid: maps, what: "test") {
            throw Failure(.invalid, "layer x: refused", errno: EPERM)
        }) { e in
            let f = e as? Failure
            XCTAssertEqual(f?.kind, .invalid); XCTAssertEqual(f?.what, "layer x: refused"); XCTAssertEqual(f?.errno, EPERM)
        }
        XCTAssertThrowsError(try UserNamespaceMaps.inMappedNamespace(uid: maps, gid: maps, what: "dying") {
            kill(getpid(), SIGKILL)
        }) { e in XCTAssertTrue("\(e)".contains("dying: the helper in the user namespace was killed by signal 9"), "\(e)") }
        // A mapping the kernel refuses (overlapping) fails from here; the child is reaped.
        let bad = [IDMapping(containerID: 0, hostID: 1_200_000, size: 10), IDMapping(containerID: 5, hostID: 1_300_000, size: 10)]
        XCTAssertThrowsError(try UserNamespaceMaps.inMappedNamespace(uid: bad, gid: maps, what: "bad") {})
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1)
        XCTAssertEqual(errno, ECHILD)

        // removeTreeMapped: as root, directly.
        try FS.removeTreeMapped(dir)
        XCTAssertFalse(FS.exists(dir))
        try FS.removeTreeMapped(dir)  // missing is fine
    }
}
