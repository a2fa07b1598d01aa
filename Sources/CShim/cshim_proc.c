#define _GNU_SOURCE
#include "cshim_proc.h"
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <unistd.h>

int mc_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

void mc_reset_signals(void) {
    /* The kernel's struct sigaction (x86_64 and arm64 agree on this shape). */
    struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } sa;
    memset(&sa, 0, sizeof(sa));
    sa.handler = SIG_DFL;
    for (int s = 1; s <= 64; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, s, &sa, NULL, 8);
    }
    unsigned long none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
}
