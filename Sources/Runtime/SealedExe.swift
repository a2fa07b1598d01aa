import CShim
import Glibc
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

public enum SealedExe {
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
