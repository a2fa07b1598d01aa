// Where a container's cgroup goes, following runc's cgroupsPath rules:
//   "/a/b"            relative to each hierarchy's mount point (its root);
//   "a/b"             relative to the runtime's own cgroup in that hierarchy;
//   nil               "/<id>", as runc and crun;
//   "slice:prefix:name" (systemd syntax, without systemd) ->
//                     "/<expanded slice>/<prefix>-<name>.scope".
// The result never leaves the hierarchy: ".." stops at its root.

import Spec

public enum CgroupPath {
    /// The cgroup path asked for, cleaned, and whether it is relative to the
    /// runtime's own cgroup.
    public static func requested(_ cgroupsPath: String?, id: String) -> (path: String, relative: Bool) {
        guard let p = cgroupsPath, !p.isEmpty else { return (Path.clean("/" + id), false) }
        if p.holdsByte(":"), let s = systemd(p) { return (s, false) }
        return (Path.clean(p), !Path.isAbsolute(p))
    }

    /// The container's directory in a hierarchy mounted at `mountPoint`
    /// (whose mountinfo root is `mountRoot`), given the runtime's own cgroup
    /// `ownCgroup` in that hierarchy (as /proc/self/cgroup shows it).
    public static func directory(mountPoint: String, mountRoot: String = "/", ownCgroup: String?,
                                 requested: (path: String, relative: Bool)) -> String {
        var inMount = requested.path
        if requested.relative {
            var parent = Path.clean(ownCgroup ?? "/")
            let root = Path.clean(mountRoot)
            if root != "/" {
                parent = under(parent, root) ? Path.clean(Path.dropPrefix(root, of: parent) ?? "/") : "/"
            }
            inMount = Path.clean(parent + "/" + requested.path)
        }
        return join(mountPoint, inMount)
    }

    /// "slice:prefix:name" -> "/<slice expanded>/<prefix>-<name>.scope"; nil
    /// when `s` has not exactly three parts.
    public static func systemd(_ s: String) -> String? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[2].isEmpty else { return nil }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        let unit: String
        if parts[2].hasSuffix(".slice") {
            unit = parts[2]
        } else {
            unit = (parts[1].isEmpty ? "" : parts[1] + "-") + parts[2] + ".scope"
        }
        return Path.clean(expandSlice(slice) + "/" + unit)
    }

    /// systemd's slice nesting: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice",
    /// "-.slice" -> "/". Anything not shaped like a slice is used as it is.
    public static func expandSlice(_ slice: String) -> String {
        guard slice.hasSuffix(".slice"), !Path.hasSlash(slice) else { return Path.clean("/" + slice) }
        let name = String(slice.dropLast(6))
        if name == "-" { return "/" }
        guard !name.isEmpty, !name.hasPrefix("-"), !name.hasSuffix("-"), !name.contains("--") else {
            return Path.clean("/" + slice)
        }
        var path = "", prefix = ""
        for comp in name.split(separator: "-") {
            prefix += (prefix.isEmpty ? "" : "-") + comp
            path += "/" + prefix + ".slice"
        }
        return path
    }

    static func join(_ base: String, _ rel: String) -> String {
        let r = Path.clean(rel)
        if r == "/" { return base }
        return (base.utf8.last == 47 ? String(base.dropLast()) : base) + r
    }
}
