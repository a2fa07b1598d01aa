import Compile
import Spec
import XCTest

/// The run flags of issue 16 (restart, stop, env files, labels, mounts,
/// limits, DNS, ports, init) compiled against a fake host: their
/// annotations and spec fields, and a one-line error for each bad value.
final class RunFlagsTests: XCTestCase {
    var files: [String: String] = [:]
    var environment: [String: String] = [:]

    func host() -> Compile.Host {
        Compile.Host(realPath: { $0.hasPrefix("/missing") ? nil : $0 }, isDirectory: { $0 == "/rootfs" || $0.hasPrefix("/dir") },
                     environment: { self.environment[$0] }, readFile: { self.files[$0] })
    }

    func spec(_ edit: (inout RunFlags) -> Void) throws -> Spec {
        var f = RunFlags()
        f.rootfs = "/rootfs"
        f.network = "none"
        f.command = ["/bin/true"]
        edit(&f)
        return try compile(f, host: host())
    }

    func annotation(_ key: String, _ edit: (inout RunFlags) -> Void) throws -> String? {
        try spec(edit).annotations?[key]
    }

    func error(_ edit: (inout RunFlags) -> Void) -> String? {
        do {
            _ = try spec(edit)
            return nil
        } catch let e as CompileError {
            XCTAssertFalse(e.message.contains("\n"), e.message)
            return e.message
        } catch {
            return "not a CompileError: \(error)"
        }
    }

    // MARK: --restart, --stop-timeout, --stop-signal

    func testRestartCanonicalForms() throws {
        XCTAssertNil(try annotation(Annotation.restart) { _ in })
        XCTAssertNil(try annotation(Annotation.restart) { $0.restart = "no" })
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "always" }, "always")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "unless-stopped" }, "unless-stopped")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "on-failure" }, "on-failure")
        XCTAssertEqual(try annotation(Annotation.restart) { $0.restart = "on-failure:3" }, "on-failure:3")
    }

    func testRestartRefusals() {
        XCTAssertEqual(error { $0.restart = "bogus" }, "invalid --restart \"bogus\": use no, on-failure[:N], always or unless-stopped")
        XCTAssertEqual(error { $0.restart = "always:3" }, "invalid --restart \"always:3\": only on-failure takes a retry count")
        for n in ["0", "-1", "x", "", "+3", "99999999999", "3 "] {
            XCTAssertEqual(error { $0.restart = "on-failure:" + n },
                           "invalid --restart \"on-failure:\(n)\": the retry count must be a positive integer", n)
        }
    }

    func testRmWithARestartPolicyIsRefused() {
        XCTAssertEqual(error { $0.restart = "always"; $0.autoRemove = true },
                       "the --rm option conflicts with --restart always: the restart policy must be no")
        XCTAssertNil(error { $0.restart = "no"; $0.autoRemove = true })
    }

    func testStopTimeout() throws {
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "0" }, "0")
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "30" }, "30")
        XCTAssertEqual(try annotation(Annotation.stopTimeout) { $0.stopTimeout = "007" }, "7")
        for t in ["-1", "x", "", "+1", "1.5", "99999999999"] {
            XCTAssertEqual(error { $0.stopTimeout = t }, "invalid --stop-timeout \(quoted(t)): use a number of seconds (0 or more)", t)
        }
    }

    func testStopSignalReplacesTheImages() throws {
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "quit" }, "SIGQUIT")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "9" }, "SIGKILL")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.stopSignal = "RTMIN+2" }, "36")
        var image = ImageDefaults(reference: "x", id: "sha256:" + String(repeating: "a", count: 64), layers: ["/rootfs"])
        image.run.stopSignal = "SIGUSR1"
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.rootfs = nil; $0.image = image }, "SIGUSR1")
        XCTAssertEqual(try annotation(Annotation.stopSignal) { $0.rootfs = nil; $0.image = image; $0.stopSignal = "HUP" }, "SIGHUP")
        for s in ["0", "BOGUS", "", "65"] {
            XCTAssertEqual(error { $0.stopSignal = s }, "invalid --stop-signal \(quoted(s)): not a signal name or number", s)
        }
    }
}
