import Engine
import Glibc
import Image
import Spec
import Sys

// Shell completion and man pages, generated from the command table (the
// commands, their flags, their help), so neither can drift from what the
// parser accepts. `completion bash|zsh|fish` prints a script; the scripts ask
// `minicontainer __complete containers|images` for names (a hidden command:
// one name a line, nothing else). `make man` runs the hidden `__man DIR`.

/// The commands that take container references, and those that take images.
let containerCommands: Set<String> = ["start", "restart", "stop", "rm", "logs", "inspect", "exec", "kill", "pause", "resume",
                                      "state", "delete", "update", "events", "attach", "cp", "port", "top", "stats", "wait", "rename"]
let imageCommands: Set<String> = ["rmi", "tag", "save", "run"]

/// Spellings of a command's flags: `-d --detach`.
func spellings(_ flags: [Flag]) -> [String] {
    flags.flatMap { f in f.names.map { $0.count == 1 ? "-" + $0 : "--" + $0 } }
}

/// The commands shown to people (hidden ones start with "__").
var visibleCommands: [Command] { commands.filter { !$0.name.hasPrefix("__") } }

/// Single-quoted for a shell: nothing in it is expanded.
func shellQuoted(_ s: String) -> String { "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }

func bashCompletion() -> String {
    // Names are matched by a loop, never given to `compgen -W`, which
    // expands $(...) and `...` in its word list: a name would run as code.
    var s = """
    # bash completion for minicontainer (minicontainer completion bash)
    _minicontainer_names() {
        local w
        COMPREPLY=()
        while IFS= read -r w; do
            [[ "$w" == "$1"* ]] && COMPREPLY+=("$w")
        done
    }
    _minicontainer() {
        local cur cmd i root=()
        cur="${COMP_WORDS[COMP_CWORD]}"
        cmd=""
        for ((i = 1; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
                --root) root=(--root "${COMP_WORDS[i+1]}"); ((i++)) ;;
                --root=*) root=("${COMP_WORDS[i]}") ;;
                --log|--log-format) ((i++)) ;;
                -*) ;;
                *) cmd="${COMP_WORDS[i]}"; break ;;
            esac
        done
        if [ -z "$cmd" ]; then
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W \(shellQuoted(spellings(globalFlags).joined(separator: " "))) -- "$cur"))
            else
                COMPREPLY=($(compgen -W \(shellQuoted(visibleCommands.map { $0.name }.joined(separator: " "))) -- "$cur"))
            fi
            return
        fi
        local flags=""
        case "$cmd" in

    """
    for c in visibleCommands where !c.flags.isEmpty {
        s += "        \(c.name)) flags=\(shellQuoted(spellings(c.flags).joined(separator: " "))) ;;\n"
    }
    s += """
        esac
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "$flags" -- "$cur"))
            return
        fi
        case "$cmd" in
            \(containerCommands.sorted().joined(separator: "|")))
                _minicontainer_names "$cur" < <(minicontainer "${root[@]}" __complete containers 2>/dev/null) ;;
            \(imageCommands.sorted().joined(separator: "|")))
                _minicontainer_names "$cur" < <(minicontainer "${root[@]}" __complete images 2>/dev/null) ;;
            completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
            help) COMPREPLY=($(compgen -W \(shellQuoted(visibleCommands.map { $0.name }.joined(separator: " "))) -- "$cur")) ;;
            *) COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
    }
    complete -F _minicontainer minicontainer

    """
    return s
}

func zshCompletion() -> String {
    // zsh runs bash completion functions through bashcompinit.
    "#compdef minicontainer\n# zsh completion for minicontainer (minicontainer completion zsh)\n"
        + "autoload -U +X bashcompinit && bashcompinit\n" + bashCompletion()
}

func fishCompletion() -> String {
    var s = "# fish completion for minicontainer (minicontainer completion fish)\n"
    s += "complete -c minicontainer -f\n"
    func fishQuoted(_ t: String) -> String {
        "'" + t.replacingAll("\\", "\\\\").replacingAll("'", "\\'") + "'"
    }
    for c in visibleCommands {
        s += "complete -c minicontainer -n '__fish_use_subcommand' -a \(c.name) -d \(fishQuoted(c.summary))\n"
        for f in c.flags {
            var line = "complete -c minicontainer -n '__fish_seen_subcommand_from \(c.name)'"
            for n in f.names { line += n.count == 1 ? " -s \(n)" : " -l \(n)" }
            if f.value != nil { line += " -r" }
            s += line + " -d \(fishQuoted(f.help))\n"
        }
    }
    s += "complete -c minicontainer -n '__fish_seen_subcommand_from \(containerCommands.sorted().joined(separator: " "))' -a '(minicontainer __complete containers 2>/dev/null)'\n"
    s += "complete -c minicontainer -n '__fish_seen_subcommand_from \(imageCommands.sorted().joined(separator: " "))' -a '(minicontainer __complete images 2>/dev/null)'\n"
    return s
}

extension String {
    /// Every `a` replaced by `b`.
    func replacingAll(_ a: String, _ b: String) -> String {
        guard !a.isEmpty, contains(a) else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of s: String) -> Range<Index>? {
        let n = s.count
        var i = startIndex
        while i != endIndex {
            if self[i...].hasPrefix(s) { return i..<index(i, offsetBy: n) }
            i = index(after: i)
        }
        return nil
    }
}

let completionCommand = Command(name: "completion", summary: "print a shell completion script: bash, zsh or fish",
                                usage: "bash|zsh|fish", flags: []) { p, _ in
    guard p.positionals.count == 1 else { throw Failure(.usage, "completion needs one shell: bash, zsh or fish") }
    switch p.positionals[0] {
    case "bash": writeStdout(bashCompletion())
    case "zsh": writeStdout(zshCompletion())
    case "fish": writeStdout(fishCompletion())
    case let other: throw Failure(.usage, "completion: no script for \(quoted(other)): bash, zsh or fish")
    }
    return 0
}

/// For the completion scripts: names and short ids of the containers, or
/// the images' references. Prints nothing on any error.
/// Only names made of these reach a shell: what a name may hold anyway
/// (the name and reference grammars), enforced again here, as the names
/// come from files a shell should not have to trust.
func safeForShell(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.count <= 256 && s.unicodeScalars.allSatisfy { c in
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "._-:/@".unicodeScalars.contains(c)
    }
}

let completeCommand = Command(name: "__complete", summary: "names for shell completion", usage: "containers|images", flags: []) { p, g in
    var names: [String] = []
    switch p.positionals.first {
    case "containers"?:
        for m in containers(g).mine() { names += [m.name, String(m.id.prefix(12))] }
    case "images"?:
        if let list = try? imageStore(g).list() {
            for i in list { names += i.references.map { displayName($0) } }
        }
    default: break
    }
    writeStdout(names.filter(safeForShell).map { $0 + "\n" }.joined())
    return 0
}

// Man pages (roff): minicontainer(1) lists the commands, and each command
// has minicontainer-NAME(1) with its usage and flags.

func roffEscaped(_ s: String) -> String {
    var t = s.replacingAll("\\", "\\e").replacingAll("-", "\\-")
    if t.hasPrefix(".") || t.hasPrefix("'") { t = "\\&" + t }
    return t
}

func manPage(_ c: Command) -> String {
    var s = ".TH MINICONTAINER\\-\(roffEscaped(c.name.uppercased())) 1 \"\" \"minicontainer \(version)\" \"minicontainer manual\"\n"
    s += ".SH NAME\nminicontainer\\-\(roffEscaped(c.name)) \\- \(roffEscaped(c.summary))\n"
    let parts = paragraphs(c.usage)
    s += ".SH SYNOPSIS\n.B minicontainer \(roffEscaped(c.name))\n\(roffEscaped(parts[0]))\n"
    s += ".SH DESCRIPTION\n\(roffEscaped(c.summary)).\n"
    for p in parts.dropFirst() { s += ".PP\n\(roffEscaped(p))\n" }
    if !c.flags.isEmpty {
        s += ".SH OPTIONS\n"
        for f in c.flags { s += ".TP\n.B \(roffEscaped(f.display))\n\(roffEscaped(f.help))\n" }
    }
    s += ".SH SEE ALSO\n.BR minicontainer (1)\n"
    return s
}

func mainManPage() -> String {
    var s = ".TH MINICONTAINER 1 \"\" \"minicontainer \(version)\" \"minicontainer manual\"\n"
    s += ".SH NAME\nminicontainer \\- a Linux container runtime: Docker\\-style by hand, runc\\-compatible for tools\n"
    s += ".SH SYNOPSIS\n.B minicontainer\n[global flags] COMMAND [flags] [arguments]\n"
    s += ".SH GLOBAL FLAGS\n"
    for f in globalFlags { s += ".TP\n.B \(roffEscaped(f.display))\n\(roffEscaped(f.help))\n" }
    s += ".SH COMMANDS\n"
    for c in visibleCommands { s += ".TP\n.BR minicontainer\\-\(roffEscaped(c.name)) (1)\n\(roffEscaped(c.summary))\n" }
    s += ".SH EXIT STATUS\n0 on success; 125 for an error of minicontainer itself; run returns the container's code (126: cannot execute, 127: not found, 128+N: killed by signal N).\n"
    return s
}

let manCommand = Command(name: "__man", summary: "write the man pages into a directory (make man)", usage: "DIR", flags: []) { p, _ in
    guard p.positionals.count == 1 else { throw Failure(.usage, "__man needs a directory") }
    let dir = FS.absolute(p.positionals[0])
    _ = try FS.makeDirectories(dir, mode: 0o755)
    try FS.writeAtomically(dir + "/minicontainer.1", mainManPage(), mode: 0o644)
    for c in visibleCommands { try FS.writeAtomically(dir + "/minicontainer-\(c.name).1", manPage(c), mode: 0o644) }
    return 0
}
