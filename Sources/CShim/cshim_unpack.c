#define _GNU_SOURCE
#include "cshim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

// Layer unpacking: calls on a name in a directory fd that never follow a
// symlink in that name, with a fallback for kernels before the *at call.

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif

struct mc_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static int no_at_syscall(void) { return errno == ENOSYS; }

int mc_fchmodat_nofollow(int dirfd, const char *name, uint32_t mode) {
    long r = syscall(SYS_fchmodat2, dirfd, name, (unsigned)mode, AT_SYMLINK_NOFOLLOW);
    if (r == 0 || !no_at_syscall()) return (int)r;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (S_ISLNK(st.st_mode)) return 0;
    return fchmodat(dirfd, name, mode, 0);
}

static int proc_path(char *buf, size_t n, int dirfd, const char *name) {
    int k = snprintf(buf, n, "/proc/self/fd/%d/%s", dirfd, name);
    if (k < 0 || (size_t)k >= n) { errno = ENAMETOOLONG; return -1; }
    return 0;
}

int mc_lsetxattrat(int dirfd, const char *name, const char *xname, const void *value, size_t size) {
    struct mc_xattr_args a = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
    long r = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof(a));
    if (r == 0 || !no_at_syscall()) return (int)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return lsetxattr(p, xname, value, size, 0);
}

ssize_t mc_llistxattrat(int dirfd, const char *name, char *list, size_t size) {
    long r = syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, list, size);
    if (r >= 0 || !no_at_syscall()) return (ssize_t)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return llistxattr(p, list, size);
}

ssize_t mc_lgetxattrat(int dirfd, const char *name, const char *xname, void *value, size_t size) {
    struct mc_xattr_args a = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
    long r = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof(a));
    if (r >= 0 || !no_at_syscall()) return (ssize_t)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return lgetxattr(p, xname, value, size);
}

uint64_t mc_makedev(uint32_t major, uint32_t minor) { return makedev(major, minor); }

int mc_fsetxattr(int fd, const char *xname, const void *value, size_t size) { return fsetxattr(fd, xname, value, size, 0); }
ssize_t mc_fgetxattr(int fd, const char *xname, void *value, size_t size) { return fgetxattr(fd, xname, value, size); }
ssize_t mc_copy_file_range(int in, int out, size_t len) { return copy_file_range(in, NULL, out, NULL, len, 0); }
