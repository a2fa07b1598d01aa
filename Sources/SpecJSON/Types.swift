import JSON
import Spec

// One decoder per type of Sources/Spec/Config.swift reachable from Spec, in
// that file's order. Each reads its properties in declaration order (so that
// the first error is the one Codable reports) and builds the value at the end.
// `at` is always the path of `v`.

// MARK: - Spec and process

func decodeSpec(_ v: JSONValue, _ at: Where) throws -> Spec {
    let o = try object(v, at)
    let ociVersion = try reqString(o, "ociVersion", at)
    var process: Process?
    if let x = present(o, "process") { process = try decodeProcess(x, { key(at, "process") }) }
    var root: Root?
    if let x = present(o, "root") { root = try decodeRoot(x, { key(at, "root") }) }
    let hostname = try optString(o, "hostname", at)
    let domainname = try optString(o, "domainname", at)
    var mounts: [Mount]?
    if let x = present(o, "mounts") { mounts = try decodeMounts(x, { key(at, "mounts") }) }
    var hooks: Hooks?
    if let x = present(o, "hooks") { hooks = try decodeHooks(x, { key(at, "hooks") }) }
    let annotations = try optStringMap(o, "annotations", at)
    var linux: Linux?
    if let x = present(o, "linux") { linux = try decodeLinux(x, { key(at, "linux") }) }
    return Spec(ociVersion: ociVersion, process: process, root: root, hostname: hostname, domainname: domainname,
                mounts: mounts, hooks: hooks, annotations: annotations, linux: linux)
}

func decodeProcess(_ v: JSONValue, _ at: Where) throws -> Process {
    let o = try object(v, at)
    let terminal = try optBool(o, "terminal", at)
    var consoleSize: ConsoleSize?
    if let x = present(o, "consoleSize") { consoleSize = try decodeConsoleSize(x, { key(at, "consoleSize") }) }
    let user = try decodeUser(required(o, "user", at), { key(at, "user") })
    let args = try optStrings(o, "args", at)
    let commandLine = try optString(o, "commandLine", at)
    let env = try optStrings(o, "env", at)
    let cwd = try reqString(o, "cwd", at)
    var capabilities: Capabilities?
    if let x = present(o, "capabilities") { capabilities = try decodeCapabilities(x, { key(at, "capabilities") }) }
    var rlimits: [Rlimit]?
    if let x = present(o, "rlimits") { rlimits = try decodeRlimits(x, { key(at, "rlimits") }) }
    let noNewPrivileges = try optBool(o, "noNewPrivileges", at)
    let apparmorProfile = try optString(o, "apparmorProfile", at)
    let oomScoreAdj = try optInt(o, "oomScoreAdj", at)
    let selinuxLabel = try optString(o, "selinuxLabel", at)
    var scheduler: Scheduler?
    if let x = present(o, "scheduler") { scheduler = try decodeScheduler(x, { key(at, "scheduler") }) }
    var ioPriority: IOPriority?
    if let x = present(o, "ioPriority") { ioPriority = try decodeIOPriority(x, { key(at, "ioPriority") }) }
    var execCPUAffinity: CPUAffinity?
    if let x = present(o, "execCPUAffinity") { execCPUAffinity = try decodeCPUAffinity(x, { key(at, "execCPUAffinity") }) }
    var p = Process(terminal: terminal, consoleSize: consoleSize, user: user, args: args, env: env, cwd: cwd,
                    capabilities: capabilities, rlimits: rlimits, noNewPrivileges: noNewPrivileges,
                    oomScoreAdj: oomScoreAdj)
    p.commandLine = commandLine
    p.apparmorProfile = apparmorProfile
    p.selinuxLabel = selinuxLabel
    p.scheduler = scheduler
    p.ioPriority = ioPriority
    p.execCPUAffinity = execCPUAffinity
    return p
}

func decodeConsoleSize(_ v: JSONValue, _ at: Where) throws -> ConsoleSize {
    let o = try object(v, at)
    let height = try reqUInt(o, "height", at)
    let width = try reqUInt(o, "width", at)
    return ConsoleSize(height: height, width: width)
}

func decodeUser(_ v: JSONValue, _ at: Where) throws -> User {
    let o = try object(v, at)
    let uid = try reqUInt32(o, "uid", at)
    let gid = try reqUInt32(o, "gid", at)
    let umask = try optUInt32(o, "umask", at)
    let additionalGids = try optUInt32s(o, "additionalGids", at)
    let username = try optString(o, "username", at)
    var u = User(uid: uid, gid: gid, umask: umask, additionalGids: additionalGids)
    u.username = username
    return u
}

func decodeCapabilities(_ v: JSONValue, _ at: Where) throws -> Capabilities {
    let o = try object(v, at)
    let bounding = try optStrings(o, "bounding", at)
    let effective = try optStrings(o, "effective", at)
    let inheritable = try optStrings(o, "inheritable", at)
    let permitted = try optStrings(o, "permitted", at)
    let ambient = try optStrings(o, "ambient", at)
    return Capabilities(bounding: bounding, effective: effective, inheritable: inheritable,
                        permitted: permitted, ambient: ambient)
}

func decodeRlimit(_ v: JSONValue, _ at: Where) throws -> Rlimit {
    let o = try object(v, at)
    let type = try reqString(o, "type", at)
    let hard = try reqUInt64(o, "hard", at)
    let soft = try reqUInt64(o, "soft", at)
    return Rlimit(type: type, hard: hard, soft: soft)
}

func decodeRlimits(_ v: JSONValue, _ at: Where) throws -> [Rlimit] {
    try list(v, at) { x, i in try decodeRlimit(x, { index(at, i) }) }
}

// MARK: - Root, mounts and hooks

func decodeRoot(_ v: JSONValue, _ at: Where) throws -> Root {
    let o = try object(v, at)
    let path = try reqString(o, "path", at)
    let readonly = try optBool(o, "readonly", at)
    return Root(path: path, readonly: readonly)
}

func decodeMount(_ v: JSONValue, _ at: Where) throws -> Mount {
    let o = try object(v, at)
    let destination = try reqString(o, "destination", at)
    let type = try optString(o, "type", at)
    let source = try optString(o, "source", at)
    let options = try optStrings(o, "options", at)
    var uidMappings: [IDMapping]?
    if let x = present(o, "uidMappings") { uidMappings = try decodeIDMappings(x, { key(at, "uidMappings") }) }
    var gidMappings: [IDMapping]?
    if let x = present(o, "gidMappings") { gidMappings = try decodeIDMappings(x, { key(at, "gidMappings") }) }
    var m = Mount(destination: destination, type: type, source: source, options: options)
    m.uidMappings = uidMappings
    m.gidMappings = gidMappings
    return m
}

func decodeMounts(_ v: JSONValue, _ at: Where) throws -> [Mount] {
    try list(v, at) { x, i in try decodeMount(x, { index(at, i) }) }
}

func decodeHooks(_ v: JSONValue, _ at: Where) throws -> Hooks {
    let o = try object(v, at)
    var h = Hooks()
    if let x = present(o, "prestart") { h.prestart = try decodeHookList(x, { key(at, "prestart") }) }
    if let x = present(o, "createRuntime") { h.createRuntime = try decodeHookList(x, { key(at, "createRuntime") }) }
    if let x = present(o, "createContainer") { h.createContainer = try decodeHookList(x, { key(at, "createContainer") }) }
    if let x = present(o, "startContainer") { h.startContainer = try decodeHookList(x, { key(at, "startContainer") }) }
    if let x = present(o, "poststart") { h.poststart = try decodeHookList(x, { key(at, "poststart") }) }
    if let x = present(o, "poststop") { h.poststop = try decodeHookList(x, { key(at, "poststop") }) }
    return h
}

func decodeHook(_ v: JSONValue, _ at: Where) throws -> Hook {
    let o = try object(v, at)
    let path = try reqString(o, "path", at)
    let args = try optStrings(o, "args", at)
    let env = try optStrings(o, "env", at)
    let timeout = try optInt(o, "timeout", at)
    return Hook(path: path, args: args, env: env, timeout: timeout)
}

func decodeHookList(_ v: JSONValue, _ at: Where) throws -> [Hook] {
    try list(v, at) { x, i in try decodeHook(x, { index(at, i) }) }
}

// MARK: - linux

func decodeLinux(_ v: JSONValue, _ at: Where) throws -> Linux {
    let o = try object(v, at)
    var l = Linux()
    if let x = present(o, "uidMappings") { l.uidMappings = try decodeIDMappings(x, { key(at, "uidMappings") }) }
    if let x = present(o, "gidMappings") { l.gidMappings = try decodeIDMappings(x, { key(at, "gidMappings") }) }
    if let x = present(o, "timeOffsets") { l.timeOffsets = try objectMap(x, { key(at, "timeOffsets") }, decodeTimeOffset) }
    if let x = present(o, "netDevices") { l.netDevices = try objectMap(x, { key(at, "netDevices") }, decodeNetDevice) }
    if let x = present(o, "intelRdt") { l.intelRdt = try decodeIntelRdt(x, { key(at, "intelRdt") }) }
    l.sysctl = try optStringMap(o, "sysctl", at)
    if let x = present(o, "resources") { l.resources = try decodeResources(x, { key(at, "resources") }) }
    l.cgroupsPath = try optString(o, "cgroupsPath", at)
    if let x = present(o, "namespaces") { l.namespaces = try decodeNamespaces(x, { key(at, "namespaces") }) }
    if let x = present(o, "devices") { l.devices = try decodeDevices(x, { key(at, "devices") }) }
    if let x = present(o, "seccomp") { l.seccomp = try decodeSeccomp(x, { key(at, "seccomp") }) }
    l.rootfsPropagation = try optString(o, "rootfsPropagation", at)
    l.maskedPaths = try optStrings(o, "maskedPaths", at)
    l.readonlyPaths = try optStrings(o, "readonlyPaths", at)
    l.mountLabel = try optString(o, "mountLabel", at)
    if let x = present(o, "personality") { l.personality = try decodePersonality(x, { key(at, "personality") }) }
    if let x = present(o, "memoryPolicy") { l.memoryPolicy = try decodeMemoryPolicy(x, { key(at, "memoryPolicy") }) }
    return l
}

func decodeIDMapping(_ v: JSONValue, _ at: Where) throws -> IDMapping {
    let o = try object(v, at)
    let containerID = try reqUInt32(o, "containerID", at)
    let hostID = try reqUInt32(o, "hostID", at)
    let size = try reqUInt32(o, "size", at)
    return IDMapping(containerID: containerID, hostID: hostID, size: size)
}

func decodeIDMappings(_ v: JSONValue, _ at: Where) throws -> [IDMapping] {
    try list(v, at) { x, i in try decodeIDMapping(x, { index(at, i) }) }
}

func decodeNamespace(_ v: JSONValue, _ at: Where) throws -> Namespace {
    let o = try object(v, at)
    let type = try reqString(o, "type", at)
    let path = try optString(o, "path", at)
    return Namespace(type: type, path: path)
}

func decodeNamespaces(_ v: JSONValue, _ at: Where) throws -> [Namespace] {
    try list(v, at) { x, i in try decodeNamespace(x, { index(at, i) }) }
}

func decodeDevice(_ v: JSONValue, _ at: Where) throws -> Device {
    let o = try object(v, at)
    let type = try reqString(o, "type", at)
    let path = try reqString(o, "path", at)
    let major = try optInt64(o, "major", at)
    let minor = try optInt64(o, "minor", at)
    let fileMode = try optUInt32(o, "fileMode", at)
    let uid = try optUInt32(o, "uid", at)
    let gid = try optUInt32(o, "gid", at)
    return Device(type: type, path: path, major: major, minor: minor, fileMode: fileMode, uid: uid, gid: gid)
}

func decodeDevices(_ v: JSONValue, _ at: Where) throws -> [Device] {
    try list(v, at) { x, i in try decodeDevice(x, { index(at, i) }) }
}

func decodePersonality(_ v: JSONValue, _ at: Where) throws -> Personality {
    let o = try object(v, at)
    let domain = try reqString(o, "domain", at)
    let flags = try optStrings(o, "flags", at)
    return Personality(domain: domain, flags: flags)
}

// MARK: - linux.resources

func decodeResources(_ v: JSONValue, _ at: Where) throws -> Resources {
    let o = try object(v, at)
    var r = Resources()
    if let x = present(o, "network") { r.network = try decodeNetworkResources(x, { key(at, "network") }) }
    if let x = present(o, "pids") { r.pids = try decodePids(x, { key(at, "pids") }) }
    if let x = present(o, "memory") { r.memory = try decodeMemory(x, { key(at, "memory") }) }
    if let x = present(o, "cpu") { r.cpu = try decodeCPU(x, { key(at, "cpu") }) }
    if let x = present(o, "blockIO") { r.blockIO = try decodeBlockIO(x, { key(at, "blockIO") }) }
    if let x = present(o, "hugepageLimits") { r.hugepageLimits = try decodeHugepageLimits(x, { key(at, "hugepageLimits") }) }
    if let x = present(o, "devices") { r.devices = try decodeDeviceCgroups(x, { key(at, "devices") }) }
    r.unified = try optStringMap(o, "unified", at)
    return r
}

func decodeNetworkResources(_ v: JSONValue, _ at: Where) throws -> NetworkResources {
    let o = try object(v, at)
    var n = NetworkResources()
    n.classID = try optUInt32(o, "classID", at)
    if let x = present(o, "priorities") { n.priorities = try decodeInterfacePriorities(x, { key(at, "priorities") }) }
    return n
}

func decodeInterfacePriority(_ v: JSONValue, _ at: Where) throws -> InterfacePriority {
    let o = try object(v, at)
    let name = try reqString(o, "name", at)
    let priority = try reqUInt32(o, "priority", at)
    return InterfacePriority(name: name, priority: priority)
}

func decodeInterfacePriorities(_ v: JSONValue, _ at: Where) throws -> [InterfacePriority] {
    try list(v, at) { x, i in try decodeInterfacePriority(x, { index(at, i) }) }
}

func decodePids(_ v: JSONValue, _ at: Where) throws -> Pids {
    let o = try object(v, at)
    return Pids(limit: try reqInt64(o, "limit", at))
}

func decodeMemory(_ v: JSONValue, _ at: Where) throws -> Memory {
    let o = try object(v, at)
    let limit = try optInt64(o, "limit", at)
    let reservation = try optInt64(o, "reservation", at)
    let swap = try optInt64(o, "swap", at)
    var m = Memory(limit: limit, reservation: reservation, swap: swap)
    m.kernel = try optInt64(o, "kernel", at)
    m.kernelTCP = try optInt64(o, "kernelTCP", at)
    m.swappiness = try optUInt64(o, "swappiness", at)
    m.disableOOMKiller = try optBool(o, "disableOOMKiller", at)
    m.useHierarchy = try optBool(o, "useHierarchy", at)
    m.checkBeforeUpdate = try optBool(o, "checkBeforeUpdate", at)
    return m
}

func decodeCPU(_ v: JSONValue, _ at: Where) throws -> CPU {
    let o = try object(v, at)
    let shares = try optUInt64(o, "shares", at)
    let quota = try optInt64(o, "quota", at)
    let burst = try optUInt64(o, "burst", at)
    let period = try optUInt64(o, "period", at)
    let realtimeRuntime = try optInt64(o, "realtimeRuntime", at)
    let realtimePeriod = try optUInt64(o, "realtimePeriod", at)
    let cpus = try optString(o, "cpus", at)
    let mems = try optString(o, "mems", at)
    let idle = try optInt64(o, "idle", at)
    var c = CPU(shares: shares, quota: quota, period: period, cpus: cpus, mems: mems)
    c.burst = burst
    c.realtimeRuntime = realtimeRuntime
    c.realtimePeriod = realtimePeriod
    c.idle = idle
    return c
}

func decodeBlockIO(_ v: JSONValue, _ at: Where) throws -> BlockIO {
    let o = try object(v, at)
    var b = BlockIO()
    b.weight = try optUInt16(o, "weight", at)
    b.leafWeight = try optUInt16(o, "leafWeight", at)
    if let x = present(o, "weightDevice") { b.weightDevice = try decodeWeightDevices(x, { key(at, "weightDevice") }) }
    if let x = present(o, "throttleReadBpsDevice") {
        b.throttleReadBpsDevice = try decodeThrottleDevices(x, { key(at, "throttleReadBpsDevice") })
    }
    if let x = present(o, "throttleWriteBpsDevice") {
        b.throttleWriteBpsDevice = try decodeThrottleDevices(x, { key(at, "throttleWriteBpsDevice") })
    }
    if let x = present(o, "throttleReadIOPSDevice") {
        b.throttleReadIOPSDevice = try decodeThrottleDevices(x, { key(at, "throttleReadIOPSDevice") })
    }
    if let x = present(o, "throttleWriteIOPSDevice") {
        b.throttleWriteIOPSDevice = try decodeThrottleDevices(x, { key(at, "throttleWriteIOPSDevice") })
    }
    return b
}

func decodeWeightDevice(_ v: JSONValue, _ at: Where) throws -> WeightDevice {
    let o = try object(v, at)
    let major = try reqInt64(o, "major", at)
    let minor = try reqInt64(o, "minor", at)
    let weight = try optUInt16(o, "weight", at)
    let leafWeight = try optUInt16(o, "leafWeight", at)
    return WeightDevice(major: major, minor: minor, weight: weight, leafWeight: leafWeight)
}

func decodeWeightDevices(_ v: JSONValue, _ at: Where) throws -> [WeightDevice] {
    try list(v, at) { x, i in try decodeWeightDevice(x, { index(at, i) }) }
}

func decodeThrottleDevice(_ v: JSONValue, _ at: Where) throws -> ThrottleDevice {
    let o = try object(v, at)
    let major = try reqInt64(o, "major", at)
    let minor = try reqInt64(o, "minor", at)
    let rate = try reqUInt64(o, "rate", at)
    return ThrottleDevice(major: major, minor: minor, rate: rate)
}

func decodeThrottleDevices(_ v: JSONValue, _ at: Where) throws -> [ThrottleDevice] {
    try list(v, at) { x, i in try decodeThrottleDevice(x, { index(at, i) }) }
}

func decodeHugepageLimit(_ v: JSONValue, _ at: Where) throws -> HugepageLimit {
    let o = try object(v, at)
    let pageSize = try reqString(o, "pageSize", at)
    let limit = try reqUInt64(o, "limit", at)
    return HugepageLimit(pageSize: pageSize, limit: limit)
}

func decodeHugepageLimits(_ v: JSONValue, _ at: Where) throws -> [HugepageLimit] {
    try list(v, at) { x, i in try decodeHugepageLimit(x, { index(at, i) }) }
}

func decodeDeviceCgroup(_ v: JSONValue, _ at: Where) throws -> DeviceCgroup {
    let o = try object(v, at)
    let allow = try reqBool(o, "allow", at)
    let type = try optString(o, "type", at)
    let major = try optInt64(o, "major", at)
    let minor = try optInt64(o, "minor", at)
    let access = try optString(o, "access", at)
    return DeviceCgroup(allow: allow, type: type, major: major, minor: minor, access: access)
}

func decodeDeviceCgroups(_ v: JSONValue, _ at: Where) throws -> [DeviceCgroup] {
    try list(v, at) { x, i in try decodeDeviceCgroup(x, { index(at, i) }) }
}

// MARK: - linux.seccomp

func decodeSeccomp(_ v: JSONValue, _ at: Where) throws -> Seccomp {
    let o = try object(v, at)
    var s = Seccomp(defaultAction: try reqString(o, "defaultAction", at))
    s.defaultErrnoRet = try optUInt32(o, "defaultErrnoRet", at)
    s.architectures = try optStrings(o, "architectures", at)
    s.flags = try optStrings(o, "flags", at)
    s.listenerPath = try optString(o, "listenerPath", at)
    s.listenerMetadata = try optString(o, "listenerMetadata", at)
    if let x = present(o, "syscalls") { s.syscalls = try decodeSyscalls(x, { key(at, "syscalls") }) }
    return s
}

func decodeSyscall(_ v: JSONValue, _ at: Where) throws -> Syscall {
    let o = try object(v, at)
    let names = try reqStrings(o, "names", at)
    let action = try reqString(o, "action", at)
    var s = Syscall(names: names, action: action)
    s.errnoRet = try optUInt32(o, "errnoRet", at)
    if let x = present(o, "args") { s.args = try decodeSyscallArgs(x, { key(at, "args") }) }
    return s
}

func decodeSyscalls(_ v: JSONValue, _ at: Where) throws -> [Syscall] {
    try list(v, at) { x, i in try decodeSyscall(x, { index(at, i) }) }
}

func decodeSyscallArg(_ v: JSONValue, _ at: Where) throws -> SyscallArg {
    let o = try object(v, at)
    let index = try reqUInt(o, "index", at)
    let value = try reqUInt64(o, "value", at)
    let valueTwo = try optUInt64(o, "valueTwo", at)
    let op = try reqString(o, "op", at)
    return SyscallArg(index: index, value: value, valueTwo: valueTwo, op: op)
}

func decodeSyscallArgs(_ v: JSONValue, _ at: Where) throws -> [SyscallArg] {
    try list(v, at) { x, i in try decodeSyscallArg(x, { index(at, i) }) }
}


// MARK: - spec 1.3 linux settings

/// A `[String: T]` whose values `one` decodes, in the document's key order,
/// each value's path being `parent.key`; of two equal keys the first wins,
/// as in stringMap (Codable decodes the first one's value for both).
func objectMap<T>(_ v: JSONValue, _ at: Where, _ one: @escaping (JSONValue, Where) throws -> T) throws -> [String: T] {
    let o = try object(v, at)
    var out: [String: T] = [:]
    for e in o.entries where out[e.key] == nil {
        out[e.key] = try one(e.value, { key(at, e.key) })
    }
    return out
}

func decodeTimeOffset(_ v: JSONValue, _ at: Where) throws -> TimeOffset {
    let o = try object(v, at)
    let secs = try optInt64(o, "secs", at)
    let nanosecs = try optUInt32(o, "nanosecs", at)
    return TimeOffset(secs: secs, nanosecs: nanosecs)
}

func decodeNetDevice(_ v: JSONValue, _ at: Where) throws -> NetDevice {
    let o = try object(v, at)
    return NetDevice(name: try optString(o, "name", at))
}

func decodeIntelRdt(_ v: JSONValue, _ at: Where) throws -> IntelRdt {
    let o = try object(v, at)
    let closID = try optString(o, "closID", at)
    let schemata = try optStrings(o, "schemata", at)
    let l3CacheSchema = try optString(o, "l3CacheSchema", at)
    let memBwSchema = try optString(o, "memBwSchema", at)
    let enableMonitoring = try optBool(o, "enableMonitoring", at)
    return IntelRdt(closID: closID, schemata: schemata, l3CacheSchema: l3CacheSchema, memBwSchema: memBwSchema,
                    enableMonitoring: enableMonitoring)
}

// MARK: - spec 1.3 process settings

func decodeScheduler(_ v: JSONValue, _ at: Where) throws -> Scheduler {
    let o = try object(v, at)
    let policy = try reqString(o, "policy", at)
    let nice = try optInt32(o, "nice", at)
    let priority = try optInt32(o, "priority", at)
    let flags = try optStrings(o, "flags", at)
    let runtime = try optUInt64(o, "runtime", at)
    let deadline = try optUInt64(o, "deadline", at)
    let period = try optUInt64(o, "period", at)
    return Scheduler(policy: policy, nice: nice, priority: priority, flags: flags,
                     runtime: runtime, deadline: deadline, period: period)
}

func decodeIOPriority(_ v: JSONValue, _ at: Where) throws -> IOPriority {
    let o = try object(v, at)
    let c = try reqString(o, "class", at)
    let priority = try int32(required(o, "priority", at), { key(at, "priority") })
    return IOPriority(class: c, priority: priority)
}

func decodeCPUAffinity(_ v: JSONValue, _ at: Where) throws -> CPUAffinity {
    let o = try object(v, at)
    let initial = try optString(o, "initial", at)
    let final = try optString(o, "final", at)
    return CPUAffinity(initial: initial, final: final)
}

func decodeMemoryPolicy(_ v: JSONValue, _ at: Where) throws -> MemoryPolicy {
    let o = try object(v, at)
    let mode = try reqString(o, "mode", at)
    let nodes = try optString(o, "nodes", at)
    let flags = try optStrings(o, "flags", at)
    return MemoryPolicy(mode: mode, nodes: nodes, flags: flags)
}

func int32(_ v: JSONValue, _ at: Where) throws -> Int32 {
    Int32(truncatingIfNeeded: try signed(v, min: Int64(Int32.min), max: Int64(Int32.max), at))
}

func optInt32(_ o: JSONObject, _ name: String, _ at: Where) throws -> Int32? {
    guard let v = present(o, name) else { return nil }
    return try int32(v, { key(at, name) })
}
