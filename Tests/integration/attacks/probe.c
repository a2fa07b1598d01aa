/* Small file probes for the attack tests, from inside a container.
 *   probe write PATH DATA   open(PATH, O_WRONLY) (no O_CREAT, no O_TRUNC), write DATA
 *   probe openw PATH        open(PATH, O_WRONLY) and close it, writing nothing
 *   probe read PATH         print up to 4 KiB of PATH
 *   probe stat PATH         type, rdev and fs magic of PATH (followed)
 * Prints "OK ..." or "ERR errno=E text"; exit 0 on OK, 1 on ERR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int err(const char *what, const char *path) {
    printf("ERR %s %s errno=%d %s\n", what, path, errno, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) { fprintf(stderr, "usage: probe write|openw|read|stat PATH [DATA]\n"); return 2; }
    const char *op = argv[1], *path = argv[2];
    if (!strcmp(op, "write") || !strcmp(op, "openw")) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return err(op, path);
        if (!strcmp(op, "write") && argc > 3) {
            ssize_t n = write(fd, argv[3], strlen(argv[3]));
            if (n < 0) { int e = errno; close(fd); errno = e; return err(op, path); }
        }
        close(fd);
        printf("OK %s %s\n", op, path);
        return 0;
    }
    if (!strcmp(op, "read")) {
        char buf[4097];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return err(op, path);
        ssize_t n = read(fd, buf, 4096);
        close(fd);
        if (n < 0) return err(op, path);
        buf[n] = 0;
        printf("OK read %s: %s\n", path, buf);
        return 0;
    }
    if (!strcmp(op, "stat")) {
        struct stat st; struct statfs sf;
        if (stat(path, &st) != 0) return err(op, path);
        if (statfs(path, &sf) != 0) return err(op, path);
        const char *t = S_ISCHR(st.st_mode) ? "chr" : S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : "other";
        printf("OK stat %s type=%s rdev=%u:%u fsmagic=%#lx\n", path, t, major(st.st_rdev), minor(st.st_rdev), (unsigned long)sf.f_type);
        return 0;
    }
    fprintf(stderr, "unknown op %s\n", op);
    return 2;
}
