/* A host-side hook (createRuntime, poststart, poststop) for
 * test_security_exe.py: forks a child, and both sleep SECONDS. The child is a
 * new process already running this file, so a scanner in a pid namespace
 * the hook was wrongly born in sees this file as its exe, not the runtime's
 * before the hook's execve. Run from a copy in the test's lab, never from a
 * host path an attacker could rewrite.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    useconds_t us = (useconds_t)(argc > 1 ? atof(argv[1]) * 1e6 : 300000);
    pid_t pid = fork();
    usleep(us);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return 0;
}
