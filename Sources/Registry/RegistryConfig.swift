import Glibc
import Image
import JSON
import Spec
import Sys

// Which registries a pull talks to and how: /etc/minicontainer/registries.json
// (or $MINICONTAINER_REGISTRIES_CONF), a small JSON object:
//
//     {"default": "docker.io", "search": ["quay.io"], "insecure": ["localhost:5000"],
//      "connectTimeout": 30, "stallTimeout": 30, "retryTimeout": 60}
//
// Every key is optional and an unknown key is an error (a typo must not be
// taken for the default silently). A registry is named as a reference's
// domain is: `host[:port]` with a `.` or a port, or `localhost`, so that a
// reference made with it reads back with the same registry.

public struct RegistryConfig: Equatable {
    /// Where a name without a registry (`busybox`, `team/app`) is looked for first.
    public var defaultRegistry = "docker.io"
    /// Where it is looked for next, in order.
    public var search: [String] = []
    /// Registries spoken to over plain HTTP (`host[:port]`, matched exactly;
    /// localhost is not insecure unless listed).
    public var insecure: [String] = []
    /// Registries never pulled from (containers' `blocked`): a pull that
    /// would ask one fails before any traffic.
    public var blocked: [String] = []
    /// Seconds to connect (TCP and TLS).
    public var connectTimeout = 30.0
    /// Seconds a transfer may make no progress.
    public var stallTimeout = 30.0
    /// Seconds of retries (429, 5xx, dropped connections) before giving up.
    public var retryTimeout = 60.0

    public init() {}

    public static let defaultPath = "/etc/minicontainer/registries.json"
    /// The largest file read.
    public static let maxBytes = 1 << 20
    /// The longest timeout taken, in seconds.
    public static let maxTimeout = 3600.0
    /// The most registries in `search` or `insecure`.
    public static let maxHosts = 256
    static let keys = ["default", "search", "insecure", "blocked", "connectTimeout", "stallTimeout", "retryTimeout"]

    /// `$MINICONTAINER_REGISTRIES_CONF` (when set and not empty), else
    /// /etc/minicontainer/registries.json.
    public static func path(env: (String) -> String?) -> String {
        if let p = env("MINICONTAINER_REGISTRIES_CONF"), !p.isEmpty { return p }
        return defaultPath
    }

    /// Reads the file at `path`; a missing one gives the defaults. Errors
    /// name the file and the key.
    public static func load(path: String) throws -> RegistryConfig {
        guard let bytes = try ConfigFile.read(path, limit: maxBytes) else { return RegistryConfig() }
        return try parse(bytes, file: path)
    }

    /// Decodes a file's bytes (`file` names it in errors). A null value is
    /// the key's default.
    public static func parse(_ bytes: [UInt8], file: String) throws -> RegistryConfig {
        let doc = try ConfigFile.parseJSON(bytes, file: file)
        guard case .object(let o) = doc else { throw ConfigFile.bad(file, "", "expected object, found \(doc.kindName)") }
        var c = RegistryConfig()
        for (key, value) in o.entries {
            func bad(_ path: String, _ why: String) -> Failure { ConfigFile.bad(file, path, why) }
            guard keys.contains(key) else {
                throw bad(quoted(key, max: 64), "unknown key (the keys are \(keys.joined(separator: ", ")))")
            }
            if case .null = value { continue }
            func host(_ v: JSONValue, _ path: String) throws -> String {
                guard case .string(let s) = v else { throw bad(path, "expected string, found \(v.kindName)") }
                guard isHost(s) else {
                    throw bad(path, "\(quoted(s, max: 128)) is not a registry: expected host[:port] with a '.' or a port, or localhost")
                }
                return canonical(s)
            }
            func hosts(_ v: JSONValue) throws -> [String] {
                guard case .array(let a) = v else { throw bad(key, "expected array, found \(v.kindName)") }
                guard a.count <= maxHosts else { throw bad(key, "more than \(maxHosts) registries") }
                return try a.enumerated().map { try host($0.element, key + "[\($0.offset)]") }
            }
            func seconds(_ v: JSONValue) throws -> Double {
                let d: Double
                switch v {
                case .int(let i): d = Double(i)
                case .uint(let u): d = Double(u)
                case .double(let x): d = x
                default: throw bad(key, "expected number, found \(v.kindName)")
                }
                guard d > 0, d <= maxTimeout else {
                    throw bad(key, "must be more than 0 and at most \(Int(maxTimeout)) seconds, not \(JSONValue.double(d).compact())")
                }
                return d
            }
            switch key {
            case "default": c.defaultRegistry = try host(value, key)
            case "search": c.search = try hosts(value)
            case "insecure": c.insecure = try hosts(value)
            case "blocked": c.blocked = try hosts(value)
            case "connectTimeout": c.connectTimeout = try seconds(value)
            case "stallTimeout": c.stallTimeout = try seconds(value)
            default: c.retryTimeout = try seconds(value)
            }
        }
        return c
    }

    /// Whether `host` (`host[:port]`, as in a reference) is to be spoken to
    /// over plain HTTP: listed in `insecure`, exactly.
    public func isInsecure(_ host: String) -> Bool { insecure.contains(host) }

    /// Whether `host` is listed in `blocked`.
    public func isBlocked(_ host: String) -> Bool { blocked.contains(host) }

    /// Whether `h` names a registry the way a reference's domain does:
    /// `Reference.parse("h/x/y")` takes it as the domain, unchanged
    /// (`index.docker.io` is docker.io's other name).
    public static func isHost(_ h: String) -> Bool {
        guard !h.isEmpty, !h.contains("/"), let r = try? Reference.parse(h + "/x/y") else { return false }
        return r.path == "x/y" && r.domain == canonical(h) && r.tag == Reference.defaultTag && r.digest == nil
    }

    /// `index.docker.io` is `docker.io`, as Reference has it.
    static func canonical(_ h: String) -> String { h == "index.docker.io" ? Reference.defaultDomain : h }

    /// The references a user's image name may mean, in the order to try
    /// them. A name that says its registry (`localhost:5000/x`,
    /// `quay.io/a/b`: a first component with a `.` or a `:`, `localhost`,
    /// or an upper-case letter, as Reference reads it) means only itself.
    /// Any other (`busybox`, `team/app:1`) is tried on the default
    /// registry, then on each search registry (each once): the same path,
    /// with `library/` before a one-component name on docker.io and on the
    /// default registry. Without a tag or digest the tag is `latest`.
    /// Throws Reference's error for a name that is not a reference.
    public func candidates(_ text: String) throws -> [Reference] {
        let parsed = try Reference.parse(text)
        guard let slash = text.firstIndex(of: "/") else {
            return try resolve(parsed, path: nil, text: text)
        }
        let first = text[..<slash]
        if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: { $0.isUppercase }) {
            return [parsed]
        }
        return try resolve(parsed, path: parsed.path, text: text)
    }

    /// `parsed` (read as docker.io's) on each registry: `path` is the
    /// path everywhere, or nil for a one-component name.
    func resolve(_ parsed: Reference, path: String?, text: String) throws -> [Reference] {
        let single = path == nil
        let name = path ?? String(parsed.path.dropFirst("library/".count))
        var seen: Set<String> = []
        var out: [Reference] = []
        for registry in [defaultRegistry] + search where seen.insert(registry).inserted {
            let p = single && (registry == Reference.defaultDomain || registry == defaultRegistry) ? "library/" + name : name
            guard registry.utf8.count + 1 + p.utf8.count <= Reference.maxNameLength else {
                throw Failure(.invalid, "invalid reference \(quoted(text, max: 128)): the repository name on \(registry) is longer than \(Reference.maxNameLength) bytes")
            }
            out.append(Reference(domain: registry, path: p, tag: parsed.tag, digest: parsed.digest))
        }
        return out
    }
}

// MARK: - Small files

/// Reading the small configuration files of this module.
enum ConfigFile {
    /// The bytes of the regular file at `path`, at most `limit`; nil when
    /// it does not exist. Anything else that is wrong (not a regular file,
    /// too large, unreadable) is an error naming the file. Opened
    /// non-blocking, so that a fifo put there cannot hang us.
    static func read(_ path: String, limit: Int) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SysError("open \(path)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SysError("stat \(path)") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw Failure(.invalid, "\(path): not a regular file") }
        guard st.st_size <= limit else { throw Failure(.invalid, "\(path): larger than \(limit >> 20) MiB") }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SysError("read \(path)")
            }
            if n == 0 { return out }
            guard out.count + n <= limit else { throw Failure(.invalid, "\(path): larger than \(limit >> 20) MiB") }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Parses a JSON document, its errors as Failures naming `file`.
    static func parseJSON(_ bytes: [UInt8], file: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(bytes, file: file)
        } catch let e as JSONError {
            throw Failure(.invalid, e.description)
        }
    }

    /// `a["k"]`: a key path with the key quoted (registry keys hold dots).
    static func path(_ base: String, key: String) -> String { base + "[" + quoted(key, max: 100) + "]" }

    /// An error about the value at `path` of `file`.
    static func bad(_ file: String, _ path: String, _ why: String) -> Failure {
        Failure(.invalid, file + (path.isEmpty ? "" : ": " + path) + ": " + why)
    }
}
