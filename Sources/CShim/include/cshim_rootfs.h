// CShim, descriptor-based checks for the filesystem setup and the procfs
// handle (Rootfs, Sys/ProcFS.swift).
#ifndef MINICONTAINER_CSHIM_ROOTFS_H
#define MINICONTAINER_CSHIM_ROOTFS_H
#include <stdint.h>

// fstatfs(2): the filesystem magic and the ST_* mount flags of an open
// descriptor (O_PATH ones too). -1 with errno set on failure.
int mc_fstatfs(int fd, uint64_t *fs_type, uint64_t *mount_flags);
#endif
