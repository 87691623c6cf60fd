import Foundation
import Imaging
import Support

/// `ghm bench dist`'s training part: images per second of `ghm train` as 2 processes × 1 intra-op thread (`--nproc 2`,
/// 2 images per rank) against 1 process × 2 threads (2 images per iteration), on the same generated set, the shipped
/// config (random init, no validation) and the same scale. Each run's first iteration is left out; the time per
/// iteration is the median of the others, as log.json's `time` gives it.
public enum DistTrainBenchmark {
    public struct Mode {
        public var name: String
        public var arguments: [String]
        public var imagesPerIteration: Int
        public init(name: String, arguments: [String], imagesPerIteration: Int) {
            (self.name, self.arguments, self.imagesPerIteration) = (name, arguments, imagesPerIteration)
        }
    }

    public struct Result {
        public var mode: Mode
        public var secondsPerIteration: Double
        public var imagesPerSecond: Double { Double(mode.imagesPerIteration) / secondsPerIteration }
    }

    /// A set of `count` images (`width`×`height`, noise with 3 filled rectangles each, the rectangles as boxes of one
    /// category) in `dir`: `images/`, `train.json`.
    public static func makeSet(in dir: String, count: Int, width: Int, height: Int, seed: UInt64 = 1) throws {
        let images = dir + "/images"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        var rng = SplitMix64(seed)
        var imageEntries: [String] = [], annotations: [String] = []
        var annId = 1
        for i in 0..<count {
            var img = RGBImage(width: width, height: height, fill: (0, 0, 0))
            for k in 0..<img.pixels.count { img.pixels[k] = UInt8(truncatingIfNeeded: rng.next() >> 56) / 2 + 64 }
            for _ in 0..<3 {
                let w = 40 + Int(rng.next() % UInt64(width / 3)), h = 40 + Int(rng.next() % UInt64(height / 3))
                let x = Int(rng.next() % UInt64(width - w)), y = Int(rng.next() % UInt64(height - h))
                let c = UInt8(truncatingIfNeeded: rng.next() >> 56)
                for yy in y..<(y + h) { for xx in x..<(x + w) { for ch in 0..<3 { img.pixels[(yy * width + xx) * 3 + ch] = ch == 0 ? c : 255 - c } } }
                annotations.append("{\"id\": \(annId), \"image_id\": \(i + 1), \"category_id\": 1, \"bbox\": [\(x), \(y), \(w), \(h)], "
                                   + "\"area\": \(w * h), \"iscrowd\": 0}")
                annId += 1
            }
            let name = String(format: "b%03d.png", i)
            try PNGEncoder.write(img, to: images + "/" + name)
            imageEntries.append("{\"id\": \(i + 1), \"file_name\": \"\(name)\", \"width\": \(width), \"height\": \(height)}")
        }
        let json = "{\"images\": [\(imageEntries.joined(separator: ", "))], \"annotations\": [\(annotations.joined(separator: ", "))], "
            + "\"categories\": [{\"id\": 1, \"name\": \"box\"}]}"
        try Files.writeAtomically(Data(json.utf8), to: dir + "/train.json")
    }

    /// Runs every mode for `iterations` iterations with `executable` (the ghm binary) and returns their times.
    public static func run(executable: String, config: String, dir: String, iterations: Int, scale: (Int, Int),
                           modes: [Mode], progress: (String) -> Void) throws -> [Result] {
        var out: [Result] = []
        for mode in modes {
            let work = dir + "/work-" + mode.name.replacingOccurrences(of: " ", with: "_")
            try? FileManager.default.removeItem(atPath: work)
            var args = ["train", "--config", config, "--work-dir", work, "--seed", "0", "--no-validate",
                        "--stop-after", "\(iterations)"]
            for o in ["data.train.ann_file=\(dir)/train.json", "data.train.img_prefix=\(dir)/images/",
                      "model.bbox_head.num_classes=1", "model.backbone.init_cfg=null",
                      "train_pipeline.2.img_scale=[\(scale.0), \(scale.1)]", "data.samples_per_gpu=2",
                      "data.workers_per_gpu=1", "runner.max_epochs=1000", "log_config.interval=1"] {
                args += ["--set", o]
            }
            progress("  \(mode.name): \(iterations) iterations …")
            let r = try Subprocess.run(executable, args + mode.arguments)
            guard r.status == 0 else {
                throw ToolError("ghm train (\(mode.name)) exited with \(r.status):\n\(r.stderrText.suffix(2000))")
            }
            let logs = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.hasSuffix(".log.json") }.sorted()
            guard let log = logs.last else { throw ToolError("\(work): no log.json") }
            var times: [Double] = []
            for line in try String(contentsOfFile: work + "/" + log, encoding: .utf8).split(separator: "\n") {
                guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      obj["mode"] as? String == "train", let t = obj["time"] as? Double else { continue }
                times.append(t)
            }
            guard times.count >= 2 else { throw ToolError("\(work)/\(log): fewer than 2 train lines") }
            out.append(Result(mode: mode, secondsPerIteration: Statistics.median(Array(times.dropFirst()))))
        }
        return out
    }
}
