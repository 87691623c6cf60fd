import Foundation
import TestSupport
import XCTest
import GHMTools
@testable import COCO

/// Agreement with pycocotools (run through tools/coco_reference.py) on fixtures written by
/// tools/make_coco_fixture.py into a temporary folder.
final class COCOReferenceTests: XCTestCase {
    struct Comparison {
        var maxStat = 0.0
        var maxPerCategory = 0.0
        var maxPrecision = 0.0
        var maxRecall = 0.0
    }

    /// Evaluates `gt`/`dets` with both and checks every number; returns the largest differences.
    @discardableResult
    func compare(gt: String, dets: String, full: Bool, label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws -> (Comparison, COCOMetrics) {
        let dataset = try COCODataset.load(path: gt)
        let results = try COCOResults.load(path: dets, dataset: dataset)
        let metrics = try COCOEvaluator(gt: dataset, dets: results).evaluate()
        // One thread or several: the same bits.
        let serial = try COCOEvaluator(gt: dataset, dets: results)
        serial.concurrency = 1
        let serialMetrics = serial.evaluate()
        XCTAssertEqual(serialMetrics.precision, metrics.precision, "\(label): concurrency changes precision", file: file, line: line)
        XCTAssertEqual(serialMetrics.recall, metrics.recall, "\(label): concurrency changes recall", file: file, line: line)
        let ref = try COCOPythonTools.reference(repoRoot: repoRoot, python: pythonPath, ann: gt, results: dets, full: full)
        var c = Comparison()
        XCTAssertEqual(ref.stats.count, 12, file: file, line: line)
        for (i, (s, r)) in zip(metrics.stats, ref.stats).enumerated() {
            c.maxStat = max(c.maxStat, abs(s - r))
            XCTAssertEqual(s, r, accuracy: 1e-4, "\(label): stat \(i) \(COCOMetrics.statNames[i])", file: file, line: line)
        }
        // The table must read exactly as pycocotools prints it.
        XCTAssertEqual(metrics.table, ref.table, "\(label): table", file: file, line: line)
        // Per-category AP: the reference lists categories by ascending id.
        XCTAssertEqual(ref.perCategory.map(\.id), metrics.sortedCategoryIds, file: file, line: line)
        for (id, refAP) in ref.perCategory {
            let label0 = dataset.label(forCategoryId: id)!
            let ours = metrics.perCategoryAP[label0]
            switch (ours, refAP) {
            case (nil, nil): break
            case let (a?, b?):
                c.maxPerCategory = max(c.maxPerCategory, abs(a - b))
                XCTAssertEqual(a, b, accuracy: 1e-4, "\(label): AP of category \(id)", file: file, line: line)
            default:
                XCTFail("\(label): AP of category \(id): swift \(String(describing: ours)), pycocotools \(String(describing: refAP))",
                        file: file, line: line)
            }
        }
        if full, let p = ref.precision, let r = ref.recall {
            XCTAssertEqual(p.count, metrics.precision.count, file: file, line: line)
            XCTAssertEqual(r.count, metrics.recall.count, file: file, line: line)
            for (a, b) in zip(metrics.precision, p) { c.maxPrecision = max(c.maxPrecision, abs(a - b)) }
            for (a, b) in zip(metrics.recall, r) { c.maxRecall = max(c.maxRecall, abs(a - b)) }
            XCTAssertLessThanOrEqual(c.maxPrecision, 1e-9, "\(label): precision array", file: file, line: line)
            XCTAssertLessThanOrEqual(c.maxRecall, 1e-9, "\(label): recall array", file: file, line: line)
        }
        print("[\(label)] \(dataset.images.count) images, \(dataset.annotations.count) annotations, \(results.count) detections: "
              + "max |diff| stats \(c.maxStat), per-category \(c.maxPerCategory), precision \(c.maxPrecision), recall \(c.maxRecall)")
        return (c, metrics)
    }

    func testPythonReferenceAvailable() throws {
        try requirePycocotools()
    }

    func testAgreementOnRandomFixtures() throws {
        try requirePycocotools()
        let dir = try makeTempDir("fixtures")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let variants: [(seed: Int, images: Int, categories: Int, dets: Double, zeroId: Bool)] = [
            (1, 60, 8, 12, false), (2, 40, 5, 25, false), (3, 80, 12, 8, true), (4, 25, 3, 40, false),
            (5, 120, 6, 15, false), (6, 10, 10, 4, true),
        ]
        var worst = Comparison()
        for v in variants {
            let sub = dir + "/seed\(v.seed)"
            let (gt, dets) = try COCOPythonTools.makeFixture(repoRoot: repoRoot, python: pythonPath, seed: v.seed, outDir: sub,
                                                             images: v.images, categories: v.categories,
                                                             detsPerImage: v.dets, zeroAnnotationId: v.zeroId)
            let (c, _) = try compare(gt: gt, dets: dets, full: true, label: "seed \(v.seed)")
            worst.maxStat = max(worst.maxStat, c.maxStat)
            worst.maxPerCategory = max(worst.maxPerCategory, c.maxPerCategory)
            worst.maxPrecision = max(worst.maxPrecision, c.maxPrecision)
            worst.maxRecall = max(worst.maxRecall, c.maxRecall)
        }
        print("[random fixtures] worst |diff|: stats \(worst.maxStat), per-category \(worst.maxPerCategory), "
              + "precision \(worst.maxPrecision), recall \(worst.maxRecall)")
    }

    /// >= 500 images and >= 20,000 detections: the same numbers as pycocotools (its speed is `ghm bench cocoeval`).
    func testLargeSetAgreement() throws {
        try requirePycocotools()
        let dir = try makeTempDir("large")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (gt, dets) = try COCOPythonTools.makeFixture(repoRoot: repoRoot, python: pythonPath, seed: 7, outDir: dir,
                                                         images: 600, categories: 20, detsPerImage: 45)
        let dataset = try COCODataset.load(path: gt)
        let results = try COCOResults.load(path: dets, dataset: dataset)
        XCTAssertGreaterThanOrEqual(dataset.images.count, 500)
        XCTAssertGreaterThanOrEqual(results.count, 20_000)
        let metrics: COCOMetrics? = try COCOEvaluator(gt: dataset, dets: results).evaluate()
        let ref = try COCOPythonTools.reference(repoRoot: repoRoot, python: pythonPath, ann: gt, results: dets)
        var maxDiff = 0.0
        for (i, (s, r)) in zip(metrics!.stats, ref.stats).enumerated() {
            maxDiff = max(maxDiff, abs(s - r))
            XCTAssertEqual(s, r, accuracy: 1e-4, "stat \(COCOMetrics.statNames[i])")
        }
        XCTAssertEqual(metrics!.table, ref.table)
        var maxCat = 0.0
        for (id, refAP) in ref.perCategory {
            let ours = metrics!.perCategoryAP[dataset.label(forCategoryId: id)!]
            XCTAssertEqual(ours == nil, refAP == nil, "category \(id)")
            if let a = ours, let b = refAP {
                maxCat = max(maxCat, abs(a - b))
                XCTAssertEqual(a, b, accuracy: 1e-4, "category \(id)")
            }
        }
        print("[large] \(dataset.images.count) images, \(results.count) detections: max |diff| stats \(maxDiff), "
              + "per-category \(maxCat)")
    }

    func testEmptyResultsAndDetectionsOnlyOnEmptyImages() throws {
        try requirePycocotools()
        let dir = try makeTempDir("empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gt = try writeText(smallGT, dir, "gt.json")
        let empty = try writeText("[]", dir, "empty.json")
        let (c, m) = try compare(gt: gt, dets: empty, full: true, label: "empty results")
        XCTAssertEqual(c.maxStat, 0)
        XCTAssertEqual(m.stats[0], 0)
        XCTAssertEqual(m.stats[3], 0)   // small objects exist: AP 0
        XCTAssertEqual(m.stats[5], -1)  // no large objects: undefined

        // A ground truth with an image without objects, detections only there: all false positives.
        let gt2 = try writeText("""
            {"images": [{"id": 5}, {"id": 6}], "categories": [{"id": 1, "name": "a"}],
             "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]}
            """, dir, "gt2.json")
        let dets2 = try writeText("""
            [{"image_id": 6, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
             {"image_id": 6, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.9}]
            """, dir, "dets2.json")
        try compare(gt: gt2, dets: dets2, full: true, label: "false positives only")
    }

    func testHandMadeCrowdAndTieCases() throws {
        try requirePycocotools()
        let dir = try makeTempDir("hand")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Crowd region with detections inside, a detection matching a regular object equally
        // well as the crowd, equal scores in two images, an object with id 0.
        let gt = try writeText("""
            {"images": [{"id": 10}, {"id": 3}],
             "categories": [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}],
             "annotations": [
               {"id": 0, "image_id": 10, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
               {"id": 5, "image_id": 10, "category_id": 1, "bbox": [50, 50, 100, 100], "area": 10000, "iscrowd": 1},
               {"id": 6, "image_id": 10, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900, "iscrowd": 0, "ignore": 1},
               {"id": 7, "image_id": 3, "category_id": 1, "bbox": [0, 0, 32, 32], "area": 1024, "iscrowd": 0},
               {"id": 8, "image_id": 3, "category_id": 2, "bbox": [5, 5, 96, 96], "area": 9216, "iscrowd": 0}]}
            """, dir, "gt.json")
        let dets = try writeText("""
            [{"image_id": 10, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.8},
             {"image_id": 10, "category_id": 1, "bbox": [55, 55, 20, 20], "score": 0.8},
             {"image_id": 10, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.8},
             {"image_id": 10, "category_id": 1, "bbox": [70, 70, 20, 20], "score": 0.7},
             {"image_id": 3, "category_id": 1, "bbox": [0, 0, 32, 31], "score": 0.8},
             {"image_id": 3, "category_id": 1, "bbox": [1, 1, 32, 32], "score": 0.8},
             {"image_id": 3, "category_id": 2, "bbox": [5, 5, 96, 96], "score": 0.5},
             {"image_id": 3, "category_id": 2, "bbox": [5, 5, 0, 96], "score": 0.6}]
            """, dir, "dets.json")
        try compare(gt: gt, dets: dets, full: true, label: "hand-made")
    }

    func testBenchmarkHelper() throws {
        try requirePycocotools()
        let result = try COCOBenchmark.run(repoRoot: repoRoot, python: pythonPath, images: 40, categories: 5,
                                           detsPerImage: 10, seed: 11, swiftRuns: 3, pycocotoolsRuns: 1)
        print(result)
        XCTAssertEqual(result.images, 40)
        XCTAssertEqual(result.swiftTimes.count, 3)
        XCTAssertEqual(result.pycocotoolsTimes.count, 1)
        XCTAssertLessThanOrEqual(result.maxStatDifference, 1e-4)
        XCTAssertTrue(result.ratio.isFinite && result.ratio > 0)
    }

    func testEvalRunWritesTableJSONAndPlots() throws {
        try requirePycocotools()
        let dir = try makeTempDir("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (gt, dets) = try COCOPythonTools.makeFixture(repoRoot: repoRoot, python: pythonPath, seed: 21,
                                                         outDir: dir + "/data", images: 20, categories: 4)
        let jsonPath = dir + "/out/metrics.json", plotDir = dir + "/plots"
        let text = try COCOEvalRun.run(ann: gt, results: dets, json: jsonPath, plot: plotDir, perCategory: true)
        let ref = try COCOPythonTools.reference(repoRoot: repoRoot, python: pythonPath, ann: gt, results: dets)
        XCTAssertTrue(text.hasPrefix(ref.table + "\n"), text)
        XCTAssertTrue(text.contains("category"))
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: jsonPath))) as! [String: Any]
        let list = object["stats_list"] as! [Double]
        for (a, b) in zip(list, ref.stats) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual((object["stats"] as! [String: Double])["AP"]!, ref.stats[0], accuracy: 1e-12)
        XCTAssertEqual((object["per_category"] as! [Any]).count, 4)
        let curves = object["pr_curves"] as! [String: [Double]]
        XCTAssertEqual(curves["iou50"]?.count, 101)
        let pngs = try FileManager.default.contentsOfDirectory(atPath: plotDir).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(pngs.count, 5)
        XCTAssertTrue(pngs.contains("pr_all.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out"), ["metrics.json"])  // no temp files left
    }
}
