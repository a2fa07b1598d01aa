// Semantic checks that decoding cannot make: what a well-typed config.json
// can still get wrong. Each problem names its key path, as decoding errors do.

public struct SpecError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var message: String
    public init(_ path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

extension Spec {
    /// Checks the configuration. `exists` answers whether a host path exists;
    /// `bundle` is the absolute bundle directory, against which a relative
    /// `root.path` is resolved. Returns the problems in document order.
    public func problems(bundle: String, exists: (String) -> Bool) -> [SpecError] {
        var out: [SpecError] = []
        func bad(_ path: String, _ message: String) { out.append(SpecError(path, message)) }

        if ociVersion.isEmpty || !ociVersion.first!.isNumber || !ociVersion.contains(".") {
            bad("ociVersion", "\(quoted(ociVersion)) is not a version such as \(quoted(Spec.version))")
        } else if !ociVersion.hasPrefix("1.") {
            bad("ociVersion", "version \(quoted(ociVersion)) is not supported (we implement \(Spec.version))")
        }

        if let p = process {
            if (p.args ?? []).isEmpty { bad("process.args", "must name the program to run (it is empty)") }
            if !Path.isAbsolute(p.cwd) { bad("process.cwd", "must be an absolute path, not \(quoted(p.cwd))") }
            for (i, e) in (p.env ?? []).enumerated() where !e.contains("=") || e.hasPrefix("=") {
                bad("process.env[\(i)]", "\(quoted(e)) is not of the form KEY=VALUE")
            }
            var seen: [String] = []
            for (i, r) in (p.rlimits ?? []).enumerated() {
                if !Rlimit.knownTypes.contains(r.type) {
                    bad("process.rlimits[\(i)].type", "unknown rlimit \(quoted(r.type))")
                } else if seen.contains(r.type) {
                    bad("process.rlimits[\(i)].type", "rlimit \(r.type) is listed twice")
                }
                seen.append(r.type)
                if r.soft > r.hard { bad("process.rlimits[\(i)]", "soft limit \(r.soft) is above hard limit \(r.hard)") }
            }
            if let caps = p.capabilities {
                let sets: [(String, [String]?)] = [("bounding", caps.bounding), ("effective", caps.effective),
                    ("inheritable", caps.inheritable), ("permitted", caps.permitted), ("ambient", caps.ambient)]
                for (name, list) in sets {
                    for (i, c) in (list ?? []).enumerated() where !c.hasPrefix("CAP_") {
                        bad("process.capabilities.\(name)[\(i)]", "\(quoted(c)) is not a capability name (CAP_...)")
                    }
                }
            }
            if let gids = p.user.additionalGids, gids.count > Spec.groupsMax {
                bad("process.user.additionalGids", "\(gids.count) groups, more than the kernel allows (\(Spec.groupsMax))")
            }
            if let adj = p.oomScoreAdj, adj < -1000 || adj > 1000 {
                bad("process.oomScoreAdj", "\(adj) is outside -1000...1000")
            }
            out += p.settingsProblems(at: "process")
        }

        if let r = root {
            if r.path.isEmpty {
                bad("root.path", "must not be empty")
            } else {
                let full = Path.isAbsolute(r.path) ? r.path : bundle + "/" + r.path
                if !exists(full) { bad("root.path", "\(quoted(full)) does not exist") }
            }
        }

        if let h = hostname, h.utf8.count > 64 { bad("hostname", "longer than 64 bytes: \(quoted(h))") }

        for (i, m) in (mounts ?? []).enumerated() {
            let at = "mounts[\(i)].destination"
            if m.destination.isEmpty {
                bad(at, "must not be empty")
            } else if !Path.isAbsolute(m.destination) {
                bad(at, "must be an absolute path, not \(quoted(m.destination))")
            } else if Path.hasDotDot(m.destination) {
                bad(at, "must not contain \"..\": \(quoted(m.destination))")
            } else if m.destination.utf8.count > Spec.pathMax {
                bad(at, "is \(m.destination.utf8.count) bytes long, more than a path may be (\(Spec.pathMax)): \(quoted(m.destination))")
            }
        }
        out += mountIDMapProblems()  // MountIDMap.swift

        for (kind, list) in hooks?.all ?? [] {
            for (i, h) in list.enumerated() {
                if !Path.isAbsolute(h.path) { bad("hooks.\(kind)[\(i)].path", "must be an absolute path, not \(quoted(h.path))") }
                if let t = h.timeout, t <= 0 { bad("hooks.\(kind)[\(i)].timeout", "must be positive, not \(t)") }
            }
        }

        if let l = linux {
            var types: [String] = []
            for (i, ns) in (l.namespaces ?? []).enumerated() {
                if !Namespace.knownTypes.contains(ns.type) {
                    bad("linux.namespaces[\(i)].type", "unknown namespace \(quoted(ns.type)) (one of \(Namespace.knownTypes.joined(separator: ", ")))")
                } else if types.contains(ns.type) {
                    bad("linux.namespaces[\(i)].type", "namespace \(quoted(ns.type)) is listed twice")
                }
                types.append(ns.type)
                if let p = ns.path, !Path.isAbsolute(p) {
                    bad("linux.namespaces[\(i)].path", "must be an absolute path, not \(quoted(p))")
                }
            }
            let hasUserNS = types.contains("user")
            if !hasUserNS && !(l.uidMappings ?? []).isEmpty {
                bad("linux.uidMappings", "mappings need a user namespace in linux.namespaces")
            }
            if !hasUserNS && !(l.gidMappings ?? []).isEmpty {
                bad("linux.gidMappings", "mappings need a user namespace in linux.namespaces")
            }
            if hostname != nil && !types.contains("uts") && hostname != "" {
                bad("hostname", "setting a hostname needs a uts namespace in linux.namespaces")
            }
            if let prop = l.rootfsPropagation,
               !["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"].contains(prop) {
                bad("linux.rootfsPropagation", "unknown propagation \(quoted(prop))")
            }
            for (i, d) in (l.devices ?? []).enumerated() {
                if !["c", "b", "u", "p"].contains(d.type) { bad("linux.devices[\(i)].type", "must be c, b, u or p, not \(quoted(d.type))") }
                if !d.path.hasPrefix("/dev/") && !Path.isAbsolute(d.path) { bad("linux.devices[\(i)].path", "must be an absolute path") }
                if d.type != "p" && (d.major == nil || d.minor == nil) {
                    bad("linux.devices[\(i)]", "a \(d.type) device needs major and minor numbers")
                }
            }
            for (name, list) in [("maskedPaths", l.maskedPaths), ("readonlyPaths", l.readonlyPaths)] {
                for (i, p) in (list ?? []).enumerated() where !Path.isAbsolute(p) {
                    bad("linux.\(name)[\(i)]", "must be an absolute path, not \(quoted(p))")
                }
            }
            if let r = l.resources {
                if let m = r.memory {
                    for (k, v) in [("limit", m.limit), ("reservation", m.reservation), ("swap", m.swap)] {
                        if let v = v, v < -1 { bad("linux.resources.memory.\(k)", "\(v) is negative (use -1 for unlimited)") }
                    }
                    if let s = m.swappiness, s > 100 { bad("linux.resources.memory.swappiness", "\(s) is above 100") }
                }
                if let c = r.cpu {
                    if let p = c.period, p != 0 && (p < 1000 || p > 1_000_000) {
                        bad("linux.resources.cpu.period", "\(p) is outside 1000...1000000 microseconds")
                    }
                    if let q = c.quota, q != -1 && q < 1000 && q != 0 {
                        bad("linux.resources.cpu.quota", "\(q) is below 1000 microseconds (use -1 for unlimited)")
                    }
                }
                for (i, d) in (r.devices ?? []).enumerated() {
                    if let t = d.type, !["a", "c", "b"].contains(t) {
                        bad("linux.resources.devices[\(i)].type", "must be a, c or b, not \(quoted(t))")
                    }
                    if let a = d.access, a.isEmpty || !a.allSatisfy({ "rwm".contains($0) }) {
                        bad("linux.resources.devices[\(i)].access", "must be letters of rwm, not \(quoted(a))")
                    }
                }
            }
            if let s = l.seccomp {
                if !Seccomp.actions.contains(s.defaultAction) {
                    bad("linux.seccomp.defaultAction", "unknown action \(quoted(s.defaultAction))")
                }
                for (i, sc) in (s.syscalls ?? []).enumerated() {
                    if !Seccomp.actions.contains(sc.action) { bad("linux.seccomp.syscalls[\(i)].action", "unknown action \(quoted(sc.action))") }
                    if sc.names.isEmpty { bad("linux.seccomp.syscalls[\(i)].names", "must name at least one system call") }
                    for (j, a) in (sc.args ?? []).enumerated() where !Seccomp.operators.contains(a.op) {
                        bad("linux.seccomp.syscalls[\(i)].args[\(j)].op", "unknown operator \(quoted(a.op))")
                    }
                }
            }
            // Only what a namespace of the container's own isolates
            // (Sysctl.swift); a namespace joined by path is checked at create.
            for key in (l.sysctl ?? [:]).keys.sorted() {
                if let why = Sysctl.refusal(key, namespaces: types) { bad("linux.sysctl", why) }
            }
            // timeOffsets, netDevices, intelRdt (ValidateLinux13.swift).
            out += l.spec13Problems()
            // personality, memoryPolicy (ProcessSettings.swift).
            out += l.settingsProblems()
        }
        return out
    }
}

extension Spec {
    /// PATH_MAX less its NUL: the longest path a system call takes.
    public static let pathMax = 4095
    /// NGROUPS_MAX: the most supplementary groups setgroups(2) takes.
    public static let groupsMax = 65536
}

extension Hooks {
    /// The six kinds with their hooks, in lifecycle order.
    public var all: [(String, [Hook])] {
        [("prestart", prestart ?? []), ("createRuntime", createRuntime ?? []), ("createContainer", createContainer ?? []),
         ("startContainer", startContainer ?? []), ("poststart", poststart ?? []), ("poststop", poststop ?? [])]
    }
}

extension Rlimit {
    public static let knownTypes = ["RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
        "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"]

    /// The resource number for setrlimit, the index in `knownTypes`.
    public var resource: Int32? { Rlimit.knownTypes.firstIndex(of: type).map(Int32.init) }
}

extension Seccomp {
    public static let actions = ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"]
    public static let operators = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
        "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
}
