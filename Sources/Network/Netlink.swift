import CShim
import Glibc
import Sys

// A small rtnetlink layer: messages are built as bytes by pure functions
// (unit-tested byte for byte, no root needed) and sent over a NETLINK_ROUTE
// socket that waits for each request's acknowledgement.

/// Constants from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>,
/// <linux/if_addr.h> and <linux/veth.h>.
public enum NL {
    // Message types.
    public static let error: UInt16 = 2, done: UInt16 = 3
    public static let newLink: UInt16 = 16, delLink: UInt16 = 17, getLink: UInt16 = 18
    public static let newAddr: UInt16 = 20, newRoute: UInt16 = 24
    // Flags.
    public static let request: UInt16 = 0x1, ack: UInt16 = 0x4
    public static let replace: UInt16 = 0x100, excl: UInt16 = 0x200, create: UInt16 = 0x400
    // IFLA_*.
    public static let iflaIfname: UInt16 = 3, iflaMTU: UInt16 = 4, iflaMaster: UInt16 = 10
    public static let iflaLinkinfo: UInt16 = 18, iflaNetNsPid: UInt16 = 19, iflaNetNsFd: UInt16 = 28
    public static let infoKind: UInt16 = 1, infoData: UInt16 = 2, vethInfoPeer: UInt16 = 1
    // IFA_*.
    public static let ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2, ifaBroadcast: UInt16 = 4
    // RTA_*.
    public static let rtaOif: UInt16 = 4, rtaGateway: UInt16 = 5
    public static let rtTableMain: UInt8 = 254, rtprotBoot: UInt8 = 3, rtnUnicast: UInt8 = 1
    public static let scopeUniverse: UInt8 = 0
    public static let iffUp: UInt32 = 0x1
    public static let afUnspec: UInt8 = 0, afInet: UInt8 = 2
    public static let nestedFlag: UInt16 = 0x8000
}

/// Little-endian (host order on every Linux we run on) byte appends, and the
/// 4-byte alignment netlink wants.
struct Bytes {
    var b: [UInt8] = []
    mutating func u8(_ v: UInt8) { b.append(v) }
    mutating func u16(_ v: UInt16) { b.append(UInt8(v & 0xff)); b.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func pad() { while b.count % 4 != 0 { b.append(0) } }
}

/// Attributes (struct rtattr: len u16, type u16, data, padding to 4).
public struct Attributes {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func raw(_ type: UInt16, _ data: [UInt8]) {
        var w = Bytes()
        w.u16(UInt16(4 + data.count)); w.u16(type)
        w.b += data
        w.pad()
        bytes += w.b
    }
    public mutating func u32(_ type: UInt16, _ v: UInt32) { var w = Bytes(); w.u32(v); raw(type, w.b) }
    /// A NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING want.
    public mutating func string(_ type: UInt16, _ s: String) { raw(type, Array(s.utf8) + [0]) }
    public mutating func ipv4(_ type: UInt16, _ a: IPv4) { raw(type, a.octets) }
    /// A nested attribute; `prefix` (e.g. a peer's ifinfomsg) comes before
    /// the inner attributes.
    public mutating func nested(_ type: UInt16, prefix: [UInt8] = [], _ build: (inout Attributes) -> Void) {
        var inner = Attributes()
        build(&inner)
        raw(type, prefix + inner.bytes)
    }
}

/// One request: nlmsghdr + fixed header + attributes.
public struct NetlinkRequest {
    public var type: UInt16
    public var flags: UInt16
    public var header: [UInt8]
    public var attributes = Attributes()

    public func bytes(seq: UInt32) -> [UInt8] {
        var w = Bytes()
        w.u32(UInt32(16 + header.count + attributes.bytes.count))
        w.u16(type); w.u16(flags); w.u32(seq); w.u32(0)
        return w.b + header + attributes.bytes
    }

    /// struct ifinfomsg.
    public static func ifinfo(family: UInt8 = NL.afUnspec, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var w = Bytes()
        w.u8(family); w.u8(0); w.u16(0); w.i32(index); w.u32(flags); w.u32(change)
        return w.b
    }
}

/// The messages we send, as pure functions.
public enum RTNL {
    static let createFlags = NL.request | NL.ack | NL.create | NL.excl

    public static func newBridge(name: String) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newLink, flags: createFlags, header: NetlinkRequest.ifinfo())
        r.attributes.string(NL.iflaIfname, name)
        r.attributes.nested(NL.iflaLinkinfo) { $0.string(NL.infoKind, "bridge") }
        return r
    }

    /// A veth pair `name` <-> `peer`, both in the socket's namespace.
    public static func newVeth(name: String, peer: String, mtu: UInt32? = nil) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.newLink, flags: createFlags, header: NetlinkRequest.ifinfo())
        r.attributes.string(NL.iflaIfname, name)
        if let m = mtu { r.attributes.u32(NL.iflaMTU, m) }
        r.attributes.nested(NL.iflaLinkinfo) { info in
            info.string(NL.infoKind, "veth")
            info.nested(NL.infoData) { data in
                data.nested(NL.vethInfoPeer, prefix: NetlinkRequest.ifinfo()) { p in
                    p.string(NL.iflaIfname, peer)
                    if let m = mtu { p.u32(NL.iflaMTU, m) }
                }
            }
        }
        return r
    }

    /// RTM_NEWLINK on an existing link (setlink): any of master, up, a move
    /// to the network namespace of `nsPid`, a new name (with a move: the
    /// name it gets in the target namespace).
    public static func setLink(index: Int32, master: Int32? = nil, up: Bool? = nil, nsPid: Int32? = nil, name: String? = nil) -> NetlinkRequest {
        let flags: UInt32 = up == true ? NL.iffUp : 0
        let change: UInt32 = up == nil ? 0 : NL.iffUp
        var r = NetlinkRequest(type: NL.newLink, flags: NL.request | NL.ack,
                               header: NetlinkRequest.ifinfo(index: index, flags: flags, change: change))
        if let m = master { r.attributes.u32(NL.iflaMaster, UInt32(bitPattern: m)) }
        if let p = nsPid { r.attributes.u32(NL.iflaNetNsPid, UInt32(bitPattern: p)) }
        if let n = name { r.attributes.string(NL.iflaIfname, n) }
        return r
    }

    public static func getLink(name: String) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.getLink, flags: NL.request, header: NetlinkRequest.ifinfo())
        r.attributes.string(NL.iflaIfname, name)
        return r
    }

    public static func deleteLink(name: String) -> NetlinkRequest {
        var r = NetlinkRequest(type: NL.delLink, flags: NL.request | NL.ack, header: NetlinkRequest.ifinfo())
        r.attributes.string(NL.iflaIfname, name)
        return r
    }

    /// RTM_NEWADDR: `address/prefix` on link `index`, with its broadcast.
    public static func addAddress(index: Int32, _ a: IPv4, prefix: Int) -> NetlinkRequest {
        var w = Bytes()
        w.u8(NL.afInet); w.u8(UInt8(prefix)); w.u8(0); w.u8(NL.scopeUniverse); w.u32(UInt32(bitPattern: index))
        var r = NetlinkRequest(type: NL.newAddr, flags: createFlags, header: w.b)
        r.attributes.ipv4(NL.ifaLocal, a)
        r.attributes.ipv4(NL.ifaAddress, a)
        if prefix < 31 { r.attributes.ipv4(NL.ifaBroadcast, Subnet(a, prefix: prefix).broadcast) }
        return r
    }

    /// RTM_NEWROUTE: 0.0.0.0/0 via `gateway` out of link `index`, main table.
    public static func addDefaultRoute(gateway: IPv4, index: Int32) -> NetlinkRequest {
        var w = Bytes()
        w.u8(NL.afInet); w.u8(0); w.u8(0); w.u8(0)
        w.u8(NL.rtTableMain); w.u8(NL.rtprotBoot); w.u8(NL.scopeUniverse); w.u8(NL.rtnUnicast)
        w.u32(0)
        var r = NetlinkRequest(type: NL.newRoute, flags: createFlags, header: w.b)
        r.attributes.ipv4(NL.rtaGateway, gateway)
        r.attributes.u32(NL.rtaOif, UInt32(bitPattern: index))
        return r
    }
}

/// What the kernel answered to one request.
public enum NetlinkReply: Equatable {
    /// NLMSG_ERROR with 0 (an ack) or -errno.
    case ack(errno: Int32)
    /// RTM_NEWLINK: the link's index and flags.
    case link(index: Int32, flags: UInt32, name: String?)
    case other(type: UInt16)
}

/// Splits a datagram into messages for `seq`.
public func parseNetlink(_ buf: [UInt8], seq: UInt32? = nil) -> [NetlinkReply] {
    func u16(_ i: Int) -> UInt16 { UInt16(buf[i]) | UInt16(buf[i + 1]) << 8 }
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(buf[i + $1]) << (8 * UInt32($1)) } }
    var out: [NetlinkReply] = []
    var off = 0
    while off + 16 <= buf.count {
        let len = Int(u32(off))
        guard len >= 16, off + len <= buf.count else { break }
        let type = u16(off + 4)
        let mseq = u32(off + 8)
        if seq == nil || mseq == seq! {
            if type == NL.error, len >= 20 {
                out.append(.ack(errno: -Int32(bitPattern: u32(off + 16))))
            } else if type == NL.newLink, len >= 32 {
                var name: String?
                var a = off + 32
                while a + 4 <= off + len {
                    let alen = Int(u16(a)), atype = u16(a + 2) & ~NL.nestedFlag
                    guard alen >= 4, a + alen <= off + len else { break }
                    if atype == NL.iflaIfname {
                        name = String(decoding: buf[(a + 4)..<(a + alen)].prefix { $0 != 0 }, as: UTF8.self)
                    }
                    a += (alen + 3) & ~3
                }
                out.append(.link(index: Int32(bitPattern: u32(off + 20)), flags: u32(off + 24), name: name))
            } else {
                out.append(.other(type: type))
            }
        }
        off += (len + 3) & ~3
    }
    return out
}


/// A NETLINK_ROUTE socket in the namespace it was opened in.
public final class RouteSocket {
    public let fd: Int32
    var seq: UInt32 = 1

    public init() throws {
        fd = mc_netlink_open(Kernel.NETLINK_ROUTE)
        guard fd >= 0 else { throw SysError("open rtnetlink socket") }
    }

    /// A socket in the network namespace of `pid`: we enter it, open the
    /// socket and come back (the socket stays in the namespace it was made in).
    public static func inNamespace(ofPid pid: Int32) throws -> RouteSocket {
        let own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)
        guard own >= 0 else { throw SysError("open /proc/self/ns/net") }
        defer { close(own) }
        let target = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw SysError("open /proc/\(pid)/ns/net") }
        defer { close(target) }
        guard mc_setns(target, Kernel.CLONE_NEWNET) == 0 else {
            // Rootless: the namespace is its user namespace's, which only a
            // process inside it has rights in (inOwnUserNamespace).
            if errno == EPERM && geteuid() != 0 { return try inOwnUserNamespace(ofPid: pid) }
            throw SysError("enter network namespace of \(pid)")
        }
        let s = Result { try RouteSocket() }
        guard mc_setns(own, Kernel.CLONE_NEWNET) == 0 else {
            // Never carry on in the container's namespace.
            writeStderr("minicontainer: cannot return to the host network namespace: \(errnoText(errno))\n")
            _exit(125)
        }
        return try s.get()
    }

    init(fd: Int32) { self.fd = fd }

    /// A socket opened by a forked helper that enters the user namespace of
    /// `pid` (ours: we made it, so we have its rights there) and then its
    /// network namespace, and passes the socket back. The socket keeps the
    /// rights of the one who opened it, which was that namespace's root.
    static func inOwnUserNamespace(ofPid pid: Int32) throws -> RouteSocket {
        let user = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        guard user >= 0 else { throw SysError("open /proc/\(pid)/ns/user") }
        defer { close(user) }
        let net = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        guard net >= 0 else { throw SysError("open /proc/\(pid)/ns/net") }
        defer { close(net) }
        let (mine, theirs) = try Channel.pair()
        defer { mine.close() }
        let child = fork()
        if child < 0 { theirs.close(); throw SysError("fork") }
        if child == 0 {
            mine.close()
            guard mc_setns(user, Kernel.CLONE_NEWUSER) == 0, mc_setns(net, Kernel.CLONE_NEWNET) == 0 else {
                try? theirs.send(bytes: Array("E\(errno)".utf8))
                _exit(1)
            }
            let fd = mc_netlink_open(Kernel.NETLINK_ROUTE)
            if fd < 0 { try? theirs.send(bytes: Array("S\(errno)".utf8)); _exit(1) }
            try? theirs.send(bytes: Array("OK".utf8), fd: fd)
            _exit(0)
        }
        theirs.close()
        let got = try? mine.receiveBytes()
        var st: Int32 = 0
        while waitpid(child, &st, 0) < 0 && errno == EINTR {}
        guard let (bytes, fd) = got, bytes == Array("OK".utf8), fd >= 0 else {
            let msg = got.map { String(decoding: $0.0, as: UTF8.self) } ?? ""
            let e = Int32(msg.dropFirst()) ?? EPERM
            throw SysError(msg.hasPrefix("S") ? "open rtnetlink socket in the network namespace of \(pid)"
                           : "enter the user and network namespaces of \(pid)", errno: e)
        }
        return RouteSocket(fd: fd)
    }

    deinit { close(fd) }

    /// Sends `r` and returns the replies to it (up to its ack, or NLMSG_DONE).
    @discardableResult
    public func call(_ r: NetlinkRequest, what: String) throws -> [NetlinkReply] {
        seq &+= 1
        let s = seq
        let bytes = r.bytes(seq: s)
        let n = bytes.withUnsafeBytes { mc_netlink_send(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw SysError("send netlink request (\(what))") }
        var replies: [NetlinkReply] = []
        var buf = [UInt8](repeating: 0, count: 32768)
        while true {
            let got = buf.withUnsafeMutableBytes { mc_netlink_recv(fd, $0.baseAddress, $0.count) }
            guard got >= 0 else { throw SysError("receive netlink reply (\(what))") }
            for reply in parseNetlink(Array(buf[0..<got]), seq: s) {
                if case .ack(let e) = reply {
                    if e != 0 { throw SysError(what, errno: e) }
                    return replies
                }
                replies.append(reply)
                // A get without NLM_F_ACK ends with its one answer.
                if r.flags & NL.ack == 0 { return replies }
            }
        }
    }

    // MARK: operations

    /// The index of link `name`, or nil if there is none.
    public func index(of name: String) throws -> Int32? {
        do {
            for case .link(let i, _, _) in try call(RTNL.getLink(name: name), what: "find link \(name)") { return i }
            return nil
        } catch let e as SysError where e.errno == ENODEV {
            return nil
        }
    }

    public func requireIndex(_ name: String) throws -> Int32 {
        guard let i = try index(of: name) else { throw SysError("find link \(name)", errno: ENODEV) }
        return i
    }

    /// Creates bridge `name` unless it exists; returns its index.
    public func ensureBridge(_ name: String) throws -> (index: Int32, created: Bool) {
        if let i = try index(of: name) { return (i, false) }
        do {
            try call(RTNL.newBridge(name: name), what: "create bridge \(name)")
        } catch let e as SysError where e.errno == EEXIST {}
        return (try requireIndex(name), true)
    }

    public func createVeth(_ name: String, peer: String) throws {
        try call(RTNL.newVeth(name: name, peer: peer), what: "create veth \(name)/\(peer)")
    }

    public func setUp(_ index: Int32, what: String) throws {
        try call(RTNL.setLink(index: index, up: true), what: "set \(what) up")
    }

    public func setMaster(_ index: Int32, master: Int32, what: String) throws {
        try call(RTNL.setLink(index: index, master: master), what: "attach \(what) to its bridge")
    }

    /// Moves link `index` into the network namespace of `pid`, renamed `name`.
    public func move(_ index: Int32, toNamespaceOf pid: Int32, name: String? = nil) throws {
        try call(RTNL.setLink(index: index, nsPid: pid, name: name), what: "move link to the network namespace of \(pid)")
    }

    public func rename(_ index: Int32, to name: String) throws {
        try call(RTNL.setLink(index: index, name: name), what: "rename link to \(name)")
    }

    /// Adds an address; an existing one is fine.
    public func addAddress(_ index: Int32, _ a: IPv4, prefix: Int) throws {
        do {
            try call(RTNL.addAddress(index: index, a, prefix: prefix), what: "add address \(a)/\(prefix)")
        } catch let e as SysError where e.errno == EEXIST {}
    }

    public func addDefaultRoute(via gw: IPv4, index: Int32) throws {
        try call(RTNL.addDefaultRoute(gateway: gw, index: index), what: "add default route via \(gw)")
    }

    /// Deletes link `name`; true if it was there.
    @discardableResult
    public func deleteLink(_ name: String) throws -> Bool {
        do {
            try call(RTNL.deleteLink(name: name), what: "delete link \(name)")
            return true
        } catch let e as SysError where e.errno == ENODEV {
            return false
        }
    }
}
