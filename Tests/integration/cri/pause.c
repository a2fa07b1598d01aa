/* The pod sandbox's process for test_cri.py: it holds the pod's namespaces
 * and does nothing else. As pid 1 of a pid namespace the pod's containers
 * share, it reaps the orphans they leave; SIGTERM and SIGINT end it (pid 1
 * gets no default action for them). Built static by the test, so the pause
 * image is this one file. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = quit;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
}
