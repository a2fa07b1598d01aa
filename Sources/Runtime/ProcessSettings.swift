import Glibc
import Spec
import Sys

// runtime-spec 1.3's process settings, applied for real: process.scheduler,
// ioPriority, execCPUAffinity, and linux.memoryPolicy and personality. The
// init and an exec'd process both call applyProcessSettings in the
// container, after their move into its cgroup (a cgroup v1 cpu controller
// with realtime group scheduling admits SCHED_FIFO only into a cgroup with
// realtime runtime) and their namespaces, and before dropPrivileges: raising
// the policy or the priority needs CAP_SYS_NICE, IOPRIO_CLASS_RT
// CAP_SYS_ADMIN or CAP_SYS_NICE, and a seccomp filter may forbid the calls.
// Nothing after them undoes them: execve keeps all five (personality but
// for its setuid-cleared bits, which LINUX and LINUX32 do not have).
// The names were checked by Spec.problems (ProcessSettings.swift in Spec);
// what only the kernel can judge (a node or CPU it lacks, a privilege)
// fails here, naming the setting.

/// Applies, in this order: the final CPU affinity (`execFinalAffinity`:
/// exec'd processes only, runtime-spec says it is not the init's), before
/// the scheduler because SCHED_DEADLINE wants the affinity it will keep;
/// the memory policy; the I/O priority; the scheduler; the personality.
/// `stage` names the step for errors.
func applyProcessSettings(_ process: Process, linux: Linux?, execFinalAffinity: Bool, stage: inout String) throws {
    if execFinalAffinity, let text = process.execCPUAffinity?.final, !text.isEmpty {
        stage = "cpu affinity"
        try Scheduling.setAffinity(IDList.mask(try ids(text, "process.execCPUAffinity.final")),
                                   what: "final \(quoted(text))")
    }
    if let m = linux?.memoryPolicy {
        stage = "memory policy"
        guard let mode = m.modeWithFlags else { throw fail("linux.memoryPolicy: unknown mode or flag") }
        let nodes = try ids(m.nodes ?? "", "linux.memoryPolicy.nodes")
        let flags = (m.flags ?? []).isEmpty ? "" : " " + (m.flags ?? []).joined(separator: "|")
        try Scheduling.setMemoryPolicy(mode, nodes: nodes.isEmpty ? [] : IDList.mask(nodes),
                                       what: "\(m.mode)\(flags)" + (nodes.isEmpty ? "" : " nodes \(quoted(m.nodes ?? ""))"))
    }
    if let p = process.ioPriority {
        stage = "io priority"
        guard let v = p.value else { throw fail("process.ioPriority.class: unknown class \(quoted(p.class))") }
        try Scheduling.setIOPriority(v, what: "\(p.class) \(p.priority)")
    }
    if let s = process.scheduler {
        stage = "scheduler"
        guard let policy = s.policyNumber, let flags = s.flagBits else {
            throw fail("process.scheduler: unknown policy or flag")
        }
        var what = s.policy
        if let n = s.nice { what += " nice \(n)" }
        if let p = s.priority { what += " priority \(p)" }
        do {
            try Scheduling.setAttributes(policy: policy, flags: flags, nice: s.nice ?? 0, priority: UInt32(bitPattern: s.priority ?? 0),
                                         runtime: s.runtime ?? 0, deadline: s.deadline ?? 0, period: s.period ?? 0, what: what)
        } catch let e as SysError where e.errno == EPERM && (s.isRealtime || s.policy == "SCHED_DEADLINE") {
            // The two reasons the kernel gives the same errno for: say both.
            var hint = "needs CAP_SYS_NICE outside a user namespace"
            if s.policy == "SCHED_DEADLINE" {
                hint += ", and an affinity of every CPU"
            } else if linux?.resources?.cpu?.realtimeRuntime == nil {
                hint += "; with cgroup v1 realtime group scheduling, also linux.resources.cpu.realtimeRuntime"
            }
            throw Failure(.failed, "\(e.what): \(errnoText(e.errno)) (\(hint))")
        }
    }
    if let p = linux?.personality {
        stage = "personality"
        guard let v = p.value else { throw fail("linux.personality.domain: unknown domain \(quoted(p.domain))") }
        try Scheduling.setPersonality(v, what: p.domain)
    }
}

/// The numbers of a CPU or node list that Spec.problems accepted.
private func ids(_ text: String, _ path: String) throws -> [Int] {
    switch IDList.parse(text) {
    case .success(let ids): return ids
    case .failure(let e): throw fail("\(path): \(e.message)", .invalid)
    }
}

/// The exec'd process's `initial` CPU affinity, set on the runtime itself
/// before it clones the process (which inherits it, and keeps it through
/// its move into the container's cgroup, Linux 6.2+ keeping a requested
/// affinity across cpuset changes). Returns our affinity before, for
/// restoreAffinity once the child exists; nil when nothing was changed.
func setInitialExecAffinity(_ process: Process) throws -> [UInt64]? {
    guard let text = process.execCPUAffinity?.initial, !text.isEmpty else { return nil }
    let before = try Scheduling.affinity()
    try Scheduling.setAffinity(IDList.mask(try ids(text, "process.execCPUAffinity.initial")),
                               what: "initial \(quoted(text))")
    return before
}

/// Puts back what setInitialExecAffinity changed (the runtime waits for the
/// process on its own CPUs again); best effort.
func restoreAffinity(_ before: [UInt64]?) {
    if let b = before { try? Scheduling.setAffinity(b, what: "restore") }
}
