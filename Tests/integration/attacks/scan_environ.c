/* The exec'd child is dumpable before its execve (issue 11, item 3): from
 * inside a running container, loop over /proc/[0-9]* and read every new
 * process's /proc/PID/environ and its fd list, looking for SECRET (which the
 * host puts only in the environment of the runtime command it runs: a
 * process that is still the runtime, before its execve, shows it).
 *
 *   scan_environ SECRET DEADLINE_S    (SIGUSR1 ends it early)
 *
 * Lines: "READY", "SAW pid=P", "LEAK pid=P where=environ var=NAME" or
 * "LEAK pid=P where=fd fd=N -> PATH",
 * "DONE saw=N leaks=N". Exit 0 when nothing leaked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1 = 1; }
static char seen[65536];
static char reported[65536][24];  /* the variable last reported per pid: each leak once */
static int nsaw, leaks;

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void look(int pid, const char *secret) {
    char p[64], buf[65536];
    snprintf(p, sizeof p, "/proc/%d/environ", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = 0;
            for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = '\n';
            char *hit = memmem(buf, n, secret, strlen(secret));
            if (hit) {
                /* Name the variable: the start of its line. */
                char *var = hit;
                while (var > buf && var[-1] != '\n') var--;
                int len = 0;
                while (var + len < hit && var[len] != '=' && len < 64) len++;
                char name[24];
                snprintf(name, sizeof name, "%.*s", len, var);
                if (strcmp(reported[pid], name) != 0) {
                    snprintf(reported[pid], sizeof reported[pid], "%s", name);
                    printf("LEAK pid=%d where=environ var=%s\n", pid, name);
                    leaks++;
                }
            }
        }
    }
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char l[300], t[512];
            snprintf(l, sizeof l, "/proc/%d/fd/%s", pid, e->d_name);
            ssize_t n = readlink(l, t, sizeof t - 1);
            if (n > 0) {
                t[n] = 0;
                if (strstr(t, secret) && strcmp(reported[pid], "fd") != 0) {
                    snprintf(reported[pid], sizeof reported[pid], "fd");
                    printf("LEAK pid=%d where=fd fd=%s -> %s\n", pid, e->d_name, t);
                    leaks++;
                }
            }
        }
        closedir(d);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s SECRET DEADLINE_S\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGTERM, on_usr1);
    const char *secret = argv[1];
    double deadline = now() + atof(argv[2]);
    printf("READY\n");
    while (!usr1 && now() < deadline) {
        DIR *d = opendir("/proc");
        if (!d) break;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == getpid() || pid >= (int)sizeof seen) continue;
            if (!seen[pid]) { seen[pid] = 1; nsaw++; printf("SAW pid=%d\n", pid); }
            /* Look again and again: the window is between clone and execve. */
            look(pid, secret);
        }
        closedir(d);
    }
    printf("DONE saw=%d leaks=%d\n", nsaw, leaks);
    return leaks ? 1 : 0;
}
