import JSON
import Spec
import Sys

// A root the runtime mounts itself (Annotation.rootOverlay): rootless run
// mode's overlay, which an unprivileged user can only mount inside a user
// namespace of their own, so the init mounts it, in its new mount
// namespace, at root.path before any other mount. Read and checked at
// create, before anything exists; the init only mounts what was checked.

struct RootOverlay: Equatable {
    var lower: [String]
    var upper: String
    var work: String

    /// The annotation's overlay, nil without one. A bad value, or one in a
    /// container without a mount namespace of its own (the mount would be
    /// the host's), is refused with one line.
    static func from(_ spec: Spec) throws -> RootOverlay? {
        guard let text = spec.annotations?[Annotation.rootOverlay] else { return nil }
        let key = "annotations[\(Annotation.rootOverlay)]"
        let v: JSONValue
        do { v = try JSONValue.parse(text, file: key) } catch { throw fail("\(key): not JSON: \(error)") }
        guard case .object(let o) = v else { throw fail("\(key): must be an object") }
        for k in o.keys where !["lower", "upper", "work"].contains(k) { throw fail("\(key): unknown field \(quoted(k))") }
        func path(_ v: JSONValue?, _ field: String) throws -> String {
            guard case .string(let s)? = v, Path.isAbsolute(s), Path.clean(s) == s, !s.holdsByte("\n") else {
                throw fail("\(key).\(field): must be a clean absolute path")
            }
            return s
        }
        guard case .array(let ls)? = o["lower"], !ls.isEmpty, ls.count <= 500 else {
            throw fail("\(key).lower: must be a list of 1 to 500 paths")
        }
        let lower = try ls.enumerated().map { try path($0.element, "lower[\($0.offset)]") }
        let r = RootOverlay(lower: lower, upper: try path(o["upper"], "upper"), work: try path(o["work"], "work"))
        let namespaces = spec.linux?.namespaces ?? []
        guard namespaces.contains(where: { $0.type == "mount" && $0.path == nil }) else {
            throw fail("\(key): the runtime mounts this root in the container's own mount namespace, and the config has none")
        }
        return r
    }
}
