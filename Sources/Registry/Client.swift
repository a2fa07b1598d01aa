import CCurl
import Glibc
import Image
import JSON
import Sys

// One registry, as distribution's v2 API sees it: the endpoint found by
// pinging /v2/ (https; plain http only for a registry marked insecure),
// its auth scheme (none, Basic, or Bearer tokens fetched from the realm
// its WWW-Authenticate names, cached per scope until they expire and
// renewed on a 401 or insufficient_scope), and the retry rule: 429 and
// 5xx answers and dropped or stalled connections are retried with
// backoff, honouring Retry-After, within a total time.

/// What to do with a finished request.
enum Verdict {
    case ok
    /// Try again after this many seconds (resuming a blob).
    case retry(after: Double, why: String)
    /// Get a new token (from this challenge) and try again.
    case reauthenticate(AuthChallenge?)
    case fail(Failure)
}

final class RegistryClient {
    /// As references name it: `docker.io`, `127.0.0.1:5000`.
    let host: String
    /// The API's scheme and host: `https://registry-1.docker.io`.
    private(set) var base = ""
    let tls: TLSSettings
    /// Plain http allowed (and TLS unverified).
    let insecure: Bool
    let credential: Credential?
    let engine: HTTPEngine
    let retryTimeout: Double
    let interrupted: () -> Bool
    private var challenge: AuthChallenge?
    private var tokens: [String: BearerToken] = [:]

    init(host: String, tls: TLSSettings, insecure: Bool, credential: Credential?, engine: HTTPEngine,
         retryTimeout: Double, interrupted: @escaping () -> Bool) {
        self.host = host
        self.tls = tls
        self.insecure = insecure
        self.credential = credential
        self.engine = engine
        self.retryTimeout = retryTimeout
        self.interrupted = interrupted
    }

    /// The host the API is at (Docker Hub's is not docker.io).
    var endpoint: String { host == "docker.io" ? "registry-1.docker.io" : host }

    // MARK: - Ping

    /// GET /v2/: finds the scheme and the auth challenge.
    func ping() throws {
        let schemes = insecure ? ["https", "http"] : ["https"]
        var lastError: Failure?
        for scheme in schemes {
            let r = HTTPRequest("GET", "\(scheme)://\(endpoint)/v2/", maxBody: 64 << 10, followRedirects: false)
            try withRetries(r) {}
            if r.result != CURLE_OK {
                lastError = transportFailure(r)
                // An insecure registry may speak plain http only.
                if scheme == "https" && insecure && !isResolveOrRefused(r.result) { continue }
                throw lastError!
            }
            base = "\(scheme)://\(endpoint)"
            switch r.status {
            case 200: challenge = nil
            case 401:
                let cs = AuthChallenge.parse(headers: r.headers("www-authenticate"))
                challenge = cs.first(where: { $0.scheme == "bearer" }) ?? cs.first(where: { $0.scheme == "basic" })
                if challenge == nil {
                    throw Failure(.failed, "\(host): /v2/ asks for authentication but names no Bearer or Basic scheme")
                }
            default:
                throw Failure(.failed, "\(host) is not a registry (GET \(base)/v2/ answered \(r.status))")
            }
            return
        }
        throw lastError ?? Failure(.failed, "\(host): no answer")
    }

    var hasChallenge: Bool { challenge != nil }

    /// Whether `challenge` is Basic (credentials go on every request).
    var usesBasic: Bool { challenge?.scheme == "basic" }

    // MARK: - Authorization

    /// The Authorization header for a request in `scope`, fetching a
    /// token if needed.
    func authorization(scope: String) throws -> String? {
        guard let c = challenge else { return nil }
        if c.scheme == "basic" {
            guard let cred = credential else {
                throw Failure(.failed, "\(host): authentication required (log in with `minicontainer login \(host)`)")
            }
            return "Authorization: Basic " + Base64.encode(Array((cred.username + ":" + cred.password).utf8))
        }
        if let t = tokens[scope], t.expires > Clock.monotonicSeconds() + 5 { return "Authorization: Bearer " + t.token }
        try fetchToken(scope: scope, challenge: c)
        return tokens[scope].map { "Authorization: Bearer " + $0.token }
    }

    /// A new token for `scope` from the realm of `challenge` (the ping's,
    /// or a 401's with a wider scope).
    func fetchToken(scope: String, challenge c: AuthChallenge) throws {
        guard let realm = c.realm, realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw Failure(.failed, "\(host): the Bearer challenge has no http(s) realm")
        }
        if realm.hasPrefix("http://") && !insecure && !base.hasPrefix("http://") {
            throw Failure(.failed, "\(host): refusing to fetch a token over plain http from \(realm)")
        }
        var q: [String] = []
        if let s = c.service { q.append("service=" + urlEncode(s)) }
        var scopes = scope.isEmpty ? [] : [scope]
        if let s = c.scope, s != scope, !s.isEmpty { scopes.append(s) }
        for s in scopes { q.append("scope=" + urlEncode(s)) }
        let url = realm + (realm.contains("?") ? "&" : "?") + q.joined(separator: "&")
        var headers: [String] = []
        if let cred = credential {
            headers.append("Authorization: Basic " + Base64.encode(Array((cred.username + ":" + cred.password).utf8)))
        }
        let r = HTTPRequest("GET", url, headers: headers, maxBody: 1 << 20)
        try withRetries(r) {}
        if r.result != CURLE_OK { throw transportFailure(r, what: "token server \(hostOf(realm))") }
        switch r.status {
        case 200: break
        case 401, 403:
            throw Failure(.failed, credential == nil
                ? "\(host): unauthorized: the token server refused an anonymous token for \(scope) (log in with `minicontainer login \(host)`)"
                : "\(host): unauthorized: the token server refused the credentials (\(r.status))")
        default:
            throw Failure(.failed, "\(host): the token server \(hostOf(realm)) answered \(r.status)\(errorDetail(r))")
        }
        let t = try BearerToken.decodeTokenResponse(r.body, now: Clock.monotonicSeconds())
        tokens[scope] = t
        for s in scopes { tokens[s] = t }
    }

    // MARK: - Requests

    /// Runs `r` (rebuilt by `make` on each try) with auth and retries; the
    /// answer, whatever its status.
    func send(scope: String, _ make: () -> HTTPRequest) throws -> HTTPRequest {
        let deadline = Clock.monotonicSeconds() + retryTimeout
        var attempt = 0
        var reauthenticated = false
        while true {
            let r = make()
            if let a = try authorization(scope: scope) { r.headers.append(a) }
            try engine.perform(r, tls: tls, interrupted: interrupted)
            switch verdict(r, attempt: attempt) {
            case .ok: return r
            case .fail(let f): throw f
            case .reauthenticate(let c):
                guard !reauthenticated else { throw unauthorized(r, scope: scope) }
                reauthenticated = true
                try renew(scope: scope, challenge: c)
            case .retry(let after, let why):
                attempt += 1
                try wait(after, deadline: deadline, why: why)
            }
        }
    }

    /// After a 401: a new token (or, for Basic, nothing more to try).
    func renew(scope: String, challenge c: AuthChallenge?) throws {
        tokens[scope] = nil
        if let c = c, c.scheme == "bearer" {
            challenge = c
            try fetchToken(scope: scope, challenge: c)
        } else if challenge == nil, let c = c {
            challenge = c
        } else if challenge?.scheme == "bearer" {
            try fetchToken(scope: scope, challenge: challenge!)
        }
    }

    func unauthorized(_ r: HTTPRequest, scope: String) -> Failure {
        Failure(.failed, "\(host): unauthorized\(credential == nil ? " (no credentials; log in with `minicontainer login \(host)`)" : ": the credentials were refused")\(errorDetail(r))")
    }

    /// Sleeps `after` seconds (in steps, watching for Ctrl-C), or fails
    /// when that would pass `deadline`.
    func wait(_ after: Double, deadline: Double, why: String) throws {
        let now = Clock.monotonicSeconds()
        guard now + after <= deadline else {
            throw Failure(.failed, "\(host): \(why); gave up after retrying for \(Int(retryTimeout)) s")
        }
        Log.debugLine("\(host): \(why); retrying in \(after) s")
        let end = now + after
        while Clock.monotonicSeconds() < end {
            if interrupted() { throw Interrupted() }
            var ts = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            nanosleep(&ts, nil)
        }
    }

    /// Retries a request that got no answer (ping, token): only transport
    /// failures that may pass, within the total time.
    private func withRetries(_ r: HTTPRequest, _ prepare: () -> Void) throws {
        let deadline = Clock.monotonicSeconds() + retryTimeout
        var attempt = 0
        while true {
            prepare()
            try engine.perform(r, tls: tls, interrupted: interrupted)
            if r.result == CURLE_OK && r.status != 429 && r.status < 500 { return }
            guard case .retry(let after, let why) = verdict(r, attempt: attempt) else { return }
            attempt += 1
            if Clock.monotonicSeconds() + after > deadline { return }
            try wait(after, deadline: deadline, why: why)
        }
    }

    /// The backoff for the n-th retry: 0.5, 1, 2, 4, 8, then 10 s.
    static func backoff(_ attempt: Int) -> Double { min(10, 0.5 * Double(1 << min(attempt, 5))) }

    /// Decides what a finished request means.
    func verdict(_ r: HTTPRequest, attempt: Int) -> Verdict {
        if r.result != CURLE_OK {
            if r.tooLarge { return .fail(Failure(.invalid, "\(host): the answer to \(path(of: r.url)) is larger than the \(r.maxBody >> 20) MiB limit")) }
            if let f = r.file?.failure { return .fail(f) }
            switch r.result {
            case CURLE_OPERATION_TIMEDOUT:
                return .retry(after: RegistryClient.backoff(attempt), why: "timed out: no data from \(hostOf(r.url)) for \(Int(engine.timeouts.stall)) s")
            case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2, CURLE_HTTP2_STREAM:
                return .retry(after: RegistryClient.backoff(attempt), why: "the connection to \(hostOf(r.url)) broke (\(r.transportError))")
            default:
                return .fail(transportFailure(r))
            }
        }
        switch r.status {
        case 200..<300:
            return .ok
        case 401:
            return .reauthenticate(AuthChallenge.parse(headers: r.headers("www-authenticate")).first)
        case 403:
            let cs = AuthChallenge.parse(headers: r.headers("www-authenticate"))
            if let c = cs.first, c.error == "insufficient_scope" { return .reauthenticate(c) }
            return .fail(Failure(.failed, "\(host): denied: \(path(of: r.url))\(errorDetail(r))"))
        case 429, 500..<600:
            var after = RegistryClient.backoff(attempt)
            if let ra = r.header("retry-after"), let s = retryAfterSeconds(ra, nowUnix: Int64(time(nil))) { after = min(max(s, 0), 60) }
            return .retry(after: after, why: "\(hostOf(r.url)) answered \(r.status)\(errorDetail(r))")
        default:
            return .ok
        }
    }

    // MARK: - Messages

    func transportFailure(_ r: HTTPRequest, what: String? = nil) -> Failure {
        let who = what ?? hostOf(r.url)
        switch r.result {
        case CURLE_COULDNT_RESOLVE_HOST: return Failure(.failed, "unknown host \(who): \(r.transportError)")
        case CURLE_COULDNT_CONNECT: return Failure(.failed, "cannot connect to \(who): \(r.transportError)")
        case CURLE_PEER_FAILED_VERIFICATION:
            return Failure(.failed, "TLS: the certificate of \(who) is not trusted: \(r.transportError) (give its CA with --cert-dir or /etc/containers/certs.d/\(host)/ca.crt, or --tls-verify=false)")
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE:
            return Failure(.failed, "TLS: cannot make a secure connection to \(who): \(r.transportError)")
        case CURLE_OPERATION_TIMEDOUT: return Failure(.failed, "timed out: \(who): \(r.transportError)")
        case CURLE_TOO_MANY_REDIRECTS: return Failure(.failed, "\(who): too many redirects")
        case CURLE_UNSUPPORTED_PROTOCOL: return Failure(.failed, "\(who): a redirect to a protocol other than http(s) was refused (\(r.transportError))")
        default: return Failure(.failed, "\(who): \(r.transportError)")
        }
    }

    private func isResolveOrRefused(_ c: CURLcode) -> Bool {
        c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_CONNECT
    }

    /// `: MANIFEST_UNKNOWN: manifest unknown` from a registry's error body.
    func errorDetail(_ r: HTTPRequest) -> String {
        guard !r.body.isEmpty, let v = try? JSONValue.parse(Array(r.body.prefix(64 << 10)), file: "response"),
              case .object(let o) = v, case .array(let errs)? = o["errors"], case .object(let e)? = errs.first else { return "" }
        var s = ""
        if case .string(let c)? = e["code"] { s += ": " + c }
        if case .string(let m)? = e["message"] { s += ": " + m }
        return Log.oneLine(s, max: 300)
    }

    func path(of url: String) -> String {
        let rest = afterScheme(url)
        return rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
    }
}

func hostOf(_ url: String) -> String {
    String(afterScheme(url).prefix(while: { $0 != "/" && $0 != "?" }))
}

/// What follows `scheme://`.
func afterScheme(_ url: String) -> Substring {
    for p in ["https://", "http://"] where url.hasPrefix(p) { return url.dropFirst(p.count) }
    return Substring(url)
}

/// Percent-encodes all but unreserved characters.
func urlEncode(_ s: String) -> String {
    var out = ""
    let hex = Array("0123456789ABCDEF")
    for b in s.utf8 {
        if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x2e || b == 0x5f || b == 0x7e {
            out.append(Character(Unicode.Scalar(b)))
        } else {
            out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
        }
    }
    return out
}
