import JSON
import Spec
import Sys

// Rootless run mode: what a bundle compiled from run flags needs when an
// unprivileged user runs it. Its root is uid 0 in a user namespace of its
// own, mapped to the user; ids from 1 up are the user's subordinate ranges
// (/etc/subuid, /etc/subgid, through newuidmap/newgidmap). Its overlay root
// is mounted by the runtime's init inside that namespace
// (Annotation.rootOverlay): the user could not mount it on the host.

/// The user's container mappings (uid, gid: SubordinateIDs.rootlessMappings,
/// as the rootless image store unpacks with), and a warning when they have
/// no subordinate ranges (then only root exists inside).
public func rootlessMappings(identity me: Identity = Identity.current()) -> (uid: [IDMapping], gid: [IDMapping], warning: String?) {
    let subuid = try? FS.readString("/etc/subuid"), subgid = try? FS.readString("/etc/subgid")
    let m = SubordinateIDs.rootlessMappings(identity: me, subuid: subuid, subgid: subgid)
    guard !m.complete else { return (m.uid, m.gid, nil) }
    let noUID = subuid.map { SubordinateIDs.ranges($0, name: me.name, uid: me.uid).isEmpty } ?? true
    let who = me.name ?? String(me.uid)
    return (m.uid, m.gid, "rootless: \(who) has no ranges in \(noUID ? "/etc/subuid" : "/etc/subgid"): the container has one uid and gid (its root, you); files of other owners in images show as nobody, and --user other than root fails")
}

extension Containers {
    /// Makes `spec` one an unprivileged user can run: a user namespace
    /// with the user's mappings; kernel filesystems it may not mount there
    /// bound from the host instead; the root as an overlay the init mounts.
    func makeRootless(_ spec: inout Spec, layer: RootLayer, lower: [String]) throws {
        let maps = rootlessMappings()
        if let w = maps.warning { Log.warn(w) }
        var linux = spec.linux ?? Linux()
        var ns = linux.namespaces ?? []
        if !ns.contains(where: { $0.type == "user" }) { ns.append(Namespace(type: "user")) }
        linux.namespaces = ns
        linux.uidMappings = maps.uid
        linux.gidMappings = maps.gid
        let ownNetwork = ns.contains { $0.type == "network" && $0.path == nil }
        let gid5 = maps.gid.contains { 5 >= $0.containerID && 5 < UInt64($0.containerID) + UInt64($0.size) }
        spec.mounts = (spec.mounts ?? []).map { m in
            var m = m
            switch m.type {
            case "cgroup":
                // A v1 cgroup hierarchy cannot be mounted in a user namespace: the host's, read-only.
                m = Mount(destination: m.destination, type: "bind", source: "/sys/fs/cgroup",
                          options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            case "sysfs" where !ownNetwork:
                m = Mount(destination: m.destination, type: "bind", source: "/sys",
                          options: ["rbind", "nosuid", "noexec", "nodev", "ro"])
            case "devpts" where !gid5:
                m.options = m.options?.filter { $0 != "gid=5" }
            default: break
            }
            return m
        }
        spec.linux = linux
        let o = JSONObject([("lower", .array(lower.map { .string($0) })), ("upper", .string(layer.upper)),
                            ("work", .string(layer.work))])
        var ann = spec.annotations ?? [:]
        ann[Annotation.rootOverlay] = JSONValue.object(o).compact()
        spec.annotations = ann
    }
}
