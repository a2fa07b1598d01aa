import XCTest
import Glibc
import Sys

// Sys' one directory lister (FS.directoryEntries, which listDirectory,
// removeTree, Cgroups, Rootfs' tmpcopyup and Privileges' fd listing use) and
// its one monotonic clock.

final class DirectoryListingTests: XCTestCase {
    var dir = ""

    override func setUp() {
        var template = Array("/tmp/mc-sys-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    override func tearDown() { try? FS.removeTree(dir) }

    func testEntriesByPathHaveNamesAndTypes() throws {
        try FS.makeDirectories(dir + "/sub/deeper")
        try FS.writeAtomically(dir + "/b.txt", "x")
        XCTAssertEqual(symlink("b.txt", dir + "/a-link"), 0)
        let entries = try XCTUnwrap(FS.directoryEntries(dir)).sorted { $0.name < $1.name }
        XCTAssertEqual(entries.map { $0.name }, ["a-link", "b.txt", "sub"], "no . or ..")
        // tmpfs and the usual local filesystems fill in d_type.
        XCTAssertEqual(entries.map { Int32($0.type) }, [Int32(DT_LNK), Int32(DT_REG), Int32(DT_DIR)])
        XCTAssertEqual(FS.listDirectory(dir), ["a-link", "b.txt", "sub"], "sorted")
        XCTAssertEqual(FS.directoryEntries(dir + "/sub/deeper"), [])
    }

    func testMissingDirectory() {
        XCTAssertNil(FS.directoryEntries(dir + "/nope"))
        XCTAssertEqual(errno, ENOENT)
        XCTAssertEqual(FS.listDirectory(dir + "/nope"), [])
    }

    func testEntriesByDescriptorTakeTheDescriptor() throws {
        try FS.writeAtomically(dir + "/f", "x")
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(FS.directoryEntries(fd: fd)?.map { $0.name }, ["f"])
        XCTAssertEqual(fcntl(fd, F_GETFD), -1, "closed once listed")
        // Not a directory: nil, errno kept, and the descriptor closed all the same.
        let file = open(dir + "/f", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(file, 0)
        XCTAssertNil(FS.directoryEntries(fd: file))
        XCTAssertEqual(errno, ENOTDIR)
        XCTAssertEqual(fcntl(file, F_GETFD), -1)
    }

    func testRemoveTreeRemovesEverythingButFollowsNoLink() throws {
        let outside = dir + "-outside"
        try FS.makeDirectories(outside)
        defer { try? FS.removeTree(outside) }
        try FS.writeAtomically(outside + "/keep", "x")
        try FS.makeDirectories(dir + "/t/a/b")
        try FS.writeAtomically(dir + "/t/a/b/f", "x")
        XCTAssertEqual(symlink(outside, dir + "/t/link"), 0)
        try FS.removeTree(dir + "/t")
        XCTAssertFalse(FS.exists(dir + "/t"))
        XCTAssertTrue(FS.exists(outside + "/keep"))
        try FS.removeTree(dir + "/t")  // missing is fine
    }
}

final class ClockTests: XCTestCase {
    func testMonotonicClockAgrees() {
        let s0 = Clock.monotonicSeconds(), m0 = Clock.monotonicMs()
        usleep(20_000)
        let s1 = Clock.monotonicSeconds(), m1 = Clock.monotonicMs()
        XCTAssertGreaterThanOrEqual(s1 - s0, 0.019)
        XCTAssertGreaterThanOrEqual(m1 - m0, 19)
        XCTAssertLessThan(abs(Double(m1) / 1000 - s1), 0.01, "one clock in two units")
    }
}

/// Sys' CgroupHierarchy, read from mountinfo once for Cgroups and Rootfs.
final class CgroupHierarchyTests: XCTestCase {
    func mount(_ line: String) -> CgroupHierarchy? {
        MountInfo.parse(Array(line.utf8)).first.flatMap(CgroupHierarchy.init)
    }

    func testV1ControllersAndMountData() throws {
        let systemd = try XCTUnwrap(mount(
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,nosuid,xattr,release_agent=/lib/x,name=systemd\n"))
        XCTAssertEqual(systemd.controllers, ["name=systemd"])
        XCTAssertEqual(systemd.mountData, "nosuid,xattr,name=systemd")
        XCTAssertFalse(systemd.isUnified)
        let cpu = try XCTUnwrap(mount("32 31 0:29 /sub /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup ro,cpu,cpuacct,clone_children\n"))
        XCTAssertEqual(cpu.controllers, ["cpu", "cpuacct"])
        XCTAssertTrue(cpu.has("cpuacct") && !cpu.has("memory"))
        XCTAssertEqual(cpu.mountRoot, "/sub")
        XCTAssertEqual(cpu.mountData, "cpu,cpuacct,clone_children")
        XCTAssertEqual(mount("33 31 0:30 / /x rw - cgroup cgroup rw,name=\n")?.controllers, [], "an empty name is no hierarchy name")
    }

    func testCgroup2AndOthers() throws {
        let v2 = try XCTUnwrap(mount("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"))
        XCTAssertTrue(v2.isUnified)
        XCTAssertEqual(v2.controllers, [])
        XCTAssertEqual(v2.mountData, "")
        XCTAssertNil(mount("27 1 254:0 / / rw - ext4 /dev/vda rw\n"))
        XCTAssertEqual(CgroupHierarchy(mountPoint: "/m", controllers: ["memory"]).superOptions, "rw,memory")
    }
}
