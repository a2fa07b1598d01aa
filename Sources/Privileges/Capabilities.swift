// The five capability sets, applied with libcap and prctl as runc's
// libcontainer/capabilities and crun's set_capabilities do.

import Glibc
import CLibcap
import CShim
import Spec
import Sys

extension Privileges {
    /// The capability names of <linux/capability.h>, by number (0...40 as of
    /// Linux 5.9). A name missing here is still looked up in libcap.
    static let capabilityNames = linuxCapabilities

    /// The number of a capability name as the spec writes it ("CAP_KILL"),
    /// from our table, else from libcap (which may know newer ones); nil
    /// when neither knows it. Only CAP_-prefixed upper-case names count:
    /// libcap alone would also take "kill" or "5".
    static func capabilityNumber(_ name: String) -> Int32? {
        guard name.hasPrefix("CAP_"), name == name.uppercased() else { return nil }
        if let i = capabilityNames.firstIndex(of: name) { return Int32(i) }
        return libcapNumber(name)
    }

    /// cap_from_name, for names our table lacks (and to cross-check it).
    static func libcapNumber(_ name: String) -> Int32? {
        var v: cap_value_t = -1
        guard cap_from_name(name, &v) == 0, v >= 0 else { return nil }
        return v
    }

    static func capabilityName(_ n: Int32) -> String {
        n >= 0 && Int(n) < capabilityNames.count ? capabilityNames[Int(n)] : "capability \(n)"
    }

    /// The highest capability this kernel knows, asked of the kernel itself:
    /// PR_CAPBSET_READ answers 0 or 1 for a capability it knows and EINVAL
    /// above its last, in any namespace and whatever /proc shows (the
    /// container's /proc may be the image's: a fake cap_last_cap that said 8
    /// would keep CAP_SYS_ADMIN and the rest in the bounding set). Eight
    /// prctl calls, where reading /proc/sys/kernel/cap_last_cap through a
    /// procfs of our own cost the runtime 1.3% of a run's CPU (that read
    /// stays as the fallback, where prctl is refused). Kept once known: the
    /// init, a fork of the runtime, has it already.
    nonisolated(unsafe) static var knownLastCapability: Int32 = -1

    static func lastCapability() -> Int32 {
        if knownLastCapability >= 0 { return knownLastCapability }
        var n: Int32
        if let probed = probeLastCapability() {
            n = probed
        } else if let b = try? ProcFS.read("sys/kernel/cap_last_cap"),
                  let v = Int32(String(decoding: b, as: UTF8.self).filter { !$0.isWhitespace }), v >= 0 {
            n = v
        } else {
            n = cap_max_bits() - 1
        }
        knownLastCapability = n
        return n
    }

    /// The last capability PR_CAPBSET_READ takes, by bisection over 0...255;
    /// nil when it refuses capability 0 (a seccomp filter, say).
    static func probeLastCapability() -> Int32? {
        func known(_ cap: Int32) -> Bool { mc_prctl(Kernel.PR_CAPBSET_READ, UInt(cap), 0, 0, 0) >= 0 }
        guard known(0) else { return nil }
        var lo: Int32 = 0, hi: Int32 = 255  // known(lo); nothing above hi is
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if known(mid) { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// The capabilities a spec asks for that this process cannot grant:
    /// known names the bounding set lacks (this machine's lacks
    /// CAP_SYS_RESOURCE). A container's processes inherit the bounding set
    /// of the runtime that clones them, in a new user namespace too, so no
    /// set of theirs can hold such a capability. runtime-spec 1.3: they are
    /// logged as a warning and left out, not a failure (runc and crun fail
    /// with "operation not permitted"). Unknown names stay, for
    /// applyCapabilities' own warning.
    public static func ungrantable(_ caps: Capabilities?) -> [String] {
        guard let caps = caps else { return [] }
        let last = lastCapability()
        var out: [String] = []
        for name in [caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient].flatMap({ $0 ?? [] }) {
            if let n = capabilityNumber(name), n <= last, !Kernel.boundingSetHas(n), !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// `caps` without the names in `names`, in every set.
    public static func removing(_ names: [String], from caps: Capabilities?) -> Capabilities? {
        guard var c = caps, !names.isEmpty else { return caps }
        func strip(_ l: [String]?) -> [String]? { l.map { $0.filter { !names.contains($0) } } }
        c.bounding = strip(c.bounding); c.effective = strip(c.effective); c.permitted = strip(c.permitted)
        c.inheritable = strip(c.inheritable); c.ambient = strip(c.ambient)
        return c
    }

    /// The process with the capabilities it cannot get left out, each named
    /// in one warning (on stderr and in --log) from the runtime's side.
    public static func grantable(_ process: Process, warn: (String) -> Void) -> Process {
        let denied = ungrantable(process.capabilities)
        guard !denied.isEmpty else { return process }
        warn("capabilities the runtime does not hold are left out: [\(denied.joined(separator: " "))] (not in its bounding set)")
        var p = process
        p.capabilities = removing(denied, from: p.capabilities)
        return p
    }

    /// The spec's capabilities as numbers, with the names that are unknown or
    /// above the kernel's last capability set aside for one warning.
    struct CapabilityPlan: Equatable {
        var bounding: [Int32] = []
        var effective: [Int32] = []
        var permitted: [Int32] = []
        var inheritable: [Int32] = []
        var ambient: [Int32] = []
        var unknown: [String] = []

        init(_ caps: Capabilities?, lastCap: Int32) {
            var unknown = Set<String>()
            func numbers(_ names: [String]?) -> [Int32] {
                var out: [Int32] = []
                for name in names ?? [] {
                    if let n = Privileges.capabilityNumber(name), n <= lastCap {
                        if !out.contains(n) { out.append(n) }
                    } else {
                        unknown.insert(name)
                    }
                }
                return out
            }
            bounding = numbers(caps?.bounding)
            effective = numbers(caps?.effective)
            permitted = numbers(caps?.permitted)
            inheritable = numbers(caps?.inheritable)
            ambient = numbers(caps?.ambient)
            self.unknown = unknown.sorted()
        }
    }

    /// The five capability sets. Bounding: drops (PR_CAPBSET_DROP) every
    /// capability up to the kernel's last one that is not in `bounding`.
    /// Effective, permitted, inheritable: cap_set_proc. Ambient: cleared,
    /// then each raised (PR_CAP_AMBIENT_RAISE). nil drops everything.
    ///
    /// Unknown capability names, and names this kernel lacks, are skipped
    /// with one warning (as runc does). An ambient capability the kernel
    /// refuses to raise (it must also be permitted and inheritable) is a
    /// warning too, as in runc 1.2 and crun.
    ///
    /// Call after setUser: after a uid change the kernel has cleared the
    /// effective set, so it first raises effective to the permitted set it
    /// kept (PR_SET_KEEPCAPS), which the bounding drop needs (CAP_SETPCAP).
    public static func applyCapabilities(_ caps: Capabilities?) throws {
        let last = lastCapability()
        let plan = CapabilityPlan(caps, lastCap: last)
        if !plan.unknown.isEmpty {
            Log.warn("ignoring unknown or unavailable capabilities: [\(plan.unknown.joined(separator: " "))]")
        }

        try raiseEffectiveToPermitted(last: last)

        // Bounding set. Only caps still in it are dropped, so nothing is
        // asked of the kernel (nor CAP_SETPCAP needed) when it already fits.
        for n in 0...last where !plan.bounding.contains(n) {
            if Kernel.boundingSetHas(n) {
                guard Kernel.dropFromBoundingSet(n) else {
                    throw SysError("drop \(capabilityName(n)) from the bounding set")
                }
            }
        }

        // Effective, permitted, inheritable.
        guard let c = cap_init() else { throw SysError("cap_init") }
        defer { cap_free(UnsafeMutableRawPointer(c)) }
        for (flag, list) in [(CAP_EFFECTIVE, plan.effective), (CAP_PERMITTED, plan.permitted),
                             (CAP_INHERITABLE, plan.inheritable)] where !list.isEmpty {
            let rc = list.withUnsafeBufferPointer { cap_set_flag(c, flag, Int32($0.count), $0.baseAddress, CAP_SET) }
            guard rc == 0 else { throw SysError("cap_set_flag") }
        }
        guard cap_set_proc(c) == 0 else {
            throw SysError("set capabilities (effective \(setText(plan.effective)), permitted \(setText(plan.permitted)), inheritable \(setText(plan.inheritable)))")
        }

        // Ambient. EINVAL from CLEAR_ALL means a kernel without ambient
        // capabilities (before 4.3): fine when none are asked for.
        if !Kernel.clearAmbientCapabilities() {
            let e = errno
            if e != EINVAL || !plan.ambient.isEmpty { throw SysError("clear the ambient capabilities", errno: e) }
        }
        for n in plan.ambient {
            if !Kernel.raiseAmbientCapability(n) {
                let e = errno
                let hint = e == EPERM ? " (an ambient capability must also be permitted and inheritable)" : ""
                // runc and crun skip these silently (their default spec asks
                // for ambient capabilities that are not inheritable).
                Log.debugLine("can't raise ambient capability \(capabilityName(n)): \(errnoText(e))\(hint)")
            }
        }
    }

    static func setText(_ list: [Int32]) -> String {
        list.isEmpty ? "[]" : "[" + list.map(capabilityName).joined(separator: " ") + "]"
    }

    /// Sets effective = permitted on the current process.
    static func raiseEffectiveToPermitted(last: Int32) throws {
        guard let c = cap_get_proc() else { throw SysError("cap_get_proc") }
        defer { cap_free(UnsafeMutableRawPointer(c)) }
        var permitted: [cap_value_t] = []
        for n in 0...last {
            var v = CAP_CLEAR
            if cap_get_flag(c, n, CAP_PERMITTED, &v) == 0, v == CAP_SET { permitted.append(n) }
        }
        guard cap_clear_flag(c, CAP_EFFECTIVE) == 0 else { throw SysError("cap_clear_flag") }
        if !permitted.isEmpty {
            let rc = permitted.withUnsafeBufferPointer { cap_set_flag(c, CAP_EFFECTIVE, Int32($0.count), $0.baseAddress, CAP_SET) }
            guard rc == 0 else { throw SysError("cap_set_flag") }
        }
        guard cap_set_proc(c) == 0 else { throw SysError("raise the effective capabilities to the permitted ones") }
    }
}
