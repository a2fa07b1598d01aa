import Glibc
import Privileges
import Spec
import Sys

// What the init and an exec'd process both do in the container before
// execve: set up the terminal, limits and working directory, find the
// program, then drop privileges in runc's order.

/// Terminal (its master goes to the runtime over `channel`), rlimits, oom
/// score, cwd; returns the program's path. `stage` names the step for errors.
/// `console`: the terminal is also bound over /dev/console (the init's).
func prepareProcess(_ process: Process, channel: Channel, stage: inout String, console: Bool = false) throws -> String {
    if process.terminal == true {
        stage = "terminal"
        let (master, name) = try openTerminal(size: process.consoleSize, console: console)
        try channel.send(.pty(name: name), fd: master)
        close(master)
    }
    stage = "rlimits"
    try Privileges.setRlimits(process.rlimits ?? [])
    if let adj = process.oomScoreAdj { try Privileges.setOOMScoreAdj(adj) }
    stage = "cwd"
    guard chdir(process.cwd) == 0 else { throw SysError("chdir to \(process.cwd)") }
    // A cwd that resolved outside the container's root (an fd of the host
    // through /proc/self/fd, CVE-2024-21626) has no path from our root: the
    // kernel says "(unreachable)", glibc ENOENT. Refuse it, as runc does.
    try checkCwdInsideRoot(process.cwd)
    stage = "exec"
    return try Privileges.lookPath(process.args![0], env: process.env ?? [])
}

/// seccomp, user, capabilities and no_new_privs. Without no_new_privs,
/// loading a filter needs CAP_SYS_ADMIN, so it goes in before the user and
/// capabilities change (the profile must then allow what follows); with it,
/// as late as possible. The filter was compiled by the runtime and sent
/// before go (compiledSeccomp, Channel.receiveGo): here only seccomp(2) remains.
func dropPrivileges(_ process: Process, seccomp: Privileges.SeccompProgram?) throws {
    try LSM.applyExecLabels(process)
    let nnp = process.noNewPrivileges == true
    if !nnp, let s = seccomp { try Privileges.loadSeccompProgram(s) }
    try Privileges.setUser(process.user)
    try Privileges.applyCapabilities(process.capabilities)
    if nnp { try Privileges.setNoNewPrivileges() }
    if nnp, let s = seccomp { try Privileges.loadSeccompProgram(s) }
}

/// The spec's filter compiled in the runtime, while the child prefaults, through the
/// cache under the state root (Store.seccompCacheDir); nil without one.
func compiledSeccomp(_ spec: Spec, store: Store) throws -> Privileges.SeccompProgram? {
    guard let s = spec.linux?.seccomp else { return nil }
    return try Privileges.compileSeccomp(s, cacheDir: store.seccompCacheDir)
}

func checkCwdInsideRoot(_ cwd: String) throws {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buf, buf.count) != nil, buf[0] == 47 /* "/" */ else {
        throw fail("cwd \(cwd) is outside the container's root")
    }
}
