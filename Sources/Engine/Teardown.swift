import Glibc
import Network
import Spec
import Sys

// The end of a run-mode container: its exit recorded (finish), stop, rm, and
// prune of stopped containers, stray overlay mounts and orphaned leases.

extension Containers {
    /// After the init has gone: the OCI state and the overlay mount go, the
    /// exit code and time are recorded (when known).
    public func finish(_ id: String, exitCode: Int32?) {
        let rt = runtime(of: id)
        if rt.store.exists(id), liveStatus(id) == nil { try? rt.delete(id, force: true) }
        rootLayer(id).unmount()
        update(id) { m in
            if let c = exitCode, m.exitCode == nil { m.exitCode = c }
            if m.finished == nil { m.finished = Log.timestamp(); m.finishedUnix = now() }
        }
    }

    /// Removes everything of a container: its init (killed), OCI state and
    /// cgroup, overlay mount, directory; with `anonymousVolumes` (rm -v),
    /// or when it was run with --rm, also the anonymous volumes it used
    /// that no other container uses (Docker's rule: named ones stay).
    /// `byOwner`: called by the container's owner once it has stopped
    /// waiting for the init (its --rm), so no stop request is written for it.
    public func remove(_ id: String, anonymousVolumes: Bool = false, byOwner: Bool = false) {
        let owner = load(id)
        if !byOwner { requestStop(id) }
        let rt = runtime(of: id)
        let used = anonymousVolumes || owner?.autoRemove == true ? volumesUsed(id) : []
        if rt.store.exists(id) { try? rt.delete(id, force: true) }
        // Its owner (the monitor, or a foreground run) sees the init go and
        // ends; until then it holds the published ports. Waited for (5 s at
        // most), so a port is free again when `rm -f` returns, as Docker's.
        // On its pidfd: it is seen to go at once, not at the next of 20 ms polls.
        if let m = owner, ownerAlive(m), let p = m.ownerPid, let s = m.ownerStart {
            _ = Proc.waitGone(p, startTime: s, timeoutMs: 5000)
        }
        if rt.store.exists(id) { try? FS.removeTree(rt.store.dir(id)) }
        removeFiles(id)
        removeAnonymousVolumes(used)
    }

    func removeFiles(_ id: String) {
        // Under the container's lock, so that an owner recording the exit
        // (update) cannot write into a directory being removed.
        let lock = FS.isDirectory(dir(id)) ? try? FileLock.acquire(dir(id)) : nil
        defer { lock?.unlock() }
        let name = load(id)?.name
        let layer = rootLayer(id)
        layer.unmount()
        // Never recurse into a mount we failed to remove.
        if layer.isMounted { return }
        // A rootless container's upper dir holds files of the user's
        // subordinate ids, which only the user's mapped root can remove.
        try? FS.removeTreeMapped(dir(id))
        // Its name's entry after the directory: were it left by a crash in
        // between, its container is gone, so the entry is stale.
        if let n = name, !FS.isDirectory(dir(id)) { names.release(n, id: id) }
    }

    /// SIGTERM (or the image's StopSignal), then SIGKILL after `timeout`
    /// seconds; waits for the init.
    public func stop(_ id: String, timeout: Int) throws {
        requestStop(id)
        let rt = runtime
        if let live = liveStatus(id), let r = try? rt.store.load(id) {
            if live.status == "paused" { try? rt.resume(id) }
            if live.status == "created" || live.status == "creating" {
                try? rt.kill(id, signal: SIGKILL, all: false)
            } else {
                let first = r.annotations?[Annotation.stopSignal].flatMap { Signal.parse($0) } ?? SIGTERM
                try? rt.kill(id, signal: first, all: false)
                if !Proc.waitGone(r.pid, startTime: r.startTime, timeoutMs: timeout * 1000) {
                    // Said, as podman does: the program had no chance to clean up.
                    let name = load(id)?.name ?? String(id.prefix(12))
                    Log.warn("stop \(name): \(Signal.name(first).map { "SIG" + $0 } ?? "signal \(first)") did not stop the container in \(timeout) second\(timeout == 1 ? "" : "s"); sending SIGKILL")
                    try? rt.kill(id, signal: SIGKILL, all: false)
                }
            }
            guard Proc.waitGone(r.pid, startTime: r.startTime, timeoutMs: 10_000) else {
                throw Failure(.failed, "container \(id.prefix(12)) did not stop")
            }
        }
        // Let the owner record the exit code and end (a restart policy's
        // owner may be between runs: it sees the stop and ends); finish
        // ourselves if it is gone.
        for _ in 0..<250 {
            guard let m = load(id), ownerAlive(m) else { break }
            if m.exitCode != nil && m.restarting != true && RestartPolicy(annotation: policyAnnotation(id)).kind == .no { break }
            usleep(20_000)
        }
        finish(id, exitCode: nil)
    }

    /// Stopped containers and what crashed runs left: directories whose OCI
    /// state is gone or stopped, overlay mounts without a container.
    public func prune() -> [String] {
        var removed: [String] = []
        for m in mine() where !isRunning(m.id) {
            // A run or monitor still at work (preparing, creating, or
            // about to record the exit) is left alone.
            // So is one whose restart policy is about to run it again.
            if ownerAlive(m) && (m.exitCode == nil || m.restarting == true) { continue }
            remove(m.id)
            removed.append(m.id)
        }
        for m in RootLayer.mounted(under: base) where !FS.isDirectory(dir(m.id)) || !isRunning(m.id) {
            RootLayer.unmount(m.path)
        }
        // Stale names (a run killed before its metadata), under the lock
        // `run` takes a name under.
        if FS.isDirectory(names.dir), let lock = try? FileLock.acquire(base) {
            names.sweep { name, id in Containers.isID(id) && hasName(id, name) }
            lock.unlock()
        }
        return removed
    }

    /// For prune: frees the leases and published ports of containers that
    /// no longer exist. Alive are this root's running containers and any
    /// container whose veth is still there (one of another --root);
    /// returns the ids whose network was released.
    public func reclaimNetwork() throws -> [String] {
        try Network.reclaim(dir: networkDir, isAlive: { id in
            Network.attached(id) || liveStatus(id) != nil
        })
    }
}
