@testable import JSON
import XCTest
@testable import CLI
@testable import Compile
@testable import Runtime
import Spec
import SpecJSON

/// What the fuzz targets (Tests/Fuzz) found, one test per finding, with the
/// input that showed it. Hangs are quadratic costs in the input's size:
/// their inputs are made here (a literal would be megabytes), in the shape
/// the target got them, and the test bounds the time generously (a return
/// of the quadratic cost takes minutes at these sizes).
final class FuzzFindingsTests: XCTestCase {
    /// Seconds `body` takes.
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The JSON text of an object with `n` distinct keys, `{"k0":"v",...}`.
    func bigObject(_ n: Int, prefix: String = "k") -> String {
        "{" + (0..<n).map { "\"\(prefix)\($0)\":\"v\"" }.joined(separator: ",") + "}"
    }

    // MARK: fuzz-state, fuzz-config: JSONObject was O(n^2) to build and to read

    /// fuzz-state (timeout): a state.json with 100000 annotations (or cgroups)
    /// took seconds to write back (Record.object, key by key through
    /// JSONObject's setter, which searched every key before it), and
    /// `state`/`list` print the annotations the same way; fuzz-config
    /// (timeout): the Codable decoder's dictionaries looked up each key
    /// linearly. Fix: JSONObject indexes its keys once it is large.
    func testStateWithManyAnnotationsIsLinear() throws {
        let n = 100_000
        let text = "{\"id\":\"c1\",\"pid\":1,\"startTime\":1,\"bundle\":\"/b\",\"rootfs\":\"/r\",\"created\":\"x\",\"owner\":\"\","
            + "\"cgroups\":\(bigObject(n, prefix: "c")),\"annotations\":\(bigObject(n))}"
        let t = try seconds {
            let r = try Record.decode(Array(text.utf8), file: "state.json")
            XCTAssertEqual(r.annotations?.count, n)
            XCTAssertEqual(r.cgroups.count, n)
            let again = try Record.decode(Array(try r.json().compact().utf8), file: "state.json")
            XCTAssertEqual(again, r)
            let state = Store(root: "/nonexistent").state(r, status: .stopped)
            _ = state.json(rootfs: r.rootfs, created: r.created, owner: r.owner).compact()
        }
        XCTAssertLessThan(t, 20, "100000 annotations took \(t) s")
    }

    func testCodableDictionaryWithManyKeysIsLinear() throws {
        let n = 100_000
        let t = try seconds {
            let m = try JSONDecoding.decode([String: String].self, from: Array(bigObject(n).utf8), file: "x.json")
            XCTAssertEqual(m.count, n)
            XCTAssertEqual(m["k99999"], "v")
        }
        XCTAssertLessThan(t, 20, "\(n) keys took \(t) s")
    }

    /// The index keeps JSONObject's rules: the first of two keys equal as
    /// Swift Strings wins (jansson compares bytes, so "\u00e9" and
    /// "e\u0301" are both kept), assigning replaces in place, removing
    /// shifts what follows; below and above the size where indexing starts.
    func testLargeObjectsKeepFirstMatchOrderAndRemoval() throws {
        for n in [3, JSONObject.indexedCount - 1, JSONObject.indexedCount, 200] {
            let filler = (0..<n).map { "\"f\($0)\":\($0)" }.joined(separator: ",")
            let v = try JSONValue.parse("{\(filler),\"\u{e9}\":1,\"e\u{301}\":2}", file: "x")
            guard case .object(var o) = v else { return XCTFail() }
            XCTAssertEqual(o.count, n + 2)
            XCTAssertEqual(o["\u{e9}"], JSONValue.int(1), "n=\(n)")
            XCTAssertEqual(o["e\u{301}"], JSONValue.int(1), "n=\(n)")
            o["f0"] = JSONValue.int(-1)
            XCTAssertEqual(o.keys.first, "f0")
            XCTAssertEqual(o["f0"], JSONValue.int(-1))
            o["\u{e9}"] = nil
            XCTAssertEqual(o["e\u{301}"], JSONValue.int(2), "n=\(n): the second one is found once the first is gone")
            o["f1"] = nil
            XCTAssertNil(o["f1"])
            XCTAssertEqual(o["f2"], JSONValue.int(2))
            XCTAssertEqual(o.count, n)
            o["new"] = JSONValue.bool(true)
            XCTAssertEqual(o.keys.last, "new")
            XCTAssertEqual(o["new"], JSONValue.bool(true))
            // Equality is by entries, however the object was built.
            var built = JSONObject()
            for (k, x) in o.entries { built[k] = x }
            XCTAssertEqual(built, o)
        }
    }
}
