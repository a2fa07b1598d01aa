import JSON
import Spec
import Sys

// `--format TEMPLATE` of ps, images, inspect and stats: the subset of Go's
// text/template that scripts written for Docker and podman use, evaluated
// over the JSONValue tree a command builds for each row.
//
//   {{.Field}} {{.State.Pid}}          fields, nested
//   {{json .}} {{json .Config}}        compact JSON
//   {{index .Labels "k"}}              a map's value ("" when absent)
//   {{join .Names ","}} {{len .Args}} {{lower .X}} {{upper .X}}
//   {{if PIPE}}..{{else}}..{{end}}     with eq, ne, not, and, or
//   {{range PIPE}}..{{end}}            over an array or a map's values
//   {{with PIPE}}..{{end}}
//   {{.X | json}}                      pipes; {{- and -}} trim spaces
//   table ...                          a header row, columns aligned
//
// Values print as Go prints them: `[a b]` for arrays, `map[k:v]` for maps,
// `{v1 v2}` for the objects that stand for Go structs. Which objects are
// maps (their keys are data: Labels, Ports) and which are structs (their
// keys are fields) matters to Go: a missing key of a map prints
// `<no value>`, a missing field of a struct is an error, podman's:
// `template: ps:1:2: executing "ps" at <.Bogus>: can't evaluate field Bogus
// in type container`. Positions are Go's (line, 0-based byte in the line)
// over the template as given.

/// A parsed template: its name for errors ("ps", "inspect"), and the nodes.
struct Template {
    /// One element of a command: a field chain, a literal, a function name
    /// or a parenthesised pipeline.
    indirect enum Operand {
        /// `.A.B` (components ["A", "B"]); `.` is [].
        case field([String])
        case string(String)
        case number(Double)
        case bool(Bool)
        case function(String)
        case pipeline(Pipeline)
    }

    /// Operands of one command: a function and its arguments, or one value.
    struct Command {
        var operands: [Operand]
    }

    /// Commands joined by `|`: each one's value is the last argument of the next.
    struct Pipeline {
        var commands: [Command]
        /// The action's text, for errors (`<index .Labels "k">`).
        var text: String
        /// Byte offset in the template, for errors.
        var pos: Int
    }

    indirect enum Node {
        case text(String)
        case action(Pipeline)
        case ifNode(Pipeline, [Node], [Node])
        case range(Pipeline, [Node], [Node])
        case with(Pipeline, [Node], [Node])
    }

    let name: String
    let source: [UInt8]
    var nodes: [Node] = []

    static let functions: Set<String> = ["json", "index", "join", "len", "lower", "upper", "eq", "ne", "not", "and", "or"]

    /// Parses `text`; a syntax error is Go's message, e.g.
    /// `template: ps:1: unclosed action`.
    init(_ text: String, name: String) throws {
        self.name = name
        source = Array(text.utf8)
        var p = TemplateParser(template: self)
        nodes = try p.parseAll()
    }
}

/// A value as the template sees it: the JSON, whether an object is a map
/// (else a struct), and the type name errors give.
struct TemplateValue {
    var json: JSONValue
    var isMap: Bool
    var typeName: String
    /// A map's missing key: prints `<no value>`.
    var missing = false

    static func root(_ v: JSONValue, typeName: String) -> TemplateValue {
        TemplateValue(json: v, isMap: false, typeName: typeName)
    }
}

/// What a template runs with: the type of `.` for errors, and the keys whose
/// objects are maps.
struct TemplateContext {
    var rootType: String
    var mapKeys: Set<String> = TemplateContext.defaultMapKeys
    static let defaultMapKeys: Set<String> = ["Labels", "Annotations", "Ports", "PortBindings", "ExposedPorts", "Volumes",
                                              "Networks", "Options", "DriverOpts", "Data"]
}

extension Template {
    /// A syntax error, as Go words one: `template: NAME:LINE: ...`.
    func failure(_ pos: Int, _ message: String) -> Failure {
        let line = 1 + source[..<min(pos, source.count)].filter { $0 == 10 }.count
        return Failure(.invalid, "template: \(name):\(line): \(message)")
    }

    /// An execution error: `template: NAME:LINE:COL: executing "NAME" at
    /// <ACTION>: ...`, the column 0-based from the line's start, as Go's.
    func execFailure(_ p: Pipeline, _ message: String) -> Failure {
        let before = source[..<min(p.pos, source.count)]
        let line = 1 + before.filter { $0 == 10 }.count
        let col = before.lastIndex(of: 10).map { p.pos - $0 - 1 } ?? p.pos
        return Failure(.invalid, "template: \(name):\(line):\(col): executing \"\(name)\" at <\(p.text)>: \(message)")
    }

    /// The nodes run against `dot`.
    func render(_ dot: TemplateValue, _ ctx: TemplateContext) throws -> String {
        var out = ""
        try run(nodes, dot, ctx, into: &out)
        return out
    }

    /// The header row of a table: each action is replaced by the name of the
    /// field it shows (`CreatedAt` -> `CREATED AT`, or `headers[field]`).
    func header(_ headers: [String: String]) -> String {
        var out = ""
        func walk(_ nodes: [Node]) {
            for n in nodes {
                switch n {
                case .text(let s): out += s
                case .action(let p): out += Template.headerName(p, headers)
                case .ifNode(_, let a, _), .range(_, let a, _), .with(_, let a, _): walk(a)
                }
            }
        }
        walk(nodes)
        return out
    }

    static func headerName(_ p: Pipeline, _ headers: [String: String]) -> String {
        func firstField(_ ops: [Operand]) -> [String]? {
            for o in ops {
                if case .field(let f) = o { return f }
                if case .pipeline(let q) = o, let f = q.commands.first.flatMap({ firstField($0.operands) }) { return f }
            }
            return nil
        }
        guard let f = p.commands.first.flatMap({ firstField($0.operands) }), let last = f.last else { return "" }
        return headers[last] ?? splitCamel(last).uppercased()
    }

    /// "CreatedAt" -> "Created At", "CPUPerc" -> "CPU Perc", "ID" -> "ID".
    static func splitCamel(_ s: String) -> String {
        let c = Array(s)
        var out = ""
        for (i, ch) in c.enumerated() {
            if i > 0, ch.isUppercase, c[i - 1].isLowercase || (i + 1 < c.count && c[i + 1].isLowercase && c[i - 1].isUppercase) {
                out += " "
            }
            out.append(ch)
        }
        return out
    }

    private func run(_ nodes: [Node], _ dot: TemplateValue, _ ctx: TemplateContext, into out: inout String) throws {
        for n in nodes {
            switch n {
            case .text(let s):
                out += s
            case .action(let p):
                out += Template.show(try eval(p, dot, ctx))
            case .ifNode(let p, let a, let b):
                try run(Template.truth(try eval(p, dot, ctx)) ? a : b, dot, ctx, into: &out)
            case .with(let p, let a, let b):
                let v = try eval(p, dot, ctx)
                if Template.truth(v) { try run(a, v, ctx, into: &out) } else { try run(b, dot, ctx, into: &out) }
            case .range(let p, let a, let b):
                let v = try eval(p, dot, ctx)
                var items: [TemplateValue] = []
                switch v.json {
                case .array(let xs):
                    items = xs.map { TemplateValue(json: $0, isMap: false, typeName: Template.kind($0)) }
                case .object(let o) where v.isMap:
                    items = o.keys.sorted().map { TemplateValue(json: o[$0]!, isMap: false, typeName: Template.kind(o[$0]!)) }
                case .null:
                    items = []
                default:
                    throw execFailure(p, "range can't iterate over \(Template.show(v))")
                }
                if items.isEmpty { try run(b, dot, ctx, into: &out) }
                for item in items { try run(a, item, ctx, into: &out) }
            }
        }
    }

    private func eval(_ p: Pipeline, _ dot: TemplateValue, _ ctx: TemplateContext) throws -> TemplateValue {
        var last: TemplateValue? = nil
        for c in p.commands {
            last = try evalCommand(c, dot, ctx, p, piped: last)
        }
        return last!
    }

    private func evalOperand(_ o: Operand, _ dot: TemplateValue, _ ctx: TemplateContext, _ p: Pipeline) throws -> TemplateValue {
        switch o {
        case .field(let path): return try field(path, dot, ctx, p)
        case .string(let s): return TemplateValue(json: .string(s), isMap: false, typeName: "string")
        case .number(let d): return TemplateValue(json: Int64(exactly: d).map { .int($0) } ?? .double(d), isMap: false, typeName: "int")
        case .bool(let b): return TemplateValue(json: .bool(b), isMap: false, typeName: "bool")
        case .pipeline(let q): return try eval(q, dot, ctx)
        case .function(let f): return try call(f, [], p)
        }
    }

    private func evalCommand(_ c: Command, _ dot: TemplateValue, _ ctx: TemplateContext, _ p: Pipeline, piped: TemplateValue?) throws -> TemplateValue {
        if case .function(let f) = c.operands[0] {
            var args = try c.operands.dropFirst().map { try evalOperand($0, dot, ctx, p) }
            if let v = piped { args.append(v) }
            return try call(f, args, p)
        }
        guard c.operands.count == 1, piped == nil else {
            throw execFailure(p, "can't give argument to non-function \(Template.operandText(c.operands[0]))")
        }
        return try evalOperand(c.operands[0], dot, ctx, p)
    }

    private func field(_ path: [String], _ dot: TemplateValue, _ ctx: TemplateContext, _ p: Pipeline) throws -> TemplateValue {
        var v = dot
        for k in path {
            if v.missing { throw execFailure(p, "nil pointer evaluating interface {}.\(k)") }
            guard case .object(let o) = v.json else {
                throw execFailure(p, "can't evaluate field \(k) in type \(v.typeName)")
            }
            if let x = o[k] {
                v = TemplateValue(json: x, isMap: ctx.mapKeys.contains(k), typeName: Template.typeName(k, x))
            } else if v.isMap {
                v = TemplateValue(json: .null, isMap: false, typeName: "interface {}", missing: true)
            } else {
                throw execFailure(p, "can't evaluate field \(k) in type \(v.typeName)")
            }
        }
        return v
    }

    private func call(_ f: String, _ args: [TemplateValue], _ p: Pipeline) throws -> TemplateValue {
        func value(_ j: JSONValue) -> TemplateValue { TemplateValue(json: j, isMap: false, typeName: Template.kind(j)) }
        func need(_ n: Int) throws {
            if args.count != n { throw execFailure(p, "error calling \(f): wrong number of args for \(f): want \(n) got \(args.count)") }
        }
        switch f {
        case "json":
            try need(1)
            return value(.string(args[0].missing ? "null" : args[0].json.compact()))
        case "index":
            guard var v = args.first else { throw execFailure(p, "error calling index: wrong number of args for index: want at least 1 got 0") }
            for k in args.dropFirst() {
                switch (v.json, k.json) {
                case (.object(let o), .string(let key)):
                    v = o[key].map { TemplateValue(json: $0, isMap: false, typeName: Template.kind($0)) } ?? value(.string(""))
                case (.array(let a), .int(let i)):
                    guard i >= 0, i < a.count else { throw execFailure(p, "error calling index: index out of range: \(i)") }
                    v = value(a[Int(i)])
                case (.null, _):
                    v = value(.string(""))
                case (.array, _):
                    throw execFailure(p, "error calling index: cannot index slice/array with type \(k.typeName)")
                default:
                    throw execFailure(p, "error calling index: can't index item of type \(v.typeName)")
                }
            }
            return v
        case "join":
            try need(2)
            guard case .array(let a) = args[0].json, case .string(let sep) = args[1].json else {
                throw execFailure(p, "error calling join: wrong type for value; expected []string")
            }
            return value(.string(a.map { Template.show(value($0)) }.joined(separator: sep)))
        case "len":
            try need(1)
            switch args[0].json {
            case .array(let a): return value(.int(Int64(a.count)))
            case .object(let o): return value(.int(Int64(o.count)))
            case .string(let s): return value(.int(Int64(s.utf8.count)))
            default: throw execFailure(p, "error calling len: len of type \(args[0].typeName)")
            }
        case "lower", "upper":
            try need(1)
            let s = Template.show(args[0])
            return value(.string(f == "lower" ? s.lowercased() : s.uppercased()))
        case "eq", "ne":
            try need(2)
            let same = Template.show(args[0]) == Template.show(args[1]) && Template.kind(args[0].json) == Template.kind(args[1].json)
            return value(.bool(f == "eq" ? same : !same))
        case "not":
            try need(1)
            return value(.bool(!Template.truth(args[0])))
        case "and":
            return args.first(where: { !Template.truth($0) }) ?? args.last ?? value(.bool(true))
        case "or":
            return args.first(where: { Template.truth($0) }) ?? args.last ?? value(.bool(false))
        default:
            throw execFailure(p, "function \"\(f)\" not defined")
        }
    }

    /// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
    static func truth(_ v: TemplateValue) -> Bool {
        if v.missing { return false }
        switch v.json {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .uint(let u): return u != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return o.count > 0 || !v.isMap
        }
    }

    /// Go's name for the type of a value that is not a struct.
    static func kind(_ v: JSONValue) -> String {
        switch v {
        case .null: return "interface {}"
        case .bool: return "bool"
        case .int, .uint: return "int"
        case .double: return "float64"
        case .string: return "string"
        case .array: return "[]interface {}"
        case .object: return "map[string]interface {}"
        }
    }

    /// A struct is named after the field that holds it (State, Config).
    static func typeName(_ key: String, _ v: JSONValue) -> String {
        if case .object = v { return key }
        return kind(v)
    }

    /// A value as Go's fmt prints it with %v.
    static func show(_ v: TemplateValue) -> String {
        if v.missing { return "<no value>" }
        return show(v.json, isMap: v.isMap)
    }

    static func show(_ j: JSONValue, isMap: Bool = false) -> String {
        switch j {
        case .null: return "<nil>"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double(let d):
            if d.isFinite, abs(d) < 1e21, let i = Int64(exactly: d) { return String(i) }
            return String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map { show($0) }.joined(separator: " ") + "]"
        case .object(let o):
            if isMap { return "map[" + o.keys.sorted().map { $0 + ":" + show(o[$0]!) }.joined(separator: " ") + "]" }
            return "{" + o.entries.map { show($0.value) }.joined(separator: " ") + "}"
        }
    }

    static func operandText(_ o: Operand) -> String {
        switch o {
        case .field(let f): return f.isEmpty ? "." : f.map { "." + $0 }.joined()
        case .string(let s): return JSONValue.string(s).compact()
        case .number(let d): return show(.double(d))
        case .bool(let b): return b ? "true" : "false"
        case .function(let f): return f
        case .pipeline(let p): return "(" + p.text + ")"
        }
    }
}

/// The recursive-descent parser of Template: text, `{{ }}` actions with
/// their trim markers, and the if/range/with blocks closed by `end`.
struct TemplateParser {
    let t: Template
    let s: [UInt8]
    var i = 0

    init(template: Template) {
        t = template
        s = template.source
    }

    /// What ended a list of nodes.
    enum Stop { case eof, end, elseBranch, elseIf(Template.Pipeline) }

    mutating func parseAll() throws -> [Template.Node] {
        let (nodes, stop) = try parseList()
        switch stop {
        case .eof: return nodes
        case .end: throw t.failure(i, "unexpected {{end}}")
        case .elseBranch, .elseIf: throw t.failure(i, "unexpected {{else}}")
        }
    }

    /// The body of an if, range or with opened at `open`, and its else
    /// branch (`{{else if X}}` is an if inside it, closed by the same end).
    mutating func block(_ open: Int) throws -> ([Template.Node], [Template.Node]) {
        let (a, stop) = try parseList()
        switch stop {
        case .eof: throw t.failure(open, "unexpected EOF")
        case .end: return (a, [])
        case .elseBranch:
            let (b, stop2) = try parseList()
            guard case .end = stop2 else { throw t.failure(open, "expected end; found {{else}}") }
            return (a, b)
        case .elseIf(let p):
            let (a2, b2) = try block(open)
            return (a, [.ifNode(p, a2, b2)])
        }
    }

    /// Nodes up to the end of input, `{{end}}` or `{{else}}`.
    mutating func parseList() throws -> ([Template.Node], Stop) {
        var nodes: [Template.Node] = []
        var text: [UInt8] = []
        func flush() {
            if !text.isEmpty { nodes.append(.text(String(decoding: text, as: UTF8.self))) }
            text = []
        }
        while i < s.count {
            guard s[i] == 123, i + 1 < s.count, s[i + 1] == 123 else {
                text.append(s[i]); i += 1
                continue
            }
            // {{- trims the spaces before.
            let open = i
            i += 2
            if i + 1 < s.count, s[i] == 45, isSpace(s[i + 1]) {
                while let l = text.last, isSpace(l) { text.removeLast() }
                i += 1
            }
            flush()
            skipSpaces()
            let wordStart = i
            let word = identifier()
            switch word {
            case "end":
                try close(open)
                return (nodes, .end)
            case "else":
                skipSpaces()
                if peekWord() == "if" {
                    _ = identifier()
                    return (nodes, .elseIf(try pipeline(until: open)))
                }
                try close(open)
                return (nodes, .elseBranch)
            case "if", "range", "with":
                let p = try pipeline(until: open)
                let (a, b) = try block(open)
                nodes.append(word == "if" ? .ifNode(p, a, b) : word == "range" ? .range(p, a, b) : .with(p, a, b))
            default:
                i = wordStart
                if i + 1 < s.count, s[i] == 47, s[i + 1] == 42 {
                    // {{/* a comment */}}
                    guard let e = find("*/", from: i + 2) else { throw t.failure(open, "unclosed comment") }
                    i = e + 2
                    try close(open)
                    continue
                }
                nodes.append(.action(try pipeline(until: open)))
            }
        }
        flush()
        return (nodes, .eof)
    }

    func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 10 || c == 13 }

    mutating func skipSpaces() { while i < s.count, isSpace(s[i]) { i += 1 } }

    func find(_ needle: String, from: Int) -> Int? {
        let n = Array(needle.utf8)
        var j = from
        while j + n.count <= s.count {
            if Array(s[j..<(j + n.count)]) == n { return j }
            j += 1
        }
        return nil
    }

    func isIdent(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 95 }

    mutating func identifier() -> String {
        let st = i
        while i < s.count, isIdent(s[i]) { i += 1 }
        return String(decoding: s[st..<i], as: UTF8.self)
    }

    func peekWord() -> String {
        var j = i
        while j < s.count, isIdent(s[j]) { j += 1 }
        return String(decoding: s[i..<j], as: UTF8.self)
    }

    /// At `}}` (or ` -}}`, which trims the spaces after): past it.
    mutating func close(_ open: Int) throws {
        skipSpaces()
        if i < s.count, s[i] == 45, i + 2 < s.count, s[i + 1] == 125, s[i + 2] == 125, i > 0, isSpace(s[i - 1]) {
            i += 3
            while i < s.count, isSpace(s[i]) { i += 1 }
            return
        }
        guard i + 1 < s.count, s[i] == 125, s[i + 1] == 125 else {
            if i >= s.count { throw t.failure(open, "unclosed action") }
            throw t.failure(i, "unexpected \(quoted(String(decoding: [s[i]], as: UTF8.self))) in command")
        }
        i += 2
    }

    /// A pipeline, then the action's close.
    mutating func pipeline(until open: Int) throws -> Template.Pipeline {
        skipSpaces()
        let start = i
        var p = try pipe(depth: 0)
        let end = i
        try close(open)
        var textEnd = end
        while textEnd > start, isSpace(s[textEnd - 1]) { textEnd -= 1 }
        p.text = String(decoding: s[start..<textEnd], as: UTF8.self)
        p.pos = start
        return p
    }

    /// Commands separated by `|`, up to `}}`, ` -}}` or `)`.
    mutating func pipe(depth: Int) throws -> Template.Pipeline {
        var commands: [Template.Command] = []
        var ops: [Template.Operand] = []
        let start = i
        while true {
            skipSpaces()
            guard i < s.count else { throw t.failure(start, "unclosed action") }
            let c = s[i]
            if c == 125 || (c == 45 && i + 1 < s.count && s[i + 1] == 125) || c == 41 {
                if c == 41 && depth == 0 { throw t.failure(i, "unexpected \")\" in command") }
                break
            }
            if c == 124 {
                guard !ops.isEmpty else { throw t.failure(i, "missing value for command") }
                commands.append(Template.Command(operands: ops)); ops = []
                i += 1
                continue
            }
            ops.append(try operand(depth: depth))
        }
        guard !ops.isEmpty else { throw t.failure(start, "missing value for command") }
        commands.append(Template.Command(operands: ops))
        for c in commands.dropFirst() {
            if case .function = c.operands[0] { continue }
            throw t.failure(start, "non executable command in pipeline stage 2")
        }
        return Template.Pipeline(commands: commands, text: "", pos: start)
    }

    mutating func operand(depth: Int) throws -> Template.Operand {
        let c = s[i]
        if c == 46 {
            // . or .A.B
            var path: [String] = []
            while i < s.count, s[i] == 46 {
                i += 1
                let w = identifier()
                if w.isEmpty {
                    if path.isEmpty { break }
                    throw t.failure(i, "unexpected . after term")
                }
                path.append(w)
            }
            return .field(path)
        }
        if c == 34 || c == 96 {
            return .string(try stringLiteral())
        }
        if c == 40 {
            i += 1
            let st = i
            var q = try pipe(depth: depth + 1)
            guard i < s.count, s[i] == 41 else { throw t.failure(st, "unclosed left paren") }
            q.text = String(decoding: s[st..<i], as: UTF8.self)
            i += 1
            return .pipeline(q)
        }
        if (c >= 48 && c <= 57) || c == 45 {
            let st = i
            i += 1
            while i < s.count, (s[i] >= 48 && s[i] <= 57) || s[i] == 46 { i += 1 }
            let txt = String(decoding: s[st..<i], as: UTF8.self)
            guard let d = Double(txt) else { throw t.failure(st, "bad number syntax: \(quoted(txt))") }
            return .number(d)
        }
        if isIdent(c) {
            let st = i
            let w = identifier()
            if w == "true" || w == "false" { return .bool(w == "true") }
            guard Template.functions.contains(w) else { throw t.failure(st, "function \(quoted(w)) not defined") }
            return .function(w)
        }
        if c == 36 { throw t.failure(i, "variables are not supported") }
        throw t.failure(i, "unexpected \(quoted(String(decoding: [c], as: UTF8.self))) in operand")
    }

    /// "..." with Go's escapes, or `raw`.
    mutating func stringLiteral() throws -> String {
        let q = s[i]
        let st = i
        i += 1
        var out: [UInt8] = []
        while i < s.count, s[i] != q {
            if q == 34, s[i] == 92, i + 1 < s.count {
                i += 1
                switch s[i] {
                case 110: out.append(10)
                case 116: out.append(9)
                case 114: out.append(13)
                case 92: out.append(92)
                case 34: out.append(34)
                default: out.append(92); out.append(s[i])
                }
            } else {
                if s[i] == 10 && q == 34 { break }
                out.append(s[i])
            }
            i += 1
        }
        guard i < s.count, s[i] == q else { throw t.failure(st, "unterminated quoted string") }
        i += 1
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - --format as the commands take it

/// How a command's `--format` prints its rows.
struct RowFormat {
    /// The template's name in errors (ps, images, inspect, stats).
    var name: String
    /// The type of a row in errors.
    var rowType: String
    /// Header names that differ from the field's (ID -> CONTAINER ID).
    var headers: [String: String] = [:]
    /// inspect ignores `table` (prints no header, as podman).
    var tables = true

    /// Whether `format` is a template rather than a named format (table, json).
    static func isTemplate(_ format: String) -> Bool { format.contains("{{") }

    /// The rows through `format` (a Go template, with `table` or not); `\t`
    /// and `\n` written as two characters are a tab and a newline, as
    /// podman reads them. Every row ends with a newline.
    func render(_ format: String, _ rows: [JSONValue]) throws -> String {
        var f = format
        var table = false
        if f.hasPrefix("table") {
            f = String(f.dropFirst(5))
            while f.first == " " { f.removeFirst() }
            table = tables
        }
        f = RowFormat.unescape(f)
        if table {
            // podman: in a table, every space between actions is a column break.
            f = RowFormat.spacesToTabs(f)
        }
        if !f.hasSuffix("\n") { f += "\n" }
        let t = try Template(f, name: name)
        let ctx = TemplateContext(rootType: rowType)
        var out = table ? t.header(headers) : ""
        for r in rows { out += try t.render(.root(r, typeName: rowType), ctx) }
        return table ? RowFormat.align(out) : out
    }

    /// `\t` and `\n` (backslash and letter) as the characters.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            guard c == "\\" else { out.append(c); continue }
            switch it.next() {
            case "t"?: out.append("\t")
            case "n"?: out.append("\n")
            case let x?: out.append("\\"); out.append(x)
            case nil: out.append("\\")
            }
        }
        return out
    }

    /// Spaces outside `{{ }}` become tabs.
    static func spacesToTabs(_ s: String) -> String {
        var out = ""
        var depth = 0
        let c = Array(s)
        var i = 0
        while i < c.count {
            if c[i] == "{", i + 1 < c.count, c[i + 1] == "{" { depth += 1; out += "{{"; i += 2; continue }
            if c[i] == "}", i + 1 < c.count, c[i + 1] == "}", depth > 0 { depth -= 1; out += "}}"; i += 2; continue }
            out.append(depth == 0 && c[i] == " " ? "\t" : c[i])
            i += 1
        }
        return out
    }

    /// Go's tabwriter as podman sets it up (minimum width 12, padding 2):
    /// each tab-terminated cell is padded to its column's width; the last
    /// cell of a line is not.
    static func align(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        var widths: [Int] = []
        for l in lines {
            for (i, cell) in l.dropLast().enumerated() {
                if i >= widths.count { widths.append(0) }
                widths[i] = max(widths[i], cell.count)
            }
        }
        var out: [String] = []
        for l in lines {
            var s = ""
            for (i, cell) in l.enumerated() {
                if i == l.count - 1 { s += cell; break }
                let w = max(12, widths[i] + 2)
                s += cell + String(repeating: " ", count: w - cell.count)
            }
            out.append(s)
        }
        return out.joined(separator: "\n")
    }
}
