import CShim
import Cgroups
import Glibc
import Privileges
import Rootfs
import Spec
import Sys

// The container's init: the cloned child, still running our image. It places
// itself in its cgroup, waits for the runtime to map its ids, builds the
// container (filesystem, hostname, sysctl, terminal, limits), drops
// privileges, reports ready, blocks on exec.fifo until `start` and execs the
// process.
// Failures go back to the runtime over the channel (InitMessage.error).

struct InitConfig {
    var spec: Spec
    var rootfs: String
    var bundle: String
    var fifoPath: String
    var noPivot: Bool
    var preserveFds: Int
    var joinPaths: [(NamespaceKind, String)]  // to setns, in join order, pid excluded
    var unshareCgroup: Bool
    var newUserNS: Bool
    /// The runtime's lock on the state directory, which the init must not keep.
    var lockFd: Int32
    /// Our cgroup's tasks files and cgroup2 directory (Placement.swift).
    var placement: Placement
    /// The host's namespaces a joined one must not be, for its sysctls (SysctlPolicy.swift).
    var hostNamespaces: HostNamespaces
    /// Where the init itself looks for linux.seccomp's compiled filter
    /// (Store.seccompCacheDir), or nil: the runtime sends it.
    var seccompCacheDir: String? = nil
    /// CreateOptions.stdio, installed first of all (installStdio, Run.swift).
    var stdio: [Int32]? = nil
    /// linux.timeOffsets: the init makes its time namespace itself (TimeNamespace.swift).
    var timeOffsets: [String: TimeOffset]? = nil
    /// Cloned inside the joined user namespace (OwnedNamespaces.swift).
    var bornInUserNS = false
    /// Rootless with a new user namespace: born dumpable, so that our
    /// newuidmap (or we) may open its uid_map, which the kernel gives a
    /// non-dumpable process's owner root of the host; non-dumpable as soon
    /// as the ids are mapped (the go message), before anything of the
    /// container's exists.
    var dumpableUntilMapped = false
    /// Annotation.rootOverlay, checked by create: the root we mount ourselves.
    var rootOverlay: RootOverlay? = nil
    /// The runtime's cgroup mounts (CgroupHost.mounts), for a new mount
    /// namespace (a copy of the runtime's); nil where one is joined.
    var cgroupMounts: [CgroupHierarchy]? = nil
    /// The exec stub's sealed memfd (ExecStub.swift), or -1: execve directly.
    var execStub: Int32 = -1
}

/// Runs in the child after clone; never returns.
func initMain(_ c: InitConfig, channel: Channel) -> Never {
    var stage = "start"
    var reported = false  // "ready" sent and the channel closed
    close(c.lockFd)
    do {
        try installStdio(c.stdio)
        // First: nothing the caller had open reaches the container (a host
        // directory on fd 7 and "cwd": "/proc/self/fd/7" was CVE-2024-21626).
        // Kept: stdio, --preserve-fds, our channel and the cgroup files we
        // place ourselves with (closed in placeSelf, before "go").
        try closeInheritedFds(preserveFds: c.preserveFds, own: [channel.fd] + c.placement.fds + (c.execStub >= 0 ? [c.execStub] : []))
        // Opened while our credentials are the runtime's (TimeNamespace.swift).
        let timeOffsets = try TimeOffsetsFile.open(for: c.timeOffsets)
        // 0. Copy the runtime's pages we are going to write while still in
        // the runtime's (v1 memory) cgroup, then move into ours.
        if c.placement.placesItself { prefaultWritableMappings() }
        // linux.seccomp's filter read from the runtime's cache here, while
        // the runtime saves the state and attaches the device program: off
        // the create's critical path. Still in the runtime's cgroup (the
        // memory is not charged to the container), in the host's mounts
        // (nothing of the container's has run). On a miss the runtime
        // compiles it and sends it before go.
        var ownSeccomp: Privileges.SeccompProgram? = nil
        if let dir = c.seccompCacheDir, let s = c.spec.linux?.seccomp {
            ownSeccomp = Privileges.cachedSeccomp(s, cacheDir: dir)
        }
        try placeSelf(c.placement, channel: channel, ownSeccomp: ownSeccomp != nil)

        // 1. Wait for the runtime: ids mapped, any pid it had to place
        // itself written, createRuntime hooks run.
        // linux.seccomp comes compiled just before (receiveGo), unless we have it.
        // The idmapped copies of bind sources come with it (Rootfs/IDMap.swift).
        guard let (hookState, sent, idmapped) = try channel.receiveGo(wantSeccomp: c.spec.linux?.seccomp != nil && ownSeccomp == nil) else { _exit(1) }
        let seccomp = ownSeccomp ?? sent
        if c.dumpableUntilMapped { Kernel.setNonDumpable() }

        stage = "join namespaces"
        for (kind, path) in c.joinPaths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(kind) namespace \(path)") }
            // With its type, so that a path to a namespace of another kind is refused.
            guard mc_setns(fd, kind.nstype) == 0 else { throw SysError("join \(kind) namespace \(path)") }
            close(fd)
        }
        if c.newUserNS || c.bornInUserNS || c.joinPaths.contains(where: { $0.0 == .user }) {
            // Become root of the user namespace (as mapped).
            guard mc_setresgid(0, 0, 0) == 0, mc_setresuid(0, 0, 0) == 0 else { throw SysError("become root in the user namespace") }
        }
        if let t = timeOffsets {
            stage = "time namespace"
            try t.enter()
        }
        if c.unshareCgroup {
            guard mc_unshare(NamespaceKind.cgroup.nstype) == 0 else { throw SysError("unshare cgroup namespace") }
        }
        try verifySysctlNamespaces(c.hostNamespaces)

        // Without a mount namespace of its own the container shares the
        // runtime's: nothing is mounted there (the spec's mounts, masked and
        // read-only paths would land on the host); the init only chroots.
        let sharesMounts = !(c.spec.linux?.namespaces ?? []).contains { $0.type == "mount" }
        stage = "prepare rootfs"
        if !sharesMounts {
            let inUserNS = c.newUserNS || c.bornInUserNS || c.joinPaths.contains(where: { $0.0 == .user })
            try Rootfs.prepare(spec: c.spec.withMountLabel(), rootfs: c.rootfs, bundle: c.bundle, idmappedTrees: idmapped,
                               overlay: c.rootOverlay.map { ($0.lower, $0.upper, $0.work, inUserNS) },
                               cgroupMounts: c.cgroupMounts)
        } else {
            for t in idmapped.values { close(t) }
        }

        stage = "createContainer hooks"
        try HookRunner.runAll(c.spec.hooks?.createContainer, kind: "createContainer", state: hookState)

        // The fifo is opened by path now and reopened through /proc after
        // pivot_root, where its host path is out of reach.
        let fifo = open(c.fifoPath, Kernel.O_PATH | O_CLOEXEC)
        guard fifo >= 0 else { throw SysError("open \(c.fifoPath)") }
        // After a bare chroot there is no /proc: the fifo is reopened
        // relative to its directory, opened here.
        let stateDir = sharesMounts ? open(Path.split(c.fifoPath).parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1

        stage = "pivot_root"
        if sharesMounts {
            guard chroot(c.rootfs) == 0, chdir("/") == 0 else { throw SysError("chroot \(c.rootfs)") }
        } else {
            try Rootfs.pivot(rootfs: c.rootfs, noPivot: c.noPivot)
        }

        stage = "hostname"
        if let h = c.spec.hostname, !h.isEmpty {
            guard sethostname(h, h.utf8.count) == 0 else { throw SysError("sethostname \(h)") }
        }
        if let d = c.spec.domainname, !d.isEmpty {
            guard setdomainname(d, d.utf8.count) == 0 else { throw SysError("setdomainname \(d)") }
        }

        stage = "sysctl"
        for (key, value) in (c.spec.linux?.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            try ProcFS.writeSysctl(key, value)  // through a procfs of our own, not the container's /proc
        }

        stage = "finalize rootfs"
        if !sharesMounts { try Rootfs.finalize(spec: c.spec) }

        let process = c.spec.process!
        let program = try prepareProcess(process, channel: channel, stage: &stage, console: !sharesMounts)
        // HOME from the container's /etc/passwd when the spec sets none, as runc.
        let env = withHome(process.env ?? [], uid: process.user.uid)

        // The fifo is reopened after "ready" through a procfs of our own (pids
        // only), made while we may still make one.
        let fifoDir = stateDir >= 0 ? -1 : try ProcFS.fdDirectory(what: "open exec fifo")

        // Privileges go before "ready", as runc's init does: their errors
        // fail `create`, and after `start` only the fifo write, the
        // startContainer hooks and execve remain (a signal sent right after
        // `start` then finds the program, not us, as the container's pid 1).
        // Scheduler, I/O priority, memory policy, personality while we
        // still may (ProcessSettings.swift); execCPUAffinity is exec's only.
        try applyProcessSettings(process, linux: c.spec.linux, execFinalAffinity: false, stage: &stage)

        stage = "drop privileges"
        try dropPrivileges(process, seccomp: seccomp)
        // Close-on-exec rather than closed: the channel and the fifo are still needed.
        try Privileges.closeFds(keep: Set((0..<Int32(3 + c.preserveFds)).map { $0 }), cloexecOnly: true)

        stage = "exec"
        ProcFS.close()  // no unmasked procfs open while the container's processes may look at us
        try channel.send(.ready)
        channel.close()
        reported = true

        // 2. Wait for `start`: it opens the fifo for reading (mode 0622, so
        // the container's user may open it for writing).
        let w = stateDir >= 0 ? openat(stateDir, "exec.fifo", O_WRONLY | O_CLOEXEC)
                              : try ProcFS.reopen(fifo, O_WRONLY, in: fifoDir, what: "open exec fifo")
        guard w >= 0 else { throw SysError("open exec fifo") }
        var byte: UInt8 = 48
        _ = write(w, &byte, 1)
        // `w` stays open (close-on-exec) until our execve: `start` reads
        // the fifo to its end, so it returns, and runs the poststart hooks,
        // only once the container's process is executing, as the spec asks.
        close(fifo)
        if fifoDir >= 0 { close(fifoDir) }
        if stateDir >= 0 { close(stateDir) }

        stage = "startContainer hooks"
        try HookRunner.runAll(c.spec.hooks?.startContainer, kind: "startContainer", state: hookState)

        let argv = process.args!.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        // The caller's blocked or ignored signals (a shell's `trap '' INT`)
        // are not the container's: Ctrl-C must reach its foreground job.
        Proc.resetSignals()
        if c.spec.annotations?[Annotation.initProcess] == "true" { runAsInit(program: program, argv: argv, envp: envp) }
        if c.execStub >= 0 {
            // The stub reports a failing execve of the program itself.
            ExecStub.exec(c.execStub, program: program, argv: process.args!, envp: envp)
            Log.stderrLine("exec \(program): the exec stub: \(errnoText(errno))")
            _exit(126)
        }
        execve(program, argv, envp)
        let e = errno
        Log.stderrLine("exec \(program): \(errnoText(e))")
        _exit(e == ENOENT ? 127 : 126)
    } catch {
        // Before "ready" the runtime reads this; after, it goes to stderr.
        let failure = InitFailure(stage: stage, error)
        if reported || (try? channel.send(.error(failure))) == nil {
            Log.stderrLine(failure.description)
        }
        _exit(1)
    }
}

/// Breaks copy-on-write now for the pages the runtime has already written
/// in its writable private mappings (heap, stack, data, bss): the init's
/// copies are then charged to the memory cgroup we are still in, the
/// runtime's, not to the container's once we are placed, which lowers what
/// the container must be allowed before its process even runs (the memory
/// floor, bench/memfloor.sh). The heap and the stack whole (malloc and
/// deeper calls write their untouched pages), up to 16 MiB in all; in the
/// others (the binary's data, its bss, mmapped buffers) only the pages
/// /proc/self/pagemap shows present and anonymous, i.e. written, and in
/// anonymous ones the page after each such run: the rest, mostly the
/// binary's writable but only read .rodata and bss the runtime never
/// wrote, is not written by the init either (the data: 185 pages instead of
/// 530, the same floor; the whole bss, 340 KiB where the runtime has about
/// 100, made the init the largest process of `run`: peak RSS 4384 -> 4116
/// KiB, floor unchanged).
/// One madvise(MADV_POPULATE_WRITE) per run of pages; on kernels before
/// 5.14 nothing happens.
func prefaultWritableMappings() {
    guard let maps = try? FS.readBytes("/proc/self/maps") else { return }
    let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
    guard pagemap >= 0 else { return }
    defer { close(pagemap) }
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    var entries = [UInt64](repeating: 0, count: 1024)
    var budget = 16 << 20
    var i = 0
    while i < maps.count {
        // "lo-hi perms ..." per line.
        var lo: UInt = 0, hi: UInt = 0
        while i < maps.count, let d = hexDigit(maps[i]) { lo = lo << 4 | d; i += 1 }
        i += 1  // "-"
        while i < maps.count, let d = hexDigit(maps[i]) { hi = hi << 4 | d; i += 1 }
        let writablePrivate = i + 4 < maps.count && maps[i + 1] == UInt8(ascii: "r") && maps[i + 2] == UInt8(ascii: "w")
            && maps[i + 4] == UInt8(ascii: "p")
        // Fields: perms offset dev inode [path]; inode 0 is anonymous memory.
        var field = 0, inodeZero = true, named = false
        while i < maps.count && maps[i] != UInt8(ascii: "\n") {
            if maps[i] == UInt8(ascii: " ") {
                field += 1
                while i + 1 < maps.count && maps[i + 1] == UInt8(ascii: " ") { i += 1 }
            } else if field == 4 && maps[i] != UInt8(ascii: "0") {
                inodeZero = false
            } else if field >= 5 {
                named = true
            }
            i += 1
        }
        i += 1
        guard writablePrivate, hi > lo else { continue }
        if inodeZero && named {
            guard Int(hi - lo) <= budget else { continue }
            budget -= Int(hi - lo)
            Kernel.populateForWriting(address: lo, length: Int(hi - lo))
            continue
        }
        var addr = lo
        while addr < hi {
            let n = min(Int((hi - addr) / page), entries.count)
            let got = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, n * 8, off_t(addr / page * 8)) }
            guard got == n * 8 else { return }
            var k = 0
            while k < n {
                // Present (bit 63) and not a file page (bit 61).
                guard entries[k] & (1 << 63) != 0 && entries[k] & (1 << 61) == 0 else { k += 1; continue }
                var e = k + 1
                while e < n && entries[e] & (1 << 63) != 0 && entries[e] & (1 << 61) == 0 { e += 1 }
                // In the bss also the page after each written run: the
                // runtime's allocation pools (the metadata allocator's, the
                // generic metadata caches) go on there in the init.
                let start = addr + UInt(k) * page
                let end = min(addr + UInt(e) * page + (inodeZero ? page : 0), hi)
                Kernel.populateForWriting(address: start, length: Int(end - start))
                k = e
            }
            addr += UInt(n) * page
        }
    }
}

private func hexDigit(_ c: UInt8) -> UInt? {
    switch c {
    case 48...57: return UInt(c - 48)
    case 97...102: return UInt(c - 87)
    default: return nil
    }
}

/// Opens a pty pair inside the container (Console.openPty: devpts' own
/// ptmx, the slave as its peer), binds the slave over /dev/console when
/// `console` (the init of a container with its own mounts, as runc), makes it
/// our controlling terminal and stdio, and returns the master with the
/// slave's name.
func openTerminal(size: ConsoleSize?, console: Bool = false) throws -> (Int32, String) {
    let (master, slave, name) = try Console.openPty()
    do {
        if let s = size {
            var ws = winsize(ws_row: UInt16(s.height), ws_col: UInt16(s.width), ws_xpixel: 0, ws_ypixel: 0)
            _ = ioctl(slave, UInt(TIOCSWINSZ), &ws)
        }
        if console { try Console.mount(slave: slave) }
        guard setsid() >= 0 else { throw SysError("setsid") }
        guard ioctl(slave, UInt(TIOCSCTTY), 0) == 0 else { throw SysError("set controlling terminal") }
        for fd in Int32(0)...2 { guard dup2(slave, fd) >= 0 else { throw SysError("dup2 terminal") } }
    } catch {
        close(master)
        if slave > 2 { close(slave) }
        throw error
    }
    if slave > 2 { close(slave) }
    return (master, name)
}
