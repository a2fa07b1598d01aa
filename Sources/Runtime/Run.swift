import CShim
import Glibc
import Spec
import Sys

// `run`: create, start, wait, delete. While it waits, the runtime is the
// init's parent and a subreaper; it forwards the signals a user sends it to
// the container's init and, with a terminal, relays between the user's
// terminal (in raw mode) and the container's pty.

nonisolated(unsafe) var forwardTo: Int32 = 0
nonisolated(unsafe) var winchPending: Int32 = 0
nonisolated(unsafe) var selfPipeWrite: Int32 = -1
nonisolated(unsafe) var selfPipeRead: Int32 = -1

let forwardedSignals: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH, SIGPIPE, SIGALRM]

public struct RunOptions {
    public var create: CreateOptions
    public var detach = false
    /// With a terminal: relay our stdin to it (and put our terminal in raw
    /// mode); off for `run -t` without `-i`.
    public var relayStdin = true
    /// Called between create and start (run mode writes /etc/hosts with the
    /// address the network got at create).
    public var afterCreate: ((Created) throws -> Void)?
    /// Called once start succeeded, before the wait (the detached monitor
    /// tells the `run -d` waiting for it that the container runs).
    public var afterStart: ((Created) -> Void)?
    /// Forward the signals we receive to the init. Off for a caller that
    /// keeps its own dispositions (the detached monitor ignores them).
    public var forwardSignals = true
    /// Run mode: where the container's output goes, a chunk at a time, with
    /// its stream (1 stdout, 2 stderr; a terminal's output is 1). With it
    /// the init's stdout and stderr are pipes of ours (a terminal stays the
    /// pty), and nothing goes to our own stdout unless the sink writes it.
    /// Without it (OCI `run --bundle`, as runc) the init shares our stdio.
    /// The format it is kept in is the caller's (the engine's log).
    public var output: ((Int32, UnsafeRawBufferPointer) -> Void)?
    /// More fds for the wait to poll (the monitor's attach socket and its
    /// clients).
    public var watch: RunWatch?
    public init(create: CreateOptions) { self.create = create }
}

/// Fds the caller of `run` watches while the container runs, in the same
/// poll as the container's output: asked afresh each round.
public protocol RunWatch: AnyObject {
    func fds() -> [Int32]
    /// `fd` (one of fds()) is ready; `terminal` is the container's pty master,
    /// if it has one (for input and window sizes).
    func ready(_ fd: Int32, _ revents: Int16, terminal: Int32?)
}

extension Runtime {
    /// Returns the container's exit code (128+N after signal N).
    public func run(_ o: RunOptions) throws -> Int32 {
        var co = o.create
        co.keepTerminal = !o.detach && co.consoleSocket == nil
        Kernel.becomeChildSubreaper()
        // With an output sink, the init's stdout and stderr are our pipes
        // (its stdin stays ours); we keep the read ends.
        var pipes: [Int32] = []
        if o.output != nil && !o.detach {
            let (out, err) = try outputPipes()
            pipes = [out[0], err[0]]
            co.stdio = [0, out[1], err[1]]
        }
        let c: Created
        do {
            c = try create(co)
        } catch {
            for fd in pipes + (co.stdio ?? []) where fd > 2 { close(fd) }
            throw error
        }
        // Only the init holds the write ends now: EOF when it (and what it
        // started) closes them. With a terminal they are unused.
        for fd in co.stdio ?? [] where fd > 2 { close(fd) }
        if c.terminal != nil { for fd in pipes { close(fd) }; pipes = [] }
        if !o.detach && o.forwardSignals { forwardSignals(to: c.record.pid) }
        do {
            try o.afterCreate?(c)
            try start(o.create.id)
        } catch {
            for fd in pipes { close(fd) }
            try? delete(o.create.id, force: true)
            throw error
        }
        o.afterStart?(c)
        if o.detach { return 0 }
        let code = waitFor(pid: c.record.pid, terminal: c.terminal, relayStdin: o.relayStdin, forwardSignals: o.forwardSignals,
                           pipes: pipes, output: o.output, watch: o.watch)
        for fd in pipes { close(fd) }
        if let t = c.terminal { close(t) }
        do {
            try delete(o.create.id, force: true)
        } catch {
            Log.warn("delete \(o.create.id): \(error)")
        }
        return code
    }

    /// Waits for our child `pid` (forwarding signals, relaying its terminal)
    /// and returns its exit code.
    /// From now on, signals we receive go to `pid` (and wake the relay).
    func forwardSignals(to pid: Int32) {
        forwardTo = pid
        guard selfPipeRead < 0 else { return }
        var fds: [Int32] = [0, 0]
        _ = mc_pipe2(&fds, O_CLOEXEC | O_NONBLOCK)
        selfPipeRead = fds[0]
        selfPipeWrite = fds[1]
        for s in forwardedSignals {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                if sig == SIGWINCH { winchPending = 1 }
                if sig != SIGWINCH && sig != SIGPIPE && forwardTo > 0 { _ = Glibc.kill(forwardTo, sig) }
                var b: UInt8 = 1
                _ = write(selfPipeWrite, &b, 1)
            }
            sa.sa_flags = SA_RESTART
            sigaction(s, &sa, nil)
        }
    }

    /// Waits for our child `pid` (forwarding signals, relaying its terminal
    /// and its output pipes) and returns its exit code.
    func waitFor(pid: Int32, terminal: Int32?, relayStdin: Bool = true, forwardSignals forward: Bool = true,
                 pipes: [Int32] = [], output: ((Int32, UnsafeRawBufferPointer) -> Void)? = nil, watch: RunWatch? = nil) -> Int32 {
        if forward { forwardSignals(to: pid) }
        var rawSaved: termios? = nil
        if let master = terminal {
            if relayStdin { rawSaved = Terminal.enterRaw(0) }
            if isatty(0) == 1 { copyWindowSize(to: master) } else if isatty(1) == 1 { copyWindowSize(to: master, from: 1) }
        }
        if terminal != nil || !pipes.isEmpty || watch != nil {
            relay(pid: pid, terminal: terminal, pipes: pipes, wake: selfPipeRead, relayStdin: relayStdin && terminal != nil,
                  output: output, watch: watch)
        }
        var status: Int32 = 0
        var code: Int32 = 0
        // Reap until the init is gone (and orphans handed to us as subreaper).
        while true {
            let r = waitpid(-1, &status, 0)
            if r == pid { code = Proc.exitCode(fromWaitStatus: status); break }
            if r < 0 && errno == ECHILD { break }
        }
        while waitpid(-1, &status, WNOHANG) > 0 {}
        Terminal.restore(rawSaved)
        forwardTo = 0
        return code
    }

    func copyWindowSize(to master: Int32, from fd: Int32 = 0) {
        var ws = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0 { _ = ioctl(master, UInt(TIOCSWINSZ), &ws) }
    }

    /// One poll loop, in this process (no thread, no fork): the pty's output
    /// (stream 1) and the output pipes (1 and 2) to `output` or else to our
    /// own fds 1 and 2, stdin to the pty, the watch's fds to it. It ends
    /// when `pid` has exited (its pidfd) and what it wrote is drained: every
    /// output at EOF, or nothing more for 100 ms (something it started may
    /// hold a pipe open), or 2 s of draining at most. Without a pidfd (before
    /// Linux 5.3) it ends when the outputs close.
    func relay(pid: Int32, terminal: Int32?, pipes: [Int32], wake: Int32, relayStdin: Bool,
               output: ((Int32, UnsafeRawBufferPointer) -> Void)?, watch: RunWatch?) {
        var outs: [(fd: Int32, stream: Int32)] = []
        if let m = terminal { outs.append((m, 1)) }
        for (i, fd) in pipes.prefix(2).enumerated() { outs.append((fd, Int32(i + 1))) }
        var stdinOpen = relayStdin
        let pidfd = mc_pidfd_open(pid, 0)
        defer { if pidfd >= 0 { close(pidfd) } }
        var exited = false
        var drainUntil: Int64 = 0
        var buf = [UInt8](repeating: 0, count: 32768)
        /// Reads what `outs[k]` has; false at EOF (or EIO: the pty's last holder closed it).
        func pass(_ k: Int) -> Bool {
            let n = read(outs[k].fd, &buf, buf.count)
            if n < 0 && (errno == EINTR || errno == EAGAIN) { return true }
            if n <= 0 { return false }
            let stream = outs[k].stream
            buf.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                if let sink = output {
                    sink(stream, chunk)
                } else {
                    try? FS.writeAll(fd: stream, Array(chunk), what: stream == 1 ? "stdout" : "stderr")
                }
            }
            return true
        }
        while true {
            if outs.allSatisfy({ $0.fd < 0 }) && (exited || pidfd < 0) { return }
            var p: [pollfd] = outs.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            var timeout: Int32 = -1
            var watched: [Int32] = []
            if exited {
                let left = drainUntil - Clock.monotonicMs()
                if left <= 0 { return }
                timeout = Int32(min(left, 100))
            } else {
                p.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0))
                p.append(pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0))
                p.append(pollfd(fd: wake, events: Int16(POLLIN), revents: 0))
                watched = watch?.fds() ?? []
                for fd in watched { p.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            }
            let r = poll(&p, nfds_t(p.count), timeout)
            if r < 0 { if errno == EINTR { continue }; return }
            if r == 0 && exited { return }
            for k in outs.indices where outs[k].fd >= 0 && p[k].revents != 0 {
                // POLLHUP with data left: read on until EOF.
                if !pass(k) { outs[k].fd = -1 }
            }
            if exited { continue }
            let base = outs.count
            if p[base].revents != 0 {
                exited = true
                drainUntil = Clock.monotonicMs() + 2000
                continue
            }
            if p[base + 2].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                _ = read(wake, &drain, drain.count)
                if winchPending != 0, let master = terminal {
                    winchPending = 0
                    copyWindowSize(to: master, from: isatty(0) == 1 ? 0 : 1)
                }
            }
            if stdinOpen && p[base + 1].revents != 0, let master = terminal {
                let n = read(0, &buf, buf.count)
                if n <= 0 { stdinOpen = false } else { try? FS.writeAll(fd: master, Array(buf[0..<n]), what: "terminal") }
            }
            for (j, fd) in watched.enumerated() where p[base + 3 + j].revents != 0 {
                watch?.ready(fd, p[base + 3 + j].revents, terminal: terminal)
            }
        }
    }
}

/// Two pipes (stdout, stderr), close-on-exec: the init gets the write ends
/// as its fds 1 and 2 (installStdio), we keep the read ends.
func outputPipes() throws -> ([Int32], [Int32]) {
    var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
    guard mc_pipe2(&out, O_CLOEXEC) == 0 else { throw SysError("pipe") }
    guard mc_pipe2(&err, O_CLOEXEC) == 0 else { close(out[0]); close(out[1]); throw SysError("pipe") }
    return (out, err)
}

/// In the init, before anything else: CreateOptions.stdio become its fds 0,
/// 1 and 2, and the originals are closed (none may stay open in the
/// container). Each is first copied above 2, so that one of them given as
/// another's number is not lost to the dup2 onto it.
func installStdio(_ fds: [Int32]?) throws {
    guard let fds, fds.count == 3 else { return }
    var high: [Int32] = []
    for fd in fds {
        let h = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard h >= 0 else { throw SysError("copy the container's stdio") }
        high.append(h)
    }
    for fd in fds where fd > 2 { close(fd) }
    for (i, h) in high.enumerated() {
        guard dup2(h, Int32(i)) >= 0 else { throw SysError("dup2 the container's stdio") }
        close(h)
    }
}
