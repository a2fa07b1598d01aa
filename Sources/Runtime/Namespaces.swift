import Spec

// Namespace kinds: clone flags and the names of their files in /proc/PID/ns.

public enum NamespaceKind {
    public static let cloneFlags: [String: UInt64] = [
        "pid": 0x2000_0000, "network": 0x4000_0000, "mount": 0x0002_0000, "ipc": 0x0800_0000,
        "uts": 0x0400_0000, "user": 0x1000_0000, "cgroup": 0x0200_0000, "time": 0x0000_0080,
    ]
    public static let procName: [String: String] = [
        "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
        "cgroup": "cgroup", "time": "time",
    ]
    /// The order in which namespaces are joined by path: the user namespace
    /// first (it grants the rights to join the others), mount last.
    public static let joinOrder = ["user", "ipc", "uts", "network", "cgroup", "time", "mount"]
}
