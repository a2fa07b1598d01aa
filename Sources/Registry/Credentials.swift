import Glibc
import Image
import JSON
import Spec
import Sys

// Registry credentials: containers' auth.json (podman's, skopeo's, ours),
// which we read and write, and Docker's ~/.docker/config.json, which we only
// read. Both hold `{"auths": {"KEY": {"auth": base64("user:password")}}}`;
// a rewrite keeps every key and entry we do not understand. Credential
// helpers (`credsStore`, `credHelpers`) are not run: a caller can ask
// whether one is configured, to say why a pull went without credentials.

/// A username and password for a registry (HTTP Basic, or a token
/// server's), or an identity token (an OAuth2 refresh token Docker's
/// login keeps) with an empty username and password.
public struct Credential: Equatable {
    public var username: String
    public var password: String
    /// auth.json's `identitytoken`.
    public var identityToken: String?

    public init(username: String, password: String, identityToken: String? = nil) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
    }

    /// `Basic base64(user:password)`, an `Authorization` header's value.
    public var basicAuthorization: String {
        "Basic " + Base64.encode(Array((username + ":" + password).utf8))
    }
}

/// Printed, logged, dumped or shown by a failed test, a credential shows
/// its username only: secrets are never part of a message.
extension Credential: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "Credential(username: \(quoted(username, max: 64)), password: \(password.isEmpty ? "none" : "redacted")"
            + (identityToken == nil ? "" : ", identity token: redacted") + ")"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["username": username], displayStyle: .struct) }
}

/// Base64 with the standard alphabet (RFC 4648 section 4).
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// With `=` padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`; nil when it is not base64: a character outside
    /// the alphabet (whitespace, `-`, `_` included), `=` anywhere but at the
    /// end or more of it than the last group needs, or a length no
    /// encoding has. Missing padding is fine (`YQ` is `a`).
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        var end = chars.count
        while end > 0, chars[end - 1] == UInt8(ascii: "=") { end -= 1 }
        let pad = chars.count - end
        let needed = (4 - end % 4) % 4
        guard end % 4 != 1, pad <= needed else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(end / 4 * 3 + 2)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars[..<end] {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            default: return nil
            }
            acc = (acc << 6 | v) & 0xffffff
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}

// MARK: - auth.json

/// containers' auth.json (containers-auth.json(5)), or Docker's
/// config.json read the same way.
public struct AuthFile {
    /// Where it is read from and saved to.
    public var path: String
    /// The whole document, kept so that a rewrite loses nothing we do not read.
    public private(set) var document: JSONObject

    /// The largest file read.
    public static let maxBytes = 4 << 20

    /// An empty file at `path` (not read: see `load`).
    public init(path: String) {
        self.path = path
        document = JSONObject()
    }

    /// `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`,
    /// else `/run/containers/UID/auth.json` (podman's order; empty values
    /// are unset).
    public static func defaultPath(env: (String) -> String?, uid: uid_t) -> String {
        if let f = env("REGISTRY_AUTH_FILE"), !f.isEmpty { return f }
        if let d = env("XDG_RUNTIME_DIR"), !d.isEmpty { return d + "/containers/auth.json" }
        return "/run/containers/\(uid)/auth.json"
    }

    /// Docker's config: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`; nil when neither variable is set.
    public static func dockerConfigPath(env: (String) -> String?) -> String? {
        if let d = env("DOCKER_CONFIG"), !d.isEmpty { return d + "/config.json" }
        if let h = env("HOME"), !h.isEmpty { return h + "/.docker/config.json" }
        return nil
    }

    /// Reads the file at `path`; a missing file is an empty one. A
    /// malformed one is an error naming the file and the key.
    public static func load(path: String) throws -> AuthFile {
        guard let bytes = try ConfigFile.read(path, limit: maxBytes) else { return AuthFile(path: path) }
        return try parse(bytes, path: path)
    }

    /// Decodes a file's bytes and checks every entry (so that lookups
    /// need not throw): `auths` an object of objects, whose `auth` is
    /// base64 of `user:password`, and `identitytoken`, `username`,
    /// `password` strings; `credsStore` a string and `credHelpers` an
    /// object of strings. Other keys are kept, unread.
    public static func parse(_ bytes: [UInt8], path: String) throws -> AuthFile {
        let doc = try ConfigFile.parseJSON(bytes, file: path)
        guard case .object(let o) = doc else { throw ConfigFile.bad(path, "", "expected object, found \(doc.kindName)") }
        var f = AuthFile(path: path)
        f.document = o
        for (key, value) in try f.section("auths") {
            _ = try AuthFile.decode(value, file: path, at: ConfigFile.path("auths", key: key))
        }
        for (key, value) in try f.section("credHelpers") {
            guard case .string = value else {
                throw ConfigFile.bad(path, ConfigFile.path("credHelpers", key: key), "expected string, found \(value.kindName)")
            }
        }
        switch o["credsStore"] {
        case nil, .null?, .string?: break
        case let v?: throw ConfigFile.bad(path, "credsStore", "expected string, found \(v.kindName)")
        }
        return f
    }

    /// The entries of the object at top-level `key` (none when absent or null).
    func section(_ key: String) throws -> [(key: String, value: JSONValue)] {
        switch document[key] {
        case nil, .null?: return []
        case .object(let o)?: return o.entries
        case let v?: throw ConfigFile.bad(path, key, "expected object, found \(v.kindName)")
        }
    }

    /// The credential of one `auths` entry; nil when it has none (Docker
    /// writes `{}` for hosts its credential helper keeps).
    static func decode(_ value: JSONValue, file: String, at path: String) throws -> Credential? {
        guard case .object(let e) = value else {
            throw ConfigFile.bad(file, path, "expected object, found \(value.kindName)")
        }
        func string(_ key: String) throws -> String? {
            switch e[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s.isEmpty ? nil : s
            case let v?: throw ConfigFile.bad(file, path + "." + key, "expected string, found \(v.kindName)")
            }
        }
        let token = try string("identitytoken")
        var username = try string("username") ?? ""
        var password = try string("password") ?? ""
        if let auth = try string("auth") {
            guard let raw = Base64.decode(auth) else { throw ConfigFile.bad(file, path + ".auth", "not base64") }
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw ConfigFile.bad(file, path + ".auth", "not UTF-8 text")
            }
            guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
                throw ConfigFile.bad(file, path + ".auth", "not base64 of \"username:password\"")
            }
            username = String(text[..<colon])
            // Docker trims the NULs some old tools left at the end.
            password = String(text[text.index(after: colon)...].reversed().drop { $0 == "\u{0}" }.reversed())
        }
        if username.isEmpty && password.isEmpty && token == nil { return nil }
        return Credential(username: username, password: password, identityToken: token)
    }

    /// docker.io's other names: the index's (Docker's own key is
    /// `https://index.docker.io/v1/`) and the registry's endpoint.
    public static let dockerHubAliases: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io"]

    /// A host as compared: lower case, docker.io's aliases made docker.io.
    static func canonicalHost(_ host: Substring) -> String {
        let h = host.lowercased()
        return dockerHubAliases.contains(h) ? "docker.io" : h
    }

    /// An `auths` key as (host, namespace): `quay.io/org/app` is
    /// (quay.io, org/app); a key with a scheme is Docker's legacy form,
    /// in which only the host counts (`https://index.docker.io/v1/` is
    /// (docker.io, "")).
    static func normalize(_ key: String) -> (host: String, path: String) {
        var k = Substring(key)
        var legacy = false
        if let scheme = ["https://", "http://"].first(where: { k.lowercased().hasPrefix($0) }) {
            k = k.dropFirst(scheme.count)
            legacy = true
        }
        guard let slash = k.firstIndex(of: "/") else { return (canonicalHost(k), "") }
        let host = canonicalHost(k[..<slash])
        if legacy { return (host, "") }
        var rest = k[k.index(after: slash)...]
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        return (host, String(rest))
    }

    /// The credential for `host` (`quay.io`, `localhost:5000`, `docker.io`),
    /// nil when there is none. Keys match by host: `host`, `host/path`,
    /// `https://host`, `http://host/...`; docker.io is also
    /// `index.docker.io`, `https://index.docker.io/v1/` and
    /// `registry-1.docker.io`. With `repository` (`org/app`), a key
    /// `host/org` or `host/org/app` that is its namespace wins (the longest),
    /// and keys of other namespaces are not used; without it, a key of the
    /// bare host wins over namespaced ones. Among equals: the key spelled
    /// as `host` itself, then the file's order.
    public func credential(for host: String, repository: String? = nil) -> Credential? {
        let want = AuthFile.canonicalHost(Substring(host))
        var best: (rank: Int, exact: Bool, credential: Credential)?
        guard case .object(let auths)? = document["auths"] else { return nil }
        for (key, value) in auths.entries {
            let (h, p) = AuthFile.normalize(key)
            guard h == want else { continue }
            let rank: Int
            if p.isEmpty {
                rank = 0
            } else if let repo = repository {
                guard repo == p || repo.hasPrefix(p + "/") else { continue }
                rank = p.utf8.count + 1
            } else {
                rank = -1
            }
            guard let c = (try? AuthFile.decode(value, file: path, at: key)) ?? nil else { continue }
            let exact = key == (p.isEmpty ? host : host + "/" + p)
            if let b = best, b.rank > rank || (b.rank == rank && (b.exact || !exact)) { continue }
            best = (rank, exact, c)
        }
        return best?.credential
    }

    /// The credential helper configured for `host` (its `credHelpers`
    /// entry, else `credsStore`), which we do not run; nil when none is.
    public func helper(for host: String) -> String? {
        let want = AuthFile.canonicalHost(Substring(host))
        for (key, value) in (try? section("credHelpers")) ?? [] where AuthFile.normalize(key).host == want {
            if case .string(let s) = value, !s.isEmpty { return s }
        }
        if case .string(let s)? = document["credsStore"], !s.isEmpty { return s }
        return nil
    }

    /// The keys of `auths`, in the file's order.
    public var keys: [String] {
        guard case .object(let auths)? = document["auths"] else { return [] }
        return auths.keys
    }

    /// Sets the credential of `key`: a registry `host[:port]`, or
    /// `host[:port]/namespace` for one namespace only. Other keys of an
    /// existing entry are kept (its `username` and `password` are dropped:
    /// `auth` replaces them). A username may not hold a ':' (it could not be
    /// read back).
    public mutating func set(_ key: String, _ credential: Credential) throws {
        guard AuthFile.isKey(key) else {
            throw Failure(.invalid, "invalid registry \(quoted(key, max: 128)): expected host[:port] or host[:port]/namespace")
        }
        guard !credential.username.contains(":") else {
            throw Failure(.invalid, "a registry username cannot contain ':'")
        }
        var auths = JSONObject()
        if case .object(let o)? = document["auths"] { auths = o }
        var entry = JSONObject()
        if case .object(let o)? = auths[key] { entry = o }
        entry["username"] = nil
        entry["password"] = nil
        if credential.username.isEmpty && credential.password.isEmpty {
            entry["auth"] = nil
        } else {
            entry["auth"] = .string(Base64.encode(Array((credential.username + ":" + credential.password).utf8)))
        }
        entry["identitytoken"] = credential.identityToken.map { .string($0) }
        auths[key] = .object(entry)
        document["auths"] = .object(auths)
    }

    /// Removes the credentials of `key`: the entry itself and every other
    /// key that means the same host and namespace (`docker.io` also removes
    /// `https://index.docker.io/v1/`), so that a lookup finds none after.
    /// Whether there was any.
    @discardableResult
    public mutating func remove(_ key: String) -> Bool {
        guard case .object(var auths)? = document["auths"] else { return false }
        let want = AuthFile.normalize(key)
        let gone = auths.keys.filter { $0 == key || AuthFile.normalize($0) == want }
        for k in gone { auths[k] = nil }
        document["auths"] = .object(auths)
        return !gone.isEmpty
    }

    /// `host[:port]` (as a reference's domain) with an optional
    /// `/namespace` of reference path components.
    static func isKey(_ key: String) -> Bool {
        let host = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let h = host.first, RegistryConfig.isHost(String(h)) else { return false }
        guard host.count == 2 else { return true }
        // Reference's path grammar, on a domain that adds no `library/`.
        guard let r = try? Reference.parse("localhost/" + host[1]) else { return false }
        return r.path == host[1] && r.tag == Reference.defaultTag && r.digest == nil && !host[1].contains(":")
    }

    /// Writes the file: pretty JSON, mode 0600, atomically (a temporary
    /// file beside it, created exclusively and never through a symlink,
    /// then renamed over it: a symlink at `path` is replaced, not written
    /// through). Missing parent directories are made, 0700; a parent that
    /// is not a directory is an error.
    public func save() throws {
        let dir: String
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            dir = "."
        }
        var st = stat()
        if stat(dir, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw Failure(.invalid, "\(path): \(dir) is not a directory")
            }
        } else if errno == ENOENT {
            try FS.makeDirectories(dir, mode: 0o700)
        } else {
            throw SysError("stat \(dir)")
        }
        let bytes = Array(JSONValue.object(document).pretty().utf8)
        try FS.writeAtomically(path, bytes, mode: 0o600, durable: true)
    }
}

/// The credential for `host` (`repository` as in `AuthFile.credential`):
/// from the auth file at `authFile` (a malformed one is an error), else
/// from Docker's config.json (`AuthFile.dockerConfigPath`). Docker's file
/// is Docker's: when it cannot be read it is passed over with a warning,
/// as Docker's CLI does. A credential helper configured for the host
/// (which we do not run) is warned about when no credential is found.
public func lookupCredential(host: String, repository: String? = nil, authFile: String,
                             env: (String) -> String?, warn: (String) -> Void = { _ in }) throws -> Credential? {
    let auth = try AuthFile.load(path: authFile)
    if let c = auth.credential(for: host, repository: repository) { return c }
    var helpers: [(String, String)] = []
    if let h = auth.helper(for: host) { helpers.append((authFile, h)) }
    if let dockerPath = AuthFile.dockerConfigPath(env: env) {
        do {
            let docker = try AuthFile.load(path: dockerPath)
            if let c = docker.credential(for: host, repository: repository) { return c }
            if let h = docker.helper(for: host) { helpers.append((dockerPath, h)) }
        } catch {
            warn("ignoring Docker's config: \(error)")
        }
    }
    for (file, h) in helpers {
        warn("\(file): credential helper \(quoted(h, max: 64)) for \(quoted(host, max: 128)) is not supported; going on without credentials")
    }
    return nil
}
