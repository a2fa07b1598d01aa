import Network
import Runtime

// The network driver Runtime is given (Runtime/NetworkDriver.swift): the
// bundle's org.minicontainer.network annotation picks the mode. bridge: a
// lease, a veth on minicontainer0, NAT and published ports; none: lo up;
// container:X: X's namespace is joined; host (no network namespace) and
// bundles without the annotation: nothing.

public struct BridgeNetwork: NetworkDriver {
    /// Leases, ports and firewall state (Locations.network).
    public let dir: String
    public init(dir: String) { self.dir = dir }
    public func sharedContainer(_ annotations: [String: String]?) -> String? { Network.sharedContainer(annotations) }
    public func configures(_ annotations: [String: String]?) -> Bool { Network.configures(annotations) }
    public func setUp(annotations: [String: String]?, id: String, pid: Int32) throws -> [String: String]? {
        try Network.setUp(annotations: annotations, id: id, pid: pid, dir: dir)?.fields
    }
    public func tearDown(id: String) throws { try Network.tearDown(id: id, dir: dir) }
}
