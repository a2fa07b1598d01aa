// The confinement a process asks for from a Linux security module:
// process.apparmorProfile, process.selinuxLabel and linux.mountLabel.
// Where the host has the module, they are applied as runc applies them; where
// it has none, asking for one is an error (as in runc), never a silent no-op:
// the container would run unconfined while its owner believes otherwise.
//
//   AppArmor: "exec <profile>" into /proc/thread-self/attr/apparmor/exec
//             (attr/exec before Linux 5.1): the profile applies at execve.
//   SELinux:  the label into /proc/thread-self/attr/exec, the same way; the
//             mount label as `context="<label>"` in the data of the mounts
//             runc labels (Spec.withMountLabel).
// Both are written before seccomp, the user change and no_new_privs (as runc
// does): a filter may not allow the write, and with no_new_privs set neither
// module allows the transition.

import CShim
import Glibc
import Spec
import Sys

public enum LSM {
    /// AppArmor is enabled: /sys/module/apparmor/parameters/enabled says Y.
    public static func appArmorEnabled() -> Bool {
        guard let s = try? FS.readString("/sys/module/apparmor/parameters/enabled") else { return false }
        return s.hasPrefix("Y")
    }

    /// SELinux is enabled: /sys/fs/selinux is a selinuxfs mount (or, where
    /// that cannot be told, the kernel has selinuxfs and its enforce file is there).
    public static func selinuxEnabled() -> Bool {
        var type: UInt64 = 0, flags: UInt64 = 0
        if mc_statfs("/sys/fs/selinux", &type, &flags) == 0 && type == Kernel.SELINUX_MAGIC { return true }
        guard let fs = try? FS.readString("/proc/filesystems"), fs.contains("\tselinuxfs\n") || fs.hasSuffix("\tselinuxfs") else {
            return false
        }
        return FS.exists("/sys/fs/selinux/enforce")
    }

    /// The problem with asking for this confinement on this host, as one
    /// line naming the field; nil when the host can apply it.
    public static func refusal(apparmorProfile: String?, selinuxLabel: String?, mountLabel: String? = nil,
                               appArmor: () -> Bool = appArmorEnabled, selinux: () -> Bool = selinuxEnabled) -> String? {
        if let p = apparmorProfile, !p.isEmpty, !appArmor() {
            return "process.apparmorProfile \(quoted(p, max: 128)): AppArmor is not enabled on this host"
        }
        if let l = selinuxLabel, !l.isEmpty, !selinux() {
            return "process.selinuxLabel \(quoted(l, max: 128)): SELinux is not enabled on this host"
        }
        if let l = mountLabel, !l.isEmpty, !selinux() {
            return "linux.mountLabel \(quoted(l, max: 128)): SELinux is not enabled on this host"
        }
        return nil
    }

    /// Sets the AppArmor profile and SELinux label the process gets at its
    /// execve; nothing when it asks for neither. Called right before the
    /// privileges are dropped (ProcessSetup.swift).
    public static func applyExecLabels(_ process: Process) throws {
        if let p = process.apparmorProfile, !p.isEmpty {
            // The module's own directory since 5.1; attr/exec is AppArmor's
            // on older kernels (and SELinux's when both are there, so it is
            // used only when the new file is missing).
            let attr = FS.exists("/proc/thread-self/attr/apparmor/exec") ? "attr/apparmor/exec" : "attr/exec"
            do { try writeProcAttr(attr, "exec " + p) } catch {
                throw Failure(.failed, "apply AppArmor profile \(quoted(p, max: 128)): \(error)")
            }
        }
        if let l = process.selinuxLabel, !l.isEmpty {
            do { try writeProcAttr("attr/exec", l) } catch {
                throw Failure(.failed, "apply SELinux label \(quoted(l, max: 128)): \(error)")
            }
        }
    }

    /// Writes `value` into /proc/thread-self/<relative> (the attributes are
    /// per thread) in one write, as the modules require.
    /// The one place that writes a /proc attribute: through ProcFS, a
    /// procfs of our own that the container cannot mount over or swap
    /// (CVE-2019-16884, CVE-2025-52881), one write as the kernel wants.
    public static func writeProcAttr(_ relative: String, _ value: String) throws {
        try ProcFS.write("thread-self/" + relative, Array(value.utf8), what: "write /proc/thread-self/\(relative)")
    }
}

extension Spec {
    /// The mount types runc gives linux.mountLabel as `context=`: every one
    /// but binds, proc, sysfs, cgroups and mqueue (which runc relabels
    /// instead; we leave it with its default label).
    static let unlabeledMountTypes: Set<String> = ["bind", "proc", "sysfs", "cgroup", "cgroup2", "mqueue"]

    /// The spec with `context="<linux.mountLabel>"` added to the options of
    /// the mounts runc labels (options the parser does not know go into the
    /// mount's data); itself without a mount label.
    public func withMountLabel() -> Spec {
        guard let label = linux?.mountLabel, !label.isEmpty, var ms = mounts else { return self }
        for i in ms.indices {
            let opts = ms[i].options ?? []
            let isBind = ms[i].type == "bind" || opts.contains("bind") || opts.contains("rbind")
            guard !isBind, !Spec.unlabeledMountTypes.contains(ms[i].type ?? ""),
                  !opts.contains(where: { $0.hasPrefix("context=") }) else { continue }
            ms[i].options = opts + ["context=\"\(label)\""]
        }
        var s = self
        s.mounts = ms
        return s
    }
}
