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
        var parts: [Substring] = []
        for c in path.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }
}
