/* tracepages: which code of a binary a command really executes.
 *
 * Runs COMMAND under ptrace, single-stepping every thread and process it
 * starts (children until they exec something else), and writes a line "ADDR P" or
 * "ADDR C" the first time the command's own process (P) or one of its
 * children (C, the container's init) executes a 16-byte-aligned
 * instruction address inside [LO, HI) of the traced binary. scripts/order.sh turns
 * that into a linker symbol ordering file, so that the code a container's
 * life runs lies together and page-fault "fault-around" maps little else:
 * that is what peak RSS counts.
 *
 * Usage: tracepages LO HI OUT -- COMMAND ARGS...   (LO, HI in hex; as root)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: tracepages LO HI OUT -- COMMAND ARGS...\n");
        return 2;
    }
    uint64_t lo = strtoull(argv[1], NULL, 16), hi = strtoull(argv[2], NULL, 16);
    FILE *out = fopen(argv[3], "w");
    if (!out || hi <= lo) { perror("tracepages"); return 2; }
    size_t slots = (hi - lo) / 16 + 1;
    unsigned char *seen = calloc(slots, 1);  /* bit 1: by the command, bit 2: by a child */

    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execvp(argv[5], argv + 5);
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    ptrace(PTRACE_SINGLESTEP, child, 0, 0);
    int live = 1, rc = 0;
    long steps = 0;
    while (live > 0) {
        pid_t t = waitpid(-1, &status, __WALL);
        if (t < 0) { if (errno == EINTR) continue; break; }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (t == child) rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            live--;
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
        if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK) {
            live++;  /* the new one stops with SIGSTOP and is stepped from there */
        } else if (event == PTRACE_EVENT_EXEC) {
            /* The command's own execs (the first, and the runtime re-executing
             * itself from a read-only copy) stay in the binary; a child's exec
             * (the container's program, a hook) leaves it. */
            if (t != child) { ptrace(PTRACE_DETACH, t, 0, 0); live--; continue; }
        } else if (sig == SIGTRAP) {
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, t, 0, &r) == 0 && r.rip >= lo && r.rip < hi) {
                size_t k = (r.rip - lo) / 16;
                unsigned char who = t == child ? 1 : 2;
                if (!(seen[k] & who)) {
                    seen[k] |= who;
                    fprintf(out, "%llx %c\n", (unsigned long long)(lo + k * 16), who == 1 ? 'P' : 'C');
                }
                steps++;
            }
        } else if (sig != SIGSTOP) {
            deliver = sig;
        }
        ptrace(PTRACE_SINGLESTEP, t, 0, deliver);
    }
    fclose(out);
    fprintf(stderr, "tracepages: %ld steps in the binary\n", steps);
    return rc;
}
