// The new mount API (Linux 5.2+): detached mounts that nothing in a
// container can reach or mount over. Each returns -1 with errno set.
#pragma once
#include <stddef.h>
#include <stdint.h>

// open_tree(2): OPEN_TREE_CLONE = 1, OPEN_TREE_CLOEXEC = O_CLOEXEC,
// AT_EMPTY_PATH, AT_RECURSIVE, AT_SYMLINK_NOFOLLOW in flags.
int mc_open_tree(int dirfd, const char *path, unsigned int flags);
// move_mount(2): MOVE_MOUNT_F_EMPTY_PATH = 4, MOVE_MOUNT_T_EMPTY_PATH = 0x40.
int mc_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags);
// fsopen(2) (FSOPEN_CLOEXEC = 1), fsconfig(2), fsmount(2) (FSMOUNT_CLOEXEC = 1).
int mc_fsopen(const char *fsname, unsigned int flags);
// cmd: FSCONFIG_SET_FLAG 0, SET_STRING 1, CMD_CREATE 6; value may be NULL.
int mc_fsconfig(int fsfd, unsigned int cmd, const char *key, const char *value, int aux);
int mc_fsmount(int fsfd, unsigned int flags, unsigned int attr_flags);
