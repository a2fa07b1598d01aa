import Network
import Runtime

// The network driver the CLI and the engine give Runtime: user-mode modes
// (slirp4netns, pasta: Network/UserMode.swift) beside the bridge driver,
// which keeps every other mode (bridge, none, host, container:X) as it was.

public struct ContainerNetwork: NetworkDriver {
    public let bridge: BridgeNetwork
    public var dir: String { bridge.dir }
    public init(dir: String) { bridge = BridgeNetwork(dir: dir) }
    public func sharedContainer(_ annotations: [String: String]?) -> String? { bridge.sharedContainer(annotations) }
    public func configures(_ annotations: [String: String]?) -> Bool {
        UserMode.mode(annotations) != nil || bridge.configures(annotations)
    }
    public func setUp(annotations: [String: String]?, id: String, pid: Int32) throws -> [String: String]? {
        if UserMode.mode(annotations) != nil {
            return try UserMode.setUp(annotations: annotations, id: id, pid: pid, dir: dir)
        }
        return try bridge.setUp(annotations: annotations, id: id, pid: pid)
    }
    /// Both: the mode is not known here, and each is cheap with nothing to release.
    public func tearDown(id: String) throws {
        UserMode.tearDown(id: id, dir: dir)
        try bridge.tearDown(id: id)
    }
}
