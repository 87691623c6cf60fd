import Detection
import Foundation
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// A fresh model (no load_from) against mmdet's `set_random_seed` + `build_detector` + `init_weights`.
final class InitTests: XCTestCase {
    func testFreshInitMatchesMMDetection() throws {
        let out = TrainFixture.work + "/fresh_init.safetensors"
        try FileManager.default.createDirectory(atPath: TrainFixture.work, withIntermediateDirectories: true)
        _ = try mmdetPython("""
            from mmcv import Config
            from mmdet.apis import set_random_seed
            from mmdet.models import build_detector
            from safetensors.torch import save_file
            import mmdet, os
            cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim/configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py'))
            cfg.model.backbone.init_cfg = None
            cfg.model.bbox_head.num_classes = 3
            set_random_seed(0)
            m = build_detector(cfg.model)
            m.init_weights()
            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, \(String(reflecting: out)))
            """)
        let ref = try Checkpoint.load(out).stateDict(at: nil)
        let config = try DetectorConfig.load(path: TrainFixture.config, overrides: ["model.bbox_head.num_classes=3", "model.backbone.init_cfg=null"])
        try Torch.manualSeed(0)
        let model = try RetinaNet(config)
        var differing: [String] = []
        for (k, t) in model.stateDict() {
            guard let r = ref[k] else { differing.append("\(k) (missing)"); continue }
            if try !bitEqual(t, r) { differing.append(k) }
        }
        XCTAssertEqual(differing, [], "\(differing.count) of \(model.stateDict().count) tensors differ")
    }
}
