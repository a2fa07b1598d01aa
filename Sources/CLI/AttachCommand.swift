import Engine
import Glibc
import Spec
import Sys

// `attach CONTAINER`: this terminal on a detached container's (run -dit),
// through its monitor (Engine/Attach.swift), until the detach keys (exit 0,
// the container runs on) or the container's exit (its code). A container
// without a terminal has its stdout and stderr streamed.

let attachCommand = Command(name: "attach", summary: "connect this terminal to a detached container (Ctrl-P Ctrl-Q detaches)",
                            usage: "[--detach-keys KEYS] CONTAINER",
                            flags: [Flag(["detach-keys"], value: "KEYS", "the keys that detach, as Docker's: ctrl-p,ctrl-q (the default), ctrl-x,y; \"\" for none")]) { p, g in
    let ref = try oneID(p, "attach")
    let spelled = p.string("detach-keys") ?? "ctrl-p,ctrl-q"
    guard let keys = parseDetachKeys(spelled) else {
        throw Failure(.usage, "attach: --detach-keys \(quoted(spelled)): keys are one character or ctrl-a to ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_, separated by commas")
    }
    let c = containers(g)
    return try docker(ref) {
        try c.attach(try c.resolve(ref), name: ref, detachKeys: keys)
    }
}
