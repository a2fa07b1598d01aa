import CShim
import Glibc

// The Linux ABI constants the runtime needs that Swift's Glibc module does
// not export (they sit behind _GNU_SOURCE, or in <linux/*.h> headers it does
// not import) or exports with types that vary, in one place, spelt as in the kernel's headers so that a
// search finds them beside the man pages. Each is the generic value, which
// x86-64, arm64 and riscv64 share. And intent-named wrappers for the few
// prctl and madvise calls the runtime makes, so that a caller reads as what
// it does rather than as an option number. All of it is @inlinable, so a
// caller in another module compiles to the bare number (or the bare call),
// as it did when each module spelt its own.

public enum Kernel {
    // MARK: <linux/fcntl.h>

    @inlinable public static var O_PATH: Int32 { 0o10000000 }
    /// For the `flags` of open_tree(2), mount_setattr(2) (unsigned there).
    @inlinable public static var AT_EMPTY_PATH: UInt32 { 0x1000 }
    @inlinable public static var AT_RECURSIVE: UInt32 { 0x8000 }

    // MARK: <linux/openat2.h>: openat2's `resolve`

    @inlinable public static var RESOLVE_NO_XDEV: UInt64 { 0x01 }
    @inlinable public static var RESOLVE_NO_MAGICLINKS: UInt64 { 0x02 }
    @inlinable public static var RESOLVE_NO_SYMLINKS: UInt64 { 0x04 }
    @inlinable public static var RESOLVE_BENEATH: UInt64 { 0x08 }
    @inlinable public static var RESOLVE_IN_ROOT: UInt64 { 0x10 }

    // MARK: <linux/mount.h>: the new mount API

    @inlinable public static var OPEN_TREE_CLONE: UInt32 { 1 }
    /// O_CLOEXEC.
    @inlinable public static var OPEN_TREE_CLOEXEC: UInt32 { 0o2000000 }
    @inlinable public static var MOVE_MOUNT_F_EMPTY_PATH: UInt32 { 0x04 }
    @inlinable public static var MOVE_MOUNT_T_EMPTY_PATH: UInt32 { 0x40 }
    @inlinable public static var FSOPEN_CLOEXEC: UInt32 { 1 }
    @inlinable public static var FSMOUNT_CLOEXEC: UInt32 { 1 }
    @inlinable public static var FSCONFIG_SET_FLAG: UInt32 { 0 }
    @inlinable public static var FSCONFIG_SET_STRING: UInt32 { 1 }
    @inlinable public static var FSCONFIG_CMD_CREATE: UInt32 { 6 }

    /// mount_setattr(2) and fsmount(2) attributes.
    @inlinable public static var MOUNT_ATTR_RDONLY: UInt64 { 0x1 }
    @inlinable public static var MOUNT_ATTR_NOSUID: UInt64 { 0x2 }
    @inlinable public static var MOUNT_ATTR_NODEV: UInt64 { 0x4 }
    @inlinable public static var MOUNT_ATTR_NOEXEC: UInt64 { 0x8 }
    /// The access-time setting is one value in these bits, not a set of
    /// flags: setting one needs the mask in attr_clr.
    @inlinable public static var MOUNT_ATTR__ATIME: UInt64 { 0x70 }
    @inlinable public static var MOUNT_ATTR_RELATIME: UInt64 { 0x00 }
    @inlinable public static var MOUNT_ATTR_NOATIME: UInt64 { 0x10 }
    @inlinable public static var MOUNT_ATTR_STRICTATIME: UInt64 { 0x20 }
    @inlinable public static var MOUNT_ATTR_NODIRATIME: UInt64 { 0x80 }
    @inlinable public static var MOUNT_ATTR_NOSYMFOLLOW: UInt64 { 0x20_0000 }
    /// The mount's ids go through a user namespace's mappings (Linux 5.12+).
    @inlinable public static var MOUNT_ATTR_IDMAP: UInt64 { 0x10_0000 }

    // MARK: <sys/statvfs.h>: statfs(2)'s f_flags

    @inlinable public static var ST_RDONLY: UInt64 { 0x1 }
    @inlinable public static var ST_NOSUID: UInt64 { 0x2 }
    @inlinable public static var ST_NODEV: UInt64 { 0x4 }
    @inlinable public static var ST_NOEXEC: UInt64 { 0x8 }
    @inlinable public static var ST_SYNCHRONOUS: UInt64 { 0x10 }
    @inlinable public static var ST_MANDLOCK: UInt64 { 0x40 }
    @inlinable public static var ST_NOATIME: UInt64 { 0x400 }
    @inlinable public static var ST_NODIRATIME: UInt64 { 0x800 }
    @inlinable public static var ST_RELATIME: UInt64 { 0x1000 }
    @inlinable public static var ST_NOSYMFOLLOW: UInt64 { 0x2000 }

    // MARK: <linux/magic.h>: statfs(2)'s f_type

    @inlinable public static var PROC_SUPER_MAGIC: UInt64 { 0x9fa0 }
    @inlinable public static var SYSFS_MAGIC: UInt64 { 0x6265_6572 }
    @inlinable public static var CGROUP2_SUPER_MAGIC: UInt64 { 0x6367_7270 }
    @inlinable public static var DEVPTS_SUPER_MAGIC: UInt64 { 0x1cd1 }
    @inlinable public static var SELINUX_MAGIC: UInt64 { 0xf97c_ff8c }

    // MARK: <linux/sched.h>: namespaces, as unshare(2) and setns(2) take them

    @inlinable public static var CLONE_NEWTIME: Int32 { 0x0000_0080 }
    @inlinable public static var CLONE_NEWNS: Int32 { 0x0002_0000 }
    @inlinable public static var CLONE_NEWCGROUP: Int32 { 0x0200_0000 }
    @inlinable public static var CLONE_NEWUTS: Int32 { 0x0400_0000 }
    @inlinable public static var CLONE_NEWIPC: Int32 { 0x0800_0000 }
    @inlinable public static var CLONE_NEWUSER: Int32 { 0x1000_0000 }
    @inlinable public static var CLONE_NEWPID: Int32 { 0x2000_0000 }
    @inlinable public static var CLONE_NEWNET: Int32 { 0x4000_0000 }

    // MARK: <linux/netlink.h>

    @inlinable public static var NETLINK_ROUTE: Int32 { 0 }

    // MARK: <linux/close_range.h>

    @inlinable public static var CLOSE_RANGE_CLOEXEC: UInt32 { 1 << 2 }

    // MARK: <asm-generic/ioctls.h>: ptys

    @inlinable public static var TIOCSPTLCK: UInt { 0x4004_5431 }
    @inlinable public static var TIOCGPTN: UInt { 0x8004_5430 }
    @inlinable public static var TIOCGPTPEER: UInt { 0x5441 }

    // MARK: <linux/mman.h>

    @inlinable public static var MADV_POPULATE_WRITE: Int32 { 23 }

    // MARK: <linux/prctl.h>

    @inlinable public static var PR_SET_PDEATHSIG: Int32 { 1 }
    @inlinable public static var PR_SET_DUMPABLE: Int32 { 4 }
    @inlinable public static var PR_SET_KEEPCAPS: Int32 { 8 }
    @inlinable public static var PR_CAPBSET_READ: Int32 { 23 }
    @inlinable public static var PR_CAPBSET_DROP: Int32 { 24 }
    @inlinable public static var PR_SET_CHILD_SUBREAPER: Int32 { 36 }
    @inlinable public static var PR_SET_NO_NEW_PRIVS: Int32 { 38 }
    @inlinable public static var PR_CAP_AMBIENT: Int32 { 47 }
    @inlinable public static var PR_CAP_AMBIENT_RAISE: UInt { 2 }
    @inlinable public static var PR_CAP_AMBIENT_CLEAR_ALL: UInt { 4 }
}

// MARK: - what the calls are for

extension Kernel {
    /// Orphaned descendants are re-parented to us, not to the namespace's
    /// init, so that we can reap them (PR_SET_CHILD_SUBREAPER). False, with
    /// errno, when refused.
    @inlinable @discardableResult
    public static func becomeChildSubreaper() -> Bool {
        mc_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    }

    /// No ptrace, /proc/PID/mem, environ or fd access by others, and no
    /// core dump (PR_SET_DUMPABLE 0); children cloned after this inherit it
    /// until their execve.
    @inlinable @discardableResult
    public static func setNonDumpable() -> Bool {
        mc_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    }

    /// SIGKILL for us when our parent dies (PR_SET_PDEATHSIG): a helper
    /// child then never outlives the runtime that made it.
    @inlinable @discardableResult
    public static func dieWithParent() -> Bool {
        mc_prctl(PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0) == 0
    }

    /// Whether the permitted set survives a change of every uid away from 0
    /// (PR_SET_KEEPCAPS). False, with errno, when refused.
    @inlinable
    public static func keepCapabilitiesAcrossSetuid(_ keep: Bool) -> Bool {
        mc_prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0) == 0
    }

    /// execve can no longer grant privileges (setuid bits, file
    /// capabilities); for good (PR_SET_NO_NEW_PRIVS).
    @inlinable
    public static func setNoNewPrivileges() -> Bool {
        mc_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    }

    /// Whether capability `cap` is in our bounding set (PR_CAPBSET_READ);
    /// false also when the kernel does not know it.
    @inlinable
    public static func boundingSetHas(_ cap: Int32) -> Bool {
        mc_prctl(PR_CAPBSET_READ, UInt(cap), 0, 0, 0) == 1
    }

    /// Drops `cap` from our bounding set for good (PR_CAPBSET_DROP; needs
    /// CAP_SETPCAP). False, with errno, when refused.
    @inlinable
    public static func dropFromBoundingSet(_ cap: Int32) -> Bool {
        mc_prctl(PR_CAPBSET_DROP, UInt(cap), 0, 0, 0) == 0
    }

    /// Empties the ambient set. False, with errno (EINVAL: a kernel without
    /// ambient capabilities), when refused.
    @inlinable
    public static func clearAmbientCapabilities() -> Bool {
        mc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0
    }

    /// Adds `cap` to the ambient set (it must be permitted and inheritable).
    /// False, with errno, when refused.
    @inlinable
    public static func raiseAmbientCapability(_ cap: Int32) -> Bool {
        mc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, UInt(cap), 0, 0) == 0
    }

    /// Breaks copy-on-write now, and faults in, the `length` bytes of our
    /// memory at `address` as a write would (madvise MADV_POPULATE_WRITE,
    /// Linux 5.14+; before, nothing happens). False, with errno, when refused.
    @inlinable @discardableResult
    public static func populateForWriting(address: UInt, length: Int) -> Bool {
        madvise(UnsafeMutableRawPointer(bitPattern: address), length, MADV_POPULATE_WRITE) == 0
    }
}
