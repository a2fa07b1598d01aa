import Glibc
import Sys

// Small helpers of the engine: the clock in seconds, durations as `ps` shows
// them, and the host's mount points.

func now() -> Int64 { Int64(time(nil)) }

/// "5 seconds", "3 minutes", "2 hours", "4 days".
public func humanDuration(_ s: Int64) -> String {
    let s = max(0, s)
    if s < 1 { return "Less than a second" }
    if s < 60 { return s == 1 ? "1 second" : "\(s) seconds" }
    let m = s / 60
    if m < 60 { return m == 1 ? "About a minute" : "\(m) minutes" }
    let h = m / 60
    if h < 48 { return h == 1 ? "About an hour" : "\(h) hours" }
    return "\(h / 24) days"
}

/// Mount points listed in /proc/self/mountinfo (octal escapes decoded).
public func mountPoints() -> [String] {
    guard let text = try? FS.readString("/proc/self/mountinfo") else { return [] }
    return text.split(separator: "\n").compactMap { line in
        let f = line.split(separator: " ")
        guard f.count > 4 else { return nil }
        return unescapeMount(String(f[4]))
    }
}

func unescapeMount(_ s: String) -> String {
    guard s.contains("\\") else { return s }
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    while i < b.count {
        if b[i] == 92, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
            out.append(v); i += 4
        } else {
            out.append(b[i]); i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
