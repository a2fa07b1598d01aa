import CShim
import Glibc
import Spec
import Sys

// User-mode networking (issue 18): `--network slirp4netns` or `--network
// pasta`. A helper program of the user's privileges (never more: it runs as
// we do) gives the container's new network namespace a tap device, tap0, with
// 10.0.2.100/24 and a default route via 10.0.2.2, and carries its traffic
// over sockets of the host; published ports are sockets the helper binds on
// the host (slirp4netns: add_hostfwd requests on its API socket; pasta: -t
// and -u). Nothing of the host's loopback is reachable from inside
// (slirp4netns --disable-host-loopback; pasta --no-map-gw, -T none -U none).
//
// The helper never outlives the container, whoever started it: it runs under
// a watcher of ours (double-forked, setsid, single-threaded) that holds a
// pidfd of the init and kills the helper when the init exits; the helper has
// PR_SET_PDEATHSIG SIGKILL, so a watcher killed outright takes it along; and
// tearDown kills both by the pid and start time kept in DIR/usernet/ID.state.
// Between fork and exec every descriptor but the few each needs is closed:
// neither gets the container's pipes, the state lock or our stdio.

public enum UserMode {
    public static let modes: Set<String> = ["slirp4netns", "pasta"]
    public static let tap = "tap0"
    public static let address = IPv4("10.0.2.100")!
    public static let gateway = IPv4("10.0.2.2")!
    public static let prefix = 24
    public static let mtu = 65520

    /// The user-mode mode a bundle's annotations ask for, if any.
    public static func mode(_ annotations: [String: String]?) -> String? {
        guard let m = annotations?[Annotation.network], modes.contains(m) else { return nil }
        return m
    }

    static func stateDir(_ dir: String) -> String { dir + "/usernet" }

    /// Our files for container `id` are named by a 64-bit FNV-1a hash of it
    /// (ids may be long: a unix socket's path must stay short).
    static func baseName(_ id: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let s = String(h, radix: 16)
        return "n" + String(repeating: "0", count: 16 - s.count) + s
    }

    /// Connects the new network namespace of `pid` through the helper the
    /// annotations choose; returns the fields to keep in the state. On
    /// failure nothing of it is left.
    public static func setUp(annotations: [String: String]?, id: String, pid: Int32, dir: String) throws -> [String: String]? {
        guard let mode = mode(annotations) else { return nil }
        let ports = try PortMapping.list(annotations?[Annotation.ports])
        if let m = ports.first(where: { $0.hostPort == 0 }) {
            throw Failure(.invalid, "published port \(m): host port 0 (any free port) is chosen by 'minicontainer run'; a bundle must name the port")
        }
        let sdir = stateDir(dir)
        _ = try FS.makeDirectories(sdir, mode: 0o700)
        guard chmod(sdir, 0o700) == 0 else { throw SysError("chmod \(sdir)") }
        let base = baseName(id)
        // Leftovers of a container of the same id that died unseen.
        tearDown(id: id, dir: dir)
        let spawned: Spawned
        do {
            spawned = try start(mode: mode, pid: pid, ports: ports, dir: sdir, base: base)
        } catch {
            removeFiles(sdir, base)
            throw error
        }
        do {
            let rec = "helper=\(spawned.helper.pid):\(spawned.helper.start)\nwatcher=\(spawned.watcher.pid):\(spawned.watcher.start)\nmode=\(mode)\n"
            try FS.writeAtomically(sdir + "/" + base + ".state", rec, mode: 0o600)
            if mode == "slirp4netns" {
                for m in ports { try addHostForward(m, socket: base + ".sock", dir: sdir) }
            }
        } catch {
            stop(spawned.helper, spawned.watcher)
            removeFiles(sdir, base)
            throw error
        }
        var f = ["mode": mode, "address": "\(address)/\(prefix)", "gateway": "\(gateway)", "interface": tap,
                 "helper": "\(spawned.helper.pid):\(spawned.helper.start)",
                 "watcher": "\(spawned.watcher.pid):\(spawned.watcher.start)"]
        if !ports.isEmpty { f["ports"] = ports.map { $0.description }.joined(separator: ",") }
        return f
    }

    /// Stops the helper of container `id` and removes our files; nothing to
    /// do is no error.
    public static func tearDown(id: String, dir: String) {
        let sdir = stateDir(dir), base = baseName(id)
        guard let text = try? FS.readString(sdir + "/" + base + ".state") else {
            removeFiles(sdir, base)
            return
        }
        var procs: [String: Proc0] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let pv = kv[1].split(separator: ":")
            guard pv.count == 2, let p = Int32(pv[0]), p > 1, let s = UInt64(pv[1]) else { continue }
            procs[String(kv[0])] = Proc0(pid: p, start: s)
        }
        // Waited for, also without published ports: its exit ends before we
        // return, so nothing of the container outlives it. (It detaches
        // from a persistent tap, persistTap: about 2 ms, where unregistering
        // a tap of its own took 15-20 ms here.)
        stop(procs["helper"], procs["watcher"])
        removeFiles(sdir, base)
    }

    static func removeFiles(_ sdir: String, _ base: String) {
        for ext in [".state", ".sock", ".log"] { _ = unlink(sdir + "/" + base + ext) }
    }

    struct Proc0 { var pid: Int32; var start: UInt64 }
    struct Spawned { var helper: Proc0; var watcher: Proc0 }

    /// SIGTERM to the helper, SIGKILL after 2 s; the watcher (which exits
    /// once the helper has) killed too. Each only if it is still the
    /// process of that start time.
    static func stop(_ helper: Proc0?, _ watcher: Proc0?) {
        if let h = helper, Proc.alive(h.pid, startTime: h.start) {
            kill(h.pid, SIGTERM)
            if !Proc.waitGone(h.pid, startTime: h.start, timeoutMs: 2000), Proc.alive(h.pid, startTime: h.start) {
                kill(h.pid, SIGKILL)
                _ = Proc.waitGone(h.pid, startTime: h.start, timeoutMs: 2000)
            }
        }
        if let w = watcher, Proc.alive(w.pid, startTime: w.start) {
            if !Proc.waitGone(w.pid, startTime: w.start, timeoutMs: 500), Proc.alive(w.pid, startTime: w.start) {
                kill(w.pid, SIGKILL)
                _ = Proc.waitGone(w.pid, startTime: w.start, timeoutMs: 2000)
            }
        }
    }

    // MARK: the helper's command line

    /// slirp4netns's or pasta's arguments. Ports come from parsed
    /// PortMappings (numbers and an IPv4 address), so no annotation text
    /// reaches them. Descriptors: 3 is the ready pipe, 4 and 5 (pasta) the
    /// namespaces.
    static func arguments(mode: String, pid: Int32, ports: [PortMapping], userns: Bool, root: Bool) -> [String] {
        if mode == "slirp4netns" {
            return ["--configure", "--mtu=\(mtu)", "--disable-host-loopback", "--ready-fd=3",
                    "--api-socket", baseNameSocketPlaceholder, "\(pid)", tap]
        }
        var a = ["--foreground", "--quiet", "--config-net", "--pid", "/proc/self/fd/3",
                 "--netns", "/proc/self/fd/4"]
        a += userns ? ["--userns", "/proc/self/fd/5"] : ["--netns-only"]
        if root { a += ["--runas", "0:0"] }  // as we do: pasta would become nobody, who cannot open the namespaces
        a += ["--ipv4-only", "--mtu", "\(mtu)", "--address", "\(address)", "--netmask", "\(prefix)", "--gateway", "\(gateway)",
              "--ns-ifname", tap, "--no-map-gw", "-T", "none", "-U", "none"]
        let tcp = ports.filter { $0.proto == "tcp" }, udp = ports.filter { $0.proto == "udp" }
        a += ["-t", tcp.isEmpty ? "none" : tcp.map(pastaSpec).joined(separator: ",")]
        a += ["-u", udp.isEmpty ? "none" : udp.map(pastaSpec).joined(separator: ",")]
        return a
    }
    static let baseNameSocketPlaceholder = "@SOCKET@"

    /// -t/-u's form of one mapping: [ADDR/]HOST:CTR.
    static func pastaSpec(_ m: PortMapping) -> String {
        (m.hostIP.map { "\($0)/" } ?? "") + "\(m.hostPort):\(m.containerPort)"
    }

    /// add_hostfwd's request for one mapping: every value a number or an
    /// IPv4 address written by us.
    static func hostForwardRequest(_ m: PortMapping) -> String {
        "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"\(m.proto == "udp" ? "udp" : "tcp")\",\"host_addr\":\"\(m.hostIP?.description ?? "0.0.0.0")\",\"host_port\":\(m.hostPort),\"guest_addr\":\"\(address)\",\"guest_port\":\(m.containerPort)}}"
    }

    // MARK: starting it

    static func start(mode: String, pid: Int32, ports: [PortMapping], dir: String, base: String) throws -> Spawned {
        guard let path = Program.find([mode]) else {
            throw Failure(.notFound, "--network \(mode): \(mode) is not installed (Debian's \(mode == "pasta" ? "passt" : "slirp4netns") package)")
        }
        // The helper opens the tap in the container's user namespace as
        // us: a /dev/net/tun closed to us is a clear line here, not its
        // "child failed(1)".
        if access("/dev/net/tun", R_OK | W_OK) != 0 {
            throw Failure(.failed, "--network \(mode): /dev/net/tun cannot be opened by this user (\(errnoText(errno)); Debian's udev makes it mode 0666)")
        }
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        func keep(_ fd: Int32, _ what: String) throws -> Int32 {
            guard fd >= 0 else { throw SysError(what) }
            opened.append(fd)
            return fd
        }
        let initFd = try keep(mc_pidfd_open(pid, 0), "pidfd_open \(pid)")
        let null = try keep(open("/dev/null", O_RDWR | O_CLOEXEC), "open /dev/null")
        let log = try keep(open(dir + "/" + base + ".log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600), "open \(dir)/\(base).log")
        let dirFd = try keep(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open \(dir)")
        var ready: [Int32] = [0, 0], info: [Int32] = [0, 0]
        guard mc_pipe2(&ready, O_CLOEXEC) == 0 else { throw SysError("pipe") }
        opened += ready
        guard mc_pipe2(&info, O_CLOEXEC) == 0 else { throw SysError("pipe") }
        opened += info
        if mode == "slirp4netns" { persistTap(initFd: initFd, pid: pid) }
        var extra: [Int32] = []
        var userns = false
        if mode == "pasta" {
            extra.append(try keep(open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC), "open /proc/\(pid)/ns/net"))
            var a = stat(), b = stat()
            if stat("/proc/\(pid)/ns/user", &a) == 0, stat("/proc/self/ns/user", &b) == 0, a.st_ino != b.st_ino || a.st_dev != b.st_dev {
                userns = true
                extra.append(try keep(open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC), "open /proc/\(pid)/ns/user"))
            }
        }
        var args = arguments(mode: mode, pid: pid, ports: ports, userns: userns, root: geteuid() == 0)
        args = args.map { $0 == baseNameSocketPlaceholder ? base + ".sock" : $0 }
        let argv = [path] + args
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { for p in cargv { free(p) }; for p in cenv { free(p) } }

        // The watcher's descriptors: 0, 1 /dev/null, 2 the log, 3 the init's
        // pidfd, 4 the info pipe, 5 the ready pipe, 6 the directory, 7... the
        // namespaces (pasta).
        let layout = [null, null, log, initFd, info[1], ready[1], dirFd] + extra
        let first = fork()
        if first < 0 { throw SysError("fork for \(mode)") }
        if first == 0 {
            _ = setsid()
            let w = fork()
            if w != 0 { _exit(w > 0 ? 0 : 1) }
            watcherMain(layout: layout, extraCount: extra.count, argv: cargv, envp: cenv)
        }
        var st: Int32 = 0
        while waitpid(first, &st, 0) < 0 && errno == EINTR {}
        close(info[1]); close(ready[1])
        opened.removeAll { $0 == info[1] || $0 == ready[1] }

        // The watcher's and the helper's pids, then the helper's "ready".
        let infoText = String(decoding: readAll(info[0], timeoutMs: 5000), as: UTF8.self)
        let pids = infoText.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
        guard pids.count == 2, let ws = Proc.stat(pids[0]), let hs = Proc.stat(pids[1]) else {
            throw Failure(.failed, "--network \(mode): the helper did not start\(logLine(dir, base))")
        }
        let spawned = Spawned(helper: Proc0(pid: pids[1], start: hs.startTime), watcher: Proc0(pid: pids[0], start: ws.startTime))
        let got = readAll(ready[0], timeoutMs: 10_000, until: mode == "slirp4netns" ? 1 : nil)
        let ok = mode == "slirp4netns" ? got.first == UInt8(ascii: "1") : Int32(String(decoding: got, as: UTF8.self).trimmingNewline()) == spawned.helper.pid
        guard ok, Proc.alive(spawned.helper.pid, startTime: spawned.helper.start) else {
            stop(spawned.helper, spawned.watcher)
            throw Failure(.failed, "--network \(mode): \(mode) did not come up\(logLine(dir, base))")
        }
        return spawned
    }

    /// Makes tap0 in the init's network namespace ourselves, persistent,
    /// before slirp4netns opens it by that name (it attaches to a tap that
    /// exists). The helper's exit then only detaches from it, where closing
    /// a tap of its own made the kernel unregister the device in its exit
    /// (15-20 ms here, waited for by every teardown); the device goes with
    /// the namespace, once the container and the helper have both gone.
    /// A forked child enters the namespaces through the init's pidfd (the
    /// user namespace too when it is not ours: rootless, where the tap is
    /// made with the capabilities the user has there). Any failure leaves
    /// the tap to slirp4netns as before: slower to stop, no less correct.
    static func persistTap(initFd: Int32, pid: Int32) {
        func differs(_ ns: String) -> Bool? {
            var a = stat(), b = stat()
            guard stat("/proc/\(pid)/ns/\(ns)", &a) == 0, stat("/proc/self/ns/\(ns)", &b) == 0 else { return nil }
            return a.st_ino != b.st_ino || a.st_dev != b.st_dev
        }
        // Never a persistent device in a namespace of ours (the host's).
        guard differs("net") == true, let user = differs("user") else { return }
        let flags = Kernel.CLONE_NEWNET | (user ? Kernel.CLONE_NEWUSER : 0)
        let child = fork()
        if child == 0 {
            if mc_setns(initFd, flags) != 0 { _exit(1) }
            _exit(mc_tap_persist(tap) == 0 ? 0 : 2)
        }
        guard child > 0 else { return }
        var st: Int32 = 0
        while waitpid(child, &st, 0) < 0 && errno == EINTR {}
    }

    /// ": LAST LINE" of the helper's log, or "".
    static func logLine(_ dir: String, _ base: String) -> String {
        let t = (try? FS.readString(dir + "/" + base + ".log")) ?? ""
        guard let l = t.split(separator: "\n").last(where: { !$0.isEmpty }) else { return "" }
        return ": " + quoted(String(l.prefix(300)))
    }

    /// Reads `fd` until EOF (or `until` bytes), for at most `timeoutMs`.
    static func readAll(_ fd: Int32, timeoutMs: Int, until: Int? = nil) -> [UInt8] {
        var out: [UInt8] = []
        let deadline = Clock.monotonicMs() + Int64(timeoutMs)
        var buf = [UInt8](repeating: 0, count: 256)
        while true {
            if let u = until, out.count >= u { break }
            let left = deadline - Clock.monotonicMs()
            if left <= 0 { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { break }
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// The watcher: forked twice and in a session of its own; it starts the
    /// helper and waits for either the init or the helper to exit. Only
    /// system calls here (we are a fork of a single-threaded process).
    static func watcherMain(layout: [Int32], extraCount: Int, argv: [UnsafeMutablePointer<CChar>?],
                            envp: [UnsafeMutablePointer<CChar>?]) -> Never {
        // Signals as a new program gets them: nothing blocked or ignored.
        Proc.resetSignals()
        // The layout, through copies above every descriptor it names.
        let top = (layout.max() ?? 2) + 1
        var tmp: [Int32] = []
        for fd in layout {
            let t = fcntl(fd, F_DUPFD_CLOEXEC, top)
            if t < 0 { _exit(120) }
            tmp.append(t)
        }
        for (i, t) in tmp.enumerated() where dup2(t, Int32(i)) < 0 { _exit(120) }
        if mc_close_range(UInt32(layout.count), UInt32.max, 0) != 0 {
            for fd in Int32(layout.count)..<1024 { close(fd) }
        }
        _ = "mc-usernet".withCString { mc_prctl(15 /* PR_SET_NAME */, UInt(bitPattern: Int(bitPattern: UnsafeRawPointer($0))), 0, 0, 0) }
        let me = getpid()
        let helper = fork()
        if helper == 0 {
            _ = Kernel.dieWithParent()
            if getppid() != me { _exit(1) }
            _ = fchdir(6)
            // 3 the ready pipe, 4... the namespaces; nothing else above stdio.
            if dup2(5, 3) < 0 { _exit(120) }
            for j in 0..<extraCount where dup2(Int32(7 + j), Int32(4 + j)) < 0 { _exit(120) }
            if mc_close_range(UInt32(4 + extraCount), UInt32.max, 0) != 0 {
                for fd in Int32(4 + extraCount)..<1024 { close(fd) }
            }
            execve(argv[0]!, argv, envp)
            let msg = Array("cannot run \(String(cString: argv[0]!)): \(errnoText(errno))\n".utf8)
            _ = write(2, msg, msg.count)
            _exit(127)
        }
        for fd in [5, 6] + (0..<extraCount).map({ 7 + $0 }) { close(Int32(fd)) }
        if helper < 0 { _exit(1) }
        let line = Array("\(me) \(helper)\n".utf8)
        _ = write(4, line, line.count)
        close(4)
        let helperFd = mc_pidfd_open(helper, 0)
        var fds = [pollfd(fd: 3, events: Int16(POLLIN), revents: 0), pollfd(fd: helperFd, events: Int16(POLLIN), revents: 0)]
        var status: Int32 = 0
        while true {
            if helperFd < 0 {
                // No pidfd of the helper: the init alone is watched; a
                // helper that exits is reaped as a zombie child here.
                let r = poll(&fds, 1, 1000)
                if r > 0 { break }
                if waitpid(helper, &status, WNOHANG) == helper { _exit(0) }
                continue
            }
            let r = poll(&fds, 2, -1)
            if r < 0 && errno == EINTR { continue }
            if r < 0 { break }
            if fds[1].revents != 0 {
                while waitpid(helper, &status, 0) < 0 && errno == EINTR {}
                _exit(0)
            }
            if fds[0].revents != 0 { break }
        }
        // The init has exited: the helper goes too.
        kill(helper, SIGTERM)
        var p = pollfd(fd: helperFd, events: Int16(POLLIN), revents: 0)
        if helperFd < 0 || poll(&p, 1, 2000) <= 0 { kill(helper, SIGKILL) }
        while waitpid(helper, &status, 0) < 0 && errno == EINTR {}
        _exit(0)
    }

    // MARK: slirp4netns's API

    /// One add_hostfwd request on the API socket (in `dir`, reached through
    /// a descriptor of it so that a long directory path is no matter).
    static func addHostForward(_ m: PortMapping, socket name: String, dir: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw SysError("open \(dir)") }
        defer { close(dfd) }
        let s = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SysError("socket") }
        defer { close(s) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array("/proc/self/fd/\(dfd)/\(name)".utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw SysError("connect to slirp4netns's API socket") }
        try FS.writeAll(fd: s, Array(hostForwardRequest(m).utf8), what: "slirp4netns's API socket")
        shutdown(s, Int32(SHUT_WR))
        let reply = String(decoding: readAll(s, timeoutMs: 5000), as: UTF8.self)
        guard reply.contains("\"return\"") else {
            let port = (m.hostIP.map { "\($0):" } ?? "") + "\(m.hostPort)/\(m.proto)"
            var why = reply
            if let r = reply.split(separator: "\"desc\":\"", maxSplits: 1).dropFirst().first {
                why = String(r.prefix { $0 != "\"" })
            }
            throw Failure(.failed, "cannot publish host port \(port) through slirp4netns: \(why.isEmpty ? "no reply" : String(why.prefix(200)))")
        }
    }
}
