import Glibc

// The monotonic clock, for deadlines and timeouts (never for timestamps a
// user reads: those are Log.timestamp's wall-clock time). @inlinable: each
// caller compiles to the clock_gettime call itself, as when it had its own.

public enum Clock {
    /// CLOCK_MONOTONIC, in seconds.
    @inlinable
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// CLOCK_MONOTONIC, in whole milliseconds.
    @inlinable
    public static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
