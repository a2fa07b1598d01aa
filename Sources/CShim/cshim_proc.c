#define _GNU_SOURCE
#include "cshim_proc.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int mc_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
