import Foundation

/// Progress with rate and ETA on standard error: one line rewritten in place on a terminal, a line every
/// `interval` seconds otherwise (logs, pipes); a last line at `finish()`.
public final class ProgressReporter {
    public let total: Int
    public let label: String
    /// What is counted, for the rate: "img" prints `2.95 img/s`.
    public let unit: String
    public let isTerminal: Bool
    public let interval: Double
    private let write: (String) -> Void
    private let start = monotonicSeconds()
    private lazy var lastPrint = start
    public private(set) var done = 0
    public private(set) var failed = 0
    private var finished = false

    /// `write` receives the raw text (with "\r" and an erase-line escape on a terminal); by default standard error.
    public init(total: Int, label: String, unit: String = "img", isTerminal: Bool? = nil, interval: Double = 10,
                write: ((String) -> Void)? = nil) {
        self.total = total
        self.label = label
        self.unit = unit
        self.isTerminal = isTerminal ?? (isatty(STDERR_FILENO) != 0)
        self.interval = interval
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// One more item done.
    public func advance(failed isFailure: Bool = false) {
        done += 1
        if isFailure { failed += 1 }
        let t = monotonicSeconds()
        if isTerminal {
            if t - lastPrint >= 0.1 || done == total {
                lastPrint = t
                write("\r" + line(now: t) + "\u{1B}[K")
            }
        } else if t - lastPrint >= interval && done < total {
            lastPrint = t
            write(line(now: t) + "\n")
        }
    }

    /// Prints a message line (e.g. a skipped image) without garbling the progress line: on a terminal the line
    /// is cleared, the message printed, and the progress line drawn again below it.
    public func log(_ message: String) {
        if isTerminal && !finished {
            write("\r\u{1B}[K" + message + "\n" + line(now: monotonicSeconds()) + "\u{1B}[K")
        } else {
            write(message + "\n")
        }
    }

    /// Prints the final state (and ends the terminal line). Idempotent.
    public func finish() {
        guard !finished else { return }
        finished = true
        let text = line(now: monotonicSeconds())
        write(isTerminal ? "\r" + text + "\u{1B}[K\n" : text + "\n")
    }

    /// `[infer] 12/40 (30%)  2.95 img/s  elapsed 0:04  ETA 0:09  (1 failed)`.
    public func line(now t: Double) -> String {
        let elapsed = t - start
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let pct = total > 0 ? 100 * done / total : 100
        var s = "[\(label)] \(done)/\(total) (\(pct)%)  " + String(format: "%.2f", rate) + " \(unit)/s  elapsed "
            + Self.clock(elapsed)
        if done < total {
            s += "  ETA " + (rate > 0 ? Self.clock(Double(total - done) / rate) : "?")
        }
        if failed > 0 { s += "  (\(failed) failed)" }
        return s
    }

    /// `m:ss` or `h:mm:ss`.
    public static func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }
}
