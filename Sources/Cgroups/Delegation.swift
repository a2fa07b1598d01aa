import Glibc
import Spec
import Sys

// Rootless cgroups: an unprivileged user has only the cgroups delegated to
// them. On cgroup2 that is a subtree they own (systemd's user@UID.service,
// or one chown'd to them); on v1, a directory per hierarchy chown'd to
// them, as runc's rootless tests delegate without systemd. The container's
// cgroup is made in each hierarchy where that is so; the others are left
// out, and a limit that needs one of them is refused, never dropped.

/// Whether `path` (a cgroup directory, made or to be made, under
/// `mountPoint`) is delegated to us: its deepest existing directory below
/// the mount point is writable by us, with its cgroup.procs (a directory we
/// may make children in but not move processes into is no delegation).
func isDelegated(_ path: String, mountPoint: String) -> Bool {
    var p = path
    while p.utf8.count > mountPoint.utf8.count {
        var st = stat()
        if lstat(p, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { return false }
            return access(p, W_OK | X_OK) == 0 && access(p + "/cgroup.procs", W_OK) == 0
        }
        guard Path.hasSlash(p) else { return false }
        p = Path.split(p).parent
    }
    // The mount point itself (the root cgroup) is never delegated.
    return false
}

/// The part of `m` delegated to us: the v1 hierarchies (and the unified
/// part) whose directory we may make and move processes into. A manager of
/// no directories does nothing (the container then has no cgroup of its own).
public func delegatedPart(of m: CgroupManager) -> CgroupManager {
    if let v1 = m as? V1Manager {
        let dirs = v1.dirs.filter { isDelegated($0.path, mountPoint: $0.hierarchy.mountPoint) }
        let unified = v1.unified.flatMap { isDelegated($0.path, mountPoint: $0.mountPoint) ? $0 : nil }
        var out = V1Manager(dirs: dirs, unified: unified)
        out.freezeTimeout = v1.freezeTimeout
        return out
    }
    if let v2 = m as? V2Manager, isDelegated(v2.path, mountPoint: v2.mountPoint) { return v2 }
    return V1Manager(dirs: [])
}

/// The controllers `r` needs, each with the spec field that needs it, in
/// v1's names (cgroup2: io for blkio); device rules are not among them
/// (rootless, the user namespace already forbids making devices, and runc
/// too leaves the rules out), nor unified keys (checked where applied).
public func controllersNeeded(_ r: Resources?, v2: Bool) -> [(controller: String, field: String)] {
    guard let r = r else { return [] }
    var out: [(String, String)] = []
    if let p = r.pids, p.limit != 0 { out.append(("pids", "pids")) }
    if let m = r.memory {
        let wants = (m.limit ?? 0) != 0 || (m.swap ?? 0) != 0 || (m.reservation ?? 0) != 0 || (m.kernel ?? 0) != 0
            || (m.kernelTCP ?? 0) != 0 || m.swappiness != nil || m.disableOOMKiller == true
        if wants { out.append(("memory", "memory")) }
    }
    if let c = r.cpu {
        if (c.shares ?? 0) != 0 || (c.quota ?? 0) != 0 || (c.period ?? 0) != 0 || c.burst != nil
            || (c.realtimePeriod ?? 0) != 0 || (c.realtimeRuntime ?? 0) != 0 || (c.idle ?? 0) != 0 {
            out.append(("cpu", "cpu"))
        }
        if !(c.cpus ?? "").isEmpty || !(c.mems ?? "").isEmpty { out.append(("cpuset", "cpu.cpus/mems")) }
    }
    if let b = r.blockIO, b != BlockIO() { out.append((v2 ? "io" : "blkio", "blockIO")) }
    if let n = r.network {
        if n.classID != nil { out.append(("net_cls", "network.classID")) }
        if !(n.priorities ?? []).isEmpty { out.append(("net_prio", "network.priorities")) }
    }
    if !(r.hugepageLimits ?? []).isEmpty { out.append(("hugetlb", "hugepageLimits")) }
    return out
}

/// Rootless: refuses resources `m` (the delegated part) cannot hold, with
/// one line naming the limit and the cgroup that would have to be
/// delegated. `wanted` is the full manager, for the directory to name.
public func checkDelegated(_ r: Resources?, delegated m: CgroupManager, wanted: CgroupManager) throws {
    let isV2 = m is V2Manager || wanted is V2Manager
    let have = m.pathsByController
    for (c, field) in controllersNeeded(r, v2: isV2) {
        let ok = isV2 ? have[""] != nil : have[c] != nil
        guard !ok else { continue }
        let dir = isV2 ? wanted.pathsByController[""] : wanted.pathsByController[c]
        throw Failure(.invalid, "linux.resources.\(field): rootless, and no \(c) cgroup is delegated to you"
                      + (dir.map { " (\($0) is not yours to make)" } ?? "")
                      + ": delegate one (README, \"Rootless\") or leave the limit out")
    }
}
