import Cgroups
import CShim
import Glibc
import Spec
import Sys

// A container that joins a user namespace by path (a pod's, as containerd
// gives every container of a user-namespaced pod) and asks for new mount,
// pid, uts, ipc, network or time namespaces must get namespaces that belong
// to that user namespace: only then is its root, once inside, privileged
// over them (mounting its procfs, making its root rslave, setting its
// hostname). clone3 would make them ours (the host's user namespace), and
// the init, having joined the other user namespace, would be refused all
// of it. So a short-lived helper joins the user namespace and unshares
// them there; we keep a descriptor of each (time: the one for its
// children, which no process has entered yet), kill the helper, and the
// init joins them like any namespace given by path, after the user one.
//
// With a new pid namespace that cannot work (the kernel lets nobody enter
// a pid namespace before a process of its creator's is its init, and it
// dies with that process). Then the helper clones the init itself, from
// inside the user namespace, with every new namespace at once, tells us
// its pid and exits; we are a subreaper, so the init becomes our child
// as if we had cloned it (clonePlacedInside).

/// The new namespaces of `kinds` made inside the user namespace at
/// `userPath`, as open descriptors (O_CLOEXEC), by kind. Nothing is left of
/// the helper process when this returns or throws.
func namespacesOwned(byUserNamespace userPath: String, kinds: [NamespaceKind]) throws -> [(NamespaceKind, Int32)] {
    let user = open(userPath, O_RDONLY | O_CLOEXEC)
    guard user >= 0 else { throw SysError("open user namespace \(userPath)") }
    defer { close(user) }
    // The helper answers on its end, then waits on it for our end to close.
    var sv: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
        throw SysError("socketpair")
    }
    let flags = kinds.reduce(Int32(0)) { $0 | Int32(truncatingIfNeeded: $1.cloneFlag) }
    let pid = fork()
    if pid == 0 {
        close(sv[0])
        // Two bytes: 0, or the step that failed (1: setns, 2: unshare) and its errno.
        var answer: [UInt8] = [0, 0]
        if mc_setns(user, Kernel.CLONE_NEWUSER) != 0 {
            answer = [1, UInt8(truncatingIfNeeded: errno)]
        } else if mc_unshare(flags) != 0 {
            answer = [2, UInt8(truncatingIfNeeded: errno)]
        }
        _ = write(sv[1], &answer, 2)
        var b: UInt8 = 0
        _ = read(sv[1], &b, 1)  // until the runtime has what it needs
        _exit(0)
    }
    close(sv[1])
    defer {
        close(sv[0])
        if pid > 0 {
            kill(pid, SIGKILL)
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        }
    }
    guard pid > 0 else { throw SysError("fork") }
    var answer: [UInt8] = [0, 0]
    var n = 0
    repeat { n = read(sv[0], &answer, 2) } while n < 0 && errno == EINTR
    guard n == 2 else { throw fail("the helper that makes the container's namespaces in user namespace \(quoted(userPath)) died") }
    switch answer[0] {
    case 0: break
    case 1: throw SysError("join user namespace \(userPath)", errno: Int32(answer[1]))
    default: throw SysError("make the container's namespaces in user namespace \(userPath)", errno: Int32(answer[1]))
    }
    var out: [(NamespaceKind, Int32)] = []
    do {
        for k in kinds {
            let name = k == .time ? "time_for_children" : k.procName
            let fd = open("/proc/\(pid)/ns/\(name)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open the helper's \(name) namespace") }
            out.append((k, fd))
        }
    } catch {
        for (_, fd) in out { close(fd) }
        throw error
    }
    return out
}

/// The kinds create would clone new that must instead be made inside a
/// joined user namespace: all new ones but the cgroup namespace (the init
/// unshares that itself, inside already) and a time namespace with offsets
/// (likewise). None when the user namespace is not joined. A new pid
/// namespace there: none, the init is cloned inside (clonePlacedInside).
func kindsToMakeInJoinedUserNamespace(_ namespaces: [Namespace], timeOffsets: Bool) -> [NamespaceKind] {
    guard namespaces.contains(where: { $0.type == "user" && $0.path != nil }),
          !namespaces.contains(where: { $0.type == "pid" && $0.path == nil }) else { return [] }
    return namespaces.compactMap { ns -> NamespaceKind? in
        guard ns.path == nil, let k = NamespaceKind(rawValue: ns.type) else { return nil }
        if k == .cgroup || k == .user || (k == .time && timeOffsets) { return nil }
        return k
    }
}

/// The user namespace to clone the init inside: the joined one, when a new
/// pid namespace is asked for too.
func userNamespaceToCloneInside(_ namespaces: [Namespace]) -> String? {
    guard namespaces.contains(where: { $0.type == "pid" && $0.path == nil }) else { return nil }
    return namespaces.first { $0.type == "user" }?.path
}

/// clonePlaced from a helper that has joined the user namespace at `path`,
/// so that the new namespaces of `flags` are that user namespace's; the
/// child runs `child`. The helper sends the init's pid (ours: the helper is
/// in our pid namespace) and whether it was born in its cgroup, then exits,
/// and we, a subreaper, inherit the init.
func clonePlacedInside(userNamespace path: String, flags: UInt64, _ p: Placement,
                       child: () -> Never) throws -> (pid: Int32, bornPlaced: Bool) {
    let user = open(path, O_RDONLY | O_CLOEXEC)
    guard user >= 0 else { throw SysError("open user namespace \(path)") }
    defer { close(user) }
    var sv: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
        throw SysError("socketpair")
    }
    guard Kernel.becomeChildSubreaper() else {
        close(sv[0]); close(sv[1])
        throw SysError("become a subreaper")
    }
    let helper = fork()
    if helper == 0 {
        close(sv[0])
        // pid (or -1), born placed (0/1), errno.
        var answer: [Int32] = [-1, 0, 0]
        if mc_setns(user, Kernel.CLONE_NEWUSER) != 0 {
            answer[2] = errno
        } else {
            let (pid, born) = clonePlaced(flags, p)
            if pid == 0 {
                close(sv[1])
                child()
            }
            answer = [pid, born ? 1 : 0, pid < 0 ? errno : 0]
        }
        _ = answer.withUnsafeBytes { write(sv[1], $0.baseAddress, $0.count) }
        _exit(0)
    }
    close(sv[1])
    defer { close(sv[0]) }
    guard helper > 0 else { throw SysError("fork") }
    var answer: [Int32] = [-1, 0, 0]
    var n = 0
    repeat { n = answer.withUnsafeMutableBytes { read(sv[0], $0.baseAddress, $0.count) } } while n < 0 && errno == EINTR
    var st: Int32 = 0
    while waitpid(helper, &st, 0) < 0 && errno == EINTR {}
    guard n == 12 else { throw fail("the helper that clones the init in user namespace \(quoted(path)) died") }
    guard answer[0] > 0 else { throw SysError("clone the init in user namespace \(path)", errno: answer[2]) }
    return (answer[0], answer[1] == 1)
}
