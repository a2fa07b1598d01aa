import Glibc
import Spec
import Sys

// Network: bridge, veth, addresses, NAT and published ports over rtnetlink.
//
// Driven by the bundle's annotations at the createRuntime step: Runtime
// calls `Network.setUp` after the init is cloned into its new network
// namespace and placed in its cgroup, before it lets the init go on, and
// `Network.tearDown` from delete and from a failed create. No helper program
// runs for a container without published ports once the NAT table exists;
// the table itself and the port-map elements are set with `nft -f -`.

/// What a container got: recorded in its state (Record.network).
public struct Attachment: Equatable {
    public var address: IPv4
    public var subnet: Subnet
    public var gateway: IPv4
    public var bridge: String
    /// The host side of the veth pair.
    public var hostVeth: String
    public var ports: [PortMapping]

    /// As kept in the container's state.
    public var fields: [String: String] {
        var f = ["address": "\(address)/\(subnet.prefix)", "gateway": "\(gateway)", "bridge": bridge, "veth": hostVeth]
        if !ports.isEmpty { f["ports"] = ports.map { $0.description }.joined(separator: ",") }
        return f
    }
}

public enum Network {
    public static let bridgeName = "minicontainer0"
    public static let defaultSubnet = Subnet("172.18.0.0/16")!
    /// The leases, port reservations and firewall state in `dir`
    /// (Locations.network).
    static func leases(_ dir: String) -> Leases { Leases(dir: dir, subnet: defaultSubnet) }

    /// The host-side veth name of container `id`: "mc" + 8 hex digits of an
    /// FNV-1a hash of the id (ids may be long or not hex).
    public static func hostVethName(_ id: String) -> String {
        "mc" + hex8(fnv1a(id))
    }
    static func peerVethName(_ id: String) -> String { "mp" + hex8(fnv1a(id)) }

    static func fnv1a(_ s: String) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }
    static func hex8(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// Whether a bundle's annotations ask for a bridged network.
    public static func wantsBridge(_ annotations: [String: String]?) -> Bool {
        annotations?[Annotation.network] == "bridge"
    }

    /// Whether `setUp` has work for a new network namespace: a bridge, or
    /// with `none` only lo up.
    public static func configures(_ annotations: [String: String]?) -> Bool {
        let m = annotations?[Annotation.network]
        return m == "bridge" || m == "none"
    }

    /// X of `container:X`.
    public static func sharedContainer(_ annotations: [String: String]?) -> String? {
        guard let m = annotations?[Annotation.network], m.hasPrefix("container:"), m.count > 10 else { return nil }
        return String(m.dropFirst(10))
    }

    /// Connects the new network namespace of `pid` to the bridge: a lease,
    /// a veth pair (eth0 inside), lo up, the default route, NAT and the
    /// published ports. Returns nil when the annotations do not ask for
    /// a bridge. On failure nothing of it is left.
    public static func setUp(annotations: [String: String]?, id: String, pid: Int32, dir: String) throws -> Attachment? {
        if annotations?[Annotation.network] == "none" {
            let ns = try RouteSocket.inNamespace(ofPid: pid)
            try ns.setUp(try ns.requireIndex("lo"), what: "lo")
            return nil
        }
        guard wantsBridge(annotations) else { return nil }
        let ports = try PortMapping.list(annotations?[Annotation.ports])
        if let m = ports.first(where: { $0.hostPort == 0 }) {
            throw Failure(.invalid, "published port \(m): host port 0 (any free port) is chosen by 'minicontainer run'; a bundle must name the port")
        }
        let l = leases(dir)
        return try l.locked {
            do {
                return try attach(id: id, pid: pid, ports: ports, leases: l)
            } catch {
                detach(id: id, leases: l)
                throw error
            }
        }
    }

    static func attach(id: String, pid: Int32, ports: [PortMapping], leases l: Leases) throws -> Attachment {
        let subnet = l.subnet
        // Ports first: a conflict is the likeliest error and costs nothing.
        // Each records what it takes (held/ID) before it takes it.
        let address = try l.allocate(id: id)
        try l.reserve(ports, id: id, address: address)

        let host = try RouteSocket()
        let bridge = try host.ensureBridge(bridgeName)
        try host.addAddress(bridge.index, subnet.gateway, prefix: subnet.prefix)
        try host.setUp(bridge.index, what: bridgeName)
        // See Firewall: lets 127.0.0.1:HOSTPORT reach containers.
        try? Firewall.writeSysctl("/proc/sys/net/ipv4/conf/\(bridgeName)/route_localnet", "1")

        let hostName = hostVethName(id), peerName = peerVethName(id)
        // A stale pair of a container of the same id that died unseen.
        try host.deleteLink(hostName)
        try host.deleteLink(peerName)
        try host.createVeth(hostName, peer: peerName)
        let hostIndex = try host.requireIndex(hostName)
        try host.setMaster(hostIndex, master: bridge.index, what: hostName)
        try host.setUp(hostIndex, what: hostName)
        try host.move(try host.requireIndex(peerName), toNamespaceOf: pid, name: "eth0")

        let ns = try RouteSocket.inNamespace(ofPid: pid)
        try ns.setUp(try ns.requireIndex("lo"), what: "lo")
        let eth0 = try ns.requireIndex("eth0")
        try ns.addAddress(eth0, address, prefix: subnet.prefix)
        try ns.setUp(eth0, what: "eth0")
        try ns.addDefaultRoute(via: subnet.gateway, index: eth0)

        var fw = try Firewall.install(dir: l.dir, subnet: subnet, bridge: bridgeName)
        do {
            try Firewall.addPorts(ports, address: address, state: fw)
        } catch {
            // The table went away behind our back (flushed by hand): again.
            guard !ports.isEmpty else { throw error }
            fw = try Firewall.install(dir: l.dir, subnet: subnet, bridge: bridgeName, force: true)
            try Firewall.addPorts(ports, address: address, state: fw)
        }
        return Attachment(address: address, subnet: subnet, gateway: subnet.gateway, bridge: bridgeName,
                          hostVeth: hostName, ports: ports)
    }

    /// Undoes `setUp` for `id` (the lock is held): port elements, veth,
    /// lease; with the last lease, the NAT table (and ip_forward). Reads
    /// only `id`'s own files (its held/ record), unless `thorough` or there
    /// is no record: then every lease and port.
    static func detach(id: String, leases l: Leases, thorough: Bool = false) {
        let fw = Firewall.load(l.dir)
        // The lease goes after the veth (as before): held until the link is gone.
        let h = thorough ? nil : l.held(id)
        let ports: [(mapping: PortMapping, address: IPv4?)]
        if let h = h {
            ports = h.ports.compactMap { f in
                guard let p = l.port(f), p.id == id else { return nil }
                unlink(l.portDir + "/" + f)
                return (p.mapping, p.address)
            }
        } else {
            ports = l.releasePorts(id: id)
        }
        if let fw = fw { Firewall.removePorts(ports, state: fw) }
        if let s = try? RouteSocket() {
            _ = try? s.deleteLink(hostVethName(id))
            _ = try? s.deleteLink(peerVethName(id))
        }
        if let h = h { for a in h.leases { _ = l.unlease(a, id: id) } } else { l.release(id: id) }
        l.forget(id)
        // The last container's teardown: the directory read up to its first lease.
        if fw != nil && !l.anyLeased() { try? Firewall.uninstall(dir: l.dir) }
    }

    /// Releases what `setUp` gave container `id`. Cheap when it had nothing
    /// (no network directory, or no held/ record: nothing to do).
    public static func tearDown(id: String, dir: String) throws {
        let l = leases(dir)
        guard FS.isDirectory(l.dir), l.mayHold(id) else { return }
        try l.locked { detach(id: id, leases: l) }
    }

    /// For prune: releases everything held by ids not in `alive`; returns them.
    @discardableResult
    public static func reclaim(alive: Set<String>, dir: String) throws -> [String] {
        try reclaim(dir: dir, isAlive: { alive.contains($0) })
    }

    /// For prune: releases everything held by ids for which `isAlive` is
    /// false; returns them. `isAlive` is asked under the network lock, so a
    /// container attached concurrently is seen by it (see `attached`).
    @discardableResult
    public static func reclaim(dir: String, isAlive: (String) -> Bool) throws -> [String] {
        let l = leases(dir)
        guard FS.isDirectory(l.dir) else { return [] }
        return try l.locked {
            let holders = Set(l.all().values).union(l.ports().map { $0.id }).union(FS.listDirectory(l.heldDir))
            let dead = holders.filter { !isAlive($0) }.sorted()
            for id in dead { detach(id: id, leases: l, thorough: true) }
            return dead
        }
    }

    /// Whether container `id`'s host veth exists: it goes with the
    /// container's network namespace, so this tells a live attachment from a
    /// lease left by a container that died unseen, whatever --root it had.
    public static func attached(_ id: String) -> Bool {
        FS.exists("/sys/class/net/" + hostVethName(id))
    }

    /// Interfaces enslaved to our bridge (empty when it does not exist).
    static func bridgePorts() -> [String] { FS.listDirectory("/sys/class/net/\(bridgeName)/brif") }

    /// Removes our NAT table and the bridge, and restores ip_forward, if no
    /// container holds a lease and nothing is attached to the bridge (a
    /// container of another network directory); returns false (and removes
    /// nothing) otherwise.
    @discardableResult
    public static func cleanUp(dir: String, removeBridge: Bool = true) throws -> Bool {
        let l = leases(dir)
        if FS.isDirectory(l.dir) {
            let idle = try l.locked { () -> Bool in
                guard !l.anyLeased(), bridgePorts().isEmpty else { return false }
                try Firewall.uninstall(dir: l.dir)
                if removeBridge { try RouteSocket().deleteLink(bridgeName) }
                return true
            }
            return idle
        }
        guard bridgePorts().isEmpty else { return false }
        if removeBridge { try RouteSocket().deleteLink(bridgeName) }
        return true
    }

    // MARK: files for run-mode containers

    /// /etc/hosts: `extra` first (--add-host's NAME:IP entries, as podman
    /// puts them, so they win a lookup), localhost and the container's own
    /// name and address (127.0.1.1 without one); `aliases` (the container's
    /// name) follow the hostname on that line. An extra entry whose name or
    /// address holds anything but their alphabets (a space, "#", a newline)
    /// is left out: it would add a name, a comment or a line.
    public static func hostsFile(hostname: String, address: IPv4?, aliases: [String] = [], extra: [String] = []) -> String {
        var s = ""
        for e in extra {
            guard let colon = e.firstIndex(of: ":") else { continue }
            let name = e[..<colon], ip = e[e.index(after: colon)...]
            guard safeWord(name, "-_."), safeWord(ip, ":."), name.first != "-" else { continue }
            s += "\(ip)\t\(name)\n"
        }
        s += "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        s += "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        var names = [hostname]
        for a in aliases where !a.isEmpty && !names.contains(a) { names.append(a) }
        s += "\(address?.description ?? "127.0.1.1")\t\(names.joined(separator: " "))\n"
        return s
    }

    /// Non-empty, ASCII letters and digits and the `extra` characters only.
    static func safeWord(_ s: Substring, _ extra: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 253 && s.unicodeScalars.allSatisfy {
            ($0.value >= 48 && $0.value <= 57) || ($0.value >= 65 && $0.value <= 90) || ($0.value >= 97 && $0.value <= 122)
                || extra.unicodeScalars.contains($0)
        }
    }

    /// /etc/hostname.
    public static func hostnameFile(_ hostname: String) -> String { hostname + "\n" }

    /// /etc/resolv.conf from the host's: its search and options lines and
    /// its nameservers, except loopback ones (a local resolver such as
    /// systemd-resolved's 127.0.0.53 is not reachable from the container's
    /// namespace); with none left, `fallback` (Docker's choice).
    /// `servers`, `search` and `options` (--dns, --dns-search, --dns-option),
    /// when given, replace the host's (search ["."]: none); a value with
    /// anything but their alphabets is dropped, so none adds a line.
    public static func resolvConf(host: String, fallback: [String] = ["8.8.8.8", "8.8.4.4"],
                                  servers dns: [String] = [], search: [String] = [], options: [String] = []) -> String {
        let dns = dns.filter { safeWord(Substring($0), ":.") }
        let search = search.filter { $0 == "." || safeWord(Substring($0), "-_.") }
        let options = options.filter { safeWord(Substring($0), "-_.:") }
        var kept: [String] = []
        if !search.isEmpty && search != ["."] { kept.append("search " + search.joined(separator: " ")) }
        kept += dns.map { "nameserver " + $0 }
        var servers = dns.count
        for raw in host.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw).trimmingNewline()
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = f.first else { continue }
            if key == "nameserver", f.count >= 2 {
                if !dns.isEmpty || f[1].hasPrefix("127.") || f[1] == "::1" { continue }
                servers += 1
                kept.append("nameserver \(f[1])")
            } else if (key == "search" || key == "domain") && search.isEmpty || key == "options" && options.isEmpty {
                kept.append(f.joined(separator: " "))
            }
        }
        if servers == 0 { kept += fallback.map { "nameserver \($0)" } }
        if !options.isEmpty { kept.append("options " + options.joined(separator: " ")) }
        return kept.joined(separator: "\n") + "\n"
    }
}
