import Spec

// The default seccomp profile of a Docker-style `run`, for the capabilities
// the container is given. STUB: the real table (Specs/seccomp/default.json,
// generated into Swift) replaces this body.

/// The profile `run` puts in linux.seccomp for a container holding
/// `capabilities` (its bounding set, CAP_* names).
public func defaultSeccompProfile(capabilities: [String]) -> Seccomp {
    var s = Seccomp(defaultAction: "SCMP_ACT_ALLOW")
    s.architectures = ["SCMP_ARCH_X86_64"]
    var deny = Syscall(names: ["kexec_load"], action: "SCMP_ACT_ERRNO")
    deny.errnoRet = 1
    s.syscalls = [deny]
    return s
}
