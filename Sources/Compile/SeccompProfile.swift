import Spec

// The default seccomp profile of a Docker-style `run`, for the capabilities
// the container is given. The table is data (Specs/seccomp/default.json,
// generated into DefaultSeccompTable.swift by scripts/gen-seccomp.py); here
// it is filtered by the capabilities and folded into few entries, so that
// config.json stays short and the same bytes for the same capabilities.

/// One entry of the table: an OCI syscall rule plus the capabilities it
/// depends on (all of `includesCaps` held, none of `excludesCaps`).
struct SeccompTableEntry {
    var names: [String]
    var action: String
    var errnoRet: UInt32?
    var args: [SyscallArg]
    var includesCaps: [String]
    var excludesCaps: [String]

    func applies(to caps: Set<String>) -> Bool {
        includesCaps.allSatisfy { caps.contains($0) } && !excludesCaps.contains { caps.contains($0) }
    }
}

struct SeccompTable {
    var defaultAction: String
    var defaultErrnoRet: UInt32?
    var architectures: [String]
    var entries: [SeccompTableEntry]
}

/// The profile `run` puts in linux.seccomp for a container holding
/// `capabilities` (its bounding set, CAP_* names).
public func defaultSeccompProfile(capabilities: [String]) -> Seccomp {
    seccompProfile(defaultSeccompTable, capabilities: capabilities)
}

/// `table` for `capabilities`: first one entry allowing, unconditionally,
/// every name some applicable entry allows without conditions (sorted); then
/// the other applicable entries, those with the same action, errno and
/// arguments merged into one (sorted names), in the order the table first
/// has them. A name allowed unconditionally is dropped from the later
/// entries: the allow wins (the table never means both).
func seccompProfile(_ table: SeccompTable, capabilities: [String]) -> Seccomp {
    let caps = Set(capabilities)
    let applicable = table.entries.filter { $0.applies(to: caps) }
    var allowed = Set<String>()
    for e in applicable where e.action == "SCMP_ACT_ALLOW" && e.args.isEmpty { allowed.formUnion(e.names) }

    struct Key: Equatable { var action: String; var errnoRet: UInt32?; var args: [SyscallArg] }
    var keys: [Key] = []
    var names: [[String]] = []
    for e in applicable where !(e.action == "SCMP_ACT_ALLOW" && e.args.isEmpty) {
        let k = Key(action: e.action, errnoRet: e.errnoRet, args: e.args)
        let rest = e.names.filter { !allowed.contains($0) }
        if rest.isEmpty { continue }
        if let i = keys.firstIndex(of: k) {
            names[i].append(contentsOf: rest.filter { !names[i].contains($0) })
        } else {
            keys.append(k)
            names.append(rest)
        }
    }

    var s = Seccomp(defaultAction: table.defaultAction)
    s.defaultErrnoRet = table.defaultErrnoRet
    s.architectures = table.architectures
    var rules: [Syscall] = []
    if !allowed.isEmpty { rules.append(Syscall(names: allowed.sorted(), action: "SCMP_ACT_ALLOW")) }
    for (k, n) in zip(keys, names) {
        var r = Syscall(names: n.sorted(), action: k.action)
        r.errnoRet = k.errnoRet
        if !k.args.isEmpty { r.args = k.args }
        rules.append(r)
    }
    s.syscalls = rules
    return s
}
