// The network seam. Runtime knows no network: create hands a new network
// namespace to the driver it was given, after the init is cloned and placed
// and before the runtime-side hooks run; delete and a failed create hand the
// id back. The driver reads what it is to do from the bundle's annotations
// (a mode such as bridge, none, host or container:X, and published ports).
// The bridge (Engine's BridgeNetwork over the Network module) is passed in
// from above; rootless mode will add a user-space one.

public protocol NetworkDriver {
    /// X when the container is to join the network namespace of container X.
    func sharedContainer(_ annotations: [String: String]?) -> String?
    /// Whether `setUp` has work for a new network namespace.
    func configures(_ annotations: [String: String]?) -> Bool
    /// Connects the new network namespace of `pid`; returns what to keep in
    /// the state (Record.network), nil for nothing. On failure it leaves
    /// nothing behind.
    func setUp(annotations: [String: String]?, id: String, pid: Int32) throws -> [String: String]?
    /// Releases whatever `setUp` made for `id`; nothing to release is no error.
    func tearDown(id: String) throws
}

/// A driver that does nothing: every bundle's network namespace is left as
/// the kernel makes it (lo down), as runc leaves it.
public struct NoNetwork: NetworkDriver {
    public init() {}
    public func sharedContainer(_ annotations: [String: String]?) -> String? { nil }
    public func configures(_ annotations: [String: String]?) -> Bool { false }
    public func setUp(annotations: [String: String]?, id: String, pid: Int32) throws -> [String: String]? { nil }
    public func tearDown(id: String) throws {}
}
