import JSON
import Spec
import SpecJSON
import Sys

// `minicontainer check`: reads a bundle's config.json and reports the first
// problem (syntax, types, or meaning) as one line, without running anything.

/// Loads and validates `bundle/config.json`; errors are one line each,
/// naming the file and key path.
public func loadSpec(bundle: String) throws -> Spec {
    let path = bundle + "/config.json"
    let bytes: [UInt8]
    do {
        bytes = try FS.readBytes(path)
    } catch let e as SysError {
        throw CommandError("cannot read \(path): \(errnoText(e.errno))")
    }
    let spec: Spec
    do {
        spec = try SpecJSON.decode(bytes, file: "config.json")
    } catch let e as JSONError {
        throw CommandError(e.description)
    }
    if let p = spec.problems(bundle: bundle, exists: { FS.exists($0) }).first {
        throw CommandError("config.json: \(p)")
    }
    return spec
}

let checkCommand = Command(
    name: "check",
    summary: "validate a bundle's config.json without running it",
    usage: "[--bundle DIR]",
    flags: [Flag(["b", "bundle"], value: "DIR", "the bundle directory (default .)")]
) { p, _ in
    if let extra = p.positionals.first { throw UsageError("check takes no arguments, got \(quoted(extra))") }
    _ = try loadSpec(bundle: FS.absolute(p.string("bundle") ?? "."))
    return 0
}

/// A JSON document a flag names (`--resources`, `--process`): a file, or
/// standard input for "-" (called `stdinName` in errors), decoded by
/// `decode`; bad JSON is one CommandError line.
func decodeFlagFile<T>(_ file: String, stdinName: String, _ decode: (JSONValue, String) throws -> T) throws -> T {
    let bytes = file == "-" ? try FS.readFd(0) : try FS.readBytes(file)
    let name = file == "-" ? stdinName : file
    do {
        return try decode(JSONValue.parse(bytes, file: name), name)
    } catch let e as JSONError {
        throw CommandError(e.description)
    }
}
