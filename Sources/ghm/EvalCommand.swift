import ArgumentParser
import Foundation
import Inference
import Support

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

            The config's model.bbox_head.num_classes must equal the number of categories of the annotation file, \
            or of those named in data.test.classes (mmdet's classes=: only those categories and their annotations \
            are evaluated, label i = the i-th of them in file order). Class names come from the checkpoint's \
            meta.CLASSES (written by ghm train); a warning says when they differ from the evaluated categories. \
            Images that cannot be read (missing, corrupt) are reported on stderr and left out of the evaluation \
            (it covers the images that were detected); the exit code is then 1.

            Example:
              ghm eval --config configs/retinanet_ghm_r50_fpn_1x_coco.yml \\
                  --checkpoint ghm.pth --images data/coco/val2017 --out eval/ \\
                  --ann data/coco/annotations/instances_val2017.json
            """)

    @OptionGroup var model: ModelOptions

    @OptionGroup var groundTruth: GroundTruthOptions

    @Option(name: .long, help: ArgumentHelp("Folder holding the images (file_name is relative to it).", valueName: "DIR"))
    var images: String

    @Option(name: .long, help: ArgumentHelp("Write results.json and metrics.json into this folder.", valueName: "DIR"))
    var out: String?

    @Option(name: .long, help: ArgumentHelp("Evaluate only the first N images of the annotation file.", valueName: "N"))
    var maxImages: Int?

    @OptionGroup var batch: BatchOptions

    func validate() throws {
        if let maxImages, maxImages < 1 { throw ValidationError("--max-images must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let config = try model.loadConfig()
            let dataset = try EvalRun.loadDataset(ann: groundTruth.ann, images: images, numClasses: config.model.bboxHead.numClasses,
                                                  classes: config.data.test.classes)
            if let out { try InferenceRun.prepareOutputDirectory(out) }
            let detector = try model.makeDetector()
            if detector.classNames != dataset.classNames {
                FileHandle.standardError.write(Data(("warning: the model's classes \(detector.classNames) (checkpoint meta.CLASSES or the config) differ "
                           + "from the evaluated categories \(dataset.classNames); label i is scored as the i-th category "
                           + "(pick categories with --set data.test.classes=[…])\n").utf8))
            }
            let total = Swift.min(maxImages ?? dataset.images.count, dataset.images.count)
            let progress = batch.progress(total: total, label: "eval")
            let outcome = try EvalRun.run(detector: detector, dataset: dataset, images: images, maxImages: maxImages,
                                          batchSize: batch.batchSize, prefetchBatches: batch.prefetch, outputDirectory: out,
                                          progress: progress, report: { progress?.log("error: " + $0) ?? printError($0) })
            let metrics = outcome.metrics
            print(metrics.text(perCategory: groundTruth.perCategory))
            print("images: \(outcome.selected) (\(outcome.evaluated) evaluated, \(outcome.failedIds.count) failed); "
                  + "\(outcome.results.count) detections; "
                  + String(format: "%.2f images/s (batch size %d)", outcome.stats.imagesPerSecond, batch.batchSize))
            print("bbox_mAP_copypaste: \(metrics.copypaste)")
            if let resultsPath = outcome.resultsPath, let metricsPath = outcome.metricsPath {
                print("wrote \(resultsPath) and \(metricsPath)")
            }
            let failed = outcome.failedIds.count
            if failed > 0 {
                printError("\(failed) image\(failed == 1 ? "" : "s") could not be read (listed above); "
                           + "they are left out of the evaluation")
                throw ExitCode(1)
            }
        }
    }
}
