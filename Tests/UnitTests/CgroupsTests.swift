import XCTest
import Glibc
import Cgroups
import Runtime
@testable import Spec
import Sys

// Cgroup managers over temporary fake trees (no root needed), plus, as root
// on a hybrid host (/sys/fs/cgroup/unified present), the same operations for
// real on the host's trees under "minicontainer-test-<random>" names that
// every test removes again, even when it fails.

// MARK: - helpers

/// A fresh directory under /tmp, removed with everything in it by `cleanup`.
private func makeTempDir() -> String {
    var template = Array("/tmp/minicontainer-cgtest-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}

/// rm -rf for the temp trees (plain files and directories only).
private func removeTree(_ path: String) {
    if let d = opendir(path) {
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafePointer(to: &e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if n != "." && n != ".." { names.append(n) }
        }
        closedir(d)
        for n in names {
            let c = path + "/" + n
            if FS.isDirectory(c) { removeTree(c) } else { unlink(c) }
        }
    }
    rmdir(path)
}

private func put(_ path: String, _ text: String = "") {
    do { try FS.writeAtomically(path, text) } catch { XCTFail("write \(path): \(error)") }
}

private func get(_ path: String) -> String {
    let s = (try? FS.readString(path)) ?? "<missing>"
    return s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
}

private func mkdirs(_ path: String) {
    do { try FS.makeDirectories(path) } catch { XCTFail("mkdir \(path): \(error)") }
}

/// errno of the SysError `body` throws, nil (and a failure) otherwise.
private func thrownErrno(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
    do {
        try body()
        XCTFail("expected an error", file: file, line: line)
    } catch let e as SysError {
        return e.errno
    } catch {
        XCTFail("expected a SysError, got \(error)", file: file, line: line)
    }
    return nil
}

/// A /bin/sleep child (posix_spawn). `wait` reaps it; `reap` (the deferred
/// cleanup) kills and reaps it unless already reaped, so a recycled pid is
/// never signalled.
private final class Child {
    let pid: pid_t
    private(set) var reaped = false

    init(seconds: String = "300") {
        var pid: pid_t = 0
        let args = ["/bin/sleep", seconds]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let rc = posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, environ)
        precondition(rc == 0, "posix_spawn: \(rc)")
        self.pid = pid
    }

    /// Waits up to `timeout` seconds; the wait status, or nil if it still runs.
    func wait(timeout: Double = 5) -> Int32? {
        var waited = 0.0
        while waited < timeout && !reaped {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { reaped = true; return status }
            if r < 0 && errno != EINTR { return nil }
            usleep(10_000)
            waited += 0.01
        }
        return nil
    }

    func reap() {
        guard !reaped else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
    }
}

private func termSignal(_ status: Int32?) -> Int32? {
    guard let s = status, s & 0x7f != 0, s & 0x7f != 0x7f else { return nil }
    return s & 0x7f
}

/// The State: line of /proc/PID/status ("S (sleeping)", "D (disk sleep)").
private func procState(_ pid: pid_t) -> String {
    let text = (try? FS.readString("/proc/\(pid)/status")) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix("State:") {
        return line.dropFirst(6).trimmingPrefixSpaces()
    }
    return "?"
}

private extension Substring {
    func trimmingPrefixSpaces() -> String { String(drop(while: { $0 == " " || $0 == "\t" })) }
}

/// What this machine's /proc/self/mountinfo shows for its cgroups.
private let hybridMountinfo = """
    22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:9 - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate

    """

private let hybridSelfCgroup = """
    9:name=systemd:/
    8:pids:/
    7:blkio:/
    6:freezer:/
    5:devices:/
    4:memory:/process_api/abc
    3:cpuset:/
    2:cpuacct:/
    1:cpu:/
    0::/init.scope

    """

final class CgroupsTests: XCTestCase {
    var temps: [String] = []

    override func tearDown() {
        for t in temps { removeTree(t) }
        temps = []
        super.tearDown()
    }

    func temp() -> String {
        let t = makeTempDir()
        temps.append(t)
        return t
    }

    // MARK: host detection

    func testParseHybridMountinfo() throws {
        let host = try XCTUnwrap(CgroupHost.parse(mountinfo: hybridMountinfo, selfCgroup: hybridSelfCgroup))
        XCTAssertEqual(host.mode, .hybrid)
        XCTAssertEqual(host.unified, "/sys/fs/cgroup/unified")
        XCTAssertEqual(host.hierarchies.map { $0.controllers }, [
            ["cpu"], ["cpuacct"], ["cpuset"], ["memory"], ["devices"], ["freezer"], ["blkio"], ["pids"], ["name=systemd"],
        ])
        XCTAssertEqual(host.hierarchy("freezer")?.mountPoint, "/sys/fs/cgroup/freezer")
        XCTAssertEqual(host.hierarchy("name=systemd")?.mountPoint, "/sys/fs/cgroup/systemd")
        XCTAssertEqual(host.selfCgroups["memory"], "/process_api/abc")
        XCTAssertEqual(host.selfCgroups[""], "/init.scope")
    }

    func testParsePureV2IgnoresStrayV1Mounts() throws {
        let text = """
            30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
            90 30 0:50 / /run/legacy-systemd rw - cgroup cgroup rw,name=systemd
            """
        let host = try XCTUnwrap(CgroupHost.parse(mountinfo: text, selfCgroup: "0::/user.slice/x.scope\n"))
        XCTAssertEqual(host.mode, .v2)
        XCTAssertEqual(host.unified, "/sys/fs/cgroup")
        XCTAssertEqual(host.hierarchies, [])
    }

    func testParseV1CombinedDuplicatesEscapesAndMountRoot() throws {
        let text = """
            50 1 0:40 / /mnt/other rw - cgroup cgroup rw,memory
            51 31 0:41 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct
            52 31 0:40 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            53 31 0:42 /docker/abc /mnt/a\\040b rw - cgroup cgroup rw,clone_children,freezer
            """
        let host = try XCTUnwrap(CgroupHost.parse(mountinfo: text))
        XCTAssertEqual(host.mode, .v1)
        XCTAssertNil(host.unified)
        XCTAssertEqual(host.hierarchies, [
            CgroupHierarchy(mountPoint: "/sys/fs/cgroup/memory", controllers: ["memory"]),
            CgroupHierarchy(mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: ["cpu", "cpuacct"],
                            superOptions: "rw,nosuid,nodev,noexec,relatime,cpu,cpuacct"),
            CgroupHierarchy(mountPoint: "/mnt/a b", controllers: ["freezer"], mountRoot: "/docker/abc",
                            superOptions: "rw,clone_children,freezer"),
        ])
        XCTAssertEqual(host.hierarchy("cpuacct")?.mountPoint, "/sys/fs/cgroup/cpu,cpuacct")
    }

    func testParseWithoutCgroupsAndDetectErrors() {
        XCTAssertNil(CgroupHost.parse(mountinfo: "22 1 0:21 / / rw - ext4 /dev/vda rw\n"))
        XCTAssertEqual(thrownErrno { _ = try CgroupHost.detect(mountinfo: "/nonexistent/mountinfo") }, ENOENT)
        let dir = temp()
        put(dir + "/mountinfo", "22 1 0:21 / / rw - ext4 /dev/vda rw\n")
        XCTAssertEqual(thrownErrno { _ = try CgroupHost.detect(mountinfo: dir + "/mountinfo") }, ENOENT)
    }

    func testParseSelfCgroup() {
        XCTAssertEqual(CgroupHost.parseSelfCgroup("4:memory:/a\n2:cpu,cpuacct:/b:c\n1:name=systemd:/s\n0::/u\nbad\n"), [
            "memory": "/a", "cpu": "/b:c", "cpuacct": "/b:c", "name=systemd": "/s", "": "/u",
        ])
    }

    func testDetectOnThisHost() throws {
        guard FS.isDirectory("/sys/fs/cgroup") else { throw XCTSkip("no /sys/fs/cgroup") }
        let host = try CgroupHost.detect()
        if FS.isDirectory("/sys/fs/cgroup/unified") && FS.isDirectory("/sys/fs/cgroup/freezer") {
            XCTAssertEqual(host.mode, .hybrid)
            XCTAssertEqual(host.unified, "/sys/fs/cgroup/unified")
            XCTAssertNotNil(host.hierarchy("name=systemd"))
        }
        XCTAssertFalse(host.selfCgroups.isEmpty)
    }

    func testDetectFromFakeMountinfoRebasedOntoFakeRoot() throws {
        let dir = temp()
        put(dir + "/mountinfo", hybridMountinfo)
        put(dir + "/cgroup", hybridSelfCgroup)
        let host = try CgroupHost.detect(mountinfo: dir + "/mountinfo", selfCgroup: dir + "/cgroup")
        let m = makeManager(host: host, cgroupsPath: nil, id: "c1", root: dir + "/fs")
        XCTAssertEqual(m.paths.count, 10)
        XCTAssertTrue(m.paths.allSatisfy { $0.hasPrefix(dir + "/fs/") && $0.split(separator: "/").last == "c1" && $0.split(separator: "/").count == dir.split(separator: "/").count + 3 }, "\(m.paths)")
        XCTAssertTrue(m.paths.contains(dir + "/fs/systemd/c1"))  // runc's default: /<id>
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, dir + "/fs/unified/c1")
    }

    // MARK: cgroupsPath rules

    func testRequestedPathRules() {
        typealias P = CgroupPath
        XCTAssertEqual(P.requested(nil, id: "abc").path, "/abc")
        XCTAssertFalse(P.requested(nil, id: "abc").relative)
        XCTAssertEqual(P.requested("", id: "abc").path, "/abc")
        XCTAssertEqual(P.requested(nil, id: "../../etc").path, "/etc")   // stays inside the hierarchy
        XCTAssertEqual(P.requested("/foo//bar/", id: "x").path, "/foo/bar")
        XCTAssertEqual(P.requested("/../../foo", id: "x").path, "/foo")
        XCTAssertTrue(P.requested("foo/bar", id: "x").relative)
        XCTAssertEqual(P.requested("foo/./bar", id: "x").path, "/foo/bar")
        // systemd syntax without systemd
        XCTAssertEqual(P.requested("system.slice:docker:abc", id: "x").path, "/system.slice/docker-abc.scope")
        XCTAssertFalse(P.requested("system.slice:docker:abc", id: "x").relative)
        XCTAssertEqual(P.requested("machine-vm.slice:libpod:abc", id: "x").path,
                       "/machine.slice/machine-vm.slice/libpod-abc.scope")
        XCTAssertEqual(P.requested(":p:n", id: "x").path, "/system.slice/p-n.scope")
        XCTAssertEqual(P.requested("user.slice::n", id: "x").path, "/user.slice/n.scope")
        XCTAssertEqual(P.requested("-.slice:p:n", id: "x").path, "/p-n.scope")
        XCTAssertEqual(P.requested("a.slice:p:sub.slice", id: "x").path, "/a.slice/sub.slice")
        XCTAssertEqual(P.expandSlice("a-b-c.slice"), "/a.slice/a-b.slice/a-b-c.slice")
    }

    func testDirectoryResolution() {
        typealias P = CgroupPath
        let rel = P.requested("x/y", id: "i"), abs = P.requested("/x/y", id: "i")
        XCTAssertEqual(P.directory(mountPoint: "/cg/memory", ownCgroup: "/process_api/abc", requested: rel),
                       "/cg/memory/process_api/abc/x/y")
        XCTAssertEqual(P.directory(mountPoint: "/cg/memory", ownCgroup: "/process_api/abc", requested: abs),
                       "/cg/memory/x/y")
        XCTAssertEqual(P.directory(mountPoint: "/cg/memory", ownCgroup: nil, requested: rel), "/cg/memory/x/y")
        // A mount of a sub-cgroup: the own cgroup is seen relative to it.
        XCTAssertEqual(P.directory(mountPoint: "/cg/f", mountRoot: "/docker/abc", ownCgroup: "/docker/abc/sub",
                                   requested: rel), "/cg/f/sub/x/y")
        XCTAssertEqual(P.directory(mountPoint: "/cg/f", mountRoot: "/docker/abc", ownCgroup: "/elsewhere",
                                   requested: rel), "/cg/f/x/y")
        // As runc: ".." in a relative path climbs no further than the
        // runtime's own cgroup.
        XCTAssertEqual(P.directory(mountPoint: "/cg/m", ownCgroup: "/a", requested: P.requested("../../../z", id: "i")),
                       "/cg/m/a/z")
    }

    func testRelativePathFollowsOwnCgroupPerHierarchy() throws {
        let root = temp()
        let host = try XCTUnwrap(CgroupHost.parse(mountinfo: hybridMountinfo, selfCgroup: hybridSelfCgroup))
        let m = makeManager(host: host, cgroupsPath: "ctr", id: "x", root: root)
        let byC = m.pathsByController
        XCTAssertEqual(byC["memory"], root + "/memory/process_api/abc/ctr")
        XCTAssertEqual(byC["cpu"], root + "/cpu/ctr")
        XCTAssertEqual(byC["name=systemd"], root + "/systemd/ctr")
        XCTAssertEqual(byC[""], root + "/unified/init.scope/ctr")
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, root + "/unified/init.scope/ctr")
    }

    func testSavedPathsRebuildTheSameManager() throws {
        let root = temp()
        let host = try XCTUnwrap(CgroupHost.parse(mountinfo: hybridMountinfo, selfCgroup: hybridSelfCgroup))
        let rebased = CgroupHost(hierarchies: host.hierarchies.map {
            CgroupHierarchy(mountPoint: root + $0.mountPoint.dropFirst("/sys/fs/cgroup".count), controllers: $0.controllers)
        }, unified: root + "/unified", selfCgroups: host.selfCgroups)
        let m = makeManager(host: rebased, cgroupsPath: "ctr", id: "x")
        let again = makeManager(host: rebased, savedPaths: m.pathsByController)
        XCTAssertEqual(again.paths, m.paths)
        XCTAssertEqual(again.unifiedPathForCloneIntoCgroup, m.unifiedPathForCloneIntoCgroup)
        // A saved path outside its hierarchy is dropped, never used.
        var bad = m.pathsByController
        bad["memory"] = "/etc"
        bad[""] = root + "/unified"
        bad["cpu"] = root + "/cpu,cpuacct/../../../etc"
        let filtered = makeManager(host: rebased, savedPaths: bad)
        XCTAssertFalse(filtered.paths.contains { !$0.hasPrefix(root) }, "\(filtered.paths)")
        XCTAssertEqual(filtered.paths.count, 7)
        XCTAssertNil(filtered.unifiedPathForCloneIntoCgroup)
        // Pure v2 with nothing saved: a manager that touches nothing.
        let none = makeManager(host: CgroupHost(unified: root + "/unified"), savedPaths: [:])
        XCTAssertEqual(none.paths, [])
        XCTAssertNoThrow(try none.add(pid: 1))
        XCTAssertNoThrow(try none.destroy())
    }

    // MARK: v2 on a fake tree

    /// A fake cgroup2 root with the root cgroup's files.
    func fakeV2() -> String {
        let root = temp() + "/cgroup"
        mkdirs(root)
        put(root + "/cgroup.procs", "1\n")
        put(root + "/cgroup.controllers", "cpu memory pids")
        put(root + "/cgroup.subtree_control", "")
        return root
    }

    /// The files the kernel would put in a new cgroup2 directory.
    func populateV2(_ dir: String, kill: Bool = true) {
        put(dir + "/cgroup.procs")
        put(dir + "/cgroup.freeze", "0\n")
        put(dir + "/cgroup.events", "populated 0\nfrozen 0\n")
        if kill { put(dir + "/cgroup.kill") }
    }

    func testV2CreateAddProcsDestroy() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/minicontainer/c1", id: "c1")
        XCTAssertEqual(m.paths, [root + "/minicontainer/c1"])
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, root + "/minicontainer/c1")
        XCTAssertEqual(m.pathsByController, ["": root + "/minicontainer/c1"])
        XCTAssertEqual(try m.procs(), [])   // no cgroup yet: nothing, no error
        try m.create()
        try m.create()                         // again: fine (mkdir -p)
        XCTAssertTrue(FS.isDirectory(root + "/minicontainer/c1"))
        let leaf = root + "/minicontainer/c1"
        XCTAssertEqual(try m.procs(), [])   // created, no control files yet
        populateV2(leaf)
        try m.add(pid: 42)
        try m.add(pid: 7)
        XCTAssertEqual(get(leaf + "/cgroup.procs"), "42 7")
        // A nested cgroup's members count too.
        mkdirs(leaf + "/inner")
        put(leaf + "/inner/cgroup.procs", "99\n42\n")
        XCTAssertEqual(try m.procs(), [7, 42, 99])
        try m.destroy()
        XCTAssertFalse(FS.exists(leaf))
        XCTAssertTrue(FS.isDirectory(root + "/minicontainer"))  // the shared parent stays
        XCTAssertTrue(FS.exists(root + "/cgroup.procs"))
        try m.destroy()                                      // already gone: fine
        XCTAssertEqual(try m.procs(), [])
    }

    func testV2AddWithoutCgroupFails() {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/a", id: "c1")
        XCTAssertEqual(thrownErrno { try m.add(pid: 1) }, ENOENT)
    }

    func testV2FreezeThaw() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        let leaf = root + "/ctr"
        populateV2(leaf)
        XCTAssertFalse(m.isFrozen())
        // The fake kernel has already "frozen" it: freeze sees that and returns.
        put(leaf + "/cgroup.events", "populated 1\nfrozen 1\n")
        try m.freeze()
        XCTAssertEqual(get(leaf + "/cgroup.freeze"), "1")
        XCTAssertTrue(m.isFrozen())
        put(leaf + "/cgroup.events", "populated 1\nfrozen 0\n")
        try m.thaw()
        XCTAssertEqual(get(leaf + "/cgroup.freeze"), "0")
        XCTAssertFalse(m.isFrozen())
        // Without cgroup.events, cgroup.freeze is the answer.
        unlink(leaf + "/cgroup.events")
        try m.freeze()
        XCTAssertTrue(m.isFrozen())
        try m.thaw()
        XCTAssertFalse(m.isFrozen())
        try m.destroy()
    }

    func testV2FreezeTimesOutAndUndoes() throws {
        let root = fakeV2()
        var m = V2Manager(mountPoint: root, path: root + "/ctr")
        m.freezeTimeout = 0.05
        try m.create()
        populateV2(m.path)   // cgroup.events stays "frozen 0"
        XCTAssertEqual(thrownErrno { try m.freeze() }, ETIMEDOUT)
        XCTAssertEqual(get(m.path + "/cgroup.freeze"), "0")
        try m.destroy()
    }

    func testV2FreezeWithoutFreezeFileFails() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        XCTAssertEqual(thrownErrno { try m.freeze() }, ENOENT)
        try m.destroy()
    }

    func testV2KillUsesCgroupKillForSIGKILL() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        populateV2(root + "/ctr")
        try m.kill(signal: SIGKILL)
        XCTAssertEqual(get(root + "/ctr/cgroup.kill"), "1")
        try m.destroy()
    }

    func testV2KillSignalsEachPidWithoutCgroupKill() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        let leaf = root + "/ctr"
        populateV2(leaf, kill: false)
        unlink(leaf + "/cgroup.freeze")   // no freezer: plain pid walk
        unlink(leaf + "/cgroup.events")
        let c = Child()
        defer { c.reap() }
        let child = c.pid
        // 0, -1 and our own pid would signal far more than the container:
        // they must be skipped.
        put(leaf + "/cgroup.procs", "0\n-1\n\(getpid())\n\(child)\n")
        try m.kill(signal: SIGTERM)
        XCTAssertEqual(termSignal(c.wait()), SIGTERM)
        try m.destroy()
    }

    func testV2KillFreezesAroundThePidWalk() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        let leaf = root + "/ctr"
        populateV2(leaf, kill: false)
        unlink(leaf + "/cgroup.events")
        let c = Child()
        defer { c.reap() }
        let child = c.pid
        put(leaf + "/cgroup.procs", "\(child)\n")
        try m.kill(signal: SIGKILL)   // no cgroup.kill: freeze, signal, thaw
        XCTAssertEqual(termSignal(c.wait()), SIGKILL)
        XCTAssertEqual(get(leaf + "/cgroup.freeze"), "0")
        try m.destroy()
    }

    func testV2ApplyPidsLimitEnablesTheController() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/a/b", id: "c1")
        try m.create()
        put(root + "/a/cgroup.subtree_control", "")
        put(root + "/a/b/pids.max", "max")
        try m.apply(resources: { var r = Resources(); r.pids = Pids(limit: 64); return r }())
        XCTAssertEqual(get(root + "/a/b/pids.max"), "64")
        // The fake file keeps the last write only.
        XCTAssertEqual(get(root + "/cgroup.subtree_control"), "+pids")
        XCTAssertEqual(get(root + "/a/cgroup.subtree_control"), "+pids")
        try m.apply(resources: { var r = Resources(); r.pids = Pids(limit: -1); return r }())
        XCTAssertEqual(get(root + "/a/b/pids.max"), "max")
        try m.apply(resources: Resources())   // nothing asked: nothing written
        try m.destroy()
    }

    func testCreateRefusesTheHierarchyRoot() throws {
        let root = fakeV2()
        for p in ["/", "/..", "a/../.."] {
            let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: p, id: "c1")
            XCTAssertEqual(m.paths, [root])
            XCTAssertEqual(thrownErrno { try m.create() }, EINVAL)
            XCTAssertEqual(thrownErrno { try m.destroy() }, EINVAL)
        }
        XCTAssertTrue(FS.isDirectory(root))
    }

    func testDestroyLeavesForeignFilesAlone() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        populateV2(root + "/ctr")
        put(root + "/ctr/notes", "not a control file")
        XCTAssertEqual(thrownErrno { try m.destroy() }, ENOTEMPTY)
        XCTAssertTrue(FS.exists(root + "/ctr/notes"))
    }

    func testDestroyRemovesNestedCgroups() throws {
        let root = fakeV2()
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/ctr", id: "c1")
        try m.create()
        populateV2(root + "/ctr")
        mkdirs(root + "/ctr/a/b")
        populateV2(root + "/ctr/a")
        populateV2(root + "/ctr/a/b")
        try m.destroy()
        XCTAssertFalse(FS.exists(root + "/ctr"))
    }

    // MARK: v1 and hybrid on a fake tree

    /// A fake hybrid host: v1 cpuset, freezer, memory, pids, cpu+cpuacct and
    /// name=systemd hierarchies plus cgroup2 "unified", with root files.
    func fakeHybrid() -> (root: String, host: CgroupHost) {
        let root = temp() + "/cgroup"
        let hs: [(String, [String])] = [("cpuset", ["cpuset"]), ("freezer", ["freezer"]), ("memory", ["memory"]),
                                        ("pids", ["pids"]), ("cpu,cpuacct", ["cpu", "cpuacct"]),
                                        ("systemd", ["name=systemd"])]
        for (dir, _) in hs {
            mkdirs(root + "/" + dir)
            put(root + "/" + dir + "/cgroup.procs", "1\n")
        }
        put(root + "/cpuset/cpuset.cpus", "0-3\n")
        put(root + "/cpuset/cpuset.mems", "0\n")
        mkdirs(root + "/unified")
        put(root + "/unified/cgroup.procs", "1\n")
        let host = CgroupHost(hierarchies: hs.map { CgroupHierarchy(mountPoint: root + "/" + $0.0, controllers: $0.1) },
                              unified: root + "/unified", selfCgroups: ["memory": "/process_api/abc"])
        return (root, host)
    }

    func testV1HybridCreateAddProcsFreezeDestroy() throws {
        let (root, host) = fakeHybrid()
        XCTAssertEqual(host.mode, .hybrid)
        let m = makeManager(host: host, cgroupsPath: "/mc-parent/ctr", id: "c1")
        let dirs = ["cpuset", "freezer", "memory", "pids", "cpu,cpuacct", "systemd", "unified"].map { root + "/" + $0 + "/mc-parent/ctr" }
        XCTAssertEqual(m.paths, dirs)
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, root + "/unified/mc-parent/ctr")
        XCTAssertEqual(m.pathsByController["cpuacct"], root + "/cpu,cpuacct/mc-parent/ctr")
        XCTAssertEqual(m.pathsByController["name=systemd"], root + "/systemd/mc-parent/ctr")

        // The cpuset files as the kernel would make them, empty: create
        // fills them from the parent, level by level.
        mkdirs(root + "/cpuset/mc-parent/ctr")
        for d in ["/mc-parent", "/mc-parent/ctr"] {
            put(root + "/cpuset" + d + "/cpuset.cpus", "\n")
            put(root + "/cpuset" + d + "/cpuset.mems", "")
        }
        try m.create()
        for d in dirs { XCTAssertTrue(FS.isDirectory(d), d) }
        XCTAssertEqual(get(root + "/cpuset/mc-parent/cpuset.cpus"), "0-3")
        XCTAssertEqual(get(root + "/cpuset/mc-parent/ctr/cpuset.cpus"), "0-3")
        XCTAssertEqual(get(root + "/cpuset/mc-parent/ctr/cpuset.mems"), "0")

        for d in dirs { put(d + "/cgroup.procs") }
        put(root + "/freezer/mc-parent/ctr/freezer.state", "THAWED\n")
        try m.add(pid: 1234)
        for d in dirs { XCTAssertEqual(get(d + "/cgroup.procs"), "1234", d) }
        put(root + "/memory/mc-parent/ctr/cgroup.procs", "1234\n555\n")   // union over hierarchies
        XCTAssertEqual(try m.procs(), [555, 1234])

        XCTAssertFalse(m.isFrozen())
        try m.freeze()
        XCTAssertEqual(get(root + "/freezer/mc-parent/ctr/freezer.state"), "FROZEN")
        XCTAssertTrue(m.isFrozen())
        try m.thaw()
        XCTAssertEqual(get(root + "/freezer/mc-parent/ctr/freezer.state"), "THAWED")
        XCTAssertFalse(m.isFrozen())

        put(root + "/pids/mc-parent/ctr/pids.max", "max")
        try m.apply(resources: { var r = Resources(); r.pids = Pids(limit: 10); return r }())
        XCTAssertEqual(get(root + "/pids/mc-parent/ctr/pids.max"), "10")

        try m.destroy()
        for d in dirs { XCTAssertFalse(FS.exists(d), d) }
        XCTAssertTrue(FS.isDirectory(root + "/memory/mc-parent"))
        try m.destroy()
    }

    func testV1FreezeUnexpectedStateFails() throws {
        let (root, host) = fakeHybrid()
        let m = makeManager(host: host, cgroupsPath: "/ctr", id: "c1")
        try m.create()
        // A plain file echoes what we write; a directory cannot be written.
        mkdirs(root + "/freezer/ctr/freezer.state")
        XCTAssertNotNil(thrownErrno { try m.freeze() })
        rmdir(root + "/freezer/ctr/freezer.state")
        try m.destroy()
    }

    func testV1KillFreezesSignalsAndThawsAfterSIGKILL() throws {
        let (root, host) = fakeHybrid()
        let m = makeManager(host: host, cgroupsPath: "/ctr", id: "c1")
        try m.create()
        let c = Child()
        defer { c.reap() }
        let child = c.pid
        put(root + "/freezer/ctr/cgroup.procs", "\(child)\n")
        put(root + "/freezer/ctr/freezer.state", "FROZEN\n")   // paused before
        XCTAssertTrue(m.isFrozen())
        try m.kill(signal: SIGKILL)
        XCTAssertEqual(termSignal(c.wait()), SIGKILL)
        // SIGKILL thaws, so that v1-frozen tasks can die.
        XCTAssertEqual(get(root + "/freezer/ctr/freezer.state"), "THAWED")
        try m.destroy()
    }

    func testV1KillOtherSignalKeepsAPausedContainerPaused() throws {
        let (root, host) = fakeHybrid()
        let m = makeManager(host: host, cgroupsPath: "/ctr", id: "c1")
        try m.create()
        put(root + "/freezer/ctr/freezer.state", "FROZEN\n")
        put(root + "/freezer/ctr/cgroup.procs", "")
        try m.kill(signal: SIGUSR1)
        XCTAssertEqual(get(root + "/freezer/ctr/freezer.state"), "FROZEN")
        try m.destroy()
    }

    func testV1CreateRollsBackOnFailure() throws {
        let root = temp()
        mkdirs(root + "/memory")
        put(root + "/freezer", "a file where a hierarchy should be")
        let host = CgroupHost(hierarchies: [CgroupHierarchy(mountPoint: root + "/memory", controllers: ["memory"]),
                                            CgroupHierarchy(mountPoint: root + "/freezer", controllers: ["freezer"])])
        XCTAssertEqual(host.mode, .v1)
        let m = makeManager(host: host, cgroupsPath: "/a/b", id: "c1")
        XCTAssertNil(m.unifiedPathForCloneIntoCgroup)
        XCTAssertEqual(thrownErrno { try m.create() }, ENOTDIR)
        XCTAssertFalse(FS.exists(root + "/memory/a"))
    }

    func testV1WithoutFreezerCannotFreeze() throws {
        let root = temp()
        mkdirs(root + "/memory")
        let m = makeManager(host: CgroupHost(hierarchies: [CgroupHierarchy(mountPoint: root + "/memory", controllers: ["memory"])]),
                            cgroupsPath: "/a", id: "c1")
        try m.create()
        XCTAssertEqual(thrownErrno { try m.freeze() }, ENOTSUP)
        XCTAssertFalse(m.isFrozen())
        XCTAssertEqual(thrownErrno { try m.apply(resources: { var r = Resources(); r.pids = Pids(limit: 5); return r }()) }, ENOTSUP)
        try m.destroy()
        XCTAssertFalse(FS.exists(root + "/memory/a"))
    }

    // MARK: - for real, as root, on a hybrid host

    func requireRootOnHybridHost() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root") }
        guard FS.isDirectory("/sys/fs/cgroup/unified"), FS.exists("/sys/fs/cgroup/unified/cgroup.procs") else {
            throw XCTSkip("needs a hybrid host with /sys/fs/cgroup/unified")
        }
    }

    func testName() -> String { "minicontainer-test-" + String(UInt32.random(in: 0...UInt32.max), radix: 16) }

    /// Best-effort removal whatever the test did: thaw, kill, rmdir.
    func forceRemove(_ m: CgroupManager) {
        try? m.thaw()
        for p in m.paths where FS.exists(p) {
            for pid in (try? m.procs()) ?? [] where pid > 1 && pid != getpid() { Glibc.kill(pid, SIGKILL) }
            _ = try? m.destroy()
            rmdir(p)
        }
    }

    func testHostHybridPlacementFreezeKillDestroy() throws {
        try requireRootOnHybridHost()
        let host = try CgroupHost.detect()
        XCTAssertEqual(host.mode, .hybrid)
        let name = testName()
        let m = makeManager(host: host, cgroupsPath: "/" + name, id: "unused")
        defer { forceRemove(m) }
        XCTAssertEqual(m.paths.count, host.hierarchies.count + 1)
        XCTAssertTrue(m.paths.contains("/sys/fs/cgroup/systemd/" + name))
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, "/sys/fs/cgroup/unified/" + name)

        try m.create()
        for p in m.paths { XCTAssertTrue(FS.isDirectory(p), p) }
        XCTAssertEqual(get("/sys/fs/cgroup/cpuset/\(name)/cpuset.cpus"), get("/sys/fs/cgroup/cpuset/cpuset.cpus"))
        XCTAssertFalse(get("/sys/fs/cgroup/cpuset/\(name)/cpuset.mems").isEmpty)

        let c = Child()
        defer { c.reap() }
        let child = c.pid
        try m.add(pid: child)
        XCTAssertEqual(try m.procs(), [child])
        let membership = get("/proc/\(child)/cgroup").split(separator: " ")
        XCTAssertEqual(membership.count, m.paths.count)
        XCTAssertTrue(membership.allSatisfy { $0.hasSuffix(":/" + name) }, "\(membership)")

        try m.freeze()
        XCTAssertTrue(m.isFrozen())
        XCTAssertEqual(get("/sys/fs/cgroup/freezer/\(name)/freezer.state"), "FROZEN")
        print("frozen v1 task state: \(procState(child))")
        try m.thaw()
        XCTAssertFalse(m.isFrozen())
        XCTAssertEqual(get("/sys/fs/cgroup/freezer/\(name)/freezer.state"), "THAWED")
        XCTAssertTrue(procState(child).hasPrefix("S"), procState(child))

        // Paused, then SIGKILL: the kill must thaw so the task dies.
        try m.freeze()
        try m.kill(signal: SIGKILL)
        XCTAssertEqual(termSignal(c.wait()), SIGKILL)
        XCTAssertFalse(m.isFrozen())
        XCTAssertEqual(try m.procs(), [])

        try m.destroy()
        for p in m.paths { XCTAssertFalse(FS.exists(p), p) }
    }

    func testHostHybridKillWithSIGTERMAndBusyDestroy() throws {
        try requireRootOnHybridHost()
        let host = try CgroupHost.detect()
        let name = testName()
        let m = makeManager(host: host, cgroupsPath: "/" + name, id: "unused")
        defer { forceRemove(m) }
        try m.create()
        let ca = Child(), cb = Child()
        defer { ca.reap(); cb.reap() }
        let a = ca.pid, b = cb.pid
        try m.add(pid: a)
        try m.add(pid: b)
        XCTAssertEqual(try m.procs(), [a, b].sorted())

        // Still populated: destroy retries briefly, then says who is inside.
        do {
            try m.destroy()
            XCTFail("destroy of a populated cgroup succeeded")
        } catch let e as SysError {
            XCTAssertEqual(e.errno, EBUSY)
            XCTAssertTrue(e.description.contains(String(a)), e.description)
        }

        try m.kill(signal: SIGTERM)
        XCTAssertEqual(termSignal(ca.wait()), SIGTERM)
        XCTAssertEqual(termSignal(cb.wait()), SIGTERM)
        XCTAssertFalse(m.isFrozen())   // frozen around the walk, thawed after
        try m.destroy()
        for p in m.paths { XCTAssertFalse(FS.exists(p), p) }
    }

    func testHostRelativePathUnderOwnCgroup() throws {
        try requireRootOnHybridHost()
        let host = try CgroupHost.detect()
        let name = testName()
        let m = makeManager(host: host, cgroupsPath: name, id: "unused")
        defer { forceRemove(m) }
        let own = host.selfCgroups["memory"] ?? "/"
        XCTAssertEqual(m.pathsByController["memory"], Path.clean("/sys/fs/cgroup/memory" + own + "/" + name))
        try m.create()
        for p in m.paths { XCTAssertTrue(FS.isDirectory(p), p) }
        try m.destroy()
        for p in m.paths { XCTAssertFalse(FS.exists(p), p) }
    }

    func testHostV2InUnifiedTree() throws {
        try requireRootOnHybridHost()
        let host = CgroupHost(unified: "/sys/fs/cgroup/unified")
        XCTAssertEqual(host.mode, .v2)
        let name = testName()
        let m = makeManager(host: host, cgroupsPath: "/" + name, id: "unused")
        defer { forceRemove(m) }
        let dir = "/sys/fs/cgroup/unified/" + name
        XCTAssertEqual(m.paths, [dir])
        XCTAssertEqual(m.unifiedPathForCloneIntoCgroup, dir)
        try m.create()
        XCTAssertTrue(FS.exists(dir + "/cgroup.freeze"))

        let ca = Child(), cb = Child()
        defer { ca.reap(); cb.reap() }
        let a = ca.pid, b = cb.pid
        try m.add(pid: a)
        try m.add(pid: b)
        XCTAssertEqual(try m.procs(), [a, b].sorted())
        XCTAssertTrue(get("/proc/\(a)/cgroup").contains("0::/" + name), get("/proc/\(a)/cgroup"))

        try m.freeze()
        XCTAssertTrue(m.isFrozen())
        XCTAssertTrue(get(dir + "/cgroup.events").contains("frozen 1"))
        print("frozen v2 task state: \(procState(a))")
        try m.thaw()
        XCTAssertFalse(m.isFrozen())
        XCTAssertTrue(get(dir + "/cgroup.events").contains("frozen 0"))

        // SIGKILL through cgroup.kill, even while frozen.
        XCTAssertTrue(FS.exists(dir + "/cgroup.kill"), "kernel without cgroup.kill")
        try m.freeze()
        try m.kill(signal: SIGKILL)
        XCTAssertEqual(termSignal(ca.wait()), SIGKILL)
        XCTAssertEqual(termSignal(cb.wait()), SIGKILL)
        try m.thaw()
        try m.destroy()
        XCTAssertFalse(FS.exists(dir))
    }
}

// MARK: - limits and stats on fake trees (issue 4)

final class CgroupLimitsTests: XCTestCase {
    var temps: [String] = []

    override func tearDown() {
        for t in temps { removeTree(t) }
        temps = []
        super.tearDown()
    }

    func temp() -> String {
        let t = makeTempDir()
        temps.append(t)
        return t
    }

    func testConversions() {
        XCTAssertEqual(cpuWeight(fromShares: 1024), 39)
        XCTAssertEqual(cpuWeight(fromShares: 2), 1)
        XCTAssertEqual(cpuWeight(fromShares: 262144), 10000)
        XCTAssertEqual(cpuWeight(fromShares: 0), 0)
        XCTAssertEqual(cpuWeight(fromShares: 512), 20)
        XCTAssertEqual(ioWeight(fromBlkioWeight: 10), 1)
        XCTAssertEqual(ioWeight(fromBlkioWeight: 1000), 10000)
        XCTAssertEqual(ioWeight(fromBlkioWeight: 500), 4950)
        XCTAssertEqual(ioWeight(fromBlkioWeight: 0), 0)
    }

    /// A fake cgroup2 tree with a container directory holding the limit files.
    func fakeV2Container(_ files: [String]) -> (root: String, dir: String, m: CgroupManager) {
        let root = temp() + "/cgroup"
        mkdirs(root)
        put(root + "/cgroup.procs", "1\n")
        put(root + "/cgroup.controllers", "cpu cpuset io memory pids hugetlb")
        put(root + "/cgroup.subtree_control", "")
        let m = makeManager(host: CgroupHost(unified: root), cgroupsPath: "/mc/c1", id: "c1")
        XCTAssertNoThrow(try m.create())
        let dir = root + "/mc/c1"
        for f in files { put(dir + "/" + f, "") }
        return (root, dir, m)
    }

    func testV2LimitFiles() throws {
        let (_, dir, m) = fakeV2Container(["memory.max", "memory.low", "memory.swap.max", "cpu.weight", "cpu.max",
                                           "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight", "io.max",
                                           "hugetlb.2MB.max", "memory.high", "cpu.idle"])
        var r = Resources()
        r.memory = Memory(limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20)
        r.cpu = CPU(shares: 1024, quota: 50000, period: 100000, cpus: "0-1", mems: "0")
        r.pids = Pids(limit: 20)
        var b = BlockIO()
        b.weight = 500
        b.throttleReadBpsDevice = [ThrottleDevice(major: 8, minor: 0, rate: 1_048_576)]
        r.blockIO = b
        r.hugepageLimits = [HugepageLimit(pageSize: "2MB", limit: 4 << 20)]
        r.unified = ["memory.high": "50331648"]
        try m.apply(resources: r)
        XCTAssertEqual(get(dir + "/memory.max"), String(64 << 20))
        XCTAssertEqual(get(dir + "/memory.low"), String(32 << 20))
        // The spec's swap is memory+swap; memory.swap.max is swap alone.
        XCTAssertEqual(get(dir + "/memory.swap.max"), String(32 << 20))
        XCTAssertEqual(get(dir + "/cpu.weight"), "39")
        XCTAssertEqual(get(dir + "/cpu.max"), "50000 100000")
        XCTAssertEqual(get(dir + "/cpuset.cpus"), "0-1")
        XCTAssertEqual(get(dir + "/cpuset.mems"), "0")
        XCTAssertEqual(get(dir + "/pids.max"), "20")
        XCTAssertEqual(get(dir + "/io.weight"), "default 4950")
        XCTAssertEqual(get(dir + "/io.max"), "8:0 rbps=1048576")
        XCTAssertEqual(get(dir + "/hugetlb.2MB.max"), String(4 << 20))
        XCTAssertEqual(get(dir + "/memory.high"), "50331648")

        // Unlimited: -1 is "max"; a quota without a period gets 100000.
        var u = Resources()
        u.memory = Memory(limit: -1, swap: -1)
        u.cpu = CPU(quota: -1)
        u.pids = Pids(limit: 0)
        try m.apply(resources: u)
        XCTAssertEqual(get(dir + "/memory.max"), "max")
        XCTAssertEqual(get(dir + "/memory.swap.max"), "max")
        XCTAssertEqual(get(dir + "/cpu.max"), "max 100000")
        XCTAssertEqual(get(dir + "/pids.max"), "max")

        // Each io.max line is one write: the last one stays in the fake file.
        var w = Resources()
        var wb = BlockIO()
        wb.throttleWriteIOPSDevice = [ThrottleDevice(major: 253, minor: 1, rate: 300)]
        w.blockIO = wb
        try m.apply(resources: w)
        XCTAssertEqual(get(dir + "/io.max"), "253:1 wiops=300")

        // Swap below the limit, a bad unified key, a bad page size: refused.
        var bad = Resources()
        bad.memory = Memory(limit: 64 << 20, swap: 32 << 20)
        XCTAssertEqual(thrownErrno { try m.apply(resources: bad) }, EINVAL)
        bad = Resources()
        bad.unified = ["../memory.max": "1"]
        XCTAssertEqual(thrownErrno { try m.apply(resources: bad) }, EINVAL)
        bad = Resources()
        bad.hugepageLimits = [HugepageLimit(pageSize: "2M/../x", limit: 1)]
        XCTAssertEqual(thrownErrno { try m.apply(resources: bad) }, EINVAL)
        // A file the kernel lacks: the error names the file and the value.
        bad = Resources()
        bad.unified = ["memory.oom.group": "1"]
        do {
            try m.apply(resources: bad)
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("memory.oom.group to 1"), "\(error)")
        }
        // Not a name the cleanup of fake trees takes for a control file.
        unlink(dir + "/hugetlb.2MB.max")
        try m.destroy()
    }

    func fakeV1Container() -> (root: String, m: CgroupManager, d: (String) -> String) {
        let root = temp() + "/cgroup"
        let hs: [(String, [String])] = [("cpuset", ["cpuset"]), ("memory", ["memory"]), ("pids", ["pids"]),
                                        ("cpu", ["cpu"]), ("cpuacct", ["cpuacct"]), ("blkio", ["blkio"]),
                                        ("freezer", ["freezer"])]
        for (dir, _) in hs {
            mkdirs(root + "/" + dir)
            put(root + "/" + dir + "/cgroup.procs", "1\n")
        }
        put(root + "/cpuset/cpuset.cpus", "0-1\n")
        put(root + "/cpuset/cpuset.mems", "0\n")
        let host = CgroupHost(hierarchies: hs.map { CgroupHierarchy(mountPoint: root + "/" + $0.0, controllers: $0.1) })
        let m = makeManager(host: host, cgroupsPath: "/mc/c1", id: "c1")
        XCTAssertNoThrow(try m.create())
        return (root, m, { root + "/" + $0 + "/mc/c1" })
    }

    func testV1LimitFiles() throws {
        let (_, m, d) = fakeV1Container()
        for f in ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness"] {
            put(d("memory") + "/" + f, "9223372036854771712")
        }
        for f in ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"] { put(d("cpu") + "/" + f, "") }
        put(d("pids") + "/pids.max", "max")
        put(d("cpuset") + "/cpuset.cpus", "0-1")
        put(d("cpuset") + "/cpuset.mems", "0")
        put(d("blkio") + "/blkio.weight", "")
        put(d("blkio") + "/blkio.throttle.read_bps_device", "")
        var r = Resources()
        r.memory = Memory(limit: 16 << 20, reservation: 8 << 20, swap: 32 << 20)
        r.memory!.swappiness = 10
        r.cpu = CPU(shares: 512, quota: 50000, period: 100000, cpus: "1", mems: "0")
        r.pids = Pids(limit: 20)
        var b = BlockIO()
        b.weight = 300
        b.throttleReadBpsDevice = [ThrottleDevice(major: 8, minor: 0, rate: 4096)]
        r.blockIO = b
        try m.apply(resources: r)
        XCTAssertEqual(get(d("memory") + "/memory.limit_in_bytes"), String(16 << 20))
        XCTAssertEqual(get(d("memory") + "/memory.soft_limit_in_bytes"), String(8 << 20))
        // v1 memsw is memory+swap, as the spec has it: no conversion.
        XCTAssertEqual(get(d("memory") + "/memory.memsw.limit_in_bytes"), String(32 << 20))
        XCTAssertEqual(get(d("memory") + "/memory.swappiness"), "10")
        XCTAssertEqual(get(d("cpu") + "/cpu.shares"), "512")
        XCTAssertEqual(get(d("cpu") + "/cpu.cfs_quota_us"), "50000")
        XCTAssertEqual(get(d("cpu") + "/cpu.cfs_period_us"), "100000")
        XCTAssertEqual(get(d("cpuset") + "/cpuset.cpus"), "1")
        XCTAssertEqual(get(d("cpuset") + "/cpuset.mems"), "0")
        XCTAssertEqual(get(d("pids") + "/pids.max"), "20")
        XCTAssertEqual(get(d("blkio") + "/blkio.weight"), "300")
        XCTAssertEqual(get(d("blkio") + "/blkio.throttle.read_bps_device"), "8:0 4096")
        var u = Resources()
        u.pids = Pids(limit: -1)
        try m.apply(resources: u)
        XCTAssertEqual(get(d("pids") + "/pids.max"), "max")
        // No hugetlb hierarchy and no cgroup2: refused, not ignored.
        var h = Resources()
        h.hugepageLimits = [HugepageLimit(pageSize: "2MB", limit: 1 << 21)]
        XCTAssertEqual(thrownErrno { try m.apply(resources: h) }, ENOTSUP)
        try m.destroy()
    }

    /// A unified key refused is refused before the first write: an update
    /// (containerd's `update --resources -`) that fails changes nothing.
    /// Pure v1: no cgroup2 at all; hybrid: a bad name, or one naming no file
    /// of the unified cgroup (no controller there can make it appear).
    func testUnifiedRefusedBeforeAnyWrite() throws {
        let (_, m, d) = fakeV1Container()
        put(d("memory") + "/memory.limit_in_bytes", "1")
        var r = Resources()
        r.memory = Memory(limit: 16 << 20)
        r.unified = ["cgroup.max.depth": "3"]
        XCTAssertEqual(thrownErrno { try m.apply(resources: r) }, ENOTSUP)
        XCTAssertEqual(get(d("memory") + "/memory.limit_in_bytes"), "1")
        try m.destroy()

        let root = temp() + "/cgroup"
        for h in ["memory", "unified"] {
            mkdirs(root + "/" + h)
            put(root + "/" + h + "/cgroup.procs", "1\n")
        }
        put(root + "/unified/cgroup.controllers", "")
        let host = CgroupHost(hierarchies: [CgroupHierarchy(mountPoint: root + "/memory", controllers: ["memory"])],
                              unified: root + "/unified")
        XCTAssertEqual(host.mode, .hybrid)
        let hm = makeManager(host: host, cgroupsPath: "/mc/c1", id: "c1")
        try hm.create()
        let limit = root + "/memory/mc/c1/memory.limit_in_bytes", depth = root + "/unified/mc/c1/cgroup.max.depth"
        put(limit, "1")
        put(depth, "max")
        for bad in ["../cgroup.max.depth", "nodot", "cgroup.nosuchfile"] {
            r.unified = [bad: "1", "cgroup.max.depth": "3"]
            XCTAssertNotNil(thrownErrno { try hm.apply(resources: r) }, bad)
            XCTAssertEqual(get(limit), "1", bad)
            XCTAssertEqual(get(depth), "max", bad)
        }
        r.unified = ["cgroup.max.depth": "3"]
        try hm.apply(resources: r)
        XCTAssertEqual(get(limit), String(16 << 20))
        XCTAssertEqual(get(depth), "3")
        try hm.destroy()
    }

    func testV1Stats() throws {
        let (_, m, d) = fakeV1Container()
        put(d("cpuacct") + "/cpuacct.usage", "123456789\n")
        put(d("cpuacct") + "/cpuacct.usage_percpu", "100000000 23456789 \n")
        put(d("cpu") + "/cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n")
        put(d("memory") + "/memory.usage_in_bytes", "1048576\n")
        put(d("memory") + "/memory.limit_in_bytes", "16777216\n")
        put(d("memory") + "/memory.max_usage_in_bytes", "2097152\n")
        put(d("memory") + "/memory.failcnt", "3\n")
        put(d("memory") + "/memory.stat", "cache 4096\nrss 8192\n")
        put(d("memory") + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        put(d("pids") + "/pids.current", "5\n")
        put(d("pids") + "/pids.max", "max\n")
        let s = readStats(m)
        XCTAssertEqual(s.cpuTotal, 123456789)
        XCTAssertEqual(s.cpuPercpu, [100000000, 23456789])
        XCTAssertEqual(s.throttledPeriods, 4)
        XCTAssertEqual(s.memoryUsage, 1048576)
        XCTAssertEqual(s.memoryLimit, 16777216)
        XCTAssertEqual(s.memoryMax, 2097152)
        XCTAssertEqual(s.memoryFailcnt, 3)
        XCTAssertEqual(s.memoryRaw.map { $0.0 }, ["cache", "rss"])
        XCTAssertEqual(s.oomKills, 2)
        XCTAssertEqual(readOOMKills(m), 2)
        XCTAssertEqual(s.pidsCurrent, 5)
        XCTAssertEqual(s.pidsLimit, 0)
        try m.destroy()
    }

    func testV2Stats() throws {
        let (_, dir, m) = fakeV2Container([])
        put(dir + "/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
        put(dir + "/memory.current", "4096\n")
        put(dir + "/memory.max", "max\n")
        put(dir + "/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n")
        put(dir + "/pids.current", "2\n")
        put(dir + "/pids.max", "20\n")
        let s = readStats(m)
        XCTAssertEqual(s.cpuTotal, 2_500_000)
        XCTAssertEqual(s.cpuUser, 2_000_000)
        XCTAssertEqual(s.memoryUsage, 4096)
        XCTAssertEqual(s.memoryLimit, UInt64.max)
        XCTAssertEqual(s.oomKills, 1)
        XCTAssertEqual(s.memoryFailcnt, 7)
        XCTAssertEqual(s.pidsCurrent, 2)
        XCTAssertEqual(s.pidsLimit, 20)
        try m.destroy()
    }

    func testMergeKeepsWhatTheUpdateLeavesUnset() {
        var base = Resources()
        base.memory = Memory(limit: 32 << 20, reservation: 8 << 20)
        base.pids = Pids(limit: 50)
        base.cpu = CPU(shares: 1024, cpus: "0-1")
        base.unified = ["memory.high": "1", "pids.max": "5"]
        var delta = Resources()
        delta.memory = Memory(limit: 64 << 20)
        delta.cpu = CPU(quota: 50000)
        delta.unified = ["memory.high": "2"]
        let m = mergeResources(base, delta)
        XCTAssertEqual(m.memory?.limit, 64 << 20)
        XCTAssertEqual(m.memory?.reservation, 8 << 20)
        XCTAssertEqual(m.pids?.limit, 50)
        XCTAssertEqual(m.cpu?.shares, 1024)
        XCTAssertEqual(m.cpu?.quota, 50000)
        XCTAssertEqual(m.cpu?.cpus, "0-1")
        XCTAssertEqual(m.unified, ["memory.high": "2", "pids.max": "5"])
        XCTAssertEqual(mergeResources(nil, delta).memory?.limit, 64 << 20)
        // Zeros and empty lists (as podman sends them) leave things as they are.
        var zeros = Resources()
        zeros.memory = Memory(limit: 0, reservation: 0, swap: 0)
        zeros.cpu = CPU(shares: 0, quota: 0, period: 0, cpus: "", mems: "")
        zeros.pids = Pids(limit: 0)
        XCTAssertEqual(mergeResources(m, zeros), m)
    }
}
