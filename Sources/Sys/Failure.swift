import Glibc

// The one error type of every module from Sys up: a kind, a message and,
// for a failed system call, its errno. Only the CLI maps kinds to exit codes
// (CLI/Commands.swift). The pure layers below (JSON, Spec, Compile) import
// nothing to share it with; their value errors (JSONError with its file and
// key path, SpecError, CompileError) are turned into one in the CLI, once.

public struct Failure: Error, CustomStringConvertible {
    public enum Kind: String, Equatable {
        /// Bad flags or arguments.
        case usage
        /// Bad input: a config, a size, a name, a hostile path.
        case invalid
        /// No such container (or other named thing).
        case notFound
        /// The name or id is taken.
        case exists
        /// The container's status forbids it (start a running one).
        case state
        /// A system call failed (errno says how).
        case system
        /// The container's program was not found or cannot be executed
        /// (errno: ENOENT, EACCES, ENOEXEC): Docker's 127 and 126.
        case program
        /// Anything else that went wrong.
        case failed
    }

    public var kind: Kind
    /// One line of bounded length (Log.oneLine): it may quote input, and it
    /// may have to cross the init's channel.
    public var what: String
    /// 0 when no system call is to blame.
    public var errno: Int32
    /// What the command was about (an id, a name), set by the CLI.
    public var subject: String?

    public init(_ kind: Kind, _ message: String, errno: Int32 = 0) {
        self.kind = kind
        what = Log.oneLine(message, max: Log.maxError)
        self.errno = errno
    }

    /// A failed system call: what we were doing, on what, and errno (the
    /// current one unless given).
    public init(_ what: String, errno: Int32 = Glibc.errno) {
        kind = .system
        self.what = Log.oneLine(what, max: Log.maxSysError)
        self.errno = errno
    }

    public var message: String { what }
    public var description: String { errno != 0 ? "\(what): \(errnoText(errno))" : what }
}

extension Failure {
    /// How a forked child (the monitor, cp's and volumes' helpers) hands its
    /// failure to its parent over a pipe: kind, errno and message,
    /// NUL-separated (the message is one line, without NULs).
    public var wire: [UInt8] { Array("\(kind.rawValue)\u{0}\(errno)\u{0}\(what)".utf8) }

    /// The failure `wire` gave, nil for other bytes.
    public init?(wire bytes: [UInt8]) {
        let f = String(decoding: bytes, as: UTF8.self).split(separator: "\u{0}", maxSplits: 2, omittingEmptySubsequences: false)
        guard f.count == 3, let kind = Kind(rawValue: String(f[0])), let e = Int32(f[1]) else { return nil }
        self.init(kind, String(f[2]), errno: e)
    }

    /// A forked child's end: `error` (as a Failure) written to `fd`, then _exit(1).
    public static func exitReporting(_ error: Error, to fd: Int32) -> Never {
        let b = (error as? Failure ?? Failure(.failed, "\(error)")).wire
        _ = b.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        _exit(1)
    }
}

/// The name the system-call wrappers throw under (a Failure of kind .system).
public typealias SysError = Failure
