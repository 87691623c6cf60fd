import Detection
import Foundation
import Inference
import TestSupport
import Torch
import TorchCheckpoint
@testable import Training
import XCTest

/// Fine-tuning's starting points against MMDetection: `load_from` across a class-count change, the pretrained
/// backbone from torchvision's file, and the checks made before the first iteration.
final class FineTuneTests: XCTestCase {
    /// The fixture's overrides with the classes and the backbone init replaced.
    func overrides(classes: [String], backboneInit: String? = "null") throws -> [String] {
        var o = TrainFixture.overrides(try TrainFixture.data(), scale: (128, 96), epochs: 1).filter {
            !$0.hasPrefix("data.train.classes=") && !$0.hasPrefix("model.bbox_head.num_classes=") && !$0.hasPrefix("model.backbone.init_cfg=")
        }
        o += ["data.train.classes=[\(classes.joined(separator: ", "))]", "model.bbox_head.num_classes=\(classes.count)"]
        if let backboneInit { o.append("model.backbone.init_cfg=\(backboneInit)") }
        return o
    }

    func makeTrainer(_ name: String, overrides: [String], configure: (inout TrainOptions) -> Void = { _ in }) throws -> Trainer {
        let resolved = try DetectorConfig.resolved(path: TrainFixture.config, overrides: overrides)
        let dir = TrainFixture.work + "/" + name
        try? FileManager.default.removeItem(atPath: dir)
        var options = TrainOptions(workDir: dir, configYAML: resolved.yaml, configName: "finetune")
        options.seed = 0
        options.validate = false
        options.echo = { _ in }
        configure(&options)
        return try Trainer(config: resolved.config, options: options)
    }

    /// mmdet's model after `set_random_seed(0)`, `build_detector`, `init_weights` and, optionally,
    /// `load_checkpoint(strict=False)` as `load_from` does; the state dict in a safetensors file.
    func mmdetStart(numClasses: Int, backbone: String?, loadFrom: String?, out: String) throws -> [String: Tensor] {
        _ = try mmdetPython("""
            import contextlib
            from mmcv import Config
            from mmcv.runner import load_checkpoint
            from mmdet.apis import set_random_seed
            from mmdet.models import build_detector
            from safetensors.torch import save_file
            import mmdet, os
            with contextlib.redirect_stdout(sys.stderr):
                cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim/configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py'))
                backbone = \(backbone.map { String(reflecting: $0) } ?? "None")
                cfg.model.backbone.init_cfg = None if backbone is None else dict(type='Pretrained', checkpoint=backbone)
                cfg.model.bbox_head.num_classes = \(numClasses)
                set_random_seed(0)
                m = build_detector(cfg.model)
                m.init_weights()
                load_from = \(loadFrom.map { String(reflecting: $0) } ?? "None")
                if load_from is not None:
                    load_checkpoint(m, load_from, map_location='cpu', strict=False)
                save_file({k: v.contiguous() for k, v in m.state_dict().items()}, \(String(reflecting: out)))
            """)
        return try Checkpoint.load(out).stateDict(at: nil).tensors
    }

    func differing(_ model: [(key: String, tensor: Tensor)], _ ref: [String: Tensor]) throws -> [String] {
        var keys: [String] = []
        for (k, t) in model {
            guard let r = ref[k] else { keys.append("\(k) (missing)"); continue }
            if try !bitEqual(t, r) { keys.append(k) }
        }
        return keys
    }

    /// An 80-class checkpoint loaded into a 1-class and a 3-class model: the classifier's two tensors are skipped
    /// and listed and keep the fresh init (prior bias −log(99)); everything else equals the file; the whole model
    /// equals mmdet's after the same load.
    func testLoadFromAcrossClassCounts() throws {
        let start = try TrainFixture.startCheckpoint()
        let file = try Checkpoint.load(start).stateDict().tensors
        for classes in [["boat"], ["person", "airplane", "boat"]] {
            let k = classes.count
            var lines: [String] = []
            let trainer = try makeTrainer("load-from-\(k)", overrides: try overrides(classes: classes)) {
                $0.loadFrom = start
                $0.echo = { lines.append($0) }
            }
            let log = try TrainLog(workDir: trainer.options.workDir, timestamp: "test", echo: trainer.options.echo)
            try trainer.loadStartingWeights(log: log)
            log.close()
            XCTAssertEqual(trainer.iteration, 0)
            XCTAssertEqual(trainer.epoch, 0)
            let text = lines.joined(separator: "\n")
            let logged = try String(contentsOfFile: trainer.options.workDir + "/test.log", encoding: .utf8)
            for needle in ["size mismatch for bbox_head.retina_cls.weight: copying a param with shape [720, 256, 3, 3] from checkpoint, "
                           + "the shape in current model is [\(9 * k), 256, 3, 3]",
                           "size mismatch for bbox_head.retina_cls.bias", "356 of 358 tensors loaded"] {
                XCTAssertTrue(text.contains(needle), "terminal lacks '\(needle)':\n\(text)")
                XCTAssertTrue(logged.contains(needle), "log lacks '\(needle)'")
            }
            let state = trainer.model.stateDict()
            for (key, t) in state where !key.hasPrefix("bbox_head.retina_cls.") {
                XCTAssertTrue(try bitEqual(t, XCTUnwrap(file[key])), "\(key) differs from the file")
            }
            let bias = try XCTUnwrap(state.first { $0.key == "bbox_head.retina_cls.bias" }?.tensor)
            XCTAssertEqual(bias.shape, [9 * k])
            XCTAssertEqual(Set(try bias.floats()), [Float(-Foundation.log(99.0))], "prior bias −log((1−0.01)/0.01)")
            let ref = try mmdetStart(numClasses: k, backbone: nil, loadFrom: start,
                                     out: TrainFixture.work + "/mmdet_load_from_\(k).safetensors")
            XCTAssertEqual(try differing(state, ref), [], "\(k) class(es): tensors differing from mmdet's load_from")
        }
    }

    /// `init_cfg=Pretrained torchvision://resnet50` reads torchvision's ResNet-50 file (written here by Python torch
    /// in torchvision's layout: fc.* included, no num_batches_tracked) from $TORCH_HOME's cache; the whole fresh
    /// model equals mmdet's with the same file, and the report lists fc.* as unexpected.
    func testPretrainedBackboneFromTorchvisionFile() throws {
        let home = TrainFixture.work + "/torch-home"
        let cache = home + "/hub/checkpoints"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let file = cache + "/resnet50-0676ba61.pth"
        _ = try mmdetPython("""
            from mmdet.models.backbones import ResNet
            torch.manual_seed(5)
            sd = {}
            for k, v in ResNet(depth=50).state_dict().items():
                if k.endswith('num_batches_tracked'): continue
                sd[k] = torch.rand_like(v) + 0.5 if k.endswith('running_var') else torch.randn_like(v) * 0.05
            sd['fc.weight'] = torch.randn(1000, 2048) * 0.01
            sd['fc.bias'] = torch.zeros(1000)
            torch.save(sd, \(String(reflecting: file)))
            """)
        var lines: [String] = []
        let trainer = try makeTrainer("pretrained", overrides: try overrides(classes: ["person", "airplane", "boat"],
                                                                         backboneInit: nil)) {
            $0.environment = ["TORCH_HOME": home]
            $0.echo = { lines.append($0) }
        }
        let notes = trainer.initNotes.joined(separator: "\n")
        XCTAssertTrue(notes.contains(file), notes)
        XCTAssertTrue(notes.contains("unexpected key in source state_dict (2): fc.bias, fc.weight"), notes)
        XCTAssertTrue(notes.contains("missing keys in source state_dict (53)"), notes)
        let ref = try mmdetStart(numClasses: 3, backbone: file, loadFrom: nil, out: TrainFixture.work + "/mmdet_pretrained.safetensors")
        let state = trainer.model.stateDict()
        XCTAssertEqual(state.count, 358)
        XCTAssertEqual(try differing(state, ref), [], "tensors differing from mmdet's init with the pretrained backbone")
        let written = try Checkpoint.load(file).stateDict().tensors
        XCTAssertTrue(try bitEqual(XCTUnwrap(state.first { $0.key == "backbone.conv1.weight" }?.tensor), XCTUnwrap(written["conv1.weight"])))
    }

    /// No backbone file: the error names where it looked, what to put there and how to train without it; with
    /// load_from the file is not needed and its absence is a note.
    func testMissingBackboneFile() throws {
        let home = TrainFixture.work + "/empty-torch-home"
        try? FileManager.default.removeItem(atPath: home)
        let o = try overrides(classes: ["boat"], backboneInit: nil)
        XCTAssertThrowsError(try makeTrainer("no-backbone", overrides: o) { $0.environment = ["TORCH_HOME": home] }) { error in
            let text = "\(error)"
            for needle in [home + "/hub/checkpoints/resnet50-0676ba61.pth", "https://download.pytorch.org/models/resnet50-0676ba61.pth",
                           "--set model.backbone.init_cfg=null", "--load-from"] {
                XCTAssertTrue(text.contains(needle), "'\(needle)' not in: \(text)")
            }
        }
        let start = try TrainFixture.startCheckpoint()
        let trainer = try makeTrainer("no-backbone-load-from", overrides: o) {
            $0.environment = ["TORCH_HOME": home]
            $0.loadFrom = start
        }
        XCTAssertTrue(trainer.initNotes.contains { $0.hasPrefix("note: the backbone file") && $0.contains("not needed") },
                      "\(trainer.initNotes)")
    }

    /// A one-class model trained on `boat` writes CLASSES into its checkpoint; `ghm infer` with a config that
    /// names no classes then labels its detections "boat" (results.json, and the drawn image's labels).
    func testClassesRoundTripIntoInfer() throws {
        let fx = try TrainFixture.data()
        let work = TrainFixture.work + "/classes-roundtrip"
        try? FileManager.default.removeItem(atPath: work)
        let outcome = try TrainFixture.train(workDir: work, overrides: try overrides(classes: ["boat"]),
                                             loadFrom: try TrainFixture.startCheckpoint()) { $0.stopAfterIterations = 1 }
        let ckpt = try XCTUnwrap(outcome.lastCheckpoint)
        let meta = try XCTUnwrap(Checkpoint.load(ckpt).meta)
        XCTAssertEqual(meta["CLASSES"]?.items?.compactMap(\.string), ["boat"])
        // a config without data.test.classes: the names can only come from the checkpoint
        let config = try DetectorConfig.load(path: TrainFixture.config, overrides: [
            "model.bbox_head.num_classes=1", "model.test_cfg.score_thr=0.0", "test_pipeline.1.img_scale=[128, 96]"])
        XCTAssertNil(config.data.test.classes)
        let detector = try Detector(config: config, checkpoint: ckpt)
        XCTAssertEqual(detector.classNames, ["boat"])
        let out = work + "/infer"
        let summary = try InferenceRun.run(detector: detector, files: [fx + "/images/t00.png"],
                                           options: InferOptions(outputDirectory: out, scoreThreshold: 0.0))
        XCTAssertEqual(summary.succeededCount, 1)
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [[String: Any]])
        XCTAssertFalse(results.isEmpty, "no detection at score > 0")
        XCTAssertEqual(Set(results.compactMap { $0["class"] as? String }), ["boat"])
        XCTAssertEqual(Set(results.compactMap { $0["category_id"] as? Int }), [1])
    }

    /// A class count that disagrees with data.train.classes fails in the constructor, before any iteration, and
    /// says what to change; so does a validation set whose classes differ.
    func testNumClassesMismatchFailsBeforeTraining() throws {
        var o = try overrides(classes: ["person", "boat"])
        o.append("model.bbox_head.num_classes=3")
        XCTAssertThrowsError(try makeTrainer("mismatch", overrides: o)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("num_classes is 3") && text.contains("--set model.bbox_head.num_classes=2"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: TrainFixture.work + "/mismatch/finetune.yml"))
        XCTAssertThrowsError(try makeTrainer("val-mismatch", overrides: try overrides(classes: ["person", "boat"])) {
            $0.validate = true
        }) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("data.val") && text.contains("num_classes is 2"), text)
        }
    }
}
