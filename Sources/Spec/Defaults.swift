// The default configuration `minicontainer spec` writes: a shell in a busybox-
// style rootfs under ./rootfs, with the usual kernel filesystems, a small
// capability set and fresh namespaces. It runs unmodified under runc and crun.

extension Spec {
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    public static let defaultCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    public static let defaultReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// The kernel filesystems every container gets.
    public static func defaultMounts(rootless: Bool = false) -> [Mount] {
        var m = [
            Mount(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            Mount(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            Mount(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]
        if rootless {
            // No gid=5 on devpts (that group is not mapped), /sys from the
            // host by bind (sysfs cannot be mounted without a network
            // namespace of our own), and no cgroup mount.
            m[2].options = m[2].options?.filter { $0 != "gid=5" }
            m[5] = Mount(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            m.remove(at: 6)
        }
        return m
    }

    /// The spec `minicontainer spec` writes. For a rootless spec, `uid` and
    /// `gid` are the caller's, mapped to root inside.
    public static func defaultSpec(rootless: Bool = false, uid: UInt32 = 0, gid: UInt32 = 0) -> Spec {
        let caps = Capabilities(bounding: defaultCapabilities, effective: defaultCapabilities,
                                permitted: defaultCapabilities, ambient: defaultCapabilities)
        let process = Process(terminal: true, user: User(uid: 0, gid: 0), args: ["sh"],
                              env: ["PATH=" + defaultPath, "TERM=xterm"], cwd: "/", capabilities: caps,
                              rlimits: [Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)], noNewPrivileges: true)
        var linux = Linux()
        var ns = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        if rootless {
            ns = ["pid", "ipc", "uts", "mount", "cgroup", "user"]
            linux.uidMappings = [IDMapping(containerID: 0, hostID: uid, size: 1)]
            linux.gidMappings = [IDMapping(containerID: 0, hostID: gid, size: 1)]
        } else {
            linux.resources = Resources()
            linux.resources!.devices = [DeviceCgroup(allow: false, access: "rwm")]
        }
        linux.namespaces = ns.map { Namespace(type: $0) }
        linux.maskedPaths = defaultMaskedPaths
        linux.readonlyPaths = defaultReadonlyPaths
        return Spec(process: process, root: Root(path: "rootfs", readonly: true), hostname: "minicontainer",
                    mounts: defaultMounts(rootless: rootless), linux: linux)
    }
}
