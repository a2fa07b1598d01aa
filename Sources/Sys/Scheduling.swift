import CShim
import Glibc

// The calls that set how the kernel schedules a process, its I/O, where it
// runs and where its memory comes from, and its personality: what
// process.scheduler, ioPriority, execCPUAffinity and linux.memoryPolicy,
// personality ask for. Each acts on the calling process (thread: the runtime
// and the init are single-threaded) and throws a SysError naming the call.
// All go through CShim: sched_setattr, ioprio_set and set_mempolicy have no
// glibc wrapper, and glibc's sched_*affinity and personality are out of
// reach of Swift's Glibc module (_GNU_SOURCE, <sys/personality.h>).

public enum Scheduling {
    /// ioprio_set(2)'s `which` for one process (IOPRIO_WHO_PROCESS).
    @inlinable public static var IOPRIO_WHO_PROCESS: Int32 { 1 }

    /// sched_setattr(2) on ourselves, `what` naming the setting in errors.
    public static func setAttributes(policy: UInt32, flags: UInt64, nice: Int32, priority: UInt32,
                                     runtime: UInt64, deadline: UInt64, period: UInt64, what: String) throws {
        guard mc_sched_setattr(policy, flags, nice, priority, runtime, deadline, period) == 0 else {
            throw SysError("sched_setattr \(what)")
        }
    }

    /// ioprio_set(2) on ourselves alone (IOPRIO_WHO_PROCESS 0): children
    /// inherit it. Not runc's IOPRIO_WHO_PGRP: the init's process group is
    /// the caller's until the process makes its own, and it must not change
    /// the priority of the shell that ran us.
    public static func setIOPriority(_ value: Int32, what: String) throws {
        guard mc_ioprio_set(IOPRIO_WHO_PROCESS, 0, value) == 0 else { throw SysError("ioprio_set \(what)") }
    }

    /// set_mempolicy(2): `mode` with its flags OR-ed in, the nodes as a mask
    /// of 64-bit words (empty: none).
    public static func setMemoryPolicy(_ mode: Int32, nodes: [UInt64], what: String) throws {
        let rc = nodes.withUnsafeBufferPointer { b in
            mc_set_mempolicy(mode, b.isEmpty ? nil : b.baseAddress, UInt(b.count))
        }
        guard rc == 0 else { throw SysError("set_mempolicy \(what)") }
    }

    /// personality(2): the execution domain, kept across execve.
    public static func setPersonality(_ persona: UInt, what: String) throws {
        guard mc_personality(persona) != -1 else { throw SysError("personality \(what)") }
    }

    /// Our CPU affinity as a mask of 64-bit words (bit n: CPU n), for
    /// setAffinity to put back.
    public static func affinity() throws -> [UInt64] {
        // 1024 CPUs (glibc's cpu_set_t) first; larger when the kernel has more.
        var words = 16
        while true {
            var mask = [UInt64](repeating: 0, count: words)
            let rc = mask.withUnsafeMutableBufferPointer { mc_sched_getaffinity($0.baseAddress, UInt($0.count * 8)) }
            if rc == 0 { return mask }
            guard errno == EINVAL, words < 1 << 14 else { throw SysError("sched_getaffinity") }
            words *= 2
        }
    }

    /// sched_setaffinity(2) on ourselves. The kernel keeps only the CPUs our
    /// cpuset allows; none of them is EINVAL.
    public static func setAffinity(_ mask: [UInt64], what: String) throws {
        let rc = mask.withUnsafeBufferPointer { mc_sched_setaffinity($0.baseAddress, UInt($0.count * 8)) }
        guard rc == 0 else { throw SysError("sched_setaffinity \(what)") }
    }
}
