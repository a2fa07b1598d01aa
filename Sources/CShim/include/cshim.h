// CShim: the small set of Linux calls that Swift's Glibc module hides or
// imports awkwardly, and a few build and process facts. Everything is
// prefixed mc_; the system-call wrappers return -1 with errno set on
// failure, like the syscalls themselves.
#ifndef MINICONTAINER_CSHIM_H
#define MINICONTAINER_CSHIM_H

#include <stdint.h>
#include <sys/types.h>

// clone3 without CLONE_VM: behaves like fork (returns 0 in the child). When
// cgroup_fd >= 0, CLONE_INTO_CGROUP places the child in that cgroup (v2).
pid_t mc_clone3(uint64_t flags, int cgroup_fd, int pidfd_out_wanted, int *pidfd_out);

int mc_unshare(int flags);
int mc_setns(int fd, int nstype);
int mc_pivot_root(const char *new_root, const char *put_old);
int mc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int mc_pidfd_open(pid_t pid, unsigned int flags);
int mc_close_range(unsigned int first, unsigned int last, unsigned int flags);
// renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): both names swap files, atomically.
int mc_rename_exchange(const char *a, const char *b);

// SCM_RIGHTS over a unix socket: one fd with a short payload.
int mc_send_fd(int sock, int fd, const void *data, size_t len);
// Returns bytes of payload received; *fd_out is -1 when none came.
ssize_t mc_recv_fd(int sock, int *fd_out, void *data, size_t len);

// Rootfs helpers.
// openat2(2): flags/mode as for openat, resolve a set of RESOLVE_* bits
// (RESOLVE_IN_ROOT = 0x10 resolves `path` as if dirfd were "/").
int mc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
// mount_setattr(2): attr_set/attr_clr are MOUNT_ATTR_* bits, propagation an
// MS_* propagation type or 0; flags e.g. AT_EMPTY_PATH|AT_RECURSIVE.
int mc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     uint64_t attr_set, uint64_t attr_clr, uint64_t propagation);
// mount_setattr(2) with MOUNT_ATTR_IDMAP: the ids of the detached mount at
// dirfd/path mapped through the user namespace userns_fd (Linux 5.12+).
int mc_mount_setattr_idmap(int dirfd, const char *path, unsigned int flags, int userns_fd);
// statfs(2) on a path: the filesystem magic and the ST_* mount flags.
int mc_statfs(const char *path, uint64_t *fs_type, uint64_t *mount_flags);

// libseccomp's function-like action macros, which Swift cannot import:
// SCMP_ACT_ERRNO(x) and SCMP_ACT_TRACE(x) from <seccomp.h>. Macros only; no
// libseccomp symbol is referenced, so CShim needs no link to it.
uint32_t mc_scmp_act_errno(uint16_t err);
uint32_t mc_scmp_act_trace(uint16_t msg);

// glibc's setresuid/setresgid (every thread), which need _GNU_SOURCE.
int mc_setresuid(uid_t r, uid_t e, uid_t s);
int mc_setresgid(gid_t r, gid_t e, gid_t s);

// The process's argc and argv[i], saved by a constructor (no CommandLine).
int mc_argc(void);
char *mc_argv(int i);

// Build facts, set by the Makefile with -Xcc -DMC_COMMIT="...".
const char *mc_commit(void);

// Layer unpacking (Image, cshim_unpack.c): the final component never followed.
// chmod of `name` in `dirfd` (fchmodat2 with AT_SYMLINK_NOFOLLOW; where the
// kernel lacks it, a symlink is left alone and anything else chmod'ed).
int mc_fchmodat_nofollow(int dirfd, const char *name, uint32_t mode);
// setxattr on `name` in `dirfd` itself, also a symlink, fifo or device node
// (setxattrat(2) with AT_SYMLINK_NOFOLLOW; before Linux 6.13, lsetxattr
// through /proc/self/fd/<dirfd>/<name>).
int mc_lsetxattrat(int dirfd, const char *name, const char *xname, const void *value, size_t size);
// llistxattr/lgetxattr the same way (for copying a lower layer's file up).
ssize_t mc_llistxattrat(int dirfd, const char *name, char *list, size_t size);
ssize_t mc_lgetxattrat(int dirfd, const char *name, const char *xname, void *value, size_t size);
// fsetxattr/fgetxattr and copy_file_range, which Glibc's module leaves out.
int mc_fsetxattr(int fd, const char *xname, const void *value, size_t size);
ssize_t mc_fgetxattr(int fd, const char *xname, void *value, size_t size);
ssize_t mc_copy_file_range(int in, int out, size_t len);
// makedev(3), a macro.
uint64_t mc_makedev(uint32_t major, uint32_t minor);

// SHA-256 (cshim_unpack.c): SHA-NI where the CPU has it, else portable C;
// the CPU is asked at the first hash, not at start.
typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    uint32_t n;
} mc_sha256_ctx;
void mc_sha256_init(mc_sha256_ctx *c);
void mc_sha256_update(mc_sha256_ctx *c, const void *data, size_t n);
void mc_sha256_final(mc_sha256_ctx *c, uint8_t out[32]);
// Whether SHA-NI is used; force_portable 1 makes it portable C from now on,
// -1 asks the CPU again (tests); 0 just asks.
int mc_sha256_accelerated(int force_portable);

#endif
