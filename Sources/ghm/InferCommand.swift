import ArgumentParser
import Detection
import Foundation
import GHMTools
import Inference
import Support

/// `ghm infer`: batched detection over many images, with drawn copies and a results file.
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Detect objects in many images (files, folders, lists) in batches; write results and drawn images.",
        discussion: """
            INPUT is an image file, a folder (its image files: jpg, jpeg, png, bmp, tif, tiff, webp, …; with \
            --recursive also its subfolders), or a text file listing paths, one per line (blank lines and lines \
            starting with # are skipped; relative paths are relative to the list's folder). A file that appears \
            twice is processed once.

            While the model works on one batch, a background thread reads, decodes and pre-processes the next ones \
            (--prefetch batches ahead); another thread draws and writes the pictures.

            Output folder (each file is written under a temporary name and renamed, so \
            none is ever half-written):

            results.json: a JSON list, one object per detection with score > --score-thr, \
            written at the end of the run:
              {"file": "imgs/a.jpg", "image_id": 0, "bbox": [x, y, w, h],
               "score": 0.93, "category_id": 18, "label": 16, "class": "dog"}
            bbox is in original-image pixels (w = x2 - x1, as MMDetection's results2json); \
            image_id is the image's 0-based position in the input list; label is the \
            model's 0-based class; category_id is COCO's id when the classes are COCO's \
            80, else label + 1.

            summary.json: every image (image_id, file, width, height, number of \
            detections, drawn file, or its error) and the totals.

            vis/: a drawn copy of each image (boxes, "class score" labels on a filled \
            background, one colour per class), named by the image's path relative to the \
            folder holding all inputs, so a/x.jpg and b/x.jpg do not collide \
            (vis/a/x.jpg, vis/b/x.jpg). Skipped with --no-draw.

            Images that cannot be read or decoded are reported on stderr and skipped; the run goes on and the exit \
            code is 1 if any input failed, 0 otherwise. Progress (with ETA) goes to stderr: one updating line on a \
            terminal, a line every 10 s otherwise.

            Tiled inference (--tile WxH, for images larger than the model's scale, e.g. aerial photos): each image \
            is cut into W x H windows overlapping by --overlap R (stride round(W(1-R)) x round(H(1-R)); the last \
            window of each row and column is aligned to the image's right or bottom edge, so every pixel is seen). \
            Each window goes through the model like a whole image (resized to the config's img_scale, the \
            config's test_cfg), --batch-size windows per forward pass; its boxes are shifted into the image and the \
            windows' detections merged: a detection that reaches an inner window edge (within 2 px; a border \
            between windows, not the image's edge) is dropped when a larger detection of the same class from \
            another window covers at least 80% of it (the object was seen whole there; plain IoU would miss this: \
            half a box has IoU 0.5 with the whole box); then class-wise NMS between windows at the config's \
            test_cfg.nms.iou_threshold, and the best test_cfg.max_per_img by score. Detections inside one \
            window are never merged with each other (the model's NMS already did that), so an image not larger \
            than the tile is one window, the whole image, with exactly the results of a run without --tile. \
            An object larger than the overlap that no window sees whole stays as fragments: make the overlap \
            larger than the objects. results.json, summary.json and vis/ are of the full image as without \
            --tile; summary.json also records the tile settings and the windows (in total and per image). \
            Progress counts images.

            Examples:
              ghm infer --config configs/retinanet_ghm_r50_fpn_1x_coco.yml \\
                  --checkpoint ghm.pth photos/ more.txt --out out/ --batch-size 2
              ghm infer --config configs/retinanet_ghm_r50_fpn_1x_coco.yml \\
                  --checkpoint ghm.pth aerial/ --out out/ \\
                  --tile 400x400 --overlap 0.25 --batch-size 4
            """)

    @OptionGroup var model: ModelOptions

    @Argument(help: ArgumentHelp("Image files, folders or text files listing paths.", valueName: "INPUT"))
    var inputs: [String] = []

    @Option(name: .long, help: ArgumentHelp("Output folder (created if needed).", valueName: "DIR"))
    var out: String

    @Flag(name: .long, help: "Also take the images in subfolders of folder inputs.")
    var recursive = false

    @OptionGroup var batch: BatchOptions

    @Option(name: .long, help: ArgumentHelp("Keep detections with score > T in results and drawings (default: the config's test_cfg.score_thr, 0.05; a lower value needs --set model.test_cfg.score_thr=T).", valueName: "T"))
    var scoreThr: Double?

    @Flag(name: .long, help: "Do not write drawn images.")
    var noDraw = false

    @Option(name: .long, help: ArgumentHelp("Tiled inference: cut each image into W x H windows (or N x N), detect in each, merge (see above).", valueName: "WxH"))
    var tile: String?

    @Option(name: .long, help: ArgumentHelp("With --tile: fraction of a window shared with its neighbour, in [0, 0.9] (default 0.25).", valueName: "R"))
    var overlap: Double?

    /// --tile and --overlap, validated.
    var tiling: TileSettings? {
        guard let tile, let size = TileSettings.parseSize(tile) else { return nil }
        return TileSettings(width: size.width, height: size.height, overlap: overlap ?? 0.25)
    }

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one INPUT (image, folder or list file)") }
        if let scoreThr, !(scoreThr >= 0 && scoreThr < 1) { throw ValidationError("--score-thr must be in [0, 1)") }
        if let tile, TileSettings.parseSize(tile) == nil {
            throw ValidationError("--tile takes WxH with two positive integers, e.g. 800x800, not '\(tile)'")
        }
        if let overlap {
            guard tile != nil else { throw ValidationError("--overlap needs --tile") }
            guard overlap >= 0 && overlap <= 0.9 else { throw ValidationError("--overlap must be in [0, 0.9], not \(overlap)") }
        }
    }

    func run() throws {
        try reportingErrors {
            let (files, problems) = InferenceInputs.collect(inputs, recursive: recursive)
            guard !files.isEmpty else {
                for p in problems { printError(p.description) }
                throw ToolError("no image files in the inputs (\(inputs.joined(separator: " ")))"
                                   + (recursive ? "" : "; folders are scanned without subfolders unless --recursive"))
            }
            try InferenceRun.prepareOutputDirectory(out)
            let detector = try model.makeDetector()
            var options = InferOptions(outputDirectory: out, batchSize: batch.batchSize, scoreThreshold: scoreThr,
                                       draw: !noDraw, recursive: recursive)
            options.prefetchBatches = batch.prefetch
            options.tiling = tiling
            let progress = batch.progress(total: files.count, label: "infer")
            let summary = try InferenceRun.run(detector: detector, files: files, inputProblems: problems,
                                               options: options, progress: progress,
                                               report: { progress?.log("error: " + $0) ?? printError($0) })
            print(summary.text)
            if summary.failedCount > 0 {
                printError("\(summary.failedCount) input\(summary.failedCount == 1 ? "" : "s") failed (listed above and in \(summary.summaryPath))")
                throw ExitCode(1)
            }
        }
    }
}
