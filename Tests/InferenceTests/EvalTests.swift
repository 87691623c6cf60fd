import COCO
import Foundation
import Support
import TestSupport
import XCTest
@testable import Detection
@testable import Inference

/// `ghm eval` against pycocotools (tools/coco_reference.py in .venv) on a tiny COCO-format set made here: synthetic
/// images whose ground truth is the model's own confident detections (score > 0.5), jittered, some dropped, some
/// relabelled, plus objects the model misses, so AP is meaningful (neither 0 nor 1). The categories are COCO's 80
/// ids in a shuffled file order, so a label → category mapping other than mmdet's (label i = i-th category of the
/// file) would collapse the AP.
final class EvalTests: XCTestCase {
    struct EvalSet {
        var root: String
        var images: String
        var ann: String
        var dataset: [String: Any]
        /// Image ids in file order.
        var imageIds: [Int]
        var categoryIds: [Int]
        /// Detections (all scores) per image id, from the in-process detector.
        var detectionCounts: [Int: Int]
    }

    private static let lock = NSLock()
    private static var cached: EvalSet?

    static func evalSet() throws -> EvalSet {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let detector = try InferFixture.detector()
        let src = try InferFixture.images()
        let root = InferFixture.work + "/eval-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        let imageDir = root + "/images"
        try FileManager.default.createDirectory(atPath: imageDir, withIntermediateDirectories: true)
        // COCO's ids in a shuffled (deterministic) file order: label i = categories[i]
        let ids = InferenceRun.cocoCategoryIds.sorted { ($0 * 37) % 101 < ($1 * 37) % 101 }
        XCTAssertNotEqual(ids, InferenceRun.cocoCategoryIds)
        let categories: [[String: Any]] = ids.map { ["id": $0, "name": "category_\($0)", "supercategory": "thing"] }
        var images: [[String: Any]] = [], annotations: [[String: Any]] = [], counts: [Int: Int] = [:]
        var imageIds: [Int] = []
        var annId = 1, j = 0
        for (k, size) in InferFixture.sizes.enumerated() {
            let name = "img_\(size).png"
            try FileManager.default.copyItem(atPath: "\(src)/synthetic_\(size)_s0.png", toPath: "\(imageDir)/\(name)")
            let id = 1000 + 7 * k
            imageIds.append(id)
            let rows = try detector.detect(paths: ["\(imageDir)/\(name)"])[0].rows()
            counts[id] = rows.count
            let wh = size.split(separator: "x").map { Double($0)! }
            images.append(["id": id, "file_name": name, "width": Int(wh[0]), "height": Int(wh[1])])
            func add(_ box: [Double], _ label: Int) {
                annotations.append(["id": annId, "image_id": id, "category_id": ids[label], "bbox": box,
                                    "area": box[2] * box[3], "iscrowd": 0])
                annId += 1
            }
            for row in rows where row.score > 0.5 {
                j += 1
                if j % 6 == 5 { continue }  // a detection without ground truth: a false positive
                let label = j % 7 == 3 ? (row.label + 1) % 80 : row.label  // wrong class: FP and FN
                let x1 = Double(row.box[0]), y1 = Double(row.box[1]), w = Double(row.box[2] - row.box[0]),
                    h = Double(row.box[3] - row.box[1])
                // jitter of up to ±12% of the size: a spread of IoUs around the thresholds
                let dx = Double((j * 13) % 9 - 4) * 0.03 * w, dy = Double((j * 7) % 9 - 4) * 0.03 * h
                let dw = Double((j * 5) % 7 - 3) * 0.04 * w, dh = Double((j * 11) % 7 - 3) * 0.04 * h
                add([x1 + dx, y1 + dy, max(1, w + dw), max(1, h + dh)], label)
            }
            add([2, 2, 0.3 * wh[0], 0.25 * wh[1]], 0)  // an object the model misses
        }
        let dataset: [String: Any] = ["images": images, "annotations": annotations, "categories": categories]
        let ann = root + "/ann.json"
        try JSONSerialization.data(withJSONObject: dataset).write(to: URL(fileURLWithPath: ann))
        let set = EvalSet(root: root, images: imageDir, ann: ann, dataset: dataset, imageIds: imageIds,
                          categoryIds: ids, detectionCounts: counts)
        cached = set
        return set
    }

    /// pycocotools' 12 numbers and table for a ground truth file and a results file.
    func pycocotools(ann: String, results: String) throws -> (stats: [Double], table: String) {
        let r = try runProcess(Repo.python, [Repo.path("tools/coco_reference.py"), "--ann", ann, "--results", results])
        guard r.status == 0 else { throw ProcessFailure(command: "coco_reference.py", status: r.status, stderr: r.stderr) }
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return (try XCTUnwrap(obj["stats"] as? [Double]), try XCTUnwrap(obj["table"] as? String))
    }

    func statsOf(metrics path: String) throws -> [Double] {
        let m = try XCTUnwrap(try InferFixture.json(path) as? [String: Any])
        return try XCTUnwrap(m["stats_list"] as? [Double])
    }

    func modelArgs() throws -> [String] {
        ["--config", InferFixture.config, "--checkpoint", try InferFixture.checkpoint()]
    }

    func testEvalMatchesPycocotools() throws {
        let set = try Self.evalSet()
        let out = set.root + "/out-\(UUID().uuidString.prefix(6))"
        let r = try InferFixture.runGHM(["eval"] + modelArgs() + ["--ann", set.ann, "--images", set.images, "--out", out,
                                                                  "--batch-size", "2"])
        print(r.stdout, r.stderr)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("[eval] 5/5 (100%)"), r.stderr)
        XCTAssertEqual(InferFixture.allFiles(out), ["metrics.json", "results.json"])
        let ours = try statsOf(metrics: out + "/metrics.json")
        let ref = try pycocotools(ann: set.ann, results: out + "/results.json")
        assertClose(ours, ref.stats, atol: 1e-4, rtol: 0, "ghm eval vs pycocotools")
        XCTAssertTrue(r.stdout.contains(ref.table), "the printed table is pycocotools':\n\(ref.table)\n---\n\(r.stdout)")
        XCTAssertGreaterThan(ours[0], 0.2, "AP is meaningful")
        XCTAssertLessThan(ours[0], 0.95)
        XCTAssertGreaterThan(ours[1], ours[2], "AP50 > AP75 with jittered ground truth")

        // the results: every detection of every image, mapped through the file's category order
        let results = try XCTUnwrap(try InferFixture.json(out + "/results.json") as? [[String: Any]])
        XCTAssertEqual(results.count, set.detectionCounts.values.reduce(0, +))
        for id in set.imageIds {
            XCTAssertEqual(results.filter { $0["image_id"] as? Int == id }.count, set.detectionCounts[id])
        }
        XCTAssertTrue(results.allSatisfy { Set(set.categoryIds).contains($0["category_id"] as? Int ?? -1) })
        XCTAssertEqual(Set(results[0].keys), ["image_id", "bbox", "score", "category_id"])
    }

    func testEvalMaxImagesAndMissingImage() throws {
        let set = try Self.evalSet()
        // a missing image as the second entry; --max-images 3 = first real image, the missing one, second real image
        var dataset = set.dataset
        var images = try XCTUnwrap(dataset["images"] as? [[String: Any]])
        images.insert(["id": 5, "file_name": "missing.png", "width": 300, "height": 200], at: 1)
        dataset["images"] = images
        let ann = set.root + "/ann-missing-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: dataset).write(to: URL(fileURLWithPath: ann))
        let out = set.root + "/out-\(UUID().uuidString.prefix(6))"
        let r = try InferFixture.runGHM(["eval"] + modelArgs() + ["--ann", ann, "--images", set.images, "--out", out,
                                                                  "--max-images", "3"])
        print(r.stdout, r.stderr)
        XCTAssertEqual(r.status, 1, "a missing image: exit code 1")
        XCTAssertTrue(r.stderr.contains("\(set.images)/missing.png"), r.stderr)
        XCTAssertTrue(r.stderr.contains("1 image could not be read"), r.stderr)
        XCTAssertTrue(r.stdout.contains("images: 3 (2 evaluated, 1 failed)"), r.stdout)
        let results = try XCTUnwrap(try InferFixture.json(out + "/results.json") as? [[String: Any]])
        let evaluated = Array(set.imageIds.prefix(2))
        XCTAssertEqual(Set(results.compactMap { $0["image_id"] as? Int }), Set(evaluated))

        // pycocotools on the same two images
        var subset = set.dataset
        subset["images"] = (set.dataset["images"] as! [[String: Any]]).filter { evaluated.contains($0["id"] as! Int) }
        subset["annotations"] = (set.dataset["annotations"] as! [[String: Any]]).filter { evaluated.contains($0["image_id"] as! Int) }
        let subsetAnn = set.root + "/ann-subset-\(UUID().uuidString.prefix(6)).json"
        try JSONSerialization.data(withJSONObject: subset).write(to: URL(fileURLWithPath: subsetAnn))
        let ref = try pycocotools(ann: subsetAnn, results: out + "/results.json")
        assertClose(try statsOf(metrics: out + "/metrics.json"), ref.stats, atol: 1e-4, rtol: 0, "subset vs pycocotools")
    }

    func testEvalErrors() throws {
        let set = try Self.evalSet()
        let root = try Repo.temporaryDirectory("ghm-eval-errors")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let args = try modelArgs()

        // missing annotation file
        var r = try InferFixture.runGHM(["eval"] + args + ["--ann", root + "/nope.json", "--images", set.images,
                                                           "--out", root + "/out"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: --ann \(root)/nope.json: no such file"), r.stderr)

        // 3 categories for an 80-class model
        var small = set.dataset
        small["categories"] = Array((set.dataset["categories"] as! [[String: Any]]).prefix(3))
        let keep = Set(set.categoryIds.prefix(3))
        small["annotations"] = (set.dataset["annotations"] as! [[String: Any]]).filter { keep.contains($0["category_id"] as! Int) }
        try JSONSerialization.data(withJSONObject: small).write(to: URL(fileURLWithPath: root + "/three.json"))
        r = try InferFixture.runGHM(["eval"] + args + ["--ann", root + "/three.json", "--images", set.images,
                                                       "--out", root + "/out"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("num_classes is 80 but \(root)/three.json has 3 categories"), r.stderr)

        // output folder that cannot be created (its parent is a file)
        try "x".write(toFile: root + "/file", atomically: true, encoding: .utf8)
        r = try InferFixture.runGHM(["eval"] + args + ["--ann", set.ann, "--images", set.images, "--out", root + "/file/out"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: output folder \(root)/file/out: cannot create it"), r.stderr)

        // a broken annotation file names the problem
        try "{\"images\": [".write(toFile: root + "/broken.json", atomically: true, encoding: .utf8)
        r = try InferFixture.runGHM(["eval"] + args + ["--ann", root + "/broken.json", "--images", set.images])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("broken.json"), r.stderr)

        XCTAssertEqual(InferFixture.allFiles(root), ["broken.json", "file", "three.json"], "nothing written")
    }

    override class func tearDown() {
        if let cached { try? FileManager.default.removeItem(atPath: cached.root) }
        super.tearDown()
    }
}
