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
// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC): MFD_EXEC
// (Linux 6.3) says it is meant to run, so vm.memfd_noexec=1 leaves it
// executable; before 6.3 the flag is unknown and it is made without it.
int mc_memfd_executable(const char *name);
// execveat(fd, "", argv, envp, AT_EMPTY_PATH). Returns only on failure.
int mc_execveat_fd(int fd, char *const argv[], char *const envp[]);
