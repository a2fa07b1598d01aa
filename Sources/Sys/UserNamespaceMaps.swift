import CShim
import Glibc
import Spec

// The ids of a user namespace, as an unprivileged user may have them: their
// own uid and gid, written directly (setgroups denied first, as the kernel
// requires), or more through newuidmap/newgidmap (Debian's uidmap), the
// setuid helpers that grant the ranges /etc/subuid and /etc/subgid give the
// user. Root writes any mapping directly.

/// Who is running us: from the kernel and /etc/passwd (a static binary has
/// no NSS; a user /etc/passwd lacks is known by uid alone).
public struct Identity: Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var name: String?
    public var home: String?

    public init(uid: UInt32, gid: UInt32, name: String?, home: String?) {
        self.uid = uid
        self.gid = gid
        self.name = name
        self.home = home
    }

    public static func current() -> Identity {
        let uid = geteuid(), gid = getegid()
        var id = Identity(uid: uid, gid: gid, name: nil, home: nil)
        if let text = try? FS.readString("/etc/passwd") {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                if f.count >= 7, UInt32(f[2]) == uid {
                    id.name = String(f[0])
                    id.home = String(f[5])
                    break
                }
            }
        }
        return id
    }
}

public enum SubordinateIDs {
    /// The ranges (start, count) `/etc/subuid`-style `text` grants the user
    /// `name` or `uid`, in file order; malformed lines are skipped, as
    /// shadow's tools skip them.
    public static func ranges(_ text: String, name: String?, uid: UInt32) -> [(start: UInt32, count: UInt32)] {
        var out: [(UInt32, UInt32)] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, let start = UInt32(f[1]), let count = UInt32(f[2]), count > 0,
                  UInt64(start) + UInt64(count) <= UInt64(UInt32.max) else { continue }
            let owner = String(f[0])
            guard owner == name || owner == String(uid) else { continue }
            out.append((start, count))
        }
        return out
    }

    public static func ranges(file: String, identity: Identity) -> [(start: UInt32, count: UInt32)] {
        guard let text = try? FS.readString(file) else { return [] }
        return ranges(text, name: identity.name, uid: identity.uid)
    }

    /// A rootless container's mappings: its root is the user, ids from 1 up
    /// are the user's subordinate ranges in order; without ranges, the user
    /// alone (`complete` false: the caller warns).
    public static func containerMappings(own: UInt32, ranges: [(start: UInt32, count: UInt32)]) -> [IDMapping] {
        var maps = [IDMapping(containerID: 0, hostID: own, size: 1)]
        var next: UInt32 = 1
        for r in ranges {
            guard UInt64(next) + UInt64(r.count) <= UInt64(UInt32.max) else { break }
            maps.append(IDMapping(containerID: next, hostID: r.start, size: r.count))
            next += r.count
        }
        return maps
    }
}

public enum UserNamespaceMaps {
    /// Whether we may write any mapping (root in the initial user namespace).
    public static var privileged: Bool { geteuid() == 0 && Rootless.inInitialUserNamespace }

    /// Writes the uid and gid mappings of the new user namespace of `pid`:
    /// directly when privileged or when they map only our own ids, else
    /// through newuidmap/newgidmap. Each file is written once, whole.
    public static func write(pid: Int32, uid: [IDMapping]?, gid: [IDMapping]?) throws {
        let uid = uid ?? [], gid = gid ?? []
        if privileged {
            try writeFile(pid, "uid_map", uid)
            try writeFile(pid, "gid_map", gid)
            return
        }
        let me = Identity.current()
        let ownUID = uid.isEmpty || (uid.count == 1 && uid[0].hostID == me.uid && uid[0].size == 1)
        let ownGID = gid.isEmpty || (gid.count == 1 && gid[0].hostID == me.gid && gid[0].size == 1)
        if ownUID { try writeFile(pid, "uid_map", uid) } else { try helper("newuidmap", pid, uid, file: "/etc/subuid", me) }
        if ownGID {
            // An unprivileged gid_map needs setgroups denied first (user_namespaces(7)).
            if !gid.isEmpty {
                try writeText("/proc/\(pid)/setgroups", "deny")
                try writeFile(pid, "gid_map", gid)
            }
        } else {
            try helper("newgidmap", pid, gid, file: "/etc/subgid", me)
        }
    }

    static func text(_ m: [IDMapping]) -> String {
        m.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
    }

    static func writeFile(_ pid: Int32, _ file: String, _ maps: [IDMapping]) throws {
        guard !maps.isEmpty else { return }
        let t = text(maps)
        try writeText("/proc/\(pid)/\(file)", t,
                      shown: "\(file) (\(t.split(separator: "\n").joined(separator: ", ")))")
    }

    static func writeText(_ path: String, _ t: String, shown: String? = nil) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open \(path)") }
        defer { close(fd) }
        let bytes = Array(t.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw SysError("write \(shown ?? path)") }
    }

    static func helper(_ name: String, _ pid: Int32, _ maps: [IDMapping], file: String, _ me: Identity) throws {
        let shown = maps.map { "\($0.containerID) \($0.hostID) \($0.size)" }.joined(separator: ", ")
        guard let path = Program.find([name]) else {
            throw Failure(.failed, "mappings beyond your own id (\(shown)) need \(name), from the uidmap package, and ranges in \(file)")
        }
        var args = ["\(pid)"]
        for m in maps { args += ["\(m.containerID)", "\(m.hostID)", "\(m.size)"] }
        do {
            try Program.run(path, args)
        } catch let f as Failure {
            throw Failure(.failed, "\(f.message) (are these ids granted to \(me.name ?? String(me.uid)) in \(file)?)")
        }
    }
}

/// Rootless mode: how the runtime runs when it is not root of the host.
public enum Rootless {
    /// --rootless auto|true|false (runc's flag); auto: rootless when not
    /// root, or root of a user namespace other than the initial one.
    public enum Mode: String { case auto, yes = "true", no = "false" }

    public static var inInitialUserNamespace: Bool {
        guard let t = try? FS.readString("/proc/self/uid_map") else { return true }
        let f = t.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return f.count == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
    }

    public static func resolve(_ mode: Mode) -> Bool {
        switch mode {
        case .yes: return true
        case .no: return false
        case .auto: return geteuid() != 0 || !inInitialUserNamespace
        }
    }
}

extension SubordinateIDs {
    /// The caller's whole id space for a rootless user namespace, uid and
    /// gid: 0 is the caller's own id, 1.. the ranges /etc/subuid and
    /// /etc/subgid grant the caller (by name or uid, both files keyed by the
    /// user), in file order. `complete` is false when either file grants
    /// nothing: the mappings are then the caller's own ids alone, both
    /// (Engine's rootlessMappings maps a container the same way).
    public static func rootlessMappings(identity: Identity, subuid: String?, subgid: String?)
        -> (uid: [IDMapping], gid: [IDMapping], complete: Bool) {
        let u = subuid.map { ranges($0, name: identity.name, uid: identity.uid) } ?? []
        let g = subgid.map { ranges($0, name: identity.name, uid: identity.uid) } ?? []
        // Either file without ranges: the own ids alone, both (as the run
        // path maps a container: the layers' ids must be the container's).
        let complete = !u.isEmpty && !g.isEmpty
        return (containerMappings(own: identity.uid, ranges: complete ? u : []),
                containerMappings(own: identity.gid, ranges: complete ? g : []), complete)
    }

    /// rootlessMappings for the user running us, from /etc/subuid and /etc/subgid.
    public static func rootlessMappings() -> (uid: [IDMapping], gid: [IDMapping], complete: Bool) {
        rootlessMappings(identity: Identity.current(), subuid: try? FS.readString("/etc/subuid"),
                         subgid: try? FS.readString("/etc/subgid"))
    }

    /// The host id container id `id` lands on under `maps`, nil when no
    /// mapping covers it.
    public static func hostID(_ id: UInt32, _ maps: [IDMapping]) -> UInt32? {
        for m in maps where id >= m.containerID && UInt64(id) < UInt64(m.containerID) + UInt64(m.size) {
            return m.hostID + (id - m.containerID)
        }
        return nil
    }
}

extension UserNamespaceMaps {
    /// Runs `body` as root of a new user namespace with these mappings: a
    /// forked child unshares a new user namespace (CLONE_NEWUSER and nothing
    /// else) and says so; its maps are written from here (write(pid:uid:gid:),
    /// newuidmap/newgidmap for ranges); told, it becomes uid and gid 0 there
    /// and runs `body`, whose bytes come back as the result. The body's
    /// error comes back as it was thrown (a one-line Failure, Failure.wire);
    /// a child that dies or exits otherwise is an error naming `what`. The
    /// child is always reaped, and dies with us (PR_SET_PDEATHSIG). fork(2),
    /// not a raw clone: the layer unpackers call this from threads, and
    /// glibc's fork leaves malloc usable in the child. `body` runs in a copy
    /// of this process: what it changes in memory is not seen here.
    @discardableResult
    public static func resultInMappedNamespace(uid: [IDMapping], gid: [IDMapping], what: String,
                                               _ body: () throws -> [UInt8]) throws -> [UInt8] {
        // sync: one byte each way ("unshared", "maps written"; a socket, so
        // a dead peer is EPIPE, not SIGPIPE); out: the child's tag byte
        // ("K" and the result, or "E" and Failure.wire).
        var sync: [Int32] = [0, 0], out: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sync) == 0 else {
            throw SysError("socketpair (\(what))")
        }
        guard mc_pipe2(&out, O_CLOEXEC) == 0 else {
            let e = SysError("pipe (\(what))")
            close(sync[0]); close(sync[1])
            throw e
        }
        let pid = fork()
        if pid < 0 {
            let e = SysError("fork (\(what))")
            for fd in sync + out { close(fd) }
            throw e
        }
        if pid == 0 {
            close(sync[1])
            close(out[0])
            Kernel.dieWithParent()
            func fail(_ error: Error) -> Never {
                let b = [UInt8(ascii: "E")] + (error as? Failure ?? Failure(.failed, "\(error)")).wire
                _ = b.withUnsafeBytes { Glibc.write(out[1], $0.baseAddress, $0.count) }
                _exit(1)
            }
            var b: UInt8 = mc_unshare(Kernel.CLONE_NEWUSER) == 0 ? 1 : 0
            let unshareErrno = errno
            _ = send(sync[0], &b, 1, Int32(MSG_NOSIGNAL))
            if b == 0 { fail(SysError("create a user namespace (\(what))", errno: unshareErrno)) }
            var n = 0
            repeat { n = recv(sync[0], &b, 1, 0) } while n < 0 && errno == EINTR
            guard n == 1 else { _exit(2) }  // the parent gave up (its maps failed)
            close(sync[0])
            do {
                guard mc_setresgid(0, 0, 0) == 0 else { throw SysError("become gid 0 in the user namespace (\(what))") }
                _ = setgroups(0, nil)  // refused where setgroups is denied: then there are none to drop
                guard mc_setresuid(0, 0, 0) == 0 else { throw SysError("become uid 0 in the user namespace (\(what))") }
                let result = [UInt8(ascii: "K")] + (try body())
                try FS.writeAll(fd: out[1], result, what: "the result of \(what)")
                _exit(0)
            } catch {
                fail(error)
            }
        }
        close(sync[0])
        close(out[1])
        var mapError: Error?
        var b: UInt8 = 0
        var n = 0
        repeat { n = recv(sync[1], &b, 1, 0) } while n < 0 && errno == EINTR
        if n == 1 && b == 1 {
            do { try write(pid: pid, uid: uid, gid: gid) } catch { mapError = error }
            if mapError == nil { _ = send(sync[1], &b, 1, Int32(MSG_NOSIGNAL)) }
        }
        close(sync[1])
        var report: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let k = buf.withUnsafeMutableBytes { read(out[0], $0.baseAddress, $0.count) }
            if k < 0 && errno == EINTR { continue }
            if k <= 0 { break }
            report += buf[0..<k]
        }
        close(out[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if let mapError { throw mapError }
        if report.first == UInt8(ascii: "E") {
            let w = Array(report.dropFirst())
            throw Failure(wire: w) ?? Failure(.failed, "\(what): \(String(decoding: w, as: UTF8.self))")
        }
        let sig = status & 0x7f, code = (status >> 8) & 0xff
        if sig != 0 { throw Failure(.failed, "\(what): the helper in the user namespace was killed by signal \(sig)") }
        if code != 0 || report.first != UInt8(ascii: "K") {
            throw Failure(.failed, "\(what): the helper in the user namespace exited with status \(code)")
        }
        return Array(report.dropFirst())
    }

    /// inMappedNamespace with no result.
    public static func inMappedNamespace(uid: [IDMapping], gid: [IDMapping], what: String,
                                         _ body: () throws -> Void) throws {
        try resultInMappedNamespace(uid: uid, gid: gid, what: what) { try body(); return [] }
    }

    /// Runs `body` where files owned by the caller's subordinate ids can be
    /// made, changed and removed: here when privileged, else as root of a
    /// user namespace with the caller's whole mapping (rootlessMappings).
    public static func asMappedRoot(what: String, _ body: () throws -> Void) throws {
        _ = try resultAsMappedRoot(what: what) { try body(); return [] }
    }

    /// asMappedRoot with the body's bytes as its result.
    public static func resultAsMappedRoot(what: String, _ body: () throws -> [UInt8]) throws -> [UInt8] {
        if privileged { return try body() }
        let m = SubordinateIDs.rootlessMappings()
        return try resultInMappedNamespace(uid: m.uid, gid: m.gid, what: what, body)
    }
}

extension FS {
    /// removeTree for a tree whose files may belong to the caller's
    /// subordinate ids (a rootless image layer, a rootless container's
    /// upper dir): removed as root of the caller's mapped user namespace
    /// when not privileged, directly otherwise.
    /// What the user owns goes first, from here; only a tree that still
    /// holds what they cannot remove costs the user namespace.
    public static func removeTreeMapped(_ path: String) throws {
        if UserNamespaceMaps.privileged { return try removeTree(path) }
        if (try? removeTree(path)) != nil { return }
        try UserNamespaceMaps.asMappedRoot(what: "remove \(path)") { try removeTree(path) }
    }
}
