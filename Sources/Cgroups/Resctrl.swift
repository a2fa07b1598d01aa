import Glibc
import Spec
import Sys

// linux.intelRdt over the kernel's resctrl filesystem: the container's CLOS
// (class of service) group, a directory of the resctrl root named by closID
// or, without one, by the container's id; its schemata; the init's pid in
// its tasks; with enableMonitoring a MON group mon_groups/<id> under it.
// Without a resctrl mount in our mount namespace the spec asks for an error,
// and when intelRdt is absent nothing here runs (the spec forbids touching
// resctrl then). The root is a parameter so that tests use a fake tree.

public enum Resctrl {
    /// Where resctrl is mounted in our mount namespace (the first mount of
    /// fstype resctrl in /proc/self/mountinfo), or nil.
    public static func mountPoint(mountinfo: [UInt8]? = nil) -> String? {
        let text = mountinfo ?? ((try? FS.readBytes("/proc/self/mountinfo")) ?? [])
        return MountInfo.parse(text).first { $0.fsType == "resctrl" }?.mountPoint
    }

    /// Whether the kernel has resctrl at all (/proc/filesystems), mounted or not.
    public static func kernelSupports(filesystems: String? = nil) -> Bool {
        let text = filesystems ?? ((try? FS.readString("/proc/filesystems")) ?? "")
        return text.split(separator: "\n").contains { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).last == "resctrl" }
    }

    /// What features should say: intelRdt can be honoured only with resctrl mounted.
    public static var available: Bool { mountPoint() != nil }

    /// The refusal when `rdt` is asked for and resctrl is not mounted, else nil.
    public static func refusal(_ rdt: IntelRdt?, mountPoint: String?) -> String? {
        guard rdt != nil, mountPoint == nil else { return nil }
        return "linux.intelRdt: resctrl is not mounted (no resctrl filesystem in /proc/self/mountinfo\(kernelSupports() ? "; mount it at /sys/fs/resctrl" : ", and this kernel has none"))"
    }

    /// The schemata text the spec says to write, l3CacheSchema first, then
    /// memBwSchema, then schemata's lines; nil when none is set (nothing is
    /// written then).
    public static func schemataText(_ rdt: IntelRdt) -> String? {
        let lines = [rdt.l3CacheSchema, rdt.memBwSchema].compactMap { $0 } + (rdt.schemata ?? [])
        return lines.isEmpty ? nil : lines.map { $0 + "\n" }.joined()
    }

    /// The group of a container and what create made of it, for delete:
    /// `madeGroup` is removed only when we created it for a container
    /// without closID, `monitor` always.
    public struct Group: Equatable {
        public var path: String
        public var madeGroup: String?
        public var monitor: String?

        public init(path: String, madeGroup: String? = nil, monitor: String? = nil) {
            self.path = path
            self.madeGroup = madeGroup
            self.monitor = monitor
        }

        /// As the container's state keeps it (Record.resctrl).
        public var record: [String: String] {
            var m = ["path": path]
            if let d = madeGroup { m["made"] = d }
            if let d = monitor { m["monitor"] = d }
            return m
        }

        public init(record m: [String: String]) {
            self.init(path: m["path"] ?? "", madeGroup: m["made"], monitor: m["monitor"])
        }
    }

    /// Makes (or finds) the group of container `id` under `root` and writes
    /// its schemata; the pid goes in with `place`. On failure, what it made
    /// is removed again.
    public static func prepare(_ rdt: IntelRdt, id: String, root: String) throws -> Group {
        let text = schemataText(rdt)
        var g = Group(path: root, madeGroup: nil, monitor: nil)
        do {
            if let clos = rdt.closID {
                if clos != "/" { g.path = root + "/" + clos }
                if FS.isDirectory(g.path) {
                    // A group that exists is compared, never rewritten: other
                    // containers may share it.
                    if let want = text { try compare(want, at: g.path + "/schemata") }
                } else {
                    guard text != nil else {
                        throw Failure(.failed, "linux.intelRdt.closID: there is no resctrl group \(quoted(clos)) in \(root), and no schemata to make it with")
                    }
                    guard mkdir(g.path, 0o755) == 0 else { throw SysError("linux.intelRdt: create resctrl group \(g.path)") }
                    try write(text!, to: g.path + "/schemata")
                }
            } else {
                g.path = root + "/" + id
                guard mkdir(g.path, 0o755) == 0 else { throw SysError("linux.intelRdt: create resctrl group \(g.path)") }
                g.madeGroup = g.path
                if let t = text { try write(t, to: g.path + "/schemata") }
            }
            if rdt.enableMonitoring == true {
                let mon = g.path + "/mon_groups/" + id
                guard mkdir(mon, 0o755) == 0 else { throw SysError("linux.intelRdt.enableMonitoring: create MON group \(mon)") }
                g.monitor = mon
            }
        } catch {
            remove(g)
            throw error
        }
        return g
    }

    /// Puts `pid` in the group (and its MON group, which implies the group).
    public static func place(_ pid: Int32, in g: Group) throws {
        try write("\(pid)\n", to: (g.monitor ?? g.path) + "/tasks")
    }

    /// Removes what `prepare` made: the MON group, and the group when it
    /// was made for this container. Missing directories are no error.
    public static func remove(_ g: Group) {
        for dir in [g.monitor, g.madeGroup].compactMap({ $0 }) {
            if rmdir(dir) != 0 && errno != ENOENT { Log.warn("linux.intelRdt: remove \(dir): \(errnoText(errno))") }
        }
    }

    /// Each line we would write must be in the group's schemata as the
    /// kernel shows it (resctrl prints every resource; ours are a subset).
    static func compare(_ want: String, at path: String) throws {
        let have = Set(try FS.readString(path).split(separator: "\n").map { normalized($0) })
        for line in want.split(separator: "\n") where !have.contains(normalized(line)) {
            throw Failure(.failed, "linux.intelRdt: the existing group's schemata (\(path)) has no line \(quoted(String(line)))")
        }
    }

    /// A schemata line without spaces, which the kernel pads with.
    static func normalized(_ s: Substring) -> String { String(s.filter { $0 != " " && $0 != "\t" }) }

    static func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("linux.intelRdt: open \(path)") }
        defer { close(fd) }
        try FS.writeAll(fd: fd, Array(text.utf8), what: "linux.intelRdt: write \(path)")
    }
}
