import Compile
import Glibc
import JSON
import Spec
import SpecJSON
import Sys

// `minicontainer spec`: the default config.json, like `runc spec`, or, given
// run flags, the config.json those flags compile to. Nothing is run.

/// The Docker-style flags shared by `spec` and `run`, parsed by one table.
public let runFlagTable: [Flag] = [
    Flag(["rootfs"], value: "PATH", "the container's root filesystem (instead of an image)"),
    Flag(["entrypoint"], value: "CMD", "replace the image's Entrypoint (\"\": none) and drop its Cmd"),
    Flag(["name"], value: "NAME", "a name for the container"),
    Flag(["hostname"], value: "NAME", "the container's hostname (default minicontainer)"),
    Flag(["e", "env"], value: "KEY=VALUE", "set an environment variable (KEY alone: take it from here)", repeats: true),
    Flag(["env-file"], value: "FILE", "read environment variables from a file of KEY=VALUE lines (before -e)", repeats: true),
    Flag(["l", "label"], value: "KEY[=VALUE]", "set a label (an annotation of the spec), over the image's", repeats: true),
    Flag(["label-file"], value: "FILE", "read labels from a file of KEY=VALUE lines", repeats: true),
    Flag(["v", "volume"], value: "HOST:CTR[:ro]", "bind-mount a host path", repeats: true),
    Flag(["mount"], value: "type=TYPE,src=...,dst=...", "a bind, tmpfs or named volume mount, Docker's CSV syntax (ro, bind-propagation, tmpfs-size, ...)",
         repeats: true),
    Flag(["tmpfs"], value: "PATH[:OPTIONS]", "mount a tmpfs (options: size=, mode=, ro, noexec, ...)", repeats: true),
    Flag(["shm-size"], value: "SIZE", "the size of /dev/shm (default 64m)"),
    Flag(["ulimit"], value: "NAME=SOFT[:HARD]", "a resource limit: nofile, nproc, core, stack, ... (-1: unlimited)", repeats: true),
    Flag(["memory", "m"], value: "SIZE", "memory limit: 256m, 1g, 512k, bytes"),
    Flag(["cpus"], value: "N", "CPU limit in CPUs: 0.5, 2"),
    Flag(["pids-limit"], value: "N", "maximum number of processes (-1: no limit)"),
    Flag(["t", "tty"], "allocate a terminal"),
    Flag(["i", "interactive"], "keep standard input open"),
    Flag(["w", "workdir"], value: "DIR", "working directory inside the container"),
    Flag(["u", "user"], value: "UID[:GID]", "user (and group) to run as, numbers or names from the rootfs"),
    Flag(["read-only"], "mount the root filesystem read-only"),
    Flag(["read-only-tmpfs"], value: "BOOL", "with --read-only, tmpfs on /run, /tmp and /var/tmp (default true)"),
    Flag(["network", "net"], value: "MODE", "bridge (default), slirp4netns, pasta, none, host or container:<id|name>"),
    Flag(["add-host"], value: "NAME:IP", "add a line to the container's /etc/hosts", repeats: true),
    Flag(["dns"], value: "IP", "a nameserver for the container's /etc/resolv.conf (instead of the host's)", repeats: true),
    Flag(["dns-search"], value: "DOMAIN", "a search domain for /etc/resolv.conf (. for none)", repeats: true),
    Flag(["dns-option"], value: "OPT", "an option line entry for /etc/resolv.conf (ndots:2, rotate, ...)", repeats: true),
    Flag(["p", "publish"], value: "[[IP:]HOST:]CTR[/PROTO]", "publish a container port (or range) on the host (no HOST: a random one)",
         repeats: true),
    Flag(["P", "publish-all"], "publish every port the image exposes, each on a random host port"),
    Flag(["cap-add"], value: "CAP", "add a capability (NET_ADMIN, CAP_SYS_TIME, ALL)", repeats: true),
    Flag(["cap-drop"], value: "CAP", "drop a capability from the default set (ALL: every one)", repeats: true),
    Flag(["privileged"], "all capabilities and host devices, no seccomp, masked paths or read-only /sys"),
    Flag(["security-opt"], value: "OPT", "seccomp=unconfined|PATH, no-new-privileges, apparmor=PROFILE, label=disable|type:T...",
         repeats: true),
    Flag(["device"], value: "HOST[:CTR][:rwm]", "give the container a host device", repeats: true),
    Flag(["sysctl"], value: "KEY=VALUE", "set a namespaced kernel parameter (net.*, kernel.shm*, fs.mqueue.*)", repeats: true),
    Flag(["userns"], value: "MODE", "user namespace: host (the default and, for now, the only one)"),
    Flag(["init"], "run a minimal init as PID 1 that reaps zombies and forwards signals to the command"),
    Flag(["restart"], value: "POLICY", "restart policy: no (default), on-failure[:N], always, unless-stopped"),
    Flag(["stop-timeout"], value: "SECONDS", "seconds stop waits before SIGKILL when not given -t (default 10)"),
    Flag(["stop-signal"], value: "SIGNAL", "the signal stop sends first (default the image's StopSignal, else SIGTERM)"),
]

/// Reads the shared run flags out of a parse.
public func runFlags(from p: Parsed, command: [String]) -> RunFlags {
    var f = RunFlags()
    if runningRootless { f.defaultNetwork = "slirp4netns" }
    f.rootfs = p.string("rootfs")
    f.entrypoint = p.string("entrypoint")
    // podman's JSON array form; anything else is one program, as Docker's.
    if let e = f.entrypoint, e.hasPrefix("["), case .array(let items)? = try? JSONValue.parse(Array(e.utf8), file: "--entrypoint") {
        let strings = items.compactMap { v -> String? in if case .string(let s) = v { return s } else { return nil } }
        if strings.count == items.count { f.entrypointList = strings }
    }
    f.name = p.string("name")
    f.hostname = p.string("hostname")
    f.env = p.strings("env")
    f.envFiles = p.strings("env-file")
    f.labels = p.strings("label")
    f.labelFiles = p.strings("label-file")
    f.volumes = p.strings("volume")
    // --mount type=volume: in -v's NAME:/PATH form, among the volumes,
    // where named volumes are resolved before compile; the rest (and a
    // bad type=volume, for compile's error) stay --mount's.
    for m in p.strings("mount") {
        if case .volume(let v)? = try? parseMount(m, host: realHost) { f.volumes.append(v) } else { f.mounts.append(m) }
    }
    f.tmpfs = p.strings("tmpfs")
    f.shmSize = p.string("shm-size")
    f.ulimits = p.strings("ulimit")
    f.memory = p.string("memory")
    f.cpus = p.string("cpus")
    f.pidsLimit = p.string("pids-limit")
    f.tty = p.bool("tty")
    f.interactive = p.bool("interactive")
    f.workdir = p.string("workdir")
    f.user = p.string("user")
    f.readOnly = p.bool("read-only")
    f.readOnlyTmpfs = p.string("read-only-tmpfs")
    f.network = p.string("network")
    f.publish = p.strings("publish")
    f.publishAll = p.bool("publish-all")
    f.addHosts = p.strings("add-host")
    f.dns = p.strings("dns")
    f.dnsSearch = p.strings("dns-search")
    f.dnsOptions = p.strings("dns-option")
    f.capAdd = p.strings("cap-add")
    f.capDrop = p.strings("cap-drop")
    f.privileged = p.bool("privileged")
    f.securityOpts = p.strings("security-opt")
    f.devices = p.strings("device")
    f.sysctls = p.strings("sysctl")
    f.userns = p.string("userns")
    f.restart = p.string("restart")
    f.initProcess = p.bool("init")
    f.autoRemove = p.bool("rm")  // run's flag: never set for spec
    f.stopTimeout = p.string("stop-timeout")
    f.stopSignal = p.string("stop-signal")
    f.command = command
    return f
}

/// The host as the compiler sees it.
public let realHost = Host(
    realPath: { FS.realPath($0) },
    isDirectory: { FS.isDirectory($0) },
    environment: { Env.get($0) },
    readFile: { try? FS.readString($0) },
    readFileInRoot: { FS.readInRoot($0, $1) },
    device: hostDevice,
    hostDevices: { listHostDevices("/dev") },
    seccompProfile: readSeccompProfile,
    boundingSet: ownBoundingSet
)

/// The capability names in our own bounding set (CapBnd of
/// /proc/self/status); all of them when it cannot be read.
func ownBoundingSet() -> [String] {
    guard let status = try? FS.readString("/proc/self/status"),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
          let mask = UInt64(line.dropFirst(7).filter { !$0.isWhitespace }, radix: 16) else { return allCapabilities }
    return allCapabilities.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map { $0.element }
}

/// stat(2) of a path, following symlinks, as --device reads it.
func hostDevice(_ path: String) -> HostDevice? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return deviceInfo(st)
}

func deviceInfo(_ st: stat) -> HostDevice {
    let type: String
    switch st.st_mode & S_IFMT {
    case S_IFCHR: type = "c"
    case S_IFBLK: type = "b"
    default: type = ""
    }
    // gnu_dev_major/minor, spelled out (glibc's macros are not imported).
    let d = UInt64(st.st_rdev)
    let major = ((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff)
    let minor = ((d >> 12) & 0xffff_ff00) | (d & 0xff)
    return HostDevice(type: type, major: Int64(major), minor: Int64(minor), fileMode: UInt32(st.st_mode & 0o7777))
}

/// The device nodes under `dir` (lstat: symlinks are not followed), as a
/// privileged container gets them: not the pty slaves, shared memory or
/// message queues (the container has its own), nor the host's console.
func listHostDevices(_ dir: String) -> [Device] {
    var out: [Device] = []
    for e in FS.directoryEntries(dir) ?? [] {
        let path = dir + "/" + e.name
        var st = stat()
        guard lstat(path, &st) == 0 else { continue }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            if dir == "/dev" && ["pts", "shm", "mqueue", "fd"].contains(e.name) { continue }
            if e.name.hasPrefix(".") { continue }
            out += listHostDevices(path)
        case S_IFCHR, S_IFBLK:
            if dir == "/dev" && e.name == "console" { continue }
            let d = deviceInfo(st)
            out.append(Device(type: d.type, path: path, major: d.major, minor: d.minor,
                              fileMode: d.fileMode & 0o777, uid: st.st_uid, gid: st.st_gid))
        default:
            continue
        }
    }
    return out
}

/// A seccomp profile file in linux.seccomp's shape.
func readSeccompProfile(_ path: String) throws -> Seccomp {
    let bytes: [UInt8]
    do {
        bytes = try FS.readBytes(path)
    } catch {
        throw CompileError("--security-opt seccomp=\(path): cannot read the profile: \(error)")
    }
    do {
        let value = try JSONValue.parse(bytes, file: path)
        // Docker's own format says which rules apply by capability, kernel
        // and architecture (includes, excludes, archMap). Read as
        // linux.seccomp, those rules would all apply: refused, not weakened.
        var docker = value["archMap"] != nil ? "archMap" : nil
        if case .array(let rules)? = value["syscalls"] {
            for (i, r) in rules.enumerated() where docker == nil {
                if let k = ["includes", "excludes"].first(where: { r[$0] != nil }) { docker = "syscalls[\(i)].\(k)" }
            }
        }
        if let k = docker {
            throw CompileError("--security-opt seccomp=\(path): \(k) is Docker's profile format, which is not supported: give a profile in linux.seccomp's shape")
        }
        return try SpecJSON.seccomp(value, file: path)
    } catch let e as JSONError {
        throw CompileError("--security-opt seccomp=\(path): not a seccomp profile: \(e)")
    }
}

let specCommand = Command(
    name: "spec",
    summary: "write a config.json: the default one, or the one run flags compile to",
    usage: "[--bundle DIR] [--rootless] [--force] [--rootfs PATH [run flags] [--] COMMAND [ARG...]]",
    flags: [
        Flag(["b", "bundle"], value: "DIR", "the bundle directory to write config.json into (default .)"),
        Flag(["rootless"], "a spec for a container run by an unprivileged user"),
        Flag(["f", "force"], "overwrite an existing config.json"),
        Flag(["stdout"], "print the config.json instead of writing it"),
    ] + runFlagTable,
    stopAtPositional: true
) { p, _ in
    let bundle = FS.absolute(p.string("bundle") ?? ".")
    let compiling = p.has("rootfs") || !p.positionals.isEmpty || runFlagTable.contains { p.has($0.key) }
    let spec: Spec
    if compiling {
        if p.bool("rootless") { throw Failure(.usage, "--rootless cannot be combined with run flags") }
        do {
            spec = try compile(runFlags(from: p, command: p.positionals), host: realHost)
        } catch let e as CompileError {
            throw Failure(.invalid, e.message)
        }
    } else {
        spec = Spec.defaultSpec(rootless: p.bool("rootless"), uid: getuid(), gid: getgid())
    }
    let text = try JSONEncoding.pretty(spec)
    if p.bool("stdout") {
        writeStdout(text)
        return 0
    }
    let path = bundle + "/config.json"
    if FS.exists(path) && !p.bool("force") {
        throw Failure(.exists, "\(path) already exists (remove it or use --force)")
    }
    if !FS.isDirectory(bundle) {
        if compiling {
            try FS.makeDirectories(bundle)
        } else {
            throw Failure(.notFound, "bundle directory \(bundle) does not exist")
        }
    }
    try FS.writeAtomically(path, text)
    return 0
}
