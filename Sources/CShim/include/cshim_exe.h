// Re-executing ourselves from a file the container cannot write (CVE-2019-5736).
#pragma once

// execveat(fd, "", argv, environ, AT_EMPTY_PATH) with the command line the
// process started with. Returns only on failure (-1, errno).
int mc_reexec_fd(int fd);
// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING).
int mc_memfd_sealable(const char *name);
// Copies all of `in` into `out` (copy_file_range, then read/write); 0 or -1.
int mc_copy_file(int in, int out);
// F_ADD_SEALS: SEAL, SHRINK, GROW, WRITE (and FUTURE_WRITE where known).
int mc_seal_all(int fd);
// 1 when `fd` is a memfd sealed against writes, else 0.
int mc_is_write_sealed(int fd);
