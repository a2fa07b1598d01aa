// libFuzzer target: an argv (the input split at NUL bytes) through what
// runCLI does with it before a command runs: the global flags, the command
// looked up (with its "did you mean"), its flags parsed with its real table
// (parseArgs); then the pure parts of the commands: the run flags compiled
// against a made-up Host (spec, run --rootfs), create's options, update's
// limits, kill's signal, events' interval. No command runs and nothing
// touches the system (update's --resources, a file, is dropped).

import Compile
import FuzzSupport
import Spec
import Sys
@testable import CLI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let args = argv(data, size)
    let i = commandIndex(args)
    _ = try? parseArgs(Array(args[..<i]), flags: globalFlags, stopAtPositional: false, context: "")
    guard i < args.count else { return 0 }
    let name = args[i]
    guard let cmd = commands.first(where: { $0.name == name }) else {
        _ = closest(name, in: commands.map { $0.name })
        return 0
    }
    let rest = Array(args[(i + 1)...])
    guard var p = try? parseArgs(rest, flags: cmd.flags, stopAtPositional: cmd.stopAtPositional, context: cmd.name) else {
        return 0
    }
    _ = try? oneID(p, cmd.name)
    switch cmd.name {
    case "spec", "run":
        if cmd.name == "run" && !p.has("rootfs") {
            _ = try? createOptions(p, id: p.positionals.first ?? "c")
            return 0
        }
        let flags = runFlags(from: p, command: cmd.name == "spec" ? p.positionals : p.positionals)
        if let spec = try? compile(flags, host: fakeHost) {
            // What spec writes, create must take: compiled flags pass
            // create's validation (every host path exists here).
            if let problem = spec.problems(bundle: "/fuzz/bundle", exists: { _ in true }).first {
                fatalError("compile gave a spec that create refuses: \(problem)")
            }
        }
    case "create":
        _ = try? createOptions(p, id: p.positionals.first ?? "c")
    case "update":
        p.values["resources"] = nil
        _ = try? updateResources(p)
    case "kill":
        if p.positionals.count == 2 { _ = Signal.parse(p.positionals[1]) }
    case "events":
        _ = parseDuration(p.string("interval") ?? "5s")
    case "exec":
        _ = try? intFlag(p, "preserve-fds")
        _ = execCapabilities(nil, adding: p.strings("cap"))
    default:
        break
    }
    return 0
}

@main
struct Main {
    static func main() { runFuzzer(fuzz) }
}
