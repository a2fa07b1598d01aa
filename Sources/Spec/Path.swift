// Lexical path cleaning, shared by every module that compares or joins
// paths it was given (mount destinations, cgroup paths, bundle-relative
// sources, paths made absolute against the current directory). Pure: no
// file is looked at, so a symlink is never followed.

public enum Path {
    /// `path` as an absolute path with no empty, "." or ".." components,
    /// decided from the text alone: "//" and a trailing "/" go, "." goes,
    /// ".." removes the component before it and stays at "/" at the top, and
    /// a relative path is taken from "/" ("a/b" is "/a/b"; make it absolute
    /// against a directory first where that is meant, as FS.absolute does).
    /// "" is "/".
    public static func clean(_ path: String) -> String {
        // Over the bytes, not split/joined: on every command's path (the
        // state root, mount destinations), and the generic collection code
        // costs its metadata and conformance lookups at first use.
        let bytes = Array(path.utf8)
        var out: [UInt8] = [47]
        out.reserveCapacity(bytes.count + 1)
        var kept: [Int] = []  // out.count before each kept component
        var i = 0
        while i < bytes.count {
            while i < bytes.count && bytes[i] == 47 { i += 1 }
            let start = i
            while i < bytes.count && bytes[i] != 47 { i += 1 }
            let n = i - start
            if n == 0 || (n == 1 && bytes[start] == 46) { continue }
            if n == 2 && bytes[start] == 46 && bytes[start + 1] == 46 {
                if let k = kept.popLast() { out.removeSubrange(k...) }
                continue
            }
            kept.append(out.count)
            if out.count > 1 { out.append(47) }
            out.append(contentsOf: bytes[start..<i])
        }
        if kept.isEmpty { out = [47] }
        return String(decoding: out, as: UTF8.self)
    }
}

// Paths are bytes to the kernel, and a String's Characters are not bytes:
// Swift groups "/" with the combining marks after it into one Character,
// so "a/\u{0596}b".split(separator: "/") is one component, .contains("/")
// is false and "/\u{0596}x".hasPrefix("/") is false, while the kernel sees
// "a", "/" and "\u{0596}b". A check made over Characters can then pass a
// path whose ".." or symlink the kernel goes on to follow (a directory was
// made on the host through a rootfs symlink that way). Every test of a path
// for "/", "..", a prefix or its last component goes through these, which
// look at the UTF-8 bytes only.
extension Path {
    /// The non-empty components between "/" bytes ("." and ".." kept).
    public static func components(_ path: String) -> [String] {
        path.utf8.split(separator: 47, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `path` starts with a "/" byte.
    public static func isAbsolute(_ path: String) -> Bool {
        path.utf8.first == 47
    }

    /// Whether any component is "..".
    public static func hasDotDot(_ path: String) -> Bool {
        path.utf8.split(separator: 47, omittingEmptySubsequences: true).contains { $0.count == 2 && $0.first == 46 && $0.last == 46 }
    }

    /// Whether `path` holds a "/" byte.
    public static func hasSlash(_ path: String) -> Bool {
        path.utf8.contains(47)
    }

    /// A clean absolute path split at its last "/" byte: ("/a", "b") for
    /// "/a/b", ("/", "a") for "/a", ("/", "") for "/". A path with no "/"
    /// is all name.
    public static func split(_ clean: String) -> (parent: String, name: String) {
        let b = Array(clean.utf8)
        guard let i = b.lastIndex(of: 47) else { return ("/", clean) }
        let parent = i == 0 ? "/" : String(decoding: b[..<i], as: UTF8.self)
        return (parent, String(decoding: b[(i + 1)...], as: UTF8.self))
    }

    /// Whether `path` is `dir` or under it, comparing bytes ("/a/b" is
    /// under "/a" and "/", "/ab" is not under "/a"). Both are taken as
    /// given: clean them first where that is meant.
    public static func isWithin(_ path: String, _ dir: String) -> Bool {
        let p = path.utf8, d = dir.utf8
        guard p.starts(with: d) else { return false }
        if p.count == d.count || d.last == 47 { return true }
        return p.dropFirst(d.count).first == 47
    }

    /// `path` with the bytes of `prefix` dropped from its start, or nil
    /// when it does not start with them.
    public static func dropPrefix(_ prefix: String, of path: String) -> String? {
        guard path.utf8.starts(with: prefix.utf8) else { return nil }
        return String(decoding: path.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }
}

extension String {
    /// Whether the UTF-8 bytes start with `prefix`'s (no grapheme
    /// clustering: "/\u{0596}x" starts with "/").
    public func bytesStart(with prefix: String) -> Bool {
        utf8.starts(with: prefix.utf8)
    }

    /// Whether the UTF-8 bytes hold `ascii`, e.g. "," or ":" in text the
    /// kernel or a parser will split there.
    public func holdsByte(_ ascii: Unicode.Scalar) -> Bool {
        utf8.contains(UInt8(ascii: ascii))
    }
}
