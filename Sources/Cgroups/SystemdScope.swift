import Glibc
import Sys

// `--systemd-cgroup` where systemd runs: systemd is told about the
// container's cgroup as a transient scope unit over D-Bus
// (org.freedesktop.systemd1.Manager.StartTransientUnit), as runc's systemd
// driver does, so that systemd neither moves our processes nor removes the
// cgroup it did not make, and `systemctl status` shows the container. We
// make the cgroup and place the init ourselves first (at the very path
// systemd uses for "slice:prefix:name", CgroupPath.systemd); systemd takes
// the scope over with the init's pid in it and Delegate=yes, which leaves
// the subtree and its controllers to us. The scope ends by itself when its
// last process does.

public enum SystemdScope {
    /// systemd's private socket (root only, no message bus in between),
    /// then the system bus.
    public static let privateSocket = "/run/systemd/private"
    public static let systemBus = "/run/dbus/system_bus_socket"

    /// The slice and scope unit for a "slice:prefix:name" cgroupsPath; nil
    /// for anything else, and for a name that is a slice (we make no slices).
    public static func unit(cgroupsPath: String?) -> (slice: String, unit: String)? {
        guard let p = cgroupsPath else { return nil }
        let parts = p.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[2].isEmpty, !parts[2].hasSuffix(".slice") else { return nil }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        let unit = (parts[1].isEmpty ? "" : parts[1] + "-") + parts[2] + ".scope"
        // Unit names are [A-Za-z0-9:_.\-] and at most 255 bytes.
        let ok = { (s: String) in
            !s.isEmpty && s.utf8.count <= 255 && s.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                    || c == UInt8(ascii: ":") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
            }
        }
        guard ok(slice), ok(unit) else { return nil }
        return (slice, unit)
    }

    /// StartTransientUnit's arguments: the unit, mode "fail" (a unit of that
    /// name already running is an error, not replaced), the properties, no
    /// auxiliary units.
    public static func startArguments(unit: String, slice: String, pid: Int32, description: String) -> [DBusValue] {
        func prop(_ name: String, _ v: DBusValue) -> DBusValue { .structure([.string(name), .variant(v)]) }
        let props: [DBusValue] = [
            prop("Description", .string(description)),
            prop("Slice", .string(slice)),
            prop("Delegate", .bool(true)),
            prop("DefaultDependencies", .bool(false)),
            prop("PIDs", .array(element: "u", [.uint32(UInt32(bitPattern: pid))])),
        ]
        return [.string(unit), .string("fail"), .array(element: "(sv)", props), .array(element: "(sa(sv))", [])]
    }

    /// Asks systemd for the scope over `connection` (or over the private
    /// socket, else the system bus).
    public static func start(unit: String, slice: String, pid: Int32, description: String,
                             connection: DBusConnection? = nil) throws {
        let c = try connection ?? connect()
        _ = try c.call(destination: "org.freedesktop.systemd1", path: "/org/freedesktop/systemd1",
                       interface: "org.freedesktop.systemd1.Manager", member: "StartTransientUnit",
                       body: startArguments(unit: unit, slice: slice, pid: pid, description: description))
    }

    static func connect() throws -> DBusConnection {
        if getuid() == 0, access(privateSocket, F_OK) == 0, let c = try? DBusConnection(path: privateSocket, hello: false) {
            return c
        }
        return try DBusConnection(path: systemBus, hello: true)
    }
}
