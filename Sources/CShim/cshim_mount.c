#define _GNU_SOURCE
#include "cshim_mount.h"
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif

int mc_open_tree(int dirfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

int mc_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

int mc_fsopen(const char *fsname, unsigned int flags) { return (int)syscall(SYS_fsopen, fsname, flags); }

int mc_fsconfig(int fsfd, unsigned int cmd, const char *key, const char *value, int aux) {
    return (int)syscall(SYS_fsconfig, fsfd, cmd, key, value, aux);
}

int mc_fsmount(int fsfd, unsigned int flags, unsigned int attr_flags) {
    return (int)syscall(SYS_fsmount, fsfd, flags, attr_flags);
}
