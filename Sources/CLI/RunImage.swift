import Compile
import Glibc
import Image
import Spec
import Sys

// `run`'s three forms, told apart by one rule (runModeRule, in `run --help`
// and the README), and `run IMAGE`'s image: resolved in the store, its
// config turned into the defaults compile takes.

let runModeRule = """
Which run: --rootfs PATH runs Docker-style on that directory. --bundle DIR runs \
that bundle as runc does (run ID). Otherwise a Docker-style flag (--rm, -e, \
-v, -p, --name, ...) or a COMMAND after the first argument makes it an IMAGE; \
a lone argument is a container ID of the bundle in this directory when there \
is a ./config.json, else an IMAGE. When it could be both (./config.json here \
and an image of that name), run refuses and shows both spellings.
"""

enum RunMode: Equatable {
    case rootfs
    case image(String)
    case bundle
}

/// The rule above, over a parse of `run`'s arguments; `bundleHere` and
/// `isImage` ask the host (./config.json, the image store).
func runMode(positionals: [String], has: (String) -> Bool, bundleHere: () -> Bool,
             isImage: (String) -> Bool) throws -> RunMode {
    let dockerFlag = (runFlagTable + runModeFlags).first { $0.key != "rootfs" && has($0.key) }
    if has("rootfs") {
        if has("bundle") { throw Failure(.usage, "run: --rootfs and --bundle exclude each other") }
        return .rootfs
    }
    if has("bundle") {
        if let f = dockerFlag {
            throw Failure(.usage, "run: --\(f.key) is a Docker-style flag, and --bundle runs a bundle as runc does (its config.json says everything else)")
        }
        return .bundle
    }
    guard let first = positionals.first else {
        throw Failure(.usage, "run needs an IMAGE, --rootfs PATH COMMAND, or a container ID (see 'minicontainer run --help')")
    }
    if dockerFlag != nil || positionals.count > 1 { return .image(first) }
    if bundleHere() {
        if isImage(first) {
            throw Failure(.usage, "run \(first): both the bundle in this directory (./config.json) and an image are named so; "
                + "say 'minicontainer run --bundle . \(first)' for the bundle, or 'minicontainer run \(first) COMMAND' for the image")
        }
        return .bundle
    }
    return .image(first)
}

func runMode(_ p: Parsed, _ g: Globals) throws -> RunMode {
    try runMode(positionals: p.positionals, has: { p.has($0) }, bundleHere: { FS.exists("config.json") },
                isImage: { imageExists($0, g) })
}

/// Whether the store has an image by that reference, id or id prefix (no
/// layer is unpacked).
func imageExists(_ ref: String, _ g: Globals) -> Bool {
    guard let store = try? ImageStore(locations: g.locations), store.exists else { return false }
    return store.has(ref)
}

/// The image `ref` names, as compile's defaults, and a hold on the store
/// that keeps it until the caller's container names it.
func resolveImage(_ ref: String, _ g: Globals) throws -> (ImageDefaults, ImageHold) {
    let store = try ImageStore(locations: g.locations)
    let hold = try store.hold()
    do {
        let img = try store.resolve(ref)
        // The overlay is mounted with userxattr exactly when rootless (by
        // the init, in the user namespace): the layers must be of that flavour.
        if store.userXattrs != g.locations.rootless {
            throw Failure(.invalid, store.userXattrs
                ? "image \(ref): the image store \(store.dir) was made rootless (user.overlay.* xattrs, layers owned by a user's mapped ids): only that user can run its images; use a store of its own (MINICONTAINER_DATA)"
                : "image \(ref): the image store \(store.dir) was made by root (trusted.overlay.* xattrs): an unprivileged user cannot run its images; use a store of your own (MINICONTAINER_DATA or XDG_DATA_HOME)")
        }
        let c = img.config
        if c.os != "linux" {
            throw Failure(.invalid, "image \(ref) is for \(c.os)/\(c.architecture), not linux")
        }
        var d = ImageDefaults(reference: ref, id: img.id.description, layers: img.layerDirs.reversed())
        d.run = c.run
        d.exposedPorts = c.exposedPorts
        d.volumes = c.volumes
        return (d, hold)
    } catch {
        hold.release()
        throw error
    }
}
