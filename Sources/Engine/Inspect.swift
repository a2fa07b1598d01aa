import JSON
import Spec
import Sys

// `inspect`: a run-mode container as JSON, from its metadata, status, config.json
// (bind mounts, network mode and ports) and, while it lives, its address.

extension Containers {
    public func inspect(_ id: String) -> JSONValue {
        guard let m = load(id) else { return .null }
        var o = JSONObject()
        o["id"] = .string(m.id)
        o["name"] = .string(m.name)
        o["created"] = .string(m.created)
        o["command"] = .array(m.command.map { .string($0) })
        o["rootfs"] = .string(m.rootfs)
        o["image"] = m.image.map { .string($0) } ?? .null
        o["imageID"] = m.imageID.map { .string($0) } ?? .null
        o["bundle"] = .string(dir(id))
        o["logPath"] = .string(logPath(id))
        var st = JSONObject()
        let (state, text) = statusText(m)
        let live = liveStatus(id)
        st["status"] = .string(state)
        st["text"] = .string(text)
        st["running"] = .bool(live?.status == "running")
        st["pid"] = .int(Int64(live?.pid ?? 0))
        st["exitCode"] = m.exitCode.map { .int(Int64($0)) } ?? .null
        st["startedAt"] = m.started.map { .string($0) } ?? .null
        st["finishedAt"] = m.finished.map { .string($0) } ?? .null
        o["state"] = .object(st)
        let specValue = (try? FS.readBytes(dir(id) + "/config.json")).flatMap { try? JSONValue.parse($0, file: "config.json") } ?? .null
        var mounts: [JSONValue] = []
        var network = JSONObject()
        if case .object(let so) = specValue {
            if case .array(let ms)? = so["mounts"] {
                for mv in ms where mv["type"] == .string("bind") {
                    var mo = JSONObject()
                    mo["source"] = mv["source"] ?? .null
                    mo["destination"] = mv["destination"] ?? .null
                    var ro = false
                    if case .array(let opts)? = mv["options"] { ro = opts.contains(.string("ro")) }
                    mo["readOnly"] = .bool(ro)
                    mounts.append(.object(mo))
                }
            }
            if case .object(let ann)? = so["annotations"] {
                network["mode"] = ann[Annotation.network] ?? .null
                if case .string(let p)? = ann[Annotation.ports] {
                    network["ports"] = .array(p.split(separator: ",").map { .string(String($0)) })
                } else {
                    network["ports"] = .array([])
                }
            }
        }
        // The address and gateway while the container lives (its OCI state
        // has them; they are released when it stops).
        let rec = live != nil ? try? runtime.store.load(id) : nil
        network["address"] = rec.flatMap { Containers.address(of: $0) }.map { .string($0.description) } ?? .null
        network["prefixLength"] = rec?.network?["address"].flatMap { $0.split(separator: "/").last.flatMap { Int64(String($0)) } }.map { .int($0) } ?? .null
        network["gateway"] = rec?.network?["gateway"].map { .string($0) } ?? .null
        o["mounts"] = .array(mounts)
        o["network"] = .object(network)
        o["spec"] = specValue
        return .object(o)
    }
}
