import Glibc
import Spec

// Where errors go: one line on stderr, and with `--log FILE` also into FILE,
// as text or as JSON lines ({"level","msg","time"}) that podman and
// containerd's shim read back.
//
// Every message is one line of bounded length, whatever input it quotes:
// control characters are escaped (\n, \t, \xNN) and what is beyond
// `maxMessage` bytes is cut, with a marker saying how much (Quote.line).
// Sources quote a bounded excerpt of their input too (`quoted`), so that the
// cut rarely hides the end of a message.

public enum LogFormat: String { case text, json }

public enum Log {
    public static var file: String?
    public static var format = LogFormat.text
    public static var debug = false
    /// The most bytes of a message (of its text after `minicontainer: `).
    /// Errors wrap one another ("run ID: stage: what: errno"), and each layer
    /// bounds its own text, inner ones tighter, so that a cut is seldom cut
    /// again (which would hide how much the first cut took).
    public static let maxMessage = 1024
    /// A runtime error's text (Runtime's `fail`).
    public static let maxError = 896
    /// A SysError's `what`.
    public static let maxSysError = 640

    /// `message` as one line of at most `max` bytes.
    public static func oneLine(_ message: String, max: Int = maxMessage) -> String { Quote.line(message, max: max) }

    /// Prints `minicontainer: <message>` on stderr and logs it.
    public static func error(_ message: String) {
        let m = oneLine(message)
        writeStderr("minicontainer: " + m + "\n")
        append(level: "error", m)
    }

    public static func warn(_ message: String) {
        let m = oneLine(message)
        writeStderr("minicontainer: warning: " + m + "\n")
        append(level: "warning", m)
    }

    /// `minicontainer: <message>` on stderr only: for a process that is in
    /// the container already, where --log's path means nothing.
    public static func stderrLine(_ message: String) {
        writeStderr("minicontainer: " + oneLine(message) + "\n")
    }

    /// The message is made only with --debug: the init's default ambient
    /// capabilities each format one, on every container's path.
    public static func debugLine(_ message: @autoclosure () -> String) {
        guard debug else { return }
        append(level: "debug", oneLine(message(), max: 8 * maxMessage))
    }

    static func append(level: String, _ message: String) {
        guard let path = file else { return }
        let line: String
        switch format {
        case .json:
            var m = [UInt8]()
            m.append(contentsOf: "{\"level\":\"\(level)\",\"msg\":".utf8)
            m.append(contentsOf: jsonQuoted(message).utf8)
            m.append(contentsOf: ",\"time\":\"\(timestamp())\"}\n".utf8)
            line = String(decoding: m, as: UTF8.self)
        case .text:
            line = "time=\"\(timestamp())\" level=\(level) msg=\(jsonQuoted(message))\n"
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        try? FS.writeAll(fd: fd, Array(line.utf8), what: "log")
        close(fd)
    }

    /// RFC 3339 with nanoseconds, UTC.
    public static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return String(decoding: timestampBytes(seconds: Int64(ts.tv_sec), nanoseconds: Int(ts.tv_nsec)), as: UTF8.self)
    }

    /// 2026-11-30T13:30:08.123456789Z (UTC, nine digits always), digit by
    /// digit (no String(Int)): the state's and the container log's times.
    public static func timestampBytes(seconds: Int64, nanoseconds: Int) -> [UInt8] {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var out: [UInt8] = []
        out.reserveCapacity(30)
        func put(_ v: Int, _ width: Int) {
            var d = [UInt8](repeating: 48, count: width), x = v
            for k in stride(from: width - 1, through: 0, by: -1) { d[k] = UInt8(48 + x % 10); x /= 10 }
            out += d
        }
        put(Int(tmv.tm_year) + 1900, 4); out.append(45)
        put(Int(tmv.tm_mon) + 1, 2); out.append(45)
        put(Int(tmv.tm_mday), 2); out.append(84)
        put(Int(tmv.tm_hour), 2); out.append(58)
        put(Int(tmv.tm_min), 2); out.append(58)
        put(Int(tmv.tm_sec), 2); out.append(46)
        put(nanoseconds, 9); out.append(90)
        return out
    }
}

public func writeStderr(_ s: String) {
    try? FS.writeAll(fd: 2, Array(s.utf8), what: "stderr")
}

public func writeStdout(_ s: String) {
    try? FS.writeAll(fd: 1, Array(s.utf8), what: "stdout")
}

/// A JSON string literal for `s` (the JSON module's writer is not a
/// dependency of Sys).
public func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 {
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
