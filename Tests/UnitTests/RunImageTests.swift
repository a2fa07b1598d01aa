import XCTest
import Glibc
@testable import CLI
import Compile
import Spec
import Sys

// `run IMAGE`: which of run's forms an argument list is (CLI/RunImage.swift),
// and how an image's config and the flags compile together
// (Compile/RunFlags.swift), as Docker's rules have it.

final class RunModeTests: XCTestCase {
    func mode(_ positionals: [String], flags: [String] = [], bundleHere: Bool = false,
              images: Set<String> = []) throws -> RunMode {
        try runMode(positionals: positionals, has: { flags.contains($0) }, bundleHere: { bundleHere },
                    isImage: { images.contains($0) })
    }

    func usage(_ positionals: [String], flags: [String] = [], bundleHere: Bool = false, images: Set<String> = []) -> String {
        do {
            let m = try mode(positionals, flags: flags, bundleHere: bundleHere, images: images)
            XCTFail("expected a usage error, got \(m)")
        } catch let f as Failure {
            XCTAssertEqual(f.kind, .usage)
            return f.description
        } catch { XCTFail("\(error)") }
        return ""
    }

    func testTheRule() throws {
        XCTAssertEqual(try mode(["/bin/sh"], flags: ["rootfs"]), .rootfs)
        XCTAssertEqual(try mode(["c1"], flags: ["bundle"]), .bundle)
        XCTAssertEqual(try mode(["c1"], flags: ["bundle", "detach"]), .bundle)
        XCTAssertEqual(try mode(["busybox", "echo", "hi"]), .image("busybox"))
        XCTAssertEqual(try mode(["busybox", "echo", "hi"], bundleHere: true, images: ["busybox"]), .image("busybox"))
        XCTAssertEqual(try mode(["busybox"], flags: ["rm"], bundleHere: true, images: ["busybox"]), .image("busybox"))
        XCTAssertEqual(try mode(["busybox"], flags: ["env"], bundleHere: true), .image("busybox"))
        XCTAssertEqual(try mode(["busybox"]), .image("busybox"))
        // runc's `run ID` in a bundle directory, byte for byte (also with -d).
        XCTAssertEqual(try mode(["c1"], bundleHere: true), .bundle)
        XCTAssertEqual(try mode(["c1"], flags: ["detach"], bundleHere: true), .bundle)
    }

    func testAmbiguousAndWrongCombinations() {
        let both = usage(["busybox"], bundleHere: true, images: ["busybox"])
        XCTAssertTrue(both.contains("minicontainer run --bundle . busybox"), both)
        XCTAssertTrue(both.contains("minicontainer run busybox COMMAND"), both)
        XCTAssertFalse(both.contains("\n"))
        XCTAssertTrue(usage(["c1"], flags: ["bundle", "rm"]).contains("--rm is a Docker-style flag"))
        XCTAssertTrue(usage(["x"], flags: ["bundle", "rootfs"]).contains("exclude each other"))
        XCTAssertTrue(usage([]).contains("run needs an IMAGE"))
    }
}

final class ImageCompileTests: XCTestCase {
    let files: [String: String] = [
        "/layers/top/etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        "/layers/top/etc/group": "root:x:0:\nstaff:x:50:\n",
    ]
    var host: Compile.Host {
        let f = files
        return Compile.Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil },
                            readFileInRoot: { root, path in f[root + path] })
    }

    func image(_ change: (inout ImageDefaults) -> Void = { _ in }) -> ImageDefaults {
        var d = ImageDefaults(reference: "busybox", id: "sha256:" + String(repeating: "ab", count: 32),
                              layers: ["/layers/top", "/layers/base"])
        d.run.env = ["PATH=/usr/local/bin:/bin", "LANG=C.UTF-8"]
        d.run.entrypoint = ["/entry"]
        d.run.cmd = ["--serve"]
        d.run.workingDir = "/srv"
        d.run.user = "app"
        d.run.stopSignal = "SIGQUIT"
        d.run.labels = ["maintainer": "x", "org.minicontainer.network": "host", "org.minicontainer.ports": "1:1/tcp"]
        change(&d)
        return d
    }

    func spec(_ d: ImageDefaults, _ change: (inout RunFlags) -> Void = { _ in }) throws -> Spec {
        var f = RunFlags()
        f.image = d
        change(&f)
        return try compile(f, host: host)
    }

    func testImageDefaults() throws {
        let s = try spec(image())
        XCTAssertEqual(s.process?.args, ["/entry", "--serve"])
        XCTAssertEqual(s.process?.cwd, "/srv")
        XCTAssertEqual(s.process?.user.uid, 1000)
        XCTAssertEqual(s.process?.user.gid, 1000)
        XCTAssertEqual(s.process?.env?.first { $0.hasPrefix("PATH=") }, "PATH=/usr/local/bin:/bin")
        XCTAssertEqual(s.process?.env?.filter { $0.hasPrefix("PATH=") }.count, 1)
        XCTAssertTrue(s.process?.env?.contains("LANG=C.UTF-8") ?? false)
        let a = s.annotations ?? [:]
        XCTAssertEqual(a[Annotation.image], "busybox")
        XCTAssertEqual(a[Annotation.imageID], "sha256:" + String(repeating: "ab", count: 32))
        XCTAssertEqual(a[Annotation.stopSignal], "SIGQUIT")
        XCTAssertEqual(a["maintainer"], "x")
        // An image's label never sets a key of ours.
        XCTAssertEqual(a[Annotation.network], "bridge")
        XCTAssertNil(a[Annotation.ports])
        XCTAssertNil(a[Annotation.rootfs])
    }

    func testFlagsWin() throws {
        let s = try spec(image()) {
            $0.command = ["sh", "-c", "x"]
            $0.workdir = "/tmp"
            $0.user = "0:50"
            $0.env = ["LANG=fr", "PATH=/p"]
        }
        XCTAssertEqual(s.process?.args, ["/entry", "sh", "-c", "x"], "arguments replace Cmd, after Entrypoint")
        XCTAssertEqual(s.process?.cwd, "/tmp")
        XCTAssertEqual(s.process?.user.uid, 0)
        XCTAssertEqual(s.process?.user.gid, 50)
        XCTAssertTrue(s.process?.env?.contains("LANG=fr") ?? false)
        XCTAssertFalse(s.process?.env?.contains("LANG=C.UTF-8") ?? true)
        XCTAssertEqual(s.process?.env?.filter { $0.hasPrefix("PATH=") }, ["PATH=/p"])
        XCTAssertEqual(try spec(image()) { $0.entrypoint = "/bin/sh" }.process?.args, ["/bin/sh"], "--entrypoint drops Cmd")
        XCTAssertEqual(try spec(image()) { $0.entrypoint = "/bin/sh"; $0.command = ["-c", "x"] }.process?.args, ["/bin/sh", "-c", "x"])
        XCTAssertEqual(try spec(image()) { $0.entrypoint = ""; $0.command = ["ls"] }.process?.args, ["ls"])
        XCTAssertEqual(try spec(image { $0.run.entrypoint = nil }).process?.args, ["--serve"])
        XCTAssertEqual(try spec(image { $0.run.workingDir = ""; $0.run.user = "" }).process?.cwd, "/")
    }

    func testBadImageConfigs() {
        func error(_ d: ImageDefaults, _ change: (inout RunFlags) -> Void = { _ in }) -> String {
            do { _ = try spec(d, change); XCTFail("compiled"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(image { $0.run.entrypoint = nil; $0.run.cmd = nil }).contains("has no Entrypoint or Cmd"))
        XCTAssertTrue(error(image { $0.run.workingDir = "srv" }).contains("WorkingDir \"srv\" must be an absolute path"))
        XCTAssertTrue(error(image { $0.run.env = ["=x"] }).contains("invalid Env entry"))
        XCTAssertTrue(error(image { $0.run.stopSignal = "SIGNOPE" }).contains("unknown StopSignal"))
        XCTAssertTrue(error(image { $0.run.user = "nobody" }).contains("user \"nobody\" is not in"))
        XCTAssertTrue(error(image { $0.layers = [] }).contains("has no layers"))
        XCTAssertTrue(error(image()) { $0.rootfs = "/r" }.contains("exclude each other"))
    }

    func testUserReadFromTheTopLayerThatHasTheFile() throws {
        var f = files
        f["/layers/base/etc/passwd"] = "app:x:7:7::/:/bin/sh\n"
        f.removeValue(forKey: "/layers/top/etc/passwd")
        let h = Compile.Host(realPath: { $0 }, isDirectory: { _ in true }, environment: { _ in nil }, readFile: { _ in nil },
                             readFileInRoot: { root, path in f[root + path] })
        var flags = RunFlags()
        flags.image = image()
        XCTAssertEqual(try compile(flags, host: h).process?.user.uid, 7)
    }
}

/// FS.readInRoot resolves inside the root: a symlink to a host file reads
/// the root's file of that name, or nothing.
final class ReadInRootTests: XCTestCase {
    func testSymlinksStayInside() throws {
        var t = Array("/tmp/mc-readinroot-XXXXXX".utf8CString)
        guard mkdtemp(&t) != nil else { return XCTFail("mkdtemp") }
        let root = String(cString: t)
        defer { _ = try? FS.removeTree(root) }
        mkdir(root + "/etc", 0o755)
        try FS.writeAtomically(root + "/etc/shadow", "inside\n")
        symlink("/etc/shadow", root + "/etc/passwd")
        symlink("../../../../../../etc/hostname", root + "/etc/group")
        symlink("/proc/self/root/etc/hostname", root + "/etc/hosts")
        mkfifo(root + "/etc/fifo", 0o644)
        XCTAssertEqual(FS.readInRoot(root, "/etc/passwd"), "inside\n")
        XCTAssertNil(FS.readInRoot(root, "/etc/group"), "the host's /etc/hostname is not reached")
        XCTAssertNil(FS.readInRoot(root, "/etc/hosts"), "no magic links")
        XCTAssertNil(FS.readInRoot(root, "/etc/fifo"), "a fifo does not block")
        XCTAssertNil(FS.readInRoot(root, "/missing"))
        XCTAssertEqual(FS.readInRoot(root, "/etc/shadow", limit: 3), nil, "larger than the limit")
    }

}

final class ImageVolumeTests: XCTestCase {
    /// An image's VOLUME is the image's text on its way to -v's SOURCE:DEST
    /// form and the kernel: only a plain absolute path passes.
    func testImageVolumeProblems() {
        for ok in ["/data", "/var/lib/db/", "/a b", "/\u{0596}x", "/a/./b"] {
            XCTAssertNil(imageVolumeProblem(ok), ok)
        }
        for bad in ["data", "", "/", "//", "/a/..", "/../etc", "/etc:/data", "/a,b", "/a\nb", "/a\u{0}b",
                    "/" + String(repeating: "a", count: 4096)] {
            XCTAssertNotNil(imageVolumeProblem(bad), bad.debugDescription)
        }
    }
}
