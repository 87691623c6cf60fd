import Foundation
import Support

/// mmcv's `LogBuffer` for one logging interval: per key the values and their counts; `average` gives
/// `Σ v·n / Σ n` of the entries since the last clear, keys in first-update order.
public struct LogBuffer {
    private(set) var keys: [String] = []
    private var values: [String: [(v: Double, n: Int)]] = [:]

    public init() {}

    public mutating func update(_ key: String, _ v: Double, count n: Int = 1) {
        if values[key] == nil { keys.append(key) }
        values[key, default: []].append((v, n))
    }

    /// The averages of the last `interval` entries of every key, in first-update order.
    public func average(_ interval: Int) -> [(String, Double)] {
        keys.map { k in
            let last = values[k]!.suffix(interval)
            var num = 0.0, den = 0.0
            for e in last { num += e.v * Double(e.n) }
            for e in last { den += Double(e.n) }
            return (k, num / den)
        }
    }

    public mutating func clear() {
        keys = []
        values = [:]
    }
}

/// The text log (`<timestamp>.log`, also echoed to the terminal) and mmdet's JSON log (`<timestamp>.log.json`:
/// the runner meta on the first line, then one object per logging interval and one per evaluation). Lines are
/// appended and flushed as they come, so a stopped run keeps everything logged so far.
public final class TrainLog {
    public let textPath: String
    public let jsonPath: String
    private let text: FileHandle?
    private let json: FileHandle?
    private let echo: (String) -> Void

    private init() {
        textPath = ""
        jsonPath = ""
        text = nil
        json = nil
        echo = { _ in }
    }

    /// A log that writes nothing (the ranks other than 0 of a distributed run).
    public static func silent() -> TrainLog { TrainLog() }

    public init(workDir: String, timestamp: String, echo: @escaping (String) -> Void) throws {
        textPath = (workDir as NSString).appendingPathComponent("\(timestamp).log")
        jsonPath = (workDir as NSString).appendingPathComponent("\(timestamp).log.json")
        for p in [textPath, jsonPath] where !FileManager.default.createFile(atPath: p, contents: nil) {
            throw TrainingError("\(p): cannot create the log file")
        }
        guard let t = FileHandle(forWritingAtPath: textPath), let j = FileHandle(forWritingAtPath: jsonPath) else {
            throw TrainingError("\(workDir): cannot open the log files")
        }
        text = t
        json = j
        self.echo = echo
    }

    private static let stampFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss,SSS"
        return f
    }()

    /// One line of the text log, `2026-12-02 10:00:00,000 - ghm - INFO - message`, also echoed.
    public func info(_ message: String) {
        let stamp = Self.stampFormatter.string(from: Date())
        for line in message.split(separator: "\n", omittingEmptySubsequences: false) {
            let l = "\(stamp) - ghm - INFO - \(line)\n"
            text?.write(Data(l.utf8))
        }
        echo(message)
    }

    /// One JSON object per line, keys in the given order; doubles at full precision.
    public func json(_ fields: [(String, JSONValue)]) {
        let body = fields.map { "\(JSONText.quote($0.0)): \($0.1.text)" }.joined(separator: ", ")
        json?.write(Data("{\(body)}\n".utf8))
    }

    public func close() {
        try? text?.close()
        try? json?.close()
    }
}

/// A value of a log.json line.
public enum JSONValue {
    case number(Double), int(Int), string(String), null

    var text: String {
        switch self {
        case .number(let d): return JSONText.number(d)
        case .int(let i): return "\(i)"
        case .string(let s): return JSONText.quote(s)
        case .null: return "null"
        }
    }
}

/// Python's `str(datetime.timedelta(seconds=int(s)))`: `H:MM:SS`, or `D day(s), H:MM:SS`.
public func timedeltaText(_ seconds: Double) -> String {
    let s = Swift.max(0, Int(seconds))
    let days = s / 86400, rest = s % 86400
    let hms = String(format: "%d:%02d:%02d", rest / 3600, rest % 3600 / 60, rest % 60)
    return days > 0 ? "\(days) day\(days == 1 ? "" : "s"), \(hms)" : hms
}
