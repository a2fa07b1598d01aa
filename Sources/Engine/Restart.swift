import Glibc
import JSON
import Spec
import Sys

// Restart policies (`--restart`, the org.minicontainer.restart annotation),
// applied by the container's owner (the monitor of `run -d`, or the
// foreground `run`): when the init exits, the same bundle runs again, with
// the same root layer, after a back-off. `stop`, `rm -f` and `restart` mark
// the container stopped by the user first (Meta.stopRequested): then it is
// never restarted, as Docker's "manually stopped".

/// A parsed restart policy.
public struct RestartPolicy: Equatable {
    public enum Kind: String { case no, onFailure = "on-failure", always, unlessStopped = "unless-stopped" }
    public var kind: Kind
    /// on-failure's retry count; nil for no limit.
    public var maxRetries: Int?

    public init(kind: Kind, maxRetries: Int? = nil) { self.kind = kind; self.maxRetries = maxRetries }

    /// From the annotation's canonical form (Compile wrote it); anything
    /// else is no policy.
    public init(annotation: String?) {
        self.init(kind: .no)
        guard let a = annotation else { return }
        let parts = a.split(separator: ":", maxSplits: 1).map(String.init)
        guard let k = Kind(rawValue: parts[0]) else { return }
        kind = k
        if k == .onFailure, parts.count == 2, let n = Int(parts[1]), n > 0 { maxRetries = n }
    }

    /// Whether an exit with `code`, after `restarts` restarts so far, runs
    /// the container again. (unless-stopped differs from always only when
    /// a daemon restarts; we have none: the same here.)
    public func restarts(after code: Int32, restarts: Int) -> Bool {
        switch kind {
        case .no: return false
        case .always, .unlessStopped: return true
        case .onFailure: return code != 0 && (maxRetries.map { restarts < $0 } ?? true)
        }
    }

    /// Docker's back-off: 100 ms before the first restart, doubling to at
    /// most a minute; back to 100 ms after a run that lasted 10 s or more.
    public static func delayMs(previous: Int, ranSeconds: Int64) -> Int {
        if previous == 0 || ranSeconds >= 10 { return 100 }
        return min(previous * 2, 60_000)
    }
}

extension Containers {
    /// The restart policy annotation of `id`'s config.json.
    func policyAnnotation(_ id: String) -> String? {
        guard let bytes = try? FS.readBytes(dir(id) + "/config.json"),
              let v = try? JSONValue.parse(bytes, file: "config.json"),
              case .string(let a)? = v["annotations"]?[Annotation.restart] else { return nil }
        return a
    }

    /// Marks `id` stopped by the user: its owner will not restart it.
    func requestStop(_ id: String) {
        update(id) { $0.stopRequested = true }
    }

    /// Whether the user stopped or removed `id` (a container whose
    /// metadata is gone was removed).
    func stopRequested(_ id: String) -> Bool {
        guard let m = load(id) else { return true }
        return m.stopRequested == true
    }

    /// Sleeps `ms` milliseconds, waking early when the user stops the
    /// container; returns false then.
    func backOff(_ id: String, ms: Int) -> Bool {
        var left = ms
        while left > 0 {
            if stopRequested(id) { return false }
            let step = min(left, 50)
            usleep(UInt32(step) * 1000)
            left -= step
        }
        return !stopRequested(id)
    }
}
