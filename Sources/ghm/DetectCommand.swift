import ArgumentParser
import Detection
import Foundation

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Detect objects in images and print the detections (class, score, box in original pixels).",
        discussion: """
            Runs MMDetection's test pipeline (keep-ratio resize to img_scale, normalise, pad to 32), the model, and \
            its post-processing (per-level top-1000, decode, rescale, score > score_thr, class-wise NMS, top \
            max_per_img). Class names come from the checkpoint's meta.CLASSES, else the config.

            Example:
              ghm detect --config configs/retinanet_ghm_r50_fpn_1x_coco.yml --checkpoint ghm.pth demo.jpg
            """)

    @OptionGroup var model: ModelOptions

    @Flag(help: "Print JSON (one object with a list of images) instead of text.")
    var json = false

    @Option(help: "Only print detections with at least this score.")
    var scoreThr: Double?

    @Argument(help: "Image files.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
    }

    func run() throws {
        try reportingErrors {
            let detector = try model.makeDetector()
            var outputs: [[String: Any]] = []
            var failed = 0
            for path in images {
                do {
                    let dets = try detector.detect(paths: [path])[0]
                    let rows = try dets.rows().filter { Double($0.score) >= (scoreThr ?? 0) }
                    if json {
                        outputs.append(["file": path, "detections": rows.map { r -> [String: Any] in
                            ["label": r.label, "class": detector.className(r.label), "score": Double(r.score),
                             "bbox": r.box.map(Double.init)]
                        }])
                    } else {
                        print("\(path): \(rows.count) detection\(rows.count == 1 ? "" : "s")")
                        for r in rows {
                            let box = r.box.map { String(format: "%.1f", $0) }.joined(separator: ", ")
                            let name = detector.className(r.label)
                            let padded = name.padding(toLength: Swift.max(name.count, 16), withPad: " ", startingAt: 0)
                            print("  \(padded) \(String(format: "%.3f", r.score))  [\(box)]")
                        }
                    }
                } catch {
                    failed += 1
                    printError("\(path): \(error)")
                    if json { outputs.append(["file": path, "error": "\(error)"]) }
                }
            }
            if json {
                let data = try JSONSerialization.data(withJSONObject: ["images": outputs], options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
