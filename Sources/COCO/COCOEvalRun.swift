import Foundation
import Imaging

/// What `ghm cocoeval` does, as a function that tests can call.
public enum COCOEvalRun {
    /// Loads `ann` (COCO instances JSON) and `results` (detections JSON), evaluates, writes the
    /// metrics JSON to `json` and PNG precision-recall plots into the folder `plot` when given,
    /// and returns the text to print: pycocotools' 12-line table, then with `perCategory` the
    /// per-category AP table, then one line per file written.
    public static func run(ann: String, results: String, json: String? = nil, plot: String? = nil,
                           perCategory: Bool = false) throws -> String {
        let dataset = try COCODataset.load(path: ann)
        let detections = try COCOResults.load(path: results, dataset: dataset)
        let metrics = try COCOEvaluator(gt: dataset, dets: detections).evaluate()
        var lines = [metrics.text(perCategory: perCategory)]
        if let json {
            try metrics.writeJSON(to: json, includeCurves: true)
            lines.append("wrote metrics to \(json)")
        }
        if let plot {
            let files = try writePlots(metrics, to: plot)
            lines.append("wrote \(files.count) precision-recall plot\(files.count == 1 ? "" : "s") to \(plot)")
        }
        return lines.joined(separator: "\n")
    }

    /// Writes `pr_all.png` (all categories) and `pr_<id>_<name>.png` for each category into
    /// `directory` (created if needed); returns the paths.
    @discardableResult
    public static func writePlots(_ metrics: COCOMetrics, to directory: String) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw COCOError(file: directory, "cannot create plot directory (\(error.localizedDescription))")
        }
        let dir = URL(fileURLWithPath: directory)
        var written: [String] = []
        let overall = dir.appendingPathComponent("pr_all.png").path
        try PNGEncoder.write(metrics.precisionRecallPlot(title: "ALL CATEGORIES (AREA ALL, MAXDETS 100)",
                                                         categoryId: nil).render(), to: overall)
        written.append(overall)
        for category in metrics.categories {
            let path = dir.appendingPathComponent("pr_\(category.id)_\(safeName(category.name)).png").path
            try PNGEncoder.write(metrics.precisionRecallPlot(title: "\(category.name) (ID \(category.id))",
                                                             categoryId: category.id).render(), to: path)
            written.append(path)
        }
        return written
    }

    /// A file-name-safe form of a category name ("traffic light" -> "traffic_light").
    static func safeName(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { s -> Character in
            (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "-") && s.isASCII ? Character(s) : "_"
        }
        let s = String(mapped)
        return s.isEmpty ? "category" : String(s.prefix(60))
    }
}
