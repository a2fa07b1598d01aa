import Glibc

// Where errors go: one line on stderr, and with `--log FILE` also into FILE,
// as text or as JSON lines ({"level","msg","time"}) that podman and
// containerd's shim read back.

public enum LogFormat: String { case text, json }

public enum Log {
    public static var file: String?
    public static var format = LogFormat.text
    public static var debug = false

    /// Prints `minicontainer: <message>` on stderr and logs it.
    public static func error(_ message: String) {
        writeStderr("minicontainer: " + message + "\n")
        append(level: "error", message)
    }

    public static func warn(_ message: String) {
        writeStderr("minicontainer: warning: " + message + "\n")
        append(level: "warning", message)
    }

    public static func debugLine(_ message: String) {
        guard debug else { return }
        append(level: "debug", message)
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
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let ns = String(ts.tv_nsec)
        return "\(tmv.tm_year + 1900)-\(pad(tmv.tm_mon + 1, 2))-\(pad(tmv.tm_mday, 2))T\(pad(tmv.tm_hour, 2)):\(pad(tmv.tm_min, 2)):\(pad(tmv.tm_sec, 2)).\(String(repeating: "0", count: 9 - ns.count) + ns)Z"
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
