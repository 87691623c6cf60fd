import Foundation
import Imaging

/// Training curves from mmdet-format log.json files (`ghm train`'s or MMDetection's own), as mmdet's
/// `tools/analyze_logs.py plot_curve` reads them: one JSON object per line, the first holding `env_info`/`config`,
/// then `mode: train` lines (epoch, iter, lr, losses, …) and `mode: val` lines (`bbox_mAP`, …).
public struct TrainCurves {
    /// One train or val line: epoch (1-based), iter, and its numeric fields.
    public struct Record {
        public var mode: String
        public var epoch: Int
        public var iter: Int
        public var values: [String: Double]
    }

    public var records: [Record] = []
    public let path: String

    /// Reads a log.json; a line that is not a JSON object names the file and line.
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): cannot read the log") }
        let text = String(decoding: data, as: UTF8.self)
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw TrainingError("\(path):\(n + 1): not a JSON object")
            }
            guard let mode = object["mode"] as? String else { continue }  // the env_info/config line
            guard let epoch = (object["epoch"] as? NSNumber)?.intValue, let iter = (object["iter"] as? NSNumber)?.intValue else {
                throw TrainingError("\(path):\(n + 1): a '\(mode)' line without epoch and iter")
            }
            var values: [String: Double] = [:]
            for (k, v) in object {
                if let number = v as? NSNumber { values[k] = number.doubleValue }
            }
            records.append(Record(mode: mode, epoch: epoch, iter: iter, values: values))
        }
    }

    /// (x in epochs, value) of `key` on `mode` lines. A train line of iteration i of epoch e sits at
    /// e − 1 + i / (iterations of that epoch, the largest iter logged in it); a val line at its epoch.
    public func points(_ key: String, mode: String) -> [(x: Double, y: Double)] {
        var perEpoch: [Int: Int] = [:]
        for r in records where r.mode == "train" { perEpoch[r.epoch] = Swift.max(perEpoch[r.epoch] ?? 0, r.iter) }
        return records.filter { $0.mode == mode }.compactMap { r in
            guard let y = r.values[key] else { return nil }
            if mode == "train" { return (Double(r.epoch - 1) + Double(r.iter) / Double(Swift.max(1, perEpoch[r.epoch] ?? 1)), y) }
            return (Double(r.epoch), y)
        }
    }

    /// The keys present on `mode` lines, in a stable order.
    public func keys(mode: String) -> [String] {
        Set(records.filter { $0.mode == mode }.flatMap(\.values.keys)).sorted()
    }

    /// A PNG-ready picture: the train keys against epochs (top) and, when the log has val lines with any of the
    /// val keys, those below on the same epoch axis. Throws when a train key is in no line.
    public func render(trainKeys: [String], valKeys: [String], title: String, width: Int = 720) throws -> RGBImage {
        func series(_ keys: [String], mode: String) -> [LinePlot.Series] {
            keys.enumerated().compactMap { i, k in
                let p = points(k, mode: mode)
                return p.isEmpty ? nil : LinePlot.Series(label: k, points: p, color: LinePlot.palette[i % LinePlot.palette.count])
            }
        }
        let train = series(trainKeys, mode: "train")
        let missing = trainKeys.filter { points($0, mode: "train").isEmpty }
        guard missing.isEmpty else {
            throw TrainingError("\(path): no train line has \(missing.joined(separator: ", ")) (train keys: "
                                + keys(mode: "train").joined(separator: ", ") + ")")
        }
        let val = series(valKeys, mode: "val")
        let lastEpoch = Double(records.map(\.epoch).max() ?? 1)
        let xAxis = LinePlot.Axis.covering([0, lastEpoch], label: "EPOCH", includeZero: true)
        let height = 400
        var panels = [LinePlot(title: title + ": training loss", x: xAxis,
                               y: .covering(train.flatMap { $0.points.map(\.y) }, label: "LOSS", includeZero: true),
                               series: train, width: width, height: height).render()]
        if !val.isEmpty {
            panels.append(LinePlot(title: title + ": validation", x: xAxis,
                                   y: .covering(val.flatMap { $0.points.map(\.y) } + [0], label: "AP", includeZero: true),
                                   series: val, width: width, height: height).render())
        }
        var pixels: [UInt8] = []
        for p in panels { pixels += p.pixels }
        return RGBImage(width: width, height: height * panels.count, pixels: pixels)
    }
}
