import XCTest
import CArchive
import CShim
import Glibc
import Image
import Sys

// Layer unpacking (Image/Unpack.swift), for real, as root: tars made in the
// test (python3's tarfile, which writes whatever name it is given, or bytes
// by hand), unpacked into a temporary directory, and the tree checked with
// lstat, readlink and getxattr. The hostile archives each make their attack
// and then check that nothing appeared outside the layer directory: beside
// it lies `outside`, a sentinel directory that must stay empty.

/// Runs argv[0] (a path) with argv, waits; its exit status (-1 if killed).
@discardableResult
func spawnWait(_ args: [String], stdin: Int32? = nil) -> Int32 {
    var pid: pid_t = 0
    var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let fd = stdin { posix_spawn_file_actions_adddup2(&actions, fd, 0) }
    let rc = posix_spawn(&pid, args[0], &actions, nil, &argv, environ)
    precondition(rc == 0, "posix_spawn \(args[0]): \(rc)")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
}

/// The python3 prelude every archive script gets: `t(name, **kw)` adds a
/// TarInfo (kw: type, data, linkname, mode, uid, gid, mtime, pax) to `tf`.
private let prelude = """
import io, os, sys, tarfile
out = sys.argv[1]
fmt = tarfile.PAX_FORMAT
def open_tar(path=None, fmt=tarfile.PAX_FORMAT):
    return tarfile.open(path or out, "w", format=fmt)
def t(tf, name, type=tarfile.REGTYPE, data=b"", linkname="", mode=0o644, uid=0, gid=0, mtime=1600000000, pax=None, devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = type; ti.linkname = linkname; ti.mode = mode; ti.uid = uid; ti.gid = gid; ti.mtime = mtime
    ti.devmajor = devmajor; ti.devminor = devminor
    if pax: ti.pax_headers = pax
    ti.size = len(data) if type == tarfile.REGTYPE else 0
    tf.addfile(ti, io.BytesIO(data) if type == tarfile.REGTYPE else None)

"""

final class UnpackTests: XCTestCase {
    var base = ""
    var layer: String { base + "/layer" }
    var outside: String { base + "/outside" }

    override func setUp() {
        var template = Array("/tmp/mc-unpack-XXXXXX".utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        mkdir(layer, 0o755)
        mkdir(outside, 0o755)
    }

    override func tearDown() {
        _ = spawnWait(["/bin/rm", "-rf", base])
    }

    /// Writes `script` (after the prelude) and runs it to make `name` in base.
    @discardableResult
    func makeTar(_ name: String, _ script: String) throws -> String {
        let py = base + "/" + name + ".py"
        try FS.writeAtomically(py, prelude + script)
        let path = base + "/" + name
        XCTAssertEqual(spawnWait(["/usr/bin/python3", py, path]), 0, "python3 \(py)")
        unlink(py)
        return path
    }

    func unpack(_ archive: String, into dir: String? = nil, lower: [String] = []) throws -> LayerUnpackResult {
        let fd = open(archive, O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        return try LayerUnpack.unpack(fd: fd, into: dir ?? layer, lower: lower, what: archive)
    }

    /// Unpacks, expecting a Failure whose message has `contains`; returns it.
    @discardableResult
    func refused(_ archive: String, _ contains: String, lower: [String] = [], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try unpack(archive, lower: lower)
            XCTFail("unpacked \(archive) without an error", file: file, line: line)
        } catch let f as Failure {
            XCTAssertTrue(f.description.contains(contains), "\(f.description) lacks \(contains)", file: file, line: line)
            XCTAssertTrue(f.description.hasPrefix(archive + ":"), "\(f.description) does not name the archive", file: file, line: line)
            return f.description
        } catch {
            XCTFail("not a Failure: \(error)", file: file, line: line)
        }
        return ""
    }

    /// Nothing but the archive(s), the layer and the empty sentinel in base.
    func assertNothingOutside(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(FS.listDirectory(outside), [], "written outside the layer", file: file, line: line)
        let extra = FS.listDirectory(base).filter { $0 != "layer" && $0 != "outside" && !$0.hasSuffix(".tar") && !$0.hasSuffix(".gz") && !$0.hasSuffix(".zst") && !$0.hasPrefix("lower") }
        XCTAssertEqual(extra, [], "written beside the layer", file: file, line: line)
        XCTAssertFalse(FS.exists("/tmp/mc-unpack-victim"), file: file, line: line)
    }

    func lstatOf(_ p: String) -> stat? {
        var st = stat()
        return lstat(p, &st) == 0 ? st : nil
    }

    func readlinkOf(_ p: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(p, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func xattrOf(_ p: String, _ name: String) -> String? {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = mc_lgetxattrat(AT_FDCWD, p, name, &buf, buf.count)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    func sha256sum(_ path: String) throws -> Digest {
        Digest.of(try FS.readBytes(path))
    }

    // MARK: A faithful tree

    func testTypesModesOwnersTimesAndDigest() throws {
        let tar = try makeTar("a.tar", """
        tf = open_tar()
        t(tf, "./", tarfile.DIRTYPE, mode=0o755, mtime=1500000000)
        t(tf, "./etc/", tarfile.DIRTYPE, mode=0o751, uid=0, gid=0, mtime=1500000001)
        t(tf, "./etc/passwd", data=b"root:x:0:0::/root:/bin/sh\\n", mode=0o644, mtime=1500000002)
        t(tf, "./bin/", tarfile.DIRTYPE, mode=0o755, mtime=1500000003)
        t(tf, "./bin/su", data=b"\\x7fELF", mode=0o4755, uid=0, gid=0, mtime=1500000004)
        t(tf, "./bin/sh", tarfile.SYMTYPE, linkname="busybox", mtime=1500000005, uid=12, gid=34)
        t(tf, "./bin/busybox", data=b"busybox" * 1000, mode=0o755, mtime=1500000006)
        t(tf, "./bin/ash", tarfile.LNKTYPE, linkname="./bin/busybox")
        t(tf, "./tmp/", tarfile.DIRTYPE, mode=0o1777, mtime=1500000007)
        t(tf, "./home/user/", tarfile.DIRTYPE, mode=0o2750, uid=1000, gid=1001, mtime=1500000008)
        t(tf, "./home/user/file", data=b"x", mode=0o600, uid=1000, gid=1001, mtime=1500000009)
        t(tf, "./dev/", tarfile.DIRTYPE, mode=0o755)
        t(tf, "./dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
        t(tf, "./dev/sda", tarfile.BLKTYPE, mode=0o660, gid=6, devmajor=8, devminor=0)
        t(tf, "./run/fifo", tarfile.FIFOTYPE, mode=0o620)
        t(tf, "./cap", data=b"ping", mode=0o755, pax={"SCHILY.xattr.security.capability": "\\x01\\x00\\x00\\x02\\x00\\x20\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00", "SCHILY.xattr.user.note": "hello"})
        t(tf, "./" + "long/" * 40 + "name-" + "x" * 150, data=b"deep")
        t(tf, "./ünïcode-名前", data=b"u")
        t(tf, "./nsec", data=b"n", pax={"mtime": "1600000000.123456789"})
        tf.close()
        """)
        let r = try unpack(tar)
        let bytes = try FS.readBytes(tar)
        XCTAssertEqual(r.diffID, Digest.of(bytes))
        XCTAssertEqual(r.size, Int64(bytes.count))

        let root = try XCTUnwrap(lstatOf(layer))
        XCTAssertEqual(root.st_mode & 0o7777, 0o755)
        XCTAssertEqual(root.st_mtim.tv_sec, 1500000000)
        let etc = try XCTUnwrap(lstatOf(layer + "/etc"))
        XCTAssertEqual(etc.st_mode & S_IFMT, S_IFDIR)
        XCTAssertEqual(etc.st_mode & 0o7777, 0o751)
        XCTAssertEqual(etc.st_mtim.tv_sec, 1500000001, "a directory's mtime is set after its contents")
        XCTAssertEqual(try FS.readString(layer + "/etc/passwd"), "root:x:0:0::/root:/bin/sh\n")
        let su = try XCTUnwrap(lstatOf(layer + "/bin/su"))
        XCTAssertEqual(su.st_mode & 0o7777, 0o4755, "setuid survives the chown")
        XCTAssertEqual(su.st_mtim.tv_sec, 1500000004)
        XCTAssertEqual(readlinkOf(layer + "/bin/sh"), "busybox")
        let sh = try XCTUnwrap(lstatOf(layer + "/bin/sh"))
        XCTAssertEqual(sh.st_uid, 12)
        XCTAssertEqual(sh.st_gid, 34)
        XCTAssertEqual(sh.st_mtim.tv_sec, 1500000005, "a symlink's own mtime")
        let bb = try XCTUnwrap(lstatOf(layer + "/bin/busybox"))
        let ash = try XCTUnwrap(lstatOf(layer + "/bin/ash"))
        XCTAssertEqual(bb.st_ino, ash.st_ino, "a hard link")
        XCTAssertEqual(bb.st_nlink, 2)
        XCTAssertEqual(bb.st_size, 7000)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/tmp")).st_mode & 0o7777, 0o1777)
        let home = try XCTUnwrap(lstatOf(layer + "/home/user"))
        XCTAssertEqual(home.st_mode & 0o7777, 0o2750)
        XCTAssertEqual(home.st_uid, 1000)
        XCTAssertEqual(home.st_gid, 1001)
        let hf = try XCTUnwrap(lstatOf(layer + "/home/user/file"))
        XCTAssertEqual(hf.st_uid, 1000)
        XCTAssertEqual(hf.st_gid, 1001)
        XCTAssertEqual(hf.st_mode & 0o7777, 0o600)
        let null = try XCTUnwrap(lstatOf(layer + "/dev/null"))
        XCTAssertEqual(null.st_mode & S_IFMT, S_IFCHR)
        XCTAssertEqual(null.st_mode & 0o7777, 0o666)
        XCTAssertEqual(UInt64(null.st_rdev), mc_makedev(1, 3))
        let sda = try XCTUnwrap(lstatOf(layer + "/dev/sda"))
        XCTAssertEqual(sda.st_mode & S_IFMT, S_IFBLK)
        XCTAssertEqual(UInt64(sda.st_rdev), mc_makedev(8, 0))
        XCTAssertEqual(sda.st_gid, 6)
        let fifo = try XCTUnwrap(lstatOf(layer + "/run/fifo"))
        XCTAssertEqual(fifo.st_mode & S_IFMT, S_IFIFO)
        XCTAssertEqual(fifo.st_mode & 0o7777, 0o620)
        let run = try XCTUnwrap(lstatOf(layer + "/run"))
        XCTAssertEqual(run.st_mode & 0o7777, 0o755, "a missing parent is made 0755")
        var cap = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(mc_lgetxattrat(AT_FDCWD, layer + "/cap", "security.capability", &cap, cap.count), 20, "file capabilities survive chown and write")
        XCTAssertEqual(xattrOf(layer + "/cap", "user.note"), "hello")
        XCTAssertEqual(try FS.readString(layer + "/" + String(repeating: "long/", count: 40) + "name-" + String(repeating: "x", count: 150)), "deep")
        XCTAssertEqual(try FS.readString(layer + "/ünïcode-名前"), "u", "a UTF-8 pax name keeps its bytes")
        let nsec = try XCTUnwrap(lstatOf(layer + "/nsec"))
        XCTAssertEqual(nsec.st_mtim.tv_sec, 1600000000)
        XCTAssertEqual(nsec.st_mtim.tv_nsec, 123456789)
        assertNothingOutside()
    }

    func testSetgidParentsAndTheUmaskDoNotLeakIntoModesOrOwners() throws {
        let old = umask(0o027)
        defer { umask(old) }
        let tar = try makeTar("g.tar", """
        tf = open_tar()
        t(tf, "g/", tarfile.DIRTYPE, mode=0o2775, gid=50)
        t(tf, "g/f", data=b"f", mode=0o666)
        t(tf, "g/own", data=b"o", mode=0o640, gid=50)
        t(tf, "g/sub/", tarfile.DIRTYPE, mode=0o755)
        t(tf, "g/l", tarfile.SYMTYPE, linkname="f")
        t(tf, "open", data=b"x", mode=0o777)
        t(tf, "opendir/", tarfile.DIRTYPE, mode=0o777)
        tf.close()
        """)
        _ = try unpack(tar)
        let f = try XCTUnwrap(lstatOf(layer + "/g/f"))
        XCTAssertEqual(f.st_gid, 0, "not the setgid parent's group")
        XCTAssertEqual(f.st_mode & 0o7777, 0o666)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/g/own")).st_gid, 50)
        let sub = try XCTUnwrap(lstatOf(layer + "/g/sub"))
        XCTAssertEqual(sub.st_mode & 0o7777, 0o755, "no setgid bit inherited")
        XCTAssertEqual(sub.st_gid, 0)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/g/l")).st_gid, 0)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/open")).st_mode & 0o7777, 0o777, "not cut by the umask")
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/opendir")).st_mode & 0o7777, 0o777)
    }

    func testWhiteoutsAndOpaqueDirectory() throws {
        let tar = try makeTar("w.tar", """
        tf = open_tar()
        t(tf, "etc/", tarfile.DIRTYPE, mode=0o755)
        t(tf, "etc/.wh.hostname", data=b"")
        t(tf, "opt/", tarfile.DIRTYPE, mode=0o755)
        t(tf, "opt/.wh..wh..opq", data=b"")
        t(tf, "opt/new", data=b"new")
        t(tf, ".wh.gone-dir", data=b"")
        t(tf, "usr/.wh..wh.plnk", tarfile.DIRTYPE)
        tf.close()
        """)
        _ = try unpack(tar)
        let wh = try XCTUnwrap(lstatOf(layer + "/etc/hostname"))
        XCTAssertEqual(wh.st_mode & S_IFMT, S_IFCHR)
        XCTAssertEqual(wh.st_rdev, 0)
        XCTAssertNil(lstatOf(layer + "/etc/.wh.hostname"))
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/gone-dir")).st_mode & S_IFMT, S_IFCHR)
        XCTAssertEqual(xattrOf(layer + "/opt", "trusted.overlay.opaque"), "y")
        XCTAssertNil(lstatOf(layer + "/opt/.wh..wh..opq"))
        XCTAssertEqual(try FS.readString(layer + "/opt/new"), "new")
        XCTAssertNil(xattrOf(layer + "/etc", "trusted.overlay.opaque"))
        XCTAssertEqual(FS.listDirectory(layer + "/usr"), [], "aufs' .wh..wh. entries are skipped")
    }

    func testOverlayXattrsFromTheArchiveAreDropped() throws {
        let tar = try makeTar("ov.tar", """
        tf = open_tar()
        t(tf, "d/", tarfile.DIRTYPE, pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.keep": "k"})
        t(tf, "f", data=b"f", pax={"SCHILY.xattr.trusted.overlay.metacopy": "", "SCHILY.xattr.user.overlay.origin": "x", "SCHILY.xattr.trusted.overlay.opaque": "x"})
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertNil(xattrOf(layer + "/d", "trusted.overlay.redirect"))
        XCTAssertEqual(xattrOf(layer + "/d", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(xattrOf(layer + "/d", "user.keep"), "k")
        XCTAssertNil(xattrOf(layer + "/f", "trusted.overlay.metacopy"))
        XCTAssertNil(xattrOf(layer + "/f", "user.overlay.origin"))
        XCTAssertNil(xattrOf(layer + "/f", "trusted.overlay.opaque"))
    }

    func testXattrsTheKernelRefusesOnASymlinkAreSkipped() throws {
        // user.* cannot be set on a symlink or a fifo (EPERM): skipped, as docker does.
        let tar = try makeTar("ux.tar", """
        tf = open_tar()
        t(tf, "l", tarfile.SYMTYPE, linkname="x", pax={"SCHILY.xattr.user.a": "1", "SCHILY.xattr.trusted.b": "2"})
        t(tf, "p", tarfile.FIFOTYPE, pax={"SCHILY.xattr.user.a": "1"})
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertEqual(readlinkOf(layer + "/l"), "x")
        XCTAssertEqual(xattrOf(layer + "/l", "trusted.b"), "2", "trusted.* is allowed on a symlink")
        XCTAssertNil(xattrOf(layer + "/l", "user.a"))
    }

    func testNamesThatAreNotUTF8KeepTheirBytes() throws {
        let tar = try makeTar("l1.tar", """
        tf = tarfile.open(out, "w", format=tarfile.USTAR_FORMAT, encoding="latin-1")
        t(tf, "caf\\u00e9", data=b"latin-1")
        tf.close()
        tf = tarfile.open(out + ".pax.tar", "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")
        t(tf, "na\\udcefve", data=b"raw byte in pax")
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertEqual(rawNames(layer), [[0x63, 0x61, 0x66, 0xe9]], "the archive's bytes, not '?' or U+FFFD")
        _ = spawnWait(["/bin/rm", "-rf", layer]); mkdir(layer, 0o755)
        _ = try unpack(tar + ".pax.tar")
        XCTAssertEqual(rawNames(layer), [[0x6e, 0x61, 0xef, 0x76, 0x65]], "pax hdrcharset=BINARY keeps the raw byte")
    }

    /// The names in `dir` as bytes.
    func rawNames(_ dir: String) -> [[UInt8]] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let ent = readdir(d) {
            let n: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if n != [0x2e] && n != [0x2e, 0x2e] { out.append(n) }
        }
        return out
    }

    // MARK: Hostile archives

    func testTraversalNamesAreRefused() throws {
        for (i, name) in ["../x", "a/../../x", "./../outside/x", "a/b/../../../outside/x", ".."].enumerated() {
            let tar = try makeTar("trav\(i).tar", """
            tf = open_tar()
            t(tf, "a/", tarfile.DIRTYPE)
            t(tf, "a/b/", tarfile.DIRTYPE)
            t(tf, \(pyString(name)), data=b"pwned")
            tf.close()
            """)
            refused(tar, "\"..\" component")
            assertNothingOutside()
        }
    }

    func testAbsoluteNamesAreConfined() throws {
        let tar = try makeTar("abs.tar", """
        tf = open_tar(fmt=tarfile.GNU_FORMAT)
        t(tf, "\(outside)/x", data=b"inside")
        t(tf, "/etc/mc-unpack-test", data=b"inside")
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertEqual(try FS.readString(layer + outside + "/x"), "inside")
        XCTAssertEqual(try FS.readString(layer + "/etc/mc-unpack-test"), "inside")
        XCTAssertFalse(FS.exists("/etc/mc-unpack-test"))
        assertNothingOutside()
    }

    func testAbsoluteSymlinkThenWriteThroughIt() throws {
        // The link's target does not exist in the layer: refused.
        let tar = try makeTar("sym1.tar", """
        tf = open_tar()
        t(tf, "l", tarfile.SYMTYPE, linkname=\(pyString(outside)))
        t(tf, "l/file", data=b"pwned")
        t(tf, "v", tarfile.SYMTYPE, linkname="/tmp/mc-unpack-victim")
        t(tf, "v", data=b"pwned")
        tf.close()
        """)
        refused(tar, "\"l/file\": parent \"l\" is a symlink that leads nowhere inside the layer")
        assertNothingOutside()
    }

    func testAbsoluteSymlinkResolvesInsideTheLayer() throws {
        // The target exists inside the layer: written there, as in a chroot.
        let tar = try makeTar("sym2.tar", """
        tf = open_tar()
        t(tf, "tmp/", tarfile.DIRTYPE)
        t(tf, "tmp/mc-unpack-victim/", tarfile.DIRTYPE)
        t(tf, "l", tarfile.SYMTYPE, linkname="/tmp/mc-unpack-victim")
        t(tf, "l/file", data=b"confined")
        t(tf, "v", tarfile.SYMTYPE, linkname="/tmp/mc-unpack-victim/v")
        t(tf, "v", data=b"replaced")
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertEqual(try FS.readString(layer + "/tmp/mc-unpack-victim/file"), "confined")
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/v")).st_mode & S_IFMT, S_IFREG, "a file replaces the symlink, not written through it")
        XCTAssertNil(lstatOf(layer + "/tmp/mc-unpack-victim/v"))
        assertNothingOutside()
    }

    func testRelativeSymlinkEscapingIsClamped() throws {
        let tar = try makeTar("rel.tar", """
        tf = open_tar()
        t(tf, "a/", tarfile.DIRTYPE)
        t(tf, "a/l", tarfile.SYMTYPE, linkname="../../../../../../..")
        t(tf, "a/l/x", data=b"at the layer's root")
        t(tf, "up", tarfile.SYMTYPE, linkname="../outside")
        t(tf, "up/y", data=b"pwned")
        tf.close()
        """)
        // "up" -> ../outside resolves to <layer>/outside, which is not there.
        refused(tar, "\"up/y\": parent \"up\" is a symlink that leads nowhere inside the layer")
        XCTAssertEqual(try FS.readString(layer + "/x"), "at the layer's root")
        assertNothingOutside()
    }

    func testHardLinkOutsideIsRefusedOrConfined() throws {
        let t1 = try makeTar("hl1.tar", """
        tf = open_tar()
        t(tf, "passwd", tarfile.LNKTYPE, linkname="/etc/passwd")
        tf.close()
        """)
        refused(t1, "hard link target \"/etc/passwd\" not found")
        let t2 = try makeTar("hl2.tar", """
        tf = open_tar()
        t(tf, "x", tarfile.LNKTYPE, linkname="../outside/secret")
        tf.close()
        """)
        refused(t2, "\"..\" component")
        // Through a symlink to the outside: the link's parent resolves inside.
        let t3 = try makeTar("hl3.tar", """
        tf = open_tar()
        t(tf, "etc/", tarfile.DIRTYPE)
        t(tf, "etc/passwd", data=b"layer's own")
        t(tf, "s", tarfile.SYMTYPE, linkname="/etc")
        t(tf, "pw", tarfile.LNKTYPE, linkname="s/passwd")
        tf.close()
        """)
        XCTAssertNoThrow(try unpack(t3))
        XCTAssertEqual(try FS.readString(layer + "/pw"), "layer's own")
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/pw")).st_ino, try XCTUnwrap(lstatOf(layer + "/etc/passwd")).st_ino)
        var host = stat()
        XCTAssertEqual(stat("/etc/passwd", &host), 0)
        XCTAssertNotEqual(try XCTUnwrap(lstatOf(layer + "/pw")).st_ino, host.st_ino)
        assertNothingOutside()
    }

    func testHugeHeaderSizeIsACleanError() throws {
        // 8 GiB claimed in octal, 64 GiB in base-256, then a few bytes.
        let tar = try makeTar("huge.tar", """
        ti = tarfile.TarInfo("big"); ti.size = 0o77777777777
        h = ti.tobuf(tarfile.USTAR_FORMAT)
        ti2 = tarfile.TarInfo("bigger"); ti2.size = 1 << 36
        h2 = ti2.tobuf(tarfile.GNU_FORMAT)
        open(out, "wb").write(h + b"x" * 1000)
        open(out + ".2.tar", "wb").write(h2 + b"y" * 100000)
        """)
        refused(tar, "truncated")
        refused(tar + ".2.tar", "truncated")
        assertNothingOutside()
    }

    // MARK: Compression and damaged streams

    /// The zstd frame of `bytes` (libzstd, level 3).
    func zstd(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let n = out.withUnsafeMutableBytes { o in bytes.withUnsafeBytes { ZSTD_compress(o.baseAddress, o.count, $0.baseAddress, $0.count, 3) } }
        precondition(ZSTD_isError(n) == 0)
        return Array(out[0..<n])
    }

    /// A tar with a 3 MiB file (crossing the 1 MiB chunks), a few small ones.
    func sampleTar() throws -> String {
        try makeTar("s.tar", """
        import random
        r = random.Random(7)
        tf = open_tar()
        t(tf, "big", data=bytes(r.getrandbits(8) for _ in range(3 << 20)))
        for i in range(50):
            t(tf, "d/f%d" % i, data=b"small %d" % i)
        tf.close()
        """)
    }

    func checkSample(_ r: LayerUnpackResult, _ plain: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(r.diffID, Digest.of(plain), "the DiffID is the plain tar's digest", file: file, line: line)
        XCTAssertEqual(r.size, Int64(plain.count), file: file, line: line)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/big")).st_size, 3 << 20, file: file, line: line)
        XCTAssertEqual(try FS.readString(layer + "/d/f49"), "small 49", file: file, line: line)
    }

    func write(_ path: String, _ bytes: [UInt8]) throws {
        try FS.writeAtomically(path, bytes)
    }

    func testGzipMultiMemberAndTrailingZeros() throws {
        let tar = try sampleTar()
        let plain = try FS.readBytes(tar)
        try makeTar("mm.tar.gz", """
        import gzip
        b = open(\(pyString(tar)), "rb").read()
        h = len(b) // 3
        open(out, "wb").write(gzip.compress(b[:h]) + gzip.compress(b[h:2*h]) + gzip.compress(b[2*h:]) + b"\\0" * 700)
        """)
        let fd = open(base + "/mm.tar.gz", O_RDONLY)
        defer { close(fd) }
        let r = try LayerUnpack.unpack(fd: fd, into: layer, lower: [], what: "mm.tar.gz")
        try checkSample(r, plain)
    }

    func testZstdMultiFrameAndRawDigest() throws {
        let tar = try sampleTar()
        let plain = try FS.readBytes(tar)
        let h = plain.count / 2
        let z = zstd(Array(plain[0..<h])) + zstd(Array(plain[h...]))
        try write(base + "/mf.tar.zst", z)
        try checkSample(try unpack(base + "/mf.tar.zst"), plain)
        // TarReader alone: the DiffID, and the raw (compressed) stream's digest.
        let fd = open(base + "/mf.tar.zst", O_RDONLY)
        defer { close(fd) }
        let reader = try TarReader(fd: fd, what: "mf.tar.zst", hashRaw: true)
        XCTAssertEqual(reader.compression, .zstd)
        var names: [String] = []
        while let e = try reader.next() { names.append(e.path) }
        XCTAssertEqual(names.count, 51)
        let d = try reader.finish()
        XCTAssertEqual(d.diffID, Digest.of(plain))
        XCTAssertEqual(reader.rawDigest()?.digest, Digest.of(z))
        XCTAssertEqual(reader.rawDigest()?.size, nil, "given once")
    }

    /// Starts argv (a path) without waiting; its pid.
    func spawn(_ args: [String]) -> pid_t {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        precondition(posix_spawn(&pid, args[0], nil, nil, &argv, environ) == 0)
        return pid
    }

    func testFromAPipeAndWithoutTheThread() throws {
        // A pipe (a fifo here): read on the caller's thread, same result.
        let tar = try sampleTar()
        let plain = try FS.readBytes(tar)
        try makeTar("p.tar.gz", """
        import gzip
        open(out, "wb").write(gzip.compress(open(\(pyString(tar)), "rb").read()))
        """)
        let fifo = base + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let pid = spawn(["/bin/cp", base + "/p.tar.gz", fifo])
        let fd = open(fifo, O_RDONLY)
        let r = try LayerUnpack.unpack(fd: fd, into: layer, lower: [], what: "fifo")
        close(fd)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        unlink(fifo)
        try checkSample(r, plain)
        // Unthreaded TarReader on a regular file: the same entries and DiffID.
        let gz = open(base + "/p.tar.gz", O_RDONLY)
        defer { close(gz) }
        let reader = try TarReader(fd: gz, what: "p.tar.gz", threaded: false)
        var n = 0
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1000, alignment: 8)
        defer { buf.deallocate() }
        var bigBytes = 0
        while let e = try reader.next() {
            n += 1
            var k = 0
            repeat { k = try reader.read(buf); if e.path == "big" { bigBytes += k } } while k > 0
        }
        XCTAssertEqual(n, 51)
        XCTAssertEqual(bigBytes, 3 << 20)
        XCTAssertEqual(try reader.finish().diffID, Digest.of(plain))
    }

    func testRefusedEarlyInABigStreamStopsTheReader() throws {
        // The bad name comes first; 40 MiB follow, read ahead by the thread.
        let t0 = Clock.monotonicSeconds()
        try makeTar("early.tar.gz", """
        import gzip
        tf = open_tar(out + ".tmp")
        t(tf, "../x", data=b"x")
        t(tf, "big", data=os.urandom(40 << 20))
        tf.close()
        open(out, "wb").write(gzip.compress(open(out + ".tmp", "rb").read(), 1))
        os.unlink(out + ".tmp")
        """)
        let made = Clock.monotonicSeconds()
        refused(base + "/early.tar.gz", "\"..\" component")
        XCTAssertLessThan(Clock.monotonicSeconds() - made, 2.0, "stopped without reading the rest (made in \(made - t0) s)")
        assertNothingOutside()
    }

    func testTruncatedGzip() throws {
        let tar = try sampleTar()
        try makeTar("t.tar.gz", """
        import gzip
        g = gzip.compress(open(\(pyString(tar)), "rb").read())
        open(out, "wb").write(g[:len(g) // 2])
        open(out + ".tail.gz", "wb").write(g[:-4])
        open(out + ".head.gz", "wb").write(g[:5])
        """)
        refused(base + "/t.tar.gz", "truncated gzip data")
        refused(base + "/t.tar.gz.tail.gz", "truncated gzip data")
        refused(base + "/t.tar.gz.head.gz", "truncated gzip data")
        assertNothingOutside()
    }

    func testCorruptGzip() throws {
        let tar = try sampleTar()
        try makeTar("c.tar.gz", """
        import gzip
        g = bytearray(gzip.compress(open(\(pyString(tar)), "rb").read()))
        g[len(g) // 2] ^= 0x55
        open(out, "wb").write(g)
        g = bytearray(gzip.compress(open(\(pyString(tar)), "rb").read()))
        g[-6] ^= 1   # the CRC
        open(out + ".crc.gz", "wb").write(g)
        open(out + ".junk.gz", "wb").write(gzip.compress(open(\(pyString(tar)), "rb").read()) + b"junk")
        """)
        refused(base + "/c.tar.gz", "corrupt gzip data")
        refused(base + "/c.tar.gz.crc.gz", "corrupt gzip data: incorrect data check")
        refused(base + "/c.tar.gz.junk.gz", "trailing garbage after gzip data")
    }

    func testCorruptAndTruncatedZstd() throws {
        let plain = try FS.readBytes(try sampleTar())
        var z = zstd(plain)
        try write(base + "/t.tar.zst", Array(z[0..<(z.count / 2)]))
        refused(base + "/t.tar.zst", "truncated zstd data")
        try write(base + "/t4.tar.zst", Array(z[0..<4]))
        refused(base + "/t4.tar.zst", "truncated zstd data")
        // A bad frame header.
        z[4] ^= 0xff
        try write(base + "/c.tar.zst", z)
        refused(base + "/c.tar.zst", "corrupt zstd data")
        // Damage in the entropy-coded middle of text: an error, or at least
        // another DiffID (zstd frames need not carry a checksum; the store
        // compares the DiffID with the image config's).
        var text = [UInt8]()
        for i in 0..<20000 { text += Array("line \(i) of some compressible text\n".utf8) }
        try write(base + "/text", text)
        let textTar = base + "/text.tar"
        XCTAssertEqual(spawnWait(["/bin/tar", "-C", base, "-cf", textTar, "text"]), 0)
        let plainText = try FS.readBytes(textTar)
        var zt = zstd(plainText)
        for i in (zt.count / 2)..<(zt.count / 2 + 16) { zt[i] ^= 0x5a }
        try write(base + "/m.tar.zst", zt)
        _ = spawnWait(["/bin/rm", "-rf", layer]); mkdir(layer, 0o755)
        do {
            let r = try unpack(base + "/m.tar.zst")
            XCTAssertNotEqual(r.diffID, Digest.of(plainText))
        } catch let f as Failure {
            XCTAssertTrue(f.description.contains("zstd") || f.description.contains("tar"), f.description)
        }
        unlink(base + "/text")
        try write(base + "/j.tar.zst", zstd(plain) + [1, 2, 3, 4, 5, 6, 7, 8])
        refused(base + "/j.tar.zst", "corrupt zstd data")
        assertNothingOutside()
    }

    func testOtherCompressionsAreNamed() throws {
        try write(base + "/x.tar.xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 4])
        refused(base + "/x.tar.xz", "xz-compressed data is not supported")
        try write(base + "/b.tar.bz2", Array("BZh91AY&SY".utf8))
        refused(base + "/b.tar.bz2", "bzip2-compressed data is not supported")
    }

    func testBadChecksums() throws {
        let tar = try makeTar("ck.tar", """
        tf = open_tar(fmt=tarfile.USTAR_FORMAT)
        t(tf, "one", data=b"1" * 600)
        t(tf, "two", data=b"2")
        tf.close()
        b = bytearray(open(out, "rb").read())
        first = bytearray(b); first[0] ^= 1
        open(out + ".first.tar", "wb").write(first)
        b[512 + 1024 + 148] ^= 1   # the second header's checksum
        open(out + ".second.tar", "wb").write(b)
        open(out + ".text.tar", "wb").write(b"hello, this is not a tar\\n" * 50)
        """)
        refused(tar + ".first.tar", "not a tar archive")
        refused(tar + ".second.tar", "damaged tar archive")
        refused(tar + ".text.tar", "not a tar archive")
    }

    func testEmptyStreamsAreEmptyLayers() throws {
        try write(base + "/e.tar", [])
        let r = try unpack(base + "/e.tar")
        XCTAssertEqual(r.diffID, Digest.of([]))
        XCTAssertEqual(r.size, 0)
        try write(base + "/z.tar", [UInt8](repeating: 0, count: 10240))
        let z = try unpack(base + "/z.tar")
        XCTAssertEqual(z.diffID, Digest.of([UInt8](repeating: 0, count: 10240)), "the padding after the end counts")
        XCTAssertEqual(FS.listDirectory(layer), [])
    }

    func testHugePaxHeaderIsBounded() throws {
        // A pax header of 64 MiB of records: refused (or read in bounded memory), never hangs.
        let tar = try makeTar("pax.tar", """
        rec = b"30 SCHILY.xattr.user.x=" + b"a" * 6 + b"\\n"
        assert len(rec) == 30
        body = rec * ((64 << 20) // 30)
        ti = tarfile.TarInfo("././@PaxHeader"); ti.type = tarfile.XHDTYPE; ti.size = len(body)
        f = open(out, "wb")
        f.write(ti.tobuf(tarfile.USTAR_FORMAT)); f.write(body); f.write(b"\\0" * (512 - len(body) % 512))
        ti = tarfile.TarInfo("victim"); ti.size = 0
        f.write(ti.tobuf(tarfile.USTAR_FORMAT)); f.write(b"\\0" * 1024)
        """)
        var before = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        refused(tar, "special header too large")
        var after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &after)
        XCTAssertLessThan(after.ru_maxrss, before.ru_maxrss + 200_000, "max RSS (KiB) grew by more than 200 MB")
    }

    func testHugeSizeOnAFifoHeaderAndBigUid() throws {
        let tar = try makeTar("uid.tar", """
        tf = open_tar()
        t(tf, "x", data=b"x", uid=0xffffffff)
        tf.close()
        """)
        refused(tar, "out of range")
    }

    // MARK: Replacing entries within one layer

    func testLaterEntriesReplaceEarlierOnes() throws {
        let tar = try makeTar("r.tar", """
        tf = open_tar()
        t(tf, "a/", tarfile.DIRTYPE)
        t(tf, "a/x", data=b"x")
        t(tf, "a", data=b"now a file")
        t(tf, "b", data=b"file")
        t(tf, "b/", tarfile.DIRTYPE, mode=0o700)
        t(tf, "b/y", data=b"y")
        t(tf, "c", tarfile.SYMTYPE, linkname="b")
        t(tf, "c/", tarfile.DIRTYPE, mode=0o711)
        t(tf, "c/z", data=b"z")
        t(tf, "d/", tarfile.DIRTYPE, mode=0o700, mtime=1000)
        t(tf, "d/", tarfile.DIRTYPE, mode=0o750, mtime=2000)
        t(tf, "e", data=b"first")
        t(tf, "e2", tarfile.LNKTYPE, linkname="e")
        t(tf, "e", data=b"second")
        t(tf, "f", data=b"to go")
        t(tf, ".wh.f", data=b"")
        tf.close()
        """)
        _ = try unpack(tar)
        XCTAssertEqual(try FS.readString(layer + "/a"), "now a file")
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/b")).st_mode & 0o7777, 0o700)
        XCTAssertEqual(try FS.readString(layer + "/b/y"), "y")
        let c = try XCTUnwrap(lstatOf(layer + "/c"))
        XCTAssertEqual(c.st_mode & S_IFMT, S_IFDIR, "a directory replaces the symlink, not made through it")
        XCTAssertEqual(c.st_mode & 0o7777, 0o711)
        XCTAssertEqual(try FS.readString(layer + "/c/z"), "z")
        XCTAssertNil(lstatOf(layer + "/b/z"))
        let d = try XCTUnwrap(lstatOf(layer + "/d"))
        XCTAssertEqual(d.st_mode & 0o7777, 0o750)
        XCTAssertEqual(d.st_mtim.tv_sec, 2000, "the later entry's mtime")
        XCTAssertEqual(try FS.readString(layer + "/e"), "second")
        XCTAssertEqual(try FS.readString(layer + "/e2"), "first", "a new file, not a write through the old link")
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/f")).st_mode & S_IFMT, S_IFCHR)
    }

    func testParentThatIsNotADirectoryOrALoop() throws {
        let t1 = try makeTar("nd.tar", """
        tf = open_tar()
        t(tf, "f", data=b"file")
        t(tf, "f/x", data=b"x")
        tf.close()
        """)
        refused(t1, "parent \"f\" is not a directory")
        let t2 = try makeTar("loop.tar", """
        tf = open_tar()
        t(tf, "a", tarfile.SYMTYPE, linkname="b")
        t(tf, "b", tarfile.SYMTYPE, linkname="a")
        t(tf, "a/x", data=b"x")
        tf.close()
        """)
        _ = spawnWait(["/bin/rm", "-rf", layer])
        mkdir(layer, 0o755)
        refused(t2, "too many levels of symlinks")
        assertNothingOutside()
    }

    func testSparseFile() throws {
        // GNU tar's sparse format (pax 1.0) for a file with a hole.
        let f = base + "/lower-sparse"
        let fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertEqual(pwrite(fd, "head", 4, 0), 4)
        XCTAssertEqual(pwrite(fd, "tail", 4, 8 << 20), 4)
        close(fd)
        let tarPath = base + "/sp.tar"
        XCTAssertEqual(spawnWait(["/bin/tar", "--sparse", "--format=pax", "-C", base, "-cf", tarPath, "lower-sparse"]), 0)
        _ = try unpack(tarPath)
        let st = try XCTUnwrap(lstatOf(layer + "/lower-sparse"))
        XCTAssertEqual(st.st_size, (8 << 20) + 4)
        XCTAssertLessThan(st.st_blocks, 1024, "the hole stays a hole")
        let b = try FS.readBytes(layer + "/lower-sparse")
        XCTAssertEqual(Array(b[0..<4]), Array("head".utf8))
        XCTAssertEqual(Array(b[(8 << 20)...]), Array("tail".utf8))
        XCTAssertEqual(b[1000], 0)
    }

    // MARK: Hard links to lower layers

    func testHardLinkToALowerLayerCopiesUp() throws {
        let l0 = base + "/lower0", l1 = base + "/lower1"
        mkdir(l0, 0o755)
        mkdir(l1, 0o755)
        let a = try makeTar("l0.tar", """
        tf = open_tar()
        t(tf, "usr/", tarfile.DIRTYPE, mode=0o755, mtime=100)
        t(tf, "usr/bin/", tarfile.DIRTYPE, mode=0o751, uid=3, gid=4, mtime=200)
        t(tf, "usr/bin/tool", data=b"the tool", mode=0o4711, uid=5, gid=6, mtime=300, pax={"SCHILY.xattr.user.tag": "t"})
        t(tf, "usr/bin/gone", data=b"gone")
        t(tf, "opt/", tarfile.DIRTYPE)
        t(tf, "opt/hidden", data=b"hidden")
        tf.close()
        """)
        _ = try unpack(a, into: l0)
        let b = try makeTar("l1.tar", """
        tf = open_tar()
        t(tf, "usr/bin/.wh.gone", data=b"")
        t(tf, "opt/", tarfile.DIRTYPE)
        t(tf, "opt/.wh..wh..opq", data=b"")
        tf.close()
        """)
        _ = try unpack(b, into: l1, lower: [l0])
        let c = try makeTar("l2.tar", """
        tf = open_tar()
        t(tf, "sbin/", tarfile.DIRTYPE)
        t(tf, "sbin/tool", tarfile.LNKTYPE, linkname="usr/bin/tool")
        tf.close()
        """)
        _ = try unpack(c, lower: [l0, l1])
        let tool = try XCTUnwrap(lstatOf(layer + "/usr/bin/tool"))
        XCTAssertEqual(tool.st_ino, try XCTUnwrap(lstatOf(layer + "/sbin/tool")).st_ino)
        XCTAssertNotEqual(tool.st_ino, try XCTUnwrap(lstatOf(l0 + "/usr/bin/tool")).st_ino, "a copy, not a link into the lower layer")
        XCTAssertEqual(tool.st_mode & 0o7777, 0o4711)
        XCTAssertEqual(tool.st_uid, 5)
        XCTAssertEqual(tool.st_gid, 6)
        XCTAssertEqual(tool.st_mtim.tv_sec, 300)
        XCTAssertEqual(xattrOf(layer + "/usr/bin/tool", "user.tag"), "t")
        XCTAssertEqual(try FS.readString(layer + "/sbin/tool"), "the tool")
        let bin = try XCTUnwrap(lstatOf(layer + "/usr/bin"))
        XCTAssertEqual(bin.st_mode & 0o7777, 0o751, "copied-up parents take the lower directory's attributes")
        XCTAssertEqual(bin.st_uid, 3)
        XCTAssertEqual(bin.st_mtim.tv_sec, 200)
        XCTAssertEqual(try XCTUnwrap(lstatOf(layer + "/usr")).st_mtim.tv_sec, 100)
        XCTAssertEqual(FS.listDirectory(l0 + "/usr/bin"), ["gone", "tool"], "the lower layer is untouched")

        // A whiteout, or an opaque directory, in between hides the target.
        let d = try makeTar("l3.tar", """
        tf = open_tar()
        t(tf, "g", tarfile.LNKTYPE, linkname="usr/bin/gone")
        tf.close()
        """)
        let e = try makeTar("l4.tar", """
        tf = open_tar()
        t(tf, "h", tarfile.LNKTYPE, linkname="opt/hidden")
        tf.close()
        """)
        _ = spawnWait(["/bin/rm", "-rf", layer])
        mkdir(layer, 0o755)
        refused(d, "not found in this layer or below", lower: [l0, l1])
        refused(e, "not found in this layer or below", lower: [l0, l1])
        XCTAssertNoThrow(try unpack(e, lower: [l0]), "without the opaque layer it is found")
    }
}

func pyString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}
