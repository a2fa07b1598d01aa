import CShim
import Glibc
import Sys

// NAT for the bridge: masquerade of the subnet's traffic leaving through
// other interfaces, and DNAT of published ports, in a table of our own
// (`ip minicontainer` with nftables; chains MINICONTAINER and
// MINICONTAINER-POST in iptables's nat table on hosts without `nft`).
//
// The table is created with the first container that needs it and removed
// with the last one (`Network.tearDown`), or by `Network.cleanUp`. Published
// ports are elements of two maps (any host address / one host address), so
// a container adds and removes its own elements and never touches rules.
//
// Localhost publishing: a connection to 127.0.0.1:HOSTPORT is DNATed in the
// output hook; the kernel only routes a 127/8 source out of a non-loopback
// device when route_localnet is set on that device, so we set it on the
// bridge alone (net.ipv4.conf.minicontainer0.route_localnet=1, gone with the
// bridge; the host-wide setting is untouched), and masquerade 127/8 sources
// leaving through the bridge, so the container sees the gateway address.
// Containers reaching another's published port through a host address are
// masqueraded too (hairpin: `ct status dnat` out of the bridge), so replies
// come back through the host.
//
// ip_forward: turned on when the table is installed if it was off; the old
// value is kept in `<network dir>/firewall` and written back when the table
// is removed.

enum Firewall {
    static let table = "minicontainer"

    enum Backend: String { case nft, iptables }

    static func find(_ names: [String]) -> String? {
        for n in names where access(n, X_OK) == 0 { return n }
        return nil
    }
    static var nft: String? { find(["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]) }
    static var iptables: String? { find(["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables", "/bin/iptables"]) }

    static func backend() throws -> Backend {
        if let forced = Env.get("MINICONTAINER_FIREWALL"), let b = Backend(rawValue: forced) { return b }
        if nft != nil { return .nft }
        if iptables != nil { return .iptables }
        throw Failure(.failed, "neither nft nor iptables is installed: NAT and published ports need one")
    }

    /// The nft script that creates (or completes) our table. Idempotent: it
    /// keeps the maps' elements and rewrites the chains' rules.
    static func nftInstallScript(subnet: Subnet, bridge: String) -> String {
        let t = "ip \(table)"
        return """
        add table \(t)
        add map \(t) ports { type inet_proto . inet_service : ipv4_addr . inet_service; }
        add map \(t) hostports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
        add chain \(t) prerouting { type nat hook prerouting priority dstnat; policy accept; }
        add chain \(t) output { type nat hook output priority -100; policy accept; }
        add chain \(t) postrouting { type nat hook postrouting priority srcnat; policy accept; }
        flush chain \(t) prerouting
        flush chain \(t) output
        flush chain \(t) postrouting
        add rule \(t) prerouting fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @hostports
        add rule \(t) prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports
        add rule \(t) output fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @hostports
        add rule \(t) output fib daddr type local dnat ip to meta l4proto . th dport map @ports
        add rule \(t) postrouting ip saddr \(subnet) oifname != "\(bridge)" masquerade
        add rule \(t) postrouting oifname "\(bridge)" ip saddr 127.0.0.0/8 masquerade
        add rule \(t) postrouting oifname "\(bridge)" ct status dnat ip saddr \(subnet) masquerade

        """
    }

    static func nftElement(_ m: PortMapping, address: IPv4, add: Bool) -> String {
        let verb = add ? "add" : "delete"
        let value = add ? " : \(address) . \(m.containerPort)" : ""
        if let ip = m.hostIP {
            return "\(verb) element ip \(table) hostports { \(ip) . \(m.proto) . \(m.hostPort)\(value) }\n"
        }
        return "\(verb) element ip \(table) ports { \(m.proto) . \(m.hostPort)\(value) }\n"
    }

    static func iptablesPortRule(_ m: PortMapping, address: IPv4) -> [String] {
        (m.hostIP.map { ["-d", "\($0)/32"] } ?? []) + ["-p", m.proto, "--dport", "\(m.hostPort)",
            "-j", "DNAT", "--to-destination", "\(address):\(m.containerPort)"]
    }

    // MARK: state

    struct State {
        var backend: Backend
        /// ip_forward before we turned it on, if we did.
        var previousForward: String?
    }

    static func stateFile(_ dir: String) -> String { dir + "/firewall" }

    static func load(_ dir: String) -> State? {
        guard let text = try? FS.readString(stateFile(dir)) else { return nil }
        var s = State(backend: .nft)
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            if kv[0] == "backend", let b = Backend(rawValue: kv[1]) { s.backend = b }
            if kv[0] == "ip_forward_before" { s.previousForward = kv[1] }
        }
        return s
    }

    static let forwardPath = "/proc/sys/net/ipv4/ip_forward"

    /// Installs our table (once: while the state file exists it is there)
    /// and turns ip_forward on. The network lock is held.
    static func install(dir: String, subnet: Subnet, bridge: String, force: Bool = false) throws -> State {
        if !force, let s = load(dir) { return s }
        let b = try backend()
        switch b {
        case .nft:
            try run(nft!, ["-f", "-"], stdin: nftInstallScript(subnet: subnet, bridge: bridge))
        case .iptables:
            let ipt = iptables!
            for chain in ["MINICONTAINER", "MINICONTAINER-POST"] {
                _ = try? run(ipt, ["-t", "nat", "-N", chain])
            }
            try run(ipt, ["-t", "nat", "-F", "MINICONTAINER-POST"])
            let jumps: [[String]] = [
                ["PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINICONTAINER"],
                ["OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINICONTAINER"],
                ["POSTROUTING", "-j", "MINICONTAINER-POST"],
            ]
            for j in jumps where (try? run(ipt, ["-t", "nat", "-C"] + j)) == nil {
                try run(ipt, ["-t", "nat", "-A"] + j)
            }
            try run(ipt, ["-t", "nat", "-A", "MINICONTAINER-POST", "-s", "\(subnet)", "!", "-o", bridge, "-j", "MASQUERADE"])
            try run(ipt, ["-t", "nat", "-A", "MINICONTAINER-POST", "-s", "127.0.0.0/8", "-o", bridge, "-j", "MASQUERADE"])
            try run(ipt, ["-t", "nat", "-A", "MINICONTAINER-POST", "-s", "\(subnet)", "-o", bridge,
                          "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"])
        }
        var s = State(backend: b)
        let before = ((try? FS.readString(forwardPath)) ?? "1").trimmingNewline()
        if before != "1" {
            try writeSysctl(forwardPath, "1")
            s.previousForward = before
        }
        try FS.writeAtomically(stateFile(dir), "backend=\(b.rawValue)\n" + (s.previousForward.map { "ip_forward_before=\($0)\n" } ?? ""), mode: 0o600)
        return s
    }

    static func addPorts(_ ms: [PortMapping], address: IPv4, state: State) throws {
        guard !ms.isEmpty else { return }
        switch state.backend {
        case .nft:
            try run(nft!, ["-f", "-"], stdin: ms.map { nftElement($0, address: address, add: true) }.joined())
        case .iptables:
            for m in ms { try run(iptables!, ["-t", "nat", "-A", "MINICONTAINER"] + iptablesPortRule(m, address: address)) }
        }
    }

    static func removePorts(_ ms: [(mapping: PortMapping, address: IPv4?)], state: State) {
        for (m, a) in ms {
            guard let a = a else { continue }
            switch state.backend {
            case .nft: _ = try? run(nft!, ["-f", "-"], stdin: nftElement(m, address: a, add: false))
            case .iptables: _ = try? run(iptables!, ["-t", "nat", "-D", "MINICONTAINER"] + iptablesPortRule(m, address: a))
            }
        }
    }

    /// Removes our table or chains and restores ip_forward.
    static func uninstall(dir: String) throws {
        let s = load(dir)
        let b = try s?.backend ?? backend()
        switch b {
        case .nft:
            if let n = nft { _ = try? run(n, ["delete", "table", "ip", table]) }
        case .iptables:
            if let ipt = iptables {
                _ = try? run(ipt, ["-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINICONTAINER"])
                _ = try? run(ipt, ["-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "MINICONTAINER"])
                _ = try? run(ipt, ["-t", "nat", "-D", "POSTROUTING", "-j", "MINICONTAINER-POST"])
                for c in ["MINICONTAINER", "MINICONTAINER-POST"] {
                    _ = try? run(ipt, ["-t", "nat", "-F", c])
                    _ = try? run(ipt, ["-t", "nat", "-X", c])
                }
            }
        }
        if let before = s?.previousForward { try writeSysctl(forwardPath, before) }
        unlink(stateFile(dir))
    }

    static func writeSysctl(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        try FS.writeAll(fd: fd, Array((value + "\n").utf8), what: "write \(path)")
    }

    /// Runs `path args` with `stdin`; throws its stderr when it fails.
    @discardableResult
    static func run(_ path: String, _ args: [String], stdin: String = "") throws -> Int32 {
        try Program.run(path, args, stdin: stdin, shown: args.first == "-f" ? "-f -" : nil)
        return 0
    }
}
