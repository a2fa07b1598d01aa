import Glibc
import XCTest
@testable import Runtime

/// SealedExe's unprivileged way: the read-only clone made in a user and
/// mount namespace of a child's own (what a rootless runtime re-executes
/// from). Works as root too, which is how it runs here.
final class SealedExeTests: XCTestCase {
    func testCloneInOwnNamespaceIsTheSameFileReadOnly() throws {
        let exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(exe, 0)
        defer { close(exe) }
        guard let tree = SealedExe.cloneInOwnNamespace(exe) else {
            throw XCTSkip("this kernel refuses a mount namespace in a new user namespace")
        }
        defer { close(tree) }
        var a = stat(), b = stat(), v = statvfs()
        XCTAssertEqual(fstat(exe, &a), 0)
        XCTAssertEqual(fstat(tree, &b), 0)
        XCTAssertEqual(a.st_dev, b.st_dev)
        XCTAssertEqual(a.st_ino, b.st_ino)
        XCTAssertEqual(fstatvfs(tree, &v), 0)
        XCTAssertNotEqual(v.f_flag & UInt(ST_RDONLY), 0)
        XCTAssertTrue(SealedExe.isProtected(tree))
        // Not writable through it, even by root (O_TRUNC: the mount is
        // checked before the running file's ETXTBSY).
        let w = open("/proc/self/fd/\(tree)", O_WRONLY | O_TRUNC | O_CLOEXEC)
        XCTAssertEqual(w, -1)
        XCTAssertEqual(errno, EROFS)
        // The child was reaped.
        var status: Int32 = 0
        XCTAssertEqual(waitpid(-1, &status, WNOHANG), -1)
    }
}
