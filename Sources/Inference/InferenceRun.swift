import COCO
import Detection
import Foundation
import Imaging
import Support
import Torch

/// An error of `ghm infer` / `ghm eval` about their inputs or outputs, shown as it is.
public struct InferenceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Settings of an inference run over image files (`ghm infer`).
public struct InferOptions: Sendable {
    /// Output folder: `results.json`, `summary.json`, `vis/`.
    public var outputDirectory: String
    public var batchSize = 1
    /// Prepared batches waiting for the model (decoding runs ahead by this much).
    public var prefetchBatches = 2
    /// Keep detections with score > this (results and drawings); nil: the config's `test_cfg.score_thr`.
    public var scoreThreshold: Double?
    /// Write a drawn copy of every image into `vis/`.
    public var draw = true
    /// Descend into subfolders of folder inputs.
    public var recursive = false
    /// JPEG quality of drawn `.jpg` files.
    public var jpegQuality = 90
    /// Tiled inference (sliding windows merged into full-image detections); nil: whole images.
    public var tiling: TileSettings?

    public init(outputDirectory: String, batchSize: Int = 1, scoreThreshold: Double? = nil, draw: Bool = true,
                recursive: Bool = false) {
        self.outputDirectory = outputDirectory
        self.batchSize = batchSize
        self.scoreThreshold = scoreThreshold
        self.draw = draw
        self.recursive = recursive
    }
}

/// One detection of `results.json`.
public struct InferDetection: Sendable, Equatable {
    /// The image file as given (list entries joined to the list's folder).
    public var file: String
    /// Position of the image in the input list (0-based; `summary.json` lists every image with its id).
    public var imageId: Int
    /// [x, y, width, height] in original-image pixels (width = x2 − x1, as mmdet's `xyxy2xywh`).
    public var bbox: [Double]
    public var score: Double
    /// 0-based class index of the model.
    public var label: Int
    /// COCO category id for the 80 COCO classes, otherwise label + 1.
    public var categoryId: Int
    public var className: String
}

/// What happened to one input image.
public struct InferImageRecord: Sendable {
    public var imageId: Int
    public var file: String
    public var width: Int?
    public var height: Int?
    public var detections: Int
    /// Windows of a tiled run (nil when not tiled).
    public var windows: Int?
    /// Path of the drawn image relative to the output folder (`vis/...`).
    public var drawn: String?
    public var error: String?
}

/// The outcome of `InferenceRun.run`.
public struct InferSummary: Sendable {
    public var images: [InferImageRecord] = []
    /// Inputs that could not be used at all (missing paths, unreadable lists).
    public var inputProblems: [InferenceInputs.Problem] = []
    public var detections: [InferDetection] = []
    public var scoreThreshold = 0.0
    public var batchSize = 1
    /// Batches decoded ahead (0: decoding inline, without overlap).
    public var prefetchBatches = 2
    public var stats = BatchInferenceStats()
    public var resultsPath = ""
    public var summaryPath = ""
    /// The `vis` folder, when drawing.
    public var visDirectory: String?
    /// The tile settings of a tiled run.
    public var tiling: TileSettings?

    /// Images that failed plus unusable inputs.
    public var failedCount: Int { images.filter { $0.error != nil }.count + inputProblems.count }
    public var succeededCount: Int { images.filter { $0.error == nil }.count }
    public var drawnCount: Int { images.filter { $0.drawn != nil }.count }

    /// The lines printed at the end of `ghm infer`.
    public var text: String {
        let n = images.count + inputProblems.count
        let s = stats
        var lines = [
            "images:     \(n) (\(succeededCount) done, \(failedCount) failed)",
            "detections: \(detections.count) with score > \(Self.number(scoreThreshold))"
                + (succeededCount > 0 ? String(format: " (%.1f per image)", Double(detections.count) / Double(succeededCount)) : ""),
            "speed:      " + String(format: "%.2f images/s (%.2f s, batch size %d; model %.2f s, decoding %.2f s %@, "
                                    + "model waited for images %.2f s)", s.imagesPerSecond, s.seconds, batchSize,
                                    s.modelSeconds, s.decodeSeconds,
                                    (prefetchBatches > 0 ? "in the background" : "inline") as NSString, s.waitSeconds),
            "results:    \(resultsPath)",
        ]
        if let tiling {
            lines.insert("tiles:      \(tiling.width)x\(tiling.height), overlap \(Self.number(tiling.overlap)): \(s.windows) windows "
                         + String(format: "(%.1f per image)", succeededCount > 0 ? Double(s.windows) / Double(succeededCount) : 0),
                         at: 2)
        }
        if let visDirectory { lines.append("drawn:      \(drawnCount) images in \(visDirectory)/") }
        return lines.joined(separator: "\n")
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(format: "%.1f", x) : "\(x)"
    }
}

/// `ghm infer` as a library function: detection over image files with prefetching, drawn images, results.
public enum InferenceRun {
    /// COCO's category ids of the 80 classes, in mmdet's label order.
    public static let cocoCategoryIds: [Int] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
        34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
        62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
    ]

    /// `category_id` of `results.json` for a label, given the model's class names.
    public static func categoryId(forLabel label: Int, classNames: [String]) -> Int {
        if classNames == cocoClasses, cocoCategoryIds.indices.contains(label) { return cocoCategoryIds[label] }
        return label + 1
    }

    /// Creates `path` (with its parents) if needed and checks that files can be created in it; throws a clear
    /// error otherwise. Creates nothing when it fails.
    public static func prepareOutputDirectory(_ path: String) throws {
        do {
            try Files.prepareDirectory(path, role: "output folder")
        } catch {
            throw InferenceError(error.description)
        }
    }

    /// Writes `data` to `path` through a temporary file in the same folder and a rename, so `path` is either
    /// complete or absent; creates the parent folders.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        do {
            try Files.writeAtomically(data, to: path)
        } catch {
            throw InferenceError(error.description)
        }
    }

    /// Runs the detector over `files` (from `InferenceInputs.collect`), writes `vis/<name>` per image (unless
    /// `options.draw` is off), then `results.json` and `summary.json`, all atomically. Per-image failures are
    /// passed to `report` and recorded, and the run goes on; a model or write error throws. `inputProblems` are
    /// recorded as failures too.
    public static func run(detector: Detector, files: [String], inputProblems: [InferenceInputs.Problem] = [],
                           options: InferOptions, progress: ProgressReporter? = nil,
                           report: (String) -> Void = { _ in }) throws -> InferSummary {
        let out = options.outputDirectory
        try prepareOutputDirectory(out)
        var summary = InferSummary()
        summary.inputProblems = inputProblems
        summary.batchSize = max(1, options.batchSize)
        summary.prefetchBatches = max(0, options.prefetchBatches)
        let threshold = options.scoreThreshold ?? detector.config.model.testCfg.scoreThr
        summary.scoreThreshold = threshold
        summary.tiling = options.tiling
        let visDir = (out as NSString).appendingPathComponent("vis")
        if options.draw { summary.visDirectory = visDir }
        let names = InferenceInputs.outputNames(for: files)
        let items = files.enumerated().map { InferenceItem(id: $0.offset, path: $0.element) }
        let classNames = detector.classNames
        let drawer = DetectionDrawer()
        let quality = options.jpegQuality
        // drawing, encoding and writing run on their own thread, beside the model
        let writer = options.draw ? BackgroundWorker(name: "ghm-writer", capacity: 2 * summary.batchSize + 2) : nil
        defer { writer?.abandon() }

        for problem in inputProblems { report(problem.description) }
        let runner = BatchInference(detector: detector, batchSize: options.batchSize,
                                    prefetchBatches: options.prefetchBatches, keepOriginals: options.draw,
                                    tiling: options.tiling)
        var records: [InferImageRecord] = [], detections: [InferDetection] = []
        let start = monotonicSeconds()
        var stats = try runner.run(items, progress: progress) { result in
            let file = result.item.path
            var record = InferImageRecord(imageId: result.item.id, file: file, width: result.size?.width,
                                          height: result.size?.height, detections: 0,
                                          windows: options.tiling == nil ? nil : result.windows)
            guard let dets = result.detections else {
                let message = "\(result.error.map { "\($0)" } ?? "failed")"
                record.error = message
                report(message.contains(file) ? message : "\(file): \(message)")
                records.append(record)
                return
            }
            let rows = try dets.rows().filter { Double($0.score) > threshold }
            record.detections = rows.count
            for r in rows {
                let x1 = Double(r.box[0]), y1 = Double(r.box[1]), x2 = Double(r.box[2]), y2 = Double(r.box[3])
                detections.append(InferDetection(
                    file: file, imageId: result.item.id, bbox: [x1, y1, x2 - x1, y2 - y1], score: Double(r.score),
                    label: r.label, categoryId: categoryId(forLabel: r.label, classNames: classNames),
                    className: detector.className(r.label)))
            }
            if let writer, let image = result.original {
                let name = names[result.position]
                let target = (visDir as NSString).appendingPathComponent(name)
                record.drawn = "vis/" + name
                let ext = "." + (name as NSString).pathExtension.lowercased()
                try writer.submit {
                    try drawer.draw(rows, className: { detector.className($0) }, on: image)
                    let data = try image.encoded(ext: ext, quality: ext == ".jpg" || ext == ".jpeg" ? quality : nil)
                    try writeAtomically(data, to: target)
                }
            }
            records.append(record)
        }
        try writer?.finish()
        stats.seconds = monotonicSeconds() - start  // up to the last drawn image on disk
        summary.stats = stats
        summary.images = records
        summary.detections = detections
        progress?.finish()

        summary.resultsPath = (out as NSString).appendingPathComponent("results.json")
        summary.summaryPath = (out as NSString).appendingPathComponent("summary.json")
        try writeAtomically(resultsJSON(summary.detections), to: summary.resultsPath)
        try writeAtomically(summaryJSON(summary), to: summary.summaryPath)
        return summary
    }

    // MARK: - JSON

    /// `results.json`: `[{"file", "image_id", "bbox": [x, y, w, h], "score", "category_id", "label", "class"}, …]`.
    public static func resultsJSON(_ detections: [InferDetection]) -> Data {
        var out = "["
        for (i, d) in detections.enumerated() {
            out += i == 0 ? "\n  " : ",\n  "
            out += "{\"file\": \(JSONText.quote(d.file)), \"image_id\": \(d.imageId), \"bbox\": ["
            out += d.bbox.map(JSONText.number).joined(separator: ", ")
            out += "], \"score\": \(JSONText.number(d.score)), \"category_id\": \(d.categoryId), \"label\": \(d.label), "
            out += "\"class\": \(JSONText.quote(d.className))}"
        }
        out += detections.isEmpty ? "]\n" : "\n]\n"
        return Data(out.utf8)
    }

    /// `summary.json`: every image with its id, size, detection count, drawn file or error, and the totals.
    public static func summaryJSON(_ s: InferSummary) -> Data {
        var out = "{\n  \"images\": ["
        for (i, r) in s.images.enumerated() {
            out += i == 0 ? "\n    " : ",\n    "
            out += "{\"image_id\": \(r.imageId), \"file\": \(JSONText.quote(r.file))"
            if let error = r.error {
                out += ", \"error\": \(JSONText.quote(error))}"
                continue
            }
            out += ", \"width\": \(r.width ?? 0), \"height\": \(r.height ?? 0), \"detections\": \(r.detections)"
            if let windows = r.windows { out += ", \"windows\": \(windows)" }
            if let drawn = r.drawn { out += ", \"drawn\": \(JSONText.quote(drawn))" }
            out += "}"
        }
        out += s.images.isEmpty ? "],\n" : "\n  ],\n"
        out += "  \"input_errors\": [" + s.inputProblems.map { JSONText.quote($0.description) }.joined(separator: ", ") + "],\n"
        out += "  \"num_images\": \(s.images.count + s.inputProblems.count),\n"
        out += "  \"num_failed\": \(s.failedCount),\n"
        out += "  \"num_detections\": \(s.detections.count),\n"
        out += "  \"score_thr\": \(JSONText.number(s.scoreThreshold)),\n"
        out += "  \"batch_size\": \(s.batchSize),\n"
        if let t = s.tiling {
            out += "  \"tile\": {\"width\": \(t.width), \"height\": \(t.height), \"overlap\": \(JSONText.number(t.overlap)), "
                + "\"cover_thr\": \(JSONText.number(t.coverThreshold)), \"windows\": \(s.stats.windows)},\n"
        }
        out += "  \"seconds\": \(JSONText.number(s.stats.seconds)),\n"
        out += "  \"images_per_second\": \(JSONText.number(s.stats.imagesPerSecond))\n}\n"
        return Data(out.utf8)
    }

}
