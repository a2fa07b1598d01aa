import XCTest
@testable import Cgroups
@testable import Compile
@testable import Engine
@testable import Image
@testable import Rootfs
import Spec
@testable import Sys

/// Paths are bytes to the kernel; Swift's Characters group a "/" (or ","
/// ".") with the combining marks after it. Every check of a path's "/",
/// "..", prefix or last component must see the bytes: with U+0596 after a
/// "/", a Character-level split missed the "/" and mkdirAll passed
/// "evil/\u{0596}x" to mkdirat whole, which followed the image's symlink
/// to the host (test_mount_destination_with_a_combining_mark_after_a_slash).
final class PathBytesTests: XCTestCase {
    let mark = "\u{0596}"

    func testTheStdlibGroupsTheSlashWithTheMark() {
        // What the helpers exist for: if these ever change, they still hold.
        let p = "/../\(mark)x"
        XCTAssertFalse(p.split(separator: "/").contains(".."))
        XCTAssertFalse("/\(mark)x".hasPrefix("/"))
    }

    func testHelpersSeeTheBytes() {
        XCTAssertEqual(Path.components("/a/\(mark)b//c/"), ["a", "\(mark)b", "c"])
        XCTAssertEqual(Path.components("../\(mark)x"), ["..", "\(mark)x"])
        XCTAssertTrue(Path.isAbsolute("/\(mark)x"))
        XCTAssertFalse(Path.isAbsolute("\(mark)/x"))
        XCTAssertTrue(Path.hasDotDot("/../\(mark)x"))
        XCTAssertTrue(Path.hasDotDot("a/.."))
        XCTAssertFalse(Path.hasDotDot("/..\(mark)/x"))
        XCTAssertFalse(Path.hasDotDot("/a/.../b"))
        XCTAssertTrue(Path.hasSlash("a/\(mark)b"))
        XCTAssertEqual(Path.split("/evil/\(mark)f").parent, "/evil")
        XCTAssertEqual(Path.split("/evil/\(mark)f").name, "\(mark)f")
        XCTAssertEqual(Path.split("/a").parent, "/")
        XCTAssertEqual(Path.split("/").parent, "/")
        XCTAssertEqual(Path.split("/").name, "")
        XCTAssertTrue(Path.isWithin("/a/\(mark)b", "/a"))
        XCTAssertTrue(Path.isWithin("/a", "/a"))
        XCTAssertTrue(Path.isWithin("/x", "/"))
        XCTAssertFalse(Path.isWithin("/ab", "/a"))
        XCTAssertFalse(Path.isWithin("/a\(mark)", "/a"))
        XCTAssertEqual(Path.dropPrefix("/a", of: "/a/\(mark)b"), "/\(mark)b")
        XCTAssertNil(Path.dropPrefix("/b", of: "/a"))
        XCTAssertTrue("/\(mark)x".bytesStart(with: "/"))
        XCTAssertTrue("a,\(mark)b".holdsByte(","))
        XCTAssertEqual(Path.clean("/a/../\(mark)x/./"), "/\(mark)x")
        XCTAssertTrue("size=1m,mpol=bind:0".holdsBytes("mpol="))
        XCTAssertTrue("mpol=".holdsBytes("mpol="))
        XCTAssertFalse("mpol".holdsBytes("mpol="))
        XCTAssertFalse("m-p-o-l=".holdsBytes("mpol="))
        XCTAssertTrue("x".holdsBytes(""))
        XCTAssertTrue("a/\(mark)b".holdsBytes("/"))  // "/" with the mark is one Character
        XCTAssertFalse("a/\(mark)b".contains("/b"))
        XCTAssertFalse("a/\(mark)b".holdsBytes("/b"))
        for parts in [[], [""], ["", "a"], ["a", ""], ["mode=755", "size=65536k"], ["x"]] {
            XCTAssertEqual(String.plainJoin(parts, separator: ","), parts.joined(separator: ","), "\(parts)")
        }
        XCTAssertEqual(String.plainJoin(["user", "pid"], separator: ", "), "user, pid")
    }

    /// Path.clean and the helpers against a reference over the bytes, on
    /// random paths of "/", ".", "a" and combining marks.
    func testAgainstAByteReference() {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["/", "/", ".", "..", "a", mark, "\u{0301}", "\u{20DD}"]
        for _ in 0..<5000 {
            let p = (0..<Int.random(in: 0...10, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let comps = p.utf8.split(separator: 47).map { String(decoding: $0, as: UTF8.self) }
            XCTAssertEqual(Path.components(p), comps, p.debugDescription)
            XCTAssertEqual(Path.hasDotDot(p), comps.contains(".."), p.debugDescription)
            var kept: [String] = []
            for c in comps where c != "." {
                if c == ".." { _ = kept.popLast() } else { kept.append(c) }
            }
            XCTAssertEqual(Path.clean(p), "/" + kept.joined(separator: "/"), p.debugDescription)
        }
    }

    func testRootfsUsesThem() {
        XCTAssertEqual(Rootfs.splitPath("/evil/\(mark)f").name, "\(mark)f")
        XCTAssertNotNil(Rootfs.overlayPathProblem("/a/../\(mark)b", legacy: false))
        XCTAssertNotNil(Rootfs.overlayPathProblem("/a,\(mark)b", legacy: true), "a , the kernel splits at")
        XCTAssertNotNil(Rootfs.overlayPathProblem("/a:\(mark)b", legacy: true))
        XCTAssertNil(Rootfs.overlayPathProblem("/\(mark)b", legacy: true))
        XCTAssertEqual(Rootfs.fsParameters("size=1m,\(mark)x=1").map(\.key), ["size", "\(mark)x"])
        XCTAssertFalse(Rootfs.procMountAllowed(destination: "/proc/\(mark)x", kind: .filesystem("tmpfs"), sourceIsProcfs: false))
    }

    func testSpecValidationUsesThem() {
        var s = Spec.defaultSpec()
        s.process!.cwd = "/\(mark)x"
        s.mounts = [Mount(destination: "/a/../\(mark)b", type: "tmpfs", source: "tmpfs")]
        let problems = s.problems(bundle: "/b", exists: { _ in true })
        XCTAssertTrue(problems.contains { $0.path == "mounts[0].destination" && $0.message.contains("..") }, "\(problems)")
        XCTAssertFalse(problems.contains { $0.path == "process.cwd" }, "\(problems)")
        XCTAssertNil(Sysctl.components("net/\(mark)../../kernel"), "a .. component, as the kernel reads it")
        XCTAssertEqual(Sysctl.components("net.\(mark)x/y"), ["net", "\(mark)x.y"])
        XCTAssertNotNil(IntelRdt.closIDProblem("a/\(mark)b"))
    }

    func testCompileAndOthersUseThem() throws {
        let host = Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil })
        XCTAssertThrowsError(try parseVolume("/src:/../\(mark)x", host: host))
        XCTAssertThrowsError(try mountDestination("/../\(mark)x", "--tmpfs"))
        XCTAssertEqual(try mountDestination("/\(mark)x", "--tmpfs"), "/\(mark)x")
        XCTAssertFalse(validUnifiedKey("a/\(mark)../../x.y"))
        XCTAssertTrue(validUnifiedKey("memory.max"))
        XCTAssertNil(ProcFS.expandSelf("self/\(mark)x", link: { _ in "../1" }))
        XCTAssertEqual(ProcFS.expandSelf("self/\(mark)x", link: { _ in "12" }), "12/\(mark)x")
        XCTAssertEqual(CopyPath("/a/\(mark)b/").base, "\(mark)b")
        XCTAssertEqual(CopyPath("/a/\(mark)b/").parent, "/a")
        XCTAssertTrue(CopyPath("/a/\(mark)b/").trailingSlash)
        XCTAssertNil(cleanArchivePath("a/../\(mark)b"))
        XCTAssertTrue(under("/sys/fs/cgroup/x/\(mark)y", "/sys/fs/cgroup/x"))
    }
}

/// The tree holds no new Character-level test of a "/": each use of one is
/// in a file whose "/" is not a path's (registry references, CIDRs, ports,
/// platforms), listed here with its count, so a new one in another file, or
/// one more in these, fails until it uses Path's helpers or is listed.
final class PathBytesSourceScanTests: XCTestCase {
    static let patterns = ["split(separator: \"/\"", ".hasPrefix(\"/\")", ".hasSuffix(\"/\")", ".contains(\"/\")",
                           "firstIndex(of: \"/\")", "lastIndex(of: \"/\")"]
    /// Files where "/" separates something other than a path, and how many uses each has.
    static let notPaths: [String: Int] = [
        "Registry/Credentials.swift": 4, "Registry/Client.swift": 1, "Registry/RegistryConfig.swift": 2,
        "Network/Leases.swift": 1, "Network/Address.swift": 1, "Image/Reference.swift": 3, "Image/Formats.swift": 1,
        "Image/Load.swift": 1, "Runtime/Store.swift": 1, "Compile/RunFlags.swift": 3, "Engine/Inspect.swift": 1,
        "Engine/Prepare.swift": 1, "CLI/InfoCommands.swift": 1, "CLI/PullCommands.swift": 1, "CLI/CopyCommand.swift": 1,
    ]

    func uses(in text: String) -> Int {
        text.split(separator: "\n").filter { line in
            !line.drop(while: { $0 == " " }).hasPrefix("//") && Self.patterns.contains { line.contains($0) }
        }.count
    }

    func testNoCharacterLevelSlashOutsideTheListedFiles() throws {
        let root = String("\(#filePath)".utf8.split(separator: 47).dropLast(3).map { String(decoding: $0, as: UTF8.self) }
            .reduce("") { $0 + "/" + $1 }) + "/Sources"
        var found: [String: Int] = [:]
        func walk(_ dir: String, _ rel: String) throws {
            for e in FS.directoryEntries(dir) ?? [] where e.name != "." && e.name != ".." {
                let path = dir + "/" + e.name, r = rel.isEmpty ? e.name : rel + "/" + e.name
                if FS.isDirectory(path) { try walk(path, r); continue }
                guard e.name.hasSuffix(".swift"), r != "Spec/Path.swift" else { continue }
                let n = uses(in: String(decoding: try FS.readBytes(path), as: UTF8.self))
                if n > 0 { found[r] = n }
            }
        }
        try walk(root, "")
        XCTAssertFalse(found.isEmpty && Self.notPaths.isEmpty)
        XCTAssertEqual(found, Self.notPaths, "a Character-level \"/\" (use Path.components, isAbsolute, hasDotDot, split, isWithin)")
    }

    func testTheScanSeesAUse() {
        XCTAssertEqual(uses(in: "let a = p.split(separator: \"/\")\n// p.hasPrefix(\"/\")\nlet b = Path.isAbsolute(p)"), 1)
    }
}
