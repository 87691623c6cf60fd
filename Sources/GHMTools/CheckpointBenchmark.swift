import Foundation
import Support
import TorchCheckpoint

/// Reading speed and memory of `Checkpoint.load` against Python's `torch.load` of the same file, measured in the
/// same run. Run it from a release build (`ghm inspect FILE --benchmark`).
public enum CheckpointBenchmark {
    public struct Report: CustomStringConvertible {
        public var file: String
        public var fileBytes: Int
        public var runs: Int
        /// Median seconds of `Checkpoint.load` in this process.
        public var swiftSeconds: Double
        /// Median seconds of `torch.load(path)` (default weights_only=True) inside Python (startup excluded).
        public var pythonSeconds: Double
        /// The first (untimed-for-the-median) load of each side: fresh memory, nothing reused by the allocator.
        public var swiftFirstSeconds = 0.0
        public var pythonFirstSeconds = 0.0
        /// Peak resident memory (VmHWM) of a fresh process that only loads the file (`memoryProbe`), if run.
        public var swiftProcessPeakBytes: Int?
        /// Increase of this process's peak resident memory over its resident memory before the first load.
        public var swiftLoadBytes: Int?
        public var pythonProcessPeakBytes: Int?
        public var pythonLoadBytes: Int?

        public var timeRatio: Double { swiftSeconds / pythonSeconds }

        public var description: String {
            func mb(_ b: Int?) -> String { b.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "n/a" }
            func ratio(_ b: Int?) -> String { b.map { String(format: "%.2f× file", Double($0) / Double(fileBytes)) } ?? "" }
            var lines = [
                "checkpoint \(file) (\(String(format: "%.1f", Double(fileBytes) / 1e6)) MB), median of \(runs) runs",
                String(format: "  Swift Checkpoint.load   %8.4f s", swiftSeconds),
                String(format: "  Python torch.load       %8.4f s", pythonSeconds),
                String(format: "  time ratio Swift/Python %8.2f   (target ≤ 1.5)", timeRatio),
                String(format: "  first load: Swift %.4f s, Python %.4f s, ratio %.2f", swiftFirstSeconds, pythonFirstSeconds,
                       swiftFirstSeconds / pythonFirstSeconds),
                "  memory, increase over the resident size before loading:",
                "    Swift  \(mb(swiftLoadBytes))  \(ratio(swiftLoadBytes))",
                "    Python \(mb(pythonLoadBytes))  \(ratio(pythonLoadBytes))",
            ]
            if swiftProcessPeakBytes != nil || pythonProcessPeakBytes != nil {
                lines.append("  memory, peak of a whole process that loads the file (runtime and libraries included):")
                lines.append("    Swift  \(mb(swiftProcessPeakBytes))  \(ratio(swiftProcessPeakBytes))   (target ≤ 2× file)")
                lines.append("    Python \(mb(pythonProcessPeakBytes))  \(ratio(pythonProcessPeakBytes))")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Times `runs` loads on each side (after one untimed load that measures memory). `memoryProbe`, when given,
    /// is a command that loads the file in a fresh process and prints `peak_rss_bytes N`
    /// (e.g. `[ghm, "inspect", path, "--peak-memory"]`).
    public static func run(path: String, python: String, runs: Int = 5, memoryProbe: [String]? = nil) throws -> Report {
        let fileBytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var report = Report(file: path, fileBytes: fileBytes, runs: runs, swiftSeconds: 0, pythonSeconds: 0)
        let before = ProcessMemory.residentBytes()
        let reset = ProcessMemory.resetPeak()
        let f0 = monotonicSeconds()
        let first = try Checkpoint.load(path)
        report.swiftFirstSeconds = monotonicSeconds() - f0
        withExtendedLifetime(first) {}
        if reset, let before, let hwm = ProcessMemory.peakResidentBytes() { report.swiftLoadBytes = hwm - before }
        let times = try Statistics.time(runs: runs) { withExtendedLifetime(try Checkpoint.load(path)) {} }
        report.swiftSeconds = Statistics.median(times)
        if let memoryProbe { report.swiftProcessPeakBytes = try probe(memoryProbe) }
        let py = try pythonTimes(path: path, python: python, runs: runs)
        report.pythonSeconds = py.seconds
        report.pythonLoadBytes = py.loadBytes
        report.pythonProcessPeakBytes = py.peakBytes
        report.pythonFirstSeconds = py.first
        return report
    }

    private static func probe(_ command: [String]) throws -> Int? {
        let out = try runCapture(command[0], Array(command.dropFirst()))
        for line in out.split(separator: "\n") where line.hasPrefix("peak_rss_bytes ") {
            return Int(line.dropFirst("peak_rss_bytes ".count))
        }
        return nil
    }

    private static let pythonScript = """
        import json, sys, time, torch
        path, runs = sys.argv[1], int(sys.argv[2])
        def status(k):
            for line in open('/proc/self/status'):
                if line.startswith(k): return int(line.split()[1]) * 1024
        before = status('VmRSS:')
        try:
            open('/proc/self/clear_refs', 'w').write('5'); reset = True
        except OSError:
            reset = False
        t0 = time.perf_counter(); obj = torch.load(path); first = time.perf_counter() - t0
        load = status('VmHWM:') - before if reset else None
        peak = status('VmHWM:')
        del obj
        times = []
        for _ in range(max(runs, 1)):
            t0 = time.perf_counter(); obj = torch.load(path); times.append(time.perf_counter() - t0); del obj
        times.sort()
        n = len(times)
        med = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
        print(json.dumps({'seconds': med, 'first': first, 'load': load, 'peak': peak}))
        """

    private static func pythonTimes(path: String, python: String, runs: Int)
        throws -> (seconds: Double, first: Double, loadBytes: Int?, peakBytes: Int?) {
        let out = try runCapture(python, ["-c", pythonScript, path, String(runs)])
        guard let line = out.split(separator: "\n").last,
              let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let s = obj["seconds"] as? Double else {
            throw CheckpointError(.io, "unexpected output of the Python timing: \(out.suffix(300))")
        }
        return (s, obj["first"] as? Double ?? 0, obj["load"] as? Int, obj["peak"] as? Int)
    }

    private static func runCapture(_ exe: String, _ args: [String]) throws -> String {
        String(decoding: try Subprocess.output(exe, args), as: UTF8.self)
    }
}
