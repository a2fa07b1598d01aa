// libFuzzer target: a container's state.json bytes -> Record, as every
// runtime command reads it (Store.load, through Record.decode), then what
// `state`, `list` and the hooks make of a record (with the status given, so
// nothing asks the kernel), and the record written back (Record.json) and
// read again must be the same record. Pure: no file is read or written.

import FuzzSupport
import JSON
import Spec
@testable import Runtime

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = bytes(data, size)
    let r: Record
    do { r = try Record.decode(bytes, file: "/run/minicontainer/c/state.json") } catch { _ = "\(error)"; return 0 }
    let store = Store(root: "/run/minicontainer-fuzz")
    for st in [ContainerStatus.created, .running, .stopped] {
        let s = store.state(r, status: st)
        _ = s.json(rootfs: r.rootfs, created: r.created, owner: r.owner).compact()
        _ = s.hookJSON()
    }
    checkRoundTrip(r, "record", write: { try $0.json().compact() },
                   read: { try Record.decode($0, file: "state.json") })
    return 0
}

@main
struct Main {
    static func main() { runFuzzer(fuzz) }
}
