import Glibc

// The user's terminal in raw mode while a container's terminal is relayed
// (`run -it`, `exec -it`, `attach`): every key goes to the container's.

public enum Terminal {
    /// Puts terminal `fd` in raw mode; returns its settings to restore, or
    /// nil when it is not a terminal (nothing changed).
    public static func enterRaw(_ fd: Int32 = 0) -> termios? {
        guard isatty(fd) == 1 else { return nil }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { return nil }
        var raw = t
        cfmakeraw(&raw)
        tcsetattr(fd, TCSANOW, &raw)
        return t
    }

    /// Puts back what `enterRaw` saved.
    public static func restore(_ saved: termios?, _ fd: Int32 = 0) {
        guard var t = saved else { return }
        tcsetattr(fd, TCSANOW, &t)
    }
}
