import Glibc
import Sys

// A run-mode container's status, derived each time: from the kernel while its
// init lives (the OCI state), else from the exit its owner recorded.

extension Containers {
    /// The OCI status (created, running, paused, creating) while the init
    /// lives, else nil.
    public func liveStatus(_ id: String) -> (status: String, pid: Int32)? {
        let store = runtime(of: id).store
        guard store.exists(id), let r = try? store.load(id) else { return nil }
        let st = store.status(r)
        return st == .stopped ? nil : (st.rawValue, r.pid)
    }

    public func isRunning(_ id: String) -> Bool { liveStatus(id) != nil }

    func ownerAlive(_ m: Meta) -> Bool {
        guard let p = m.ownerPid, let s = m.ownerStart, p != getpid() else { return false }
        return Proc.alive(p, startTime: s)
    }

    /// `Up 5 seconds`, `Exited (0) 3 seconds ago`, `Created`.
    public func statusText(_ m: Meta) -> (state: String, text: String) {
        if let live = liveStatus(m.id) {
            let up = "Up " + humanDuration(now() - (m.startedUnix ?? m.createdUnix))
            switch live.status {
            case "running": return ("running", up)
            case "paused": return ("paused", up + " (Paused)")
            default: return ("created", "Created")
            }
        }
        if let c = m.exitCode, m.restarting == true, ownerAlive(m) {
            return ("restarting", "Restarting (\(c)) " + humanDuration(now() - (m.finishedUnix ?? now())) + " ago")
        }
        if let c = m.exitCode {
            return ("exited", "Exited (\(c)) " + humanDuration(now() - (m.finishedUnix ?? now())) + " ago")
        }
        if m.startedUnix == nil || ownerAlive(m) { return ("created", "Created") }
        return ("exited", "Exited (unknown)")
    }
}
