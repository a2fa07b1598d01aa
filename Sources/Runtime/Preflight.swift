import Cgroups
import Privileges
import Spec

// Checks made before create (or exec) makes anything, against the host.

/// What the spec asks for that this host cannot give, as an error naming
/// the field: an AppArmor profile or SELinux labels without the module
/// (runc refuses them too), a `--network container:X` that is not an id,
/// linux.intelRdt without a resctrl mount (the spec's error; runc's too).
func checkHostSupport(_ spec: Spec, network: NetworkDriver) throws {
    if let rdt = spec.linux?.intelRdt, let why = Resctrl.refusal(rdt, mountPoint: Resctrl.mountPoint()) { throw fail(why) }
    if let why = LSM.refusal(apparmorProfile: spec.process?.apparmorProfile, selinuxLabel: spec.process?.selinuxLabel,
                             mountLabel: spec.linux?.mountLabel) {
        throw fail(why)
    }
    if let other = network.sharedContainer(spec.annotations) {
        do { try Store.validate(id: other) } catch { throw fail("--network container:\(quoted(other, max: 128)): not a container id") }
    }
}

/// The same for a process exec'd into a container.
func checkProcessConfinement(_ process: Process) throws {
    if let why = LSM.refusal(apparmorProfile: process.apparmorProfile, selinuxLabel: process.selinuxLabel) {
        throw fail(why)
    }
}
