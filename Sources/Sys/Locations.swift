// Where minicontainer keeps things on the host: built once, by the CLI, from
// its flags and environment, and passed down; no module below it picks a
// directory of its own. Rootless, they come from the XDG dirs: state under
// $XDG_RUNTIME_DIR/minicontainer, data under $XDG_DATA_HOME/minicontainer
// (~/.local/share/minicontainer), as podman keeps its own.

import Glibc
import Spec

public struct Locations: Equatable {
    /// OCI state, one directory per container (--root).
    public var root: String
    /// Run-mode containers (their bundles, overlay roots, logs, metadata);
    /// images later. $MINICONTAINER_DATA.
    public var data: String
    /// Address leases, published ports and the firewall's state. One per
    /// host, not per data dir: the bridge and its subnet are the host's.
    /// $MINICONTAINER_NETWORK_DIR.
    public var network: String
    /// The cgroup that run-mode containers' cgroups go under, as Docker's /docker.
    public var cgroupParent: String
    /// Rootless mode (--rootless, or auto when not root).
    public var rootless = false
    /// Why the state root cannot be used (rootless without a runtime dir):
    /// a command that needs it fails with this line.
    public var problem: String?
    /// Why the data dir cannot be used (rootless without HOME).
    public var dataProblem: String?

    public static let defaultRoot = "/run/minicontainer"
    public static let defaultData = "/var/lib/minicontainer"
    public static let defaultNetwork = "/var/lib/minicontainer/network"
    public static let defaultCgroupParent = "/minicontainer"

    public init(root: String = Locations.defaultRoot, data: String = Locations.defaultData,
                network: String = Locations.defaultNetwork, cgroupParent: String = Locations.defaultCgroupParent) {
        self.root = root
        self.data = data
        self.network = network
        self.cgroupParent = cgroupParent
    }

    /// From --root (nil: not given) and the environment (`env`, getenv by
    /// default); relative paths are made absolute, empty values ignored.
    /// Rootless (`rootless`), the defaults are the user's own XDG dirs; a
    /// user without XDG_RUNTIME_DIR (su, setpriv) gets /run/user/UID when
    /// that is theirs, else `problem` says why there is no default root.
    public static func from(root: String?, rootless: Bool = false, uid: UInt32 = 0,
                            env: (String) -> String? = Env.get) -> Locations {
        func pick(_ given: String?, _ fallback: String) -> String {
            guard let g = given, !g.isEmpty else { return fallback }
            return FS.absolute(g)
        }
        guard rootless else {
            return Locations(root: pick(root, defaultRoot), data: pick(env("MINICONTAINER_DATA"), defaultData),
                             network: pick(env("MINICONTAINER_NETWORK_DIR"), defaultNetwork))
        }
        let runtimeDir = env("XDG_RUNTIME_DIR").flatMap { Path.isAbsolute($0) ? $0 : nil } ?? "/run/user/\(uid)"
        var dataHome = env("XDG_DATA_HOME").flatMap { Path.isAbsolute($0) ? $0 : nil }
        if dataHome == nil, let home = env("HOME"), Path.isAbsolute(home) { dataHome = home + "/.local/share" }
        let data = pick(env("MINICONTAINER_DATA"), (dataHome ?? "/nonexistent") + "/minicontainer")
        var l = Locations(root: pick(root, runtimeDir + "/minicontainer"), data: data,
                          network: pick(env("MINICONTAINER_NETWORK_DIR"), data + "/network"),
                          cgroupParent: env("MINICONTAINER_CGROUP_PARENT").map { Path.clean("/" + $0) } ?? "")
        l.rootless = true
        if root == nil || root!.isEmpty, env("XDG_RUNTIME_DIR") == nil {
            var st = stat()
            if lstat(runtimeDir, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR || st.st_uid != uid {
                l.problem = "rootless: XDG_RUNTIME_DIR is not set and \(runtimeDir) is not a directory of yours: set XDG_RUNTIME_DIR or give --root"
            }
        }
        if dataHome == nil && env("MINICONTAINER_DATA") == nil {
            l.dataProblem = "rootless: neither XDG_DATA_HOME nor HOME is set: set one, or MINICONTAINER_DATA"
        }
        return l
    }
}
