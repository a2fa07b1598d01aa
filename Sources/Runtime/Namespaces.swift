import Spec
import Sys

// Namespace kinds: their names in config.json, clone flags, the names of
// their files in /proc/PID/ns, and the order they are joined in.

public enum NamespaceKind: String, CaseIterable {
    case pid, network, mount, ipc, uts, user, cgroup, time

    /// The kind of a config.json namespace (validation has refused others).
    static func of(_ ns: Namespace) throws -> NamespaceKind {
        guard let k = NamespaceKind(rawValue: ns.type) else { throw fail("unknown namespace type \(quoted(ns.type, max: 64))") }
        return k
    }

    public var cloneFlag: UInt64 {
        let f: Int32
        switch self {
        case .pid: f = Kernel.CLONE_NEWPID
        case .network: f = Kernel.CLONE_NEWNET
        case .mount: f = Kernel.CLONE_NEWNS
        case .ipc: f = Kernel.CLONE_NEWIPC
        case .uts: f = Kernel.CLONE_NEWUTS
        case .user: f = Kernel.CLONE_NEWUSER
        case .cgroup: f = Kernel.CLONE_NEWCGROUP
        case .time: f = Kernel.CLONE_NEWTIME
        }
        return UInt64(UInt32(bitPattern: f))
    }

    /// setns(2)'s nstype.
    var nstype: Int32 { Int32(truncatingIfNeeded: cloneFlag) }

    /// The file in /proc/PID/ns.
    public var procName: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }

    /// Namespaces joined by path go in this order: the user namespace first
    /// (it grants the rights to join the others), mount last. pid is not
    /// joined by the child but by the runtime, for its children.
    static let joinOrder: [NamespaceKind] = [.user, .ipc, .uts, .network, .cgroup, .time, .mount]
    var joinRank: Int { NamespaceKind.joinOrder.firstIndex(of: self) ?? NamespaceKind.joinOrder.count }
}
