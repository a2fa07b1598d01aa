#define _GNU_SOURCE
#include "cshim.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>
#include <linux/openat2.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

struct mc_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

pid_t mc_clone3(uint64_t flags, int cgroup_fd, int pidfd_out_wanted, int *pidfd_out) {
    struct mc_clone_args args;
    int pidfd = -1;
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    // CLONE_PARENT takes the caller's exit signal; clone3 refuses one given with it.
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    if (pidfd_out_wanted) {
        args.flags |= CLONE_PIDFD;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    }
    long r = syscall(SYS_clone3, &args, sizeof(args));
    if (r > 0 && pidfd_out) *pidfd_out = pidfd;
    return (pid_t)r;
}

int mc_unshare(int flags) { return unshare(flags); }
int mc_setns(int fd, int nstype) { return setns(fd, nstype); }
int mc_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}
int mc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}
int mc_pidfd_open(pid_t pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, pid, flags);
}
int mc_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

int mc_rename_exchange(const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
}

int mc_send_fd(int sock, int fd, const void *data, size_t len) {
    struct msghdr msg;
    struct iovec iov;
    char control[CMSG_SPACE(sizeof(int))];
    char dummy = 0;
    memset(&msg, 0, sizeof(msg));
    memset(control, 0, sizeof(control));
    iov.iov_base = len ? (void *)data : &dummy;
    iov.iov_len = len ? len : 1;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

ssize_t mc_recv_fd(int sock, int *fd_out, void *data, size_t len) {
    struct msghdr msg;
    struct iovec iov;
    char control[CMSG_SPACE(sizeof(int))];
    char dummy;
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = len ? data : &dummy;
    iov.iov_len = len ? len : 1;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    *fd_out = -1;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(fd_out, CMSG_DATA(c), sizeof(int));
        }
    }
    return n;
}

int mc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
struct mc_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

int mc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     uint64_t attr_set, uint64_t attr_clr, uint64_t propagation) {
    struct mc_mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = attr_set;
    attr.attr_clr = attr_clr;
    attr.propagation = propagation;
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

int mc_mount_setattr_idmap(int dirfd, const char *path, unsigned int flags, int userns_fd) {
    struct mc_mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = 0x00100000; /* MOUNT_ATTR_IDMAP */
    attr.userns_fd = (uint64_t)userns_fd;
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

int mc_statfs(const char *path, uint64_t *fs_type, uint64_t *mount_flags) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    if (fs_type) *fs_type = (uint64_t)st.f_type;
    if (mount_flags) *mount_flags = (uint64_t)st.f_flags;
    return 0;
}

#ifndef MC_COMMIT
#define MC_COMMIT "unknown"
#endif
const char *mc_commit(void) { return MC_COMMIT; }

#if __has_include(<seccomp.h>)
#include <seccomp.h>
#endif
#ifndef SCMP_ACT_ERRNO
// As <seccomp.h> defines them (libseccomp 2.x).
#define SCMP_ACT_ERRNO(x) (0x00050000U | ((x) & 0x0000ffffU))
#define SCMP_ACT_TRACE(x) (0x7ff00000U | ((x) & 0x0000ffffU))
#endif
uint32_t mc_scmp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }
uint32_t mc_scmp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }

int mc_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int mc_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }

/* The command line, as glibc hands it to constructors: Swift's CommandLine
 * would cost a first use of code the runtime does not otherwise need. */
static int mc_saved_argc;
static char **mc_saved_argv;
__attribute__((constructor)) static void mc_save_args(int argc, char **argv, char **envp) {
    (void)envp;
    mc_saved_argc = argc;
    mc_saved_argv = argv;
}
int mc_argc(void) { return mc_saved_argc; }
char *mc_argv(int i) { return i >= 0 && i < mc_saved_argc ? mc_saved_argv[i] : NULL; }

// Stand-ins for the libraries behind libcurl features we never enable
// (scripts/curl-unlinked.ld): LDAP, RTMP, SCP/SFTP and GSSAPI. The registry
// client allows only http and https, and no Negotiate auth.
int mc_unlinked_ok(void) { return 0; }
void mc_unlinked_feature(void) {
    static const char m[] = "minicontainer: a libcurl feature that is not linked was called\n";
    (void)!write(2, m, sizeof m - 1);
    abort();
}
