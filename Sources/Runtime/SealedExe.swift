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
        // The fallback: a sealed copy in memory.
        let mem = mc_memfd_sealable("minicontainer")
        guard mem >= 0 else { throw SysError("protect the runtime binary: memfd_create") }
        defer { close(mem) }
        guard mc_copy_file(fd, mem) == 0 else { throw SysError("protect the runtime binary: copy to memfd") }
        guard mc_seal_all(mem) == 0 else { throw SysError("protect the runtime binary: seal memfd") }
        _ = mc_reexec_fd(mem)
        throw SysError("protect the runtime binary: re-execute")
    }

    /// On a read-only mount or superblock, or a memfd sealed against writes.
    static func isProtected(_ fd: Int32) -> Bool {
        var st = statvfs()
        if fstatvfs(fd, &st) == 0 && st.f_flag & UInt(ST_RDONLY) != 0 { return true }
        return mc_is_write_sealed(fd) == 1
    }
}
