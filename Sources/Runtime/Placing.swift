import Cgroups
import CShim
import Glibc
import Privileges
import Sys

// Both halves of placing a new child in the container's cgroup the cheap way
// (Cgroups/Placement.swift), shared by create's init and exec's process.

/// clone3 into the placement's cgroup2 cgroup; where the kernel or the
/// cgroup refuses that (before 5.7, a threaded or invalid domain), a plain
/// clone3, and `bornPlaced` false. pid < 0 with errno on failure.
func clonePlaced(_ flags: UInt64, _ p: Placement) -> (pid: Int32, bornPlaced: Bool) {
    let pid = mc_clone3(flags, p.cgroup2, 0, nil)
    if pid < 0 && p.cgroup2 >= 0 && [EINVAL, ENOSYS, EOPNOTSUPP, EBUSY].contains(errno) {
        return (mc_clone3(flags, -1, 0, nil), false)
    }
    return (pid, p.cgroup2 >= 0)
}

/// The child's half: moves itself into the v1 cgroups, closes the
/// placement's fds and tells the runtime whether it managed.
func placeSelf(_ p: Placement, channel: Channel, ownSeccomp: Bool = false) throws {
    let placed = p.placeSelf() == 0
    p.close()
    try channel.send(.placed(placed, ownSeccomp: ownSeccomp))
}

/// The runtime's half: waits for the child's word and writes its pid into
/// cgroup.procs wherever it could not place itself. True when the child
/// has linux.seccomp's filter already (read from the cache).
@discardableResult
func awaitPlaced(_ pid: Int32, cgroup: CgroupManager, placement p: Placement, bornPlaced: Bool,
                 channel: Channel, what: String) throws -> Bool {
    guard let (m, _) = try channel.receiveMessage() else { throw fail("\(what) exited at once") }
    switch m {
    case .placed(let placed, let own):
        if !placed || (p.cgroup2 >= 0 && !bornPlaced) { try cgroup.add(pid: pid) }
        return own
    case .error(let f):
        throw f.failure
    default:
        throw fail("\(what) said \(m) before it was placed")
    }
}

extension Placement {
    /// The fds the child needs until it has placed itself.
    var fds: [Int32] { tasks + (cgroup2 >= 0 ? [cgroup2] : []) }
}

/// The runtime, before it clones a process into a container: the child
/// inherits the flag, so it is non-dumpable from birth.
func makeNonDumpable() {
    Kernel.setNonDumpable()
}

/// The child's first act: closes every fd above stdio but `--preserve-fds`
/// and its own.
func closeInheritedFds(preserveFds: Int, own: [Int32]) throws {
    var keep = Set((0..<Int32(3 + preserveFds)).map { $0 })
    for fd in own { keep.insert(fd) }
    try Privileges.closeFds(keep: keep)
}
