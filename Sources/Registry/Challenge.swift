import JSON
import Sys

// The pure parts of registry authentication (distribution's token auth):
// the WWW-Authenticate challenges a registry answers 401 with, the token
// server's JSON answer, the scope a pull asks for, and Retry-After. All of
// it reads what a registry sends, so all of it is bounded and never traps:
// a header it cannot read gives the challenges before the garbage.

/// One challenge of a `WWW-Authenticate` header (RFC 7235 section 4.1):
/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
public struct AuthChallenge: Equatable {
    /// The auth-scheme, lowercased: "bearer", "basic".
    public var scheme: String
    /// The auth-params, keys lowercased, values unquoted and unescaped. A
    /// parameter given twice keeps its first value.
    public var params: [String: String]
    /// The token68 form of a challenge (`Negotiate abc==`) instead of
    /// params; nil when it has params or nothing.
    public var token68: String?

    public init(scheme: String, params: [String: String] = [:], token68: String? = nil) {
        self.scheme = scheme
        self.params = params
        self.token68 = token68
    }

    /// Where to ask for a token (Bearer) or the protection space (Basic).
    public var realm: String? { params["realm"] }
    /// The token server's name for the registry (`registry.docker.io`).
    public var service: String? { params["service"] }
    /// The scope the registry wants (`repository:library/busybox:pull`).
    public var scope: String? { params["scope"] }
    /// Why a token was refused (`insufficient_scope`, `invalid_token`).
    public var error: String? { params["error"] }

    /// The longest header value read; a longer one gives no challenges
    /// (cutting it could leave a realm that looks whole).
    public static let maxHeaderBytes = 16 << 10
    /// The most challenges taken from all of a response's headers.
    public static let maxChallenges = 16
    /// The most params kept of one challenge (the rest are dropped).
    public static let maxParams = 32

    /// The challenges of one header value, in order. Garbage ends the
    /// parse: the challenges before it are returned (maybe none), never
    /// the one it is in.
    public static func parse(_ header: String) -> [AuthChallenge] {
        let bytes = Array(header.utf8)
        guard bytes.count <= maxHeaderBytes else { return [] }
        var p = ChallengeParser(bytes)
        return p.all(max: maxChallenges)
    }

    /// The challenges of all of a response's `WWW-Authenticate` headers
    /// (a registry may send one per scheme), in order, at most
    /// `maxChallenges` in all.
    public static func parse(headers: [String]) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        for h in headers where out.count < maxChallenges {
            out += parse(h).prefix(maxChallenges - out.count)
        }
        return out
    }
}

/// RFC 7235's grammar over bytes:
///
///     challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
///     auth-param = token BWS "=" BWS ( token / quoted-string )
///     token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
///
/// Challenges and their params are both separated by commas; a comma
/// followed by `token =` continues the challenge, anything else starts the
/// next. Empty list elements (`a, , b`) are allowed, as in RFC 7230's `#`.
/// Unquoted values are taken a little more widely than `token` (any visible
/// ASCII but `,`, `"` and `\`), for registries that send
/// `realm=https://host/token`.
struct ChallengeParser {
    let b: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { b = bytes }

    static func isTchar(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    static func isToken68(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }

    static func isBareValue(_ c: UInt8) -> Bool {
        c > 0x20 && c < 0x7f && c != UInt8(ascii: ",") && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\")
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }

    /// The end of the token starting at `j` (`j` itself when there is none).
    func tokenEnd(_ j: Int) -> Int {
        var e = j
        while e < b.count, ChallengeParser.isTchar(b[e]) { e += 1 }
        return e
    }

    func spaceEnd(_ j: Int) -> Int {
        var e = j
        while e < b.count, ChallengeParser.isSpace(b[e]) { e += 1 }
        return e
    }

    func text(_ from: Int, _ to: Int, lower: Bool = false) -> String {
        var bytes = Array(b[from..<to])
        if lower { for k in bytes.indices where bytes[k] >= 0x41 && bytes[k] <= 0x5a { bytes[k] += 0x20 } }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func all(max: Int) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        while out.count < max {
            while i < b.count, b[i] == UInt8(ascii: ",") || ChallengeParser.isSpace(b[i]) { i += 1 }
            guard i < b.count, let c = challenge() else { break }
            out.append(c)
        }
        return out
    }

    /// One challenge from `i`; nil on garbage.
    mutating func challenge() -> AuthChallenge? {
        let e = tokenEnd(i)
        guard e > i else { return nil }
        var c = AuthChallenge(scheme: text(i, e, lower: true))
        i = e
        if i == b.count || b[i] == UInt8(ascii: ",") { return c }
        guard ChallengeParser.isSpace(b[i]) else { return nil }
        i = spaceEnd(i)
        if i == b.count || b[i] == UInt8(ascii: ",") { return c }
        if let t = token68() {
            c.token68 = t
            return c
        }
        while true {
            guard let (key, value) = param() else { return nil }
            if c.params[key] == nil, c.params.count < AuthChallenge.maxParams { c.params[key] = value }
            i = spaceEnd(i)
            if i == b.count { return c }
            guard b[i] == UInt8(ascii: ",") else { return nil }
            // Past the commas: `token BWS =` is another param of this
            // challenge; anything else is for the next one.
            var j = i
            while j < b.count, b[j] == UInt8(ascii: ",") || ChallengeParser.isSpace(b[j]) { j += 1 }
            let te = tokenEnd(j)
            let eq = spaceEnd(te)
            guard te > j, eq < b.count, b[eq] == UInt8(ascii: "=") else { return c }
            i = j
        }
    }

    /// A token68 at `i` that is the whole of the challenge's rest (up to a
    /// comma or the end); nil, with `i` unmoved, when there is none.
    mutating func token68() -> String? {
        var e = i
        while e < b.count, ChallengeParser.isToken68(b[e]) { e += 1 }
        guard e > i else { return nil }
        while e < b.count, b[e] == UInt8(ascii: "=") { e += 1 }
        let after = spaceEnd(e)
        guard after == b.count || b[after] == UInt8(ascii: ",") else { return nil }
        let t = text(i, e)
        i = after
        return t
    }

    /// `token BWS "=" BWS ( token / quoted-string )` at `i`.
    mutating func param() -> (String, String)? {
        let ke = tokenEnd(i)
        guard ke > i else { return nil }
        let key = text(i, ke, lower: true)
        i = spaceEnd(ke)
        guard i < b.count, b[i] == UInt8(ascii: "=") else { return nil }
        i = spaceEnd(i + 1)
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "\"") {
            guard let v = quotedString() else { return nil }
            return (key, v)
        }
        let vs = i
        while i < b.count, ChallengeParser.isBareValue(b[i]) { i += 1 }
        guard i > vs else { return nil }
        return (key, text(vs, i))
    }

    /// A quoted-string at `i` (on its opening quote): its content with
    /// quoted-pairs unescaped. Control characters (but HTAB) are refused,
    /// quoted or not; so is a string without its closing quote.
    mutating func quotedString() -> String? {
        var out: [UInt8] = []
        i += 1
        func allowed(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7f) }
        while i < b.count {
            let c = b[i]
            i += 1
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                guard i < b.count, allowed(b[i]) else { return nil }
                out.append(b[i])
                i += 1
            } else {
                guard allowed(c) else { return nil }
                out.append(c)
            }
        }
        return nil
    }
}

// MARK: - Tokens

/// A bearer token from a token server, and when to stop using it.
public struct BearerToken: Equatable {
    /// What goes after `Authorization: Bearer `: visible ASCII only.
    public var token: String
    /// Clock.monotonicSeconds() after which the token is not to be sent.
    public var expires: Double

    public init(token: String, expires: Double) {
        self.token = token
        self.expires = expires
    }

    /// distribution's floor: a token is good for at least 60 s, whatever
    /// `expires_in` says (or when it says nothing).
    public static let minimumLifetime = 60.0
    /// A longer `expires_in` is cut to a day (a pull never lasts that
    /// long; it keeps the sum finite).
    public static let maximumLifetime = 86400.0
    /// The largest token server answer read.
    public static let maxResponseBytes = 1 << 20
    /// The longest token taken (JWTs are a few KiB at most).
    public static let maxTokenBytes = 64 << 10

    /// Whether the token is still good at `now`, with `margin` seconds to spare.
    public func isValid(now: Double, margin: Double = 5) -> Bool { now + margin < expires }

    /// Decodes a token server's answer (distribution's token spec):
    /// `{"token": ..., "access_token": ..., "expires_in": s, "issued_at": t}`.
    /// `token` is taken, else `access_token` (OAuth2's name); one of them is
    /// required. The lifetime is `expires_in` with the 60 s floor, counted
    /// from `now` (monotonic seconds): `issued_at` is the server's wall
    /// clock, which need not agree with ours, so it is not used.
    public static func decodeTokenResponse(_ bytes: [UInt8], now: Double) throws -> BearerToken {
        let file = "token response"
        func bad(_ path: String, _ why: String) -> Failure {
            Failure(.invalid, file + (path.isEmpty ? "" : ": " + path) + ": " + why)
        }
        guard bytes.count <= maxResponseBytes else { throw bad("", "larger than \(maxResponseBytes >> 20) MiB") }
        let doc: JSONValue
        do {
            doc = try JSONValue.parse(bytes, file: file)
        } catch let e as JSONError {
            throw Failure(.invalid, e.description)
        }
        guard case .object(let o) = doc else { throw bad("", "expected object, found \(doc.kindName)") }
        func string(_ key: String) throws -> String? {
            switch o[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s.isEmpty ? nil : s
            case let v?: throw bad(key, "expected string, found \(v.kindName)")
            }
        }
        let t = try string("token")
        let a = try string("access_token")
        guard let (key, token) = t.map({ ("token", $0) }) ?? a.map({ ("access_token", $0) }) else {
            throw bad("", "no \"token\" or \"access_token\"")
        }
        guard token.utf8.count <= maxTokenBytes else { throw bad(key, "longer than \(maxTokenBytes >> 10) KiB") }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw bad(key, "contains a space, a control character or a non-ASCII byte")
        }
        var lifetime = minimumLifetime
        switch o["expires_in"] {
        case nil, .null?: break
        case .int(let i)?: lifetime = Double(i)
        case .uint?: lifetime = maximumLifetime
        case .double(let d)?: lifetime = d
        case let v?: throw bad("expires_in", "expected number, found \(v.kindName)")
        }
        lifetime = min(max(lifetime, minimumLifetime), maximumLifetime)
        return BearerToken(token: token, expires: now + lifetime)
    }
}

/// The scope a pull of `repository` (`library/busybox`) asks a token
/// server for.
public func pullScope(_ repository: String) -> String { "repository:" + repository + ":pull" }

/// A token is a secret: printed, it shows its length only.
extension BearerToken: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "BearerToken(\(token.utf8.count) bytes, expires: \(expires))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["expires": expires], displayStyle: .struct) }
}

// MARK: - Retry-After

/// How many seconds a `Retry-After` value (RFC 9110 section 10.2.3) asks
/// us to wait: delta-seconds (`120`), or an HTTP-date in any of its three
/// forms (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37 1994`),
/// counted from `nowUnix` (a date in the past is 0). nil for anything else.
public func retryAfterSeconds(_ value: String, nowUnix: Int64) -> Double? {
    guard value.utf8.count <= 64 else { return nil }
    let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    guard !words.isEmpty else { return nil }
    if words.count == 1, words[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
        // Saturates: a thousand years is as good as forever.
        var n: Int64 = 0
        for c in words[0].utf8 { n = min(n * 10 + Int64(c - 0x30), 1 << 40) }
        return Double(n)
    }
    guard let t = HTTPDate.parse(words, nowUnix: nowUnix) else { return nil }
    return t > nowUnix ? Double(t) - Double(nowUnix) : 0
}

enum HTTPDate {
    static let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let longDays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Seconds since the epoch of an HTTP-date split into its words.
    static func parse(_ w: [String], nowUnix: Int64) -> Int64? {
        switch w.count {
        case 6:  // Sun, 06 Nov 1994 08:49:37 GMT
            guard w[0].hasSuffix(","), days.contains(w[0].dropLast().lowercased()), w[5] == "GMT",
                  let d = number(w[1], 1...2), let m = month(w[2]), let y = number(w[3], 4...4) else { return nil }
            return civil(y, m, d, w[4])
        case 4:  // Sunday, 06-Nov-94 08:49:37 GMT
            guard w[0].hasSuffix(","), longDays.contains(w[0].dropLast().lowercased()), w[3] == "GMT" else { return nil }
            let dmy = w[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard dmy.count == 3, let d = number(dmy[0], 1...2), let m = month(dmy[1]), let yy = number(dmy[2], 2...2) else { return nil }
            // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
            let nowYear = year(of: nowUnix)
            var y = nowYear - nowYear % 100 + yy
            if y > nowYear + 50 { y -= 100 }
            return civil(y, m, d, w[2])
        case 5:  // Sun Nov  6 08:49:37 1994
            guard days.contains(w[0].lowercased()), let m = month(w[1]), let d = number(w[2], 1...2),
                  let y = number(w[4], 4...4) else { return nil }
            return civil(y, m, d, w[3])
        default:
            return nil
        }
    }

    static func number(_ s: String, _ digits: ClosedRange<Int>) -> Int? {
        guard digits.contains(s.utf8.count), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return s.utf8.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    static func month(_ s: String) -> Int? { months.firstIndex(of: s.lowercased()).map { $0 + 1 } }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    /// The epoch seconds of y-m-d and `HH:MM:SS`; nil for an impossible one.
    static func civil(_ y: Int, _ m: Int, _ d: Int, _ time: String) -> Int64? {
        let hms = time.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard hms.count == 3, let h = number(hms[0], 2...2), let mi = number(hms[1], 2...2), let s = number(hms[2], 2...2),
              h < 24, mi < 60, s <= 60 else { return nil }
        let monthDays = [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard y >= 1, (1...12).contains(m), d >= 1, d <= monthDays[m - 1] else { return nil }
        return Int64(daysFromCivil(y, m, d)) * 86400 + Int64(h * 3600 + mi * 60 + s)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The Gregorian year of an epoch second.
    static func year(of t: Int64) -> Int {
        // Floor division that cannot overflow, even at Int64.min.
        let days = t >= 0 ? t / 86400 : -((-(t + 1)) / 86400) - 1
        let z = Int(days) + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let m = mp < 10 ? mp + 3 : mp - 9
        return yoe + era * 400 + (m <= 2 ? 1 : 0)
    }
}
