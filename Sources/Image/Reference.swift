import Spec
import Sys

// Image references, parsed and normalised as Docker does (distribution's
// reference grammar): `busybox` is `docker.io/library/busybox:latest`,
// `localhost:5000/x:y` keeps its registry, `name@sha256:<hex>` pins a
// digest. A reference is only ever data: it is kept in index.json and
// compared, never made into a path or an option (only digests' hex become
// file names).

public struct Reference: Hashable, CustomStringConvertible {
    /// `docker.io`, `localhost:5000`, `registry.example.com`.
    public var domain: String
    /// `library/busybox`, `team/app`.
    public var path: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultDomain = "docker.io"
    public static let defaultTag = "latest"
    /// distribution's limit on the name (domain/path).
    public static let maxNameLength = 255

    /// `docker.io/library/busybox`.
    public var name: String { domain + "/" + path }

    /// The normalised form kept in the store: `docker.io/library/busybox:latest`,
    /// `localhost:5000/x@sha256:...`, `quay.io/a/b:v1@sha256:...`.
    public var description: String {
        var s = name
        if let t = tag { s += ":" + t }
        if let d = digest { s += "@" + d.description }
        return s
    }

    /// What Docker shows: `busybox:latest`, `team/app:v1`, others whole.
    public var familiar: String {
        var s = familiarName
        if let t = tag { s += ":" + t }
        if let d = digest { s += "@" + d.description }
        return s
    }

    /// `busybox`, `team/app`, `localhost:5000/x`.
    public var familiarName: String {
        guard domain == Reference.defaultDomain else { return name }
        if path.hasPrefix("library/") && !path.dropFirst(8).contains("/") { return String(path.dropFirst(8)) }
        return path
    }

    public init(domain: String, path: String, tag: String?, digest: Digest?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    /// Parses and normalises `text`; a name without tag or digest gets
    /// `:latest`. Throws a Failure(.invalid) that says what is wrong.
    public static func parse(_ text: String) throws -> Reference {
        func bad(_ why: String) -> Failure {
            Failure(.invalid, "invalid reference \(quoted(text, max: 128)): \(why)")
        }
        guard !text.isEmpty else { throw bad("empty") }
        guard text.utf8.count <= 512 else { throw bad("longer than 512 bytes") }
        for b in text.utf8 where !(b > 0x20 && b < 0x7f) {
            throw bad(b == 0x0a ? "contains a newline" : "contains a space, a control character or a non-ASCII byte")
        }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard let parsed = Digest(d), parsed.description == d else {
                throw bad("the digest must be sha256: and 64 lowercase hex digits, not \(quoted(d, max: 80))")
            }
            digest = parsed
            rest = rest[..<at]
        }
        var tag: String?
        // A tag is after the last ':' that follows the last '/' (a ':'
        // before it is a registry's port).
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard isTag(t) else {
                throw bad("the tag must be 1-128 of letters, digits, '_', '.', '-' (not starting with '.' or '-'), not \(quoted(t, max: 80))")
            }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw bad("no repository name") }
        if rest.utf8.count == 64, rest.utf8.allSatisfy({ isHex($0) && !($0 >= 65 && $0 <= 70) }) {
            throw bad("a repository name cannot be 64 hexadecimal digits (that is an image id)")
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var domain = defaultDomain
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: { $0.isUppercase }) {
            guard isDomain(first) else { throw bad("\(quoted(first, max: 80)) is not a registry host[:port]") }
            domain = first
            components.removeFirst()
        }
        for c in components {
            guard !c.isEmpty else { throw bad("empty path component") }
            if c.contains(where: { $0.isUppercase }) { throw bad("repository names must be lowercase") }
            guard isPathComponent(c) else {
                throw bad("path components are lowercase letters and digits separated by '.', '_', '__' or '-'s, not \(quoted(c, max: 80))")
            }
        }
        if domain == "index.docker.io" { domain = defaultDomain }
        if domain == defaultDomain && components.count == 1 { components.insert("library", at: 0) }
        let path = components.joined(separator: "/")
        guard domain.utf8.count + 1 + path.utf8.count <= maxNameLength else {
            throw bad("the repository name is longer than \(maxNameLength) bytes")
        }
        if tag == nil && digest == nil { tag = defaultTag }
        return Reference(domain: domain, path: path, tag: tag, digest: digest)
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    public static func isTag(_ t: String) -> Bool {
        let b = Array(t.utf8)
        guard !b.isEmpty, b.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { isAlnum(c) || c == UInt8(ascii: "_") }
        guard word(b[0]) else { return false }
        return b.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    static func isPathComponent(_ c: String) -> Bool {
        let b = Array(c.utf8)
        var i = 0
        func alnums() -> Bool {
            let s = i
            while i < b.count, isLowerAlnum(b[i]) { i += 1 }
            return i > s
        }
        guard alnums() else { return false }
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "."): i += 1
            case UInt8(ascii: "_"): i += 1; if i < b.count, b[i] == UInt8(ascii: "_") { i += 1 }
            case UInt8(ascii: "-"): while i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            default: return false
            }
            guard alnums() else { return false }
        }
        return true
    }

    /// `host(.host)*(:port)?` with host labels of letters, digits and inner
    /// '-', or a bracketed IPv6 address.
    static func isDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if let colon = d.lastIndex(of: ":"), !d.hasSuffix("]") {
            let port = d[d.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            host = d[..<colon]
        }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().utf8.allSatisfy { isHex($0) || $0 == UInt8(ascii: ":") }
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard !labels.isEmpty else { return false }
        for l in labels {
            let b = Array(l.utf8)
            guard !b.isEmpty, b.count <= 63, isAlnum(b.first!), isAlnum(b.last!),
                  b.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") }) else { return false }
        }
        return true
    }

    /// Whether a reference given by the user names an image only by id (or
    /// id prefix): `sha256:<hex>`, or 1-64 lowercase hex digits.
    static func idPrefix(_ text: String) -> String? {
        var t = Substring(text)
        if t.hasPrefix("sha256:") { t = t.dropFirst(7) }
        guard !t.isEmpty, t.count <= 64, t.utf8.allSatisfy({ isHex($0) && !($0 >= 65 && $0 <= 70) }) else { return nil }
        return String(t)
    }
}

@inline(__always) func isAlnum(_ c: UInt8) -> Bool {
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
}
@inline(__always) func isLowerAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 122) }
@inline(__always) func isHex(_ c: UInt8) -> Bool {
    (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
}
