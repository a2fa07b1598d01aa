import Spec

// `--ulimit NAME=SOFT[:HARD]` -> process.rlimits, with Docker's names. What the
// host allows (a hard limit above the runtime's own needs CAP_SYS_RESOURCE)
// is the runtime's to say at create: compilation does not look at the host.

/// Docker's ulimit names and the spec's types they stand for.
public let ulimitNames: [(String, String)] = [
    ("as", "RLIMIT_AS"), ("core", "RLIMIT_CORE"), ("cpu", "RLIMIT_CPU"), ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"), ("locks", "RLIMIT_LOCKS"), ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"), ("nice", "RLIMIT_NICE"), ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"), ("rss", "RLIMIT_RSS"), ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"), ("sigpending", "RLIMIT_SIGPENDING"), ("stack", "RLIMIT_STACK"),
]

/// One `--ulimit`: the hard limit defaults to the soft one; -1 is
/// unlimited (RLIM_INFINITY, UInt64.max in the spec), as Docker reads it.
public func parseUlimit(_ u: String) throws -> Rlimit {
    let usage = "use NAME=SOFT[:HARD], e.g. nofile=1024:4096"
    guard let eq = u.firstIndex(of: "=") else { throw CompileError("invalid --ulimit \(quoted(u)): \(usage)") }
    let name = String(u[..<eq])
    guard let type = ulimitNames.first(where: { $0.0 == name })?.1 else {
        throw CompileError("invalid --ulimit \(quoted(u)): unknown limit \(quoted(name)) (use "
            + ulimitNames.map(\.0).joined(separator: ", ") + ")")
    }
    let values = u[u.index(after: eq)...].split(separator: ":", omittingEmptySubsequences: false)
    guard values.count <= 2 else { throw CompileError("invalid --ulimit \(quoted(u)): \(usage)") }
    func value(_ s: Substring) throws -> UInt64 {
        if s == "-1" { return UInt64.max }
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = UInt64(s), n < UInt64.max else {
            throw CompileError("invalid --ulimit \(quoted(u)): \(quoted(String(s))) is not a limit (a number, or -1 for unlimited)")
        }
        return n
    }
    let soft = try value(values[0])
    let hard = values.count == 2 ? try value(values[1]) : soft
    guard soft <= hard else {
        throw CompileError("invalid --ulimit \(quoted(u)): the soft limit is above the hard limit")
    }
    return Rlimit(type: type, hard: hard, soft: soft)
}

/// Every `--ulimit`, in the order of each limit's first appearance; a
/// later one of the same name replaces it (Docker keeps one per name).
public func parseUlimits(_ list: [String]) throws -> [Rlimit] {
    var out: [Rlimit] = []
    for u in list {
        let r = try parseUlimit(u)
        if let i = out.firstIndex(where: { $0.type == r.type }) { out[i] = r } else { out.append(r) }
    }
    return out
}
