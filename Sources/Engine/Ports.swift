import Network
import Spec
import Sys

// Published host ports in run mode: bound by the process that owns the
// container (HeldPorts) before anything else of it exists, so a port in use
// is refused with nothing to undo, and held until the container is gone.

extension Containers {
    /// Holds the host ports `req`'s spec publishes, and writes the ports the
    /// kernel chose for host port 0 (`-p 80`, `-P`) into its annotation, so
    /// config.json, inspect and `port` show the real ones.
    func holdPorts(_ req: inout RunRequest) throws -> HeldPorts {
        guard let text = req.spec.annotations?[Annotation.ports], !text.isEmpty else { return HeldPorts() }
        let ms = try PortMapping.list(text)
        let dir = networkDir
        let userMode = UserMode.mode(req.spec.annotations) != nil
        var held = try HeldPorts.hold(ms, owner: { m in
            Network.publisher(of: m, dir: dir).map { id in self.load(id)?.name ?? String(id.prefix(12)) }
        }, reuseAddress: userMode)
        if ms.contains(where: { $0.hostPort == 0 }) {
            req.spec.annotations?[Annotation.ports] = held.mappings.map { $0.description }.joined(separator: ",")
        }
        // User-mode networks: the helper binds the ports itself (a port
        // in use was refused just now, and host port 0 got a free one).
        if userMode { held.release() }
        return held
    }
}
