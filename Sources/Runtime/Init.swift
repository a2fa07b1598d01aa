import CShim
import Cgroups
import Glibc
import Privileges
import Rootfs
import Spec
import Sys

// The container's init: the cloned child, still running our image. It waits
// for the runtime to map its ids and place it in its cgroup, builds the
// container (filesystem, hostname, sysctl, terminal, limits), reports ready,
// blocks on exec.fifo until `start`, drops privileges and execs the process.
// Failures go back to the runtime over the channel as one line.

struct InitConfig {
    var spec: Spec
    var rootfs: String
    var bundle: String
    var fifoPath: String
    var noPivot: Bool
    var preserveFds: Int
    var joinPaths: [(String, String)]  // (kind, path) to setns, in join order, pid excluded
    var unshareCgroup: Bool
    var newUserNS: Bool
    /// The runtime's lock on the state directory, which the init must not keep.
    var lockFd: Int32
    /// Our cgroup's tasks files and cgroup2 directory (Placement.swift).
    var placement: Placement
}

/// Runs in the child after clone; never returns.
func initMain(_ c: InitConfig, channel: Channel) -> Never {
    var stage = "start"
    var reported = false  // "ready" sent and the channel closed
    close(c.lockFd)
    do {
        // 0. Copy the runtime's pages we are going to write while still in
        // the runtime's (v1 memory) cgroup, then move into ours.
        if c.placement.placesItself { prefaultWritableMappings() }
        let placed = c.placement.placeSelf() == 0
        c.placement.close()
        try channel.send(placed ? "placed" : "unplaced")

        // 1. Wait for the runtime: ids mapped, cgroup placed, createRuntime hooks run.
        guard let go = try channel.receive(), go.text.hasPrefix("go") else { _exit(1) }
        let hookState = String(go.text.dropFirst(3))

        stage = "join namespaces"
        for (kind, path) in c.joinPaths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("open \(kind) namespace \(path)") }
            // With its type, so that a path to a namespace of another kind is refused.
            let nstype = Int32(truncatingIfNeeded: NamespaceKind.cloneFlags[kind] ?? 0)
            guard mc_setns(fd, nstype) == 0 else { throw SysError("join \(kind) namespace \(path)") }
            close(fd)
        }
        if c.newUserNS || c.joinPaths.contains(where: { $0.0 == "user" }) {
            // Become root of the user namespace (as mapped).
            guard mc_setresgid(0, 0, 0) == 0, mc_setresuid(0, 0, 0) == 0 else { throw SysError("become root in the user namespace") }
        }
        if c.unshareCgroup {
            guard mc_unshare(Int32(NamespaceKind.cloneFlags["cgroup"]!)) == 0 else { throw SysError("unshare cgroup namespace") }
        }

        // Without a mount namespace of its own the container shares the
        // runtime's: nothing is mounted there (the spec's mounts, masked and
        // read-only paths would land on the host); the init only chroots.
        let sharesMounts = !(c.spec.linux?.namespaces ?? []).contains { $0.type == "mount" }
        stage = "prepare rootfs"
        if !sharesMounts { try Rootfs.prepare(spec: c.spec, rootfs: c.rootfs, bundle: c.bundle) }

        stage = "createContainer hooks"
        try HookRunner.runAll(c.spec.hooks?.createContainer, kind: "createContainer", state: hookState)

        // The fifo is opened by path now and reopened through /proc after
        // pivot_root, where its host path is out of reach.
        let fifo = open(c.fifoPath, mc_o_path() | O_CLOEXEC)
        guard fifo >= 0 else { throw SysError("open \(c.fifoPath)") }
        // After a bare chroot there is no /proc: the fifo is reopened
        // relative to its directory, opened here.
        let stateDir = sharesMounts ? open(String(c.fifoPath[..<c.fifoPath.lastIndex(of: "/")!]), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1

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
        for key in (c.spec.linux?.sysctl ?? [:]).keys.sorted() {
            let path = "/proc/sys/" + key.split(separator: ".").joined(separator: "/")
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SysError("sysctl \(key): open \(path)") }
            defer { close(fd) }
            try FS.writeAll(fd: fd, Array(c.spec.linux!.sysctl![key]!.utf8), what: "sysctl \(key)")
        }

        stage = "finalize rootfs"
        if !sharesMounts { try Rootfs.finalize(spec: c.spec) }

        let process = c.spec.process!
        let program = try prepareProcess(process, channel: channel, stage: &stage)
        let env = process.env ?? []

        // Privileges go before "ready", as runc's init does: their errors
        // fail `create`, and after `start` only the fifo write, the
        // startContainer hooks and execve remain (a signal sent right after
        // `start` then finds the program, not us, as the container's pid 1).
        stage = "drop privileges"
        try dropPrivileges(process, seccomp: c.spec.linux?.seccomp)
        // Close-on-exec rather than closed: the channel and the fifo are still needed.
        try Privileges.closeFds(keep: Set((0..<Int32(3 + c.preserveFds)).map { $0 }), cloexecOnly: true)

        stage = "exec"
        try channel.send("ready")
        channel.close()
        reported = true

        // 2. Wait for `start`: it opens the fifo for reading (mode 0622, so
        // the container's user may open it for writing).
        let w = stateDir >= 0 ? openat(stateDir, "exec.fifo", O_WRONLY | O_CLOEXEC)
                              : open("/proc/self/fd/\(fifo)", O_WRONLY | O_CLOEXEC)
        guard w >= 0 else { throw SysError("open exec fifo") }
        var byte: UInt8 = 48
        _ = write(w, &byte, 1)
        close(w)
        close(fifo)
        if stateDir >= 0 { close(stateDir) }

        stage = "startContainer hooks"
        try HookRunner.runAll(c.spec.hooks?.startContainer, kind: "startContainer", state: hookState)

        let argv = process.args!.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        execve(program, argv, envp)
        let e = errno
        writeStderr("minicontainer: exec \(program): \(errnoText(e))\n")
        _exit(e == ENOENT ? 127 : 126)
    } catch {
        // Before "ready" the runtime reads this; after, it goes to stderr.
        let text = "\(error)"
        let msg = text.hasPrefix(stage) ? text : "\(stage): \(text)"
        if reported || (try? channel.send("error\u{0}" + msg)) == nil {
            writeStderr("minicontainer: \(msg)\n")
        }
        _exit(1)
    }
}

/// Breaks copy-on-write now for the writable private mappings the init
/// inherits from the runtime (heap, stack, data, small anonymous regions):
/// the copies are charged to the memory cgroup we are in, the runtime's,
/// rather than to the container's once we are placed, which lowers what the
/// container must be allowed before its process even runs (the memory floor,
/// bench/memfloor.sh). One madvise(MADV_POPULATE_WRITE) per mapping, at most
/// 16 MiB in all; without it (kernels before 5.14) nothing happens.
func prefaultWritableMappings() {
    guard let maps = try? FS.readString("/proc/self/maps") else { return }
    var budget = 16 << 20
    for line in maps.split(separator: "\n") {
        let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard f.count >= 2, f[1] == "rw-p" else { continue }
        let r = f[0].split(separator: "-")
        guard r.count == 2, let lo = UInt(r[0], radix: 16), let hi = UInt(r[1], radix: 16), hi > lo,
              Int(hi - lo) <= budget, let p = UnsafeMutableRawPointer(bitPattern: lo) else { continue }
        budget -= Int(hi - lo)
        _ = madvise(p, Int(hi - lo), 23 /* MADV_POPULATE_WRITE */)
    }
}

/// Opens a pty pair inside the container, makes the slave our controlling
/// terminal and stdio, and returns the master with the slave's name.
func openTerminal(size: ConsoleSize?) throws -> (Int32, String) {
    var buf = [CChar](repeating: 0, count: 128)
    let master = mc_open_pty(&buf, buf.count)
    guard master >= 0 else { throw SysError("open a terminal through /dev/ptmx") }
    let name = String(cString: buf)
    let slave = open(name, O_RDWR | O_NOCTTY)
    guard slave >= 0 else { throw SysError("open \(name)") }
    if let s = size {
        var ws = winsize(ws_row: UInt16(s.height), ws_col: UInt16(s.width), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(slave, UInt(TIOCSWINSZ), &ws)
    }
    guard setsid() >= 0 else { throw SysError("setsid") }
    guard ioctl(slave, UInt(TIOCSCTTY), 0) == 0 else { throw SysError("set controlling terminal") }
    for fd in Int32(0)...2 { guard dup2(slave, fd) >= 0 else { throw SysError("dup2 terminal") } }
    if slave > 2 { close(slave) }
    return (master, name)
}
