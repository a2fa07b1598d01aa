/* The created init is dumpable (issue 11, item 3), from an exec'd process
 * in a created container with the default capabilities (no CAP_SYS_PTRACE).
 * Tries, against PID (default 1): PTRACE_ATTACH, process_vm_readv, reading
 * /proc/PID/mem, /proc/PID/environ, /proc/PID/maps, readlink of each
 * /proc/PID/fd/N, readlink /proc/PID/exe. One line per attempt: "NAME OK detail" or
 * "NAME DENIED errno=E". Exit 0 when every attempt was denied.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int oks;
static void ok(const char *what, const char *detail) { printf("%s OK %s\n", what, detail); oks++; }
static void denied(const char *what) { printf("%s DENIED errno=%d %s\n", what, errno, strerror(errno)); }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int pid = argc > 1 ? atoi(argv[1]) : 1;
    char p[64], buf[4096], detail[512];
    unsigned long addr = 0;

    snprintf(p, sizeof p, "/proc/%d/maps", pid);
    int fd = open(p, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (n > 0) {
        buf[n] = 0;
        addr = strtoul(buf, NULL, 16);
        char *nl = strchr(buf, '\n'); if (nl) *nl = 0;
        snprintf(detail, sizeof detail, "first=%.200s", buf);
        ok("maps", detail);
    } else denied("maps");
    if (fd >= 0) close(fd);
    if (!addr) addr = 0x400000;  /* a guess: the permission check comes first anyway */

    snprintf(p, sizeof p, "/proc/%d/mem", pid);
    fd = open(p, O_RDONLY);
    if (fd < 0) denied("mem");
    else {
        n = pread(fd, buf, 16, (off_t)addr);
        if (n > 0) { snprintf(detail, sizeof detail, "read=%zd at=%#lx", n, addr); ok("mem", detail); }
        else if (n < 0 && errno == EIO) ok("mem", "opened (EIO at the guessed address)");
        else denied("mem");
        close(fd);
    }

    snprintf(p, sizeof p, "/proc/%d/environ", pid);
    fd = open(p, O_RDONLY);
    if (fd < 0) denied("environ");
    else {
        n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
            buf[n < 120 ? n : 120] = 0;
            snprintf(detail, sizeof detail, "bytes=%zd head=%.120s", n, buf);
            ok("environ", detail);
        } else if (n == 0) printf("environ EMPTY\n");
        else denied("environ");
        close(fd);
    }

    /* The fd numbers alone are listed to anyone with the same uid (a DAC
     * check only, whatever the dumpable flag): not counted. What each one
     * is (readlink, open) needs ptrace access. */
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    if (!d) denied("fd-names");
    else {
        int count = 0, links = 0; struct dirent *e;
        char l[300], t[512], first[512] = "";
        int lerr = 0;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            count++;
            snprintf(l, sizeof l, "/proc/%d/fd/%.200s", pid, e->d_name);
            ssize_t m = readlink(l, t, sizeof t - 1);
            if (m > 0) { t[m] = 0; if (!links++) snprintf(first, sizeof first, "%.200s -> %.250s", e->d_name, t); }
            else lerr = errno;
        }
        closedir(d);
        printf("fd-names INFO entries=%d\n", count);
        if (links) { snprintf(detail, sizeof detail, "links=%d first=%.400s", links, first); ok("fd", detail); }
        else if (count) { errno = lerr; denied("fd"); }
        else printf("fd EMPTY\n");
    }

    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    n = readlink(p, buf, sizeof buf - 1);
    if (n > 0) { buf[n] = 0; snprintf(detail, sizeof detail, "-> %.300s", buf); ok("exe", detail); }
    else denied("exe");

    struct iovec local = { buf, 16 }, remote = { (void *)addr, 16 };
    n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n > 0) { snprintf(detail, sizeof detail, "read=%zd", n); ok("process_vm_readv", detail); }
    else if (n < 0 && errno == EFAULT) ok("process_vm_readv", "allowed (EFAULT at the guessed address)");
    else denied("process_vm_readv");

    if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
        int st; waitpid(pid, &st, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        ok("ptrace", "attached");
    } else denied("ptrace");

    printf("DONE ok=%d\n", oks);
    return oks ? 1 : 0;
}
