import CShim
import Glibc
import Runtime
import Sys

// `attach`: a detached container's monitor keeps its terminal (or its
// output pipes) and listens on DIR/attach, a SOCK_SEQPACKET unix socket
// (mode 0600; only root, or our own uid, may connect). Each packet is one
// message, its first byte the kind:
//   monitor -> client  't' | 'n'    hello: the container has a terminal, or not
//                      'o' BYTES    stdout (a terminal's output)
//                      'e' BYTES    stderr (no terminal)
//                      'x' CODE     the container exited with CODE (decimal)
//   client -> monitor  'i' BYTES    input for the terminal
//                      'w' WINSIZE  the client's window size (struct winsize)
// Detaching is the client's business: it stops at its detach keys and
// closes the socket; the container runs on, its output still logged.
// The socket is reached through /proc/self/fd/N of the container's
// directory, whatever the data directory's length (sun_path holds 108 bytes).

/// The name of the socket in a container's directory.
let attachSocketName = "attach"

/// `dir`'s socket as a short path: "/proc/self/fd/N/attach", with N an
/// O_PATH descriptor of `dir` (closed by the caller after bind or connect).
func attachAddress(_ dir: String) throws -> (sockaddr_un, Int32) {
    let d = open(dir, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
    guard d >= 0 else { throw SysError("open \(dir)") }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array("/proc/self/fd/\(d)/\(attachSocketName)".utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    return (addr, d)
}

func withSockaddr<R>(_ addr: inout sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// Sends one message: `kind`, then `body`. False when the peer is gone or
/// too slow (the send timeout).
@discardableResult
func sendMessage(_ fd: Int32, _ kind: UInt8, _ body: UnsafeRawBufferPointer) -> Bool {
    var m = [UInt8](repeating: 0, count: body.count + 1)
    m[0] = kind
    if body.count > 0 { m.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[1...]).copyMemory(from: body) } }
    while true {
        let n = send(fd, m, m.count, Int32(MSG_NOSIGNAL))
        if n < 0 && errno == EINTR { continue }
        return n == m.count
    }
}

@discardableResult
func sendMessage(_ fd: Int32, _ kind: UInt8, _ body: [UInt8]) -> Bool {
    body.withUnsafeBytes { sendMessage(fd, kind, $0) }
}

/// The monitor's end: the listening socket and its clients, polled by
/// Runtime.run's wait (RunWatch) beside the container's output.
final class AttachServer: RunWatch {
    let listener: Int32
    let dir: String
    let tty: Bool
    /// Clients' input reaches the terminal (run -i, as Docker's attach).
    let input: Bool
    var clients: [Int32] = []

    /// Listens in `dir`; nil when the socket cannot be made (the container
    /// then runs unattachable, its output still logged).
    init?(dir: String, tty: Bool, input: Bool) {
        self.dir = dir
        self.tty = tty
        self.input = input
        guard let (a, d) = try? attachAddress(dir) else { return nil }
        var addr = a
        defer { Glibc.close(d) }
        let s = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return nil }
        _ = unlinkat(d, attachSocketName, 0)
        // Made 0600 (bind takes the mode from the umask).
        let old = umask(0o177)
        let r = withSockaddr(&addr) { bind(s, $0, $1) }
        umask(old)
        guard r == 0, listen(s, 8) == 0 else { Glibc.close(s); return nil }
        listener = s
    }

    func fds() -> [Int32] { [listener] + clients }

    func ready(_ fd: Int32, _ revents: Int16, terminal: Int32?) {
        if fd == listener { accept(); return }
        guard clients.contains(fd) else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buf, buf.count, 0)
        if n < 0 && errno == EINTR { return }
        guard n > 0 else { drop(fd); return }
        guard tty, let master = terminal else { return }
        switch buf[0] {
        case UInt8(ascii: "i") where n > 1 && input:
            try? FS.writeAll(fd: master, Array(buf[1..<n]), what: "terminal")
        case UInt8(ascii: "w") where n == 1 + MemoryLayout<winsize>.size:
            var ws = winsize()
            withUnsafeMutableBytes(of: &ws) { $0.copyBytes(from: buf[1..<n]) }
            _ = ioctl(master, UInt(TIOCSWINSZ), &ws)
        default:
            break
        }
    }

    func accept() {
        let c = Glibc.accept(listener, nil, nil)
        guard c >= 0 else { return }
        _ = fcntl(c, F_SETFD, FD_CLOEXEC)  // (single-threaded: nothing execs in between)
        // Root (or our own uid) only, whatever the socket's mode says.
        var cred = [Int32](repeating: -1, count: 3)  // struct ucred: pid, uid, gid
        var len = socklen_t(12)
        guard getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred[1] == 0 || UInt32(bitPattern: cred[1]) == geteuid() else {
            Glibc.close(c); return
        }
        // A client that stops reading is let go after 2 s, not waited for:
        // the container's output must not stall on it.
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard sendMessage(c, tty ? UInt8(ascii: "t") : UInt8(ascii: "n"), []) else { Glibc.close(c); return }
        clients.append(c)
    }

    func drop(_ fd: Int32) {
        clients.removeAll { $0 == fd }
        Glibc.close(fd)
    }

    func broadcast(_ stream: LogStream, _ bytes: UnsafeRawBufferPointer) {
        let kind = stream == .stderr && !tty ? UInt8(ascii: "e") : UInt8(ascii: "o")
        for c in clients where !sendMessage(c, kind, bytes) { drop(c) }
    }

    /// Tells every client the exit code and lets them go.
    func exited(_ code: Int32) {
        for c in clients {
            sendMessage(c, UInt8(ascii: "x"), Array("\(code)".utf8))
            Glibc.close(c)
        }
        clients = []
    }

    /// The listener closed and its socket removed (if the directory is still there).
    func close() {
        exited(-1)
        Glibc.close(listener)
        let d = open(dir, Kernel.O_PATH | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { _ = unlinkat(d, attachSocketName, 0); Glibc.close(d) }
    }
}

nonisolated(unsafe) var attachWakeWrite: Int32 = -1
nonisolated(unsafe) var attachWinch: Int32 = 0
nonisolated(unsafe) var attachSignal: Int32 = 0

/// Docker's --detach-keys: comma-separated keys, each one character or
/// ctrl-@, ctrl-a ... ctrl-z, ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_ (the
/// control codes 0 to 31); "" detaches never. nil for anything else.
public func parseDetachKeys(_ s: String) -> [UInt8]? {
    if s.isEmpty { return [] }
    var out: [UInt8] = []
    for key in s.split(separator: ",", omittingEmptySubsequences: false) {
        let b = Array(key.utf8)
        if b.count == 1 { out.append(b[0]); continue }
        guard b.count == 6, key.hasPrefix("ctrl-") else { return nil }
        let c = b[5]
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(c - UInt8(ascii: "a") + 1)
        case UInt8(ascii: "@"): out.append(0)
        case UInt8(ascii: "["), UInt8(ascii: "\\"), UInt8(ascii: "]"), UInt8(ascii: "^"), UInt8(ascii: "_"):
            out.append(c - UInt8(ascii: "[") + 27)
        default: return nil
        }
    }
    return out
}

/// Finds the detach keys in what the user types: bytes that may begin
/// them are held back until they do (detach) or do not (passed on).
struct DetachMatcher {
    let keys: [UInt8]
    var held = 0

    /// The bytes to send on, and whether the keys were typed.
    mutating func feed(_ input: ArraySlice<UInt8>) -> (pass: [UInt8], detach: Bool) {
        guard !keys.isEmpty else { return (Array(input), false) }
        var pass: [UInt8] = []
        for b in input {
            if b == keys[held] {
                held += 1
                if held == keys.count { return (pass, true) }
                continue
            }
            // Not the keys after all: what was held goes on, and this byte
            // may start them again.
            pass += keys[0..<held]
            held = 0
            if b == keys[0] {
                held = 1
                if held == keys.count { return (pass, true) }
            } else {
                pass.append(b)
            }
        }
        return (pass, false)
    }
}

extension Containers {
    /// Connects this terminal (or these stdout and stderr) to running
    /// container `id`'s monitor until the detach keys (0), the container's
    /// exit (its code) or a signal (128+N).
    public func attach(_ id: String, name: String, detachKeys: [UInt8]) throws -> Int32 {
        guard isRunning(id) else { throw Failure(.state, "container \(name) is not running") }
        let s = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SysError("socket") }
        defer { close(s) }
        var (addr, d) = try attachAddress(dir(id))
        let r = withSockaddr(&addr) { connect(s, $0, $1) }
        let e = errno
        close(d)
        guard r == 0 else {
            if e == ENOENT || e == ECONNREFUSED {
                throw Failure(.state, "container \(name) has no monitor to attach to (only a container run with -d has one)")
            }
            throw SysError("connect to \(name)'s monitor", errno: e)
        }
        var buf = [UInt8](repeating: 0, count: 65536 + 1)
        var n = recv(s, &buf, buf.count, 0)
        while n < 0 && errno == EINTR { n = recv(s, &buf, buf.count, 0) }
        guard n >= 1, buf[0] == UInt8(ascii: "t") || buf[0] == UInt8(ascii: "n") else {
            throw Failure(.failed, "container \(name)'s monitor did not answer")
        }
        let tty = buf[0] == UInt8(ascii: "t")

        var wake: [Int32] = [0, 0]
        guard mc_pipe2(&wake, O_CLOEXEC | O_NONBLOCK) == 0 else { throw SysError("pipe") }
        defer { close(wake[0]); close(wake[1]); attachWakeWrite = -1 }
        attachWakeWrite = wake[1]
        for sig in [SIGWINCH, SIGINT, SIGTERM, SIGHUP] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                if sig == SIGWINCH { attachWinch = 1 } else { attachSignal = sig }
                var b: UInt8 = 1
                _ = write(attachWakeWrite, &b, 1)
            }
            sa.sa_flags = SA_RESTART
            sigaction(sig, &sa, nil)
        }
        // The user's terminal in raw mode: every key goes to the container's.
        let saved = tty ? Terminal.enterRaw(0) : nil
        defer { Terminal.restore(saved) }
        func sendSize() {
            var ws = winsize()
            guard ioctl(isatty(0) == 1 ? 0 : 1, UInt(TIOCGWINSZ), &ws) == 0 else { return }
            _ = withUnsafeBytes(of: &ws) { sendMessage(s, UInt8(ascii: "w"), $0) }
        }
        if tty { sendSize() }

        var matcher = DetachMatcher(keys: detachKeys)
        // Without a terminal, stdin is not the container's (it has none open).
        var stdinOpen = tty
        while true {
            var p = [pollfd(fd: s, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0),
                     pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            if poll(&p, 3, -1) < 0 {
                if errno == EINTR { continue }
                throw SysError("poll")
            }
            if p[2].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                _ = read(wake[0], &drain, drain.count)
                if attachWinch != 0 { attachWinch = 0; if tty { sendSize() } }
                if attachSignal != 0 { return 128 + attachSignal }
            }
            if p[0].revents != 0 {
                let m = recv(s, &buf, buf.count, 0)
                if m < 0 && errno == EINTR { continue }
                if m <= 0 {
                    // The monitor went without a word: the code it recorded, if any.
                    if let c = load(id)?.exitCode { return c }
                    throw Failure(.failed, "lost the connection to container \(name)'s monitor")
                }
                switch buf[0] {
                case UInt8(ascii: "o"): try? FS.writeAll(fd: 1, Array(buf[1..<m]), what: "stdout")
                case UInt8(ascii: "e"): try? FS.writeAll(fd: 2, Array(buf[1..<m]), what: "stderr")
                case UInt8(ascii: "x"):
                    if let c = Int32(String(decoding: buf[1..<m], as: UTF8.self)), c >= 0 { return c }
                    if let c = load(id)?.exitCode { return c }
                    throw Failure(.failed, "container \(name)'s monitor stopped")
                default: break
                }
            }
            if stdinOpen && p[1].revents != 0 {
                let m = read(0, &buf, buf.count)
                if m < 0 && errno == EINTR { continue }
                if m <= 0 { stdinOpen = false; continue }
                let (pass, detach) = matcher.feed(buf[0..<m])
                if !pass.isEmpty && !sendMessage(s, UInt8(ascii: "i"), pass) { continue }
                if detach {
                    if saved != nil { try? FS.writeAll(fd: 1, Array("\r\n".utf8), what: "stdout") }
                    return 0
                }
            }
        }
    }
}
