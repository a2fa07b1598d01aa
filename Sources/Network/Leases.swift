import Glibc
import Spec
import Sys

// Address leases and published host ports, as files under one directory
// (CNI host-local's layout), every change under an flock on `dir/lock`:
//   leases/172.18.0.2        contains the owning container id
//   ports/tcp-18080-any      contains the owning container id and the
//                            mapping ("id 18080:8080/tcp 172.18.0.2")
//   held/ID                  what container ID holds (Leases.Held)
//   next                     the lowest address that may be free
// A start or a teardown touches the files of its own container, whatever
// the number of others (issue 19); prune (`reclaim`) reads them all.

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
    /// held/ID: what container ID holds (`Held`), so that its teardown
    /// touches its own files and no other's.
    var heldDir: String { dir + "/held" }
    /// The lowest address that may be free: every one below it is leased
    /// (a hint: allocation is right without it, only slower).
    var hintPath: String { dir + "/next" }

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
        if !FS.isDirectory(heldDir) { try makeHeld() }
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

    /// Whether any address is leased: reads the directory up to its first
    /// lease, not the leases.
    public func anyLeased() -> Bool {
        FS.anyEntry(leaseDir) { IPv4($0) != nil }
    }

    public func owned(by id: String) -> [IPv4] { all().filter { $0.value == id }.map { $0.key }.sorted() }

    /// The owner a lease or port file names (its first word; "" for an
    /// empty file, as `all` has it).
    func owner(_ path: String) -> String? {
        guard let text = try? FS.readString(path) else { return nil }
        return text.trimmingNewline().split(separator: " ", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    /// The lowest free host address of the subnet for `id` (the lock must
    /// be held). The network, gateway (first host) and broadcast addresses
    /// are never handed out. Tries addresses from the hint on, wrapping
    /// around once, each by an exclusive create (a leased one is skipped by
    /// access(2)): no lease is read.
    public func allocate(id: String) throws -> IPv4 {
        let first = subnet.gateway.value &+ 1, end = subnet.broadcast.value
        let count = end > first ? end - first : 0
        var start = first
        if let h = try? FS.readString(hintPath), let a = IPv4(h.trimmingNewline()), a.value >= first, a.value < end { start = a.value }
        let prior = held(id) ?? Held()
        var k: UInt32 = 0
        while k < count {
            let a = IPv4(first + (start - first + k) % count)
            k += 1
            let path = leaseDir + "/" + a.description
            if FS.exists(path) { continue }
            // Recorded before it is made: a crash after this finds it.
            try record(id, Held(leases: prior.leases + [a], ports: prior.ports))
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 {
                if errno == EEXIST { continue }
                let e = SysError("create lease \(path)")
                try? record(id, prior)
                throw e
            }
            defer { close(fd) }
            do {
                try FS.writeAll(fd: fd, Array((id + "\n").utf8), what: "write lease \(path)")
            } catch {
                unlink(path)
                try? record(id, prior)
                throw error
            }
            setHint(IPv4(a.value + 1))
            return a
        }
        try? record(id, prior)
        throw Failure(.invalid, "no free address in \(subnet): all \(count) are leased")
    }

    func setHint(_ a: IPv4) {
        let fd = open(hintPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        try? FS.writeAll(fd: fd, Array("\(a)\n".utf8), what: "write \(hintPath)")
        close(fd)
    }

    /// Removes the lease of `a` if `id` holds it; the hint goes down to it.
    func unlease(_ a: IPv4, id: String) -> Bool {
        let path = leaseDir + "/" + a.description
        guard owner(path) == id, unlink(path) == 0 else { return false }
        let hint = (try? FS.readString(hintPath)).flatMap { IPv4($0.trimmingNewline()) }
        if hint.map({ a < $0 }) ?? true { setHint(a) }
        return true
    }

    /// Removes the leases of `id` (every lease is read); returns them.
    @discardableResult
    public func release(id: String) -> [IPv4] {
        let out = owned(by: id).filter { unlease($0, id: id) }
        if var h = held(id) { h.leases = []; try? record(id, h) }
        return out
    }

    /// Port reservations: file name -> (owner, mapping, container address).
    public func ports() -> [(id: String, mapping: PortMapping, address: IPv4?, file: String)] {
        FS.listDirectory(portDir).compactMap { port($0) }
    }

    /// One reservation file, parsed.
    func port(_ name: String) -> (id: String, mapping: PortMapping, address: IPv4?, file: String)? {
        guard let text = try? FS.readString(portDir + "/" + name) else { return nil }
        let f = text.trimmingNewline().split(separator: " ").map(String.init)
        guard f.count >= 2, let m = try? PortMapping(f[1]) else { return nil }
        return (f[0], m, f.count > 2 ? IPv4(f[2]) : nil, name)
    }

    /// The reservations a new `m` would clash with: its host port and
    /// protocol on the same address or on every address. Only the files of
    /// that port are read (their names say their port).
    public func clashes(with m: PortMapping) -> [(id: String, mapping: PortMapping, address: IPv4?, file: String)] {
        let names: [String]
        if m.hostIP == nil {
            let stem = "\(m.proto)-\(m.hostPort)-"
            names = (FS.directoryEntries(portDir) ?? []).map { $0.name }.filter { $0.hasPrefix(stem) }.sorted()
        } else {
            names = [PortMapping(hostIP: nil, hostPort: m.hostPort, containerPort: m.containerPort, proto: m.proto).fileName, m.fileName]
        }
        return names.compactMap { port($0) }.filter { e in
            e.mapping.proto == m.proto && e.mapping.hostPort == m.hostPort
                && (e.mapping.hostIP == nil || m.hostIP == nil || e.mapping.hostIP == m.hostIP)
        }
    }

    /// Reserves `mappings` for `id` at `address`, all or none: a host port
    /// (and protocol) already published on the same or on every address is
    /// an error naming its owner.
    public func reserve(_ mappings: [PortMapping], id: String, address: IPv4) throws {
        guard !mappings.isEmpty else { return }
        var done: [String] = []
        let prior = held(id) ?? Held()
        do {
            // Recorded before they are made (a file of another owner listed
            // by a failed reservation is never removed: owners are checked).
            try record(id, Held(leases: prior.leases, ports: prior.ports + mappings.map { $0.fileName }))
            for m in mappings {
                if let e = clashes(with: m).first {
                    throw Failure(.invalid, "host port \(m.hostIP.map { "\($0):" } ?? "")\(m.hostPort)/\(m.proto) is already published by container \(e.id)")
                }
                let path = portDir + "/" + m.fileName
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw SysError("reserve host port \(m)") }
                done.append(path)
                defer { close(fd) }
                try FS.writeAll(fd: fd, Array("\(id) \(m) \(address)\n".utf8), what: "write \(path)")
            }
        } catch {
            for d in done { unlink(d) }
            try? record(id, prior)
            throw error
        }
    }

    /// Removes the port reservations of `id` (every one is read); returns them.
    @discardableResult
    public func releasePorts(id: String) -> [(mapping: PortMapping, address: IPv4?)] {
        var out: [(PortMapping, IPv4?)] = []
        for p in ports() where p.id == id {
            unlink(portDir + "/" + p.file)
            out.append((p.mapping, p.address))
        }
        if var h = held(id) { h.ports = []; try? record(id, h) }
        return out
    }

    // MARK: what each container holds

    /// held/ID: what container ID holds, one line per lease ("lease
    /// 172.18.0.2") and port file ("port tcp-18080-any"). Written before a
    /// lease or port file is made, so it lists at least what ID holds, even
    /// after a crash; a file listed is removed only if ID owns it.
    public struct Held: Equatable {
        public var leases: [IPv4] = []
        public var ports: [String] = []
        public init(leases: [IPv4] = [], ports: [String] = []) { self.leases = leases; self.ports = ports }
        var isEmpty: Bool { leases.isEmpty && ports.isEmpty }
        var text: String { leases.map { "lease \($0)\n" }.joined() + ports.map { "port \($0)\n" }.joined() }
    }

    /// Whether container `id` can have a held/ file: a file name of at most
    /// 255 bytes that is not `.` or `..` (runtime ids are letters, digits
    /// and `_ . + -`; a longer one is torn down by reading every lease).
    static func recordable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 255 && id != "." && id != ".." && !id.utf8.contains { $0 == UInt8(ascii: "/") || $0 == 0 }
    }

    func heldPath(_ id: String) -> String { heldDir + "/" + id }

    /// Whether `id` may hold something here. Without a held/ directory (one
    /// made before it) or for an id that cannot have a file, every lease
    /// and port is read; else only whether its file exists.
    public func mayHold(_ id: String) -> Bool {
        guard FS.isDirectory(heldDir), Leases.recordable(id) else {
            return !owned(by: id).isEmpty || ports().contains { $0.id == id }
        }
        return FS.exists(heldPath(id))
    }

    /// What `id` holds: nil when not known (no held/ file, an unreadable
    /// one, or an id without one).
    public func held(_ id: String) -> Held? {
        guard Leases.recordable(id), let text = try? FS.readString(heldPath(id)) else { return nil }
        var h = Held()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard f.count == 2 else { return nil }
            switch f[0] {
            case "lease": guard let a = IPv4(f[1]) else { return nil }; h.leases.append(a)
            case "port": guard !Path.hasSlash(f[1]), !f[1].bytesStart(with: ".") else { return nil }; h.ports.append(f[1])
            default: return nil
            }
        }
        return h
    }

    /// Records what `id` holds (none: its file goes). Nothing while there
    /// is no held/ directory (`locked` makes it, with the records of what
    /// was there before) or for an id that cannot have a file.
    func record(_ id: String, _ h: Held) throws {
        guard Leases.recordable(id), FS.isDirectory(heldDir) else { return }
        if h.isEmpty { forget(id); return }
        try FS.writeAtomically(heldPath(id), h.text, mode: 0o600)
    }

    func forget(_ id: String) {
        if Leases.recordable(id) { unlink(heldPath(id)) }
    }

    /// held/ for a directory made before it: a file for every owner of a
    /// lease or port, built aside and renamed in (the lock is held).
    func makeHeld() throws {
        let building = heldDir + ".building"
        try FS.removeTree(building)
        guard mkdir(building, 0o700) == 0 else { throw SysError("mkdir \(building)") }
        var holders: [String: Held] = [:]
        for (a, id) in all() { holders[id, default: Held()].leases.append(a) }
        for p in ports() { holders[p.id, default: Held()].ports.append(p.file) }
        for (id, h) in holders where Leases.recordable(id) {
            let h = Held(leases: h.leases.sorted(), ports: h.ports.sorted())
            try FS.writeAtomically(building + "/" + id, h.text, mode: 0o600)
        }
        guard rename(building, heldDir) == 0 else {
            let e = SysError("rename \(building) to \(heldDir)")
            try? FS.removeTree(building)
            throw e
        }
    }
}

extension String {
    func trimmingNewline() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == " " || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
