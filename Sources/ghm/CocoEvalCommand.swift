import ArgumentParser
import COCO

/// `ghm cocoeval`: COCO box evaluation of a detections file, as pycocotools' COCOeval.
struct CocoEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cocoeval",
        abstract: "Evaluate COCO-format box detections against COCO ground truth (pycocotools' COCOeval in Swift).",
        discussion: """
            Reads the ground truth (a COCO instances JSON such as instances_val2017.json) and the \
            detections (a JSON array of {"image_id", "category_id", "bbox": [x, y, w, h], "score"}, \
            mmdet's result format) and prints the 12 standard numbers exactly as pycocotools' \
            summarize() does: AP at IoU .50:.95, .50 and .75, AP for small/medium/large objects, \
            and AR at 1/10/100 detections and per area.

            --json writes the numbers, per-category AP and the precision-recall curves as JSON; \
            --plot writes PNG precision-recall plots (pr_all.png and one per category) into a folder.

            Results for images or categories that are not in the ground truth, boxes that are not 4 \
            finite numbers with non-negative size, and non-finite scores are errors (exit code 1).
            """)

    @OptionGroup var groundTruth: GroundTruthOptions

    @Option(name: .long, help: ArgumentHelp("Detections JSON (COCO result format).", valueName: "DETS.json"))
    var results: String

    @Option(name: .long, help: ArgumentHelp("Write the metrics as JSON to this file.", valueName: "OUT.json"))
    var json: String?

    @Option(name: .long, help: ArgumentHelp("Write PNG precision-recall plots into this folder.", valueName: "DIR"))
    var plot: String?

    func run() throws {
        let output: String
        do {
            output = try COCOEvalRun.run(ann: groundTruth.ann, results: results, json: json, plot: plot,
                                         perCategory: groundTruth.perCategory)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        print(output)
    }
}
