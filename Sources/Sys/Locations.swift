// Where minicontainer keeps things on the host: built once, by the CLI, from
// its flags and environment, and passed down; no module below it picks a
// directory of its own. Rootless mode will build it from the XDG dirs.

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
    public static func from(root: String?, env: (String) -> String? = Env.get) -> Locations {
        func pick(_ given: String?, _ fallback: String) -> String {
            guard let g = given, !g.isEmpty else { return fallback }
            return FS.absolute(g)
        }
        return Locations(root: pick(root, defaultRoot), data: pick(env("MINICONTAINER_DATA"), defaultData),
                         network: pick(env("MINICONTAINER_NETWORK_DIR"), defaultNetwork))
    }
}
