// libFuzzer target: config.json bytes -> Spec, as create reads a bundle
// (Runtime/Bundle.swift: SpecJSON.decode, then Spec.problems), plus two
// properties the unit tests check on fixed inputs:
// - the hand-written decoder agrees with the Codable one (same Spec, or the
//   same JSONError);
// - what decodes, encoded by our writer and decoded again, is the same Spec.
// - every object's lookup (indexed once it is large) gives the first entry
//   whose key is equal, as a search of its entries does.
// A disagreement is a finding: it traps, so libFuzzer keeps the input.
// Pure: no file is read or written.

import FuzzSupport
import JSON
import Spec
import SpecJSON

enum Outcome: Equatable {
    case spec(Spec)
    case error(JSONError)
    case other(String)
}

func outcome(_ body: () throws -> Spec) -> Outcome {
    do { return .spec(try body()) } catch let e as JSONError { return .error(e) } catch { return .other("\(error)") }
}

/// Checks JSONObject's lookup against a search of the entries, everywhere in `v`.
func checkLookups(_ v: JSONValue) {
    switch v {
    case .array(let a): a.forEach(checkLookups)
    case .object(let o):
        for (k, x) in o.entries {
            let first = o.entries.first { $0.key == k }!.value
            if o[k] != first { fatalError("lookup of \(k) gave \(String(describing: o[k])), not \(first)") }
            checkLookups(x)
        }
        if o["\u{0}absent"] != nil && !o.keys.contains("\u{0}absent") { fatalError("lookup of an absent key") }
    default: break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = bytes(data, size)
    if let v = try? JSONValue.parse(bytes, file: "config.json") { checkLookups(v) }
    let fast = outcome { try SpecJSON.decode(bytes, file: "config.json") }
    let slow = outcome { try JSONDecoding.decode(Spec.self, from: bytes, file: "config.json") }
    if fast != slow {
        fatalError("SpecJSON and Codable disagree:\n  SpecJSON: \(fast)\n  Codable:  \(slow)")
    }
    guard case .spec(let spec) = fast else { return 0 }
    // As create validates (the bundle's own directory; host paths: some exist).
    let problems = spec.problems(bundle: "/fuzz/bundle", exists: { $0.utf8.count % 2 == 0 })
    _ = problems.map { $0.description }
    // Round trip through the writer.
    checkRoundTrip(spec, "spec", write: { try JSONEncoding.pretty($0) },
                   read: { try SpecJSON.decode($0, file: "config.json") })
    return 0
}

@main
struct Main {
    static func main() { runFuzzer(fuzz) }
}
