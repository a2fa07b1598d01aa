// Idmapped mounts (runtime-spec 1.3, config.md "Mounts"): what a mount's
// `uidMappings`, `gidMappings` and its `idmap`/`ridmap` options ask for, and
// the checks the spec and the kernel make of them, without a system call.
//
// A mount mapping reads as a user namespace's uid_map line does, with the
// mount's source filesystem inside: {containerID C, hostID H, size S} shows
// the file owned by C+i on disk as owned by host id H+i through the mount
// (and a file the host id H+i creates there is written as C+i). Inside a
// container with a user namespace, H+i is then whatever the container's
// own mappings make of it: with the container mapped 0 -> 100000, a mount
// mapping {1000, 100000, 1} shows the disk's uid 1000 as the container's
// root. runc and crun read them so: they write the mappings unchanged into
// the uid_map of the user namespace the mount is idmapped with.

/// The idmap a spec mount asks for.
public struct MountIDMap: Equatable {
    /// `ridmap`: the mounts below an rbind are idmapped too.
    public var recursive: Bool
    /// The mount's own mappings; nil: the container's user namespace's.
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?

    public init(recursive: Bool, uidMappings: [IDMapping]? = nil, gidMappings: [IDMapping]? = nil) {
        self.recursive = recursive
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
    }

    /// Whether the mount gives its own mappings (else the container's apply).
    public var hasOwnMappings: Bool { uidMappings != nil || gidMappings != nil }

    /// The mount options that ask for an idmapped mount.
    public static let options = ["idmap", "ridmap"]

    /// How many lines a uid_map or gid_map takes (UID_GID_MAP_MAX_EXTENTS).
    public static let maxMappings = 340
}

extension Mount {
    /// A bind mount, as the runtime classifies one: `bind` or `rbind` among
    /// the options, or type "bind", "none" or none at all.
    public var isBindMount: Bool {
        let o = options ?? []
        return o.contains("bind") || o.contains("rbind") || [nil, "", "bind", "none"].contains(type)
    }

    /// The idmap this mount asks for, nil when none: mappings of its own
    /// (an empty list counts as none, as for linux.uidMappings), or one of
    /// the `idmap`/`ridmap` options.
    public var idmap: MountIDMap? {
        let o = options ?? []
        let uid = uidMappings.flatMap { $0.isEmpty ? nil : $0 }, gid = gidMappings.flatMap { $0.isEmpty ? nil : $0 }
        guard uid != nil || gid != nil || o.contains("idmap") || o.contains("ridmap") else { return nil }
        return MountIDMap(recursive: o.contains("ridmap"), uidMappings: uid, gidMappings: gid)
    }
}

extension IDMapping {
    /// What the kernel would refuse in a uid_map or gid_map of these lines,
    /// each as (index or nil for the list, message): a size of 0, a range
    /// past the last id (4294967294: (uid_t)-1 is no id), ranges that
    /// overlap on either side, more lines than the kernel takes.
    public static func problems(_ list: [IDMapping]) -> [(index: Int?, message: String)] {
        var out: [(index: Int?, message: String)] = []
        if list.count > MountIDMap.maxMappings {
            out.append((nil, "\(list.count) mappings, more than the kernel allows (\(MountIDMap.maxMappings))"))
        }
        let last: UInt64 = 4_294_967_294
        for (i, m) in list.enumerated() {
            if m.size == 0 {
                out.append((i, "size must not be 0"))
                continue
            }
            for (name, first) in [("containerID", m.containerID), ("hostID", m.hostID)]
            where UInt64(first) + UInt64(m.size) - 1 > last {
                out.append((i, "\(name) \(first) with size \(m.size) goes past the last id (\(last))"))
            }
            for (j, n) in list[..<i].enumerated() where n.size > 0 {
                func overlap(_ a: UInt32, _ b: UInt32) -> Bool {
                    UInt64(a) < UInt64(b) + UInt64(n.size) && UInt64(b) < UInt64(a) + UInt64(m.size)
                }
                if overlap(m.containerID, n.containerID) {
                    out.append((i, "its containerID range overlaps that of [\(j)]"))
                } else if overlap(m.hostID, n.hostID) {
                    out.append((i, "its hostID range overlaps that of [\(j)]"))
                }
            }
        }
        return out
    }
}

extension Spec {
    /// The spec's rules for idmapped mounts, and ours: uidMappings and
    /// gidMappings go together; `idmap`/`ridmap` without them take the
    /// container's user namespace, so need one (config.md: "an error MUST
    /// be returned"); the mappings must be ones the kernel takes; and only
    /// bind mounts are idmapped here (runc's rule: a filesystem the
    /// container mounts itself is its own, owned by its user namespace).
    /// Mappings on a mount without a user namespace are allowed (the host
    /// then sees the mapped ids), as runc allows them.
    public func mountIDMapProblems() -> [SpecError] {
        var out: [SpecError] = []
        let userNS = linux?.namespaces?.contains { $0.type == "user" } ?? false
        for (i, m) in (mounts ?? []).enumerated() {
            guard let map = m.idmap else { continue }
            let at = "mounts[\(i)]"
            if !m.isBindMount {
                out.append(SpecError(at, "only bind mounts can be idmapped here, not type \(quoted(m.type ?? ""))"))
                continue
            }
            if map.uidMappings != nil && map.gidMappings == nil {
                out.append(SpecError("\(at).uidMappings", "must be given with gidMappings"))
            } else if map.gidMappings != nil && map.uidMappings == nil {
                out.append(SpecError("\(at).gidMappings", "must be given with uidMappings"))
            } else if !map.hasOwnMappings && !userNS {
                let opt = map.recursive ? "ridmap" : "idmap"
                out.append(SpecError("\(at).options", "\(opt) without uidMappings and gidMappings maps the ids as the container's user namespace does, and there is none in linux.namespaces"))
            }
            for (name, list) in [("uidMappings", map.uidMappings), ("gidMappings", map.gidMappings)] {
                for p in IDMapping.problems(list ?? []) {
                    out.append(SpecError("\(at).\(name)" + (p.index.map { "[\($0)]" } ?? ""), p.message))
                }
            }
        }
        return out
    }
}
