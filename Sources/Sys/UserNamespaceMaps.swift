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
