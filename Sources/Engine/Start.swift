import Glibc
import Runtime
import Spec
import Sys

// `start NAME` of a stopped run-mode container, Docker's meaning: the same
// bundle (config.json, generated files, upper layer) runs again, detached,
// under a new monitor; its root layer is mounted again over the same lower
// layers. `restart` is stop, then this.

extension Containers {
    /// Starts stopped container `id` again, detached. Nothing to do for
    /// one that runs; refused while an owner is still at work on it. A
    /// failure leaves it stopped, as it was.
    public func startAgain(_ id: String) throws {
        guard let m = load(id) else { throw Failure(.notFound, "container \(id) does not exist") }
        if isRunning(id) { return }
        if ownerAlive(m) { throw Failure(.state, "container \(m.name) is being started or stopped: try again") }
        let spec = try Bundle.load(dir(id)).spec
        var req = RunRequest(spec: spec, name: m.name, hostname: spec.hostname ?? "minicontainer", rootfs: m.rootfs)
        req.lower = m.lower ?? [m.rootfs]
        req.existing = true
        req.detach = true
        req.autoRemove = m.autoRemove
        req.tty = spec.process?.terminal == true
        let previous = m
        update(id) { m in
            m.exitCode = nil; m.finished = nil; m.finishedUnix = nil; m.stopRequested = nil; m.restarting = nil
            m.detached = true
        }
        func restore() {
            update(id) { m in
                m.exitCode = previous.exitCode; m.finished = previous.finished; m.finishedUnix = previous.finishedUnix
            }
        }
        do {
            // As a new run: the ports first (nothing to undo if taken), then the root.
            var ports = try holdPorts(&req)
            defer { ports.release() }
            // Under the container's lock, which `cp` holds while it mounts a
            // stopped container's overlay in a namespace of its own: never two
            // overlays over one upper. (Released before the monitor starts:
            // it takes the lock to record itself.)
            let layer = rootLayer(id)
            let lock = try FileLock.acquire(dir(id))
            do {
                if !layer.isMounted { try layer.mount(lower: req.lower) }
            } catch {
                lock.unlock()
                throw error
            }
            lock.unlock()
            _ = try runDetached(id, req)
        } catch {
            rootLayer(id).unmount()
            restore()
            throw error
        }
    }
}
