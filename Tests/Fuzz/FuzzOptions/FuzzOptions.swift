// libFuzzer target: the small parsers of mount options and run-flag values.
// The input, as text, goes to each of them: Rootfs.parseOptions (split at
// commas, as config.json's options list), the fsconfig and mount_setattr
// forms of what it parsed, and Compile's parseSize, parseCPUs, parseVolume,
// parsePort and parseUser (against a made-up Host). Each result is checked
// against what its documentation promises; a broken promise traps.

import Compile
import FuzzSupport
import Network
import Rootfs
import Spec

/// One port of schema/annotations.schema.json's org.minicontainer.ports.
let portPattern: Regex<AnyRegexOutput> = {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    let port = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
    // Host port 0: a free one, chosen by run (`-p 80`).
    return try! Regex("(?:\(octet)(?:\\.\(octet)){3}:)?(?:0|\(port)):\(port)/(?:tcp|udp)")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let s = text(data, size)

    let options = s.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let o = Rootfs.parseOptions(options)
    _ = o.description
    _ = Rootfs.superblockKeys(o.flags)
    _ = Rootfs.mountAttributes(o.flags)
    _ = Rootfs.fsParameters(o.data)
    let raw = bytes(data, size)
    let word = raw.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    _ = Rootfs.bindRemountFlags(requested: o.flags, cleared: o.clearedFlags, current: Rootfs.msFlags(statfsFlags: word))
    if o.flags & o.clearedFlags != 0 { fatalError("a flag both set and cleared: \(o)") }

    if let n = parseSize(s), n < 0 { fatalError("parseSize(\(s)) = \(n)") }
    if let q = parseCPUs(s), !(1000...102_400_000).contains(q) { fatalError("parseCPUs(\(s)) = \(q)") }
    if let m = try? parseVolume(s, host: fakeHost) {
        // Over the bytes, as the kernel reads it (a "/" before a combining
        // mark is one Character with it, and hasPrefix("/") is false).
        if !Path.isAbsolute(m.destination) || Path.hasDotDot(m.destination) {
            fatalError("parseVolume(\(s)) = \(m)")
        }
    }
    if let p = try? parsePort(s) {
        // The canonical form parses to itself, is what the network reads back
        // from the annotation, and matches the annotation's schema.
        guard let again = try? parsePort(p), again == p else { fatalError("parsePort(\(s)) = \(p), not canonical") }
        // (The network reads a host address 0.0.0.0 as none: the same binding.)
        let read = p.hasPrefix("0.0.0.0:") ? String(p.dropFirst(8)) : p
        guard let m = try? PortMapping(p), m.description == read else { fatalError("parsePort(\(s)) = \(p), which the network reads otherwise") }
        guard (try? portPattern.wholeMatch(in: p)) != nil else { fatalError("parsePort(\(s)) = \(p), not the schema's form") }
    }
    _ = try? parseUser(s, rootfs: "/fuzz/rootfs", host: fakeHost)

    // The byte-level path helpers against each other and Path.clean.
    let clean = Path.clean(s)
    if Path.hasDotDot(clean) || !Path.isAbsolute(clean) { fatalError("clean(\(s)) = \(clean)") }
    if "/" + Path.components(clean).joined(separator: "/") != clean { fatalError("components(\(clean))") }
    let (parent, name) = Path.split(clean)
    if clean != "/", (parent == "/" ? "/" : parent + "/") + name != clean || Path.hasSlash(name) {
        fatalError("split(\(clean)) = \(parent), \(name)")
    }
    if !Path.isWithin(clean, parent) || !Path.isWithin(clean, "/") { fatalError("isWithin(\(clean), \(parent))") }
    return 0
}

@main
struct Main {
    static func main() { runFuzzer(fuzz) }
}
