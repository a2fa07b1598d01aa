import Glibc
import Runtime
import Spec
import Sys

// `run --rootfs` in the foreground: the bundle prepared, then Runtime.run with
// this process as the init's parent, its output recorded in container.log
// (Logs.swift) as it passes; the exit recorded and --rm honoured.

extension Containers {
    /// What `run --rootfs` asks for: the compiled spec, and the flags that
    /// are the engine's own.
    public struct RunRequest {
        public var spec: Spec
        public var name: String?
        public var hostname: String
        public var rootfs: String
        /// The overlay's lower layers, top first: the image's layers, or
        /// empty for [rootfs] (--rootfs).
        public var lower: [String] = []
        /// `run IMAGE`: the reference and the image id, for the metadata.
        public var image: String?
        public var imageID: String?
        /// Called once the container's directory and config.json exist
        /// (the CLI releases its hold on the image there).
        public var prepared: (() -> Void)?
        public var detach = false
        public var autoRemove = false
        public var interactive = false
        public var tty = false
        /// `start` of a stopped container: its directory exists already,
        /// and a failure leaves it (stopped) rather than removing it.
        public var existing = false
        /// `--cidfile`: an absolute path prepare writes the id to (refused if it exists).
        public var cidfile: String?
        public init(spec: Spec, name: String?, hostname: String, rootfs: String) {
            self.spec = spec; self.name = name; self.hostname = hostname; self.rootfs = rootfs
        }
    }


    /// What the foreground run and the monitor both give Runtime.run: the
    /// prepared bundle, and /etc/hosts written between create and start. A
    /// restart that meets a stop by the user ends there.
    func runOptions(_ id: String, _ req: RunRequest) -> RunOptions {
        var o = RunOptions(create: CreateOptions(id: id, bundle: dir(id)))
        o.afterCreate = { created in
            if self.stopRequested(id) { throw Failure(.state, "container \(id.prefix(12)) was stopped") }
            try self.writeHosts(id, record: created.record, hostname: req.hostname)
        }
        return o
    }

    /// Runtime.run of a prepared container, again while its restart policy
    /// says so, then its exit recorded and --rm honoured. A container that
    /// fails to create or start the first time is removed (a program that
    /// cannot run is a Failure of kind .program); one being started again
    /// (`start`) keeps its directory, as it was.
    func runPrepared(_ id: String, _ req: RunRequest, _ o: RunOptions) throws -> Int32 {
        let policy = RestartPolicy(annotation: req.spec.annotations?[Annotation.restart])
        var o = o
        var restarts = 0, delay = 0, first = true
        var code: Int32 = 0
        while true {
            let began = now()
            do {
                code = try runtime.run(o)
            } catch {
                if first {
                    if req.existing { finish(id, exitCode: nil) } else { remove(id) }
                    throw error
                }
                // A restart that could not create or start (or met a
                // stop): the container stays stopped with its last exit.
                if !stopRequested(id) { Log.warn("restart \(id.prefix(12)): \(error)") }
                break
            }
            first = false
            o.afterStart = nil
            guard policy.restarts(after: code, restarts: restarts), !stopRequested(id) else { break }
            update(id) { m in
                m.exitCode = code; m.finished = Log.timestamp(); m.finishedUnix = now(); m.restarting = true
            }
            delay = RestartPolicy.delayMs(previous: delay, ranSeconds: now() - began)
            guard backOff(id, ms: delay) else { break }
            restarts += 1
            update(id) { m in
                m.restartCount = (m.restartCount ?? 0) + 1
                m.exitCode = nil; m.finished = nil; m.finishedUnix = nil; m.restarting = nil
                m.started = Log.timestamp(); m.startedUnix = now()
            }
        }
        update(id) { $0.restarting = nil }
        if req.autoRemove {
            // --rm: the metadata goes with the directory; the owner, which
            // this is, needs no stop request to see.
            remove(id, byOwner: true)
        } else {
            finish(id, exitCode: code)
        }
        return code
    }

    /// Runs a prepared request: in the foreground (the container's exit
    /// code) or detached (prints the id; a monitor stays behind).
    public func run(_ req: RunRequest) throws -> Int32 {
        var req = req
        // Held by this process until the container has exited (a detached
        // one's monitor, forked from here, holds its own copies).
        var ports = try holdPorts(&req)
        defer { ports.release() }
        let id = try prepare(req)
        req.prepared?()
        if req.detach {
            let code = try runDetached(id, req)
            writeStdout(id + "\n")
            return code
        }
        if !req.interactive {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if null >= 0 { dup2(null, 0); close(null) }
        }
        update(id) { $0.started = Log.timestamp(); $0.startedUnix = now() }
        var o = runOptions(id, req)
        o.relayStdin = req.interactive
        // The output is recorded here too (as the monitor does), and passed
        // on: the container's stdout to our 1, its stderr to our 2.
        let log = LogWriter(path: logPath(id))
        defer { log?.close() }
        o.output = { stream, bytes in
            let s = LogStream(rawValue: stream) ?? .stdout
            log?.write(s, bytes)
            try? FS.writeAll(fd: s.rawValue, Array(bytes), what: s == .stdout ? "stdout" : "stderr")
        }
        return try runPrepared(id, req, o)
    }
}
