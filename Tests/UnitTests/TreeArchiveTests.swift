import XCTest
import Engine
import Glibc
import Image
import Sys

// cp's halves without a container: TreeArchiver (a tree by descriptor, as
// tar) and ConfinedExtract (Unpacker's plain mode under cp's policy), and
// the volume name rule.

final class TreeArchiveTests: XCTestCase {
    var base = ""

    override func setUp() {
        var template = Array("/tmp/mc-tree-XXXXXX".utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    override func tearDown() {
        _ = spawnWait(["/bin/rm", "-rf", base])
    }

    /// Archives `path` (named `name` in the tar) into a file, then extracts
    /// that file into `into` with `policy`.
    func roundTrip(_ path: String, name: String, into: String, policy: ExtractPolicy = ExtractPolicy()) throws {
        let tar = base + "/t.tar"
        let out = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let top = open(path, Kernel.O_PATH | O_NOFOLLOW | O_CLOEXEC)
        let procFds = try ProcFS.fdDirectory(what: "test")
        let a = try TreeArchiver(fd: out, procFds: procFds, what: "test")
        try a.add(top, name: Array(name.utf8))
        try a.finish()
        close(out); close(top); close(procFds)
        try extract(tar, into: into, policy: policy)
    }

    func extract(_ tar: String, into: String, policy: ExtractPolicy = ExtractPolicy()) throws {
        let fd = open(tar, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let reader = try TarReader(fd: fd, what: tar, threaded: false)
        let x = try ConfinedExtract(into: open(into, O_RDONLY | O_DIRECTORY | O_CLOEXEC), policy: policy, what: tar)
        while let e = try reader.next() { try x.apply(e, reader) }
        try x.finish()
    }

    func testTreeRoundTripKeepsModesOwnersLinksAndWhiteoutNames() throws {
        let src = base + "/src"
        mkdir(src, 0o755)
        mkdir(src + "/empty", 0o700)
        try FS.writeAtomically(src + "/f", "data", mode: 0o640)
        chown(src + "/f", 1234, 5678)
        try FS.writeAtomically(src + "/.wh.name", "a plain name to cp", mode: 0o644)
        symlink("/etc/shadow", src + "/link")
        link(src + "/f", src + "/hard")
        let dst = base + "/dst"
        mkdir(dst, 0o755)
        try roundTrip(src, name: "copy", into: dst)
        var st = stat()
        XCTAssertEqual(lstat(dst + "/copy/f", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        XCTAssertEqual(st.st_uid, 1234)
        XCTAssertEqual(st.st_gid, 5678)
        XCTAssertEqual(try FS.readString(dst + "/copy/f"), "data")
        XCTAssertEqual(try FS.readString(dst + "/copy/.wh.name"), "a plain name to cp")
        var buf = [CChar](repeating: 0, count: 256)
        XCTAssertEqual(readlink(dst + "/copy/link", &buf, 255), 11)
        XCTAssertEqual(String(cString: buf), "/etc/shadow")
        XCTAssertEqual(lstat(dst + "/copy/empty", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o700)
        var a = stat(), b = stat()
        stat(dst + "/copy/f", &a); stat(dst + "/copy/hard", &b)
        XCTAssertEqual(a.st_ino, b.st_ino)
    }

    func testPolicyOwnerSetIDAndDevices() throws {
        let src = base + "/src"
        mkdir(src, 0o755)
        try FS.writeAtomically(src + "/suid", "x", mode: 0o4755)
        XCTAssertEqual(mknod(src + "/null", S_IFCHR | 0o666, mc_testMakedev(1, 3)), 0)
        let dst = base + "/dst"
        mkdir(dst, 0o755)
        var p = ExtractPolicy()
        p.owner = (7, 8)
        p.dropSetID = true
        p.skipDevices = true
        try roundTrip(src, name: "c", into: dst, policy: p)
        var st = stat()
        XCTAssertEqual(lstat(dst + "/c/suid", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o755)
        XCTAssertEqual(st.st_uid, 7)
        XCTAssertNotEqual(lstat(dst + "/c/null", &st), 0, "a device node reached the destination")
    }

    func testDirectoryIsNotReplacedAndLinksDoNotLeadOut() throws {
        let src = base + "/src"
        mkdir(src, 0o755)
        mkdir(src + "/d", 0o755)
        let dst = base + "/dst"
        mkdir(dst, 0o755)
        try roundTrip(src, name: "c", into: dst)
        // A file named as the directory the copy made: refused, not a removal.
        let f = base + "/file"
        try FS.writeAtomically(f, "x")
        XCTAssertThrowsError(try roundTrip(f, name: "c", into: dst)) { e in
            XCTAssertTrue("\(e)".contains("cannot overwrite a directory with a non-directory"), "\(e)")
        }
        XCTAssertTrue(FS.isDirectory(dst + "/c/d"))
        // A symlink to the outside, then a directory through it: stays inside.
        let outside = base + "/outside"
        mkdir(outside, 0o755)
        symlink(outside, dst + "/c/esc")
        let s2 = base + "/s2"
        mkdir(s2, 0o755)
        mkdir(s2 + "/esc", 0o755)
        try FS.writeAtomically(s2 + "/esc/x", "x")
        _ = try? roundTrip(s2, name: "c", into: dst)
        XCTAssertEqual(FS.listDirectory(outside), [], "written through a symlink")
    }

    func testVolumeNames() {
        for good in ["a", "data", "my_vol-1.2", "0", String(repeating: "a", count: 255)] {
            XCTAssertTrue(Volumes.isValidName(good), good)
        }
        for bad in ["", ".", "..", ".a", "-a", "_a", "a/b", "a,b", "a:b", "a b", "a\nb", "é", String(repeating: "a", count: 256)] {
            XCTAssertFalse(Volumes.isValidName(bad), bad)
        }
    }
}

/// makedev(3) for the test's device node.
func mc_testMakedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((UInt64(major & 0xfff) << 8) | (UInt64(major & ~0xfff) << 32) | UInt64(minor & 0xff) | (UInt64(minor & ~0xff) << 12))
}
