import Glibc
import Spec
import Sys

// Sysctls are written by the init in the namespaces it has; validation
// (Spec/Sysctl.swift) allows a key only with the namespace that isolates it.
// A namespace joined by path may still be the host's own (`"path":
// "/proc/1/ns/net"`): then the write would change the host. createContainer
// refuses that before anything exists, and records the host's namespaces so
// that the init, once it has joined, checks again what it actually joined
// (the path might name another namespace by then).

/// (st_dev, st_ino) of a namespace file: the namespace's identity.
struct NamespaceID: Equatable {
    var dev: UInt64
    var ino: UInt64
    init?(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        dev = UInt64(st.st_dev)
        ino = UInt64(st.st_ino)
    }
}

/// The runtime's namespaces (its own and its pid namespace's init's) of a
/// kind that a sysctl is set in through a joined namespace, for the init to
/// check again once it has joined (InitConfig).
struct HostNamespaces {
    var entries: [(kind: String, key: String, ids: [NamespaceID])] = []
}

/// Refuses sysctls set in a namespace joined by path that is the runtime's
/// own (or that of the init of its pid namespace); returns what the init
/// checks again.
@discardableResult
func checkSysctlNamespaces(_ spec: Spec) throws -> HostNamespaces {
    var host = HostNamespaces()
    let keys = (spec.linux?.sysctl ?? [:]).keys.sorted()
    guard !keys.isEmpty else { return host }
    for ns in spec.linux?.namespaces ?? [] {
        guard let path = ns.path, let key = keys.first(where: { Sysctl.namespace(of: $0) == ns.type }) else { continue }
        let proc = try NamespaceKind.of(ns).procName
        let own = ["/proc/self/ns/" + proc, "/proc/1/ns/" + proc].compactMap { NamespaceID($0) }
        if let joined = NamespaceID(path), own.contains(joined) {
            throw fail(hostNamespaceMessage(key: key, kind: ns.type, path: path))
        }
        // A path that cannot be read now fails the join, later.
        host.entries.append((ns.type, key, own))
    }
    return host
}

/// In the init, after it joined its namespaces (and before pivot_root, while
/// /proc is the runtime's): the same check on what it is now in.
func verifySysctlNamespaces(_ host: HostNamespaces) throws {
    for h in host.entries {
        let proc = NamespaceKind(rawValue: h.kind)?.procName ?? h.kind
        guard let mine = NamespaceID("/proc/self/ns/" + proc) else {
            throw fail("linux.sysctl: cannot tell which \(h.kind) namespace the container joined (/proc/self/ns/\(proc))")
        }
        if h.ids.contains(mine) { throw fail(hostNamespaceMessage(key: h.key, kind: h.kind, path: nil)) }
    }
}

func hostNamespaceMessage(key: String, kind: String, path: String?) -> String {
    "linux.sysctl: \(quoted(key, max: 128)) would change the host's: the \(kind) namespace "
        + (path.map { "joined at \(quoted($0, max: 128)) " } ?? "joined ") + "is the host's own"
}
