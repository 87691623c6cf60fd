import ArgumentParser
import COCO
import Detection
import Foundation

/// `ghm eval`: detection over a COCO-annotated image set and COCO box evaluation (mmdet's `tools/test.py --eval bbox`).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run the detector over COCO-annotated images and evaluate the boxes (COCO AP/AR, as pycocotools).",
        discussion: """
            Reads the annotations (a COCO instances JSON), runs the model over its images (IMAGES/<file_name>, in \
            file order; the first N with --max-images) in batches while a background thread decodes the next ones, \
            maps each label to a category id as MMDetection does (label i = the i-th category of the file, \
            `cat_ids`), and evaluates like pycocotools' COCOeval: the 12-line table is printed.

            With --out DIR: DIR/results.json (COCO result format, a JSON list of {"image_id", "bbox": [x, y, w, h] \
            with w = x2 - x1, "score", "category_id"}) and DIR/metrics.json (the 12 numbers, per-category AP, \
            precision-recall curves), both written at the end under a temporary name and renamed.

            The config's model.bbox_head.num_classes must equal the number of categories of the annotation file. \
            Images that cannot be read (missing, corrupt) are reported on stderr and left out of the evaluation \
            (it covers the images that were detected); the exit code is then 1.

            Example:
              ghm eval --config configs/retinanet_ghm_r50_fpn_1x_coco.yml \\
                  --checkpoint ghm.pth --images data/coco/val2017 --out eval/ \\
                  --ann data/coco/annotations/instances_val2017.json
            """)

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: ArgumentHelp("Ground truth: a COCO instances JSON.", valueName: "A.json"))
    var ann: String

    @Option(name: .long, help: ArgumentHelp("Folder holding the images (file_name is relative to it).", valueName: "DIR"))
    var images: String

    @Option(name: .long, help: ArgumentHelp("Write results.json and metrics.json into this folder.", valueName: "DIR"))
    var out: String?

    @Option(name: .long, help: ArgumentHelp("Evaluate only the first N images of the annotation file.", valueName: "N"))
    var maxImages: Int?

    @Option(name: .long, help: "Images per forward pass.")
    var batchSize = 1

    @Option(name: .long, help: "Batches decoded ahead of the model by a background thread (0: decode between batches, no overlap).")
    var prefetch = 2

    @Flag(name: .long, help: "Also print AP (IoU .50:.95, area all, 100 detections) for each category.")
    var perCategory = false

    @Flag(name: .long, help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard prefetch >= 0 else { throw ValidationError("--prefetch must be at least 0") }
        if let maxImages, maxImages < 1 { throw ValidationError("--max-images must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let fm = FileManager.default
            guard fm.fileExists(atPath: ann) else { throw RuntimeError("--ann \(ann): no such file") }
            let dataset = try COCODataset.load(path: ann)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: images, isDirectory: &isDir), isDir.boolValue else {
                throw RuntimeError("--images \(images): no such folder")
            }
            let config = try model.loadConfig()
            let numClasses = config.model.bboxHead.numClasses
            guard numClasses == dataset.numClasses else {
                throw RuntimeError("the config's model.bbox_head.num_classes is \(numClasses) but \(ann) has "
                                   + "\(dataset.numClasses) categor\(dataset.numClasses == 1 ? "y" : "ies"); label i is the "
                                   + "i-th category of the file, so they must agree (use a model trained on these categories)")
            }
            let selected = Array(dataset.images.prefix(maxImages ?? dataset.images.count))
            guard !selected.isEmpty else { throw RuntimeError("\(ann): no images") }
            if let out { try InferenceRun.prepareOutputDirectory(out) }
            let detector = try model.makeDetector()

            var failedIds = Set<Int>()
            var items: [InferenceItem] = []
            let progress = quiet ? nil : ProgressReporter(total: selected.count, label: "eval")
            let report: (String) -> Void = { progress?.log("error: " + $0) ?? printError($0) }
            for image in selected {
                guard let name = image.fileName else {
                    report("\(ann): image id \(image.id) has no file_name")
                    failedIds.insert(image.id)
                    continue
                }
                items.append(InferenceItem(id: image.id, path: (images as NSString).appendingPathComponent(name)))
            }

            var results = COCOResults()
            let runner = BatchInference(detector: detector, batchSize: batchSize, prefetchBatches: prefetch)
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
                    try results.append(imageId: r.item.id, label: row.label, x1: Double(row.box[0]), y1: Double(row.box[1]),
                                       x2: Double(row.box[2]), y2: Double(row.box[3]), score: Double(row.score),
                                       dataset: dataset)
                }
            }
            progress?.finish()

            let evaluated = selected.filter { !failedIds.contains($0.id) }
            guard !evaluated.isEmpty else { throw RuntimeError("none of the \(selected.count) images could be read") }
            // the ground truth of the images that were detected
            let gt: COCODataset
            if evaluated.count == dataset.images.count {
                gt = dataset
            } else {
                let ids = Set(evaluated.map(\.id))
                gt = try COCODataset(images: evaluated, annotations: dataset.annotations.filter { ids.contains($0.imageId) },
                                     categories: dataset.categories, path: ann)
            }
            let metrics = try COCOEvaluator(gt: gt, dets: results).evaluate()
            print(metrics.table)
            if perCategory {
                print("")
                print(metrics.perCategoryTable)
            }
            print("images: \(selected.count) (\(evaluated.count) evaluated, \(failedIds.count) failed); "
                  + "\(results.count) detections; " + String(format: "%.2f images/s (batch size %d)", stats.imagesPerSecond, batchSize))
            print("bbox_mAP_copypaste: \(metrics.copypaste)")
            if let out {
                let resultsPath = (out as NSString).appendingPathComponent("results.json")
                let metricsPath = (out as NSString).appendingPathComponent("metrics.json")
                try results.write(to: resultsPath)
                try metrics.writeJSON(to: metricsPath, includeCurves: true)
                print("wrote \(resultsPath) and \(metricsPath)")
            }
            if !failedIds.isEmpty {
                printError("\(failedIds.count) image\(failedIds.count == 1 ? "" : "s") could not be read (listed above); "
                           + "they are left out of the evaluation")
                throw ExitCode(1)
            }
        }
    }
}
