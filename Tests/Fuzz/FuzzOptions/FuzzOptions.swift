// libFuzzer target: the small parsers of mount options and run-flag values.
// The input, as text, goes to each of them: Rootfs.parseOptions (split at
// commas, as config.json's options list), the fsconfig and mount_setattr
// forms of what it parsed, and Compile's parseSize, parseCPUs, parseVolume,
// parsePort and parseUser (against a made-up Host). Each result is checked
// against what its documentation promises; a broken promise traps.

import Compile
import FuzzSupport
import Rootfs
import Spec

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
        if !m.destination.hasPrefix("/") || m.destination.split(separator: "/").contains("..") {
            fatalError("parseVolume(\(s)) = \(m)")
        }
    }
    if let p = try? parsePort(s) {
        // The canonical form parses to itself.
        guard let again = try? parsePort(p), again == p else { fatalError("parsePort(\(s)) = \(p), not canonical") }
    }
    _ = try? parseUser(s, rootfs: "/fuzz/rootfs", host: fakeHost)
    return 0
}

@main
struct Main {
    static func main() { runFuzzer(fuzz) }
}
