import Glibc
import Sys

// Putting a new init into its cgroup without the cost the obvious way has.
//
// A pid written into a v1 cgroup.procs (or any cgroup2 cgroup.procs) moves a
// whole thread group, for which the kernel takes its global threadgroup
// rwsem for writing: that waits for an RCU grace period, 8-45 ms measured on
// this 6.18 VM, on every container. Two moves skip it:
//   - v1: the task moving itself by writing "0" to a `tasks` file (one
//     thread, and the caller; the kernel then needs no threadgroup lock).
//     The init is single-threaded, so its thread is its process. The files
//     are opened by the runtime, whose credentials the kernel checks, so the
//     init may already be in a user namespace when it writes.
//   - cgroup2: clone3(CLONE_INTO_CGROUP), which starts the child there.
// Where either is refused, the runtime falls back to cgroup.procs.

public struct Placement {
    /// Open for writing: each v1 hierarchy's `tasks` file of the container's cgroup.
    public var tasks: [Int32] = []
    /// The cgroup2 directory for clone3(CLONE_INTO_CGROUP), or -1.
    public var cgroup2: Int32 = -1

    public init() {}

    /// Whether the init is still in the runtime's memory cgroup until it
    /// places itself (v1 memory), so that pages it copies before then are
    /// not charged to the container.
    public var placesItself: Bool { !tasks.isEmpty }

    public func close() {
        for fd in tasks { _ = Glibc.close(fd) }
        if cgroup2 >= 0 { _ = Glibc.close(cgroup2) }
    }

    /// In the child: moves the calling thread into every v1 cgroup. Returns
    /// 0, or the errno of the first refusal (the runtime then writes the pid
    /// itself).
    public func placeSelf() -> Int32 {
        var zero: UInt8 = 48  // "0": the writer itself
        for fd in tasks where write(fd, &zero, 1) != 1 { return errno }
        return 0
    }
}

extension V1Manager {
    public func openPlacement() throws -> Placement {
        var p = Placement()
        do {
            for d in dirs {
                let f = d.path + "/tasks"
                let fd = open(f, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw SysError("open \(f)") }
                p.tasks.append(fd)
            }
            if let u = unified { p.cgroup2 = try u.openDirectory() }
        } catch {
            p.close()
            throw error
        }
        return p
    }
}

extension V2Manager {
    public func openPlacement() throws -> Placement {
        var p = Placement()
        p.cgroup2 = try openDirectory()
        return p
    }

    func openDirectory() throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        return fd
    }
}
