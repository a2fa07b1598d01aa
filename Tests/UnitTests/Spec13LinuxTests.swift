import XCTest
import JSON
import Spec
import SpecJSON

// linux.timeOffsets, linux.netDevices and linux.intelRdt (runtime-spec 1.3):
// their decoding errors name the key path, and Spec.problems refuses what
// the spec forbids (ValidateLinux13.swift).

final class Spec13LinuxTests: XCTestCase {
    func decode(_ linux: String) throws -> Spec {
        try SpecJSON.decode(Array(#"{"ociVersion": "1.3.0", "linux": {\#(linux)}}"#.utf8), file: "config.json")
    }

    func decodeError(_ linux: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try decode(linux)
            XCTFail("decoded", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testDecodes() throws {
        let s = try decode(#""timeOffsets": {"monotonic": {"secs": -3, "nanosecs": 4}, "boottime": {}},"#
                           + #" "netDevices": {"eth1": {"name": "c0"}, "eth2": {}},"#
                           + #" "intelRdt": {"closID": "/", "memBwSchema": "MB:0=20", "enableMonitoring": false}"#)
        XCTAssertEqual(s.linux?.timeOffsets, ["monotonic": TimeOffset(secs: -3, nanosecs: 4), "boottime": TimeOffset()])
        XCTAssertEqual(s.linux?.netDevices, ["eth1": NetDevice(name: "c0"), "eth2": NetDevice()])
        XCTAssertEqual(s.linux?.intelRdt, IntelRdt(closID: "/", memBwSchema: "MB:0=20", enableMonitoring: false))
    }

    func testDecodingErrorsNameThePath() {
        XCTAssertEqual(decodeError(#""timeOffsets": {"monotonic": {"secs": "1"}}"#),
                       "config.json: linux.timeOffsets.monotonic.secs: expected integer, found string")
        XCTAssertEqual(decodeError(#""timeOffsets": {"boottime": {"nanosecs": -1}}"#),
                       "config.json: linux.timeOffsets.boottime.nanosecs: -1 is out of range (must lie between 0 and 4294967295)")
        XCTAssertEqual(decodeError(#""timeOffsets": []"#), "config.json: linux.timeOffsets: expected object, found array")
        XCTAssertEqual(decodeError(#""netDevices": {"eth0": {"name": 5}}"#),
                       "config.json: linux.netDevices.eth0.name: expected string, found integer")
        XCTAssertEqual(decodeError(#""netDevices": {"eth0": "c0"}"#),
                       "config.json: linux.netDevices.eth0: expected object, found string")
        XCTAssertEqual(decodeError(#""intelRdt": {"schemata": ["a", 1]}"#),
                       "config.json: linux.intelRdt.schemata[1]: expected string, found integer")
        XCTAssertEqual(decodeError(#""intelRdt": {"enableMonitoring": "yes"}"#),
                       "config.json: linux.intelRdt.enableMonitoring: expected boolean, found string")
    }

    // MARK: validation

    func problems(_ l: (inout Linux) -> Void) -> [String] {
        var s = Spec.defaultSpec()
        l(&s.linux!)
        return s.problems(bundle: "/b", exists: { _ in true }).map { $0.description }
    }

    func testTimeOffsetsNeedANewTimeNamespace() {
        let offsets = ["monotonic": TimeOffset(secs: 10)]
        XCTAssertEqual(problems { $0.timeOffsets = offsets },
                       ["linux.timeOffsets: offsets need a new time namespace in linux.namespaces"])
        XCTAssertEqual(problems { $0.timeOffsets = offsets; $0.namespaces!.append(Namespace(type: "time", path: "/proc/1/ns/time")) },
                       ["linux.timeOffsets: offsets cannot be set on a joined time namespace (linux.namespaces[6].path)"])
        XCTAssertEqual(problems { $0.timeOffsets = offsets; $0.namespaces!.append(Namespace(type: "time")) }, [])
        // No offsets, nothing to check.
        XCTAssertEqual(problems { $0.timeOffsets = [:] }, [])
    }

    func testTimeOffsetValues() {
        XCTAssertEqual(problems {
            $0.namespaces!.append(Namespace(type: "time"))
            $0.timeOffsets = ["realtime": TimeOffset(secs: 1), "boottime": TimeOffset(nanosecs: 1_000_000_000),
                              "monotonic": TimeOffset(secs: -5, nanosecs: 999_999_999)]
        }, ["linux.timeOffsets.boottime.nanosecs: 1000000000 is not below 1000000000",
            "linux.timeOffsets: unknown clock \"realtime\" (monotonic or boottime)"])
    }

    func testNetDevicesNeedANewNetworkNamespace() {
        XCTAssertEqual(problems { $0.namespaces!.removeAll { $0.type == "network" }; $0.netDevices = ["eth1": NetDevice()] },
                       ["linux.netDevices: moving devices needs a new network namespace in linux.namespaces"])
        XCTAssertEqual(problems {
            $0.namespaces = $0.namespaces!.map { $0.type == "network" ? Namespace(type: "network", path: "/run/netns/x") : $0 }
            $0.netDevices = ["eth1": NetDevice()]
        }, ["linux.netDevices: devices can only be moved into a new network namespace, not a joined one (linux.namespaces[1].path)"])
        XCTAssertEqual(problems { $0.netDevices = ["eth1": NetDevice(name: "c0"), "eth2": NetDevice(name: "c%d")] }, [])
    }

    func testNetDeviceNames() {
        // Every name that is not an interface's, host side and container side.
        for bad in ["", "a/b", "eth0:1", ".", "..", "a b", "a\nb", "a\tb", "a\u{0}b", "a\u{7f}", "abcdefghijklmnop"] {
            let host = problems { $0.netDevices = [bad: NetDevice()] }
            XCTAssertEqual(host.count, 1, "\(bad.debugDescription): \(host)")
            XCTAssertTrue(host.first?.hasPrefix("linux.netDevices: host interface name ") == true, "\(host)")
            XCTAssertFalse(host.first?.contains("\n") == true || host.first?.contains("\u{0}") == true, "one line: \(host)")
            let inside = problems { $0.netDevices = ["eth1": NetDevice(name: bad)] }
            XCTAssertEqual(inside.count, 1, "\(bad.debugDescription): \(inside)")
            XCTAssertTrue(inside.first?.hasPrefix("linux.netDevices.eth1.name: ") == true, "\(inside)")
        }
        XCTAssertNil(NetDevice.nameProblem("abcdefghijklmno"))  // 15 bytes: IFNAMSIZ less its NUL
        XCTAssertNil(NetDevice.nameProblem("mcnd-1.x_y%d"))
    }

    func testNetDevicesNamedTheSameInside() {
        XCTAssertEqual(problems { $0.netDevices = ["eth1": NetDevice(name: "c0"), "eth2": NetDevice(name: "c0")] },
                       ["linux.netDevices.eth2: \"eth1\" is named \"c0\" in the container too"])
        // eth1 keeps its name, eth2 takes it too.
        XCTAssertEqual(problems { $0.netDevices = ["eth1": NetDevice(), "eth2": NetDevice(name: "eth1")] },
                       ["linux.netDevices.eth2: \"eth1\" is named \"eth1\" in the container too"])
        // Templates are numbered apart by the kernel.
        XCTAssertEqual(problems { $0.netDevices = ["eth1": NetDevice(name: "c%d"), "eth2": NetDevice(name: "c%d")] }, [])
    }

    func testIntelRdt() {
        XCTAssertEqual(problems { $0.intelRdt = IntelRdt(closID: "/", schemata: ["L3:0=f"], l3CacheSchema: "L3:0=f", memBwSchema: "MB:0=20") }, [])
        XCTAssertEqual(problems { $0.intelRdt = IntelRdt() }, [])
        XCTAssertEqual(problems { $0.intelRdt = IntelRdt(closID: "a/b") },
                       ["linux.intelRdt.closID: \"a/b\" must not contain \"/\" (only \"/\" alone, the root group)"])
        for bad in ["..", ".", "", "info", "mon_groups", "a\nb"] {
            XCTAssertEqual(problems { $0.intelRdt = IntelRdt(closID: bad) }.count, 1, bad.debugDescription)
        }
        XCTAssertEqual(problems { $0.intelRdt = IntelRdt(schemata: ["L3:0=f", "MB:0=1\nL3:0=1"], l3CacheSchema: "L3:\n",
                                                         memBwSchema: "L3:0=f") },
                       ["linux.intelRdt.l3CacheSchema: must not contain a newline",
                        "linux.intelRdt.memBwSchema: must start with \"MB:\", not \"L3:0=f\"",
                        "linux.intelRdt.schemata[1]: must not contain a newline"])
    }
}
