// The OCI runtime-spec configuration (config.json) for Linux, as plain value
// types. Property names are the spec's; optional properties are omitted when
// nil, and unknown properties are ignored when decoding, as the spec requires.
// This file imports nothing: the types are usable by any layer.

public struct Spec: Codable, Equatable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init(ociVersion: String = Spec.version, process: Process? = nil, root: Root? = nil,
                hostname: String? = nil, domainname: String? = nil, mounts: [Mount]? = nil,
                hooks: Hooks? = nil, annotations: [String: String]? = nil, linux: Linux? = nil) {
        self.ociVersion = ociVersion
        self.process = process
        self.root = root
        self.hostname = hostname
        self.domainname = domainname
        self.mounts = mounts
        self.hooks = hooks
        self.annotations = annotations
        self.linux = linux
    }

    /// The runtime-spec version we implement and write.
    public static let version = "1.3.0"
}

public struct Process: Codable, Equatable {
    public var terminal: Bool?
    public var consoleSize: ConsoleSize?
    public var user: User
    public var args: [String]?
    public var commandLine: String?
    public var env: [String]?
    public var cwd: String
    public var capabilities: Capabilities?
    public var rlimits: [Rlimit]?
    public var noNewPrivileges: Bool?
    public var apparmorProfile: String?
    public var oomScoreAdj: Int?
    public var selinuxLabel: String?
    /// sched_setattr(2) for the process (spec 1.3).
    public var scheduler: Scheduler?
    /// ioprio_set(2) for the process (spec 1.3).
    public var ioPriority: IOPriority?
    /// sched_setaffinity(2) around the move into the container: exec'd
    /// processes only, not the init (spec 1.3).
    public var execCPUAffinity: CPUAffinity?

    public init(terminal: Bool? = nil, consoleSize: ConsoleSize? = nil, user: User = User(), args: [String]? = nil,
                env: [String]? = nil, cwd: String = "/", capabilities: Capabilities? = nil,
                rlimits: [Rlimit]? = nil, noNewPrivileges: Bool? = nil, oomScoreAdj: Int? = nil) {
        self.terminal = terminal
        self.consoleSize = consoleSize
        self.user = user
        self.args = args
        self.env = env
        self.cwd = cwd
        self.capabilities = capabilities
        self.rlimits = rlimits
        self.noNewPrivileges = noNewPrivileges
        self.oomScoreAdj = oomScoreAdj
    }
}

public struct ConsoleSize: Codable, Equatable {
    public var height: UInt
    public var width: UInt
    public init(height: UInt, width: UInt) { self.height = height; self.width = width }
}

public struct User: Codable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var umask: UInt32?
    public var additionalGids: [UInt32]?
    public var username: String?

    public init(uid: UInt32 = 0, gid: UInt32 = 0, umask: UInt32? = nil, additionalGids: [UInt32]? = nil) {
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additionalGids = additionalGids
    }
}

public struct Capabilities: Codable, Equatable {
    public var bounding: [String]?
    public var effective: [String]?
    public var inheritable: [String]?
    public var permitted: [String]?
    public var ambient: [String]?

    public init(bounding: [String]? = nil, effective: [String]? = nil, inheritable: [String]? = nil,
                permitted: [String]? = nil, ambient: [String]? = nil) {
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient
    }
}

public struct Rlimit: Codable, Equatable {
    public var type: String
    public var hard: UInt64
    public var soft: UInt64
    public init(type: String, hard: UInt64, soft: UInt64) { self.type = type; self.hard = hard; self.soft = soft }
}

public struct Root: Codable, Equatable {
    public var path: String
    public var readonly: Bool?
    public init(path: String, readonly: Bool? = nil) { self.path = path; self.readonly = readonly }
}

public struct Mount: Codable, Equatable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String]?
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?

    public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options
    }
}

public struct Hooks: Codable, Equatable {
    public var prestart: [Hook]?
    public var createRuntime: [Hook]?
    public var createContainer: [Hook]?
    public var startContainer: [Hook]?
    public var poststart: [Hook]?
    public var poststop: [Hook]?
    public init() {}
}

public struct Hook: Codable, Equatable {
    public var path: String
    public var args: [String]?
    public var env: [String]?
    public var timeout: Int?
    public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout
    }
}

public struct Linux: Codable, Equatable {
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    /// Clock name (monotonic, boottime) -> its offset in a new time namespace.
    public var timeOffsets: [String: TimeOffset]?
    /// Host interface name -> how it is moved into the container's network namespace.
    public var netDevices: [String: NetDevice]?
    public var intelRdt: IntelRdt?
    public var sysctl: [String: String]?
    public var resources: Resources?
    public var cgroupsPath: String?
    public var namespaces: [Namespace]?
    public var devices: [Device]?
    public var seccomp: Seccomp?
    public var rootfsPropagation: String?
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?
    public var mountLabel: String?
    public var personality: Personality?
    /// set_mempolicy(2) for the container's processes (spec 1.3).
    public var memoryPolicy: MemoryPolicy?

    public init() {}
}

public struct IDMapping: Codable, Equatable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32
    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }
}

public struct Namespace: Codable, Equatable {
    /// pid, network, mount, ipc, uts, user, cgroup, time.
    public var type: String
    /// Join this namespace instead of creating one.
    public var path: String?
    public init(type: String, path: String? = nil) { self.type = type; self.path = path }

    public static let knownTypes = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
}

public struct Device: Codable, Equatable {
    /// c, b, u or p.
    public var type: String
    public var path: String
    public var major: Int64?
    public var minor: Int64?
    public var fileMode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public init(type: String, path: String, major: Int64? = nil, minor: Int64? = nil,
                fileMode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.type = type
        self.path = path
        self.major = major
        self.minor = minor
        self.fileMode = fileMode
        self.uid = uid
        self.gid = gid
    }
}

public struct Personality: Codable, Equatable {
    /// LINUX or LINUX32.
    public var domain: String
    public var flags: [String]?
    public init(domain: String, flags: [String]? = nil) { self.domain = domain; self.flags = flags }
}

// MARK: resources

public struct Resources: Codable, Equatable {
    public var network: NetworkResources?
    public var pids: Pids?
    public var memory: Memory?
    public var cpu: CPU?
    public var blockIO: BlockIO?
    public var hugepageLimits: [HugepageLimit]?
    public var devices: [DeviceCgroup]?
    public var unified: [String: String]?
    public init() {}
}

public struct NetworkResources: Codable, Equatable {
    public var classID: UInt32?
    public var priorities: [InterfacePriority]?
    public init() {}
}

public struct InterfacePriority: Codable, Equatable {
    public var name: String
    public var priority: UInt32
    public init(name: String, priority: UInt32) { self.name = name; self.priority = priority }
}

public struct Pids: Codable, Equatable {
    public var limit: Int64
    public init(limit: Int64) { self.limit = limit }
}

public struct Memory: Codable, Equatable {
    public var limit: Int64?
    public var reservation: Int64?
    public var swap: Int64?
    public var kernel: Int64?
    public var kernelTCP: Int64?
    public var swappiness: UInt64?
    public var disableOOMKiller: Bool?
    public var useHierarchy: Bool?
    public var checkBeforeUpdate: Bool?
    public init(limit: Int64? = nil, reservation: Int64? = nil, swap: Int64? = nil) {
        self.limit = limit
        self.reservation = reservation
        self.swap = swap
    }
}

public struct CPU: Codable, Equatable {
    public var shares: UInt64?
    public var quota: Int64?
    public var burst: UInt64?
    public var period: UInt64?
    public var realtimeRuntime: Int64?
    public var realtimePeriod: UInt64?
    public var cpus: String?
    public var mems: String?
    public var idle: Int64?
    public init(shares: UInt64? = nil, quota: Int64? = nil, period: UInt64? = nil, cpus: String? = nil, mems: String? = nil) {
        self.shares = shares
        self.quota = quota
        self.period = period
        self.cpus = cpus
        self.mems = mems
    }
}

public struct BlockIO: Codable, Equatable {
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public var weightDevice: [WeightDevice]?
    public var throttleReadBpsDevice: [ThrottleDevice]?
    public var throttleWriteBpsDevice: [ThrottleDevice]?
    public var throttleReadIOPSDevice: [ThrottleDevice]?
    public var throttleWriteIOPSDevice: [ThrottleDevice]?
    public init() {}
}

public struct WeightDevice: Codable, Equatable {
    public var major: Int64
    public var minor: Int64
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public init(major: Int64, minor: Int64, weight: UInt16? = nil, leafWeight: UInt16? = nil) {
        self.major = major; self.minor = minor; self.weight = weight; self.leafWeight = leafWeight
    }
}

public struct ThrottleDevice: Codable, Equatable {
    public var major: Int64
    public var minor: Int64
    public var rate: UInt64
    public init(major: Int64, minor: Int64, rate: UInt64) { self.major = major; self.minor = minor; self.rate = rate }
}

public struct HugepageLimit: Codable, Equatable {
    public var pageSize: String
    public var limit: UInt64
    public init(pageSize: String, limit: UInt64) { self.pageSize = pageSize; self.limit = limit }
}

public struct DeviceCgroup: Codable, Equatable {
    public var allow: Bool
    public var type: String?
    public var major: Int64?
    public var minor: Int64?
    public var access: String?
    public init(allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil, access: String? = nil) {
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
    }
}

// MARK: seccomp

public struct Seccomp: Codable, Equatable {
    public var defaultAction: String
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var flags: [String]?
    public var listenerPath: String?
    public var listenerMetadata: String?
    public var syscalls: [Syscall]?
    public init(defaultAction: String) { self.defaultAction = defaultAction }
}

public struct Syscall: Codable, Equatable {
    public var names: [String]
    public var action: String
    public var errnoRet: UInt32?
    public var args: [SyscallArg]?
    public init(names: [String], action: String) { self.names = names; self.action = action }
}

public struct SyscallArg: Codable, Equatable {
    public var index: UInt
    public var value: UInt64
    public var valueTwo: UInt64?
    public var op: String
    public init(index: UInt, value: UInt64, valueTwo: UInt64? = nil, op: String) {
        self.index = index; self.value = value; self.valueTwo = valueTwo; self.op = op
    }
}

// MARK: state

/// The OCI state of a container: what `state ID` prints (with runc's
/// rootfs, created and owner beside it) and what hooks read on stdin.
public struct State: Codable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: ContainerStatus
    public var pid: Int?
    public var bundle: String
    public var annotations: [String: String]?

    public init(id: String, status: ContainerStatus, pid: Int?, bundle: String, annotations: [String: String]? = nil) {
        self.ociVersion = Spec.version
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations
    }

    public static let statuses = ["creating", "created", "running", "stopped", "paused"]
}

/// A container's status, derived from the kernel (Store.status), and what
/// each allows (runtime-spec's lifecycle).
public enum ContainerStatus: String, Codable {
    case creating, created, running, paused, stopped

    public var canStart: Bool { self == .created }
    /// kill without --all.
    public var canKill: Bool { self != .stopped }
    /// delete without --force.
    public var canDelete: Bool { self == .stopped || self == .created || self == .creating }
    public var canPause: Bool { self == .running || self == .created }
    public var canResume: Bool { self == .paused }
    public var canExec: Bool { self == .running || self == .created }
    public var canUpdate: Bool { self != .stopped }
    /// The init is alive (any status but stopped).
    public var isLive: Bool { self != .stopped }
}


// MARK: spec 1.3 linux settings

/// One clock's offset in a new time namespace (linux.timeOffsets): what
/// /proc/PID/timens_offsets takes before any process has entered it.
public struct TimeOffset: Codable, Equatable {
    public var secs: Int64?
    public var nanosecs: UInt32?
    public init(secs: Int64? = nil, nanosecs: UInt32? = nil) { self.secs = secs; self.nanosecs = nanosecs }

    /// The clocks a time namespace offsets, by their names in config.json
    /// (which /proc/PID/timens_offsets takes too).
    public static let clocks = ["monotonic", "boottime"]
}

/// A host network interface moved into the container's network namespace
/// (linux.netDevices; the host name is the map's key).
public struct NetDevice: Codable, Equatable {
    /// Its name in the container (the host's name when nil); may end in a
    /// "%d" template for the kernel to number.
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

/// linux.intelRdt: the container's resctrl class of service.
public struct IntelRdt: Codable, Equatable {
    public var closID: String?
    public var schemata: [String]?
    public var l3CacheSchema: String?
    public var memBwSchema: String?
    public var enableMonitoring: Bool?
    public init(closID: String? = nil, schemata: [String]? = nil, l3CacheSchema: String? = nil,
                memBwSchema: String? = nil, enableMonitoring: Bool? = nil) {
        self.closID = closID
        self.schemata = schemata
        self.l3CacheSchema = l3CacheSchema
        self.memBwSchema = memBwSchema
        self.enableMonitoring = enableMonitoring
    }
}

// MARK: spec 1.3 process settings

/// process.scheduler: the sched_setattr(2) attributes. Names and checks in
/// ProcessSettings.swift; nil numbers mean 0, as the spec says.
public struct Scheduler: Codable, Equatable {
    /// SCHED_OTHER, SCHED_FIFO, ... (Scheduler.policies).
    public var policy: String
    public var nice: Int32?
    public var priority: Int32?
    /// SCHED_FLAG_* (Scheduler.flagNames).
    public var flags: [String]?
    /// SCHED_DEADLINE's, in nanoseconds.
    public var runtime: UInt64?
    public var deadline: UInt64?
    public var period: UInt64?
    public init(policy: String, nice: Int32? = nil, priority: Int32? = nil, flags: [String]? = nil,
                runtime: UInt64? = nil, deadline: UInt64? = nil, period: UInt64? = nil) {
        self.policy = policy
        self.nice = nice
        self.priority = priority
        self.flags = flags
        self.runtime = runtime
        self.deadline = deadline
        self.period = period
    }
}

/// process.ioPriority: ioprio_set(2)'s class and level.
public struct IOPriority: Codable, Equatable {
    /// IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE (IOPriority.classes).
    public var `class`: String
    /// 0 (highest) to 7.
    public var priority: Int32
    public init(class c: String, priority: Int32) { self.class = c; self.priority = priority }
}

/// process.execCPUAffinity: CPU lists ("0-3,7") for an exec'd process,
/// `initial` before it enters the container's cgroup, `final` after.
public struct CPUAffinity: Codable, Equatable {
    public var initial: String?
    public var final: String?
    public init(initial: String? = nil, final: String? = nil) { self.initial = initial; self.final = final }
}

/// linux.memoryPolicy: set_mempolicy(2)'s mode, node list ("0-1") and flags.
public struct MemoryPolicy: Codable, Equatable {
    /// MPOL_* (MemoryPolicy.modes).
    public var mode: String
    public var nodes: String?
    /// MPOL_F_* (MemoryPolicy.flags).
    public var flags: [String]?
    public init(mode: String, nodes: String? = nil, flags: [String]? = nil) {
        self.mode = mode
        self.nodes = nodes
        self.flags = flags
    }
}
