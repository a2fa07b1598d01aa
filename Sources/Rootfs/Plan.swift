import Spec
import Sys

// The pure half of the filesystem setup: what to mount and create, decided
// from the spec (and from /proc text for cgroups) without a system call.

/// How a spec mount is performed.
public enum MountKind: Equatable {
    /// bind or rbind of a host path.
    case bind
    /// The "cgroup" pseudo type: cgroup2 on a v2 host, a tmpfs of hierarchies on v1.
    case cgroup
    /// A filesystem of this type (tmpfs, proc, sysfs, devpts, mqueue, ...).
    case filesystem(String)
}

/// One spec mount, normalized.
public struct PlannedMount: Equatable {
    public var kind: MountKind
    /// The host path for binds (made absolute against the bundle), else the spec source or the type.
    public var source: String
    /// Clean absolute path inside the container.
    public var destination: String
    public var options: MountOptions
    /// The spec asked for an idmapped mount (uidMappings/gidMappings, or the
    /// idmap/ridmap options): the runtime makes its detached tree (IDMap.swift).
    public var idmapped: Bool

    public init(kind: MountKind, source: String, destination: String, options: MountOptions, idmapped: Bool = false) {
        self.kind = kind
        self.source = source
        self.destination = destination
        self.options = options
        self.idmapped = idmapped
    }

    /// What error messages call this mount: "mount proc on /proc", "mount /srv on /data".
    public var label: String {
        switch kind {
        case .bind: return "mount \(source) on \(destination)"
        case .cgroup: return "mount cgroup on \(destination)"
        case .filesystem(let t): return "mount \(t) on \(destination)"
        }
    }
}

/// A device node to create.
public struct DeviceNode: Equatable {
    public var path: String
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    public var fileType: UInt32
    public var major: Int64
    public var minor: Int64
    /// Permission bits only.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(path: String, fileType: UInt32, major: Int64, minor: Int64, mode: UInt32 = 0o666,
                uid: UInt32 = 0, gid: UInt32 = 0) {
        self.path = path
        self.fileType = fileType
        self.major = major
        self.minor = minor
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }

    public static let charType: UInt32 = 0o020000
    public static let blockType: UInt32 = 0o060000
    public static let fifoType: UInt32 = 0o010000
}

/// One line of /proc/self/cgroup.
public struct ProcCgroup: Equatable {
    public var hierarchy: Int
    /// Controllers of a v1 hierarchy ("cpu", "name=systemd"); empty for v2.
    public var controllers: [String]
    public var path: String
}

extension Rootfs {
    /// The default devices runc creates in every container's /dev.
    public static let defaultDevices: [DeviceNode] = [
        DeviceNode(path: "/dev/null", fileType: DeviceNode.charType, major: 1, minor: 3),
        DeviceNode(path: "/dev/zero", fileType: DeviceNode.charType, major: 1, minor: 5),
        DeviceNode(path: "/dev/full", fileType: DeviceNode.charType, major: 1, minor: 7),
        DeviceNode(path: "/dev/random", fileType: DeviceNode.charType, major: 1, minor: 8),
        DeviceNode(path: "/dev/urandom", fileType: DeviceNode.charType, major: 1, minor: 9),
        DeviceNode(path: "/dev/tty", fileType: DeviceNode.charType, major: 5, minor: 0),
    ]

    /// The /dev symlinks (link path, target); /dev/core only when the host has /proc/kcore.
    public static func devSymlinks(hostHasKcore: Bool) -> [(link: String, target: String)] {
        var links = [("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
                     ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2")]
        if hostHasKcore { links.append(("/dev/core", "/proc/kcore")) }
        return links.map { (link: $0.0, target: $0.1) }
    }

    /// Splits a clean absolute path into its parent and last component.
    /// (At its last "/" byte: Path.split.)
    static func splitPath(_ clean: String) -> (parent: String, name: String) {
        Path.split(clean)
    }

    /// The spec's mounts, classified, with bind sources made absolute against the bundle.
    public static func plan(mounts: [Mount], bundle: String) -> [PlannedMount] {
        mounts.map { m in
            let options = parseOptions(m.options ?? [])
            let type = m.type ?? ""
            let kind: MountKind
            if options.isBind || type == "bind" || type == "none" || type.isEmpty {
                kind = .bind
            } else if type == "cgroup" {
                kind = .cgroup
            } else {
                kind = .filesystem(type)
            }
            var source = m.source ?? ""
            var o = options
            if kind == .bind {
                if !Path.isAbsolute(source) { source = Path.clean(bundle + "/" + source) }
                o.flags |= MS.bind
            } else if source.isEmpty {
                source = type
            }
            let idmapped = m.idmap != nil
            return PlannedMount(kind: kind, source: source, destination: Path.clean(m.destination), options: o,
                                idmapped: idmapped)
        }
    }

    /// runc sets up /dev (default devices, symlinks, ptmx) unless /dev is a bind mount.
    public static func needsDevSetup(_ planned: [PlannedMount]) -> Bool {
        !planned.contains { $0.destination == "/dev" && $0.kind == .bind }
    }

    /// The device nodes to create: the defaults (when /dev is ours), then
    /// `linux.devices`, a spec device replacing a default at the same path.
    public static func deviceNodes(_ devices: [Device], defaults: Bool) throws -> [DeviceNode] {
        var nodes: [DeviceNode] = []
        for d in devices {
            let type: UInt32
            switch d.type {
            case "c", "u": type = DeviceNode.charType
            case "b": type = DeviceNode.blockType
            case "p": type = DeviceNode.fifoType
            default: throw SysError("create device \(d.path): unknown type \"\(d.type)\"", errno: 22)
            }
            if type != DeviceNode.fifoType && (d.major == nil || d.minor == nil) {
                throw SysError("create device \(d.path): major and minor are required", errno: 22)
            }
            nodes.append(DeviceNode(path: Path.clean(d.path), fileType: type, major: d.major ?? 0, minor: d.minor ?? 0,
                                    mode: (d.fileMode ?? 0o666) & 0o7777, uid: d.uid ?? 0, gid: d.gid ?? 0))
        }
        guard defaults else { return nodes }
        let specPaths = Set(nodes.map { $0.path })
        return defaultDevices.filter { !specPaths.contains($0.path) } + nodes
    }

    /// makedev(3): the dev_t of a major and minor number.
    public static func makedev(_ major: Int64, _ minor: Int64) -> UInt64 {
        let ma = UInt64(truncatingIfNeeded: major), mi = UInt64(truncatingIfNeeded: minor)
        return ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
    }

    /// Whether /proc/self/uid_map text is the initial namespace's identity map.
    public static func isInitialIDMap(_ text: String) -> Bool {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) == ["0", "0", "4294967295"]
    }

    /// Whether a mount may go to `destination` (the real path inside the
    /// container): nothing inside /proc except the files lxcfs emulates, and
    /// on /proc itself only procfs. As runc's checkProcMount.
    public static func procMountAllowed(destination: String, kind: MountKind, sourceIsProcfs: Bool) -> Bool {
        if destination == "/proc" {
            switch kind {
            case .filesystem("proc"): return true
            case .bind: return sourceIsProcfs
            default: return false
            }
        }
        guard Path.isWithin(destination, "/proc"), destination != "/proc" else { return true }
        let lxcfs: Set = ["/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                          "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
                          "/proc/sys/kernel/ns_last_pid"]
        return lxcfs.contains(destination)
    }

    /// Decodes mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
    static func unescapeMountInfo(_ s: Substring) -> String { MountInfo.unescape(ArraySlice(s.utf8)) }

    /// Parses /proc/self/mountinfo; malformed lines are skipped.
    public static func parseMountInfo(_ text: String) -> [MountInfo] { MountInfo.parse(Array(text.utf8)) }

    /// Parses /proc/self/cgroup ("ID:controllers:path").
    public static func parseProcCgroup(_ text: String) -> [ProcCgroup] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3, let id = Int(f[0]) else { return nil }
            return ProcCgroup(hierarchy: id, controllers: f[1].split(separator: ",").map(String.init), path: String(f[2]))
        }
    }

    /// The host's cgroup hierarchies to show in the container's
    /// /sys/fs/cgroup (v1 and hybrid hosts): those mounted directly under
    /// `base` (/sys/fs/cgroup), each with its directory name there
    /// ("memory", "cpu,cpuacct", "systemd", "unified") and the host
    /// directory of our own cgroup in it, to bind. Later mounts of the same
    /// name win.
    public static func cgroupHierarchies(mountInfo: [MountInfo], procCgroup: [ProcCgroup], base: String = "/sys/fs/cgroup")
        -> [(name: String, hierarchy: CgroupHierarchy, hostPath: String)] {
        cgroupHierarchies(mounts: CgroupHierarchy.all(in: mountInfo), procCgroup: procCgroup, base: base)
    }

    /// The same, from the cgroup mounts alone (CgroupHierarchy.all of a mountinfo).
    public static func cgroupHierarchies(mounts: [CgroupHierarchy], procCgroup: [ProcCgroup], base: String = "/sys/fs/cgroup")
        -> [(name: String, hierarchy: CgroupHierarchy, hostPath: String)] {
        var result: [(name: String, hierarchy: CgroupHierarchy, hostPath: String)] = []
        for h in mounts {
            let (parent, name) = splitPath(Path.clean(h.mountPoint))
            guard parent == base, !name.isEmpty else { continue }
            let own: ProcCgroup?
            if h.isUnified {
                own = procCgroup.first { $0.hierarchy == 0 && $0.controllers.isEmpty }
            } else {
                let set = Set(h.mountData.split(separator: ",").map(String.init))
                own = procCgroup.first { !$0.controllers.isEmpty && $0.controllers.allSatisfy(set.contains) }
            }
            var hostPath = h.mountPoint
            let root = h.mountRoot
            if let p = own?.path, !Path.hasDotDot(root), Path.isWithin(p, root), let rel = Path.dropPrefix(root == "/" ? "" : root, of: p) {
                hostPath = Path.clean(h.mountPoint + "/" + rel)
            }
            let entry = (name: name, hierarchy: h, hostPath: hostPath)
            if let i = result.firstIndex(where: { $0.name == name }) { result[i] = entry } else { result.append(entry) }
        }
        return result
    }

    /// For a co-mounted hierarchy such as "cpu,cpuacct" among the directory
    /// `names`, the symlinks "cpu" and "cpuacct" pointing to it, as the host
    /// has them.
    public static func cgroupSymlinks(names: [String]) -> [(link: String, target: String)] {
        let all = Set(names)
        var links: [(link: String, target: String)] = []
        for name in names where name.contains(",") {
            for part in name.split(separator: ",").map(String.init) where !all.contains(part) && !part.contains("=") {
                links.append((link: part, target: name))
            }
        }
        return links
    }
}
