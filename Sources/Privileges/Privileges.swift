// Privileges: what the container's init and an exec'd process drop before
// execve, in the order runc's standard_init_linux.go and crun's linux.c use
// (Runtime/ProcessSetup.swift and the init make the calls):
//
//   setRlimits -> setOOMScoreAdj -> (chdir, lookPath) -> LSM exec labels
//   -> loadSeccompProgram (without no_new_privs) -> setUser -> applyCapabilities
//   -> setNoNewPrivileges -> loadSeccompProgram (with it) -> closeFds -> execve
//
// closeFds also runs first, as the cloned child's first act.
//
// Every failure is a SysError whose text says what was being done, with
// which value, and the errno ("setresuid to 65534: operation not permitted").

import Glibc
import CShim
import Spec
import Sys

public enum Privileges {
    // MARK: rlimits

    /// setrlimit for each (type names as in the spec, e.g. RLIMIT_NOFILE;
    /// UInt64.max is RLIM_INFINITY). Raising a hard limit above the current
    /// one needs CAP_SYS_RESOURCE, so call this while still root.
    public static func setRlimits(_ rlimits: [Rlimit]) throws {
        for r in rlimits {
            guard let res = rlimitResource(r.type) else {
                throw SysError("setrlimit: unknown rlimit type \"\(r.type)\"", errno: EINVAL)
            }
            var rl = rlimit(rlim_cur: rlimitValue(r.soft), rlim_max: rlimitValue(r.hard))
            guard setrlimit(res, &rl) == 0 else {
                let e = errno
                var now = rlimit()
                let nrOpen = r.type == "RLIMIT_NOFILE" ? (try? FS.readString("/proc/sys/fs/nr_open")).flatMap { UInt64($0.filter { $0.isNumber }) } : nil
                if e == EPERM, let n = nrOpen, r.hard > n {
                    throw SysError("setrlimit \(r.type) to \(rlimitText(r.soft))/\(rlimitText(r.hard)): above fs.nr_open \(n)", errno: e)
                }
                if e == EPERM, getrlimit(res, &now) == 0, rlimitValue(r.hard) > now.rlim_max {
                    // The common case: a hard limit above the runtime's own, without CAP_SYS_RESOURCE.
                    throw SysError("setrlimit \(r.type) to \(rlimitText(r.soft))/\(rlimitText(r.hard)): above the hard limit "
                        + "\(rlimitText(UInt64(now.rlim_max))) this runtime runs with (raising it needs CAP_SYS_RESOURCE)", errno: e)
                }
                throw SysError("setrlimit \(r.type) to \(rlimitText(r.soft))/\(rlimitText(r.hard))", errno: e)
            }
        }
    }

    /// The setrlimit resource for a spec type name, taken from glibc's own
    /// constants (so it is right on every architecture), nil when unknown.
    static func rlimitResource(_ type: String) -> __rlimit_resource_t? {
        func r(_ v: __rlimit_resource) -> __rlimit_resource_t { __rlimit_resource_t(v.rawValue) }
        switch type {
        case "RLIMIT_CPU": return r(RLIMIT_CPU)
        case "RLIMIT_FSIZE": return r(RLIMIT_FSIZE)
        case "RLIMIT_DATA": return r(RLIMIT_DATA)
        case "RLIMIT_STACK": return r(RLIMIT_STACK)
        case "RLIMIT_CORE": return r(RLIMIT_CORE)
        case "RLIMIT_RSS": return r(__RLIMIT_RSS)
        case "RLIMIT_NPROC": return r(__RLIMIT_NPROC)
        case "RLIMIT_NOFILE": return r(RLIMIT_NOFILE)
        case "RLIMIT_MEMLOCK": return r(__RLIMIT_MEMLOCK)
        case "RLIMIT_AS": return r(RLIMIT_AS)
        case "RLIMIT_LOCKS": return r(__RLIMIT_LOCKS)
        case "RLIMIT_SIGPENDING": return r(__RLIMIT_SIGPENDING)
        case "RLIMIT_MSGQUEUE": return r(__RLIMIT_MSGQUEUE)
        case "RLIMIT_NICE": return r(__RLIMIT_NICE)
        case "RLIMIT_RTPRIO": return r(__RLIMIT_RTPRIO)
        case "RLIMIT_RTTIME": return r(__RLIMIT_RTTIME)
        default: return nil
        }
    }

    /// The spec's value as rlim_t: rlim_t is 64 bits on Linux (glibc defines
    /// RLIM_INFINITY as (rlim_t)-1), so UInt64.max is RLIM_INFINITY.
    static func rlimitValue(_ v: UInt64) -> rlim_t { rlim_t(truncatingIfNeeded: v) }

    static func rlimitText(_ v: UInt64) -> String { v == UInt64.max ? "unlimited" : String(v) }

    // MARK: oom_score_adj

    /// Writes /proc/self/oom_score_adj, through a procfs of our own (ProcFS),
    /// not the container's /proc. Lowering it needs CAP_SYS_RESOURCE.
    public static func setOOMScoreAdj(_ value: Int) throws {
        let what = "set oom_score_adj to \(value)"
        do {
            try ProcFS.write("self/oom_score_adj", Array(String(value).utf8), what: what)
        } catch let e as SysError where e.errno == EACCES && e.what == what {
            throw SysError(what + " (lowering it needs CAP_SYS_RESOURCE)", errno: e.errno)
        }
    }

    // MARK: user

    /// setgroups(additionalGids), setresgid, setresuid, then umask if set.
    /// PR_SET_KEEPCAPS is on across the uid change, so the permitted set
    /// survives it for applyCapabilities (the kernel clears the effective set,
    /// which applyCapabilities raises again before it uses it).
    public static func setUser(_ user: User) throws {
        guard Kernel.keepCapabilitiesAcrossSetuid(true) else { throw SysError("prctl(PR_SET_KEEPCAPS)") }

        let gids = (user.additionalGids ?? []).map { gid_t($0) }
        // In a user namespace whose setgroups file says "deny" (rootless), the
        // call always fails with EPERM; with no groups asked for there is
        // nothing to do, so that is not an error (runc skips it too).
        // Always called, so that no file read decides whether the runtime's
        // own groups survive; /proc/self/setgroups only explains a failure.
        let rc = gids.withUnsafeBufferPointer { setgroups($0.count, $0.baseAddress) }
        if rc != 0 {
            let e = errno
            if !(e == EPERM && gids.isEmpty) {
                let denied = setgroupsDenied()
                throw SysError("setgroups to \(gids.count > 16 ? "\(gids.count) groups " : "")\(Quote.list(gids))" + (denied ? " (setgroups is denied in this user namespace)" : ""), errno: e)
            }
        }
        guard mc_setresgid(user.gid, user.gid, user.gid) == 0 else { throw SysError("setresgid to \(user.gid)") }
        guard mc_setresuid(user.uid, user.uid, user.uid) == 0 else { throw SysError("setresuid to \(user.uid)") }
        guard Kernel.keepCapabilitiesAcrossSetuid(false) else { throw SysError("prctl(PR_SET_KEEPCAPS)") }
        if let m = user.umask { umask(mode_t(m & 0o777)) }
    }

    static func setgroupsDenied() -> Bool {
        guard let b = try? ProcFS.read("self/setgroups") else { return false }
        return String(decoding: b, as: UTF8.self).hasPrefix("deny")
    }

    // MARK: no_new_privs

    public static func setNoNewPrivileges() throws {
        guard Kernel.setNoNewPrivileges() else { throw SysError("prctl(PR_SET_NO_NEW_PRIVS)") }
    }
}
