import CShim
import Glibc
import Spec
import Sys

// linux.timeOffsets. A time namespace's offsets can only be written while no
// process has entered it (time_namespaces(7)), and clone3(CLONE_NEWTIME)
// puts the child in its new one at birth: so for offsets the init is cloned
// in ours and makes its own, as runc does with unshare: unshare(CLONE_NEWTIME)
// (its children's namespace, not yet its own), the offsets into
// /proc/self/timens_offsets, then setns to /proc/self/ns/time_for_children,
// which enters it (and freezes the offsets). The init is the container's
// process, so it must be in the namespace itself, not only its children.

/// The offsets file opened early, before the init's ids change: the file is
/// the init's own, owned by the host's root while the init is non-dumpable,
/// and opening it later as the (mapped) root of a new user namespace would
/// be refused. The write is checked against the opener's credentials, which
/// have CAP_SYS_TIME over the time namespace the init makes later.
struct TimeOffsetsFile {
    let fd: Int32
    /// The lines timens_offsets takes, "monotonic SECS NANOSECS".
    let text: String

    /// Opens it for `offsets`; nil when there are none (no offsets: the
    /// time namespace, if any, comes from clone).
    static func open(for offsets: [String: TimeOffset]?) throws -> TimeOffsetsFile? {
        guard let text = timensOffsetsText(offsets) else { return nil }
        let fd = Glibc.open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open /proc/self/timens_offsets") }
        return TimeOffsetsFile(fd: fd, text: text)
    }

    /// Makes the time namespace, writes the offsets and enters it.
    func enter() throws {
        defer { close(fd) }
        guard mc_unshare(Kernel.CLONE_NEWTIME) == 0 else { throw SysError("unshare time namespace") }
        // One write: the kernel takes the offsets of a write all together.
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw SysError("write time offsets (\(text.split(separator: "\n").joined(separator: ", ")))")
        }
        let ns = Glibc.open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC)
        guard ns >= 0 else { throw SysError("open /proc/self/ns/time_for_children") }
        defer { close(ns) }
        guard mc_setns(ns, Kernel.CLONE_NEWTIME) == 0 else { throw SysError("enter the new time namespace") }
    }
}

/// The text for /proc/PID/timens_offsets: one line per clock, in
/// TimeOffset.clocks' order, absent seconds or nanoseconds being 0; nil for
/// no offsets. (Validation has refused unknown clocks and nanoseconds of a
/// second or more.)
func timensOffsetsText(_ offsets: [String: TimeOffset]?) -> String? {
    guard let offsets = offsets, !offsets.isEmpty else { return nil }
    var text = ""
    for clock in TimeOffset.clocks {
        guard let o = offsets[clock] else { continue }
        text += "\(clock) \(o.secs ?? 0) \(o.nanosecs ?? 0)\n"
    }
    return text.isEmpty ? nil : text
}
