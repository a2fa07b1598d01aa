// The spec's seccomp profile as a libseccomp filter, built the way runc's
// libcontainer/seccomp/seccomp_linux.go does: a pure plan first (names ->
// numbers, testable without loading anything), then the libseccomp calls.

import Glibc
import CSeccomp
import CShim
import Spec
import Sys

extension Privileges {
    /// One condition of a rule, as struct scmp_arg_cmp wants it.
    struct SeccompArg: Equatable {
        var index: UInt32
        var op: UInt32          // enum scmp_compare
        var datumA: UInt64
        var datumB: UInt64
    }

    /// One seccomp_rule_add_array call.
    struct SeccompRule: Equatable {
        var syscall: String
        var action: UInt32
        var args: [SeccompArg]
    }

    /// Filter flags of the spec and the libseccomp attribute each sets.
    enum SeccompFlag: String, CaseIterable {
        case tsync = "SECCOMP_FILTER_FLAG_TSYNC"
        case log = "SECCOMP_FILTER_FLAG_LOG"
        case specAllow = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
        case waitKillableRecv = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    }

    struct SeccompPlan: Equatable {
        var defaultAction: UInt32
        /// libseccomp architecture names ("x86_64"), for seccomp_arch_resolve_name.
        var architectures: [String]
        var flags: [SeccompFlag]
        var rules: [SeccompRule]

        init(_ s: Seccomp) throws {
            defaultAction = try Privileges.seccompAction(s.defaultAction, errnoRet: s.defaultErrnoRet)
            architectures = try (s.architectures ?? []).map { name in
                guard let a = Privileges.seccompArchitecture(name) else {
                    throw SysError("seccomp: unknown architecture \"\(name)\"", errno: EINVAL)
                }
                return a
            }
            flags = try Privileges.seccompFlags(s)
            rules = []
            for (i, call) in (s.syscalls ?? []).enumerated() {
                let action = try Privileges.seccompAction(call.action, errnoRet: call.errnoRet)
                // A rule with the default action is redundant, and libseccomp
                // refuses it: skip it, as runc does.
                if action == defaultAction { continue }
                var args: [SeccompArg] = []
                var perIndex = [Int](repeating: 0, count: 6)
                for a in call.args ?? [] {
                    guard a.index < 6 else {
                        throw SysError("seccomp: syscalls[\(i)]: argument index \(a.index) is above 5", errno: EINVAL)
                    }
                    guard let op = Privileges.seccompOperator(a.op) else {
                        throw SysError("seccomp: syscalls[\(i)]: unknown operator \"\(a.op)\"", errno: EINVAL)
                    }
                    // For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo
                    // the value, which is libseccomp's datum_a/datum_b order.
                    args.append(SeccompArg(index: UInt32(a.index), op: op, datumA: a.value, datumB: a.valueTwo ?? 0))
                    perIndex[Int(a.index)] += 1
                }
                for name in call.names where !name.isEmpty {
                    if perIndex.contains(where: { $0 > 1 }) {
                        // Two conditions on one argument: libseccomp cannot
                        // AND them, so each becomes its own rule (runc too).
                        for a in args { rules.append(SeccompRule(syscall: name, action: action, args: [a])) }
                    } else {
                        rules.append(SeccompRule(syscall: name, action: action, args: args))
                    }
                }
            }
        }
    }

    /// The spec's filter flags.
    static func seccompFlags(_ s: Seccomp) throws -> [SeccompFlag] {
        try (s.flags ?? []).map { name in
            guard let f = SeccompFlag(rawValue: name) else {
                throw SysError("seccomp: unknown filter flag \"\(name)\"", errno: EINVAL)
            }
            return f
        }
    }

    /// The libseccomp action for a spec action name. errnoRet applies to
    /// SCMP_ACT_ERRNO and SCMP_ACT_TRACE (default EPERM for both, as runc).
    static func seccompAction(_ name: String, errnoRet: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return SCMP_ACT_KILL_THREAD
        case "SCMP_ACT_KILL_PROCESS": return SCMP_ACT_KILL_PROCESS
        case "SCMP_ACT_TRAP": return SCMP_ACT_TRAP
        case "SCMP_ACT_ERRNO": return mc_scmp_act_errno(UInt16(truncatingIfNeeded: errnoRet ?? UInt32(EPERM)))
        case "SCMP_ACT_TRACE": return mc_scmp_act_trace(UInt16(truncatingIfNeeded: errnoRet ?? UInt32(EPERM)))
        case "SCMP_ACT_ALLOW": return SCMP_ACT_ALLOW
        case "SCMP_ACT_LOG": return SCMP_ACT_LOG
        case "SCMP_ACT_NOTIFY":
            throw SysError("seccomp action SCMP_ACT_NOTIFY needs a seccomp notify listener (linux.seccomp.listenerPath), which minicontainer does not support", errno: EOPNOTSUPP)
        default:
            throw SysError("seccomp: unknown action \"\(name)\"", errno: EINVAL)
        }
    }

    /// enum scmp_compare for a spec operator name.
    static func seccompOperator(_ name: String) -> UInt32? {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE.rawValue
        case "SCMP_CMP_LT": return SCMP_CMP_LT.rawValue
        case "SCMP_CMP_LE": return SCMP_CMP_LE.rawValue
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ.rawValue
        case "SCMP_CMP_GE": return SCMP_CMP_GE.rawValue
        case "SCMP_CMP_GT": return SCMP_CMP_GT.rawValue
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ.rawValue
        default: return nil
        }
    }

    /// The architectures runtime-spec names (SCMP_ARCH_*), with libseccomp's
    /// name for each, which is the suffix in lower case.
    public static let seccompArchitectures = ["X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32",
        "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC", "PARISC64",
        "RISCV64", "LOONGARCH64", "M68K", "SH", "SHEB"]

    static func seccompArchitecture(_ name: String) -> String? {
        guard name.hasPrefix("SCMP_ARCH_") else { return nil }
        let suffix = String(name.dropFirst("SCMP_ARCH_".count))
        return seccompArchitectures.contains(suffix) ? suffix.lowercased() : nil
    }

    /// libseccomp's token (AUDIT_ARCH_*) for a libseccomp architecture name,
    /// 0 when this libseccomp does not know it.
    static func seccompArchitectureToken(_ libseccompName: String) -> UInt32 {
        seccomp_arch_resolve_name(libseccompName)
    }

    /// The filter flags linux.seccomp.flags may name (features' knownFlags).
    public static var seccompKnownFlags: [String] { SeccompFlag.allCases.map(\.rawValue) }

    /// The flags this libseccomp can set (features' supportedFlags): those
    /// with an attribute, at the API level that attribute needs (TSYNC 2,
    /// LOG 3, SPEC_ALLOW 4; seccomp_api_get asks the kernel too).
    public static func seccompSupportedFlags() -> [String] {
        let level = seccomp_api_get()
        return SeccompFlag.allCases.filter { f in
            guard seccompAttribute(f) != nil else { return false }
            switch f {
            case .tsync: return level >= 2
            case .log: return level >= 3
            case .specAllow: return level >= 4
            case .waitKillableRecv: return false
            }
        }.map(\.rawValue)
    }

    static func seccompAttribute(_ f: SeccompFlag) -> scmp_filter_attr? {
        switch f {
        case .tsync: return SCMP_FLTATR_CTL_TSYNC
        case .log: return SCMP_FLTATR_CTL_LOG
        case .specAllow: return SCMP_FLTATR_CTL_SSB
        case .waitKillableRecv: return nil  // libseccomp 2.6's SCMP_FLTATR_CTL_WAITKILL; only useful with notify
        }
    }

    /// A libseccomp filter context for `plan`, with every rule added, for
    /// `body` (compileSeccomp exports it); released afterwards. Unknown
    /// syscall names are skipped (libseccomp returns __NR_SCMP_ERROR), as
    /// runc does. libseccomp is told not to set no_new_privs itself.
    static func withSeccompContext<T>(_ plan: SeccompPlan, _ seccomp: Seccomp, _ body: (scmp_filter_ctx) throws -> T) throws -> T {
        guard let ctx = seccomp_init(plan.defaultAction) else {
            throw SysError("seccomp_init with default action \(seccomp.defaultAction)", errno: EINVAL)
        }
        defer { seccomp_release(ctx) }

        func attr(_ a: scmp_filter_attr, _ v: UInt32, _ what: @autoclosure () -> String) throws {
            let rc = seccomp_attr_set(ctx, a, v)
            if rc != 0 { throw SysError(what(), errno: -rc) }
        }
        // no_new_privs is the spec's own setting (setNoNewPrivileges).
        try attr(SCMP_FLTATR_CTL_NNP, 0, "seccomp: clear the no_new_privs attribute")
        // The kernel's errno instead of ECANCELED (libseccomp >= 2.5).
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)

        for arch in plan.architectures {
            let token = seccompArchitectureToken(arch)
            if token == 0 {
                Log.warn("seccomp: architecture \(arch) is not supported by this libseccomp, skipped")
                continue
            }
            let rc = seccomp_arch_add(ctx, token)
            if rc != 0 && rc != -EEXIST { throw SysError("seccomp: add architecture \(arch)", errno: -rc) }
        }
        for f in plan.flags {
            guard let a = seccompAttribute(f) else {
                throw SysError("seccomp flag \(f.rawValue) is not supported by this libseccomp", errno: EOPNOTSUPP)
            }
            try attr(a, 1, "seccomp flag \(f.rawValue)")
        }
        if plan.rules.count > 8 {
            // Binary tree of syscalls for long profiles; older libseccomp lacks it.
            _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        }

        var unknown: [String] = []
        for rule in plan.rules {
            let nr = seccomp_syscall_resolve_name(rule.syscall)
            if nr == __NR_SCMP_ERROR {
                if !unknown.contains(rule.syscall) { unknown.append(rule.syscall) }
                continue
            }
            let cmps = rule.args.map {
                scmp_arg_cmp(arg: $0.index, op: scmp_compare(rawValue: $0.op), datum_a: $0.datumA, datum_b: $0.datumB)
            }
            let rc = cmps.withUnsafeBufferPointer {
                seccomp_rule_add_array(ctx, rule.action, nr, UInt32($0.count), $0.baseAddress)
            }
            if rc != 0 { throw SysError("seccomp: add rule for \(rule.syscall)", errno: -rc) }
        }
        if !unknown.isEmpty {
            Log.debugLine("seccomp: unknown syscalls ignored: \(unknown.joined(separator: " "))")
        }
        return try body(ctx)
    }
}
