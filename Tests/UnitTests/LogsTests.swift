import Glibc
import XCTest
@testable import Engine

/// container.log's k8s-file records (Engine/Logs.swift), the times `logs`
/// takes, and attach's detach keys: whatever bytes the container writes,
/// reading the records back gives them, on their stream, and nothing else.
final class LogsTests: XCTestCase {
    func records(_ s: LogStream, _ b: [UInt8], time: Int64 = 1_764_636_251_668_098_056) -> [UInt8] {
        b.withUnsafeBytes { LogWriter.records(s, $0, time: time) }
    }

    func parse(_ bytes: [UInt8], chunk: Int = 7) -> [LogRecord] {
        var p = LogParser()
        var out: [LogRecord] = []
        var i = 0
        while i < bytes.count {
            p.feed(bytes[i..<min(bytes.count, i + chunk)]) { out.append($0) }
            i += chunk
        }
        return out
    }

    func testRecordsAreFramedByUs() {
        let text = String(decoding: records(.stdout, Array("one\ntwo\npart".utf8)), as: UTF8.self)
        XCTAssertEqual(text, "2025-12-02T00:44:11.668098056Z stdout F one\n2025-12-02T00:44:11.668098056Z stdout F two\n2025-12-02T00:44:11.668098056Z stdout P part\n")
        // A long line: P records of maxContent, then the rest.
        let long = [UInt8](repeating: 120, count: LogWriter.maxContent * 2 + 5) + [10]
        let r = parse(records(.stderr, long))
        XCTAssertEqual(r.map { $0.full }, [false, false, true])
        XCTAssertEqual(r.map { $0.content.count }, [LogWriter.maxContent, LogWriter.maxContent, 5])
        XCTAssertTrue(r.allSatisfy { $0.stream == .stderr })
    }

    func testWhateverTheContainerWritesReadsBackAsItsOwn() {
        // Random bytes with many newlines, "\r", spaces and fake headers.
        var g = SystemRandomNumberGenerator()
        let fake = Array("2026-01-01T00:00:00Z stderr F forged\n".utf8)
        for _ in 0..<200 {
            var chunk: [UInt8] = []
            for _ in 0..<Int.random(in: 0...300, using: &g) {
                switch Int.random(in: 0..<10, using: &g) {
                case 0: chunk.append(10)
                case 1: chunk.append(13)
                case 2: chunk += fake
                default: chunk.append(UInt8.random(in: 0...255, using: &g))
                }
            }
            let rs = parse(records(.stdout, chunk), chunk: Int.random(in: 1...64, using: &g))
            XCTAssertTrue(rs.allSatisfy { $0.stream == .stdout && !$0.content.contains(10) })
            var back: [UInt8] = []
            for r in rs { back += r.content; if r.full { back.append(10) } }
            XCTAssertEqual(back, chunk)
        }
    }

    func testTheParserSkipsWhatIsNotARecord() {
        let lines = ["garbage", "", "2026-01-01T00:00:00Z stdin F x", "2026-01-01T00:00:00Z stdout X x",
                     "2026-13-01T00:00:00Z stdout F x", "2026-01-01T00:00:00 stdout F nozone", "2026-01-01T00:00:00Z stdout Fx",
                     "2026-01-01T00:00:00.5Z stdout F ok", "2026-01-01T01:00:00+01:00 stderr F", "2026-01-01T00:00:00Z stdout F cut"]
        let r = parse(Array(lines.joined(separator: "\n").utf8))
        XCTAssertEqual(r, [LogRecord(time: 1_767_225_600_500_000_000, stream: .stdout, full: true, content: Array("ok".utf8)),
                           LogRecord(time: 1_767_225_600_000_000_000, stream: .stderr, full: true, content: [])])
        // A line longer than any we write is dropped without being kept.
        var p = LogParser()
        var got: [LogRecord] = []
        p.feed(Array("2026-01-01T00:00:00Z stdout F ".utf8)[...]) { got.append($0) }
        for _ in 0..<100 { p.feed([UInt8](repeating: 65, count: 4096)[...]) { got.append($0) } }
        XCTAssertLessThanOrEqual(p.pending.count, LogParser.maxLine + 4096)
        p.feed(Array("\n2026-01-01T00:00:00Z stdout F after\n".utf8)[...]) { got.append($0) }
        XCTAssertEqual(got.map { $0.content }, [Array("after".utf8)])
    }

    func testTimesRoundTripAndUserTimes() {
        let t: Int64 = 1_764_636_251_668_098_056
        XCTAssertEqual(LogTime.parseRFC3339(LogTime.format(t)[...]), t)
        XCTAssertEqual(LogTime.parseRFC3339(Array("1970-01-01T00:00:00Z".utf8)[...]), 0)
        XCTAssertEqual(LogTime.parseRFC3339(Array("2000-02-29T12:00:00-02:30".utf8)[...]), (951_825_600 + 9000) * 1_000_000_000)
        let now: Int64 = 2_000_000_000_000_000_000
        XCTAssertEqual(LogTime.parseUser("10m", now: now), now - 600_000_000_000)
        XCTAssertEqual(LogTime.parseUser("1h30m", now: now), now - 5_400_000_000_000)
        XCTAssertEqual(LogTime.parseUser("1.5h", now: now), now - 5_400_000_000_000)
        XCTAssertEqual(LogTime.parseUser("-1h", now: now), now + 3_600_000_000_000)
        XCTAssertEqual(LogTime.parseUser("300ms", now: now), now - 300_000_000)
        // A number is Unix seconds first (as podman: "0" is the epoch, not no time ago).
        XCTAssertEqual(LogTime.parseUser("0", now: now), 0)
        XCTAssertEqual(LogTime.parseUser("0s", now: now), now)
        XCTAssertEqual(LogTime.parseUser("1764636251", now: now), 1_764_636_251_000_000_000)
        XCTAssertEqual(LogTime.parseUser("1764636251.25", now: now), 1_764_636_251_250_000_000)
        XCTAssertEqual(LogTime.parseUser("2026-01-01", now: now), 1_767_225_600_000_000_000)
        XCTAssertEqual(LogTime.parseUser("2026-01-01T00:00:01", now: now), 1_767_225_601_000_000_000)
        XCTAssertEqual(LogTime.parseUser("2026-01-01T00:00:00.000000001Z", now: now), 1_767_225_600_000_000_001)
        for bad in ["", "bogus", "5x", "1h30", "h", "+", ".", "2026-13-01", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00Zjunk", "99999999999999999h"] {
            XCTAssertNil(LogTime.parseUser(bad, now: now), bad)
        }
    }

    func testTailCountsLinesOfBothStreams() {
        var t = LogTail(2)
        func r(_ s: LogStream, _ full: Bool, _ c: String) -> LogRecord { LogRecord(time: 0, stream: s, full: full, content: Array(c.utf8)) }
        for x in [r(.stdout, true, "a"), r(.stdout, false, "b1"), r(.stderr, true, "e"), r(.stdout, true, "b2"), r(.stderr, true, "f")] { t.add(x) }
        // Lines: a, b1b2 (open across e), e, f: the last two started are e and f.
        XCTAssertEqual(t.kept.map { String(decoding: $0.content, as: UTF8.self) }, ["e", "f"])
        var u = LogTail(3)
        for x in [r(.stdout, true, "a"), r(.stdout, false, "b1"), r(.stderr, true, "e"), r(.stdout, true, "b2"), r(.stderr, true, "f")] { u.add(x) }
        XCTAssertEqual(u.kept.map { String(decoding: $0.content, as: UTF8.self) }, ["b1", "e", "b2", "f"])
    }

    func testDetachKeys() {
        XCTAssertEqual(parseDetachKeys("ctrl-p,ctrl-q"), [16, 17])
        XCTAssertEqual(parseDetachKeys("ctrl-x,y"), [24, 121])
        XCTAssertEqual(parseDetachKeys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_"), [0, 27, 28, 29, 30, 31])
        XCTAssertEqual(parseDetachKeys(""), [])
        for bad in ["ctrl-", "ctrl-1", "ab", "ctrl-p,,", "ctrl-P", ","] { XCTAssertNil(parseDetachKeys(bad), bad) }
        var m = DetachMatcher(keys: [16, 17])
        XCTAssertEqual(m.feed(Array("ab".utf8)[...]).pass, Array("ab".utf8))
        let held = m.feed([16][...])
        XCTAssertEqual(held.pass, [])
        XCTAssertFalse(held.detach)
        XCTAssertEqual(m.feed([120][...]).pass, [16, 120])
        XCTAssertEqual(m.feed([16, 16][...]).pass, [16])
        let d = m.feed([17, 99][...])
        XCTAssertTrue(d.detach)
        XCTAssertEqual(d.pass, [])
        var none = DetachMatcher(keys: [])
        XCTAssertEqual(none.feed([16, 17][...]).pass, [16, 17])
    }
}
