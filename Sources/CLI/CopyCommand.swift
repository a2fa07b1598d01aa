import Engine
import Spec
import Sys

// `cp`: files between the host and a run-mode container (Engine/Copy.swift),
// Docker's arguments: one side CONTAINER:PATH, the other a host path or `-`
// for a tar stream on stdin or stdout.

/// One argument of cp: a container reference and the path in it, or a host
/// path. As Docker reads it: a colon before any slash makes a container
/// side (a host path with a colon in its first component is written ./a:b).
func copyOperand(_ arg: String) -> (container: String?, path: String) {
    if let colon = arg.firstIndex(of: ":"), !arg[..<colon].contains("/"), colon != arg.startIndex {
        return (String(arg[..<colon]), String(arg[arg.index(after: colon)...]))
    }
    return (nil, arg)
}

let copyCommand = Command(name: "cp", summary: "copy files between a run-mode container and the host (- for a tar stream on stdin or stdout)",
                          usage: "[-a] [-L] CONTAINER:SRC DEST|-  or  [-a] [-L] SRC|- CONTAINER:DEST",
                          flags: [Flag(["a", "archive"], "keep the source's owners (uid and gid); without it, what is copied belongs to the destination's user"),
                                  Flag(["L", "follow-link"], "follow the source path's own symlink (inside the container when it is there)")]) { p, g in
    guard p.positionals.count == 2 else {
        throw Failure(.usage, "cp needs a source and a destination, one of them CONTAINER:PATH (see 'minicontainer cp --help')")
    }
    let src = copyOperand(p.positionals[0]), dst = copyOperand(p.positionals[1])
    if src.container != nil && dst.container != nil {
        throw Failure(.usage, "cp: copying between containers is not supported")
    }
    guard let ref = src.container ?? dst.container else {
        throw Failure(.usage, "cp: one of the source and the destination must be CONTAINER:PATH")
    }
    let into = dst.container != nil
    let inside = into ? dst.path : src.path
    let host = into ? src.path : dst.path
    guard !inside.isEmpty, !host.isEmpty else { throw Failure(.usage, "cp: empty path") }
    let c = containers(g)
    return try docker(ref) {
        let id = try c.resolve(ref)
        // Paths in the container are absolute; a relative one starts at its root, as Docker's.
        var req = CopyRequest(intoContainer: into, containerPath: Path.isAbsolute(inside) ? inside : "/" + inside,
                              hostPath: host == "-" ? nil : host)
        req.archive = p.bool("archive")
        req.follow = p.bool("follow-link")
        try c.copy(id, name: ref, req)
        return 0
    }
}
