import Glibc
import Image
import Sys

// What a pull shows on stderr. On a terminal: one line per layer (bytes
// done and total, speed, ETA), redrawn in place as Docker and podman do,
// then a summary. Otherwise: a plain line per layer when it starts and
// when it ends. Quiet: nothing.

public enum ProgressMode {
    case terminal
    case plain
    case quiet
}

enum LayerEvent {
    case queued
    case present
    case waitingForOther
    case started
    case retrying(String)
    case downloaded
    case extracting
    case complete
}

final class Progress {
    let mode: ProgressMode
    private var drawnLines = 0
    private var lastDraw = 0.0
    private var started: [Int: Double] = [:]
    private var notes: [Int: String] = [:]

    init(mode: ProgressMode) { self.mode = mode }

    private func out(_ s: String) {
        var b = Array(s.utf8)
        var off = 0
        while off < b.count {
            let n = b.withUnsafeMutableBytes { write(2, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            off += n
        }
    }

    func begin(_ line: String) {
        if mode != .quiet { out(line + "\n") }
    }

    func layer(_ j: LayerJob, event: LayerEvent) {
        switch event {
        case .queued: notes[j.index] = "Waiting"
        case .present: notes[j.index] = "Already present"
        case .waitingForOther: notes[j.index] = "Waiting for another pull"
        case .started: notes[j.index] = "Downloading"; started[j.index] = Clock.monotonicSeconds()
        case .retrying(let why): notes[j.index] = "Retrying (\(why))"
        case .downloaded: notes[j.index] = "Verified"
        case .extracting: notes[j.index] = "Extracting"
        case .complete: notes[j.index] = "Pull complete"
        }
        guard mode == .plain else { return }
        let size = decimalSize(j.desc.size)
        switch event {
        case .present: out("\(j.short): already present (\(size))\n")
        case .started:
            let from = j.file.map { $0.size } ?? 0
            out("\(j.short): downloading \(size)\(from > 0 ? ", resuming at \(decimalSize(from))" : "")\n")
        case .waitingForOther: out("\(j.short): waiting for another pull of this layer\n")
        case .retrying(let why): out("\(j.short): \(why); retrying\n")
        case .complete:
            let t = started[j.index].map { Clock.monotonicSeconds() - $0 }
            out("\(j.short): done (\(size)\(t.map { " in \(String(format1: $0)) s" } ?? ""))\n")
        default: break
        }
    }

    /// Redraws the layer lines (terminal mode), at most every 100 ms.
    func tick(_ jobs: [LayerJob], force: Bool = false) {
        guard mode == .terminal else { return }
        let now = Clock.monotonicSeconds()
        guard force || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        var s = drawnLines > 0 ? "\u{1b}[\(drawnLines)A" : ""
        for j in jobs {
            s += "\r\u{1b}[2K" + line(j, now: now) + "\n"
        }
        drawnLines = jobs.count
        out(s)
    }

    private func line(_ j: LayerJob, now: Double) -> String {
        let note = notes[j.index] ?? "Waiting"
        var s = "\(j.short): \(note)"
        guard note == "Downloading" || note.hasPrefix("Retrying"), let f = j.file else { return s }
        let done = f.size, total = j.desc.size
        let width = 30
        let filled = total > 0 ? Int(Double(width) * Double(done) / Double(total)) : 0
        s += " [" + String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "") + String(repeating: " ", count: width - max(filled, 0)) + "]"
        s += " \(decimalSize(done))/\(decimalSize(total))"
        if let t0 = started[j.index], now - t0 > 0.2, j.fetched + (currentBytes(j)) > 0 {
            let rate = Double(j.fetched + currentBytes(j)) / (now - t0)
            s += "  \(decimalSize(Int64(rate)))/s"
            if rate > 0 { s += "  ETA \(Int((Double(total - done) / rate).rounded(.up))) s" }
        }
        return s
    }

    private func currentBytes(_ j: LayerJob) -> Int64 {
        if case .downloading(let r) = j.state { return r.received }
        return 0
    }

    func summary(ref: Reference, digest: Digest, layers: Int, bytes: Int64, seconds: Double) {
        // On a terminal, every line's final state was drawn by finish().
        if mode == .quiet { return }
        let rate = seconds > 0 ? " (\(decimalSize(Int64(Double(bytes) / seconds)))/s)" : ""
        out("Digest: \(digest)\n")
        out("Pulled \(ref): \(layers) layer\(layers == 1 ? "" : "s"), \(decimalSize(bytes)) downloaded in \(String(format1: seconds)) s\(bytes > 0 ? rate : "")\n")
    }

    /// Terminal mode: the last redraw, with every layer's final state.
    func finish(_ jobs: [LayerJob]) { tick(jobs, force: true) }
}

/// 12.3MB, as Docker prints sizes (powers of 1000).
func decimalSize(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(n)B" : String(format1: v) + units[u]
}

extension String {
    /// One decimal place.
    init(format1 v: Double) {
        let t = Int((v * 10).rounded())
        self = "\(t / 10).\(abs(t % 10))"
    }
}
