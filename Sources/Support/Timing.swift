import Dispatch

/// Seconds on a monotonic clock (for durations; the origin is arbitrary).
public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Summaries of repeated measurements.
public enum Statistics {
    /// The median: the middle value, or the mean of the two middle values of an even count; NaN when empty.
    public static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Runs `body` `warmup + runs` times and returns the wall seconds of the last `runs` calls.
    public static func time(warmup: Int = 0, runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
        var times: [Double] = []
        for r in 0..<(max(0, warmup) + max(1, runs)) {
            let t0 = monotonicSeconds()
            try body()
            if r >= warmup { times.append(monotonicSeconds() - t0) }
        }
        return times
    }
}
