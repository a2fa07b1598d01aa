import Glibc
import Sys

// container.log in podman's k8s-file format, one record a line:
//   2026-12-02T00:44:11.668098056Z stdout F a full line
//   2026-12-02T00:44:11.668098056Z stderr P a partial line (no newline yet)
// We write the timestamp, the stream and the tag; the container only ever
// controls the content, which never holds a newline (we split on them), so
// whatever it prints (newlines, "\r", text that looks like a record) stays
// inside one record of its own stream. The reader takes nothing on trust
// either: a line that is not a record is skipped, an overlong one dropped.

/// Which of the container's outputs a record holds (the fd number).
public enum LogStream: Int32 {
    case stdout = 1
    case stderr = 2

    var word: [UInt8] { self == .stdout ? Array("stdout".utf8) : Array("stderr".utf8) }
}

/// Appends the container's output to container.log as k8s-file records:
/// each chunk read from the container gets one timestamp, a record per line
/// (F), and a P record for what follows the last newline or for a line
/// longer than `maxContent`.
public struct LogWriter {
    /// The longest content of one record; a longer line becomes P records.
    public static let maxContent = 16 * 1024
    public let fd: Int32

    /// Opens (creates) the log for appending; nil when it cannot be opened.
    /// Never through a symlink: the path is ours, not the container's, but
    /// we take no chances with a file we append to as root.
    public init?(path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    public func close() { _ = Glibc.close(fd) }

    /// Records one chunk of `stream`; written with one write (O_APPEND), so
    /// a reader sees whole records, and a crash leaves at most one cut line.
    public func write(_ stream: LogStream, _ bytes: UnsafeRawBufferPointer) {
        let out = LogWriter.records(stream, bytes, time: LogTime.now())
        guard !out.isEmpty else { return }
        try? FS.writeAll(fd: fd, out, what: "container.log")
    }

    /// The records of one chunk, as bytes.
    static func records(_ stream: LogStream, _ bytes: UnsafeRawBufferPointer, time: Int64) -> [UInt8] {
        guard bytes.count > 0 else { return [] }
        let head = LogTime.format(time) + [32] + stream.word + [32]
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var start = 0
        let n = bytes.count
        while start < n {
            let limit = min(n, start + maxContent)
            var i = start
            while i < limit && bytes[i] != 10 { i += 1 }
            out += head
            if i < limit {
                out += [UInt8(ascii: "F"), 32]
                out += bytes[start..<i]
                start = i + 1
            } else {
                out += [UInt8(ascii: "P"), 32]
                out += bytes[start..<limit]
                start = limit
            }
            out.append(10)
        }
        return out
    }
}

/// One record of container.log.
public struct LogRecord: Equatable {
    /// Nanoseconds since the epoch.
    public var time: Int64
    public var stream: LogStream
    /// F: the content ends a line; P: the line goes on in a later record.
    public var full: Bool
    public var content: [UInt8]
}

/// Splits container.log into records as it is read, chunk by chunk (a
/// followed log grows under us): a line without its newline yet waits for
/// the next chunk. Lines that are not records (a cut last line, garbage)
/// are skipped; one longer than any we write is dropped without being held
/// in memory.
public struct LogParser {
    static let maxLine = LogWriter.maxContent + 64
    var pending: [UInt8] = []
    var skipping = false

    public init() {}

    public mutating func feed(_ chunk: ArraySlice<UInt8>, _ emit: (LogRecord) -> Void) {
        var start = chunk.startIndex
        while start < chunk.endIndex {
            guard let nl = chunk[start...].firstIndex(of: 10) else {
                if !skipping {
                    pending += chunk[start...]
                    if pending.count > LogParser.maxLine { pending = []; skipping = true }
                }
                return
            }
            if skipping {
                skipping = false
            } else if pending.isEmpty {
                if let r = LogParser.parse(chunk[start..<nl]) { emit(r) }
            } else {
                pending += chunk[start..<nl]
                if pending.count <= LogParser.maxLine, let r = LogParser.parse(pending[...]) { emit(r) }
                pending = []
            }
            start = nl + 1
        }
    }

    /// One line (without its newline): `TIMESTAMP STREAM P|F CONTENT`.
    static func parse(_ line: ArraySlice<UInt8>) -> LogRecord? {
        guard line.count <= maxLine, let sp1 = line.firstIndex(of: 32),
              let time = LogTime.parseRFC3339(line[line.startIndex..<sp1]) else { return nil }
        let rest = line[(sp1 + 1)...]
        guard let sp2 = rest.firstIndex(of: 32) else { return nil }
        let word = rest[rest.startIndex..<sp2]
        let stream: LogStream
        if word.elementsEqual("stdout".utf8) { stream = .stdout } else if word.elementsEqual("stderr".utf8) { stream = .stderr } else { return nil }
        let tagAt = sp2 + 1
        guard tagAt < line.endIndex else { return nil }
        let tag = line[tagAt]
        guard tag == UInt8(ascii: "F") || tag == UInt8(ascii: "P") else { return nil }
        // "F" alone (an empty line, as some writers leave it) or "F " + content.
        let contentAt = tagAt + 1
        if contentAt < line.endIndex && line[contentAt] != 32 { return nil }
        let content = contentAt < line.endIndex ? Array(line[(contentAt + 1)...]) : []
        return LogRecord(time: time, stream: stream, full: tag == UInt8(ascii: "F"), content: content)
    }
}

/// Times as nanoseconds since the epoch: the records' RFC 3339 stamps and
/// what --since and --until accept.
public enum LogTime {
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// 2026-12-02T00:44:11.668098056Z (UTC, nine digits always: the
    /// records sort as text, and `logs -t` columns line up).
    public static func format(_ t: Int64) -> [UInt8] {
        var sec = t / 1_000_000_000, nsec = t % 1_000_000_000
        if nsec < 0 { nsec += 1_000_000_000; sec -= 1 }
        return Log.timestampBytes(seconds: sec, nanoseconds: Int(nsec))
    }

    /// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm):
    /// no timegm, no time zone of the machine involved.
    static func days(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// YYYY-MM-DD, then (with `clock`) [T ]HH:MM:SS[.fraction], then a
    /// zone: Z or ±HH:MM (required with `zone: .required`, else UTC when
    /// absent). nil for anything else.
    enum Zone { case required, optional }
    static func parse(_ b: ArraySlice<UInt8>, clock: Bool, zone: Zone) -> Int64? {
        var i = b.startIndex
        func num(_ width: Int) -> Int64? {
            guard b.endIndex - i >= width else { return nil }
            var v: Int64 = 0
            for _ in 0..<width {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48); i += 1
            }
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.endIndex, b[i] == c else { return false }
            i += 1; return true
        }
        guard let y = num(4), expect(45), let mo = num(2), expect(45), let d = num(2),
              (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var secs = days(y, mo, d) * 86400
        var nanos: Int64 = 0
        if clock {
            guard i < b.endIndex, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") else { return nil }
            i += 1
            guard let h = num(2), expect(58), let mi = num(2), expect(58), let s = num(2),
                  h < 24, mi < 60, s <= 60 else { return nil }
            secs += h * 3600 + mi * 60 + s
            if i < b.endIndex && (b[i] == 46 || b[i] == 44) {
                i += 1
                var digits = 0
                while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
                    if digits < 9 { nanos = nanos * 10 + Int64(b[i] - 48) }
                    digits += 1; i += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<max(digits, 9) { nanos *= 10 }
            }
        }
        if i == b.endIndex {
            guard zone == .optional else { return nil }
        } else if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == 43 || b[i] == 45 {
            let sign: Int64 = b[i] == 45 ? -1 : 1
            i += 1
            guard let oh = num(2), expect(58), let om = num(2), oh < 24, om < 60 else { return nil }
            secs -= sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.endIndex else { return nil }
        let (m, o) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        guard !o else { return nil }
        return m + nanos
    }

    /// A record's timestamp: RFC 3339 with a zone (conmon writes a local
    /// offset, we write Z).
    static func parseRFC3339(_ b: ArraySlice<UInt8>) -> Int64? {
        parse(b, clock: true, zone: .required)
    }

    /// What `logs --since` and `--until` take, as podman: an RFC 3339 time
    /// (with or without fraction; without a zone it is UTC), a date
    /// (2006-01-02, optionally with a zone), Unix seconds (with a
    /// fraction), or a Go duration (10m, 1h30m, 1.5h, 300ms) back from now.
    /// podman adds a duration to now for --until; Docker, whose meaning we
    /// keep, goes back from now for both ("--until 10m": up to ten minutes
    /// ago).
    public static func parseUser(_ s: String, now: Int64) -> Int64? {
        let b = Array(s.utf8)[...]
        if let t = parse(b, clock: true, zone: .optional) ?? parse(b, clock: false, zone: .optional) { return t }
        if let t = unixSeconds(b) { return t }
        if let d = goDuration(b) {
            let (r, o) = now.subtractingReportingOverflow(d)
            return o ? nil : r
        }
        return nil
    }

    /// 1733100000 or 1733100000.5 (seconds since the epoch).
    static func unixSeconds(_ b: ArraySlice<UInt8>) -> Int64? {
        var i = b.startIndex
        var sign: Int64 = 1
        if i < b.endIndex && (b[i] == 43 || b[i] == 45) { sign = b[i] == 45 ? -1 : 1; i += 1 }
        var secs: Int64 = 0, nanos: Int64 = 0, intDigits = 0, fracDigits = 0
        while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
            guard intDigits < 12 else { return nil }
            secs = secs * 10 + Int64(b[i] - 48); intDigits += 1; i += 1
        }
        if i < b.endIndex && b[i] == 46 {
            i += 1
            while i < b.endIndex, b[i] >= 48, b[i] <= 57 {
                if fracDigits < 9 { nanos = nanos * 10 + Int64(b[i] - 48) }
                fracDigits += 1; i += 1
            }
            for _ in fracDigits..<max(fracDigits, 9) { nanos *= 10 }
        }
        guard i == b.endIndex, intDigits + fracDigits > 0 else { return nil }
        return sign * (secs * 1_000_000_000 + nanos)
    }

    /// Go's time.ParseDuration, in nanoseconds: [-+]?(number unit)+ or "0";
    /// units ns, us (µs, μs), ms, s, m, h; numbers may have a fraction.
    public static func goDuration(_ b: ArraySlice<UInt8>) -> Int64? {
        var i = b.startIndex
        var sign: Int64 = 1
        if i < b.endIndex && (b[i] == 43 || b[i] == 45) { sign = b[i] == 45 ? -1 : 1; i += 1 }
        if b[i...].elementsEqual("0".utf8) { return 0 }
        guard i < b.endIndex else { return nil }
        var total: Double = 0
        while i < b.endIndex {
            var whole: Double = 0, frac: Double = 0, scale: Double = 1, digits = 0
            while i < b.endIndex, b[i] >= 48, b[i] <= 57 { whole = whole * 10 + Double(b[i] - 48); digits += 1; i += 1 }
            if i < b.endIndex && b[i] == 46 {
                i += 1
                while i < b.endIndex, b[i] >= 48, b[i] <= 57 { scale /= 10; frac += Double(b[i] - 48) * scale; digits += 1; i += 1 }
            }
            guard digits > 0 else { return nil }
            let u0 = i
            while i < b.endIndex, !(b[i] >= 48 && b[i] <= 57), b[i] != 46 { i += 1 }
            let unit = b[u0..<i]
            let per: Double
            switch String(decoding: unit, as: UTF8.self) {
            case "ns": per = 1
            case "us", "µs", "μs": per = 1e3
            case "ms": per = 1e6
            case "s": per = 1e9
            case "m": per = 60e9
            case "h": per = 3600e9
            default: return nil
            }
            total += (whole + frac) * per
            guard total < 9.2e18 else { return nil }
        }
        return sign * Int64(total)
    }
}

/// What `logs` prints: every record (tail nil) or the last `tail` lines,
/// those within [since, until], each stream to its own fd, with the
/// record's time at the start of each line (`timestamps`).
public struct LogQuery {
    public var tail: Int?
    public var since: Int64?
    public var until: Int64?
    public var timestamps = false
    public var follow = false
    public init() {}
}

/// Writes records out: content to fd 1 or 2 by stream, a newline after an F
/// record, the time before the first record of a line (-t). Buffered, one
/// stream at a time, so that `2>&1` keeps the records' order.
struct LogPrinter {
    let query: LogQuery
    var buffer: [UInt8] = []
    var bufferFd: Int32 = 1
    /// Per stream: the last record printed was a P (the line goes on).
    var midLine: [Bool] = [false, false, false]

    init(_ q: LogQuery) { query = q }

    mutating func print(_ r: LogRecord) throws {
        if let s = query.since, r.time < s { return }
        if let u = query.until, r.time > u { return }
        let fd = r.stream.rawValue
        if fd != bufferFd { try flush(); bufferFd = fd }
        if query.timestamps && !midLine[Int(fd)] { buffer += LogTime.format(r.time); buffer.append(32) }
        buffer += r.content
        if r.full { buffer.append(10) }
        midLine[Int(fd)] = !r.full
        if buffer.count >= 65536 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try FS.writeAll(fd: bufferFd, buffer, what: bufferFd == 1 ? "stdout" : "stderr")
        buffer.removeAll(keepingCapacity: true)
    }
}

/// The last N lines of a log, read once from the start: a line is a
/// stream's P records up to its next F (lines of the two streams may
/// interleave); records are kept in file order with the number of their
/// line, and those of lines that fell out of the last N are dropped.
struct LogTail {
    let n: Int
    var records: [(line: Int, record: LogRecord)] = []
    var head = 0
    var lines = 0
    /// Per stream: the number of its line still open (after a P), or -1.
    var open: [Int] = [-1, -1, -1]

    init(_ n: Int) { self.n = n }

    mutating func add(_ r: LogRecord) {
        let s = Int(r.stream.rawValue)
        let line: Int
        if open[s] >= 0 { line = open[s] } else { line = lines; lines += 1 }
        open[s] = r.full ? -1 : line
        let first = lines - n  // the oldest line kept
        if line >= first { records.append((line, r)) }
        while head < records.count && records[head].line < first { head += 1 }
        if head > 4096 && head * 2 > records.count { records.removeFirst(head); head = 0 }
    }

    var kept: [LogRecord] {
        let first = lines - n
        return records[head...].filter { $0.line >= first }.map { $0.record }
    }
}

extension Containers {
    /// Prints container `id`'s log as `q` asks; with `follow`, goes on
    /// while the container runs, then prints what is left and returns.
    public func printLogs(_ id: String, _ q: LogQuery) throws {
        var fd = open(logPath(id), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        var parser = LogParser()
        var out = LogPrinter(q)
        var buf = [UInt8](repeating: 0, count: 65536)
        func readAll(_ each: (LogRecord) throws -> Void) throws {
            // Followed from before the owner made it: opened when it exists.
            if fd < 0 && q.follow { fd = open(logPath(id), O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
            guard fd >= 0 else { return }
            while true {
                let n = read(fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                var failure: Error?
                parser.feed(buf[0..<n]) { r in
                    guard failure == nil else { return }
                    do { try each(r) } catch { failure = error }
                }
                if let e = failure { throw e }
            }
        }
        defer { if fd >= 0 { close(fd) } }
        if let n = q.tail {
            var tail = LogTail(n)
            try readAll { tail.add($0) }
            for r in tail.kept { try out.print(r) }
        } else {
            try readAll { try out.print($0) }
        }
        try out.flush()
        guard q.follow else { return }
        while true {
            // Whether it still runs is asked before the last read: what it
            // wrote before it stopped is in the file by then, once its owner
            // (which drains the output after the init exits) has recorded
            // the exit or is gone.
            let running = isRunning(id) || load(id).map { $0.exitCode == nil && ownerAlive($0) } ?? false
            try readAll { try out.print($0) }
            try out.flush()
            if !running { return }
            if let u = q.until, LogTime.now() > u { return }
            usleep(100_000)
        }
    }
}
