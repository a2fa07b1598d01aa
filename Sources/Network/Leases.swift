import Glibc
import Spec
import Sys

// Address leases and published host ports, as files under one directory
// (CNI host-local's layout), every change under an flock on `dir/lock`:
//   leases/172.18.0.2        contains the owning container id
//   ports/tcp-18080-any      contains the owning container id and the
//                            mapping ("id 18080:8080/tcp 172.18.0.2")

/// One `[HOSTIP:]HOSTPORT:CTRPORT/PROTO` of the ports annotation. Host port
/// 0 asks `run` for a free one (HeldPorts), which it writes back in place.
public struct PortMapping: Equatable, CustomStringConvertible {
    public var hostIP: IPv4?
    public var hostPort: Int
    public var containerPort: Int
    public var proto: String

    public init(hostIP: IPv4? = nil, hostPort: Int, containerPort: Int, proto: String = "tcp") {
        self.hostIP = hostIP; self.hostPort = hostPort; self.containerPort = containerPort; self.proto = proto
    }

    /// Parses the canonical form Compile writes (and the short ones).
    public init(_ s: String) throws {
        let bad = Failure(.invalid, "invalid published port \(quoted(s)): use [HOSTIP:]HOSTPORT:CTRPORT/tcp|udp")
        var body = Substring(s)
        proto = "tcp"
        if let slash = s.firstIndex(of: "/") {
            proto = String(s[s.index(after: slash)...])
            body = s[..<slash]
        }
        guard proto == "tcp" || proto == "udp" else { throw bad }
        let parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3,
              let hp = Int(parts[parts.count - 2]), (0...65535).contains(hp),
              let cp = Int(parts[parts.count - 1]), (1...65535).contains(cp) else { throw bad }
        hostPort = hp; containerPort = cp
        if parts.count == 3 {
            guard let ip = IPv4(parts[0]) else { throw bad }
            hostIP = ip.value == 0 ? nil : ip
        }
    }

    public static func list(_ annotation: String?) throws -> [PortMapping] {
        guard let a = annotation, !a.isEmpty else { return [] }
        return try a.split(separator: ",").map { try PortMapping(String($0)) }
    }

    public var description: String { (hostIP.map { "\($0):" } ?? "") + "\(hostPort):\(containerPort)/\(proto)" }
    var fileName: String { "\(proto)-\(hostPort)-\(hostIP?.description ?? "any")" }
}


public struct Leases {
    public let dir: String
    public let subnet: Subnet

    public init(dir: String, subnet: Subnet) { self.dir = dir; self.subnet = subnet }

    var leaseDir: String { dir + "/leases" }
    var portDir: String { dir + "/ports" }

    /// Runs `body` holding the directory's lock (created on first use).
    public func locked<T>(_ body: () throws -> T) throws -> T {
        _ = try FS.makeDirectories(leaseDir, mode: 0o700)
        _ = try FS.makeDirectories(portDir, mode: 0o700)
        let path = dir + "/lock"
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SysError("open \(path)") }
        close(fd)
        let lock = try FileLock.acquire(path)
        defer { lock.unlock() }
        return try body()
    }

    /// Every lease: address -> container id.
    public func all() -> [IPv4: String] {
        var out: [IPv4: String] = [:]
        for name in FS.listDirectory(leaseDir) {
            guard let a = IPv4(name), let id = try? FS.readString(leaseDir + "/" + name) else { continue }
            out[a] = id.trimmingNewline()
        }
        return out
    }

    public func owned(by id: String) -> [IPv4] { all().filter { $0.value == id }.map { $0.key }.sorted() }

    /// The lowest free host address of the subnet for `id` (the lock must
    /// be held). The network, gateway (first host) and broadcast addresses
    /// are never handed out.
    public func allocate(id: String) throws -> IPv4 {
        let taken = Set(all().keys)
        var v = subnet.gateway.value + 1
        while v < subnet.broadcast.value {
            let a = IPv4(v)
            if !taken.contains(a) {
                let path = leaseDir + "/" + a.description
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                if fd < 0 {
                    if errno == EEXIST { v += 1; continue }
                    throw SysError("create lease \(path)")
                }
                defer { close(fd) }
                try FS.writeAll(fd: fd, Array((id + "\n").utf8), what: "write lease \(path)")
                return a
            }
            v += 1
        }
        throw Failure(.invalid, "no free address in \(subnet): all \(subnet.broadcast.value - subnet.gateway.value - 1) are leased")
    }

    /// Removes the leases of `id`; returns them.
    @discardableResult
    public func release(id: String) -> [IPv4] {
        let mine = owned(by: id)
        for a in mine { unlink(leaseDir + "/" + a.description) }
        return mine
    }

    /// Port reservations: file name -> (owner, mapping, container address).
    public func ports() -> [(id: String, mapping: PortMapping, address: IPv4?, file: String)] {
        var out: [(String, PortMapping, IPv4?, String)] = []
        for name in FS.listDirectory(portDir) {
            guard let text = try? FS.readString(portDir + "/" + name) else { continue }
            let f = text.trimmingNewline().split(separator: " ").map(String.init)
            guard f.count >= 2, let m = try? PortMapping(f[1]) else { continue }
            out.append((f[0], m, f.count > 2 ? IPv4(f[2]) : nil, name))
        }
        return out
    }

    /// Reserves `mappings` for `id` at `address`, all or none: a host port
    /// (and protocol) already published on the same or on every address is
    /// an error naming its owner.
    public func reserve(_ mappings: [PortMapping], id: String, address: IPv4) throws {
        let existing = ports()
        for m in mappings {
            for e in existing where e.mapping.proto == m.proto && e.mapping.hostPort == m.hostPort
                && (e.mapping.hostIP == nil || m.hostIP == nil || e.mapping.hostIP == m.hostIP) {
                throw Failure(.invalid, "host port \(m.hostIP.map { "\($0):" } ?? "")\(m.hostPort)/\(m.proto) is already published by container \(e.id)")
            }
        }
        var done: [String] = []
        for m in mappings {
            let path = portDir + "/" + m.fileName
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let e = SysError("reserve host port \(m)")
                for d in done { unlink(d) }
                throw e
            }
            done.append(path)
            defer { close(fd) }
            try FS.writeAll(fd: fd, Array("\(id) \(m) \(address)\n".utf8), what: "write \(path)")
        }
    }

    /// Removes the port reservations of `id`; returns them.
    @discardableResult
    public func releasePorts(id: String) -> [(mapping: PortMapping, address: IPv4?)] {
        var out: [(PortMapping, IPv4?)] = []
        for p in ports() where p.id == id {
            unlink(portDir + "/" + p.file)
            out.append((p.mapping, p.address))
        }
        return out
    }
}

extension String {
    func trimmingNewline() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == " " || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
