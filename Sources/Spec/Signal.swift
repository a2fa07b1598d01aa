// Signal names and numbers for Linux (x86_64 and arm64 share them), as
// `kill` and the spec accept them: `TERM`, `SIGTERM`, `term` or `15`.

public enum Signal {
    public static let names: [(String, Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6), ("BUS", 7),
        ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14),
        ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21),
        ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28),
        ("IO", 29), ("POLL", 29), ("PWR", 30), ("SYS", 31),
    ]
    public static let rtMin: Int32 = 34
    public static let rtMax: Int32 = 64

    /// Parses a signal name or number; nil when it is neither.
    public static func parse(_ text: String) -> Int32? {
        if let n = Int32(text) { return (1...rtMax).contains(n) ? n : nil }
        var s = text.uppercased()
        if s.hasPrefix("SIG") { s.removeFirst(3) }
        if let hit = names.first(where: { $0.0 == s }) { return hit.1 }
        // RTMIN, RTMIN+3, RTMAX-2
        for (base, value) in [("RTMIN", rtMin), ("RTMAX", rtMax)] where s.hasPrefix(base) {
            let rest = s.dropFirst(base.count)
            if rest.isEmpty { return value }
            guard let off = Int32(rest), (base == "RTMIN" ? off >= 0 : off <= 0) else { return nil }
            let n = value + off
            return (rtMin...rtMax).contains(n) ? n : nil
        }
        return nil
    }

    /// The name of a signal number without the SIG prefix.
    public static func name(_ n: Int32) -> String? { names.first(where: { $0.1 == n })?.0 }
}
