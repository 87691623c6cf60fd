import TestSupport
import Torch
import XCTest

@testable import Detection
import TorchNN

final class ModelKeysTests: XCTestCase {
    /// The most valuable single test: the model's (key, shape) list equals MMDetection's for the official checkpoint
    /// (354 keys + the 4 GHM buffers), in mmdet's order.
    func testStateDictKeysAndShapesMatchMMDetection() throws {
        let tsv = try String(contentsOfFile: Repo.path("Tests/Fixtures/retinanet_ghm_r50_fpn_state_dict_keys.tsv"), encoding: .utf8)
        let expected = tsv.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line -> String in
            let f = line.split(separator: "\t")
            let shape = f[1] == "scalar" ? "[]" : "[" + f[1].split(separator: "x").joined(separator: ", ") + "]"
            return "\(f[0]) \(shape) \(f[2])"
        }
        XCTAssertEqual(expected.count, 358)
        let model = try RetinaNet(try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")))
        let got = try model.stateDict().map { "\($0.key) \($0.tensor.shape) \(try $0.tensor.dtype)" }
        XCTAssertEqual(got, expected)
        XCTAssertEqual(model.namedParameters().count, 195)
        XCTAssertEqual(model.parameters().reduce(0) { $0 + $1.numel }, 37_968_692)
        XCTAssertEqual(model.optionalKeys, ["bbox_head.loss_cls.edges", "bbox_head.loss_cls.acc_sum",
                                            "bbox_head.loss_bbox.edges", "bbox_head.loss_bbox.acc_sum"])
        // frozen_stages=1: stem and layer1 do not train; everything else does
        let frozen = model.namedParameters().filter { !$0.tensor.requiresGrad }.map(\.key)
        XCTAssertTrue(frozen.allSatisfy { $0.hasPrefix("backbone.conv1") || $0.hasPrefix("backbone.bn1") || $0.hasPrefix("backbone.layer1.") })
        XCTAssertEqual(frozen.count, 3 + 3 * 3 * 3 + 3)  // conv1 + bn1(w,b) ; layer1: 3 blocks × (3 conv + 6 bn) + downsample 3
        // GHM buffers as mmdet builds them
        XCTAssertEqual(try model.bboxHead.lossCls.namedBuffers().first { $0.key == "edges" }!.tensor.floats().last, Float(1.000001))
    }

    func testFocalConfigHasNoGHMBuffers() throws {
        let model = try RetinaNet(try DetectorConfig.load(path: Repo.path("configs/retinanet_r50_fpn_1x_coco.yml")))
        XCTAssertEqual(model.stateDict().count, 354)
        XCTAssertTrue(model.optionalKeys.isEmpty)
    }

    func testTrainModeKeepsFrozenAndBNInEval() throws {
        let model = try RetinaNet(try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")))
        model.train()
        XCTAssertTrue(model.isTraining)
        XCTAssertFalse(model.backbone.bn1.isTraining)
        XCTAssertTrue(model.namedModules().compactMap { $0.1 as? TorchNN.BatchNorm2d }.allSatisfy { !$0.isTraining })
        XCTAssertTrue(model.bboxHead.isTraining)
    }
}
