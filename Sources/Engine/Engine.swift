import Runtime
import Sys

// The engine's root: run-mode containers live in DATA/containers/<id>/ (DATA is
// Locations.data, given by the CLI), their OCI state under --root.

public struct ContainerError: Error, CustomStringConvertible {
    public var message: String
    public var code: Int32
    public init(_ message: String, code: Int32 = 125) { self.message = message; self.code = code }
    public var description: String { message }
}

/// Docker-style containers on top of bundles: `run --rootfs` compiles its
/// flags into a bundle in the container's directory (config.json, an overlayfs
/// root, generated hostname/hosts/resolv.conf, the log and our metadata in
/// container.json) and drives the OCI create/start/delete state machine with
/// the same id under --root.
public struct Containers {
    public let data: String
    public let ociRoot: String
    public let networkDir: String
    public var runtime: Runtime { Runtime(root: ociRoot, network: BridgeNetwork(dir: networkDir)) }

    public init(ociRoot: String, data: String = Locations.defaultData, networkDir: String = Locations.defaultNetwork) {
        self.data = FS.absolute(data)
        self.ociRoot = ociRoot
        self.networkDir = networkDir
    }

    public var base: String { data + "/containers" }
    public func dir(_ id: String) -> String { base + "/" + id }
    func metaPath(_ id: String) -> String { dir(id) + "/container.json" }
    public func logPath(_ id: String) -> String { dir(id) + "/container.log" }
}
