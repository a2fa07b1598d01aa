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
    public init(create: CreateOptions) { self.create = create }
}

extension Runtime {
    /// Returns the container's exit code (128+N after signal N).
    public func run(_ o: RunOptions) throws -> Int32 {
        var co = o.create
        co.keepTerminal = !o.detach && co.consoleSocket == nil
        Kernel.becomeChildSubreaper()
        let c = try create(co)
        if !o.detach && o.forwardSignals { forwardSignals(to: c.record.pid) }
        do {
            try o.afterCreate?(c)
            try start(o.create.id)
        } catch {
            try? delete(o.create.id, force: true)
            throw error
        }
        o.afterStart?(c)
        if o.detach { return 0 }
        let code = waitFor(pid: c.record.pid, terminal: c.terminal, relayStdin: o.relayStdin, forwardSignals: o.forwardSignals)
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

    func waitFor(pid: Int32, terminal: Int32?, relayStdin: Bool = true, forwardSignals forward: Bool = true) -> Int32 {
        if forward { forwardSignals(to: pid) }
        var rawSaved: termios?
        if let master = terminal {
            if relayStdin && isatty(0) == 1 {
                var t = termios()
                if tcgetattr(0, &t) == 0 {
                    rawSaved = t
                    var raw = t
                    cfmakeraw(&raw)
                    tcsetattr(0, TCSANOW, &raw)
                }
            }
            if isatty(0) == 1 { copyWindowSize(to: master) } else if isatty(1) == 1 { copyWindowSize(to: master, from: 1) }
            relay(master: master, pid: pid, wake: selfPipeRead, relayStdin: relayStdin)
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
        if var t = rawSaved { tcsetattr(0, TCSANOW, &t) }
        forwardTo = 0
        return code
    }

    func copyWindowSize(to master: Int32, from fd: Int32 = 0) {
        var ws = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0 { _ = ioctl(master, UInt(TIOCSWINSZ), &ws) }
    }

    /// Copies stdin to the pty and the pty to stdout until the pty closes.
    func relay(master: Int32, pid: Int32, wake: Int32, relayStdin: Bool = true) {
        var stdinOpen = relayStdin
        var buf = [UInt8](repeating: 0, count: 32768)
        while true {
            var p = [pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let r = poll(&p, 3, -1)
            if r < 0 { if errno == EINTR { continue }; return }
            if p[2].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                _ = read(wake, &drain, drain.count)
                if winchPending != 0 { winchPending = 0; copyWindowSize(to: master, from: isatty(0) == 1 ? 0 : 1) }
            }
            if p[0].revents & Int16(POLLIN) != 0 {
                let n = read(master, &buf, buf.count)
                if n <= 0 { return }
                try? FS.writeAll(fd: 1, Array(buf[0..<n]), what: "stdout")
            } else if p[0].revents & Int16(POLLHUP | POLLERR) != 0 {
                return
            }
            if stdinOpen && p[1].revents != 0 {
                let n = read(0, &buf, buf.count)
                if n <= 0 { stdinOpen = false } else { try? FS.writeAll(fd: master, Array(buf[0..<n]), what: "terminal") }
            }
        }
    }
}
