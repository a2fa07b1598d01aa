// The host's cgroup filesystems as /proc/self/mountinfo shows them: Cgroups
// manages the container's cgroups in them, and Rootfs shows them inside the
// container's /sys/fs/cgroup.

/// One cgroup filesystem mount: a v1 hierarchy ("cgroup", with the
/// controllers it carries) or the cgroup2 tree.
public struct CgroupHierarchy: Equatable {
    public var mountPoint: String
    /// A v1 hierarchy's controllers: `["memory"]`, `["cpu", "cpuacct"]`, or
    /// `["name=systemd"]` for a named hierarchy without controllers; none
    /// for cgroup2.
    public var controllers: [String]
    /// The mountinfo root field: which cgroup of the hierarchy is mounted at
    /// `mountPoint` ("/" unless the mount is a bind of a sub-cgroup).
    public var mountRoot: String
    /// "cgroup" (v1) or "cgroup2".
    public var fsType: String
    /// The superblock options, as mountinfo shows them ("rw,nosuid,cpu,cpuacct").
    public var superOptions: String

    /// `superOptions` defaults to "rw" and the controllers, as a plain v1
    /// mount shows them.
    public init(mountPoint: String, controllers: [String], mountRoot: String = "/", fsType: String = "cgroup",
                superOptions: String? = nil) {
        self.mountPoint = mountPoint
        self.controllers = controllers
        self.mountRoot = mountRoot
        self.fsType = fsType
        self.superOptions = superOptions ?? (["rw"] + controllers).joined(separator: ",")
    }

    /// The cgroup or cgroup2 mount on one mountinfo line; nil for any other filesystem.
    public init?(_ m: MountInfo) {
        switch m.fsType {
        case "cgroup2":
            self.init(mountPoint: m.mountPoint, controllers: [], mountRoot: m.root, fsType: m.fsType,
                      superOptions: m.superOptions)
        case "cgroup":
            let controllers = m.superOptions.split(separator: ",").map(String.init).filter(CgroupHierarchy.isControllerOption)
            self.init(mountPoint: m.mountPoint, controllers: controllers, mountRoot: m.root, fsType: m.fsType,
                      superOptions: m.superOptions)
        default:
            return nil
        }
    }

    /// Every cgroup and cgroup2 mount, in mountinfo's order.
    public static func all(in mounts: [MountInfo]) -> [CgroupHierarchy] { mounts.compactMap(CgroupHierarchy.init) }

    public var isUnified: Bool { fsType == "cgroup2" }

    public func has(_ controller: String) -> Bool { controllers.contains(controller) }

    /// mount(2) data for a fresh mount of the same hierarchy (from inside a
    /// cgroup namespace): a v1 hierarchy's superblock options less "rw",
    /// "ro" and release_agent= ("memory", "xattr,name=systemd"); "" for cgroup2.
    public var mountData: String {
        if isUnified { return "" }
        return superOptions.split(separator: ",")
            .filter { $0 != "rw" && $0 != "ro" && !$0.hasPrefix("release_agent=") }.joined(separator: ",")
    }

    /// The superblock options of a v1 mount that are not controllers.
    static let mountOptions: Set<String> = [
        "rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "nodiratime", "strictatime",
        "lazytime", "sync", "dirsync", "mand", "none", "all", "noprefix", "clone_children", "xattr",
        "cpuset_v2_mode", "favordynmods", "nsdelegate", "memory_recursiveprot", "memory_localevents",
        "memory_hugetlb_accounting", "pids_localevents",
    ]

    /// A v1 superblock option that names a controller ("memory") or a named
    /// hierarchy ("name=systemd"), not a mount option or a key=value setting.
    static func isControllerOption(_ o: String) -> Bool {
        if o.hasPrefix("name=") { return o.count > 5 }
        return !o.contains("=") && !mountOptions.contains(o)
    }
}
