import Glibc
import Privileges
import Sys

// The parent/init protocol: what create and exec say to the process they
// cloned, and what it answers, over a SOCK_SEQPACKET pair (one message per
// packet, an fd beside it for the terminal). Encoded and decoded here only.
//
//   child -> parent  placed / unplaced   (it moved itself into its v1 cgroups, or could not;
//                                         and whether it read linux.seccomp's filter from the cache)
//   parent -> child  seccomp(flags, bpf) (linux.seccomp compiled, when the spec has one and
//                                         the child has no filter of its own; before go)
//   parent -> child  idmapped(i) + fd    (the detached, idmapped copy of mounts[i]'s source,
//                                         one per idmapped bind; before go)
//   parent -> child  go(state)           (ids mapped, createRuntime hooks run; the hooks' state)
//   child -> parent  pty(name) + fd      (the terminal's master)
//   child -> parent  ready               (the init: blocked on exec.fifo next)
//   child -> parent  error(stage, errno, text)
//
// An exec'd process says nothing after go but pty or error: the channel is
// close-on-exec, and its end is the process executing.

enum InitMessage: Equatable {
    /// Placed (or not), and the child has the compiled filter already.
    case placed(Bool, ownSeccomp: Bool = false)
    case go(state: String)
    /// The compiled filter: seccomp(2) flags and struct sock_filter bytes.
    case seccomp(flags: UInt32, program: [UInt8])
    /// The idmapped tree of spec mount `index`, passed beside it (Rootfs/IDMap.swift).
    case idmapped(index: Int)
    case pty(name: String)
    case ready
    case error(InitFailure)

    /// One tag byte, then the fields; an error's are separated by NUL
    /// (its text is one line, Log.oneLine, so has none).
    var bytes: [UInt8] {
        switch self {
        case .placed(let p, let own): return [p ? 0x50 : 0x55] + (own ? [0x53] : [])  // P, U; S
        case .go(let s): return [0x47] + Array(s.utf8)  // G
        case .seccomp(let f, let p):  // S, flags little-endian, the program
            return [0x53, UInt8(f & 0xFF), UInt8(f >> 8 & 0xFF), UInt8(f >> 16 & 0xFF), UInt8(f >> 24)] + p
        case .pty(let n): return [0x54] + Array(n.utf8)  // T
        case .idmapped(let i): return [0x49] + Array(String(i).utf8)  // I, the index in decimal
        case .ready: return [0x52]  // R
        case .error(let f):  // E
            return [0x45] + Array(f.stage.utf8) + [0] + Array(String(f.errno).utf8) + [0] + Array(f.text.utf8)
        }
    }

    init?(_ b: [UInt8]) {
        guard let tag = b.first else { return nil }
        let rest = String(decoding: b.dropFirst(), as: UTF8.self)
        switch tag {
        case 0x50, 0x55:
            guard b.count == 1 || (b.count == 2 && b[1] == 0x53) else { return nil }
            self = .placed(tag == 0x50, ownSeccomp: b.count == 2)
        case 0x47: self = .go(state: rest)
        case 0x53:
            guard b.count > 5, (b.count - 5) % 8 == 0 else { return nil }
            let f = UInt32(b[1]) | UInt32(b[2]) << 8 | UInt32(b[3]) << 16 | UInt32(b[4]) << 24
            self = .seccomp(flags: f, program: Array(b[5...]))
        case 0x54: self = .pty(name: rest)
        case 0x49:
            guard let i = Int(rest), i >= 0, String(i) == rest else { return nil }
            self = .idmapped(index: i)
        case 0x52: guard b.count == 1 else { return nil }; self = .ready
        case 0x45:
            let f = b.dropFirst().split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3, let e = Int32(String(decoding: f[1], as: UTF8.self)) else { return nil }
            self = .error(InitFailure(stage: String(decoding: f[0], as: UTF8.self), errno: e,
                                      text: String(decoding: f[2], as: UTF8.self)))
        default: return nil
        }
    }
}

/// What failed in the init or an exec'd process, before its program ran:
/// the stage ("prepare rootfs", "exec", ...), errno (0 when none) and the
/// message, which names the stage (without errno's text).
struct InitFailure: Equatable, CustomStringConvertible {
    var stage: String
    var errno: Int32
    var text: String
    var description: String { failure.description }

    /// From an error thrown in the child at `stage`.
    init(stage: String, _ error: Error) {
        let f = error as? Failure
        let t = f?.what ?? "\(error)"
        self.stage = stage
        errno = f?.errno ?? 0
        text = Log.oneLine(t.hasPrefix(stage) ? t : "\(stage): \(t)", max: Log.maxError)
    }

    init(stage: String, errno: Int32, text: String) { self.stage = stage; self.errno = errno; self.text = text }

    /// What the runtime throws: of kind .program when the program could
    /// not be found or executed (the CLI's 127 and 126), else .failed.
    var failure: Failure {
        Failure(stage == "exec" && Failure.programExitCode(errno) != nil ? .program : .failed, text, errno: errno)
    }
}

extension Failure {
    /// For a failure of kind .program: 127 when the program is not found,
    /// 126 when it cannot be executed, as a shell and Docker say.
    public static func programExitCode(_ errno: Int32) -> Int32? {
        switch errno {
        case ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG: return 127
        case EACCES, ENOEXEC, EPERM, EISDIR, ETXTBSY: return 126
        default: return nil
        }
    }
}

extension Channel {
    func send(_ m: InitMessage, fd: Int32 = -1) throws {
        try send(bytes: m.bytes, fd: fd)
    }

    /// The child's wait for `go`: the compiled seccomp filter comes first
    /// when `wantSeccomp` (the spec has linux.seccomp), and must: without
    /// it the child would run unfiltered; so do the idmapped trees, by the
    /// index of their mount. nil when the parent went away.
    func receiveGo(wantSeccomp: Bool) throws -> (state: String, seccomp: Privileges.SeccompProgram?, idmapped: [Int: Int32])? {
        var program: Privileges.SeccompProgram? = nil
        var trees: [Int: Int32] = [:]
        do {
            while true {
                guard let (m, fd) = try receiveMessage() else {
                    for t in trees.values { Glibc.close(t) }
                    return nil
                }
                switch m {
                case .seccomp(let f, let p) where program == nil && fd < 0:
                    program = Privileges.SeccompProgram(instructions: p, flags: f)
                case .idmapped(let i) where fd >= 0 && trees[i] == nil:
                    trees[i] = fd
                case .go(let state) where fd < 0:
                    if wantSeccomp && program == nil { throw fail("the runtime sent no compiled seccomp filter") }
                    return (state, program, trees)
                default:
                    if fd >= 0 { Glibc.close(fd) }
                    throw fail("the runtime said \(m) instead of go")
                }
            }
        } catch {
            for t in trees.values { Glibc.close(t) }
            throw error
        }
    }

    /// The next message and the fd passed with it (-1); nil at the end of
    /// the stream (the peer closed, executed or died).
    func receiveMessage() throws -> (InitMessage, Int32)? {
        guard let (bytes, fd) = try receiveBytes() else { return nil }
        guard let m = InitMessage(bytes) else {
            if fd >= 0 { Glibc.close(fd) }
            throw fail("malformed message from the container's process")
        }
        return (m, fd)
    }
}

/// Where the terminal's master goes: kept by the caller (`run`, exec in
/// the foreground), or sent to a --console-socket.
enum TerminalDestination {
    case keep
    case socket(String)
}

/// The parent's half after `go`, shared by create and exec: passes on the
/// terminal, throws the child's error, and returns at `ready` (the init;
/// `untilReady`) or at the end of the channel (an exec'd process: it closes
/// on execve). Returns the kept terminal's master.
func awaitStarted(_ channel: Channel, untilReady: Bool, terminal: TerminalDestination?) throws -> Int32? {
    var kept: Int32?
    do {
        while true {
            guard let (m, fd) = try channel.receiveMessage() else {
                if untilReady { throw fail("the container's init exited before it was ready") }
                return kept
            }
            switch m {
            case .ready where untilReady:
                return kept
            case .error(let f):
                if fd >= 0 { close(fd) }
                throw f.failure
            case .pty(let name):
                guard fd >= 0 else { throw fail("the container's process sent no terminal") }
                switch terminal {
                case .keep?: if let k = kept { close(k) }; kept = fd
                case .socket(let path)?:
                    defer { close(fd) }
                    try sendConsole(fd, name: name, socket: path)
                case nil:
                    close(fd)
                    throw fail("the container's process opened a terminal nobody asked for")
                }
            default:
                if fd >= 0 { close(fd) }
                throw fail("unexpected message from the container's process: \(m)")
            }
        }
    } catch {
        if let k = kept { close(k) }
        throw error
    }
}
