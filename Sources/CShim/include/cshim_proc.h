// CShim, process calls that need _GNU_SOURCE and so do not reach Swift
// through its Glibc module.
#ifndef MINICONTAINER_CSHIM_PROC_H
#define MINICONTAINER_CSHIM_PROC_H
#include <stddef.h>
#include <sys/types.h>

int mc_pipe2(int fds[2], int flags);
// Every signal to SIG_DFL and none blocked, through the raw system calls:
// glibc's signal() and sigprocmask() refuse or skip 32 and 33, which it
// keeps for itself, and a caller may have left them ignored. For a
// single-threaded process about to exec (or a fork of one).
void mc_reset_signals(void);
// O_PATH, for Swift.
#endif
