// /proc/self/mountinfo, read by the runtime (where the cgroup hierarchies
// are) and by the init (which hierarchies to show in the container). One
// pass over the bytes; strings are made only for the fields kept.

/// One mount: "id parent major:minor root mountpoint options [optional...]
/// - fstype source superoptions".
public struct MountInfo: Equatable {
    public var id: Int
    public var parent: Int
    /// The path inside the filesystem that is mounted here.
    public var root: String
    public var mountPoint: String
    public var options: String
    public var fsType: String
    public var source: String
    public var superOptions: String

    public init(id: Int, parent: Int, root: String, mountPoint: String, options: String, fsType: String,
                source: String, superOptions: String) {
        self.id = id
        self.parent = parent
        self.root = root
        self.mountPoint = mountPoint
        self.options = options
        self.fsType = fsType
        self.source = source
        self.superOptions = superOptions
    }

    /// Every well-formed line of a mountinfo text; malformed lines are skipped.
    public static func parse(_ b: [UInt8]) -> [MountInfo] {
        var out: [MountInfo] = []
        var f: [Range<Int>] = []
        f.reserveCapacity(16)
        var i = 0
        while i < b.count {
            f.removeAll(keepingCapacity: true)
            var start = i
            while i < b.count && b[i] != 10 {
                if b[i] == 32 {
                    if i > start { f.append(start..<i) }
                    start = i + 1
                }
                i += 1
            }
            if i > start { f.append(start..<i) }
            i += 1
            guard f.count >= 9, let id = number(b[f[0]]), let parent = number(b[f[1]]) else { continue }
            var sep = 6
            while sep < f.count && !(f[sep].count == 1 && b[f[sep].lowerBound] == 45) { sep += 1 }
            guard sep + 2 < f.count else { continue }
            out.append(MountInfo(id: id, parent: parent, root: unescape(b[f[3]]), mountPoint: unescape(b[f[4]]),
                                 options: text(b[f[5]]), fsType: text(b[f[sep + 1]]), source: unescape(b[f[sep + 2]]),
                                 superOptions: sep + 3 < f.count ? text(b[f[sep + 3]]) : ""))
        }
        return out
    }

    /// Decodes mountinfo's octal escapes (\040 space, \011 tab, \012
    /// newline, \134 backslash); anything else stays as it is.
    public static func unescape(_ s: ArraySlice<UInt8>) -> String {
        guard s.contains(92) else { return text(s) }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == 92, i + 3 < s.endIndex, s[(i + 1)...(i + 3)].allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                let v = s[(i + 1)...(i + 3)].reduce(0) { $0 * 8 + Int($1 - 48) }
                if v <= 255 {
                    out.append(UInt8(v))
                    i += 4
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func text(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }

    static func number(_ s: ArraySlice<UInt8>) -> Int? {
        var v = 0
        for c in s {
            guard c >= 48 && c <= 57, v < Int.max / 10 - 9 else { return nil }
            v = v * 10 + Int(c - 48)
        }
        return s.isEmpty ? nil : v
    }
}
