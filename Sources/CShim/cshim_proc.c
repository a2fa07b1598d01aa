#define _GNU_SOURCE
#include "cshim_proc.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int mc_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int mc_o_path(void) { return O_PATH; }

int mc_open_pty(char *name, size_t len) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (unlockpt(m) < 0 || ptsname_r(m, name, len) != 0) {
        close(m);
        return -1;
    }
    return m;
}
