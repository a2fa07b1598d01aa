import Glibc
import Spec
import Sys

// HOME for a process whose environment has none, as runc sets it at exec
// time: the home directory of the process's uid in the container's own
// /etc/passwd, or "/" when the uid has no entry (or no usable home). Read in
// the container's mount namespace, after pivot_root: the file is the
// container's and hostile, so it is opened without blocking (a FIFO would
// hang us), read only if it is a regular file, and at most `passwdLimit`
// bytes of it.

/// The most of /etc/passwd read for HOME (runc reads it whole; a file this
/// large is no one's passwd).
let passwdLimit = 1 << 20

/// `env` with HOME added when it has none (an entry "HOME=..." or an empty
/// "HOME=" counts as set, as runc's os.Getenv only tests it is non-empty:
/// an empty HOME is replaced).
func withHome(_ env: [String], uid: UInt32) -> [String] {
    if env.contains(where: { $0.hasPrefix("HOME=") && $0.utf8.count > 5 }) { return env }
    return env.filter { $0 != "HOME=" } + ["HOME=" + homeDirectory(uid: uid, passwd: readPasswd())]
}

/// The container's /etc/passwd (bounded, regular files only), or "".
func readPasswd() -> String {
    let fd = open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return "" }
    // In 4 KiB steps: the init runs under the container's memory limit, and
    // a buffer of the whole limit up front (1 MiB, zeroed) was charged to it
    // (it raised a container's peak from 0.5 to 1.3 MB, past --memory 1m).
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < passwdLimit {
        let want = min(chunk.count, passwdLimit - bytes.count)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, want) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The home field of the first passwd line for `uid` ("/" without one, or
/// when it is empty or not absolute).
func homeDirectory(uid: UInt32, passwd: String) -> String {
    for line in passwd.split(separator: "\n") {
        let f = line.split(separator: ":", omittingEmptySubsequences: false)
        guard f.count >= 6, UInt32(f[2]) == uid else { continue }
        let home = String(f[5])
        return Path.isAbsolute(home) && !home.contains("\0") ? home : "/"
    }
    return "/"
}
