import Spec

// `--add-host NAME:IP`, `--dns IP`, `--dns-search DOMAIN`, `--dns-option OPT`:
// what the generated /etc/hosts and /etc/resolv.conf say. They travel to the
// engine as annotations (comma-separated lists), whose every entry is checked
// here against a strict alphabet: nothing a user gives can add a line, a
// field or a comment to those files.

/// An IPv4 dotted quad (decimal, no leading zeros) or an IPv6 address
/// (hex groups, at most one "::", an optional IPv4 tail).
public func isIPAddress(_ s: String) -> Bool {
    func v4(_ t: Substring) -> Bool {
        let o = t.split(separator: ".", omittingEmptySubsequences: false)
        return o.count == 4 && o.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && (p == "0" || p.first != "0") && UInt8(p) != nil
        }
    }
    if v4(Substring(s)) { return true }
    guard s.contains(":"), s.utf8.count <= 45 else { return false }
    var t = Substring(s)
    var groups = 0
    if let last = t.lastIndex(of: ":"), t[t.index(after: last)...].contains(".") {
        guard v4(t[t.index(after: last)...]) else { return false }
        groups += 2
        t = t[...last]
        if t.hasSuffix("::") { } else { t = t.dropLast() }
    }
    let halves = t.split(separator: "::", omittingEmptySubsequences: false)
    guard halves.count <= 2 else { return false }
    for h in halves where !h.isEmpty {
        for g in h.split(separator: ":", omittingEmptySubsequences: false) {
            guard !g.isEmpty, g.count <= 4, g.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit }) else { return false }
            groups += 1
        }
    }
    return halves.count == 2 ? groups <= 7 : groups == 8
}

/// A host or domain name as /etc/hosts and resolv.conf take it: letters,
/// digits, "-", "_" and "." between labels, at most 253 bytes.
public func isHostName(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 253, !s.hasPrefix("."), !s.hasPrefix("-"), !s.contains("..") else { return false }
    return s.unicodeScalars.allSatisfy { $0.isASCIIAlnum || "-_.".unicodeScalars.contains($0) }
}

/// The DNS flags, compiled into their annotations.
public func dnsAnnotations(_ f: RunFlags) throws -> [String: String] {
    var ann: [String: String] = [:]
    var hosts: [String] = []
    for h in f.addHosts {
        // NAME:IP (an IPv6 address keeps its colons) or NAME=IP, as Docker.
        let sep = h.firstIndex(where: { $0 == ":" || $0 == "=" })
        guard let s = sep else { throw CompileError("invalid --add-host \(quoted(h)): use NAME:IP") }
        let name = String(h[..<s])
        var ip = String(h[h.index(after: s)...])
        if ip.hasPrefix("[") && ip.hasSuffix("]") { ip = String(ip.dropFirst().dropLast()) }
        guard isHostName(name) else {
            throw CompileError("invalid --add-host \(quoted(h)): \(quoted(name)) is not a host name (letters, digits, - _ .)")
        }
        if ip == "host-gateway" {
            throw CompileError("invalid --add-host \(quoted(h)): host-gateway is not supported (as podman 4.3): give the address")
        }
        guard isIPAddress(ip) else { throw CompileError("invalid --add-host \(quoted(h)): \(quoted(ip)) is not an IP address") }
        hosts.append(name + ":" + ip)
    }
    for d in f.dns where !isIPAddress(d) {
        throw CompileError("invalid --dns \(quoted(d)): not an IP address")
    }
    for d in f.dnsSearch where d != "." && !isHostName(d) {
        throw CompileError("invalid --dns-search \(quoted(d)): not a domain name (letters, digits, - _ ., or . for none)")
    }
    if f.dnsSearch.contains("."), f.dnsSearch.count > 1 {
        throw CompileError("--dns-search . (no search domains) cannot be given with other search domains")
    }
    for o in f.dnsOptions where o.isEmpty || o.utf8.count > 64 || !o.unicodeScalars.allSatisfy({ $0.isASCIIAlnum || "-_.:".unicodeScalars.contains($0) }) {
        throw CompileError("invalid --dns-option \(quoted(o)): use an option of resolv.conf such as ndots:2 or rotate")
    }
    if !hosts.isEmpty { ann[Annotation.addHosts] = hosts.joined(separator: ",") }
    if !f.dns.isEmpty { ann[Annotation.dns] = f.dns.joined(separator: ",") }
    if !f.dnsSearch.isEmpty { ann[Annotation.dnsSearch] = f.dnsSearch.joined(separator: ",") }
    if !f.dnsOptions.isEmpty { ann[Annotation.dnsOptions] = f.dnsOptions.joined(separator: ",") }
    return ann
}
