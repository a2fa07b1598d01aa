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
    // Plain loops over the bytes: the generic split, starts(with:) and
    // slice decoding cost their metadata and specializations at first use
    // on every command (about 440 KiB of peak RSS and 5% of a run's CPU
    // when these were written with them).

    /// The non-empty components between "/" bytes ("." and ".." kept).
    public static func components(_ path: String) -> [String] {
        var out: [String] = []
        var part: [UInt8] = []
        for b in path.utf8 {
            if b == 47 {
                if !part.isEmpty { out.append(String(decoding: part, as: UTF8.self)); part.removeAll(keepingCapacity: true) }
            } else {
                part.append(b)
            }
        }
        if !part.isEmpty { out.append(String(decoding: part, as: UTF8.self)) }
        return out
    }

    /// Whether `path` starts with a "/" byte.
    public static func isAbsolute(_ path: String) -> Bool {
        path.utf8.first == 47
    }

    /// Whether any component is "..".
    public static func hasDotDot(_ path: String) -> Bool {
        // n counts the bytes of the component so far, -1 once it is not
        // all dots.
        var n = 0
        for b in path.utf8 {
            if b == 47 {
                if n == 2 { return true }
                n = 0
            } else if b == 46 {
                if n >= 0 { n += 1 }
            } else {
                n = -1
            }
        }
        return n == 2
    }

    /// Whether `path` holds a "/" byte.
    public static func hasSlash(_ path: String) -> Bool {
        for b in path.utf8 where b == 47 { return true }
        return false
    }

    /// A clean absolute path split at its last "/" byte: ("/a", "b") for
    /// "/a/b", ("/", "a") for "/a", ("/", "") for "/". A path with no "/"
    /// is all name.
    public static func split(_ clean: String) -> (parent: String, name: String) {
        let b = Array(clean.utf8)
        var i = b.count - 1
        while i >= 0 && b[i] != 47 { i -= 1 }
        if i < 0 { return ("/", clean) }
        let parent = i == 0 ? "/" : String(decoding: Array(b[0..<i]), as: UTF8.self)
        return (parent, String(decoding: Array(b[(i + 1)...]), as: UTF8.self))
    }

    /// Whether `path` is `dir` or under it, comparing bytes ("/a/b" is
    /// under "/a" and "/", "/ab" is not under "/a"). Both are taken as
    /// given: clean them first where that is meant.
    public static func isWithin(_ path: String, _ dir: String) -> Bool {
        let p = Array(path.utf8), d = Array(dir.utf8)
        guard startsWith(p, d) else { return false }
        if p.count == d.count || d.last == 47 { return true }
        return p[d.count] == 47
    }

    /// `path` with the bytes of `prefix` dropped from its start, or nil
    /// when it does not start with them.
    public static func dropPrefix(_ prefix: String, of path: String) -> String? {
        let p = Array(path.utf8), d = Array(prefix.utf8)
        guard startsWith(p, d) else { return nil }
        return String(decoding: Array(p[d.count...]), as: UTF8.self)
    }

    static func startsWith(_ p: [UInt8], _ d: [UInt8]) -> Bool {
        if d.count > p.count { return false }
        var i = 0
        while i < d.count {
            if p[i] != d[i] { return false }
            i += 1
        }
        return true
    }
}

extension String {
    /// Whether the UTF-8 bytes start with `prefix`'s (no grapheme
    /// clustering: "/\u{0596}x" starts with "/").
    public func bytesStart(with prefix: String) -> Bool {
        Path.startsWith(Array(utf8), Array(prefix.utf8))
    }

    /// `parts` joined with `separator`, as joined(separator:) does, in a
    /// plain loop: the generic joined resolves its associated types by name
    /// at its first use in each process (the init's mount options, the
    /// commands table every command builds).
    public static func plainJoin(_ parts: [String], separator: String) -> String {
        var s = ""
        var first = true
        for p in parts {
            if !first { s += separator }
            first = false
            s += p
        }
        return s
    }

    /// Whether the UTF-8 bytes hold `needle`'s as a run (a plain search:
    /// String.contains(String) builds a searcher table at its first use).
    public func holdsBytes(_ needle: String) -> Bool {
        let h = Array(utf8), n = Array(needle.utf8)
        if n.isEmpty { return true }
        if n.count > h.count { return false }
        var i = 0
        while i + n.count <= h.count {
            var k = 0
            while k < n.count && h[i + k] == n[k] { k += 1 }
            if k == n.count { return true }
            i += 1
        }
        return false
    }

    /// Whether the UTF-8 bytes hold `ascii`, e.g. "," or ":" in text the
    /// kernel or a parser will split there.
    public func holdsByte(_ ascii: Unicode.Scalar) -> Bool {
        let c = UInt8(ascii: ascii)
        for b in utf8 where b == c { return true }
        return false
    }
}
