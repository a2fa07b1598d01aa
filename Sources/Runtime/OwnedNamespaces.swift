import Cgroups
import CShim
import Glibc
import Spec
import Sys

// A container that joins a user namespace by path (a pod's, as containerd
// gives every container of a user-namespaced pod the sandbox's) and asks for
// new namespaces beside it must get namespaces that belong to that user
// namespace: only then is its root, once inside, privileged over them
// (mounting its procfs, making its root rslave, setting its hostname).
// clone3 from here would make them ours (the host's user namespace), and the
// init, having joined the other user namespace, would be refused all of it.
// A pid namespace cannot even be made ahead and handed on (the kernel lets
// nobody enter one before a process of its creator's is its init, and it
// dies with that process). So a helper joins the user namespace and clones
// the init there with every new namespace at once, as our child
// (CLONE_PARENT), tells us its pid and exits.

/// CLONE_PARENT (<linux/sched.h>).
let cloneParent: UInt64 = 0x0000_8000

/// The user namespace to clone the init inside: the one joined by path,
/// when any namespace beside it is new.
func userNamespaceToCloneInside(_ namespaces: [Namespace]) -> String? {
    guard namespaces.contains(where: { $0.path == nil }) else { return nil }
    return namespaces.first { $0.type == "user" }?.path
}

/// clonePlaced from a helper that has joined the user namespace at `path`,
/// so that the new namespaces of `flags` are that user namespace's; the
/// child runs `child` and is our child (CLONE_PARENT), in the pid
/// namespace `pidNamespace` when that is an open one (to join). The helper sends its
/// pid (ours: the helper is in our pid namespace) and whether it was born
/// in its cgroup, then exits.
func clonePlacedInside(userNamespace path: String, pidNamespace: Int32, flags: UInt64, _ p: Placement,
                       child: () -> Never) throws -> (pid: Int32, bornPlaced: Bool) {
    let user = open(path, O_RDONLY | O_CLOEXEC)
    guard user >= 0 else { throw SysError("open user namespace \(path)") }
    defer { close(user) }
    var sv: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
        throw SysError("socketpair")
    }
    let helper = fork()
    if helper == 0 {
        close(sv[0])
        // pid (or -1), born placed (0/1), errno.
        var answer: [Int32] = [-1, 0, 0]
        if mc_setns(user, Kernel.CLONE_NEWUSER) != 0
            || (pidNamespace >= 0 && mc_setns(pidNamespace, Kernel.CLONE_NEWPID) != 0) {
            answer[2] = errno
        } else {
            // CLONE_PARENT: the init is our child, not the helper's, so
            // that it is never orphaned (in a joined pid namespace it would
            // go to that namespace's init, which would never reap it).
            let (pid, born) = clonePlaced(flags | cloneParent, p)
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
