// CShim: the small set of Linux calls that Swift's Glibc module hides or
// imports awkwardly. Everything is prefixed mc_ and returns -1 with errno set
// on failure, like the syscalls themselves.
#ifndef MINICONTAINER_CSHIM_H
#define MINICONTAINER_CSHIM_H

#include <stdint.h>
#include <sys/types.h>

// clone3 without CLONE_VM: behaves like fork (returns 0 in the child). When
// cgroup_fd >= 0, CLONE_INTO_CGROUP places the child in that cgroup (v2).
pid_t mc_clone3(uint64_t flags, int cgroup_fd, int pidfd_out_wanted, int *pidfd_out);
// Plain clone(2)-as-fork with namespace flags, for kernels without clone3.
pid_t mc_fork_flags(unsigned long flags);

int mc_unshare(int flags);
int mc_setns(int fd, int nstype);
int mc_pivot_root(const char *new_root, const char *put_old);
int mc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int mc_pidfd_open(pid_t pid, unsigned int flags);
int mc_pidfd_send_signal(int pidfd, int sig);
int mc_close_range(unsigned int first, unsigned int last, unsigned int flags);
int mc_execveat_fd(int fd, char *const argv[], char *const envp[]);

// SCM_RIGHTS over a unix socket: one fd with a short payload.
int mc_send_fd(int sock, int fd, const void *data, size_t len);
// Returns bytes of payload received; *fd_out is -1 when none came.
ssize_t mc_recv_fd(int sock, int *fd_out, void *data, size_t len);

int mc_errno(void);
void mc_set_errno(int value);

#endif

// Build facts, set by the Makefile with -Xcc -DMC_COMMIT="...".
const char *mc_commit(void);
