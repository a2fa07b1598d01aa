import JSON
import Runtime
import Spec
import SpecJSON
import Sys

// `minicontainer check`: reads a bundle's config.json and reports the first
// problem (syntax, types, or meaning) as one line, without running anything.

let checkCommand = Command(
    name: "check",
    summary: "validate a bundle's config.json without running it",
    usage: "[--bundle DIR]",
    flags: [Flag(["b", "bundle"], value: "DIR", "the bundle directory (default .)")]
) { p, _ in
    if let extra = p.positionals.first { throw Failure(.usage, "check takes no arguments, got \(quoted(extra))") }
    _ = try Bundle.load(FS.absolute(p.string("bundle") ?? "."))
    return 0
}

/// A JSON document a flag names (`--resources`, `--process`): a file, or
/// standard input for "-" (called `stdinName` in errors), decoded by
/// `decode`; bad JSON is one line (a Failure).
func decodeFlagFile<T>(_ file: String, stdinName: String, _ decode: (JSONValue, String) throws -> T) throws -> T {
    let bytes = file == "-" ? try FS.readFd(0) : try FS.readBytes(file)
    let name = file == "-" ? stdinName : file
    do {
        return try decode(JSONValue.parse(bytes, file: name), name)
    } catch let e as JSONError {
        throw Failure(.invalid, e.description)
    }
}
