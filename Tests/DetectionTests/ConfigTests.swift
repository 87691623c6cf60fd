import TestSupport
import XCTest

@testable import Detection

final class ConfigTests: XCTestCase {
    let ghm = Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")
    let focal = Repo.path("configs/retinanet_r50_fpn_1x_coco.yml")

    func testShippedConfigsDecode() throws {
        let c = try DetectorConfig.load(path: ghm)
        XCTAssertEqual(c.model.backbone.depth, 50)
        XCTAssertEqual(c.model.backbone.frozenStages, 1)
        XCTAssertEqual(c.model.neck.addExtraConvs, "on_input")
        XCTAssertEqual(c.model.bboxHead.anchorGenerator.strides, [8, 16, 32, 64, 128])
        guard case let .ghmc(bins, momentum, lossWeight, _, _) = c.model.bboxHead.lossCls else { return XCTFail("GHMC") }
        XCTAssertEqual([Double(bins), momentum, lossWeight], [30, 0.75, 1])
        guard case let .ghmr(mu, rbins, rmomentum, rweight, _, _) = c.model.bboxHead.lossBbox else { return XCTFail("GHMR") }
        XCTAssertEqual([mu, Double(rbins), rmomentum, rweight], [0.02, 10, 0.7, 10])
        XCTAssertEqual(c.optimizer.lr, 0.01)
        XCTAssertEqual(c.optimizerConfig.gradClipMaxNorm, 35)
        XCTAssertEqual(c.lrConfig.step, [8, 11])
        XCTAssertEqual(c.model.testCfg.nmsPre, 1000)
        XCTAssertEqual(c.model.testCfg.nmsIouThreshold, 0.5)
        let t = try c.testTransform()
        XCTAssertEqual([t.imgScale.0, t.imgScale.1, t.sizeDivisor], [1333, 800, 32])
        XCTAssertEqual(t.flipRatio, 0)
        XCTAssertEqual(try c.trainTransform().flipRatio, 0.5)
        let f = try DetectorConfig.load(path: focal)
        guard case .focal = f.model.bboxHead.lossCls, case .l1 = f.model.bboxHead.lossBbox else { return XCTFail("focal/L1") }
        XCTAssertNil(f.optimizerConfig.gradClipMaxNorm)
    }

    func testUnknownKeysAndBadValuesNameThePath() throws {
        let text = try String(contentsOfFile: ghm, encoding: .utf8)
        func message(_ yaml: String, _ overrides: [String] = []) -> String {
            do {
                _ = try DetectorConfig.parse(yaml, overrides: overrides, file: "x.yml")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(message(text.replacingOccurrences(of: "    num_outs: 5", with: "    num_outs: 5\n    numouts: 5")),
                       "x.yml: model.neck.numouts: unknown key")
        XCTAssertEqual(message(text, ["model.bbox_head.loss_cls.gamma=2"]),
                       "x.yml: model.bbox_head.loss_cls.gamma: unknown key for GHMC")
        XCTAssertEqual(message(text, ["model.backbone.type=ResNeXt"]),
                       "x.yml: model.backbone.type: unsupported 'ResNeXt' (supported: ResNet)")
        XCTAssertTrue(message(text, ["model.bbox_head.num_classes=lots"]).hasPrefix("x.yml: model.bbox_head.num_classes: expected"))
        XCTAssertEqual(message(text, ["test_pipeline.1.transforms.9.keep_ratio=true"]),
                       "x.yml: test_pipeline.1.transforms.9.keep_ratio: '9' is not an index of a list of 6")
        XCTAssertEqual(message(text, ["model.neck.num_outs=4"]),
                       "x.yml: model.bbox_head.anchor_generator.strides: 5 strides for 4 FPN levels")
        XCTAssertTrue(message("model: [1, 2").contains("invalid YAML"))
        XCTAssertThrowsError(try DetectorConfig.load(path: "/nonexistent.yml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("/nonexistent.yml: cannot read"), "\(e)")
        }
    }

    /// mmcv 1.4's EvalHook: `start` evaluates after epochs start, start + interval, …, and once before training
    /// when the run's first epoch qualifies (with interval 2 and start 0 it does not: (0 + 1 − 0) % 2 ≠ 0).
    func testEvaluationStart() throws {
        let plain = try DetectorConfig.load(path: ghm, overrides: ["evaluation.interval=2"]).evaluation
        XCTAssertEqual((0...4).map { plain.evaluates(afterEpochs: $0) }, [true, false, true, false, true])
        XCTAssertFalse(plain.evaluatesBefore(epoch: 0))
        let start0 = try DetectorConfig.load(path: ghm, overrides: ["evaluation.start=0"]).evaluation
        XCTAssertTrue(start0.evaluatesBefore(epoch: 0))
        XCTAssertEqual((1...3).map { start0.evaluates(afterEpochs: $0) }, [true, true, true])
        let start0By2 = try DetectorConfig.load(path: ghm, overrides: ["evaluation.start=0", "evaluation.interval=2"]).evaluation
        XCTAssertFalse(start0By2.evaluatesBefore(epoch: 0))
        XCTAssertTrue(start0By2.evaluatesBefore(epoch: 1), "a run resumed after epoch 1")
        let start3 = try DetectorConfig.load(path: ghm, overrides: ["evaluation.start=3"]).evaluation
        XCTAssertEqual((1...4).map { start3.evaluates(afterEpochs: $0) }, [false, false, true, true])
        XCTAssertFalse(start3.evaluatesBefore(epoch: 0))
        XCTAssertThrowsError(try DetectorConfig.load(path: ghm, overrides: ["evaluation.start=-1"])) { e in
            XCTAssertTrue("\(e)".contains("evaluation.start"), "\(e)")
        }
    }

    func testOverrides() throws {
        let c = try DetectorConfig.load(path: ghm, overrides: ["test_pipeline.1.img_scale=[416, 320]",
                                                               "model.test_cfg.score_thr=0.3"])
        let t = try c.testTransform()
        XCTAssertEqual([t.imgScale.0, t.imgScale.1], [416, 320])
        XCTAssertEqual(c.model.testCfg.scoreThr, 0.3)
    }

    /// mmcv's rescale_size: 640×480 → 1067×800 (scale factors from the integer sizes).
    func testResizeRule() {
        let t = ImageTransform()
        XCTAssertTrue(t.resizedSize(width: 640, height: 480) == (1067, 800))
        XCTAssertTrue(t.resizedSize(width: 480, height: 640) == (800, 1067))
        XCTAssertTrue(t.resizedSize(width: 3000, height: 1000) == (1333, 444))
        XCTAssertEqual(t.padded(1067), 1088)
    }
}
