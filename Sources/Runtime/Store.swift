import Glibc
import JSON
import Spec
import SpecJSON
import Sys

// The state store: one directory per container under --root, holding
// state.json (written atomically), config.json as create read it, exec.fifo
// while the container is created and not yet started, and serving as the
// per-container lock.

/// What we keep about a container. Its status is not stored: it is derived
/// from the kernel each time (see `status`).
public struct Record: Codable, Equatable {
    public var id: String
    public var pid: Int32
    /// Start time of the init (clock ticks since boot), against pid reuse.
    public var startTime: UInt64
    public var bundle: String
    public var rootfs: String
    /// RFC 3339.
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
    /// Directories of the container's cgroup, keyed by controller ("" for
    /// the unified hierarchy), as the cgroup manager reports them.
    public var cgroups: [String: String]
    public var cgroupsPath: String?
    /// Namespace files of the init, for exec and for joining.
    public var namespaces: [String: String]?
    /// Set by `run` and by monitors that reap the init: its exit code.
    public var exitCode: Int32?
    /// Set until the init reports ready.
    public var creating: Bool?
    /// The bridged network's address, gateway, bridge, host veth and ports.
    public var network: [String: String]? = nil
    /// The resources after the last `update` (the config's until then).
    public var resources: Resources? = nil
    /// Set when the config create kept has poststart or poststop hooks:
    /// start and delete read that copy (to run them) only then.
    public var postHooks: Bool? = nil
    /// linux.intelRdt's resctrl group: "path", and what delete removes,
    /// "made" (the group made for this container) and "monitor" (its MON group).
    public var resctrl: [String: String]? = nil
}

// state.json is read and written by hand: every runtime command reads it,
// and Codable's generic machinery costs more than the rest of `state`.
extension Record {
    func json() throws -> JSONValue {
        var o = JSONObject()
        o["id"] = .string(id)
        o["pid"] = .int(Int64(pid))
        o["startTime"] = startTime <= UInt64(Int64.max) ? .int(Int64(startTime)) : .uint(startTime)
        o["bundle"] = .string(bundle)
        o["rootfs"] = .string(rootfs)
        o["created"] = .string(created)
        o["owner"] = .string(owner)
        if let a = annotations { o["annotations"] = Record.object(a) }
        o["cgroups"] = Record.object(cgroups)
        if let c = cgroupsPath { o["cgroupsPath"] = .string(c) }
        if let n = namespaces { o["namespaces"] = Record.object(n) }
        if let e = exitCode { o["exitCode"] = .int(Int64(e)) }
        if let c = creating { o["creating"] = .bool(c) }
        if let n = network { o["network"] = Record.object(n) }
        if let r = resources { o["resources"] = try JSONEncoding.encode(r) }
        if let h = postHooks { o["postHooks"] = .bool(h) }
        if let g = resctrl { o["resctrl"] = Record.object(g) }
        return .object(o)
    }

    init(json v: JSONValue, file: String) throws {
        guard case .object(let o) = v else { throw JSONError(file: file, message: "expected object, found \(v.kindName)") }
        func bad(_ key: String, _ want: String) -> JSONError {
            JSONError(file: file, path: key, message: o[key] == nil ? "required property missing" : "expected \(want), found \(o[key]!.kindName)")
        }
        func string(_ key: String) throws -> String {
            guard case .string(let s)? = o[key] else { throw bad(key, "string") }
            return s
        }
        func optString(_ key: String) throws -> String? { o[key] == nil || o[key] == .null ? nil : try string(key) }
        func int(_ key: String) throws -> Int64 {
            guard case .int(let i)? = o[key] else { throw bad(key, "integer") }
            return i
        }
        func map(_ key: String) throws -> [String: String]? {
            guard let m = o[key], m != .null else { return nil }
            guard case .object(let mo) = m else { throw bad(key, "object") }
            var out: [String: String] = [:]
            for (k, x) in mo.entries {
                guard case .string(let s) = x else {
                    throw JSONError(file: file, path: key + "." + k, message: "expected string, found \(x.kindName)")
                }
                out[k] = s
            }
            return out
        }
        id = try string("id")
        guard let p = Int32(exactly: try int("pid")) else { throw bad("pid", "32-bit integer") }
        pid = p
        switch o["startTime"] {
        case .int(let i)? where i >= 0: startTime = UInt64(i)
        case .uint(let u)?: startTime = u
        default: throw bad("startTime", "unsigned integer")
        }
        bundle = try string("bundle")
        rootfs = try string("rootfs")
        created = try string("created")
        owner = try string("owner")
        annotations = try map("annotations")
        guard let cg = try map("cgroups") else { throw bad("cgroups", "object") }
        cgroups = cg
        cgroupsPath = try optString("cgroupsPath")
        namespaces = try map("namespaces")
        if let e = o["exitCode"], e != .null {
            guard let x = Int32(exactly: try int("exitCode")) else { throw bad("exitCode", "32-bit integer") }
            exitCode = x
        }
        if let c = o["creating"], c != .null {
            guard case .bool(let b) = c else { throw bad("creating", "boolean") }
            creating = b
        }
        network = try map("network")
        if let r = o["resources"], r != .null { resources = try SpecJSON.resources(r, file: file) }
        if let h = o["postHooks"], h != .null {
            guard case .bool(let b) = h else { throw bad("postHooks", "boolean") }
            postHooks = b
        }
        resctrl = try map("resctrl")
    }

    /// A state.json's bytes as a record; `file` names it in errors. What
    /// `Store.load` reads through (and the fuzz target, Tests/Fuzz/FuzzState).
    public static func decode(_ bytes: [UInt8], file: String) throws -> Record {
        try Record(json: JSONValue.parse(bytes, file: file), file: file)
    }

    static func object(_ m: [String: String]) -> JSONValue {
        var o = JSONObject()
        for k in m.keys.sorted() { o[k] = .string(m[k]!) }
        return .object(o)
    }
}

/// Runtime's failures (Sys/Failure.swift), of `kind`.
func fail(_ m: String, _ kind: Failure.Kind = .failed) -> Failure { Failure(kind, m) }

public struct Store {
    public let root: String

    public init(root: String) { self.root = FS.absolute(root) }

    public func dir(_ id: String) -> String { root + "/" + id }
    public func statePath(_ id: String) -> String { dir(id) + "/state.json" }
    public func fifoPath(_ id: String) -> String { dir(id) + "/exec.fifo" }
    /// The config.json create read (Bundle.swift).
    public func configPath(_ id: String) -> String { dir(id) + "/config.json" }
    /// Compiled seccomp filters (Privileges/SeccompCache.swift). "@" is not
    /// in container ids, so no container can have this directory's name.
    public var seccompCacheDir: String { root + "/@seccomp" }

    /// Container ids: letters, digits and _ . + -, not "." or "..".
    public static func validate(id: String) throws {
        guard !id.isEmpty, id != ".", id != "..", id.count <= 1024,
              id.unicodeScalars.allSatisfy({ ($0.value >= 48 && $0.value <= 57) || ($0.value >= 65 && $0.value <= 90)
                  || ($0.value >= 97 && $0.value <= 122) || "_.+-".unicodeScalars.contains($0) }) else {
            throw fail("invalid container id \(quoted(id, max: 128)): use letters, digits and _ . + -", .invalid)
        }
    }

    public func exists(_ id: String) -> Bool { FS.isDirectory(dir(id)) }

    /// Creates the container's directory; exactly one of several concurrent
    /// creates of one id succeeds.
    public func reserve(_ id: String) throws {
        try FS.makeDirectories(root, mode: 0o711)
        guard mkdir(dir(id), 0o711) == 0 else {
            if errno == EEXIST { throw fail("container \(id) already exists", .exists) }
            throw SysError("mkdir \(dir(id))")
        }
    }

    public func lock(_ id: String) throws -> FileLock {
        guard exists(id) else { throw fail("container \(id) does not exist", .notFound) }
        return try FileLock.acquire(dir(id))
    }

    public func load(_ id: String) throws -> Record {
        let bytes: [UInt8]
        do { bytes = try FS.readBytes(statePath(id)) } catch {
            if !exists(id) { throw fail("container \(id) does not exist", .notFound) }
            throw fail("container \(id) is being created or its state is lost (delete --force removes it)")
        }
        do {
            return try Record.decode(bytes, file: statePath(id))
        } catch let e as JSONError {
            throw fail("state of \(id) is damaged: \(e)")
        }
    }

    public func save(_ r: Record) throws {
        try FS.writeExchanging(statePath(r.id), Array(try r.json().compact().utf8), spare: statePath(r.id) + ".spare", mode: 0o600)
    }

    public func ids() -> [String] {
        // Only container ids: not the seccomp cache, nor anything else put here.
        FS.listDirectory(root).filter { (try? Store.validate(id: $0)) != nil && FS.isDirectory(dir($0)) }
    }

    /// created, running, paused or stopped, from the kernel.
    public func status(_ r: Record) -> ContainerStatus {
        guard Proc.alive(r.pid, startTime: r.startTime) else { return .stopped }
        if r.creating == true { return .creating }
        if FS.exists(fifoPath(r.id)) { return .created }
        if isFrozen(r) { return .paused }
        return .running
    }

    /// Frozen: v1 freezer.state, else v2 cgroup.freeze.
    func isFrozen(_ r: Record) -> Bool {
        if let p = r.cgroups["freezer"] {
            return ((try? FS.readString(p + "/freezer.state")) ?? "").hasPrefix("FROZEN")
        }
        if let p = r.cgroups[""] {
            return ((try? FS.readString(p + "/cgroup.freeze")) ?? "").hasPrefix("1")
        }
        return false
    }

    /// The container's OCI state, with the status the kernel shows (or
    /// the one hooks are to see, with `status`).
    public func state(_ r: Record, status: ContainerStatus? = nil) -> State {
        let st = status ?? self.status(r)
        var a = r.annotations ?? [:]
        // The bridged network, while the container lives: our own keys.
        if status == nil, st.isLive, let n = r.network {
            if let addr = n["address"] { a[Annotation.ip] = String(addr.split(separator: "/").first ?? "") }
            if let g = n["gateway"] { a[Annotation.gateway] = g }
        }
        return State(id: r.id, status: st, pid: status == nil && !st.isLive ? 0 : Int(r.pid), bundle: r.bundle,
                     annotations: a.isEmpty ? nil : a)
    }

    /// The state as `state` and `list` print it: runc's fields.
    public func stateJSON(_ r: Record) -> JSONValue { state(r).json(rootfs: r.rootfs, created: r.created, owner: r.owner) }
}

// Written by hand, as state.json is (Record): every command prints or
// passes one.
extension State {
    /// With runc's rootfs, created and owner.
    public func json(rootfs: String, created: String, owner: String) -> JSONValue {
        var o = JSONObject()
        o["ociVersion"] = .string(ociVersion)
        o["id"] = .string(id)
        o["pid"] = .int(Int64(pid ?? 0))
        o["status"] = .string(status.rawValue)
        o["bundle"] = .string(bundle)
        o["rootfs"] = .string(rootfs)
        o["created"] = .string(created)
        o["owner"] = .string(owner)
        if let a = annotations, !a.isEmpty { o["annotations"] = Record.object(a) }
        return .object(o)
    }

    /// As hooks receive it on stdin: the spec's fields only.
    public func hookJSON() -> String {
        var o = JSONObject()
        o["ociVersion"] = .string(ociVersion)
        o["id"] = .string(id)
        o["status"] = .string(status.rawValue)
        o["pid"] = .int(Int64(pid ?? 0))
        o["bundle"] = .string(bundle)
        if let a = annotations, !a.isEmpty { o["annotations"] = Record.object(a) }
        return JSONValue.object(o).compact()
    }
}
