import Glibc
import JSON
import XCTest
@testable import Image
@testable import Registry
import Sys

/// The registry client's pure parts: WWW-Authenticate challenges, token
/// answers, Retry-After, base64, auth.json and Docker's config.json, and
/// registries.json with the references a name may mean. Everything here
/// reads what a registry or a user's file says, so the bad cases matter
/// as much as the good.
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

    // MARK: - Base64

    func testRoundTrips() {
        let vectors: [(String, String)] = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                                           ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"), ("user:pass", "dXNlcjpwYXNz")]
        for (plain, coded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), coded)
            XCTAssertEqual(Base64.decode(coded), Array(plain.utf8), coded)
        }
        var rng = SplitMix(seed: 1)
        for n in 0..<300 {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let e = Base64.encode(bytes)
            XCTAssertEqual(Base64.decode(e), bytes)
            XCTAssertEqual(e.utf8.count % 4, 0)
            var bare = e
            while bare.hasSuffix("=") { bare.removeLast() }
            XCTAssertEqual(Base64.decode(bare), bytes, "missing padding is fine")
        }
        XCTAssertEqual(Base64.decode("/+/+"), [0xff, 0xef, 0xfe])
    }

    func testJunkIsRefused() {
        for bad in ["Z", "Zm9vY", "Zg===", "Zm9v=", "Zm=9v", "=", "==", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9v!", "Zé==", "Zg==Zg==", "Zm9\u{0}"] {
            XCTAssertNil(Base64.decode(bad), bad)
        }
        XCTAssertEqual(Base64.decode("Zg="), Array("f".utf8), "part of the padding is missing padding")
    }

    // MARK: - auth.json and Docker's config.json

    func b64(_ s: String) -> String { Base64.encode(Array(s.utf8)) }

    func write(_ path: String, _ text: String) throws {
        try FS.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
        try FS.writeAtomically(path, text)
    }

    func loadFailure(_ text: String) throws -> String {
        let p = dir + "/auth.json"
        try write(p, text)
        do {
            _ = try AuthFile.load(path: p)
            return "loaded"
        } catch let f as Failure {
            XCTAssertEqual(f.kind, .invalid)
            return f.what
        }
    }

    func testDefaultPaths() {
        func env(_ d: [String: String]) -> (String) -> String? { { d[$0] } }
        XCTAssertEqual(AuthFile.defaultPath(env: env(["REGISTRY_AUTH_FILE": "/a/auth.json", "XDG_RUNTIME_DIR": "/run/user/1"]), uid: 1), "/a/auth.json")
        XCTAssertEqual(AuthFile.defaultPath(env: env(["REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "/run/user/1"]), uid: 1), "/run/user/1/containers/auth.json")
        XCTAssertEqual(AuthFile.defaultPath(env: env([:]), uid: 0), "/run/containers/0/auth.json")
        XCTAssertEqual(AuthFile.dockerConfigPath(env: env(["DOCKER_CONFIG": "/d", "HOME": "/h"])), "/d/config.json")
        XCTAssertEqual(AuthFile.dockerConfigPath(env: env(["HOME": "/h"])), "/h/.docker/config.json")
        XCTAssertNil(AuthFile.dockerConfigPath(env: env(["HOME": ""])))
    }

    func testMissingFileIsEmpty() throws {
        let f = try AuthFile.load(path: dir + "/nope/auth.json")
        XCTAssertEqual(f.keys, [])
        XCTAssertNil(f.credential(for: "docker.io"))
    }

    func testLookupForms() throws {
        let p = dir + "/auth.json"
        try write(p, """
        {"auths": {
          "quay.io": {"auth": "\(b64("q:1"))"},
          "quay.io/team": {"auth": "\(b64("qt:2"))"},
          "quay.io/team/app": {"auth": "\(b64("qta:3"))"},
          "https://ghcr.io": {"auth": "\(b64("g:4"))"},
          "http://localhost:5000/v2/": {"auth": "\(b64("l:5:with:colons"))"},
          "https://index.docker.io/v1/": {"auth": "\(b64("d:6"))"},
          "only.namespaced.io/org": {"auth": "\(b64("o:7"))"},
          "empty.io": {},
          "token.io": {"identitytoken": "refresh"},
          "fields.io": {"username": "u", "password": "p"}
        }}
        """)
        let f = try AuthFile.load(path: p)
        func user(_ host: String, _ repo: String? = nil) -> String? { f.credential(for: host, repository: repo)?.username }
        XCTAssertEqual(user("quay.io"), "q", "the bare host wins without a repository")
        XCTAssertEqual(user("QUAY.IO"), "q", "hosts are case-insensitive")
        XCTAssertEqual(user("quay.io", "team/app"), "qta", "the longest namespace")
        XCTAssertEqual(user("quay.io", "team/app2"), "qt", "namespaces match whole components")
        XCTAssertEqual(user("quay.io", "team"), "qt")
        XCTAssertEqual(user("quay.io", "other/x"), "q")
        XCTAssertEqual(user("ghcr.io"), "g")
        XCTAssertEqual(f.credential(for: "localhost:5000"), Credential(username: "l", password: "5:with:colons"))
        XCTAssertNil(f.credential(for: "localhost"))
        XCTAssertNil(f.credential(for: "localhost:5001"))
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            XCTAssertEqual(user(hub), "d", hub)
        }
        XCTAssertEqual(user("only.namespaced.io"), "o", "a namespaced key serves its host when no repository is asked")
        XCTAssertNil(user("only.namespaced.io", "elsewhere/x"), "but not another namespace")
        XCTAssertNil(f.credential(for: "empty.io"))
        XCTAssertEqual(f.credential(for: "token.io"), Credential(username: "", password: "", identityToken: "refresh"))
        XCTAssertEqual(f.credential(for: "fields.io"), Credential(username: "u", password: "p"))
        XCTAssertNil(f.credential(for: "nowhere.io"))
        XCTAssertEqual(f.credential(for: "quay.io")?.basicAuthorization, "Basic " + b64("q:1"))
    }

    func testExactSpellingWinsThenFileOrder() throws {
        let p = dir + "/auth.json"
        try write(p, """
        {"auths": {"https://index.docker.io/v1/": {"auth": "\(b64("old:1"))"}, "registry-1.docker.io": {"auth": "\(b64("mid:2"))"},
                   "docker.io": {"auth": "\(b64("new:3"))"}}}
        """)
        let f = try AuthFile.load(path: p)
        XCTAssertEqual(f.credential(for: "docker.io")?.username, "new")
        XCTAssertEqual(f.credential(for: "registry-1.docker.io")?.username, "mid")
        XCTAssertEqual(f.credential(for: "index.docker.io")?.username, "old", "the first of the equals")
    }

    func testMalformedFilesNameTheFileAndTheKey() throws {
        let p = dir + "/auth.json"
        XCTAssertEqual(try loadFailure(#"{"auths": {"x": {"auth": "!!"}}}"#), p + #": auths["x"].auth: not base64"#)
        XCTAssertEqual(try loadFailure(#"{"auths": {"x": {"auth": "\#(b64("nocolon"))"}}}"#),
                       p + #": auths["x"].auth: not base64 of "username:password""#)
        XCTAssertEqual(try loadFailure(#"{"auths": {"x": {"auth": "\#(b64(":p"))"}}}"#),
                       p + #": auths["x"].auth: not base64 of "username:password""#, "an empty username")
        XCTAssertEqual(try loadFailure(#"{"auths": {"x": {"auth": "/w=="}}}"#), p + #": auths["x"].auth: not UTF-8 text"#)
        XCTAssertEqual(try loadFailure(#"{"auths": {"x": {"auth": 5}}}"#), p + #": auths["x"].auth: expected string, found integer"#)
        XCTAssertEqual(try loadFailure(#"{"auths": {"a\"b": "s"}}"#), p + #": auths["a\"b"]: expected object, found string"#)
        XCTAssertEqual(try loadFailure(#"{"auths": []}"#), p + ": auths: expected object, found array")
        XCTAssertEqual(try loadFailure(#"{"credHelpers": {"gcr.io": 1}}"#), p + #": credHelpers["gcr.io"]: expected string, found integer"#)
        XCTAssertEqual(try loadFailure(#"{"credsStore": true}"#), p + ": credsStore: expected string, found boolean")
        XCTAssertEqual(try loadFailure("[]"), p + ": expected object, found array")
        XCTAssertTrue(try loadFailure("{\"auths\": ").hasPrefix(p + ":1:"))
        XCTAssertEqual(try loadFailure(#"{"auths": null, "other": 1}"#), "loaded")
    }

    func testNotAFileAndTooLarge() throws {
        try FS.makeDirectories(dir + "/a-dir")
        XCTAssertThrowsError(try AuthFile.load(path: dir + "/a-dir")) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o600), 0)
        XCTAssertThrowsError(try AuthFile.load(path: dir + "/fifo"), "a fifo: refused, not waited on")
        try FS.writeAtomically(dir + "/big", String(repeating: " ", count: AuthFile.maxBytes + 1))
        XCTAssertThrowsError(try AuthFile.load(path: dir + "/big")) { XCTAssertTrue("\($0)".contains("larger than 4 MiB"), "\($0)") }
    }

    func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode
    }

    func testSetSaveLoadRoundTripKeepsWhatItDoesNotRead() throws {
        let p = dir + "/auth.json"
        try write(p, """
        {"auths": {"quay.io": {"auth": "\(b64("q:1"))", "email": "me@x"}, "keep.io": {"auth": "\(b64("k:2"))", "x-extra": [1, 2]}},
         "credHelpers": {"gcr.io": "gcloud"}, "unknown": {"nested": true}}
        """)
        var f = try AuthFile.load(path: p)
        try f.set("quay.io", Credential(username: "new", password: "pw:with:colons"))
        try f.set("localhost:5000", Credential(username: "me", password: "", identityToken: "tok"))
        try f.set("ghcr.io/org", Credential(username: "o", password: "p"))
        try f.save()
        XCTAssertEqual(try XCTUnwrap(mode(p)) & 0o7777, 0o600)
        XCTAssertEqual(try XCTUnwrap(mode(p)) & S_IFMT, S_IFREG)
        let g = try AuthFile.load(path: p)
        XCTAssertEqual(g.credential(for: "quay.io"), Credential(username: "new", password: "pw:with:colons"))
        XCTAssertEqual(g.credential(for: "localhost:5000"), Credential(username: "me", password: "", identityToken: "tok"))
        XCTAssertEqual(g.credential(for: "ghcr.io", repository: "org/app"), Credential(username: "o", password: "p"))
        XCTAssertEqual(g.credential(for: "keep.io")?.username, "k")
        XCTAssertEqual(g.keys, ["quay.io", "keep.io", "localhost:5000", "ghcr.io/org"])
        XCTAssertEqual(g.document["unknown"], .object(JSONObject([("nested", .bool(true))])))
        XCTAssertEqual(g.document["credHelpers"]?["gcr.io"], .string("gcloud"))
        XCTAssertEqual(g.document["auths"]?["quay.io"]?["email"], .string("me@x"), "an entry's other keys kept")
        XCTAssertEqual(g.document["auths"]?["keep.io"]?["x-extra"], .array([.int(1), .int(2)]))
        XCTAssertEqual(g.helper(for: "gcr.io"), "gcloud")
        XCTAssertNil(g.helper(for: "quay.io"))
        XCTAssertEqual(FS.listDirectory(dir), ["auth.json"], "no temporary file left")
    }

    func testSecretsAreNotPrinted() {
        let c = Credential(username: "me", password: "hunter2", identityToken: "refresh-secret")
        for shown in ["\(c)", String(reflecting: c), "\([c])", { var s = ""; dump(c, to: &s); return s }()] {
            XCTAssertFalse(shown.contains("hunter2") || shown.contains("refresh-secret"), shown)
            XCTAssertTrue(shown.contains("me"), shown)
        }
        let t = BearerToken(token: "eyJsecret", expires: 1)
        for shown in ["\(t)", String(reflecting: t), { var s = ""; dump(t, to: &s); return s }()] {
            XCTAssertFalse(shown.contains("eyJsecret"), shown)
        }
    }

    func testSetRefusesWhatCannotBeReadBack() {
        var f = AuthFile(path: dir + "/auth.json")
        for bad in ["", "https://quay.io", "quay.io/", "quay.io/UP", "quay.io/a:tag", "bad host", "quay.io/a@sha256:x", "nodot", "a.io//b"] {
            XCTAssertThrowsError(try f.set(bad, Credential(username: "u", password: "p")), bad)
        }
        XCTAssertThrowsError(try f.set("quay.io", Credential(username: "a:b", password: "p")))
        XCTAssertNoThrow(try f.set("docker.io/library", Credential(username: "u", password: "p")))
        XCTAssertNoThrow(try f.set("[::1]:5000", Credential(username: "u", password: "p")))
        XCTAssertNoThrow(try f.set("localhost", Credential(username: "u", password: "p")))
    }

    func testRemoveTakesEverySpellingOfTheHost() throws {
        let p = dir + "/auth.json"
        try write(p, """
        {"auths": {"https://index.docker.io/v1/": {"auth": "\(b64("a:1"))"}, "docker.io": {"auth": "\(b64("b:2"))"},
                   "docker.io/team": {"auth": "\(b64("c:3"))"}, "quay.io": {"auth": "\(b64("q:4"))"}}}
        """)
        var f = try AuthFile.load(path: p)
        XCTAssertTrue(f.remove("docker.io"))
        XCTAssertEqual(f.keys, ["docker.io/team", "quay.io"])
        XCTAssertEqual(f.credential(for: "docker.io", repository: "library/busybox")?.username, nil)
        XCTAssertEqual(f.credential(for: "docker.io", repository: "team/app")?.username, "c")
        XCTAssertFalse(f.remove("docker.io"))
        XCTAssertFalse(f.remove("nowhere.io"))
        XCTAssertTrue(f.remove("docker.io/team"))
        try f.save()
        XCTAssertEqual(try AuthFile.load(path: p).keys, ["quay.io"])
        var empty = AuthFile(path: dir + "/none.json")
        XCTAssertFalse(empty.remove("quay.io"))
    }

    func testSaveMakesPrivateParentsAndRefusesAFileAsParent() throws {
        let p = dir + "/run/containers/auth.json"
        var f = try AuthFile.load(path: p)
        try f.set("quay.io", Credential(username: "u", password: "p"))
        try f.save()
        XCTAssertEqual(try XCTUnwrap(mode(dir + "/run")) & 0o077, 0, "0700 (less the umask)")
        XCTAssertEqual(try XCTUnwrap(mode(dir + "/run/containers")) & 0o077, 0)
        XCTAssertEqual(try XCTUnwrap(mode(p)) & 0o7777, 0o600)
        try FS.writeAtomically(dir + "/file", "x")
        let under = AuthFile(path: dir + "/file/auth.json")
        XCTAssertThrowsError(try under.save()) { XCTAssertTrue("\($0)".contains("is not a directory"), "\($0)") }
    }

    func testSaveReplacesASymlinkInsteadOfWritingThroughIt() throws {
        let target = dir + "/target"
        try FS.writeAtomically(target, "precious", mode: 0o644)
        let p = dir + "/auth.json"
        XCTAssertEqual(symlink(target, p), 0)
        var f = AuthFile(path: p)
        try f.set("quay.io", Credential(username: "u", password: "p"))
        try f.save()
        XCTAssertEqual(try FS.readString(target), "precious")
        XCTAssertEqual(try XCTUnwrap(mode(p)) & S_IFMT, S_IFREG)
        XCTAssertEqual(try AuthFile.load(path: p).credential(for: "quay.io")?.username, "u")
    }

    func testSaveOverAnExistingLooseFileMakesIt0600() throws {
        let p = dir + "/auth.json"
        try FS.writeAtomically(p, "{}", mode: 0o644)
        XCTAssertEqual(chmod(p, 0o666), 0)
        try AuthFile.load(path: p).save()
        XCTAssertEqual(try XCTUnwrap(mode(p)) & 0o7777, 0o600)
        XCTAssertEqual(try FS.readString(p), "{}\n")
    }

    func testDockerConfigLookup() throws {
        let docker = dir + "/docker"
        let auth = dir + "/auth.json"
        try write(docker + "/config.json", """
        {"auths": {"https://index.docker.io/v1/": {"auth": "\(b64("hub:1"))"}, "quay.io": {"auth": "\(b64("dq:2"))"},
                   "helped.io": {}},
         "credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}, "psFormat": "table"}
        """)
        try write(auth, #"{"auths": {"quay.io": {"auth": "\#(b64("aq:3"))"}}}"#)
        let env: (String) -> String? = { ["DOCKER_CONFIG": docker, "HOME": "/nonexistent"][$0] }
        var warnings: [String] = []
        func look(_ host: String) throws -> Credential? {
            try lookupCredential(host: host, authFile: auth, env: env, warn: { warnings.append($0) })
        }
        XCTAssertEqual(try look("quay.io")?.username, "aq", "the auth file first")
        XCTAssertEqual(try look("docker.io")?.username, "hub", "then Docker's")
        XCTAssertEqual(try look("registry-1.docker.io")?.username, "hub")
        XCTAssertEqual(warnings, [])
        XCTAssertNil(try look("gcr.io"))
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains(#"credential helper "gcloud" for "gcr.io" is not supported"#) ?? false, "\(warnings)")
        warnings = []
        XCTAssertNil(try look("helped.io"))
        XCTAssertTrue(warnings.first?.contains(#""desktop""#) ?? false, "\(warnings)")
        XCTAssertTrue(warnings.first?.hasPrefix(docker + "/config.json: ") ?? false, "\(warnings)")

        // No auth file, no Docker config: nothing, quietly.
        warnings = []
        XCTAssertNil(try lookupCredential(host: "quay.io", authFile: dir + "/none", env: { _ in nil }, warn: { warnings.append($0) }))
        XCTAssertEqual(warnings, [])
    }

    func testABrokenDockerConfigIsWarnedAboutABrokenAuthFileIsAnError() throws {
        let docker = dir + "/docker"
        try write(docker + "/config.json", "{not json")
        let env: (String) -> String? = { ["DOCKER_CONFIG": docker][$0] }
        var warnings: [String] = []
        XCTAssertNil(try lookupCredential(host: "quay.io", authFile: dir + "/none", env: env, warn: { warnings.append($0) }))
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains(docker + "/config.json:1:") ?? false, "\(warnings)")
        try write(dir + "/auth.json", #"{"auths": {"quay.io": {"auth": "??"}}}"#)
        XCTAssertThrowsError(try lookupCredential(host: "quay.io", authFile: dir + "/auth.json", env: env)) {
            XCTAssertEqual("\($0)", dir + #"/auth.json: auths["quay.io"].auth: not base64"#)
        }
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
            (#"{"defualt": "quay.io"}"#, #"registries.json: "defualt": unknown key (the keys are default, search, insecure, blocked, connectTimeout, stallTimeout, retryTimeout)"#),
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
