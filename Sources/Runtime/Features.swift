import Glibc
import JSON
import Privileges
import Rootfs
import Spec
import Sys

// What `minicontainer features` prints (runtime-spec features.md and
// features-linux.md). Every list comes from the table the code that reads
// config.json uses, so what we advertise is what create accepts: the
// mount options from MountOptions' tables, the capabilities from our names
// table, the seccomp vocabulary from the libseccomp translation. The few
// host-dependent answers (AppArmor, SELinux, systemd, the seccomp flags
// this libseccomp sets) say what create would do on this host, because a
// caller that reads "enabled" and then gets a refusal at create has been
// told something untrue.

public enum Features {
    /// The lowest runtime-spec version whose config.json we take.
    public static let ociVersionMin = "1.0.0"

    /// The seccomp actions we carry out. SCMP_ACT_NOTIFY is recognized (so
    /// that create can refuse it with a reason) but not listed: it needs a
    /// seccomp agent at `listenerPath`, which we do not support.
    public static var seccompActions: [String] { Seccomp.actions.filter { $0 != "SCMP_ACT_NOTIFY" } }

    /// The annotation prefixes whose keys change what we do with a bundle
    /// (network, ports, restart policy, ...): runtime-spec's
    /// potentiallyUnsafeConfigAnnotations, a value ending in "." being a prefix.
    public static let unsafeAnnotationPrefixes = ["org.minicontainer."]

    /// systemd runs on this host (sd_booted's test: /run/systemd/system is a directory).
    public static func systemdRunning() -> Bool {
        var st = stat()
        return lstat("/run/systemd/system", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The features structure, built from the tables.
    public static func document(runtimeVersion: String, commit: String) -> JSONValue {
        var o = JSONObject()
        o["ociVersionMin"] = .string(ociVersionMin)
        o["ociVersionMax"] = .string(Spec.version)
        o["hooks"] = strings(Hooks().all.map { $0.0 })
        o["mountOptions"] = strings(MountOptions.known)

        var linux = JSONObject()
        linux["namespaces"] = strings(Namespace.knownTypes)
        linux["capabilities"] = strings(linuxCapabilities)

        var cg = JSONObject()
        cg["v1"] = .bool(true)
        cg["v2"] = .bool(true)
        // --systemd-cgroup: "slice:prefix:name" at systemd's cgroupfs path,
        // made a transient scope over D-Bus where systemd runs (SystemdScope).
        cg["systemd"] = .bool(true)
        cg["systemdUser"] = .bool(false)
        cg["rdma"] = .bool(false)
        linux["cgroup"] = .object(cg)

        var sc = JSONObject()
        sc["enabled"] = .bool(true)
        sc["actions"] = strings(seccompActions)
        sc["operators"] = strings(Seccomp.operators)
        sc["archs"] = strings(Privileges.seccompArchitectures.map { "SCMP_ARCH_" + $0 })
        sc["knownFlags"] = strings(Privileges.seccompKnownFlags)
        sc["supportedFlags"] = strings(Privileges.seccompSupportedFlags())
        linux["seccomp"] = .object(sc)

        // We apply a profile or label where the host has the LSM and refuse
        // one where it does not (LSM.refusal).
        linux["apparmor"] = object(["enabled": .bool(LSM.appArmorEnabled())])
        linux["selinux"] = object(["enabled": .bool(LSM.selinuxEnabled())])
        // linux.memoryPolicy: set_mempolicy in the init and exec'd processes.
        linux["memoryPolicy"] = object(["modes": strings(MemoryPolicy.modes), "flags": strings(MemoryPolicy.flags)])
        // Bind mounts with uidMappings/gidMappings, idmap and ridmap
        // (Rootfs: the trees are made on the host's side and attached).
        linux["mountExtensions"] = object(["idmap": object(["enabled": .bool(true)])])
        // linux.netDevices: moved into the container's network namespace at create.
        linux["netDevices"] = object(["enabled": .bool(true)])
        // linux.intelRdt where resctrl is mounted (Cgroups/Resctrl.swift);
        // refused at create where it is not, as on this kind of VM.
        linux["intelRdt"] = object(["enabled": .bool(true), "schemata": .bool(true), "monitoring": .bool(true)])
        o["linux"] = .object(linux)

        o["potentiallyUnsafeConfigAnnotations"] = strings(unsafeAnnotationPrefixes)
        var ann = JSONObject()
        ann["org.opencontainers.runc.version"] = .string("minicontainer " + runtimeVersion)
        ann["org.minicontainer.commit"] = .string(commit)
        ann["io.github.seccomp.libseccomp.version"] = .string(Privileges.libseccompVersion)
        ann["org.minicontainer.cgroup.systemd"] = .string(systemdRunning()
            ? "systemd runs here: --systemd-cgroup makes the container's cgroup a transient scope (StartTransientUnit over D-Bus)"
            : "no systemd here: --systemd-cgroup places \"slice:prefix:name\" at the cgroupfs path systemd would use")
        o["annotations"] = .object(ann)
        return .object(o)
    }

    static func strings(_ l: [String]) -> JSONValue { .array(l.map { .string($0) }) }

    /// An object of `pairs`, keys sorted (a dictionary literal has no order).
    static func object(_ pairs: [String: JSONValue]) -> JSONValue {
        .object(JSONObject(pairs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
    }
}
