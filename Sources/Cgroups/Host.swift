import Glibc
import Spec
import Sys

// What cgroup filesystems this host has and where: read once from
// /proc/self/mountinfo (and the runtime's own cgroups from /proc/self/cgroup),
// or built by hand over a fake tree in tests.

/// v1: only v1 hierarchies. hybrid: v1 hierarchies plus a cgroup2 mount beside
/// them (usually /sys/fs/cgroup/unified). v2: cgroup2 only. (A hierarchy,
/// CgroupHierarchy, is Sys's: Rootfs reads the same mounts.)
public enum CgroupMode: String, Equatable { case v1, hybrid, v2 }

public struct CgroupHost: Equatable {
    public var mode: CgroupMode
    /// v1 hierarchies, one per distinct controller set (empty on v2).
    public var hierarchies: [CgroupHierarchy]
    /// The cgroup2 mount point, if any (pure v2: "/sys/fs/cgroup"; hybrid:
    /// usually "/sys/fs/cgroup/unified").
    public var unified: String?
    public var unifiedMountRoot: String
    /// The runtime's own cgroup per controller, from /proc/self/cgroup
    /// ("memory" -> "/user.slice", "name=systemd" -> ..., "" for cgroup2).
    /// Relative cgroupsPaths resolve against these.
    public var selfCgroups: [String: String]
    /// Every cgroup and cgroup2 mount mountinfo showed, in its order: what
    /// the init's /sys/fs/cgroup is made from (Rootfs), so that the init,
    /// born with a copy of our mounts, need not read mountinfo again.
    public var mounts: [CgroupHierarchy] = []

    /// `mode` defaults to what the mounts say: cgroup2 alone is v2, cgroup2
    /// beside v1 hierarchies is hybrid, v1 hierarchies alone are v1.
    public init(mode: CgroupMode? = nil, hierarchies: [CgroupHierarchy] = [], unified: String? = nil,
                unifiedMountRoot: String = "/", selfCgroups: [String: String] = [:]) {
        self.hierarchies = hierarchies
        self.unified = unified
        self.unifiedMountRoot = unifiedMountRoot
        self.selfCgroups = selfCgroups
        if let mode = mode {
            self.mode = mode
        } else if unified != nil {
            self.mode = hierarchies.isEmpty ? .v2 : .hybrid
        } else {
            self.mode = .v1
        }
    }

    /// The v1 hierarchy carrying `controller` (or the named hierarchy, e.g.
    /// "name=systemd").
    public func hierarchy(_ controller: String) -> CgroupHierarchy? {
        hierarchies.first { $0.has(controller) }
    }

    /// The host as /proc/self/mountinfo and /proc/self/cgroup show it, read
    /// once per process (`run` creates and deletes in one).
    public static func detect() throws -> CgroupHost {
        if let h = detected { return h }
        let h = try detect(mountinfo: "/proc/self/mountinfo", selfCgroup: "/proc/self/cgroup")
        detected = h
        return h
    }
    private static var detected: CgroupHost?

    public static func detect(mountinfo: String, selfCgroup: String = "/proc/self/cgroup") throws -> CgroupHost {
        let mounts = MountInfo.parse(try FS.readBytes(mountinfo))
        let own = (try? FS.readString(selfCgroup)) ?? ""
        guard let host = parse(mounts, selfCgroup: own) else {
            throw SysError("no cgroup filesystem mounted (read \(mountinfo))", errno: ENOENT)
        }
        return host
    }

    /// The host described by a mountinfo text and a /proc/self/cgroup text;
    /// nil when no cgroup filesystem is mounted.
    public static func parse(mountinfo: String, selfCgroup: String = "") -> CgroupHost? {
        parse(MountInfo.parse(Array(mountinfo.utf8)), selfCgroup: selfCgroup)
    }

    static func parse(_ mounts: [MountInfo], selfCgroup: String) -> CgroupHost? {
        var v1: [CgroupHierarchy] = []
        var v2: [(point: String, root: String)] = []
        let all = CgroupHierarchy.all(in: mounts)
        for h in all {
            if h.isUnified {
                v2.append((h.mountPoint, h.mountRoot))
            } else {
                guard !h.controllers.isEmpty else { continue }
                if let i = v1.firstIndex(where: { Set($0.controllers) == Set(h.controllers) }) {
                    // The same hierarchy mounted twice: keep the one under
                    // /sys/fs/cgroup, else the first.
                    if !under(v1[i].mountPoint, "/sys/fs/cgroup") && under(h.mountPoint, "/sys/fs/cgroup") { v1[i] = h }
                } else {
                    v1.append(h)
                }
            }
        }
        let unified = v2.first { $0.point == "/sys/fs/cgroup" }
            ?? v2.first { $0.point == "/sys/fs/cgroup/unified" } ?? v2.first
        if v1.isEmpty && unified == nil { return nil }
        // As runc: cgroup2 at /sys/fs/cgroup itself means a pure v2 host,
        // whatever stray v1 mounts exist elsewhere.
        if unified?.point == "/sys/fs/cgroup" { v1 = [] }
        var host = CgroupHost(hierarchies: v1, unified: unified?.point, unifiedMountRoot: unified?.root ?? "/",
                              selfCgroups: parseSelfCgroup(selfCgroup))
        host.mounts = all
        return host
    }

    /// "4:memory:/a\n2:cpu,cpuacct:/b\n1:name=systemd:/c\n0::/d" ->
    /// ["memory": "/a", "cpu": "/b", "cpuacct": "/b", "name=systemd": "/c", "": "/d"].
    public static func parseSelfCgroup(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            let path = String(f[2])
            if f[1].isEmpty {
                out[""] = path
            } else {
                for c in f[1].split(separator: ",") { out[String(c)] = path }
            }
        }
        return out
    }
}

/// Whether `path` is `dir` or lies below it (component-wise).
func under(_ path: String, _ dir: String) -> Bool {
    Path.isWithin(path, dir)
}
