import Foundation
import TestSupport
import Training
import XCTest

/// log.json → curves, as mmdet's analyze_logs reads the file.
final class TrainCurvesTests: XCTestCase {
    func write(_ text: String) throws -> String {
        let path = try Repo.temporaryDirectory("curves") + "/curves.log.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testPointsAndPanels() throws {
        let path = try write("""
            {"env_info": "x", "config": "c", "seed": 0}
            {"mode": "train", "epoch": 1, "iter": 2, "lr": 0.001, "loss_cls": 4.0, "loss": 5.0}
            {"mode": "train", "epoch": 1, "iter": 4, "lr": 0.001, "loss_cls": 3.0, "loss": 4.0}
            {"mode": "val", "epoch": 1, "iter": 16, "lr": 0.001, "bbox_mAP": 0.125, "bbox_mAP_copypaste": "0.125 0.3"}
            {"mode": "train", "epoch": 2, "iter": 4, "lr": 0.001, "loss_cls": 2.0, "loss": 3.0}

            """)
        let curves = try TrainCurves(path: path)
        XCTAssertEqual(curves.records.count, 4)
        XCTAssertEqual(curves.points("loss_cls", mode: "train").map(\.x), [0.5, 1.0, 2.0])
        XCTAssertEqual(curves.points("loss_cls", mode: "train").map(\.y), [4, 3, 2])
        XCTAssertEqual(curves.points("bbox_mAP", mode: "val").map(\.x), [1])
        XCTAssertEqual(curves.points("bbox_mAP", mode: "val").map(\.y), [0.125])
        let both = try curves.render(trainKeys: ["loss_cls", "loss"], valKeys: ["bbox_mAP"], title: "t", width: 300)
        XCTAssertEqual([both.width, both.height], [300, 800], "loss panel and AP panel")
        let lossOnly = try curves.render(trainKeys: ["loss"], valKeys: ["bbox_mAP_50"], title: "t", width: 300)
        XCTAssertEqual(lossOnly.height, 400, "no val line has bbox_mAP_50")
        XCTAssertThrowsError(try curves.render(trainKeys: ["loss_bbox"], valKeys: [], title: "t")) { e in
            XCTAssertTrue("\(e)".contains("no train line has loss_bbox"), "\(e)")
        }
    }

    func testBadLineNamesFileAndLine() throws {
        let path = try write("{\"mode\": \"train\", \"epoch\": 1, \"iter\": 1, \"loss\": 1}\n{broken\n")
        XCTAssertThrowsError(try TrainCurves(path: path)) { e in
            XCTAssertTrue("\(e)".contains("\(path):2: not a JSON object"), "\(e)")
        }
    }
}
