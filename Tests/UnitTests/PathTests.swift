import XCTest
import Glibc
import Cgroups
import Compile
@testable import Rootfs
import Spec
import Sys

// Spec's Path.clean, the one lexical path cleaner, and what each of its users
// relied on when each had its own copy (Cgroups' CgroupPath.clean, Rootfs'
// cleanPath, Sys' FS.absolute, Compile's volume destinations): the copies
// were the same code, so these cases hold for all of them.

final class PathCleanTests: XCTestCase {
    func testCleanCases() {
        let cases: [(String, String)] = [
            ("/", "/"), ("", "/"), (".", "/"), ("..", "/"), ("/..", "/"), ("/../..", "/"),
            ("/proc", "/proc"), ("/dev//pts/", "/dev/pts"), ("//a///b//", "/a/b"), ("/a/", "/a"),
            ("/a/./b/../c", "/a/c"), ("/a/b/..", "/a"), ("/a/b/../..", "/"), ("/a/../../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"), ("/a/.../b", "/a/.../b"), ("/a/..b/.c", "/a/..b/.c"),
            // A relative path is taken from "/".
            ("proc", "/proc"), ("a/b/", "/a/b"), ("./a", "/a"), ("../a", "/a"), ("a/../../b", "/b"),
            ("/with space/x", "/with space/x"),
        ]
        for (input, want) in cases {
            XCTAssertEqual(Path.clean(input), want, "clean(\(input))")
        }
    }

    /// The byte loop against the split/joined form it replaced, on random
    /// paths of "/", ".", "a", "é" and "\n".
    func testCleanAgreesWithTheSplitJoinedForm() {
        func reference(_ path: String) -> String {
            var parts: [Substring] = []
            for c in path.split(separator: "/") {
                if c == "." { continue }
                if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
                parts.append(c)
            }
            return "/" + parts.joined(separator: "/")
        }
        var rng = SystemRandomNumberGenerator()
        let alphabet = ["/", "/", "/", ".", ".", "a", "b", "é", "\n", " "]
        for _ in 0..<5000 {
            let p = (0..<Int.random(in: 0...14, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined()
            XCTAssertEqual(Path.clean(p), reference(p), "clean(\(p.debugDescription))")
        }
    }

    func testCleanIsIdempotent() {
        for p in ["/a/./b/../c", "x//y/", "/../z", ""] {
            XCTAssertEqual(Path.clean(Path.clean(p)), Path.clean(p))
        }
    }

    /// Cgroups: cgroup paths never leave the hierarchy (".." stops at its
    /// root), and a relative one is cleaned on its own before it is put
    /// under the runtime's cgroup, so it never leaves that either.
    func testCgroupPathsUseIt() {
        XCTAssertEqual(CgroupPath.requested("/../../a//b/", id: "x").path, "/a/b")
        XCTAssertEqual(CgroupPath.requested(nil, id: "c1").path, "/c1")
        XCTAssertEqual(CgroupPath.directory(mountPoint: "/sys/fs/cgroup/memory", ownCgroup: "/user.slice/",
                                            requested: CgroupPath.requested("../../../x", id: "c")),
                       "/sys/fs/cgroup/memory/user.slice/x")
    }

    /// Rootfs: mount destinations, device paths and bundle-relative bind sources.
    func testMountPlanUsesIt() {
        let planned = Rootfs.plan(mounts: [Mount(destination: "/data//x/../y/", type: "bind", source: "rel/./src",
                                                 options: ["rbind"])], bundle: "/b//u/")
        XCTAssertEqual(planned[0].destination, "/data/y")
        XCTAssertEqual(planned[0].source, "/b/u/rel/src")
    }

    /// Sys: FS.absolute takes a relative path from the current directory, then cleans it.
    func testAbsoluteUsesTheCurrentDirectory() {
        let cwd = FS.currentDirectory()
        XCTAssertEqual(FS.absolute("/x/../y//"), "/y")
        XCTAssertEqual(FS.absolute("a/./b/"), Path.clean(cwd + "/a/b"))
        XCTAssertEqual(FS.absolute("."), Path.clean(cwd))
        XCTAssertEqual(FS.absolute(""), Path.clean(cwd))
    }

    /// Compile: a volume's container path is cleaned ("." and "//" go); ".." is refused before.
    func testVolumeDestinationUsesIt() throws {
        let host = Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil })
        XCTAssertEqual(try parseVolume("/srv:/a/./b//c/", host: host).destination, "/a/b/c")
        XCTAssertEqual(try parseVolume("/srv:/data", host: host).destination, "/data")
        XCTAssertThrowsError(try parseVolume("/srv:/a/../b", host: host))
    }
}
