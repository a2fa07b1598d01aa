import XCTest
import Glibc
import Sys

// The layer rule of ARCHITECTURE.md, checked against the tree: a module
// imports only modules of lower layers. The layers are read from the table in
// ARCHITECTURE.md itself, so the document and this test cannot drift apart.
// C targets and Glibc may be imported from anywhere; nothing else (no
// Foundation) may be imported at all.

/// The repository: this file is Tests/UnitTests/ArchitectureTests.swift in it.
private let repoRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// ARCHITECTURE.md's layer table.
private struct LayerTable: Equatable {
    /// Swift module -> its layer.
    var layer: [String: Int] = [:]
    /// The C targets (the row whose layer is `C`): below every layer.
    var cTargets: Set<String> = []
}

/// One dependency edge: `importer` imports `imported`, as `file` says.
private struct ImportEdge {
    var file: String
    var importer: String
    var imported: String
}

private enum Architecture {
    /// System modules any layer may import besides the C targets.
    static let allowedAnywhere: Set<String> = ["Glibc"]

    // MARK: The layer table

    /// Reads the first markdown table whose header starts `| layer | modules |`.
    /// Each row: a layer number (or `C` for the C targets), then the modules,
    /// separated by commas or spaces, optionally in backticks; further columns
    /// are prose. Returns the table and what is wrong with it.
    static func parseLayerTable(_ markdown: String) -> (LayerTable, [String]) {
        var table = LayerTable()
        var problems: [String] = []
        var inTable = false
        var seen = false
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = trim(raw)
            guard line.hasPrefix("|") else {
                if inTable { break }
                continue
            }
            let cells = self.cells(line)
            if !inTable {
                if cells.count >= 2, cells[0].lowercased() == "layer", cells[1].lowercased() == "modules" {
                    inTable = true
                    seen = true
                }
                continue
            }
            if cells.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 == "-" || $0 == ":" } }) { continue }
            guard cells.count >= 2 else { problems.append("layer table row with fewer than two cells: \(line)"); continue }
            let names = cells[1].split(whereSeparator: { $0 == "," || $0 == " " || $0 == "`" }).map(String.init)
            if names.isEmpty { problems.append("layer table row without modules: \(line)") }
            let key = cells[0]
            let number = Int(key)
            if number == nil && key != "C" {
                problems.append("layer table row whose layer is neither a number nor C: \(line)")
                continue
            }
            for name in names {
                if table.layer[name] != nil || table.cTargets.contains(name) {
                    problems.append("layer table names \(name) twice")
                }
                if let n = number { table.layer[name] = n } else { table.cTargets.insert(name) }
            }
        }
        if !seen { problems.append("no table with a `| layer | modules |` header") }
        return (table, problems)
    }

    // MARK: The rule

    /// Everything that breaks the rule. `swiftModules` and `cModules` are the
    /// directories under Sources/ (with and without .swift files).
    static func violations(_ table: LayerTable, swiftModules: [String], cModules: [String],
                           imports: [ImportEdge]) -> [String] {
        var out: [String] = []
        let directories = Set(swiftModules).union(cModules)
        for m in swiftModules.sorted() where table.layer[m] == nil {
            out.append("Sources/\(m): module \(m) is not in the layer table: add it to ARCHITECTURE.md, in the row of its layer")
        }
        for m in cModules.sorted() where !table.cTargets.contains(m) {
            out.append("Sources/\(m): C target \(m) is not in the layer table: add it to the C row of ARCHITECTURE.md")
        }
        for m in Set(table.layer.keys).union(table.cTargets).sorted() where !directories.contains(m) {
            out.append("ARCHITECTURE.md: the layer table names \(m), but there is no Sources/\(m): remove or rename it")
        }
        var unknownImporters: Set<String> = []
        for e in imports {
            let c = table.cTargets.contains(e.imported) || allowedAnywhere.contains(e.imported)
            if table.cTargets.contains(e.importer) {
                if !c { out.append("\(e.file): C target \(e.importer) imports \(e.imported): C targets import only C targets") }
                continue
            }
            guard let mine = table.layer[e.importer] else {
                // A directory missing from the table is reported above.
                if !directories.contains(e.importer) && unknownImporters.insert(e.importer).inserted {
                    out.append("\(e.file): module \(e.importer) is not in the layer table: add it to ARCHITECTURE.md")
                }
                continue
            }
            if c { continue }
            guard let theirs = table.layer[e.imported] else {
                // A module whose directory is missing from the table is reported above.
                if swiftModules.contains(e.imported) { continue }
                out.append("\(e.file): module \(e.importer) imports \(e.imported), which is neither a module of ARCHITECTURE.md's layer table, a C target nor Glibc")
                continue
            }
            if theirs >= mine {
                out.append("\(e.file): module \(e.importer) (layer \(mine)) imports \(e.imported) (layer \(theirs)): a module may import only modules of lower layers (ARCHITECTURE.md)")
            }
        }
        return out
    }

    // MARK: Reading sources

    /// The modules a Swift source imports, in order: `import X`, with
    /// attributes (`@testable`, `@_implementationOnly`, ...) and import kinds
    /// (`import struct X.Y`); a submodule counts as its top module.
    static func swiftImports(_ source: String) -> [String] {
        var out: [String] = []
        for raw in source.split(separator: "\n") {
            var line = Substring(trim(raw))
            while line.hasPrefix("@") {
                line = line.dropFirst()
                line = line.drop { isIdentifier($0) }
                if line.hasPrefix("(") {
                    guard let close = line.firstIndex(of: ")") else { break }
                    line = line[line.index(after: close)...]
                }
                line = line.drop { $0 == " " || $0 == "\t" }
            }
            guard line.hasPrefix("import"), let after = line.dropFirst(6).first, after == " " || after == "\t" else { continue }
            var rest = line.dropFirst(6).drop { $0 == " " || $0 == "\t" }
            for kind in ["typealias", "struct", "class", "enum", "protocol", "let", "var", "func"] {
                if rest.hasPrefix(kind + " ") || rest.hasPrefix(kind + "\t") {
                    rest = rest.dropFirst(kind.count).drop { $0 == " " || $0 == "\t" }
                    break
                }
            }
            let name = rest.prefix { isIdentifier($0) }
            if !name.isEmpty { out.append(String(name)) }
        }
        return out
    }

    /// Each `.target(...)` and `.executableTarget(...)` of a Package.swift
    /// with the names in its `dependencies: [...]` (a `package:` argument is
    /// not a dependency name). Comments are skipped; test targets are not
    /// read (tests may import every layer).
    static func packageDependencies(_ package: String) -> [(target: String, dependencies: [String])] {
        let text = Array(stripLineComments(package).utf8)
        var out: [(target: String, dependencies: [String])] = []
        var i = 0
        while i < text.count {
            guard let open = match(text, at: i, any: [".target(", ".executableTarget("]) else { i += 1; continue }
            let close = closing(text, from: open - 1, open: UInt8(ascii: "("), close: UInt8(ascii: ")"))
            let args = Array(text[open..<close])
            let name = stringAfter(args, label: "name:")
            var deps: [String] = []
            if let d = find(args, "dependencies:") {
                var j = d + "dependencies:".utf8.count
                while j < args.count && args[j] != UInt8(ascii: "[") { j += 1 }
                if j < args.count {
                    let end = closing(args, from: j, open: UInt8(ascii: "["), close: UInt8(ascii: "]"))
                    deps = strings(Array(args[(j + 1)..<end]))
                }
            }
            if let name { out.append((target: name, dependencies: deps)) }
            i = close + 1
        }
        return out
    }

    // MARK: Helpers

    static func trim<S: StringProtocol>(_ s: S) -> String {
        String(s.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }

    static func cells(_ row: String) -> [String] {
        var parts = row.split(separator: "|", omittingEmptySubsequences: false).map { trim($0) }
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    static func isIdentifier(_ c: Character) -> Bool {
        c == "_" || (c.isASCII && (c.isLetter || c.isNumber))
    }

    /// The text without `//` comments (outside string literals).
    static func stripLineComments(_ s: String) -> String {
        var out: [UInt8] = []
        var inString = false
        var comment = false
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            let c = b[i]
            if comment {
                if c == UInt8(ascii: "\n") { comment = false; out.append(c) }
            } else if inString {
                out.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < b.count { out.append(b[i + 1]); i += 1 }
                else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
                comment = true
            } else {
                if c == UInt8(ascii: "\"") { inString = true }
                out.append(c)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// If one of `needles` starts at `i`, the index just past it.
    static func match(_ b: [UInt8], at i: Int, any needles: [String]) -> Int? {
        for n in needles {
            let u = Array(n.utf8)
            if i + u.count <= b.count && Array(b[i..<(i + u.count)]) == u { return i + u.count }
        }
        return nil
    }

    static func find(_ b: [UInt8], _ needle: String) -> Int? {
        var i = 0
        while i < b.count {
            if match(b, at: i, any: [needle]) != nil { return i }
            i += 1
        }
        return nil
    }

    /// The index of the bracket closing the one at `from` (or the end), string literals skipped.
    static func closing(_ b: [UInt8], from: Int, open: UInt8, close: UInt8) -> Int {
        var depth = 0
        var inString = false
        var i = from
        while i < b.count {
            let c = b[i]
            if inString {
                if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == open {
                depth += 1
            } else if c == close {
                depth -= 1
                if depth == 0 { return i }
            }
            i += 1
        }
        return b.count
    }

    /// The string literal after the first `label` (`name: "X"`).
    static func stringAfter(_ b: [UInt8], label: String) -> String? {
        guard let at = find(b, label) else { return nil }
        return strings(Array(b[(at + label.utf8.count)...])).first
    }

    /// The string literals in `b`, except those that are a `package:` argument.
    static func strings(_ b: [UInt8]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < b.count {
            guard b[i] == UInt8(ascii: "\"") else { i += 1; continue }
            var j = i + 1
            while j < b.count && b[j] != UInt8(ascii: "\"") { j += 1 }
            var k = i - 1
            while k >= 0 && (b[k] == UInt8(ascii: " ") || b[k] == UInt8(ascii: "\t") || b[k] == UInt8(ascii: "\n")) { k -= 1 }
            let isPackage = k >= 7 && Array(b[(k - 7)...k]) == Array("package:".utf8)
            if !isPackage { out.append(String(decoding: b[(i + 1)..<min(j, b.count)], as: UTF8.self)) }
            i = j + 1
        }
        return out
    }

    /// The .swift files under `dir`, recursively, as paths relative to the repository.
    static func swiftFiles(_ dir: String) -> [String] {
        var out: [String] = []
        for name in FS.listDirectory(repoRoot + "/" + dir) {
            let path = dir + "/" + name
            if FS.isDirectory(repoRoot + "/" + path) {
                out += swiftFiles(path)
            } else if name.hasSuffix(".swift") {
                out.append(path)
            }
        }
        return out
    }
}

final class ArchitectureTests: XCTestCase {
    /// The tree obeys ARCHITECTURE.md: every module has a layer, and every
    /// import (in the sources and in Package.swift) goes to a lower one.
    func testModulesImportOnlyLowerLayers() throws {
        let doc = try FS.readString(repoRoot + "/ARCHITECTURE.md")
        let (table, problems) = Architecture.parseLayerTable(doc)
        XCTAssertEqual(problems, [], "ARCHITECTURE.md's layer table")
        XCTAssertFalse(table.layer.isEmpty, "ARCHITECTURE.md's layer table has no Swift modules")

        var swiftModules: [String] = [], cModules: [String] = []
        var edges: [ImportEdge] = []
        for m in FS.listDirectory(repoRoot + "/Sources") where FS.isDirectory(repoRoot + "/Sources/" + m) {
            let files = Architecture.swiftFiles("Sources/" + m)
            if files.isEmpty { cModules.append(m); continue }
            swiftModules.append(m)
            for f in files {
                for imported in Architecture.swiftImports(try FS.readString(repoRoot + "/" + f)) {
                    edges.append(ImportEdge(file: f, importer: m, imported: imported))
                }
            }
        }
        XCTAssertFalse(swiftModules.isEmpty, "no Swift modules found under \(repoRoot)/Sources")

        let targets = Architecture.packageDependencies(try FS.readString(repoRoot + "/Package.swift"))
        XCTAssertFalse(targets.isEmpty, "no .target(name: ...) found in Package.swift")
        for t in targets {
            for d in t.dependencies {
                edges.append(ImportEdge(file: "Package.swift", importer: t.target, imported: d))
            }
        }

        for v in Architecture.violations(table, swiftModules: swiftModules, cModules: cModules, imports: edges) {
            XCTFail(v)
        }
    }

    /// The checker itself, on a made-up table and tree with one of each fault.
    func testCheckerReportsEachKindOfViolation() {
        let doc = """
        # Something

        | other | table |
        |---|---|
        | 0 | NotAModule |

        | layer | modules | may import |
        |---|---|---|
        | 0 | `Base`, Types | C targets only |
        | 1 | Mid | layer 0 |
        | 2 | Top | layers 0-1 |
        | C | CLow | nothing |

        | 9 | AfterTheTable |
        """
        let (table, problems) = Architecture.parseLayerTable(doc)
        XCTAssertEqual(problems, [])
        XCTAssertEqual(table, LayerTable(layer: ["Base": 0, "Types": 0, "Mid": 1, "Top": 2], cTargets: ["CLow"]))

        let good = [
            ImportEdge(file: "Sources/Mid/a.swift", importer: "Mid", imported: "Base"),
            ImportEdge(file: "Sources/Top/b.swift", importer: "Top", imported: "Mid"),
            ImportEdge(file: "Sources/Top/b.swift", importer: "Top", imported: "Types"),
            ImportEdge(file: "Sources/Base/c.swift", importer: "Base", imported: "CLow"),
            ImportEdge(file: "Sources/Base/c.swift", importer: "Base", imported: "Glibc"),
        ]
        XCTAssertEqual(Architecture.violations(table, swiftModules: ["Base", "Types", "Mid", "Top"], cModules: ["CLow"], imports: good), [])

        let bad = good + [
            ImportEdge(file: "Sources/Base/up.swift", importer: "Base", imported: "Top"),
            ImportEdge(file: "Sources/Base/same.swift", importer: "Base", imported: "Types"),
            ImportEdge(file: "Sources/Mid/f.swift", importer: "Mid", imported: "Foundation"),
            ImportEdge(file: "Package.swift", importer: "CLow", imported: "Base"),
        ]
        XCTAssertEqual(Architecture.violations(table, swiftModules: ["Base", "Types", "Mid", "Top", "New"], cModules: ["CLow", "CNew"], imports: bad), [
            "Sources/New: module New is not in the layer table: add it to ARCHITECTURE.md, in the row of its layer",
            "Sources/CNew: C target CNew is not in the layer table: add it to the C row of ARCHITECTURE.md",
            "Sources/Base/up.swift: module Base (layer 0) imports Top (layer 2): a module may import only modules of lower layers (ARCHITECTURE.md)",
            "Sources/Base/same.swift: module Base (layer 0) imports Types (layer 0): a module may import only modules of lower layers (ARCHITECTURE.md)",
            "Sources/Mid/f.swift: module Mid imports Foundation, which is neither a module of ARCHITECTURE.md's layer table, a C target nor Glibc",
            "Package.swift: C target CLow imports Base: C targets import only C targets",
        ])
        XCTAssertEqual(Architecture.violations(table, swiftModules: ["Base", "Mid", "Top"], cModules: ["CLow"], imports: []), [
            "ARCHITECTURE.md: the layer table names Types, but there is no Sources/Types: remove or rename it",
        ])

        let (_, noTable) = Architecture.parseLayerTable("| a | b |\n|---|---|\n| 0 | X |\n")
        XCTAssertEqual(noTable, ["no table with a `| layer | modules |` header"])
        let (_, twice) = Architecture.parseLayerTable("| layer | modules |\n|---|---|\n| 0 | X |\n| one | Y |\n| 1 | X |\n")
        XCTAssertEqual(twice, ["layer table row whose layer is neither a number nor C: | one | Y |", "layer table names X twice"])
    }

    /// Import lines and Package.swift targets are read as the compiler would see them.
    func testReadsImportsAndPackageTargets() {
        let source = """
        import Glibc
        @testable import Runtime
        @_implementationOnly import CShim
        @preconcurrency @testable import Sys
        import struct Spec.Spec
        import JSON.Value
        // import Commented
        let important = 1
        importNothing()
        """
        XCTAssertEqual(Architecture.swiftImports(source), ["Glibc", "Runtime", "CShim", "Sys", "Spec", "JSON"])

        let package = """
        let package = Package(
            name: "demo",
            targets: [
                // .target(name: "Commented", dependencies: ["Top"]),
                .systemLibrary(name: "CLow", path: "Sources/CLow"),
                .target(name: "Base"),
                .target(name: "Mid", dependencies: ["Base", "CLow"], linkerSettings: [.linkedLibrary("m")]),
                .target(
                    name: "Top",
                    dependencies: [
                        "Mid",
                        .target(name: "Base"),
                        .product(name: "Thing", package: "thing-package"),
                    ]),
                .executableTarget(name: "tool", dependencies: ["Top"]),
                .testTarget(name: "Tests", dependencies: ["Top", "Base"]),
            ]
        )
        """
        let targets = Architecture.packageDependencies(package)
        XCTAssertEqual(targets.map(\.target), ["Base", "Mid", "Top", "tool"])
        XCTAssertEqual(targets.map(\.dependencies), [[], ["Base", "CLow"], ["Mid", "Base", "Thing"], ["Top"]])
    }
}
