import CShim
import Glibc
import Spec
import Sys

// CVE-2019-5736: a process in the container must never be able to write the
// runtime's binary. Our init and exec'd processes are clones of the runtime
// (no re-exec), so until their execve `/proc/PID/exe` is the runtime's file;
// and a container program `#!/proc/self/exe` makes the kernel run that same
// file inside the container as the interpreter, after which the attacker
// reopens it for writing through /proc/PID/exe once it is no longer busy.
//
// So `create`, `run` and `exec` first make sure the file they run from is
// one nothing can write:
//   - already on a read-only mount, or a memfd sealed against writes: as it is
//     (nothing to do; an installed binary on a read-only /usr costs nothing);
//   - otherwise re-executed from a read-only clone of its own mount:
//     open_tree(OPEN_TREE_CLONE) of the file alone, mount_setattr RDONLY,
//     execveat. The clone belongs to no mount namespace once its fd closes
//     (at the execve), so nobody can remount it writable, and opening
//     /proc/PID/exe for writing then fails with EROFS. It costs one execve
//     of our static binary, no copy.
//   - where the kernel refuses the clone (no CAP_SYS_ADMIN over our mount
//     namespace, kernels before 5.12): a sealed memfd copy, as runc 1.1 made.
// `PR_SET_DUMPABLE 0` (Create.swift, Exec.swift) alone would not do: after
// the script's execve the container runs our binary as its own process.
//
// `run` (OCI and Docker-style) decides once the spec is known, before it has
// made anything (`settle`): where nothing of the container can see the
// init before its execve, the init's last execve goes through a 265-byte
// stub in a sealed memfd instead (ExecStub.swift), and nothing re-executes
// (0.3 to 1 ms of CPU and 42 of 429 page faults less a run, measured). That is when
// `stubSuffices`: a new pid namespace (the init is its only process until
// it executes the program: no other container's process, no host process
// of a shared pid namespace, can open its /proc/PID/exe), no --init (pid 1
// would stay our binary), no hook run inside the container (createContainer
// and startContainer hooks are forked from the init), no AppArmor or
// SELinux exec label (it would apply to the stub's execve, not the
// program's), and a seccomp profile that lets the stub's execveat, execve,
// write and exit_group through whatever their arguments. `create` keeps the
// re-execution: between create and start the init waits, and processes
// `exec`ed into the created container see it. So does `exec`.

public enum SealedExe {
    /// `run` has put the choice off until its spec is known (`settle`).
    nonisolated(unsafe) public static var deferred = false

    /// For `run`, with the container's spec, before anything is made: nil
    /// when the binary is protected already or nothing was deferred; the
    /// stub's memfd when the stub suffices; otherwise the re-execution
    /// (`before` first: it undoes what the caller made), which does not return.
    public static func settle(for spec: Spec, before: () -> Void = {}) throws -> Int32? {
        guard deferred else { return nil }
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open /proc/self/exe") }
        let protected = isProtected(fd)
        close(fd)
        if protected { deferred = false; return nil }
        if stubSuffices(spec), let stub = ExecStub.make() { return stub }
        before()
        deferred = false
        try ensure()
        return nil
    }

    /// Whether the init may run the container's program through the exec
    /// stub instead of from a protected binary (see the top of this file).
    public static func stubSuffices(_ spec: Spec) -> Bool {
        let namespaces = spec.linux?.namespaces ?? []
        guard namespaces.contains(where: { $0.type == "pid" && $0.path == nil }) else { return false }
        guard spec.annotations?[Annotation.initProcess] != "true" else { return false }
        guard (spec.hooks?.createContainer ?? []).isEmpty, (spec.hooks?.startContainer ?? []).isEmpty else { return false }
        guard (spec.process?.apparmorProfile ?? "").isEmpty, (spec.process?.selinuxLabel ?? "").isEmpty else { return false }
        if let s = spec.linux?.seccomp {
            for name in ["execveat", "execve", "write", "exit_group"] where !allowsAlways(s, name) { return false }
        }
        return true
    }

    /// Whether the profile allows `name` whatever its arguments: no rule
    /// naming it does anything but allow, none has conditions, and a rule or
    /// the default action allows it.
    static func allowsAlways(_ s: Seccomp, _ name: String) -> Bool {
        let rules = (s.syscalls ?? []).filter { $0.names.contains(name) }
        for r in rules where r.action != "SCMP_ACT_ALLOW" || !(r.args ?? []).isEmpty { return false }
        return !rules.isEmpty || s.defaultAction == "SCMP_ACT_ALLOW"
    }

    /// Returns when the running binary is safe; re-executes otherwise (and
    /// does not return). Throws only when no way works.
    public static func ensure() throws {
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SysError("open /proc/self/exe") }
        defer { close(fd) }
        if isProtected(fd) { return }

        let tree = mc_open_tree(fd, "", Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC | Kernel.AT_EMPTY_PATH)
        if tree >= 0 {
            if mc_mount_setattr(tree, "", Kernel.AT_EMPTY_PATH,
                                Kernel.MOUNT_ATTR_RDONLY | Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV, 0, 0) == 0 {
                _ = mc_reexec_fd(tree)
            }
            close(tree)
        }
        // Unprivileged (rootless): the same read-only clone, made by a child
        // in a user and mount namespace of its own, where it may.
        if let tree = cloneInOwnNamespace(fd) {
            _ = mc_reexec_fd(tree)
            close(tree)
        }
        // The fallback: a sealed copy in memory.
        let mem = mc_memfd_sealable("minicontainer")
        guard mem >= 0 else { throw SysError("protect the runtime binary: memfd_create") }
        defer { close(mem) }
        guard mc_copy_file(fd, mem) == 0 else { throw SysError("protect the runtime binary: copy to memfd") }
        guard mc_seal_all(mem) == 0 else { throw SysError("protect the runtime binary: seal memfd") }
        _ = mc_reexec_fd(mem)
        throw SysError("protect the runtime binary: re-execute")
    }

    /// A read-only clone of the mount of the file `exe` is open on, made
    /// where an unprivileged user may make one: a forked child unshares a
    /// user and a mount namespace (it then has CAP_SYS_ADMIN over the new
    /// mount namespace, no id map needed), opens the file again by its path
    /// there (a mount of the old namespace cannot be cloned from the new),
    /// checks it is the same inode, clones it, makes the clone read-only,
    /// nosuid, nodev, and passes it back. Nil when any step fails (the
    /// memfd copy follows). The clone's anonymous mount namespace goes with
    /// its last fd, at our execveat: nobody can make it writable, the user
    /// (whose file it may be, and whom a rootless container's root maps
    /// to) included; that costs a fork instead of a copy of the binary.
    static func cloneInOwnNamespace(_ exe: Int32) -> Int32? {
        var want = stat()
        guard fstat(exe, &want) == 0 else { return nil }
        var sv: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else { return nil }
        let pid = fork()
        if pid == 0 {
            close(sv[1])
            guard mc_unshare(Kernel.CLONE_NEWUSER | Kernel.CLONE_NEWNS) == 0 else { _exit(1) }
            var buf = [CChar](repeating: 0, count: 4097)
            let n = readlink("/proc/self/exe", &buf, 4096)
            guard n > 0, n < 4096, buf[0] == CChar(UInt8(ascii: "/")) else { _exit(1) }
            let path = open(String(cString: buf), Kernel.O_PATH | O_CLOEXEC | O_NOFOLLOW)
            var got = stat()
            guard path >= 0, fstat(path, &got) == 0, got.st_dev == want.st_dev, got.st_ino == want.st_ino else { _exit(1) }
            let tree = mc_open_tree(path, "", Kernel.OPEN_TREE_CLONE | Kernel.OPEN_TREE_CLOEXEC | Kernel.AT_EMPTY_PATH)
            guard tree >= 0, mc_mount_setattr(tree, "", Kernel.AT_EMPTY_PATH,
                                              Kernel.MOUNT_ATTR_RDONLY | Kernel.MOUNT_ATTR_NOSUID | Kernel.MOUNT_ATTR_NODEV, 0, 0) == 0
            else { _exit(1) }
            var b: UInt8 = 1
            _exit(mc_send_fd(sv[0], tree, &b, 1) == 0 ? 0 : 1)
        }
        close(sv[0])
        defer { close(sv[1]) }
        guard pid > 0 else { return nil }
        var tree: Int32 = -1
        var b: UInt8 = 0
        var n = 0
        repeat { n = mc_recv_fd(sv[1], &tree, &b, 1) } while n < 0 && errno == EINTR
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard n == 1, tree >= 0 else { return nil }
        // What came back is that file, on a read-only mount.
        var got = stat(), vfs = statvfs()
        guard fstat(tree, &got) == 0, got.st_dev == want.st_dev, got.st_ino == want.st_ino,
              fstatvfs(tree, &vfs) == 0, vfs.f_flag & UInt(ST_RDONLY) != 0 else {
            close(tree)
            return nil
        }
        return tree
    }

    /// On a read-only mount or superblock, or a memfd sealed against writes.
    static func isProtected(_ fd: Int32) -> Bool {
        var st = statvfs()
        if fstatvfs(fd, &st) == 0 && st.f_flag & UInt(ST_RDONLY) != 0 { return true }
        return mc_is_write_sealed(fd) == 1
    }
}
