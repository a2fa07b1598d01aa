import Glibc
import Sys

// Published host ports held by a socket while the container runs, as Docker's
// proxy and podman's conmon hold them: the DNAT rules alone would take over a
// port a host service listens on (and a service started later would bind a
// port that in fact goes to the container). A bound socket makes the kernel
// refuse both: our bind fails on a port in use, and anyone's bind fails on a
// port we hold. The socket is never listened on (the DNAT rule sends the
// traffic to the container before any socket lookup), and has no
// SO_REUSEADDR or SO_REUSEPORT, so no other socket can share the port.

/// Sockets bound to published host ports; closing them releases the ports.
/// Held by the container's owner (the foreground `run` or the monitor),
/// which lives exactly as long as the container. They are O_CLOEXEC, and the
/// init closes every fd above stdio besides: the container never gets one
/// (a socket of the host's network namespace would let it connect from there).
public struct HeldPorts {
    public private(set) var fds: [Int32] = []
    /// The mappings with the host ports the kernel chose for host port 0.
    public private(set) var mappings: [PortMapping] = []

    public init() {}

    /// Binds a socket for each mapping, all or none. Host port 0 asks for a
    /// free port (one the kernel chooses, reported in `mappings`). A port in
    /// use is an error naming it; `owner` names the container that
    /// publishes it, when one of ours does.
    /// `reuseAddress` (SO_REUSEADDR) for a check of ports a user-mode
    /// helper then binds itself: a connection it forwarded leaves the port
    /// in TIME_WAIT, which is no user of it.
    public static func hold(_ ms: [PortMapping], owner: (PortMapping) -> String? = { _ in nil }, reuseAddress: Bool = false) throws -> HeldPorts {
        var h = HeldPorts()
        do {
            for m in ms { try h.bind(m, owner: owner, reuseAddress: reuseAddress) }
        } catch {
            h.release()
            throw error
        }
        return h
    }

    mutating func bind(_ m: PortMapping, owner: (PortMapping) -> String?, reuseAddress: Bool = false) throws {
        let fd = socket(AF_INET, Int32(m.proto == "udp" ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket for host port \(m)") }
        if reuseAddress && m.proto == "tcp" {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(m.hostPort)).bigEndian
        a.sin_addr.s_addr = (m.hostIP?.value ?? 0).bigEndian
        let r = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 {
            let e = errno
            close(fd)
            let port = (m.hostIP.map { "\($0):" } ?? "") + "\(m.hostPort)/\(m.proto)"
            if e == EADDRINUSE, let o = owner(m) { throw Failure(.exists, "host port \(port) is already published by container \(o)") }
            if e == EADDRNOTAVAIL { throw Failure(.invalid, "cannot publish host port \(port): \(m.hostIP?.description ?? "") is not an address of this host") }
            // "...: address already in use", as podman says.
            throw Failure(e == EADDRINUSE ? .exists : .failed, "cannot publish host port \(port)", errno: e)
        }
        var got = m
        if m.hostPort == 0 {
            var b = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &b) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            guard ok == 0 else { let e = SysError("getsockname for host port \(m)"); close(fd); throw e }
            got.hostPort = Int(UInt16(bigEndian: b.sin_port))
        }
        fds.append(fd)
        mappings.append(got)
    }

    /// Closes the sockets: the ports are free again.
    public mutating func release() {
        for fd in fds { close(fd) }
        fds = []
    }
}

extension Network {
    /// The container that publishes host port `m` (its reservation under
    /// `dir`), for the message when the port is taken.
    public static func publisher(of m: PortMapping, dir: String) -> String? {
        leases(dir).clashes(with: m).first?.id
    }
}
