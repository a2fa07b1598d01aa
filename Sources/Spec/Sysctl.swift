// Which sysctls a container may set: only those a namespace of its own
// isolates. Any other is a file of the host kernel's (fs.lease-break-time,
// kernel.core_pattern: a host root shell on the next crash), whatever
// namespaces the container has. The list is runc's (libcontainer's
// validator), with the network sysctls that exist only in the initial network
// namespace named and refused explicitly.

public enum Sysctl {
    /// The ipc namespace's sysctls (ipc/ipc_sysctl.c, as runc allows them),
    /// beside fs.mqueue.*.
    public static let ipc: Set<String> = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]
    /// The uts namespace's.
    public static let uts: Set<String> = ["kernel.hostname", "kernel.domainname"]

    /// The net.* files of the initial network namespace only: on Linux 6.18
    /// they are missing from /proc/sys/net in any other (the difference
    /// between `find /proc/sys/net` outside and inside `unshare -n`, less the
    /// host's own interfaces). Writing one from a container's namespace
    /// fails; saying why is better than ENOENT.
    public static let globalNet: Set<String> = [
        "net.core.bpf_jit_enable", "net.core.bpf_jit_harden", "net.core.bpf_jit_kallsyms", "net.core.bpf_jit_limit",
        "net.core.busy_poll", "net.core.busy_read", "net.core.default_qdisc", "net.core.dev_weight",
        "net.core.dev_weight_rx_bias", "net.core.dev_weight_tx_bias", "net.core.devconf_inherit_init_net",
        "net.core.fb_tunnels_only_for_init_net", "net.core.flow_limit_cpu_bitmap", "net.core.flow_limit_table_len",
        "net.core.gro_normal_batch", "net.core.high_order_alloc_disable", "net.core.max_skb_frags",
        "net.core.mem_pcpu_rsv", "net.core.message_burst", "net.core.message_cost", "net.core.netdev_budget",
        "net.core.netdev_budget_usecs", "net.core.netdev_max_backlog", "net.core.netdev_rss_key",
        "net.core.netdev_tstamp_prequeue", "net.core.netdev_unregister_timeout_secs", "net.core.rps_sock_flow_entries",
        "net.core.skb_defer_max", "net.core.warnings",
        "net.ipv4.cipso_cache_bucket_size", "net.ipv4.cipso_cache_enable", "net.ipv4.cipso_rbm_optfmt",
        "net.ipv4.cipso_rbm_strictvalid", "net.ipv4.fib_sync_mem", "net.ipv4.inet_peer_maxttl",
        "net.ipv4.inet_peer_minttl", "net.ipv4.inet_peer_threshold", "net.ipv4.ipfrag_secret_interval",
        "net.ipv4.route.error_burst", "net.ipv4.route.error_cost", "net.ipv4.route.gc_elasticity",
        "net.ipv4.route.gc_interval", "net.ipv4.route.gc_min_interval", "net.ipv4.route.gc_min_interval_ms",
        "net.ipv4.route.gc_thresh", "net.ipv4.route.gc_timeout", "net.ipv4.route.max_size",
        "net.ipv4.route.redirect_load", "net.ipv4.route.redirect_number", "net.ipv4.route.redirect_silence",
        "net.ipv4.tcp_available_ulp", "net.ipv4.tcp_low_latency", "net.ipv4.tcp_max_orphans", "net.ipv4.tcp_mem",
        "net.ipv4.udp_mem",
        "net.ipv6.calipso_cache_bucket_size", "net.ipv6.calipso_cache_enable", "net.ipv6.ip6frag_secret_interval",
        "net.ipv6.mld_max_msf", "net.ipv6.mld_qrv",
        "net.netfilter.nf_log_all_netns", "net.nf_conntrack_max",
    ]
    /// Prefixes of the same: the neighbour tables' default parameters.
    public static let globalNetPrefixes = ["net.ipv4.neigh.default.", "net.ipv6.neigh.default."]

    /// The key's components. As sysctl(8) reads a key: the first separator
    /// decides; when it is `/`, the key is a path under /proc/sys and dots
    /// are part of names (`net/ipv4/conf/eth0.100/forwarding`); when it is
    /// `.`, dots separate and a `/` stands for a dot in a name
    /// (`net.ipv4.conf.eth0/100.forwarding`). Nil when the key is not a
    /// sysctl name: empty, an empty, `.` or `..` component, or a NUL.
    public static func components(_ key: String) -> [String]? {
        guard !key.isEmpty, !key.unicodeScalars.contains("\u{0}") else { return nil }
        // Over the scalars, not the Characters: a "/" or "." before a
        // combining mark is one Character with it, but still a separator
        // to the kernel's path walk.
        let slashFirst = key.unicodeScalars.first(where: { $0 == "/" || $0 == "." }) == "/"
        var parts: [String] = []
        var current = String.UnicodeScalarView()
        for c in key.unicodeScalars {
            if c == (slashFirst ? "/" : ".") {
                parts.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(slashFirst || c != "/" ? c : ".")
            }
        }
        parts.append(String(current))
        guard parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        return parts
    }

    /// The dotted name of a key (its components joined by dots), for policy
    /// and messages; nil when it is not a sysctl name.
    public static func name(_ key: String) -> String? { components(key)?.joined(separator: ".") }

    /// The namespace type ("ipc", "network", "uts") that isolates the key,
    /// nil when none does (or it is a global net.* one).
    public static func namespace(of key: String) -> String? {
        guard let c = components(key) else { return nil }
        let n = c.joined(separator: ".")
        if ipc.contains(n) || (c.count > 2 && c[0] == "fs" && c[1] == "mqueue") { return "ipc" }
        if uts.contains(n) { return "uts" }
        if c[0] == "net" && c.count > 1 && !isGlobalNet(n) { return "network" }
        return nil
    }

    static func isGlobalNet(_ name: String) -> Bool {
        globalNet.contains(name) || globalNetPrefixes.contains { name.hasPrefix($0) }
    }

    /// Why the key may not be set in a container with namespaces of these
    /// types (new or joined: a joined one is checked at create, as it may be
    /// the host's), nil when it may.
    public static func refusal(_ key: String, namespaces: [String]) -> String? {
        let q = quoted(key, max: 128)
        guard let c = components(key) else { return "\(q) is not a sysctl name (empty, \".\" or \"..\" components)" }
        let n = c.joined(separator: ".")
        if c[0] == "net" && isGlobalNet(n) {
            return "\(q) is global: it exists only in the host's network namespace, which no container may change"
        }
        guard let ns = namespace(of: key) else { return "\(q) is not isolated by any namespace of the container" }
        if !namespaces.contains(ns) {
            return "\(q) is isolated by the \(ns) namespace, which the container does not have: it would change the host's"
        }
        return nil
    }
}
