import Foundation
import XCTest
@testable import COCO

/// Bad input gives a COCOError that names the file and the item.
final class COCOErrorTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try makeTempDir("errors") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Loads `gtText` (and `detsText` against it) and returns the error message.
    func gtError(_ gtText: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let path = try! writeText(gtText, dir, "gt.json")
        do {
            _ = try COCODataset.load(path: path)
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch let e as COCOError {
            XCTAssertTrue(e.message.hasPrefix(path + ": "), "message should start with the file: \(e.message)", file: file, line: line)
            return e.message
        } catch {
            XCTFail("not a COCOError: \(error)", file: file, line: line)
            return ""
        }
    }

    func detsError(_ detsText: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let gt = try! COCODataset.load(path: try! writeText(smallGT, dir, "gt.json"))
        let path = try! writeText(detsText, dir, "dets.json")
        do {
            _ = try COCOResults.load(path: path, dataset: gt)
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch let e as COCOError {
            XCTAssertTrue(e.message.hasPrefix(path + ": "), "message should start with the file: \(e.message)", file: file, line: line)
            return e.message
        } catch {
            XCTFail("not a COCOError: \(error)", file: file, line: line)
            return ""
        }
    }

    func assertContains(_ message: String, _ parts: String..., file: StaticString = #filePath, line: UInt = #line) {
        for part in parts {
            XCTAssertTrue(message.contains(part), "\"\(message)\" should contain \"\(part)\"", file: file, line: line)
        }
    }

    func testMissingFileAndDirectory() {
        let missing = dir + "/nope.json"
        XCTAssertThrowsError(try COCODataset.load(path: missing)) { error in
            XCTAssertEqual((error as? COCOError)?.message, "\(missing): file not found")
        }
        XCTAssertThrowsError(try COCODataset.load(path: dir)) { error in
            assertContains("\(error)", dir, "is a directory")
        }
        XCTAssertThrowsError(try COCOEvalRun.run(ann: missing, results: missing)) { error in
            assertContains("\(error)", "nope.json", "file not found")
        }
    }

    func testInvalidJSON() {
        assertContains(gtError(""), "file is empty")
        assertContains(gtError("{\"images\": [}"), "invalid JSON at line 1, column 13", "images[0]", "unexpected character '}'")
        assertContains(gtError("{\"images\": [],\n \"categories\": [],\n \"x\" 1}"), "invalid JSON at line 3, column 6", "x: ",
                       "unexpected character '1', expected ':'")
        assertContains(gtError("{\"images\": [], \"categories\": []} x"), "after the end of the JSON value")
        assertContains(gtError("{\"images\": [{\"id\": 1, \"file_name\": \"a\n\"}]}"), "images[0].file_name", "control character")
        assertContains(gtError("[1, 2]"), "expected an object, found an array")
        assertContains(detsError("{\"image_id\": 1}"), "expected an array")
        assertContains(detsError("[{\"image_id\": 1, \"category_id\": 7, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}"),
                       "unexpected end of file")
    }

    func testGroundTruthSchemaErrors() {
        func gt(annotations: String) -> String {
            """
            {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 7, "name": "cat"}],
             "annotations": \(annotations)}
            """
        }
        let ok = #"{"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}"#
        assertContains(gtError(gt(annotations: "[\(ok), {\"id\": 2, \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, 3]}]")),
                       "annotations[1].bbox: expected array of 4 numbers [x, y, w, h], found 3 numbers")
        assertContains(gtError(gt(annotations: "[\(ok), {\"id\": 2, \"image_id\": 1, \"category_id\": 7, \"bbox\": \"0 0 1 1\"}]")),
                       "annotations[1].bbox: expected array of 4 numbers")
        assertContains(gtError(gt(annotations: "[{\"id\": 2, \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, \"a\", 4]}]")),
                       "annotations[0].bbox: expected array of 4 numbers")
        assertContains(gtError(gt(annotations: "[{\"id\": 2, \"image_id\": 1, \"bbox\": [1, 2, 3, 4]}]")),
                       "annotations[0].category_id: missing required field")
        assertContains(gtError(gt(annotations: "[{\"id\": \"x\", \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, 3, 4]}]")),
                       "annotations[0].id: expected an integer, found a string")
        assertContains(gtError(gt(annotations: "[{\"id\": 1.5, \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, 3, 4]}]")),
                       "annotations[0].id: expected an integer, found 1.5")
        assertContains(gtError(gt(annotations: "[\(ok), {\"id\": 2, \"image_id\": 9, \"category_id\": 7, \"bbox\": [1, 2, 3, 4]}]")),
                       "annotations[1].image_id: unknown image id 9")
        assertContains(gtError(gt(annotations: "[\(ok), {\"id\": 2, \"image_id\": 2, \"category_id\": 8, \"bbox\": [1, 2, 3, 4]}]")),
                       "annotations[1].category_id: unknown category id 8")
        assertContains(gtError(gt(annotations: "[\(ok), \(ok)]")), "annotations[1].id: duplicate annotation id 1")
        assertContains(gtError(gt(annotations: "[{\"id\": 2, \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, -3, 4]}]")),
                       "annotations[0].bbox: negative size (width -3, height 4)")
        assertContains(gtError(gt(annotations: "[{\"id\": 2, \"image_id\": 1, \"category_id\": 7, \"bbox\": [1, 2, 3, 4], \"area\": -1}]")),
                       "annotations[0].area")
        assertContains(gtError("{\"images\": [{\"id\": 1}, {\"id\": 1}], \"categories\": []}"), "images[1].id: duplicate image id 1")
        assertContains(gtError("{\"images\": [], \"categories\": [{\"id\": 1}, {\"id\": 1}]}"), "categories[1].id: duplicate category id 1")
        assertContains(gtError("{\"images\": []}"), "categories: missing required field")
        assertContains(gtError("{\"images\": {}, \"categories\": []}"), "images: expected an array")
    }

    func testResultsErrors() {
        func det(image: String = "1", category: String = "7", bbox: String = "[0, 0, 5, 5]", score: String = "0.5") -> String {
            "{\"image_id\": \(image), \"category_id\": \(category), \"bbox\": \(bbox), \"score\": \(score)}"
        }
        let ok = det()
        assertContains(detsError("[\(ok), \(det(image: "99"))]"), "results[1].image_id: unknown image id 99")
        assertContains(detsError("[\(ok), \(ok), \(det(category: "8"))]"), "results[2].category_id: unknown category id 8")
        assertContains(detsError("[\(det(bbox: "[0, 0, -1, 5]"))]"), "results[0].bbox: negative size (width -1, height 5)")
        assertContains(detsError("[\(ok), \(det(bbox: "[0, 0, 5]"))]"), "results[1].bbox: expected array of 4 numbers")
        assertContains(detsError("[\(ok), \(det(bbox: "[0, 0, 5, 5, 1]"))]"), "results[1].bbox: expected array of 4 numbers", "found 5")
        assertContains(detsError("[\(ok), \(det(score: "NaN"))]"), "results[1].score", "NaN is not allowed")
        assertContains(detsError("[\(det(score: "Infinity"))]"), "results[0].score", "Infinity is not allowed")
        assertContains(detsError("[\(ok),\n \(det(score: "-Infinity"))]"), "results[1].score", "line 2", "-Infinity is not allowed")
        assertContains(detsError("[\(det(score: "1e999"))]"), "results[0].score", "1e999 is out of range")
        assertContains(detsError("[\(det(score: "\"high\""))]"), "results[0].score: expected a number, found a string")
        assertContains(detsError("[\(det(score: "null"))]"), "results[0].score: expected a number, found null")
        assertContains(detsError("[{\"image_id\": 1, \"category_id\": 7, \"score\": 0.5}]"), "results[0].bbox: missing required field")
    }

    func testEvaluatorRejectsBadDetectionsBuiltInCode() throws {
        let gt = try COCODataset.decode(data: Data(smallGT.utf8), file: "gt.json")
        let good = COCODetection(imageId: 1, categoryId: 7, bbox: COCOBox(x: 0, y: 0, width: 5, height: 5), score: 0.5)
        var bad = good
        bad.score = .nan
        XCTAssertThrowsError(try COCOEvaluator(gt: gt, dets: COCOResults(detections: [good, bad]))) { error in
            assertContains("\(error)", "results[1].score", "finite")
        }
        bad = good
        bad.imageId = 42
        XCTAssertThrowsError(try COCOEvaluator(gt: gt, dets: COCOResults(detections: [bad]))) { error in
            assertContains("\(error)", "results[0].image_id", "unknown image id 42")
        }
        XCTAssertThrowsError(try COCODetection(imageId: 1, label: 2, x1: 0, y1: 0, x2: 1, y2: 1, score: 1, dataset: gt)) { error in
            assertContains("\(error)", "label 2")
        }
        XCTAssertThrowsError(try COCOResults(detections: [bad.with(score: .infinity)]).jsonData())
    }

    func testLabelMappingAndResultsRoundTrip() throws {
        let gt = try COCODataset.decode(data: Data(smallGT.utf8), file: "gt.json")
        XCTAssertEqual(gt.catIds, [7, 3])  // file order, not sorted
        XCTAssertEqual(gt.label(forCategoryId: 3), 1)
        XCTAssertEqual(gt.categoryId(forLabel: 0), 7)
        XCTAssertNil(gt.categoryId(forLabel: 2))
        XCTAssertEqual(gt.classNames, ["cat", "dog"])
        XCTAssertEqual(gt.annotations(forImageId: 2).map(\.id), [2])
        XCTAssertEqual(gt.image(id: 1)?.width, 100)

        var results = COCOResults()
        try results.append(imageId: 1, label: 1, x1: 10, y1: 20, x2: 30.5, y2: 60, score: 0.125, dataset: gt)
        try results.append(imageId: 2, label: 0, x1: 0, y1: 0, x2: 1e-7, y2: 3, score: 0.1, dataset: gt)
        XCTAssertEqual(results.detections[0].categoryId, 3)
        XCTAssertEqual(results.detections[0].bbox, COCOBox(x: 10, y: 20, width: 20.5, height: 40))
        let path = dir + "/sub/results.json"
        try results.write(to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/sub"), ["results.json"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("[{\"image_id\": 1, \"bbox\": [10, 20, 20.5, 40], \"score\": 0.125, \"category_id\": 3}"), text)
        let back = try COCOResults.load(path: path, dataset: gt)
        XCTAssertEqual(back.detections, results.detections)
    }

    func testUnknownFieldsAndOptionalFields() throws {
        let gt = try COCODataset.decode(data: Data("""
            {"images": [{"id": 1.0, "extra": {"a": [1, 2]}}], "categories": [{"id": 4, "name": "x", "keypoints": []}],
             "annotations": [{"id": 3, "image_id": 1, "category_id": 4, "bbox": [1, 1, 4, 5], "segmentation": {"counts": "abc"},
                              "iscrowd": false, "ignore": 1}], "info": null}
            """.utf8))
        XCTAssertEqual(gt.images[0].id, 1)
        XCTAssertNil(gt.images[0].width)
        XCTAssertEqual(gt.annotations[0].area, 20)  // w*h when "area" is missing
        XCTAssertFalse(gt.annotations[0].isCrowd)
        XCTAssertTrue(gt.annotations[0].ignore)
    }
}

extension COCODetection {
    func with(score: Double) -> COCODetection {
        var d = self
        d.score = score
        return d
    }

    func testPlotFileNamesAreSafe() {
        XCTAssertEqual(COCOEvalRun.safeName("traffic light/2"), "traffic_light_2")
        XCTAssertEqual(COCOEvalRun.safeName(""), "category")
    }
}
