import Glibc
import XCTest
@testable import Rootfs
@testable import Runtime
import Spec
import Sys

/// Idmapped mounts (issue 17, item 2): what a mount asks for, the spec's
/// and the kernel's rules for its mappings, the bind plan the runtime makes
/// trees for, and the init's message for each tree.
final class IDMapTests: XCTestCase {
    func m(_ c: UInt32, _ h: UInt32, _ s: UInt32) -> IDMapping { IDMapping(containerID: c, hostID: h, size: s) }

    func mount(_ options: [String]?, type: String? = "bind", uid: [IDMapping]? = nil, gid: [IDMapping]? = nil) -> Mount {
        var x = Mount(destination: "/data", type: type, source: "/srv", options: options)
        x.uidMappings = uid
        x.gidMappings = gid
        return x
    }

    /// The default spec with a user namespace (or not) and `mounts` appended.
    func spec(_ mounts: [Mount], userNS: Bool = true) -> Spec {
        var s = Spec.defaultSpec()
        if userNS { s.linux!.namespaces!.append(Namespace(type: "user")) }
        s.mounts! += mounts
        return s
    }

    func problems(_ s: Spec) -> [String] { s.mountIDMapProblems().map { $0.description } }

    func testWhatAMountAsksFor() {
        XCTAssertNil(mount(["rbind", "ro"]).idmap)
        XCTAssertNil(mount(["bind"], uid: [], gid: []).idmap, "empty lists are no mappings, as for linux.uidMappings")
        XCTAssertEqual(mount(["bind", "idmap"]).idmap, MountIDMap(recursive: false))
        XCTAssertEqual(mount(["rbind", "ridmap"]).idmap, MountIDMap(recursive: true))
        XCTAssertEqual(mount(["rbind", "idmap", "ridmap"]).idmap?.recursive, true)
        // Mappings alone ask for it too (the options are a SHOULD), not recursively.
        let own = mount(["rbind"], uid: [m(0, 1000, 1)], gid: [m(0, 1000, 1)]).idmap
        XCTAssertEqual(own, MountIDMap(recursive: false, uidMappings: [m(0, 1000, 1)], gidMappings: [m(0, 1000, 1)]))
        XCTAssertTrue(own!.hasOwnMappings)
        XCTAssertTrue(mount(nil, type: nil).isBindMount)
        XCTAssertTrue(mount(nil, type: "none").isBindMount)
        XCTAssertTrue(mount(["rbind"], type: "tmpfs").isBindMount, "rbind makes any type a bind")
        XCTAssertFalse(mount(["idmap"], type: "tmpfs").isBindMount)
        // The options are runtime extensions: never filesystem data.
        let o = Rootfs.parseOptions(["rbind", "ridmap", "idmap", "mode=755"])
        XCTAssertEqual(o.extensions, ["ridmap", "idmap"])
        XCTAssertEqual(o.data, "mode=755")
        XCTAssertTrue(MountOptions.known.contains("idmap") && MountOptions.known.contains("ridmap"))
        XCTAssertEqual(MountIDMap.options, ["idmap", "ridmap"])
    }

    func testValidMountsHaveNoProblems() {
        let ok = [mount(["bind", "idmap"]), mount(["rbind", "ridmap"], type: nil),
                  mount(["bind"], uid: [m(1000, 100000, 1), m(0, 200000, 10)], gid: [m(1000, 100000, 1)])]
        XCTAssertEqual(problems(spec(ok)), [])
        XCTAssertEqual(spec(ok).problems(bundle: "/b", exists: { _ in true }).map { $0.description }, [])
        // Mappings need no user namespace (the host sees the mapped ids).
        XCTAssertEqual(problems(spec([ok[2]], userNS: false)), [])
        // A joined one is one.
        var joined = spec([ok[0]], userNS: false)
        joined.linux!.namespaces!.append(Namespace(type: "user", path: "/proc/1/ns/user"))
        XCTAssertEqual(problems(joined), [])
    }

    func testTheSpecsRules() {
        let i = Spec.defaultSpec().mounts!.count
        XCTAssertEqual(problems(spec([mount(["bind"], uid: [m(0, 1, 1)])])),
                       ["mounts[\(i)].uidMappings: must be given with gidMappings"])
        XCTAssertEqual(problems(spec([mount(["bind", "idmap"], gid: [m(0, 1, 1)])])),
                       ["mounts[\(i)].gidMappings: must be given with uidMappings"])
        XCTAssertEqual(problems(spec([mount(["rbind", "ridmap"])], userNS: false)),
                       ["mounts[\(i)].options: ridmap without uidMappings and gidMappings maps the ids as the container's user namespace does, and there is none in linux.namespaces"])
        XCTAssertEqual(problems(spec([mount(["idmap"], type: "tmpfs")])),
                       ["mounts[\(i)]: only bind mounts can be idmapped here, not type \"tmpfs\""])
        XCTAssertEqual(problems(spec([mount(nil, type: "proc", uid: [m(0, 1, 1)], gid: [m(0, 1, 1)])])),
                       ["mounts[\(i)]: only bind mounts can be idmapped here, not type \"proc\""])
        // Through the whole validation, in document order, after the destinations.
        var s = spec([mount(["bind"], uid: [m(0, 1, 1)])])
        s.mounts![0].destination = "proc"
        XCTAssertEqual(s.problems(bundle: "/b", exists: { _ in true }).map { $0.path }, ["mounts[0].destination", "mounts[\(i)].uidMappings"])
    }

    func testTheKernelsRules() {
        func p(_ l: [IDMapping]) -> [String] { IDMapping.problems(l).map { "\($0.index.map(String.init) ?? "-"): \($0.message)" } }
        XCTAssertEqual(p([m(0, 100000, 65536), m(65536, 0, 1)]), [])
        XCTAssertEqual(p([m(0, 1, 0)]), ["0: size must not be 0"])
        XCTAssertEqual(p([m(0, 4_294_967_294, 1)]), [], "the last id")
        XCTAssertEqual(p([m(0, 4_294_967_295, 1)]), ["0: hostID 4294967295 with size 1 goes past the last id (4294967294)"])
        XCTAssertEqual(p([m(1, 0, 4_294_967_295)]), ["0: containerID 1 with size 4294967295 goes past the last id (4294967294)"])
        XCTAssertEqual(p([m(4_294_967_295, 4_294_967_295, 4_294_967_295)]).count, 2, "both sides, without overflowing")
        XCTAssertEqual(p([m(0, 100, 10), m(9, 200, 1)]), ["1: its containerID range overlaps that of [0]"])
        XCTAssertEqual(p([m(0, 100, 10), m(10, 105, 1)]), ["1: its hostID range overlaps that of [0]"])
        XCTAssertEqual(p([m(0, 100, 10), m(10, 110, 1)]), [], "adjacent ranges")
        XCTAssertEqual(p([m(0, 100, 0), m(0, 100, 1)]), ["0: size must not be 0"], "an empty range overlaps nothing")
        let many = (0..<UInt32(341)).map { m($0, 1000 + $0, 1) }
        XCTAssertEqual(p(Array(many.prefix(340))), [])
        XCTAssertEqual(p(many), ["-: 341 mappings, more than the kernel allows (340)"])
        XCTAssertEqual(Rootfs.mapText([m(1000, 100000, 1), m(0, 200000, 10)]), "1000 100000 1\n0 200000 10\n")
    }

    func testTheBindsTheRuntimeMakes() {
        let mounts = [
            Mount(destination: "/proc", type: "proc", source: "proc"),
            mount(["rbind", "ridmap", "ro"]),
            mount(["bind"], uid: [m(1000, 100000, 1)], gid: [m(1000, 100000, 1)]),
            Mount(destination: "/plain", type: "bind", source: "rel", options: ["rbind"]),
            Mount(destination: "data/./x", type: "none", source: "vol", options: ["bind", "idmap"]),
        ]
        let binds = Rootfs.idmappedBinds(mounts: mounts, bundle: "/bundles/b")
        XCTAssertEqual(binds.map { $0.index }, [1, 2, 4])
        XCTAssertEqual(binds[0], IdmappedBind(index: 1, source: "/srv", destination: "/data", recursiveBind: true,
                                              map: MountIDMap(recursive: true)))
        XCTAssertFalse(binds[1].recursiveBind)
        XCTAssertEqual(binds[1].map.uidMappings, [m(1000, 100000, 1)])
        XCTAssertEqual(binds[2].source, "/bundles/b/vol", "relative to the bundle, as every bind")
        XCTAssertEqual(binds[2].destination, "/data/x")
        XCTAssertEqual(binds[2].label, "mount /bundles/b/vol on /data/x")
        let plan = Rootfs.plan(mounts: mounts, bundle: "/bundles/b")
        XCTAssertEqual(plan.map { $0.idmapped }, [false, true, true, false, true])
    }

    func testTheInitsMessage() throws {
        for i in [0, 7, 1234] {
            XCTAssertEqual(InitMessage(InitMessage.idmapped(index: i).bytes), .idmapped(index: i))
        }
        XCTAssertEqual(InitMessage.idmapped(index: 12).bytes, [0x49] + Array("12".utf8))
        for bad in ["", "-1", "+1", "01", "1x", " 1"] {
            XCTAssertNil(InitMessage([0x49] + Array(bad.utf8)), bad)
        }
        // Trees come before go, each beside its message, and reach the init by index.
        let (a, b) = try Channel.pair()
        defer { a.close(); b.close() }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        try a.send(.idmapped(index: 3), fd: fds[0])
        try a.send(.go(state: "{}"))
        let got = try XCTUnwrap(try b.receiveGo(wantSeccomp: false))
        XCTAssertEqual(got.state, "{}")
        XCTAssertEqual(Array(got.idmapped.keys), [3])
        close(got.idmapped[3]!)
        // Without its tree, or twice, it is refused.
        try a.send(.idmapped(index: 3))
        XCTAssertThrowsError(try b.receiveGo(wantSeccomp: false))
        try a.send(.idmapped(index: 1), fd: fds[0])
        try a.send(.idmapped(index: 1), fd: fds[0])
        XCTAssertThrowsError(try b.receiveGo(wantSeccomp: false))
    }

    func testTheKernelHasThem() {
        // Linux 5.12+ (this runtime's floor for the new mount API is 5.2;
        // the machines it is tested on run 6.x).
        XCTAssertTrue(Rootfs.kernelHasIdmappedMounts)
    }

    func testTheProbe() throws {
        try XCTSkipUnless(geteuid() == 0, "makes a user namespace and a detached mount: needs root")
        XCTAssertTrue(Rootfs.idmappedMountsWork(at: "/tmp"), "ext4 or tmpfs")
        XCTAssertFalse(Rootfs.idmappedMountsWork(at: "/proc"), "procfs cannot be idmapped")
        XCTAssertFalse(Rootfs.idmappedMountsWork(at: "/nonexistent-idmap-probe"))
        // The namespace's holder is reaped: no child of ours is left.
        var st: Int32 = 0
        XCTAssertEqual(waitpid(-1, &st, WNOHANG), -1)
        XCTAssertEqual(errno, ECHILD)
    }
}
