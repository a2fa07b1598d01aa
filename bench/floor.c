// The kernel floor of one container: what a runtime minimally must do per
// container, in one small C process, so the benchmark can show how far the
// runtimes are from it (bench/compare.sh compiles and runs this; issue 19).
//
// Per container (one iteration):
//   - a cgroup named mcb-floor-<pid>-<i> in every cgroup hierarchy mounted
//     under /sys/fs/cgroup (each v1 one, and cgroup2's: hybrid's unified or
//     a pure v2 root); v1 cpuset gets its parent's cpus and mems, as
//     runtimes fill them;
//   - clone3 into new mount, pid, uts, ipc and network namespaces, straight
//     into the cgroup2 cgroup (CLONE_INTO_CGROUP);
//   - the child moves itself into each v1 cgroup by writing "0" to its
//     `tasks` file (descriptors the parent opened), as minicontainer's init
//     does (Sources/Cgroups/Placement.swift: no wait for the kernel's RCU
//     grace period); with -p procs the parent writes the child's pid into
//     each v1 cgroup.procs instead, as runc and crun do, and releases the
//     child through a pipe;
//   - the child unshares a cgroup namespace, makes / rslave, binds the
//     rootfs onto itself, pivot_root(".", ".") into it and detaches the old
//     root (as runc and minicontainer do), mounts a new /proc, and execs
//     /bin/true with an empty environment;
//   - the parent waits for it (exit status 0 required) and removes the
//     cgroups.
// All mounts are made in the child's own mount namespace, after / is
// rslave, so none reaches the host and all go with the namespace. Every
// cgroup made is removed on every path the program controls: an error, or
// SIGINT, SIGTERM, SIGHUP (the child is SIGKILLed and reaped first). A
// SIGKILLed probe leaves mcb-floor-* cgroups, which compare.sh's cleanup
// removes with its other mcb-* ones.
//
// Usage: floor [-n N] [-r ROOTFS] [-p self|procs] [-o FILE] [-q]
//   N containers one after the other (default 1), each timed from its first
//   mkdir to its last rmdir. Prints "containers N mean MS median MS p10 MS
//   p90 MS" (not with -q); -o appends each container's milliseconds to FILE,
//   one a line.
//   As root. Build: gcc -O2 -o floor bench/floor.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#define MAXH 32
struct hier {
    char mount[256];
    int v2;       // cgroup2
    int cpuset;   // v1 cpuset: cpus and mems to copy
};
static struct hier hs[MAXH];
static int nh;
static char cpus[256], mems[256];

// The current iteration's state, for cleanup from any path.
static char made[MAXH][300];  // directories made ("" = none)
static int nmade;
static pid_t child = -1;
static volatile sig_atomic_t stop;

static void onsignal(int sig) { stop = sig; }

static void die(const char *what) __attribute__((noreturn));

static void rmdirs(void) {
    for (int i = nmade - 1; i >= 0; i--) {
        if (!made[i][0]) continue;
        // A cgroup is busy for a moment after its last task is reaped (v2's
        // populated state); retry briefly.
        for (int t = 0; t < 200; t++) {
            if (rmdir(made[i]) == 0 || errno == ENOENT) break;
            if (errno != EBUSY) break;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        made[i][0] = 0;
    }
    nmade = 0;
}

static void cleanup(void) {
    if (child > 0) {
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
        child = -1;
    }
    rmdirs();
}

static void die(const char *what) {
    int e = errno;
    fprintf(stderr, "floor: %s: %s\n", what, strerror(e));
    cleanup();
    exit(1);
}

static void readfile(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    ssize_t r = read(fd, buf, n - 1);
    if (r < 0) die(path);
    close(fd);
    buf[r] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
}

static int writefile(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)strlen(s) ? 0 : -1;
}

// Every cgroup filesystem mounted at /sys/fs/cgroup or directly below it,
// from /proc/self/mountinfo (a hierarchy mounted twice counted once).
static void findhierarchies(void) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) die("/proc/self/mountinfo");
    char line[4096];
    char opts[MAXH][256];
    while (fgets(line, sizeof line, f)) {
        char *sep = strstr(line, " - ");
        if (!sep) continue;
        char fstype[64], src[256], sopts[256] = "";
        if (sscanf(sep + 3, "%63s %255s %255s", fstype, src, sopts) < 2) continue;
        int v2 = strcmp(fstype, "cgroup2") == 0;
        if (!v2 && strcmp(fstype, "cgroup") != 0) continue;
        char mp[256];
        if (sscanf(line, "%*s %*s %*s %*s %255s", mp) != 1) continue;
        if (strcmp(mp, "/sys/fs/cgroup") != 0 &&
            (strncmp(mp, "/sys/fs/cgroup/", 15) != 0 || strchr(mp + 15, '/'))) continue;
        if (strchr(mp, '\\')) continue;  // an escaped name: not a standard mount
        int dup = 0;
        for (int i = 0; i < nh; i++)
            if (hs[i].v2 == v2 && (v2 || strcmp(opts[i], sopts) == 0)) dup = 1;
        if (dup || nh == MAXH) continue;
        snprintf(hs[nh].mount, sizeof hs[nh].mount, "%s", mp);
        snprintf(opts[nh], sizeof opts[nh], "%s", sopts);
        hs[nh].v2 = v2;
        hs[nh].cpuset = 0;
        if (!v2) {
            char *o = sopts, *tok;
            while ((tok = strsep(&o, ","))) if (strcmp(tok, "cpuset") == 0) hs[nh].cpuset = 1;
        }
        if (hs[nh].cpuset) {
            char p[300];
            snprintf(p, sizeof p, "%s/cpuset.cpus", mp);
            readfile(p, cpus, sizeof cpus);
            snprintf(p, sizeof p, "%s/cpuset.mems", mp);
            readfile(p, mems, sizeof mems);
        }
        nh++;
    }
    fclose(f);
    // cgroup2 at /sys/fs/cgroup itself is a pure v2 host: no v1 then.
    for (int i = 0; i < nh; i++) {
        if (hs[i].v2 && strcmp(hs[i].mount, "/sys/fs/cgroup") == 0) {
            hs[0] = hs[i];
            nh = 1;
            break;
        }
    }
}

static const char *rootfs = "/var/lib/minicontainer/rootfs/busybox";
static int byprocs;  // -p procs

// The child: never returns. Exit codes 100+ name the failed step.
static void inchild(const int *tasks, int ntasks, int release) {
    static const char zero[] = "0";
    if (release >= 0) {  // -p procs: wait until the parent placed us
        char c;
        if (read(release, &c, 1) != 1) _exit(100);
    }
    for (int i = 0; i < ntasks; i++)
        if (write(tasks[i], zero, 1) != 1) _exit(101);
    if (unshare(CLONE_NEWCGROUP) < 0) _exit(102);
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) _exit(103);
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) _exit(104);
    if (chdir(rootfs) < 0) _exit(105);
    if (syscall(SYS_pivot_root, ".", ".") < 0) _exit(106);
    if (mount(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL) < 0) _exit(107);
    if (umount2(".", MNT_DETACH) < 0) _exit(108);
    if (chdir("/") < 0) _exit(109);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) _exit(110);
    char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    _exit(111);
}

static const char *step(int code) {
    static const char *s[] = {"wait for placement", "write 0 to a tasks file", "unshare the cgroup namespace",
                              "make / rslave", "bind the rootfs", "chdir to the rootfs", "pivot_root",
                              "make the old root rslave", "detach the old root", "chdir to /",
                              "mount /proc", "exec /bin/true"};
    return code >= 100 && code <= 111 ? s[code - 100] : NULL;
}

static void container(int iter) {
    int tasks[MAXH], ntasks = 0, v2fd = -1, pipefd[2] = {-1, -1};
    char p[400];
    nmade = 0;
    for (int i = 0; i < nh; i++) {
        if (snprintf(made[nmade], sizeof made[nmade], "%.200s/mcb-floor-%d-%d", hs[i].mount, (int)getpid(),
                     iter) >= (int)sizeof made[nmade]) {
            errno = ENAMETOOLONG;
            die(hs[i].mount);
        }
        if (mkdir(made[nmade], 0755) < 0) {
            made[nmade][0] = 0;
            die("mkdir a cgroup");
        }
        const char *dir = made[nmade++];
        if (hs[i].cpuset) {
            snprintf(p, sizeof p, "%s/cpuset.cpus", dir);
            if (writefile(p, cpus) < 0) die(p);
            snprintf(p, sizeof p, "%s/cpuset.mems", dir);
            if (writefile(p, mems) < 0) die(p);
        }
        if (hs[i].v2) {
            v2fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (v2fd < 0) die(dir);
        } else {
            snprintf(p, sizeof p, "%s/%s", dir, byprocs ? "cgroup.procs" : "tasks");
            tasks[ntasks] = open(p, O_WRONLY | O_CLOEXEC);
            if (tasks[ntasks] < 0) die(p);
            ntasks++;
        }
    }
    if (byprocs && pipe2(pipefd, O_CLOEXEC) < 0) die("pipe");

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
    ca.exit_signal = SIGCHLD;
    if (v2fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)v2fd;
    }
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0) die("clone3");
    if (pid == 0) {
        if (byprocs) {
            close(pipefd[1]);
            inchild(NULL, 0, pipefd[0]);
        }
        inchild(tasks, ntasks, -1);
    }
    child = (pid_t)pid;
    if (v2fd >= 0) close(v2fd);
    if (byprocs) {
        close(pipefd[0]);
        char s[32];
        int n = snprintf(s, sizeof s, "%ld", pid);
        for (int i = 0; i < ntasks; i++)
            if (write(tasks[i], s, n) != n) die("write the pid to a cgroup.procs");
        if (write(pipefd[1], "x", 1) != 1) die("release the child");
        close(pipefd[1]);
    }
    for (int i = 0; i < ntasks; i++) close(tasks[i]);

    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid");
        if (stop) {
            cleanup();
            exit(128 + stop);
        }
    }
    child = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (step(code))
            fprintf(stderr, "floor: the container's child failed to %s\n", step(code));
        else
            fprintf(stderr, "floor: the container's /bin/true ended with status %#x\n", status);
        cleanup();
        exit(1);
    }
    rmdirs();
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The q-quantile of sorted v[0..n) (linear between closest ranks).
static double quantile(const double *v, int n, double q) {
    double k = q * (n - 1);
    int i = (int)k;
    return i + 1 < n ? v[i] + (k - i) * (v[i + 1] - v[i]) : v[n - 1];
}

int main(int argc, char **argv) {
    int n = 1, quiet = 0, opt;
    const char *out = NULL;
    while ((opt = getopt(argc, argv, "n:r:p:o:q")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'r': rootfs = optarg; break;
        case 'p':
            if (strcmp(optarg, "procs") == 0) byprocs = 1;
            else if (strcmp(optarg, "self") != 0) n = -1;
            break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        default: n = -1;
        }
    }
    if (n < 1 || optind != argc) {
        fprintf(stderr, "usage: floor [-n N] [-r ROOTFS] [-p self|procs] [-o FILE] [-q]\n");
        return 2;
    }
    char real[4096];
    if (!realpath(rootfs, real)) die(rootfs);
    rootfs = strdup(real);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onsignal;  // no SA_RESTART: waitpid returns EINTR
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    findhierarchies();
    if (nh == 0) {
        errno = ENOENT;
        die("no cgroup filesystem under /sys/fs/cgroup");
    }
    double *t = malloc(sizeof *t * n);
    if (!t) die("malloc");
    for (int i = 0; i < n && !stop; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        container(i);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    }
    if (stop) {
        cleanup();
        return 128 + stop;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    if (out) {
        FILE *f = fopen(out, "ae");
        if (!f) die(out);
        for (int i = 0; i < n; i++) fprintf(f, "%.4f\n", t[i]);
        if (fclose(f) != 0) die(out);
    }
    qsort(t, n, sizeof *t, cmp);
    if (!quiet)
        printf("containers %d mean %.3f median %.3f p10 %.3f p90 %.3f\n", n, sum / n,
               quantile(t, n, 0.5), quantile(t, n, 0.1), quantile(t, n, 0.9));
    free(t);
    return 0;
}
