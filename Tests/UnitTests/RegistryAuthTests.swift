import Glibc
import XCTest
@testable import Image
@testable import Registry
import Sys

/// The registry client's pure parts: WWW-Authenticate challenges, token
/// answers, Retry-After, and registries.json with the references a name
/// may mean. Everything here reads what a registry or a user's file says,
/// so the bad cases matter as much as the good.
final class RegistryAuthTests: XCTestCase {
    var dir = ""

    override func setUp() {
        var template = Array("/tmp/mc-regauth-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    override func tearDown() { try? FS.removeTree(dir) }

    // MARK: - Challenges

    func testDockerHubsHeader() {
        let h = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
        let c = AuthChallenge.parse(h)
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.first?.scheme, "bearer")
        XCTAssertEqual(c.first?.realm, "https://auth.docker.io/token")
        XCTAssertEqual(c.first?.service, "registry.docker.io")
        XCTAssertEqual(c.first?.scope, "repository:library/busybox:pull")
        XCTAssertNil(c.first?.error)
        XCTAssertNil(c.first?.token68)
    }

    func testSchemesAndKeysAreLowercasedValuesAreNot() {
        let c = AuthChallenge.parse(#"BEARER Realm="https://A/T", SERVICE=Reg.IO"#)
        XCTAssertEqual(c, [AuthChallenge(scheme: "bearer", params: ["realm": "https://A/T", "service": "Reg.IO"])])
    }

    func testSeveralChallengesInOneHeader() {
        let h = #"Basic realm="registry", Bearer realm="https://t/token", service="s",scope="a:b:pull" , Negotiate, NTLM abc+/==, Digest realm="x""#
        let c = AuthChallenge.parse(h)
        XCTAssertEqual(c.map { $0.scheme }, ["basic", "bearer", "negotiate", "ntlm", "digest"])
        XCTAssertEqual(c[0].realm, "registry")
        XCTAssertEqual(c[1].params, ["realm": "https://t/token", "service": "s", "scope": "a:b:pull"])
        XCTAssertEqual(c[2], AuthChallenge(scheme: "negotiate"))
        XCTAssertEqual(c[3].token68, "abc+/==")
        XCTAssertEqual(c[3].params, [:])
        XCTAssertEqual(c[4].realm, "x")
    }

    func testSeveralHeaders() {
        let c = AuthChallenge.parse(headers: [#"Basic realm="r""#, "garbage\u{1}", #"Bearer realm="b""#])
        XCTAssertEqual(c.map { $0.scheme }, ["basic", "bearer"])
        let many = AuthChallenge.parse(headers: Array(repeating: "A, B, C, D, E, F", count: 10))
        XCTAssertEqual(many.count, AuthChallenge.maxChallenges)
    }

    func testQuotedStringsAndEscapes() {
        let c = AuthChallenge.parse(#"Bearer realm="a \"quoted\" \\ back,slash", scope="x=y, z", error="insufficient_scope""#)
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.first?.realm, #"a "quoted" \ back,slash"#)
        XCTAssertEqual(c.first?.scope, "x=y, z")
        XCTAssertEqual(c.first?.error, "insufficient_scope")
        XCTAssertEqual(AuthChallenge.parse(#"Bearer realm="\a\b""#).first?.realm, "ab", "a quoted-pair is the character itself")
        XCTAssertEqual(AuthChallenge.parse("Bearer realm=\"tab\there\"").first?.realm, "tab\there")
        XCTAssertEqual(AuthChallenge.parse(#"Bearer realm="""#).first?.realm, "")
    }

    func testErrorParamOfAnInsufficientScopeAnswer() {
        let h = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nope:pull",error="insufficient_scope""#
        XCTAssertEqual(AuthChallenge.parse(h).first?.error, "insufficient_scope")
    }

    func testWhitespaceAndEmptyElements() {
        let c = AuthChallenge.parse(" ,\t Bearer \t realm = \"r\" ,, service=s ,  ,Basic  ")
        XCTAssertEqual(c, [AuthChallenge(scheme: "bearer", params: ["realm": "r", "service": "s"]), AuthChallenge(scheme: "basic")])
        XCTAssertEqual(AuthChallenge.parse(""), [])
        XCTAssertEqual(AuthChallenge.parse(" , ,"), [])
    }

    func testUnquotedValuesMayBeURLs() {
        let c = AuthChallenge.parse("Bearer realm=https://r.example/token?x=1,service=r.example")
        XCTAssertEqual(c.first?.realm, "https://r.example/token?x=1")
        XCTAssertEqual(c.first?.service, "r.example")
    }

    func testToken68IsWhatRFC7235SaysItIs() {
        // A lone word or a word with '='s after the scheme is a token68, not a broken param.
        XCTAssertEqual(AuthChallenge.parse("Bearer realm"), [AuthChallenge(scheme: "bearer", token68: "realm")])
        XCTAssertEqual(AuthChallenge.parse("Bearer realm=, Basic"), [AuthChallenge(scheme: "bearer", token68: "realm="), AuthChallenge(scheme: "basic")])
        XCTAssertNil(AuthChallenge.parse("Bearer realm").first?.realm)
    }

    func testDuplicateParamsKeepTheFirst() {
        XCTAssertEqual(AuthChallenge.parse(#"Bearer realm="a", REALM="b""#).first?.realm, "a")
    }

    func testGarbageGivesTheChallengesBeforeIt() {
        let cases: [(String, [String])] = [
            (#"Bearer realm="unterminated"#, []),
            (#"Basic realm="ok", Bearer realm="unterminated"#, ["basic"]),
            (#""quoted""#, []),
            ("=,=", []),
            (#"Bearer realm="a"junk"#, []),
            (#"Bearer realm="a" junk"#, []),
            (#"Bearer"realm""#, []),
            (#"Basic realm="a", Bearer realm= "x"#, ["basic"]),
            (#"Basic realm="a", Bearer realm=x y"#, ["basic"]),
            ("Bearer realm=\"line\nbreak\"", []),
            ("Bearer realm=\"nul\u{0}\"", []),
            (#"Bearer realm="a\"#, []),
            (#"Basic realm="a", @@@"#, ["basic"]),
            ("Bearer realm=\u{7f}", []),
        ]
        for (h, schemes) in cases {
            XCTAssertEqual(AuthChallenge.parse(h).map { $0.scheme }, schemes, h)
        }
    }

    func testLimits() {
        let long = #"Bearer realm=""# + String(repeating: "a", count: AuthChallenge.maxHeaderBytes) + #"""#
        XCTAssertEqual(AuthChallenge.parse(long), [], "too long: nothing, not a cut realm")
        let params = (0..<100).map { "p\($0)=v" }.joined(separator: ",")
        XCTAssertEqual(AuthChallenge.parse("Bearer " + params).first?.params.count, AuthChallenge.maxParams)
        let schemes = Array(repeating: "Basic", count: 100).joined(separator: ", ")
        XCTAssertEqual(AuthChallenge.parse(schemes).count, AuthChallenge.maxChallenges)
    }

    func testRandomBytesNeverTrap() {
        var rng = SplitMix(seed: 7)
        let alphabet = Array("Bearer realm=\"\\, \t=abc/+~\u{1}\u{80}\u{ff}".utf8)
        for _ in 0..<20000 {
            let n = Int(rng.next() % 40)
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let s = String(decoding: bytes, as: UTF8.self)
            for c in AuthChallenge.parse(s) {
                XCTAssertFalse(c.scheme.isEmpty)
                XCTAssertEqual(c.scheme, c.scheme.lowercased())
            }
        }
    }

    func testPullScope() {
        XCTAssertEqual(pullScope("library/busybox"), "repository:library/busybox:pull")
    }

    // MARK: - Token answers

    func token(_ s: String, now: Double = 1000) throws -> BearerToken {
        try BearerToken.decodeTokenResponse(Array(s.utf8), now: now)
    }

    func tokenFailure(_ s: String) -> String {
        do {
            let t = try token(s)
            return "decoded \(t)"
        } catch let f as Failure {
            XCTAssertEqual(f.kind, .invalid)
            return f.what
        } catch {
            return "\(error)"
        }
    }

    func testBothKeyNames() throws {
        XCTAssertEqual(try token(#"{"token": "abc.def", "expires_in": 300}"#), BearerToken(token: "abc.def", expires: 1300))
        XCTAssertEqual(try token(#"{"access_token": "xyz", "expires_in": 120.5}"#), BearerToken(token: "xyz", expires: 1120.5))
        XCTAssertEqual(try token(#"{"token": "t", "access_token": "a"}"#).token, "t", "token first")
        XCTAssertEqual(try token(#"{"token": "", "access_token": "a"}"#).token, "a", "an empty token is none")
        XCTAssertEqual(try token(#"{"token": null, "access_token": "a"}"#).token, "a")
    }

    func testLifetimeFloorAndCap() throws {
        XCTAssertEqual(try token(#"{"token": "t"}"#).expires, 1060, "no expires_in: 60 s")
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": 10}"#).expires, 1060, "the 60 s floor")
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": -5}"#).expires, 1060)
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": 0}"#).expires, 1060)
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": 18446744073709551615}"#).expires, 1000 + BearerToken.maximumLifetime)
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": 1e300}"#).expires, 1000 + BearerToken.maximumLifetime)
        // issued_at is the server's clock: read, not used.
        XCTAssertEqual(try token(#"{"token": "t", "expires_in": 300, "issued_at": "2009-11-10T23:00:00Z"}"#).expires, 1300)
        let t = try token(#"{"token": "t", "expires_in": 300}"#)
        XCTAssertTrue(t.isValid(now: 1200))
        XCTAssertFalse(t.isValid(now: 1296), "5 s to spare")
    }

    func testBadAnswers() {
        XCTAssertTrue(tokenFailure(#"{"expires_in": 300}"#).contains(#"no "token" or "access_token""#))
        XCTAssertTrue(tokenFailure(#"{"token": ""}"#).contains("no \"token\""))
        XCTAssertEqual(tokenFailure(#"{"token": 5}"#), "token response: token: expected string, found integer")
        XCTAssertEqual(tokenFailure(#"{"token": "t", "expires_in": "300"}"#), "token response: expires_in: expected number, found string")
        XCTAssertEqual(tokenFailure(#"["token"]"#), "token response: expected object, found array")
        XCTAssertTrue(tokenFailure("{").hasPrefix("token response:1:"), tokenFailure("{"))
        XCTAssertTrue(tokenFailure("").contains("empty document"))
        XCTAssertTrue(tokenFailure(#"{"token": "a b"}"#).contains("token response: token: contains a space"))
        XCTAssertTrue(tokenFailure(#"{"token": "a\r\nX-Evil: 1"}"#).contains("control character"), "no header injection")
        XCTAssertTrue(tokenFailure(#"{"access_token": "é"}"#).contains("access_token: contains"))
    }

    func testSizeLimits() {
        let huge = #"{"token": "t", "pad": ""# + String(repeating: "x", count: BearerToken.maxResponseBytes) + #""}"#
        XCTAssertEqual(tokenFailure(huge), "token response: larger than 1 MiB")
        let long = #"{"token": ""# + String(repeating: "x", count: BearerToken.maxTokenBytes + 1) + #""}"#
        XCTAssertEqual(tokenFailure(long), "token response: token: longer than 64 KiB")
        let justSo = #"{"token": ""# + String(repeating: "x", count: BearerToken.maxTokenBytes) + #""}"#
        XCTAssertEqual((try? token(justSo))?.token.utf8.count, BearerToken.maxTokenBytes)
    }

    // MARK: - Retry-After

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    let date: Int64 = 784111777

    func testDeltaSeconds() {
        XCTAssertEqual(retryAfterSeconds("120", nowUnix: 0), 120)
        XCTAssertEqual(retryAfterSeconds(" 0 ", nowUnix: 0), 0)
        XCTAssertEqual(retryAfterSeconds(String(repeating: "9", count: 40), nowUnix: 0), Double(1 << 40), "saturates")
        for bad in ["", " ", "-1", "1.5", "+3", "12a", "1 2", "0x10", "١٢"] {
            XCTAssertNil(retryAfterSeconds(bad, nowUnix: 0), bad)
        }
    }

    func testTheThreeDateForms() {
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            XCTAssertEqual(retryAfterSeconds(form, nowUnix: date - 90), 90, form)
            XCTAssertEqual(retryAfterSeconds(form, nowUnix: date), 0, form)
            XCTAssertEqual(retryAfterSeconds(form, nowUnix: date + 86400 * 3), 0, "days in the past: 0 (\(form))")
        }
    }

    func testCalendar() {
        XCTAssertEqual(HTTPDate.parse(["Thu,", "01", "Jan", "1970", "00:00:00", "GMT"], nowUnix: 0), 0)
        XCTAssertEqual(HTTPDate.parse(["Tue,", "29", "Feb", "2000", "12:00:00", "GMT"], nowUnix: 0), 951825600)
        XCTAssertEqual(HTTPDate.parse(["Fri,", "31", "Dec", "2100", "23:59:59", "GMT"], nowUnix: 0), 4133980799)
        XCTAssertNil(HTTPDate.parse(["Thu,", "29", "Feb", "2100", "00:00:00", "GMT"], nowUnix: 0), "2100 is not a leap year")
        XCTAssertEqual(HTTPDate.year(of: 0), 1970)
        XCTAssertEqual(HTTPDate.year(of: 951825600), 2000)
        XCTAssertEqual(HTTPDate.year(of: -1), 1969)
        _ = HTTPDate.year(of: Int64.min)
        _ = HTTPDate.year(of: Int64.max)
    }

    func testTwoDigitYearsAreNotMoreThan50YearsAhead() {
        let now2024: Int64 = 1704067200  // 2024-01-01
        // 94 -> 1994 (2094 would be 70 years ahead), 30 -> 2030.
        XCTAssertEqual(retryAfterSeconds("Sunday, 06-Nov-94 08:49:37 GMT", nowUnix: now2024), 0)
        let y2030 = retryAfterSeconds("Tuesday, 01-Jan-30 00:00:00 GMT", nowUnix: now2024)
        XCTAssertEqual(y2030, Double(1893456000 - now2024))
    }

    func testBadDates() {
        let bad = [
            "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Nox 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49 1994", "Sun Nov  0 08:49:37 1994", "Sun, 06 Nov 0000 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT", String(repeating: "Sun, ", count: 20),
        ]
        for b in bad { XCTAssertNil(retryAfterSeconds(b, nowUnix: 0), b) }
        XCTAssertEqual(retryAfterSeconds("Sun, 06 Nov 1994 08:49:60 GMT", nowUnix: date), 23, "a leap second")
        XCTAssertNotNil(retryAfterSeconds("Sun, 06 Nov 1994 08:49:37 GMT", nowUnix: Int64.min), "no overflow")
    }


    // MARK: - registries.json and candidates

    func config(_ s: String) throws -> RegistryConfig { try RegistryConfig.parse(Array(s.utf8), file: "registries.json") }

    func configFailure(_ s: String) -> String {
        do {
            _ = try config(s)
            return "parsed"
        } catch let f as Failure {
            XCTAssertEqual(f.kind, .invalid)
            return f.what
        } catch {
            return "\(error)"
        }
    }

    func testPathAndDefaults() throws {
        XCTAssertEqual(RegistryConfig.path(env: { _ in nil }), "/etc/minicontainer/registries.json")
        XCTAssertEqual(RegistryConfig.path(env: { $0 == "MINICONTAINER_REGISTRIES_CONF" ? "/x.json" : nil }), "/x.json")
        XCTAssertEqual(RegistryConfig.path(env: { _ in "" }), "/etc/minicontainer/registries.json")
        let c = try RegistryConfig.load(path: dir + "/missing.json")
        XCTAssertEqual(c, RegistryConfig())
        XCTAssertEqual(c.defaultRegistry, "docker.io")
        XCTAssertEqual(c.search, [])
        XCTAssertEqual([c.connectTimeout, c.stallTimeout, c.retryTimeout], [30, 30, 60])
        XCTAssertEqual(try config("{}"), RegistryConfig())
    }

    func testAFullFile() throws {
        try FS.writeAtomically(dir + "/r.json", """
        {"default": "127.0.0.1:5000", "search": ["quay.io", "index.docker.io"], "insecure": ["127.0.0.1:5000", "[::1]:5000"],
         "connectTimeout": 5, "stallTimeout": 2.5, "retryTimeout": 3600, "search": null}
        """)
        XCTAssertThrowsError(try RegistryConfig.load(path: dir + "/r.json"), "duplicate keys are the parser's error")
        try FS.writeAtomically(dir + "/r.json", """
        {"default": "127.0.0.1:5000", "search": ["quay.io", "index.docker.io"], "insecure": ["127.0.0.1:5000", "[::1]:5000"],
         "connectTimeout": 5, "stallTimeout": 2.5, "retryTimeout": 3600}
        """)
        let c = try RegistryConfig.load(path: dir + "/r.json")
        XCTAssertEqual(c.defaultRegistry, "127.0.0.1:5000")
        XCTAssertEqual(c.search, ["quay.io", "docker.io"])
        XCTAssertEqual(c.insecure, ["127.0.0.1:5000", "[::1]:5000"])
        XCTAssertEqual([c.connectTimeout, c.stallTimeout, c.retryTimeout], [5, 2.5, 3600])
        XCTAssertTrue(c.isInsecure("127.0.0.1:5000"))
        XCTAssertFalse(c.isInsecure("127.0.0.1"), "exact host[:port]")
        XCTAssertFalse(c.isInsecure("127.0.0.1:5001"))
        XCTAssertFalse(RegistryConfig().isInsecure("localhost"), "localhost is not insecure by default")
        XCTAssertFalse(RegistryConfig().isInsecure("127.0.0.1"))
        XCTAssertEqual(try config(#"{"default": null}"#).defaultRegistry, "docker.io", "null: the default")
    }

    func testErrorsNameTheFileAndTheKey() {
        let cases: [(String, String)] = [
            (#"{"defualt": "quay.io"}"#, #"registries.json: "defualt": unknown key (the keys are default, search, insecure, connectTimeout, stallTimeout, retryTimeout)"#),
            (#"{"default": 5}"#, "registries.json: default: expected string, found integer"),
            (#"{"default": "registry"}"#, #"registries.json: default: "registry" is not a registry: expected host[:port] with a '.' or a port, or localhost"#),
            (#"{"default": "quay.io/x"}"#, #"registries.json: default: "quay.io/x" is not a registry"#),
            (#"{"default": "https://quay.io"}"#, #"registries.json: default: "https://quay.io" is not a registry"#),
            (#"{"default": "a.io:99999x"}"#, #"registries.json: default: "a.io:99999x" is not a registry"#),
            (#"{"default": ""}"#, #"registries.json: default: "" is not a registry"#),
            (#"{"search": "quay.io"}"#, "registries.json: search: expected array, found string"),
            (#"{"search": ["quay.io", "bad host"]}"#, #"registries.json: search[1]: "bad host" is not a registry"#),
            (#"{"insecure": [1]}"#, "registries.json: insecure[0]: expected string, found integer"),
            (#"{"connectTimeout": 0}"#, "registries.json: connectTimeout: must be more than 0 and at most 3600 seconds, not 0"),
            (#"{"stallTimeout": -1.5}"#, "registries.json: stallTimeout: must be more than 0 and at most 3600 seconds, not -1.5"),
            (#"{"retryTimeout": 3601}"#, "registries.json: retryTimeout: must be more than 0 and at most 3600 seconds, not 3601"),
            (#"{"retryTimeout": 18446744073709551615}"#, "registries.json: retryTimeout: must be more than 0"),
            (#"{"retryTimeout": "60"}"#, "registries.json: retryTimeout: expected number, found string"),
            ("[]", "registries.json: expected object, found array"),
            ("{", "registries.json:1:"),
        ]
        for (text, want) in cases {
            let got = configFailure(text)
            XCTAssertTrue(got.hasPrefix(want), "\(text)\n got: \(got)\nwant: \(want)")
        }
        let many = "{\"search\": [" + Array(repeating: "\"quay.io\"", count: RegistryConfig.maxHosts + 1).joined(separator: ",") + "]}"
        XCTAssertEqual(configFailure(many), "registries.json: search: more than \(RegistryConfig.maxHosts) registries")
    }

    func testHosts() {
        for good in ["docker.io", "quay.io", "localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "a-b.c", "index.docker.io"] {
            XCTAssertTrue(RegistryConfig.isHost(good), good)
        }
        for bad in ["", "nodot", "a/b", "a.io/", "-a.io", "a..io", "a.io:", "a.io:x", "a.io@x", "a io", "a.io:123456"] {
            XCTAssertFalse(RegistryConfig.isHost(bad), bad)
        }
    }

    func names(_ c: RegistryConfig, _ text: String) throws -> [String] { try c.candidates(text).map { $0.description } }

    func testCandidatesWithTheDefaults() throws {
        let c = RegistryConfig()
        XCTAssertEqual(try names(c, "busybox"), ["docker.io/library/busybox:latest"])
        XCTAssertEqual(try names(c, "busybox:1"), ["docker.io/library/busybox:1"])
        XCTAssertEqual(try names(c, "team/app"), ["docker.io/team/app:latest"])
        XCTAssertEqual(try names(c, "localhost:5000/x"), ["localhost:5000/x:latest"])
        XCTAssertEqual(try names(c, "docker.io/busybox"), ["docker.io/library/busybox:latest"])
    }

    func testCandidatesWithADefaultAndASearchList() throws {
        var c = RegistryConfig()
        c.defaultRegistry = "127.0.0.1:5000"
        c.search = ["quay.io", "docker.io", "127.0.0.1:5000", "quay.io"]
        XCTAssertEqual(try names(c, "busybox"), ["127.0.0.1:5000/library/busybox:latest", "quay.io/busybox:latest",
                                                 "docker.io/library/busybox:latest"])
        XCTAssertEqual(try names(c, "busybox:1"), ["127.0.0.1:5000/library/busybox:1", "quay.io/busybox:1",
                                                   "docker.io/library/busybox:1"])
        XCTAssertEqual(try names(c, "team/app"), ["127.0.0.1:5000/team/app:latest", "quay.io/team/app:latest",
                                                  "docker.io/team/app:latest"])
        XCTAssertEqual(try names(c, "library/busybox"), ["127.0.0.1:5000/library/busybox:latest", "quay.io/library/busybox:latest",
                                                         "docker.io/library/busybox:latest"])
        XCTAssertEqual(try names(c, "localhost:5000/x"), ["localhost:5000/x:latest"], "a named registry only")
        XCTAssertEqual(try names(c, "localhost/x"), ["localhost/x:latest"])
        XCTAssertEqual(try names(c, "docker.io/busybox"), ["docker.io/library/busybox:latest"])
        let hex = String(repeating: "0f", count: 32)
        let pinned = try c.candidates("quay.io/a/b@sha256:" + hex)
        XCTAssertEqual(pinned.map { $0.description }, ["quay.io/a/b@sha256:" + hex])
        XCTAssertNil(pinned.first?.tag)
        XCTAssertEqual(try names(c, "app@sha256:" + hex), ["127.0.0.1:5000/library/app@sha256:" + hex, "quay.io/app@sha256:" + hex,
                                                           "docker.io/library/app@sha256:" + hex])
        // Each reads back as itself.
        for r in try c.candidates("team/app:v1") {
            XCTAssertEqual(try Reference.parse(r.description), r)
        }
    }

    func testCandidatesOfBadNames() throws {
        var c = RegistryConfig()
        c.defaultRegistry = "a-long-registry-name.example.com:5000"
        for bad in ["", "UPPER", "a b", "x:..", "x@sha256:abc"] {
            XCTAssertThrowsError(try c.candidates(bad), bad) { XCTAssertTrue("\($0)".hasPrefix("invalid reference"), "\($0)") }
        }
        let long = String(repeating: "a", count: 240)
        XCTAssertThrowsError(try c.candidates(long)) { XCTAssertTrue("\($0)".contains("longer than 255 bytes"), "\($0)") }
    }
}

/// A deterministic generator, so that a failure can be run again.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e3779b97f4a7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58476d1ce4e5b9
        z = (z ^ (z >> 27)) &* 0x94d049bb133111eb
        return z ^ (z >> 31)
    }
}
