// An overlayfs mount from layer paths, with no option string built from
// them. mount(2)'s data is "lowerdir=A:B,upperdir=U,workdir=W": a layer path
// holding `,` or `:` adds options or layers of its own (`run --rootfs
// 'DIR,lowerdir=DIR:/etc'` gave a container the host's /etc as its root).
// With the new mount API (Linux 6.8+) each layer is passed alone, as a path
// (fsconfig "lowerdir+"), which the kernel does not split or unescape; on
// older kernels mount(2) is used, and only with paths that have nothing the
// option parser would read as syntax.

import CShim
import Glibc
import Spec
import Sys

extension Rootfs {
    /// Why `path` may not be an overlay layer (or upper or work) directory,
    /// nil when it may. Always: absolute, clean (no empty, "." or ".."
    /// components, no trailing "/"), no newline or NUL. With `legacy`
    /// (mount(2)'s option string) also no `,` `:` `\`, and the whole option
    /// string must fit a page.
    public static func overlayPathProblem(_ path: String, legacy: Bool) -> String? {
        guard Path.isAbsolute(path) else { return "is not an absolute path" }
        if path.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\u{0}" }) { return "holds a newline or NUL" }
        if path != "/" {
            let parts = path.utf8.dropFirst().split(separator: 47, omittingEmptySubsequences: false)
            if parts.contains(where: { $0.isEmpty || $0.elementsEqual([46]) || $0.elementsEqual([46, 46]) }) {
                return "is not a clean path (empty, \".\" or \"..\" components, or a trailing /)"
            }
        }
        if path.utf8.count > Spec.pathMax { return "is longer than a path may be (\(Spec.pathMax) bytes)" }
        if legacy, let c = path.unicodeScalars.first(where: { $0 == "," || $0 == ":" || $0 == "\\" }) {
            return "holds \"\(c)\", which mount(2)'s overlay options cannot carry on this kernel (before Linux 6.8)"
        }
        return nil
    }

    /// Mounts an overlay of `lower` (top layer first, as overlayfs orders
    /// them), `upper` and `work` at `target`. `legacy` forces (true) or
    /// forbids (false) mount(2), for tests; by default it is used before 6.8.
    /// `userXattr`: overlayfs' own xattrs are user.overlay.* (the option an
    /// overlay mounted in a user namespace needs).
    public static func mountOverlay(lower: [String], upper: String, work: String, target: String,
                                    legacy: Bool? = nil, userXattr: Bool = false) throws {
        guard !lower.isEmpty else { throw Failure(.invalid, "overlay: no lower layer") }
        let modern = !(legacy ?? !kernelAtLeast(6, 8))
        for (role, p) in lower.map({ ("lower layer", $0) }) + [("upper directory", upper), ("work directory", work)] {
            if let why = overlayPathProblem(p, legacy: !modern) {
                throw Failure(.invalid, "overlay \(role) \(quoted(p)) \(why)")
            }
        }
        if modern {
            try mountOverlayFsconfig(lower: lower, upper: upper, work: work, target: target, userXattr: userXattr)
            return
        }
        // Before 6.8 a kernel may still have lowerdir+ backported; if not,
        // fall back on mount(2) with the paths checked above.
        if legacy == nil, (try? mountOverlayFsconfig(lower: lower, upper: upper, work: work, target: target, userXattr: userXattr)) != nil { return }
        let data = "lowerdir=" + lower.joined(separator: ":") + ",upperdir=" + upper + ",workdir=" + work + (userXattr ? ",userxattr" : "")
        guard data.utf8.count < 4096 else { throw Failure(.invalid, "overlay: \(lower.count) layers make mount options longer than a page") }
        guard mount("overlay", target, "overlay", 0, data) == 0 else {
            throw SysError("mount overlay at \(quoted(target)) (lower \(Quote.list(lower.map { quoted($0, max: 128) }, max: 4)))")
        }
    }

    /// fsopen, one fsconfig per layer, fsmount, move_mount.
    static func mountOverlayFsconfig(lower: [String], upper: String, work: String, target: String, userXattr: Bool = false) throws {
        let fs = mc_fsopen("overlay", Kernel.FSOPEN_CLOEXEC)
        guard fs >= 0 else { throw SysError("fsopen overlay") }
        defer { close(fs) }
        func set(_ key: String, _ value: String, _ what: String) throws {
            guard mc_fsconfig(fs, Kernel.FSCONFIG_SET_STRING, key, value, 0) == 0 else {
                let e = errno
                throw SysError("overlay \(what) \(quoted(value))" + kernelMessage(fs), errno: e)
            }
        }
        for l in lower { try set("lowerdir+", l, "lower layer") }
        try set("upperdir", upper, "upper directory")
        try set("workdir", work, "work directory")
        if userXattr {
            guard mc_fsconfig(fs, Kernel.FSCONFIG_SET_FLAG, "userxattr", nil, 0) == 0 else {
                let e = errno
                throw SysError("overlay option userxattr" + kernelMessage(fs), errno: e)
            }
        }
        guard mc_fsconfig(fs, Kernel.FSCONFIG_CMD_CREATE, nil, nil, 0) == 0 else {
            let e = errno
            throw SysError("create overlay (lower \(quoted(lower[0]))\(lower.count > 1 ? " and \(lower.count - 1) more" : ""))"
                           + kernelMessage(fs), errno: e)
        }
        let m = mc_fsmount(fs, Kernel.FSMOUNT_CLOEXEC, 0)
        guard m >= 0 else { throw SysError("fsmount overlay") }
        defer { close(m) }
        guard mc_move_mount(m, "", AT_FDCWD, target, Kernel.MOVE_MOUNT_F_EMPTY_PATH) == 0 else {
            throw SysError("mount overlay at \(quoted(target))")
        }
    }

    /// The kernel's own words about a failed fsconfig (read from the fs
    /// context: "e overlay: failed to resolve '/x': -2"), as ": ...", or "".
    static func kernelMessage(_ fs: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { read(fs, $0.baseAddress, $0.count) }
        guard n > 2 else { return "" }
        var text = String(decoding: buf[0..<n], as: UTF8.self)
        if text.hasPrefix("e ") || text.hasPrefix("w ") || text.hasPrefix("i ") { text.removeFirst(2) }
        return " (" + Log.oneLine(text, max: 200) + ")"
    }

    /// The running kernel is at least major.minor (uname's release).
    static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var u = utsname()
        guard uname(&u) == 0 else { return false }
        let release = withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        let nums = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard nums.count == 2 else { return false }
        return nums[0] > major || (nums[0] == major && nums[1] >= minor)
    }
}
