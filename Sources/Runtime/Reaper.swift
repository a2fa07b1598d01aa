import CShim
import Glibc
import Sys

// `--init` (Annotation.initProcess): the init stays as the container's PID 1,
// as tini and catatonit do, rather than exec'ing the program: it forks the
// program, forwards it the signals PID 1 receives, reaps every orphan the
// kernel hands it (without which zombies fill a pids limit), and exits with
// the program's exit code (128+N when a signal N killed it).
//
// It runs our own image, already set up: privileges dropped as the
// program's, seccomp on, non-dumpable (so nothing in the container may open
// /proc/1/fd, /proc/1/map_files or /proc/1/mem), and /proc/1/exe is the
// read-only clone or sealed memfd SealedExe re-executed from, never the
// host's binary open for writing. It closes every descriptor it holds, stdio
// included, once the program runs: PID 1 then holds nothing of the host's.

/// Forks and execs the program, then serves as PID 1 until it exits. The
/// fork keeps exec.fifo's write end (close-on-exec) for the program, and
/// we close ours: `start` still returns when the program's execve closes it.
func runAsInit(program: String, argv: [UnsafeMutablePointer<CChar>?], envp: [UnsafeMutablePointer<CChar>?]) -> Never {
    // Every signal blocked before the fork: none is lost between it and
    // sigwaitinfo (the kernel never drops a blocked signal sent to a
    // namespace's init, where an unhandled one would be).
    var all = sigset_t()
    sigfillset(&all)
    var old = sigset_t()
    sigprocmask(SIG_SETMASK, &all, &old)
    signal(SIGCHLD, SIG_DFL)  // reaped by waitpid, never auto-reaped (which would lose the exit code)
    Kernel.becomeChildSubreaper()  // orphans come to us even without a pid namespace of our own
    let child = fork()  // clone(2): seccomp profiles refuse clone3 with ENOSYS (for libc to fall back)
    if child < 0 {
        Log.stderrLine("--init: fork: \(errnoText(errno))")
        _exit(126)
    }
    if child == 0 {
        // The program: its own process group, the terminal's foreground one
        // (a shell's job control), and the signal mask it would have had.
        _ = setpgid(0, 0)
        if isatty(0) == 1 {
            signal(SIGTTOU, SIG_IGN)
            _ = tcsetpgrp(0, getpid())
            signal(SIGTTOU, SIG_DFL)
        }
        sigprocmask(SIG_SETMASK, &old, nil)
        execve(program, argv, envp)
        let e = errno
        Log.stderrLine("exec \(program): \(errnoText(e))")
        _exit(e == ENOENT ? 127 : 126)
    }
    // Nothing held: not the fifo, the channel, --preserve-fds or stdio.
    _ = mc_close_range(0, UInt32.max, 0)
    // Signals raised by a fault of our own are not the program's.
    let own: Set<Int32> = [SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS]
    while true {
        let sig = sigwaitinfo(&all, nil)
        if sig < 0 { continue }  // EINTR
        if sig == SIGCHLD {
            while true {
                var status: Int32 = 0
                let pid = waitpid(-1, &status, WNOHANG)
                if pid <= 0 { break }
                if pid == child {
                    // Exited: its code; killed by signal N: 128+N.
                    _exit(status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
                }
            }
        } else if !own.contains(sig) {
            _ = kill(child, sig)
        }
    }
}
