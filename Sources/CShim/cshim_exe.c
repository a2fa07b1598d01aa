#define _GNU_SOURCE
#include "cshim_exe.h"
#include "cshim.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int mc_reexec_fd(int fd) {
    int argc = mc_argc();
    char *argv[argc + 1];
    for (int i = 0; i < argc; i++) argv[i] = mc_argv(i);
    argv[argc] = NULL;
    return mc_execveat_fd(fd, argv, environ);
}

int mc_memfd_sealable(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int mc_copy_file(int in, int out) {
    off_t off = 0;
    for (;;) {
        ssize_t n = copy_file_range(in, &off, out, NULL, 1 << 30, 0);
        if (n == 0) return 0;
        if (n < 0) break;
    }
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -1;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = pread(in, buf, sizeof(buf), off);
        if (n == 0) return 0;
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0) { if (errno == EINTR) continue; return -1; }
            w += k;
        }
        off += n;
    }
}

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

int mc_seal_all(int fd) {
    int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (fcntl(fd, F_ADD_SEALS, seals | F_SEAL_FUTURE_WRITE) == 0) return 0;
    return fcntl(fd, F_ADD_SEALS, seals);
}

int mc_is_write_sealed(int fd) {
    int s = fcntl(fd, F_GET_SEALS);
    return s >= 0 && (s & F_SEAL_WRITE) && (s & F_SEAL_SEAL) ? 1 : 0;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

int mc_memfd_executable(const char *name) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd;
}

int mc_execveat_fd(int fd, char *const argv[], char *const envp[]) {
    return (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}
