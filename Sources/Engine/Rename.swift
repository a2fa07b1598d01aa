import JSON
import Spec
import Sys

// `rename`: a container's new name, running or stopped. The name is taken
// in the index (NameIndex) under the lock on the containers directory that
// run holds while it chooses one (Prepare.swift), so a rename and a run
// cannot both take it.

extension Containers {
    /// Renames container `id` to `name` (already validated as --name is):
    /// its metadata, the name annotation of its config.json and, while it
    /// lives, of the runtime's copy and state.
    public func rename(_ id: String, to name: String) throws {
        let lock = try FileLock.acquire(base)
        defer { lock.unlock() }
        do {
            try nameIndex(locked: true).claim(name, id: id, isLive: { hasName($0, name) })
        } catch let t as NameIndex.Taken {
            throw Failure(.exists, "\(t); remove it or choose another name")
        }
        guard let old = load(id) else {
            names.release(name, id: id)
            throw Failure(.notFound, "container \(id) does not exist")
        }
        // The metadata says which name is held: a crash before this line
        // leaves the new entry stale, after it the old one.
        update(id) { $0.name = name }
        names.release(old.name, id: id)
        try setNameAnnotation(dir(id) + "/config.json", name)
        let rt = runtime(of: id)
        if rt.store.exists(id), let l = try? rt.store.lock(id) {
            defer { l.unlock() }
            if var r = try? rt.store.load(id) {
                var a = r.annotations ?? [:]
                if a[Annotation.name] != nil {
                    a[Annotation.name] = name
                    r.annotations = a
                    try rt.store.save(r)
                }
            }
            if FS.exists(rt.store.configPath(id)) { try setNameAnnotation(rt.store.configPath(id), name) }
        }
    }

    /// Rewrites the org.minicontainer.name annotation of the config.json at
    /// `path`, keeping the rest as it was.
    func setNameAnnotation(_ path: String, _ name: String) throws {
        guard let bytes = try? FS.readBytes(path) else { return }
        guard case .object(var o) = try JSONValue.parse(bytes, file: path) else { return }
        var ann = JSONObject()
        if case .object(let a)? = o["annotations"] { ann = a }
        ann[Annotation.name] = .string(name)
        o["annotations"] = .object(ann)
        try FS.writeAtomically(path, JSONValue.object(o).pretty())
    }
}
