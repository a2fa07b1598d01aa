// CShim, process calls that need _GNU_SOURCE and so do not reach Swift
// through its Glibc module.
#ifndef MINICONTAINER_CSHIM_PROC_H
#define MINICONTAINER_CSHIM_PROC_H
#include <stddef.h>
#include <sys/types.h>

int mc_pipe2(int fds[2], int flags);
// O_PATH, for Swift.
int mc_o_path(void);
// Opens a new pty master (O_RDWR|O_NOCTTY|O_CLOEXEC), unlocks it and writes
// the slave's path into name. Returns the master or -1.
int mc_open_pty(char *name, size_t len);
#endif
