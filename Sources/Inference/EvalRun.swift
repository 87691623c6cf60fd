import COCO
import Detection
import Foundation
import Support

/// `ghm eval` as a library function (mmdet's `tools/test.py --eval bbox`): detection over the images of a COCO
/// annotation file, labels mapped to category ids as mmdet's `cat_ids` (label i = the i-th category of the file),
/// then COCO box evaluation of the images that could be read.
public enum EvalRun {
    /// What an evaluation produced.
    public struct Outcome {
        public var metrics: COCOMetrics
        public var results: COCOResults
        /// Images selected from the annotation file, evaluated, and left out because they failed.
        public var selected: Int
        public var evaluated: Int
        public var failedIds: Set<Int>
        public var stats: BatchInferenceStats
        /// Written with an output folder: `results.json` and `metrics.json`.
        public var resultsPath: String?
        public var metricsPath: String?
    }

    /// Loads `ann` and checks, before any model is built, that `images` is a folder and that the model has one
    /// class per category of the file, or per category named in `classes` (the config's `data.test.classes` /
    /// `data.val.classes`, mmdet's `classes=`: those categories, in file order, and their annotations only).
    public static func loadDataset(ann: String, images: String, numClasses: Int, classes: [String]? = nil) throws -> COCODataset {
        let fm = FileManager.default
        guard fm.fileExists(atPath: ann) else { throw InferenceError("--ann \(ann): no such file") }
        var dataset = try COCODataset.load(path: ann)
        if let classes { dataset = try dataset.selecting(classes: classes) }
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: images, isDirectory: &isDir), isDir.boolValue else {
            throw InferenceError("--images \(images): no such folder")
        }
        guard numClasses == dataset.numClasses else {
            throw InferenceError("the config's model.bbox_head.num_classes is \(numClasses) but \(ann) has "
                                 + "\(dataset.numClasses) categor\(dataset.numClasses == 1 ? "y" : "ies"); label i is "
                                 + "the i-th \(classes == nil ? "" : "selected ")category of the file, so they must agree (use a model "
                                 + "trained on these categories\(classes == nil ? ", or pick them with data.test.classes" : "")")
        }
        return dataset
    }

    /// One detection as mmdet's `results2json` takes it: the image, the label, the box and the score (float32 values).
    public struct DetectionRow: Sendable, Equatable {
        public var imageId: Int, label: Int
        public var box: [Double]
        public var score: Double
        /// As 7 numbers (image id, label, x1, y1, x2, y2, score), for sending between ranks; `init(values:)` inverts it.
        public var values: [Double] { [Double(imageId), Double(label)] + box + [score] }
        public init(values v: [Double]) { (imageId, label, box, score) = (Int(v[0]), Int(v[1]), Array(v[2..<6]), v[6]) }
        public init(imageId: Int, label: Int, box: [Double], score: Double) {
            (self.imageId, self.label, self.box, self.score) = (imageId, label, box, score)
        }
    }

    /// What detection over some images gave: the rows in mmdet's order (by image, then label, then as the model
    /// returned them), and the images that could not be read.
    public struct Detections {
        public var rows: [DetectionRow]
        public var failedIds: Set<Int>
        public var stats: BatchInferenceStats
        public init(rows: [DetectionRow], failedIds: Set<Int>, stats: BatchInferenceStats) {
            (self.rows, self.failedIds, self.stats) = (rows, failedIds, stats)
        }
    }

    /// Detects the first `maxImages` images of `dataset` (all when nil) found under `images`, evaluates them and,
    /// with `outputDirectory`, writes `results.json` and `metrics.json` atomically. Unreadable images go to `report`
    /// and are left out of the evaluation (it covers the images that were detected); when none can be read, throws.
    public static func run(detector: Detector, dataset: COCODataset, images: String, maxImages: Int? = nil,
                           batchSize: Int = 1, prefetchBatches: Int = 2, outputDirectory: String? = nil,
                           progress: ProgressReporter? = nil, report: (String) -> Void = { _ in }) throws -> Outcome {
        let selected = Array(dataset.images.prefix(maxImages ?? dataset.images.count))
        guard !selected.isEmpty else { throw InferenceError("\(dataset.path ?? "the annotation file"): no images") }
        let found = try detect(detector: detector, images: selected, folder: images, batchSize: batchSize,
                               prefetchBatches: prefetchBatches, progress: progress, report: report)
        return try evaluate(found, selected: selected, dataset: dataset, outputDirectory: outputDirectory)
    }

    /// Detection over `images` (of the annotation file, read from `folder`), without evaluating.
    public static func detect(detector: Detector, images selected: [COCOImage], folder images: String, batchSize: Int = 1,
                              prefetchBatches: Int = 2, progress: ProgressReporter? = nil,
                              report: (String) -> Void = { _ in }) throws -> Detections {
        var failedIds = Set<Int>()
        var items: [InferenceItem] = []
        for image in selected {
            guard let name = image.fileName else {
                report("annotations: image id \(image.id) has no file_name")
                failedIds.insert(image.id)
                continue
            }
            items.append(InferenceItem(id: image.id, path: (images as NSString).appendingPathComponent(name)))
        }
        var out: [DetectionRow] = []
        let runner = BatchInference(detector: detector, batchSize: batchSize, prefetchBatches: prefetchBatches)
        let stats = try runner.run(items, progress: progress) { r in
            guard let dets = r.detections else {
                failedIds.insert(r.item.id)
                let message = r.error.map { "\($0)" } ?? "failed"
                report(message.contains(r.item.path) ? message : "\(r.item.path): \(message)")
                return
            }
            // mmdet's order: by label (bbox2result), then as the model returned them
            let rows = try dets.rows().enumerated().sorted { ($0.element.label, $0.offset) < ($1.element.label, $1.offset) }
            for (_, row) in rows {
                out.append(DetectionRow(imageId: r.item.id, label: row.label, box: row.box.prefix(4).map { Double($0) },
                                        score: Double(row.score)))
            }
        }
        progress?.finish()
        return Detections(rows: out, failedIds: failedIds, stats: stats)
    }

    /// COCO box evaluation of `found` over the `selected` images that could be read (detections gathered from
    /// several ranks may come in any image order: they are put in `selected`'s).
    public static func evaluate(_ found: Detections, selected: [COCOImage], dataset: COCODataset,
                                outputDirectory: String? = nil) throws -> Outcome {
        let position = Dictionary(selected.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { a, _ in a })
        let ordered = found.rows.enumerated().sorted {
            (position[$0.element.imageId] ?? Int.max, $0.offset) < (position[$1.element.imageId] ?? Int.max, $1.offset)
        }
        var results = COCOResults()
        for (_, row) in ordered {
            try results.append(imageId: row.imageId, label: row.label, x1: row.box[0], y1: row.box[1], x2: row.box[2],
                               y2: row.box[3], score: row.score, dataset: dataset)
        }
        let failedIds = found.failedIds
        let evaluated = selected.filter { !failedIds.contains($0.id) }
        guard !evaluated.isEmpty else { throw InferenceError("none of the \(selected.count) images could be read") }
        let metrics = try COCOEvaluator(gt: groundTruth(of: evaluated, in: dataset), dets: results).evaluate()
        var outcome = Outcome(metrics: metrics, results: results, selected: selected.count, evaluated: evaluated.count,
                              failedIds: failedIds, stats: found.stats)
        if let outputDirectory {
            let resultsPath = (outputDirectory as NSString).appendingPathComponent("results.json")
            let metricsPath = (outputDirectory as NSString).appendingPathComponent("metrics.json")
            try results.write(to: resultsPath)
            try metrics.writeJSON(to: metricsPath, includeCurves: true)
            outcome.resultsPath = resultsPath
            outcome.metricsPath = metricsPath
        }
        return outcome
    }

    /// The ground truth restricted to `images` (the whole dataset when they are all of it).
    static func groundTruth(of images: [COCOImage], in dataset: COCODataset) throws -> COCODataset {
        guard images.count != dataset.images.count else { return dataset }
        let ids = Set(images.map(\.id))
        return try COCODataset(images: images, annotations: dataset.annotations.filter { ids.contains($0.imageId) },
                               categories: dataset.categories, path: dataset.path)
    }
}
