import JSON
import Spec
import SpecJSON
import Sys

// The bundle: a directory with config.json. Runtime reads it once, at
// create (and `check`); what create read is kept, byte for byte, in the
// container's state directory (Store.configPath), and every command after
// create reads that copy: runtime-spec says later edits of the bundle have
// no effect.

public struct Bundle {
    public let dir: String
    public let spec: Spec
    /// config.json as read: what create keeps.
    public let config: [UInt8]

    /// Reads, decodes and validates `dir/config.json`; each error is one line
    /// naming the file and the key path.
    public static func load(_ dir: String) throws -> Bundle {
        let path = dir + "/config.json"
        let bytes: [UInt8]
        do {
            bytes = try FS.readBytes(path)
        } catch let e as SysError {
            throw fail("cannot read \(path): \(errnoText(e.errno))", .invalid)
        }
        let spec = try decode(bytes, file: "config.json")
        if let p = spec.problems(bundle: dir, exists: { FS.exists($0) }).first {
            throw fail("config.json: \(p)", .invalid)
        }
        return Bundle(dir: dir, spec: spec, config: bytes)
    }

    /// Decodes config.json bytes (a bundle's or a container's copy).
    static func decode(_ bytes: [UInt8], file: String) throws -> Spec {
        do {
            return try SpecJSON.decode(bytes, file: file)
        } catch let e as JSONError {
            throw fail(e.description, .invalid)
        }
    }
}
