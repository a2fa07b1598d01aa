// CShim, process calls that need _GNU_SOURCE and so do not reach Swift
// through its Glibc module.
#ifndef MINICONTAINER_CSHIM_PROC_H
#define MINICONTAINER_CSHIM_PROC_H
#include <stddef.h>
#include <sys/types.h>

int mc_pipe2(int fds[2], int flags);
// O_PATH, for Swift.
#endif
