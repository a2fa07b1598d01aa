import Spec

// Docker's KEY=VALUE files (`--env-file`, `--label-file`): one entry a line,
// blank lines and lines starting with # skipped, leading whitespace trimmed,
// the value passed through untouched (quotes and trailing spaces included).

/// The entries of a KEY=VALUE file, in order: "KEY=VALUE", or "KEY" alone
/// for a line without "=" (the caller decides: --env-file takes the
/// caller's variable, --label-file an empty value). `flag` and `path` name
/// the file in the one-line error a bad line gives, with its line number.
public func parseKeyValueFile(_ text: String, flag: String, path: String) throws -> [String] {
    var out: [String] = []
    var number = 0
    // By scalars: as Characters, "\r\n" is one and would never split at "\n".
    var rest = Substring(text).unicodeScalars
    if rest.first == "\u{FEFF}" { rest = rest.dropFirst() }  // a UTF-8 byte order mark, as Docker drops it
    // Lines end at \n; a \r before it goes too (Go's bufio.ScanLines).
    for raw in rest.split(separator: "\n", omittingEmptySubsequences: false) {
        number += 1
        var line = raw
        if line.last == "\r" { line = line.dropLast() }
        line = line.drop(while: { $0 == " " || $0 == "\t" || $0 == "\u{0B}" || $0 == "\u{0C}" || $0 == "\r" })
        if line.isEmpty || line.first == "#" { continue }
        let name = line.firstIndex(of: "=").map { line[..<$0] } ?? line
        func bad(_ why: String) -> CompileError {
            CompileError("\(flag) \(path), line \(number): \(why)")
        }
        if name.isEmpty { throw bad("no variable name before \"=\"") }
        if name.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) {
            throw bad("the name \(quoted(String(Substring(name)))) contains whitespace or a control character")
        }
        if line.contains("\0") { throw bad("a NUL byte") }
        out.append(String(Substring(line)))
    }
    return out
}
