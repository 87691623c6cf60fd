import COCO
import Foundation
import Support

/// Swift COCOEvaluator against pycocotools on the same data, in the same run.
public struct COCOBenchmarkResult: Sendable, CustomStringConvertible {
    public var images: Int
    public var annotations: Int
    public var detections: Int
    public var categories: Int
    /// Wall seconds of each Swift evaluate + accumulate + summarize (`COCOEvaluator.init`,
    /// `evaluate()`, `table`); loading the files is not timed, as for pycocotools.
    public var swiftTimes: [Double]
    /// Wall seconds of each pycocotools `COCOeval` evaluate + accumulate + summarize.
    public var pycocotoolsTimes: [Double]
    /// Largest difference of the 12 summary numbers between the two.
    public var maxStatDifference: Double

    public var swiftMedian: Double { Statistics.median(swiftTimes) }
    public var pycocotoolsMedian: Double { Statistics.median(pycocotoolsTimes) }
    /// Swift time / pycocotools time (medians); smaller is better, the goal is <= 0.5.
    public var ratio: Double { swiftMedian / pycocotoolsMedian }

    public var description: String {
        """
        cocoeval benchmark: \(images) images, \(annotations) annotations, \(detections) detections, \(categories) categories
          swift       median \(String(format: "%.4f", swiftMedian)) s over \(swiftTimes.count) runs
          pycocotools median \(String(format: "%.4f", pycocotoolsMedian)) s over \(pycocotoolsTimes.count) runs
          ratio swift/pycocotools = \(String(format: "%.4f", ratio)) (goal <= 0.5); max |stat diff| = \(String(format: "%.2e", maxStatDifference))
        """
    }
}

public enum COCOBenchmark {
    /// Times the Swift evaluation and pycocotools on one data set. With `gt`/`results` nil, a
    /// synthetic set is generated with `tools/make_coco_fixture.py` (defaults: 600 images,
    /// 20 categories, about 21,000 detections) into a temporary folder. `repoRoot` is where
    /// `tools/` and `.venv/` are; `python` defaults to `<repoRoot>/.venv/bin/python`.
    public static func run(repoRoot: String, python: String? = nil, gt: String? = nil, results: String? = nil,
                           images: Int = 600, categories: Int = 20, detsPerImage: Double = 45, seed: Int = 7,
                           swiftRuns: Int = 7, pycocotoolsRuns: Int = 3) throws -> COCOBenchmarkResult {
        var cleanup: URL? = nil
        defer { if let cleanup { try? FileManager.default.removeItem(at: cleanup) } }
        let gtPath: String, resultsPath: String
        if let gt, let results {
            gtPath = gt
            resultsPath = results
        } else {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coco-bench-\(UUID().uuidString.prefix(8))")
            cleanup = dir
            (gtPath, resultsPath) = try COCOPythonTools.makeFixture(
                repoRoot: repoRoot, python: python, seed: seed, outDir: dir.path,
                images: images, categories: categories, detsPerImage: detsPerImage)
        }
        let dataset = try COCODataset.load(path: gtPath)
        let dets = try COCOResults.load(path: resultsPath, dataset: dataset)
        var metrics: COCOMetrics? = nil
        let swiftTimes = try Statistics.time(runs: swiftRuns) {
            let m = try COCOEvaluator(gt: dataset, dets: dets).evaluate()
            _ = m.table
            metrics = m
        }
        let reference = try COCOPythonTools.reference(repoRoot: repoRoot, python: python, ann: gtPath,
                                                      results: resultsPath, time: max(1, pycocotoolsRuns))
        let diff = zip(metrics!.stats, reference.stats).map { abs($0 - $1) }.max() ?? .nan
        return COCOBenchmarkResult(images: dataset.images.count, annotations: dataset.annotations.count,
                                   detections: dets.count, categories: dataset.categories.count,
                                   swiftTimes: swiftTimes, pycocotoolsTimes: reference.times, maxStatDifference: diff)
    }
}
