import Glibc
import Image
import Registry
import Spec
import Sys

// `pull`, `login`, `logout`, and run's --pull: the registry client (the
// Registry module). A pull that `run` needs runs in a child process, so
// that libcurl's resolver threads never exist in the process that goes on
// to make namespaces.

func registryConfig() throws -> RegistryConfig {
    try RegistryConfig.load(path: RegistryConfig.path(env: Env.get))
}

func authFilePath(_ p: Parsed) -> String {
    p.string("authfile") ?? AuthFile.defaultPath(env: Env.get, uid: getuid())
}

/// --tls-verify=BOOL.
func tlsVerifyFlag(_ p: Parsed) throws -> Bool? {
    guard let v = p.string("tls-verify") else { return nil }
    switch v {
    case "true", "1": return true
    case "false", "0": return false
    default: throw Failure(.usage, "--tls-verify must be true or false, not \(quoted(v))")
    }
}

func pullOptions(_ p: Parsed, quiet: Bool) throws -> PullOptions {
    var o = PullOptions(authFile: authFilePath(p))
    o.platform = try platformFlag(p)
    o.tlsVerify = try tlsVerifyFlag(p)
    o.certDir = p.string("cert-dir")
    o.progress = quiet ? .quiet : (isatty(2) == 1 ? .terminal : .plain)
    return o
}

let registryFlags: [Flag] = [
    Flag(["tls-verify"], value: "BOOL", "verify the registry's TLS certificate (default true; false also allows plain http)"),
    Flag(["cert-dir"], value: "DIR", "CA certificates (*.crt) and a client certificate (*.cert, *.key) for the registry"),
    Flag(["authfile"], value: "FILE", "the credentials file (default $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json)"),
]

let pullFlags: [Flag] = [
    Flag(["platform"], value: "OS/ARCH[/VARIANT]", "the image to take from a multi-platform index (default linux/amd64)"),
    Flag(["q", "quiet"], "no progress; only the image id"),
] + registryFlags

/// Pulls `ref`; the image id. Ctrl-C: exit 130, partial downloads kept.
func pullImage(_ ref: String, _ p: Parsed, _ g: Globals, quiet: Bool) throws -> PulledImage {
    let puller = try Puller(store: try imageStore(g), config: try registryConfig(), options: try pullOptions(p, quiet: quiet))
    return try puller.pull(ref)
}

let interruptedMessage = "interrupted; what was downloaded is kept for the next pull"

func pullRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count == 1 else {
        throw Failure(.usage, "pull takes one image reference (NAME[:TAG] or NAME@sha256:DIGEST), got \(p.positionals.count) arguments")
    }
    do {
        let img = try imageOp { try pullImage(p.positionals[0], p, g, quiet: p.bool("quiet")) }
        writeStdout(img.id.hex + "\n")
        return 0
    } catch is Interrupted {
        Log.error("pull: " + interruptedMessage)
        return 130
    }
}

let pullCommand = Command(name: "pull", summary: "pull an image from a registry", usage: "[--platform OS/ARCH] [-q] NAME[:TAG|@DIGEST]",
                          flags: pullFlags, run: pullRun)

/// run --pull: pulls `ref` when the policy says so, in a child process
/// (libcurl's threads stay out of this one). Returns the reference to
/// resolve in the store.
func pullForRun(_ ref: String, _ p: Parsed, _ g: Globals) throws -> String {
    let policy = p.string("pull") ?? "missing"
    guard ["missing", "always", "never"].contains(policy) else {
        throw Failure(.usage, "--pull must be missing, always or never, not \(quoted(policy))")
    }
    if policy == "never" { return localReference(ref, g) ?? ref }
    if policy == "missing", let local = localReference(ref, g) { return local }
    let pid = fork()
    if pid < 0 { throw SysError("fork") }
    if pid == 0 {
        var code: Int32 = 0
        do {
            let img = try pullImage(ref, p, g, quiet: false)
            writeStderr("Pulled \(img.reference.familiar) (\(img.id))\n")
        } catch is Interrupted {
            Log.error("run: pull: " + interruptedMessage)
            code = 130
        } catch {
            Log.error("run: \(policy == "missing" ? "\(ref) is not in the store, and pulling it failed" : "pull"): \(error)")
            code = 125
        }
        _exit(code)
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    if code != 0 { throw PullFailed(code: code) }
    return localReference(ref, g) ?? ref
}

/// A pull in run's child failed (it said why): run exits with its code.
struct PullFailed: Error { var code: Int32 }

/// The stored reference a user's name means: the first of its candidates
/// (default registry, then search registries) the store has; an id or id
/// prefix as it is.
func localReference(_ ref: String, _ g: Globals) -> String? {
    guard let store = try? ImageStore(locations: g.locations), store.exists else { return nil }
    if let config = try? registryConfig(), let cands = try? config.candidates(ref) {
        for c in cands where store.has(c.description) { return c.description }
    }
    return store.has(ref) ? ref : nil
}

/// The stored reference a command's image argument means (`busybox` may
/// be the default registry's), else the argument as given.
func storeRef(_ ref: String, _ g: Globals) -> String { localReference(ref, g) ?? ref }

// MARK: - login, logout

/// `registry.example.com`, from `https://registry.example.com/v1/` too.
func registryHost(_ text: String) throws -> String {
    var s = Substring(text)
    for p in ["https://", "http://"] where s.hasPrefix(p) { s = s.dropFirst(p.count) }
    if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
    let host = String(s)
    guard !host.isEmpty, host.utf8.allSatisfy({ isAlnumByte($0) || $0 == 0x2e || $0 == 0x2d || $0 == 0x3a || $0 == 0x5b || $0 == 0x5d }) else {
        throw Failure(.usage, "\(quoted(text, max: 100)) is not a registry (HOST[:PORT])")
    }
    return host == "index.docker.io" || host == "registry-1.docker.io" ? "docker.io" : host
}

private func isAlnumByte(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }

/// A line from the terminal, not echoed when `secret`.
func prompt(_ text: String, secret: Bool) throws -> String {
    writeStderr(text)
    var t = termios()
    let tty = isatty(0) == 1 && tcgetattr(0, &t) == 0
    var saved = t
    if secret && tty {
        t.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSANOW, &t)
    }
    defer { if secret && tty { tcsetattr(0, TCSANOW, &saved); writeStderr("\n") } }
    var line: [UInt8] = []
    var c: UInt8 = 0
    while read(0, &c, 1) == 1 && c != 0x0a && line.count < 4096 { line.append(c) }
    if line.last == 0x0d { line.removeLast() }
    return String(decoding: line, as: UTF8.self)
}

func readPasswordStdin() throws -> String {
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while data.count < 64 << 10 {
        let n = read(0, &buf, buf.count)
        if n < 0 { if errno == EINTR { continue }; throw SysError("read stdin") }
        if n == 0 { break }
        data += buf[0..<n]
    }
    while let l = data.last, l == 0x0a || l == 0x0d { data.removeLast() }
    return String(decoding: data, as: UTF8.self)
}

func loginRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count == 1 else { throw Failure(.usage, "login takes one registry (HOST[:PORT]), got \(p.positionals.count) arguments") }
    let host = try registryHost(p.positionals[0])
    if p.has("password") && p.bool("password-stdin") { throw Failure(.usage, "login: --password and --password-stdin exclude each other") }
    var user = p.string("username")
    if user == nil {
        guard isatty(0) == 1, !p.bool("password-stdin") else { throw Failure(.usage, "login: give the user with -u USER") }
        user = try prompt("Username: ", secret: false)
    }
    let pass: String
    if p.bool("password-stdin") {
        pass = try readPasswordStdin()
    } else if let pw = p.string("password") {
        pass = pw
    } else {
        guard isatty(0) == 1 else { throw Failure(.usage, "login: give the password with -p PASS or --password-stdin") }
        pass = try prompt("Password: ", secret: true)
    }
    guard let u = user, !u.isEmpty, !u.contains(":") else { throw Failure(.usage, "login: the user name must be non-empty and have no ':'") }
    guard !pass.isEmpty else { throw Failure(.usage, "login: the password is empty") }
    let cred = Credential(username: u, password: pass)
    let path = authFilePath(p)
    do {
        try imageOp {
            var opts = try pullOptions(p, quiet: true)
            opts.authFile = path
            let puller = try Puller(store: try imageStore(g), config: try registryConfig(), options: opts)
            try puller.login(host: host, credential: cred)
            var file = try AuthFile.load(path: path)
            try file.set(host, cred)
            try file.save()
        }
    } catch is Interrupted {
        Log.error("login: interrupted")
        return 130
    }
    writeStdout("Login Succeeded!\n")
    return 0
}

let loginCommand = Command(name: "login", summary: "log in to a registry (credentials kept in the auth file, mode 0600)",
                           usage: "[-u USER] [-p PASS | --password-stdin] REGISTRY",
                           flags: [
                               Flag(["u", "username"], value: "USER", "the user name"),
                               Flag(["p", "password"], value: "PASS", "the password (visible to other users in ps; prefer --password-stdin)"),
                               Flag(["password-stdin"], "read the password from stdin"),
                           ] + registryFlags, run: loginRun)

func logoutRun(_ p: Parsed, _ g: Globals) throws -> Int32 {
    guard p.positionals.count == 1 else { throw Failure(.usage, "logout takes one registry (HOST[:PORT]), got \(p.positionals.count) arguments") }
    let host = try registryHost(p.positionals[0])
    let path = authFilePath(p)
    var file = try AuthFile.load(path: path)
    guard file.remove(host) else { throw Failure(.notFound, "logout: not logged in to \(host) (in \(path))") }
    try file.save()
    writeStdout("Removed login credentials for \(host)\n")
    return 0
}

let logoutCommand = Command(name: "logout", summary: "remove a registry's credentials from the auth file", usage: "REGISTRY",
                            flags: [Flag(["authfile"], value: "FILE", "the credentials file")], run: logoutRun)
