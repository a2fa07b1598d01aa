import XCTest
import JSON
import Spec
import Sys

// Spec's Annotation keys are the keys our schemas document: the bundle's in
// schema/annotations.schema.json, the printed state's in state.schema.json.

/// The repository: this file is Tests/UnitTests/AnnotationsTests.swift in it.
private let repoRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

final class AnnotationKeysTests: XCTestCase {
    func schema(_ name: String) throws -> JSONValue {
        try JSONValue.parse(try FS.readBytes(repoRoot + "/schema/" + name), file: name)
    }

    func keys(_ v: JSONValue?) -> [String] {
        guard case .object(let o)? = v else { return [] }
        return o.keys
    }

    func testBundleKeysAreTheAnnotationsSchemasProperties() throws {
        let documented = keys(try schema("annotations.schema.json")["properties"])
        XCTAssertFalse(documented.isEmpty)
        XCTAssertEqual(Set(Annotation.bundleKeys), Set(documented))
        XCTAssertEqual(Annotation.bundleKeys.count, documented.count, "no key twice")
    }

    func testStateKeysAreTheStateSchemasAnnotationProperties() throws {
        let documented = keys(try schema("state.schema.json")["properties"]?["annotations"]?["properties"])
        XCTAssertEqual(Set(Annotation.stateKeys), Set(documented))
        XCTAssertEqual(Annotation.stateKeys.count, documented.count)
    }

    func testKeysAreOursAndDistinct() {
        let all = Annotation.bundleKeys + Annotation.stateKeys
        XCTAssertEqual(Set(all).count, all.count)
        for k in all { XCTAssertTrue(k.hasPrefix("org.minicontainer."), k) }
        XCTAssertEqual([Annotation.name, Annotation.network, Annotation.ports, Annotation.interactive,
                        Annotation.rootfs, Annotation.ip, Annotation.gateway],
                       ["org.minicontainer.name", "org.minicontainer.network", "org.minicontainer.ports",
                        "org.minicontainer.interactive", "org.minicontainer.rootfs", "org.minicontainer.ip",
                        "org.minicontainer.gateway"])
    }
}
