import Runtime
import Sys

// The engine's root: run-mode containers live in DATA/containers/<id>/ (DATA is
// Locations.data, given by the CLI), their OCI state under --root. A container
// belongs to the --root it was run with (Meta.ociRoot): its status is read
// there whatever --root is given now, and only commands given that --root
// list it, stop it or remove it (Metadata.swift's resolve).

/// Docker-style containers on top of bundles: `run --rootfs` compiles its
/// flags into a bundle in the container's directory (config.json, an overlayfs
/// root, generated hostname/hosts/resolv.conf, the log and our metadata in
/// container.json) and drives the OCI create/start/delete state machine with
/// the same id under --root.
public struct Containers {
    public let locations: Locations
    public var data: String { locations.data }
    public var ociRoot: String { locations.root }
    public var networkDir: String { locations.network }
    public var runtime: Runtime { Runtime(locations: locations, network: ContainerNetwork(dir: networkDir)) }

    public init(locations: Locations) { self.locations = locations }

    /// The runtime over the --root container `id` was run with.
    func runtime(of id: String) -> Runtime {
        guard let m = load(id), m.ociRoot != ociRoot else { return runtime }
        var l = locations
        l.root = m.ociRoot
        return Runtime(locations: l, network: ContainerNetwork(dir: networkDir))
    }

    public var base: String { data + "/containers" }
    public func dir(_ id: String) -> String { base + "/" + id }
    func metaPath(_ id: String) -> String { dir(id) + "/container.json" }
    public func logPath(_ id: String) -> String { dir(id) + "/container.log" }
}
