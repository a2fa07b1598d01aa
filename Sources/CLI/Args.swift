// The argv parser: runc's syntax (`--flag value`, `--flag=value`, single-dash
// long names as urfave/cli takes them, `-it` clusters of short booleans, `--`
// ending the flags). A library, so tests parse argv without spawning.

import Sys

public struct Flag {
    /// All spellings without dashes: ["e", "env"]. The first long one is the key.
    public var names: [String]
    public var value: String?  // the value's name in help; nil for a boolean
    public var help: String
    public var repeats = false

    public init(_ names: [String], value: String? = nil, _ help: String, repeats: Bool = false) {
        self.names = names
        self.value = value
        self.help = help
        self.repeats = repeats
    }

    public var key: String { names.first(where: { $0.count > 1 }) ?? names[0] }
    var takesValue: Bool { value != nil }

    var display: String {
        let spelled = names.map { $0.count == 1 ? "-" + $0 : "--" + $0 }.joined(separator: ", ")
        return value.map { spelled + " " + $0 } ?? spelled
    }
}

public struct Parsed {
    public var values: [String: [String]] = [:]
    public var positionals: [String] = []

    public func string(_ key: String) -> String? { values[key]?.last }
    public func strings(_ key: String) -> [String] { values[key] ?? [] }
    public func bool(_ key: String) -> Bool {
        guard let v = values[key]?.last else { return false }
        return v != "false"
    }
    public func has(_ key: String) -> Bool { values[key] != nil }
}

/// Parses `args` against `flags`. With `stopAtPositional`, the first
/// positional ends the flags (everything after it is positional), as for a
/// command to run inside a container.
public func parseArgs(_ args: [String], flags: [Flag], stopAtPositional: Bool, context: String) throws -> Parsed {
    var out = Parsed()
    var i = 0
    func find(_ name: String) -> Flag? { flags.first { $0.names.contains(name) } }
    func unknown(_ spelled: String) -> Failure {
        context.isEmpty
            ? Failure(.usage, "unknown global flag \(spelled) (see 'minicontainer --help')")
            : Failure(.usage, "unknown flag \(spelled) (see 'minicontainer \(context) --help')")
    }
    // Every occurrence is kept; single-valued flags read the last (the last
    // one wins, as with urfave/cli).
    func record(_ f: Flag, _ v: String, _ spelled: String) throws {
        out.values[f.key, default: []].append(v)
    }
    while i < args.count {
        let a = args[i]
        if a == "--" {
            out.positionals.append(contentsOf: args[(i + 1)...])
            break
        }
        if !a.hasPrefix("-") || a == "-" {
            if stopAtPositional {
                out.positionals.append(contentsOf: args[i...])
                break
            }
            out.positionals.append(a)
            i += 1
            continue
        }
        var body = Substring(a.drop(while: { $0 == "-" }))
        var inline: String?
        if let eq = body.firstIndex(of: "=") {
            inline = String(body[body.index(after: eq)...])
            body = body[..<eq]
        }
        let name = String(body)
        if let f = find(name), a.hasPrefix("--") || name.count == 1 || f.names.contains(name) {
            if f.takesValue {
                if let v = inline {
                    try record(f, v, a)
                } else {
                    guard i + 1 < args.count else { throw Failure(.usage, "flag \(a) needs a value (\(f.value!))") }
                    i += 1
                    try record(f, args[i], a)
                }
            } else {
                if let v = inline, v != "true" && v != "false" {
                    throw Failure(.usage, "flag \(a.split(separator: "=")[0]) takes no value (true or false at most)")
                }
                try record(f, inline ?? "true", a)
            }
            i += 1
            continue
        }
        // A cluster of single-letter flags: -it, -dit, -eFOO=bar.
        if !a.hasPrefix("--") && name.count > 1 {
            var chars = Array(a.dropFirst())
            var j = 0
            var consumedNext = false
            while j < chars.count {
                guard let f = find(String(chars[j])), f.names.contains(where: { $0.count == 1 }) else { throw unknown(a) }
                if f.takesValue {
                    let rest = String(chars[(j + 1)...])
                    if !rest.isEmpty {
                        try record(f, rest.hasPrefix("=") ? String(rest.dropFirst()) : rest, a)
                    } else {
                        guard i + 1 < args.count else { throw Failure(.usage, "flag -\(chars[j]) needs a value (\(f.value!))") }
                        try record(f, args[i + 1], a)
                        consumedNext = true
                    }
                    chars = []
                    break
                }
                try record(f, "true", a)
                j += 1
            }
            i += consumedNext ? 2 : 1
            continue
        }
        throw unknown(a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a)
    }
    return out
}

/// Suggests the closest known word, for "did you mean" hints.
public func closest(_ word: String, in candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var prev = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var cur = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                cur[j + 1] = min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca == cb ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let w = Array(word)
    let best = candidates.map { ($0, distance(w, Array($0))) }.min { $0.1 < $1.1 }
    guard let b = best, b.1 <= max(2, word.count / 3) else { return nil }
    return b.0
}
