// The names runtime-spec 1.3 gives the kernel's scheduling, I/O priority,
// CPU affinity, memory policy and personality settings, with the numbers
// the system calls take, and the checks a config must pass before create
// tries them (Spec.problems calls settingsProblems). Each table is public:
// `features` lists what we recognise from it.

extension Scheduler {
    /// The policies, in the kernel's numbering: SCHED_OTHER is 0, SCHED_DEADLINE
    /// 6 (<linux/sched.h>). SCHED_ISO is the spec's but no mainline kernel's:
    /// it is accepted and sched_setattr refuses it (EINVAL) at create.
    public static let policies = ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                                  "SCHED_IDLE", "SCHED_DEADLINE"]
    /// The flags, flag i being bit i of sched_attr.sched_flags (SCHED_FLAG_RESET_ON_FORK 0x01 ...
    /// SCHED_FLAG_UTIL_CLAMP_MAX 0x40).
    public static let flags = ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
                               "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
                               "SCHED_FLAG_UTIL_CLAMP_MAX"]

    /// sched_attr.sched_policy, nil for an unknown name.
    public var policyNumber: UInt32? { Scheduler.policies.firstIndex(of: policy).map(UInt32.init) }

    /// sched_attr.sched_flags, nil when a name is unknown.
    public var flagBits: UInt64? {
        var bits: UInt64 = 0
        for f in flags ?? [] {
            guard let i = Scheduler.flags.firstIndex(of: f) else { return nil }
            bits |= 1 << UInt64(i)
        }
        return bits
    }

    /// SCHED_FIFO and SCHED_RR: the policies with a static priority, 1...99.
    public var isRealtime: Bool { policy == "SCHED_FIFO" || policy == "SCHED_RR" }
}

extension IOPriority {
    /// The classes, class i being number i + 1 (<linux/ioprio.h>: RT 1, BE 2, IDLE 3).
    public static let classes = ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]
    /// The levels a class has (IOPRIO_NR_LEVELS).
    public static let levels: ClosedRange<Int32> = 0...7

    /// The value ioprio_set(2) takes: class << 13 | level; nil for an unknown class.
    public var value: Int32? {
        guard let i = IOPriority.classes.firstIndex(of: self.class) else { return nil }
        return Int32(i + 1) << 13 | priority
    }
}

extension MemoryPolicy {
    /// The modes, in the kernel's numbering: MPOL_DEFAULT is 0 ...
    /// MPOL_WEIGHTED_INTERLEAVE 6 (<linux/mempolicy.h>).
    public static let modes = ["MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL",
                               "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"]
    /// The mode flags, as the kernel's bits: OR-ed into the mode.
    public static let flagBits: [(name: String, bit: Int32)] = [
        ("MPOL_F_NUMA_BALANCING", 1 << 13), ("MPOL_F_RELATIVE_NODES", 1 << 14), ("MPOL_F_STATIC_NODES", 1 << 15)]
    /// The flags' names.
    public static let flags = flagBits.map { $0.name }

    /// The modes that take no nodes, and those that need at least one.
    /// MPOL_PREFERRED takes either (none: allocate locally).
    static let withoutNodes = ["MPOL_DEFAULT", "MPOL_LOCAL"]
    static let needingNodes = ["MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"]

    /// set_mempolicy(2)'s `mode` argument, flags OR-ed in; nil when a name is unknown.
    public var modeWithFlags: Int32? {
        guard let m = MemoryPolicy.modes.firstIndex(of: mode) else { return nil }
        var v = Int32(m)
        for f in flags ?? [] {
            guard let b = MemoryPolicy.flagBits.first(where: { $0.name == f }) else { return nil }
            v |= b.bit
        }
        return v
    }
}

extension Personality {
    /// The domains, with personality(2)'s numbers (PER_LINUX 0, PER_LINUX32 8).
    public static let domainValues: [(name: String, value: UInt)] = [("LINUX", 0), ("LINUX32", 0x0008)]
    public static let domains = domainValues.map { $0.name }
    /// The flags we apply: none. The spec defines none ("currently no flag
    /// values are supported"); one asked for is refused rather than ignored.
    public static let flags: [String] = []

    /// personality(2)'s argument; nil for an unknown domain.
    public var value: UInt? { Personality.domainValues.first { $0.name == domain }?.value }
}

/// A list of CPU or NUMA node numbers as the kernel writes them: "0-3,7".
/// As runc reads them (configs.ToCPUSet): elements may have spaces around
/// them and empty elements are skipped; a range runs low to high.
public enum IDList {
    /// The largest number taken (runc's MaxCPU less one): a bound on the
    /// mask allocated for a bogus input, far above any kernel's NR_CPUS.
    public static let maxID = 65535

    /// The numbers, ascending and without repeats, or why the text is not such a list.
    /// An empty text (or only separators) is an empty list.
    public static func parse(_ text: String) -> Result<[Int], SpecError> {
        var seen = Set<Int>()
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            let e = element.trimmingSpaces
            if e.isEmpty { continue }
            let ends = e.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            var bounds: [Int] = []
            for end in ends {
                guard !end.isEmpty, end.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(end) else {
                    return .failure(SpecError("", "\(quoted(String(e))) in \(quoted(text)) is not a number or a range N-M"))
                }
                guard n <= maxID else { return .failure(SpecError("", "\(n) in \(quoted(text)) is above \(maxID)")) }
                bounds.append(n)
            }
            let lo = bounds[0], hi = bounds.last!
            guard lo <= hi else { return .failure(SpecError("", "range \(quoted(String(e))) in \(quoted(text)) runs backwards")) }
            for n in lo...hi { seen.insert(n) }
        }
        return .success(seen.sorted())
    }

    /// The numbers as a bit mask in 64-bit words, as sched_setaffinity(2)
    /// and set_mempolicy(2) take it (bit n of word n / 64).
    public static func mask(_ ids: [Int]) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: (ids.max() ?? 0) / 64 + 1)
        for n in ids { words[n / 64] |= 1 << UInt64(n % 64) }
        return words
    }
}

extension Substring {
    /// Without leading and trailing spaces (only ' ': lists as runc reads them).
    public var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

extension Process {
    /// The checks of scheduler, ioPriority and execCPUAffinity, each
    /// problem's path under `at` ("process" in config.json).
    public func settingsProblems(at: String) -> [SpecError] {
        var out: [SpecError] = []
        func bad(_ path: String, _ message: String) { out.append(SpecError(at.isEmpty ? path : at + "." + path, message)) }

        if let s = scheduler {
            if s.policyNumber == nil {
                bad("scheduler.policy", "unknown policy \(quoted(s.policy)) (one of \(Scheduler.policies.joined(separator: ", ")))")
            }
            if let n = s.nice, n < -20 || n > 19 { bad("scheduler.nice", "\(n) is outside -20...19") }
            let priority = s.priority ?? 0
            if s.isRealtime && !(1...99).contains(priority) {
                bad("scheduler.priority", "\(s.policy) needs a priority in 1...99, not \(priority)")
            } else if !s.isRealtime && s.policyNumber != nil && priority != 0 {
                bad("scheduler.priority", "only SCHED_FIFO and SCHED_RR take a priority (\(s.policy) takes 0, not \(priority))")
            }
            for (i, f) in (s.flags ?? []).enumerated() where !Scheduler.flags.contains(f) {
                bad("scheduler.flags[\(i)]", "unknown flag \(quoted(f)) (one of \(Scheduler.flags.joined(separator: ", ")))")
            }
            let runtime = s.runtime ?? 0, deadline = s.deadline ?? 0, period = s.period ?? 0
            if s.policy == "SCHED_DEADLINE" {
                // The kernel's __checkparam_dl, less the period bounds of its sysctls.
                if runtime < 1024 {
                    bad("scheduler.runtime", "SCHED_DEADLINE needs a runtime of at least 1024 ns, not \(runtime)")
                } else if deadline < runtime || deadline >> 63 != 0 {
                    bad("scheduler.deadline", "must be at least the runtime (\(runtime) ns) and below 2^63, not \(deadline)")
                } else if period != 0 && (period < deadline || period >> 63 != 0) {
                    bad("scheduler.period", "must be 0 or at least the deadline (\(deadline) ns) and below 2^63, not \(period)")
                }
            } else if s.policyNumber != nil && (runtime != 0 || deadline != 0 || period != 0) {
                bad("scheduler", "only SCHED_DEADLINE takes runtime, deadline and period (\(s.policy) does not)")
            }
        }

        if let p = ioPriority {
            if !IOPriority.classes.contains(p.class) {
                bad("ioPriority.class", "unknown class \(quoted(p.class)) (one of \(IOPriority.classes.joined(separator: ", ")))")
            }
            if !IOPriority.levels.contains(p.priority) { bad("ioPriority.priority", "\(p.priority) is outside 0...7") }
        }

        if let a = execCPUAffinity {
            for (name, list) in [("initial", a.initial), ("final", a.final)] {
                guard let text = list, !text.isEmpty else { continue }
                switch IDList.parse(text) {
                case .failure(let e): bad("execCPUAffinity.\(name)", e.message)
                case .success(let ids) where ids.isEmpty: bad("execCPUAffinity.\(name)", "\(quoted(text)) names no CPU")
                case .success: break
                }
            }
        }
        return out
    }
}

extension Linux {
    /// The checks of memoryPolicy and personality, each problem's path under "linux".
    func settingsProblems() -> [SpecError] {
        var out: [SpecError] = []
        func bad(_ path: String, _ message: String) { out.append(SpecError("linux." + path, message)) }

        if let m = memoryPolicy {
            let known = MemoryPolicy.modes.contains(m.mode)
            if !known {
                bad("memoryPolicy.mode", "unknown mode \(quoted(m.mode)) (one of \(MemoryPolicy.modes.joined(separator: ", ")))")
            }
            var nodes: [Int]? = nil  // nil: not a list, already reported
            switch IDList.parse(m.nodes ?? "") {
            case .failure(let e): bad("memoryPolicy.nodes", e.message)
            case .success(let ids): nodes = ids
            }
            let flags = m.flags ?? []
            for (i, f) in flags.enumerated() where !MemoryPolicy.flags.contains(f) {
                bad("memoryPolicy.flags[\(i)]", "unknown flag \(quoted(f)) (one of \(MemoryPolicy.flags.joined(separator: ", ")))")
            }
            let nodeFlags = flags.filter { $0 == "MPOL_F_STATIC_NODES" || $0 == "MPOL_F_RELATIVE_NODES" }
            if MemoryPolicy.withoutNodes.contains(m.mode) {
                if nodes.map({ !$0.isEmpty }) ?? false { bad("memoryPolicy.nodes", "\(m.mode) takes no nodes, not \(quoted(m.nodes ?? ""))") }
                if let f = nodeFlags.first { bad("memoryPolicy.flags", "\(m.mode) takes no nodes, so no \(f)") }
            } else if MemoryPolicy.needingNodes.contains(m.mode) && nodes == [] {
                bad("memoryPolicy.nodes", "\(m.mode) needs at least one node")
            }
            if Set(nodeFlags).count == 2 {
                bad("memoryPolicy.flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
            }
            if known && flags.contains("MPOL_F_NUMA_BALANCING") && m.mode != "MPOL_BIND" && m.mode != "MPOL_PREFERRED_MANY" {
                bad("memoryPolicy.flags", "MPOL_F_NUMA_BALANCING needs MPOL_BIND or MPOL_PREFERRED_MANY, not \(m.mode)")
            }
        }

        if let p = personality {
            if p.value == nil {
                bad("personality.domain", "must be LINUX or LINUX32, not \(quoted(p.domain))")
            }
            for (i, f) in (p.flags ?? []).enumerated() {
                bad("personality.flags[\(i)]", "unsupported flag \(quoted(f)) (runtime-spec defines none)")
            }
        }
        return out
    }
}
