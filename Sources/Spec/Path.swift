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
