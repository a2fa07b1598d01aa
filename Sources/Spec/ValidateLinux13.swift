// Semantic checks of the runtime-spec 1.3 linux settings: linux.timeOffsets,
// linux.netDevices and linux.intelRdt (Validate.swift calls them). What the
// host must have for them (resctrl, the interfaces) is checked at create.

extension Linux {
    /// The problems of timeOffsets, netDevices and intelRdt, in that order.
    func spec13Problems() -> [SpecError] {
        var out: [SpecError] = []
        func bad(_ path: String, _ message: String) { out.append(SpecError(path, message)) }
        let spaces = namespaces ?? []

        if let offsets = timeOffsets, !offsets.isEmpty {
            // Offsets can only be written into a time namespace nobody has
            // entered yet: one we make (time_namespaces(7)).
            if let i = spaces.firstIndex(where: { $0.type == "time" }) {
                if spaces[i].path != nil {
                    bad("linux.timeOffsets", "offsets cannot be set on a joined time namespace (linux.namespaces[\(i)].path)")
                }
            } else {
                bad("linux.timeOffsets", "offsets need a new time namespace in linux.namespaces")
            }
            for clock in offsets.keys.sorted() {
                guard let o = offsets[clock] else { continue }
                // An unknown key is named in the message, not the path: it may hold anything.
                guard TimeOffset.clocks.contains(clock) else {
                    bad("linux.timeOffsets", "unknown clock \(quoted(clock)) (monotonic or boottime)")
                    continue
                }
                if let ns = o.nanosecs, ns >= 1_000_000_000 {
                    bad("linux.timeOffsets.\(clock).nanosecs", "\(ns) is not below 1000000000")
                }
            }
        }

        if let devices = netDevices, !devices.isEmpty {
            if let i = spaces.firstIndex(where: { $0.type == "network" }) {
                if spaces[i].path != nil {
                    bad("linux.netDevices", "devices can only be moved into a new network namespace, not a joined one (linux.namespaces[\(i)].path)")
                }
            } else {
                bad("linux.netDevices", "moving devices needs a new network namespace in linux.namespaces")
            }
            var inside: [String: String] = [:]  // container name -> host name
            for host in devices.keys.sorted() {
                guard let d = devices[host] else { continue }
                // A bad host name is named in the message, not the path: it may hold anything.
                if let why = NetDevice.nameProblem(host) {
                    bad("linux.netDevices", "host interface name \(quoted(host)) \(why)")
                    continue
                }
                if let n = d.name, let why = NetDevice.nameProblem(n) {
                    bad("linux.netDevices.\(host).name", "\(quoted(n)) \(why)")
                    continue
                }
                let name = d.name ?? host
                if name.contains("%d") { continue }  // numbered by the kernel: never a clash
                if let other = inside[name] {
                    bad("linux.netDevices.\(host)", "\(quoted(other)) is named \(quoted(name)) in the container too")
                }
                inside[name] = host
            }
        }

        if let r = intelRdt {
            if let c = r.closID, c != "/", let why = IntelRdt.closIDProblem(c) {
                bad("linux.intelRdt.closID", "\(quoted(c)) \(why)")
            }
            if let s = r.l3CacheSchema, s.contains(where: \.isNewline) {
                bad("linux.intelRdt.l3CacheSchema", "must not contain a newline")
            }
            if let s = r.memBwSchema {
                if !s.hasPrefix("MB:") { bad("linux.intelRdt.memBwSchema", "must start with \"MB:\", not \(quoted(s))") }
                if s.contains(where: \.isNewline) { bad("linux.intelRdt.memBwSchema", "must not contain a newline") }
            }
            for (i, s) in (r.schemata ?? []).enumerated() where s.contains(where: \.isNewline) {
                bad("linux.intelRdt.schemata[\(i)]", "must not contain a newline")
            }
        }
        return out
    }
}

extension NetDevice {
    /// IFNAMSIZ less its NUL: the longest interface name.
    public static let nameMax = 15

    /// Why `name` cannot be an interface name (the kernel's dev_valid_name,
    /// and no control characters: a NUL would cut the name short in the
    /// netlink attribute and name another interface), or nil.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > nameMax { return "is longer than \(nameMax) bytes" }
        if name == "." || name == ".." { return "is not an interface name" }
        if name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") }) {
            return "must not contain \"/\" or \":\""
        }
        if name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) {
            return "must not contain spaces or control characters"
        }
        return nil
    }
}

extension IntelRdt {
    /// The files and directories resctrl makes in a CLOS directory or its
    /// root, which a closID must not name.
    static let reservedNames = ["info", "mon_groups", "mon_data", "tasks", "cpus", "cpus_list", "schemata", "mode", "size"]

    /// Why `closID` cannot be a directory of the resctrl root, or nil.
    public static func closIDProblem(_ closID: String) -> String? {
        if closID.isEmpty { return "is empty" }
        if closID == "." || closID == ".." || reservedNames.contains(closID) { return "is not a name for a resctrl group" }
        if Path.hasSlash(closID) { return "must not contain \"/\" (only \"/\" alone, the root group)" }
        if closID.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) { return "must not contain control characters" }
        if closID.utf8.count > 255 { return "is longer than 255 bytes" }
        return nil
    }
}
