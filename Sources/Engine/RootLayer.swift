import Glibc
import Rootfs
import Spec
import Sys

// The container's root filesystem, the one place its overlay is mounted and
// unmounted: read-only lower layers under upper/work in its directory, at merged.

/// A run-mode container's root: an overlay of a chain of read-only lower
/// layers (top first: today the one `--rootfs`, later an image's layers)
/// under a writable upper, mounted at `merged` (the bundle's root.path).
struct RootLayer {
    let upper: String
    let work: String
    let merged: String
    /// Rootless: the runtime's init mounts it, inside the container's user
    /// and mount namespaces (Annotation.rootOverlay); never here.
    let rootless: Bool

    init(containerDir d: String, rootless: Bool = false) {
        upper = d + "/upper"
        work = d + "/work"
        merged = d + "/merged"
        self.rootless = rootless
    }

    /// Makes upper, work and merged in a new container directory.
    func makeDirectories() throws {
        for p in [upper, work, merged] {
            guard mkdir(p, 0o755) == 0 else { throw SysError("mkdir \(p)") }
        }
    }

    /// Mounts the overlay of `lower` at merged. Each layer is passed as a
    /// path, never spliced into an option string (Rootfs/Overlay.swift).
    func mount(lower: [String]) throws {
        if rootless { return }
        try Rootfs.mountOverlay(lower: lower, upper: upper, work: work, target: merged)
    }

    var isMounted: Bool { RootLayer.isMounted(merged) }

    /// Lazily unmounts it (and whatever is mounted over it).
    func unmount() { RootLayer.unmount(merged) }

    /// The mount points under `base`, the containers directory, each with
    /// the container directory it lies in: root layers, live or left by a
    /// crashed run.
    static func mounted(under base: String) -> [(id: String, path: String)] {
        mountPoints().filter { Path.isWithin($0, base) && $0 != base }.map { mp in
            (Path.components(Path.dropPrefix(base, of: mp) ?? "").first ?? "", mp)
        }
    }

    static func isMounted(_ path: String) -> Bool { mountPoints().contains(path) }

    /// Lazily unmounts everything mounted at `path`.
    static func unmount(_ path: String) {
        for _ in 0..<16 {
            guard isMounted(path) else { return }
            if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINTR { return }
        }
    }
}

extension Containers {
    func rootLayer(_ id: String) -> RootLayer { RootLayer(containerDir: dir(id), rootless: locations.rootless) }
}
