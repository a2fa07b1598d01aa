import CShim
import Glibc
import Runtime
import Sys

// `run -d`: a monitor process (setsid, forked again) is the init's parent; it
// keeps the output in container.log, serves `attach`, records the exit and
// honours --rm.

extension Containers {
    /// Detached: a monitor (a fork that calls setsid) creates and starts the
    /// container, so the init is its child; it keeps the container's output
    /// in container.log, records the exit and honours --rm.
    func runDetached(_ id: String, _ req: RunRequest) throws -> Int32 {
        var fds: [Int32] = [0, 0]
        // What a monitor that never started leaves: a new container goes, one
        // being started again stays (stopped).
        func undo() { if req.existing { finish(id, exitCode: nil) } else { remove(id) } }
        guard mc_pipe2(&fds, O_CLOEXEC) == 0 else { undo(); throw SysError("pipe") }
        let pid = mc_clone3(0, -1, 0, nil)
        if pid < 0 { undo(); throw SysError("fork the monitor") }
        if pid == 0 {
            close(fds[0])
            monitor(id, req, report: fds[1])
        }
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 4096)
        var got: [UInt8] = []
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += buf[0..<n]
        }
        close(fds[0])
        var s: Int32 = 0
        while waitpid(pid, &s, 0) < 0 && errno == EINTR {}  // the monitor's first fork (it forks again)
        if got == Array("ok".utf8) { return 0 }
        // The monitor's failure (Failure.wire).
        if let f = Failure(wire: got) { throw f }
        undo()
        throw Failure(.failed, "the container monitor exited before the container started")
    }

    func monitor(_ id: String, _ req: RunRequest, report: Int32) -> Never {
        _ = setsid()
        // Forked once more so the monitor is nobody's child but init's (or a subreaper's).
        let again = mc_clone3(0, -1, 0, nil)
        if again < 0 { _exit(1) }
        if again > 0 { _exit(0) }
        for s in [SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTTOU, SIGTTIN] { signal(s, SIG_IGN) }
        // What the caller of `run -d` left open for its children (a
        // script's `flock` on fd 3, a pipe) is not the monitor's to hold for
        // the container's life: those descriptors, inherited without
        // close-on-exec, are closed. Ours all have close-on-exec.
        closeInherited(keep: report)
        // The container's output comes through pipes or its pty (MonitorOutput);
        // nothing is left on the terminal `run -d` was given.
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        if null >= 0 { for fd in Int32(0)...2 { dup2(null, fd) } }
        if null > 2 { close(null) }
        let me = Proc.stat(getpid())
        update(id) { $0.ownerPid = getpid(); $0.ownerStart = me?.startTime; $0.started = Log.timestamp(); $0.startedUnix = now() }
        func tell(_ s: String) {
            let b = Array(s.utf8)
            _ = b.withUnsafeBytes { write(report, $0.baseAddress, $0.count) }
            close(report)
        }
        // Runtime.run, as in the foreground, but keeping the signals ignored
        // above and relaying no stdin: the output goes to the log and to
        // whoever is attached, a terminal's input comes from them.
        let output = MonitorOutput(self, id, tty: req.tty, interactive: req.interactive)
        var o = runOptions(id, req)
        o.relayStdin = false
        o.forwardSignals = false
        o.afterStart = { _ in tell("ok") }
        output.configure(&o)
        do {
            let code = try runPrepared(id, req, o)
            output.exited(code)
        } catch {
            tell(String(decoding: (error as? Failure ?? Failure(.failed, "\(error)")).wire, as: UTF8.self))
            output.close()
            _exit(1)
        }
        output.close()
        _exit(0)
    }
}

/// What the monitor does with the container's output, once for all its
/// runs: container.log (k8s-file records, Logs.swift) and the clients of
/// its attach socket (Attach.swift), which also give a terminal its input.
final class MonitorOutput {
    let log: LogWriter?
    let attach: AttachServer?

    init(_ c: Containers, _ id: String, tty: Bool, interactive: Bool) {
        log = LogWriter(path: c.logPath(id))
        attach = AttachServer(dir: c.dir(id), tty: tty, input: interactive)
    }

    /// The sink and the watch of one run.
    func configure(_ o: inout RunOptions) {
        o.output = { [log, attach] stream, bytes in
            let s = LogStream(rawValue: stream) ?? .stdout
            log?.write(s, bytes)
            attach?.broadcast(s, bytes)
        }
        o.watch = attach
    }

    /// The container exited with `code` (recorded by then): the attached
    /// clients are told and let go.
    func exited(_ code: Int32) { attach?.exited(code) }

    func close() {
        attach?.close()
        log?.close()
    }
}

/// Closes every descriptor above stdio that lacks close-on-exec (what we
/// inherited from our caller), but `keep`.
func closeInherited(keep: Int32) {
    // The listing's own descriptor is in it, closed by now (fcntl: EBADF).
    for e in FS.directoryEntries("/proc/self/fd") ?? [] {
        guard let fd = Int32(e.name), fd > 2, fd != keep else { continue }
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { close(fd) }
    }
}
