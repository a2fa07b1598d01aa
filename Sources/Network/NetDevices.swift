import CShim
import Glibc
import Spec
import Sys

// linux.netDevices: host interfaces moved into a container's new network
// namespace at create (renamed if the spec says), with their permanent
// global addresses (the move drops every address, the spec says to keep
// those) and up. Once created, they are the namespace's: the spec forbids
// moving them out before it goes, and when it goes the kernel sends a
// physical device back to the initial namespace and destroys a virtual one
// (veth, macvlan...). Only a create that fails moves them back, identified
// by the index they have in the container's namespace (recorded as they
// were moved, in a namespace nothing of the container's has run in yet),
// never by a name.

/// An address as the host had it: ifaddrmsg's fields and the raw address
/// attributes (IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST), any family.
public struct InterfaceAddress: Equatable {
    public var family: UInt8
    public var prefix: UInt8
    public var scope: UInt8
    /// IFA_FLAGS when the kernel sent it, else ifaddrmsg's 8-bit flags.
    public var flags: UInt32
    public var index: Int32
    public var attributes: [(type: UInt16, data: [UInt8])]

    public static func == (a: InterfaceAddress, b: InterfaceAddress) -> Bool {
        a.family == b.family && a.prefix == b.prefix && a.scope == b.scope && a.flags == b.flags && a.index == b.index
            && a.attributes.map { $0.type } == b.attributes.map { $0.type } && a.attributes.map { $0.data } == b.attributes.map { $0.data }
    }

    /// IFA_F_PERMANENT: configured, not from autoconfiguration or DHCP lifetimes.
    public static let permanent: UInt32 = 0x80

    /// What the spec says moves with the device: permanent, global scope.
    public var kept: Bool { flags & InterfaceAddress.permanent != 0 && scope == NL.scopeUniverse }
}

/// A device moved in: what moving it back takes.
public struct MovedDevice: Equatable {
    public var hostName: String
    /// Its index in the container's network namespace, found as it arrived.
    public var index: Int32
    public var addresses: [InterfaceAddress]
    public var wasUp: Bool
}

extension NL {
    public static let getAddr: UInt16 = 22
    /// NLM_F_ROOT | NLM_F_MATCH.
    public static let dump: UInt16 = 0x300
    public static let ifaFlags: UInt16 = 8
}

extension RTNL {
    /// RTM_GETLINK for every link of the socket's namespace.
    public static func dumpLinks() -> NetlinkRequest {
        NetlinkRequest(type: NL.getLink, flags: NL.request | NL.dump, header: NetlinkRequest.ifinfo())
    }

    /// RTM_GETADDR for every address, of every family.
    public static func dumpAddresses() -> NetlinkRequest {
        NetlinkRequest(type: NL.getAddr, flags: NL.request | NL.dump, header: [NL.afUnspec, 0, 0, 0, 0, 0, 0, 0])
    }

    /// RTM_NEWADDR: `a` again, on link `index` (its attributes as they were;
    /// the IPv4 label, the old name's, is left for the kernel to make).
    public static func addAddress(_ a: InterfaceAddress, index: Int32) -> NetlinkRequest {
        var w = Bytes()
        w.u8(a.family); w.u8(a.prefix); w.u8(0); w.u8(a.scope); w.u32(UInt32(bitPattern: index))
        var r = NetlinkRequest(type: NL.newAddr, flags: createFlags, header: w.b)
        for (type, data) in a.attributes where [NL.ifaAddress, NL.ifaLocal, NL.ifaBroadcast].contains(type) {
            r.attributes.raw(type, data)
        }
        return r
    }

    /// Moves link `index` into the network namespace open at `nsFd`, renamed `name`.
    public static func moveLink(index: Int32, nsFd: Int32, name: String?) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newLink, flags: NL.request | NL.ack, header: NetlinkRequest.ifinfo(index: index))
        r.attributes.u32(NL.iflaNetNsFd, UInt32(bitPattern: nsFd))
        if let n = name { r.attributes.string(NL.iflaIfname, n) }
        return r
    }
}

/// The RTM_NEWADDR messages of a dump, as addresses. Each message is one
/// netlink message (header included); others are skipped.
public func parseAddresses(_ messages: [[UInt8]]) -> [InterfaceAddress] {
    var out: [InterfaceAddress] = []
    for m in messages {
        func u16(_ i: Int) -> UInt16 { UInt16(m[i]) | UInt16(m[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(m[i + $1]) << (8 * UInt32($1)) } }
        guard m.count >= 24, u16(4) == NL.newAddr else { continue }
        var a = InterfaceAddress(family: m[16], prefix: m[17], scope: m[19], flags: UInt32(m[18]),
                                 index: Int32(bitPattern: u32(20)), attributes: [])
        var at = 24
        while at + 4 <= m.count {
            let len = Int(u16(at)), type = u16(at + 2) & ~NL.nestedFlag
            guard len >= 4, at + len <= m.count else { break }
            let data = Array(m[(at + 4)..<(at + len)])
            if type == NL.ifaFlags && data.count == 4 {
                a.flags = (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[$1]) << (8 * UInt32($1)) }
            } else {
                a.attributes.append((type, data))
            }
            at += (len + 3) & ~3
        }
        out.append(a)
    }
    return out
}

extension RouteSocket {
    /// The messages answering dump request `r`, up to NLMSG_DONE.
    public func dumpMessages(_ r: NetlinkRequest, what: String) throws -> [[UInt8]] {
        seq &+= 1
        let s = seq
        let bytes = r.bytes(seq: s)
        let n = bytes.withUnsafeBytes { mc_netlink_send(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw SysError("send netlink request (\(what))") }
        var out: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buf.withUnsafeMutableBytes { mc_netlink_recv(fd, $0.baseAddress, $0.count) }
            guard got >= 0 else { throw SysError("receive netlink reply (\(what))") }
            var off = 0
            while off + 16 <= got {
                let len = (0..<4).reduce(0) { $0 | Int(buf[off + $1]) << (8 * $1) }
                guard len >= 16, off + len <= got else { break }
                let type = UInt16(buf[off + 4]) | UInt16(buf[off + 5]) << 8
                let mseq = (0..<4).reduce(UInt32(0)) { $0 | UInt32(buf[off + 8 + $1]) << (8 * UInt32($1)) }
                if mseq == s {
                    if type == NL.done { return out }
                    if type == NL.error, len >= 20 {
                        let e = -(0..<4).reduce(Int32(0)) { $0 | Int32(buf[off + 16 + $1]) << (8 * Int32($1)) }
                        throw SysError(what, errno: e)
                    }
                    out.append(Array(buf[off..<(off + len)]))
                }
                off += (len + 3) & ~3
            }
        }
    }

    /// Every link of the socket's namespace: index -> (flags, name).
    public func links() throws -> [Int32: (flags: UInt32, name: String?)] {
        var out: [Int32: (flags: UInt32, name: String?)] = [:]
        for m in try dumpMessages(RTNL.dumpLinks(), what: "list links") {
            for case .link(let i, let flags, let name) in parseNetlink(m) { out[i] = (flags, name) }
        }
        return out
    }

    /// The addresses of link `index`.
    public func addresses(of index: Int32) throws -> [InterfaceAddress] {
        try parseAddresses(dumpMessages(RTNL.dumpAddresses(), what: "list addresses")).filter { $0.index == index }
    }
}

public enum NetDevices {
    /// Moves each of `devices` (host name -> settings) into the network
    /// namespace `container` (a socket in it, kept open by the caller so
    /// that the namespace outlives a dying init), in host-name order. Each
    /// moved device is appended to `moved` as soon as it is in, so that the
    /// caller can move it back if anything fails after. `nsFd` is that
    /// namespace's file.
    public static func moveIn(_ devices: [String: NetDevice], container: RouteSocket, nsFd: Int32,
                              moved: inout [MovedDevice]) throws {
        let host = try RouteSocket()
        // All of them must be there before any moves (the spec: check that
        // the move is possible).
        let present = Set(try host.links().values.compactMap { $0.name })
        for name in devices.keys.sorted() where !present.contains(name) {
            throw Failure(.failed, "linux.netDevices.\(name): there is no interface \(quoted(name)) on the host")
        }
        for name in devices.keys.sorted() {
            let target = devices[name]?.name
            let at = "linux.netDevices.\(name)"
            guard let (index, link) = try host.links().first(where: { $0.value.name == name }) else {
                throw Failure(.failed, "\(at): there is no interface \(quoted(name)) on the host")
            }
            let addresses = try host.addresses(of: index).filter { $0.kept }
            let before = Set(try container.links().keys)
            // The move alone, then the rename in the container: in one
            // request the kernel moves first and renames after, so a name
            // taken there would fail the request with the device moved.
            do {
                try host.call(RTNL.moveLink(index: index, nsFd: nsFd, name: nil), what: "\(at): move \(name) into the container")
            } catch let e as SysError where e.errno == EEXIST {
                throw Failure(.failed, "\(at): an interface named \(quoted(name)) already exists in the container")
            }
            // The one link that arrived (its index may differ from the host's).
            let arrived = try container.links().keys.filter { !before.contains($0) }
            guard arrived.count == 1 else { throw Failure(.failed, "\(at): \(name) is not in the container after its move") }
            moved.append(MovedDevice(hostName: name, index: arrived[0], addresses: addresses, wasUp: link.flags & NL.iffUp != 0))
            if let t = target, t != name {
                do {
                    try container.rename(arrived[0], to: t)
                } catch let e as SysError where e.errno == EEXIST {
                    throw Failure(.failed, "\(at): an interface named \(quoted(t)) already exists in the container")
                }
            }
            for a in addresses {
                do {
                    try container.call(RTNL.addAddress(a, index: arrived[0]), what: "\(at): restore an address of \(name)")
                } catch let e as SysError where e.errno == EEXIST {}
            }
            try container.setUp(arrived[0], what: "\(at): \(name)")
        }
    }

    /// Moves `moved` back from the namespace of `container` to ours under
    /// their host names, with their addresses and up state, after a failed
    /// create. Best effort: what cannot be moved is reported on stderr.
    public static func moveBack(_ moved: [MovedDevice], container: RouteSocket) {
        guard !moved.isEmpty else { return }
        let own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)
        guard own >= 0, let host = try? RouteSocket() else {
            Log.warn("linux.netDevices: cannot move \(moved.map { $0.hostName }.joined(separator: ", ")) back: \(errnoText(errno))")
            if own >= 0 { close(own) }
            return
        }
        defer { close(own) }
        for d in moved.reversed() {
            do {
                // Down (a device that is up cannot be renamed), its host name
                // back while it is still in the namespace we control, then the move.
                try? container.call(RTNL.setLink(index: d.index, up: false), what: "set \(d.hostName) down")
                let renamed = (try? container.rename(d.index, to: d.hostName)) != nil
                do {
                    try container.call(RTNL.moveLink(index: d.index, nsFd: own, name: nil), what: "move \(d.hostName) back")
                } catch let e as SysError where e.errno == EEXIST {
                    // Its name was taken on the host meanwhile: the kernel's
                    // own fallback, and its addresses are not ours to put on
                    // whatever has the name now.
                    try container.call(RTNL.moveLink(index: d.index, nsFd: own, name: "dev%d"), what: "move \(d.hostName) back")
                    Log.warn("linux.netDevices: \(d.hostName) is back on the host under another name (its name was taken), without its addresses")
                    continue
                }
                // Only under its own name is it found again (by a name that is ours).
                guard renamed, let index = try host.index(of: d.hostName) else {
                    Log.warn("linux.netDevices: \(d.hostName) is back on the host under its name in the container, without its addresses")
                    continue
                }
                for a in d.addresses {
                    do { try host.call(RTNL.addAddress(a, index: index), what: "restore an address of \(d.hostName)") }
                    catch let e as SysError where e.errno == EEXIST {}
                }
                if d.wasUp { try host.setUp(index, what: d.hostName) }
            } catch {
                Log.warn("linux.netDevices: cannot move \(d.hostName) back to the host: \(error)")
            }
        }
    }
}
