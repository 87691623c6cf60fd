import TestSupport
import Torch
import XCTest

@testable import Detection

/// Target assignment (anchors, valid flags, MaxIoUAssigner, pseudo sampler, encoding, unmap, images_to_levels)
/// against MMDetection's own `AnchorHead.get_targets`, for GT layouts chosen to hit the edge cases: exact IoU ties
/// and a later GT overwriting an earlier one, a GT lying in the batch padding of the smaller image, a thin box that
/// is positive only by low-quality matching, and an image without any GT.
final class AssignerTests: XCTestCase {
    static let sizes: [(h: Int, w: Int)] = [(40, 52), (20, 26), (10, 13), (5, 7), (3, 4)]  // a 320×416 batch
    static let metas = [
        ImageMeta(filename: "a", oriShape: (319, 416, 3), imgShape: (319, 416, 3), padShape: (320, 416, 3), scaleFactor: [1, 1, 1, 1]),
        ImageMeta(filename: "b", oriShape: (200, 300, 3), imgShape: (200, 300, 3), padShape: (224, 320, 3), scaleFactor: [1, 1, 1, 1]),
        ImageMeta(filename: "c", oriShape: (300, 400, 3), imgShape: (300, 400, 3), padShape: (320, 416, 3), scaleFactor: [1, 1, 1, 1]),
    ]
    /// Image a: two identical boxes (the later one wins every tie), a box centred on the anchor grid (many exact ties),
    /// a thin box (best IoU below 0.4), a box touching the border. Image b: a normal box and one in the batch
    /// padding (x beyond its pad width 320). Image c: no GT.
    static let gts: [[[Float]]] = [
        [[40, 40, 104, 104, 3], [40, 40, 104, 104, 7], [160, 96, 224, 160, 12], [300, 50, 302, 170, 79], [380, 200, 416, 319, 0]],
        [[20, 30, 150, 180, 5], [330, 100, 400, 200, 9]],
        [],
    ]

    func testTargetsEqualMMDetection() throws {
        let gtText = Self.gts.map { img in "[" + img.map { "[\($0.map { "\($0)" }.joined(separator: ", "))]" }.joined(separator: ", ") + "]" }
        let ref = try mmdetPython("""
            import os, mmdet
            from mmcv import Config
            from mmdet.models import build_head
            cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim/configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py'))
            hc = cfg.model.bbox_head
            hc.update(train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg)
            head = build_head(hc)
            sizes = \(Self.sizes.map { [$0.h, $0.w] })
            metas = [dict(img_shape=(319, 416, 3), pad_shape=(320, 416, 3)), dict(img_shape=(200, 300, 3), pad_shape=(224, 320, 3)),
                     dict(img_shape=(300, 400, 3), pad_shape=(320, 416, 3))]
            gts = [\(gtText.joined(separator: ", "))]
            boxes = [torch.tensor([g[:4] for g in img], dtype=torch.float32).reshape(-1, 4) for img in gts]
            labels = [torch.tensor([int(g[4]) for g in img], dtype=torch.long) for img in gts]
            anchors, valid = head.get_anchors([torch.Size(s) for s in sizes], metas, device='cpu')
            t = head.get_targets(anchors, valid, boxes, metas, gt_labels_list=labels, label_channels=80)
            for l in range(5):
                out[f'labels.{l}'] = t[0][l]; out[f'label_weights.{l}'] = t[1][l]
                out[f'bbox_targets.{l}'] = t[2][l]; out[f'bbox_weights.{l}'] = t[3][l]
            out['num_total_pos'] = t[4]
            """)
        let model = try RetinaNet(try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")))
        let boxes = try Self.gts.map { img throws(TorchError) in try Tensor(img.flatMap { Array($0.prefix(4)) }, shape: [img.count, 4]) }
        let labels = try Self.gts.map { img throws(TorchError) in try Tensor(img.map { Int64($0[4]) }) }
        let t = try model.bboxHead.targets(sizes: Self.sizes, gtBoxes: boxes, gtLabels: labels, metas: Self.metas,
                                           trainCfg: model.config.model.trainCfg, device: .cpu)
        for l in 0..<5 {
            assertClose(t.labels[l], ref["labels.\(l)"], atol: 0, rtol: 0, "labels.\(l)")
            assertClose(t.labelWeights[l], ref["label_weights.\(l)"], atol: 0, rtol: 0, "label_weights.\(l)")
            assertClose(t.bboxTargets[l], ref["bbox_targets.\(l)"], atol: 0, rtol: 0, "bbox_targets.\(l)")
            assertClose(t.bboxWeights[l], ref["bbox_weights.\(l)"], atol: 0, rtol: 0, "bbox_weights.\(l)")
        }
        XCTAssertEqual(t.numTotalPos, ref["num_total_pos"] as? Int)
        // The cases did occur: of the duplicated boxes, the later one (7) wins the anchors tied at the best IoU while
        // the rest keep the first (3, argmax); the thin box (79) is positive; image b's anchors in the batch padding
        // are ignored (weight 0) although a GT lies there; the empty image is all negative.
        let all = try Tensor.cat(t.labels, dim: 1)
        let perImage = try (0..<3).map { i throws(TorchError) in Set(try all[i].int64s()) }
        XCTAssertTrue(perImage[0].isSuperset(of: [3, 7, 79]), "\(perImage[0])")
        XCTAssertEqual(perImage[2], [80])
        let flags = try Tensor.cat(model.bboxHead.anchorGenerator.validFlags(sizes: Self.sizes, padShape: (224, 320), device: .cpu))
        let weights = try Tensor.cat(t.labelWeights, dim: 1)[1]
        XCTAssertGreaterThan(try flags.logicalNot().sum().itemInt(), 0)
        XCTAssertEqual(try weights.maskedSelect(flags.logicalNot()).sum().item(), 0)
        XCTAssertEqual(try Tensor.cat(t.labelWeights, dim: 1)[2].amin().item(), 1, "no GT: every anchor a weighted negative")
    }

    func testIoUMatchesTheDefinition() throws {
        let a = try Tensor([0, 0, 10, 10, 5, 5, 15, 15] as [Float], shape: [2, 4])
        let b = try Tensor([0, 0, 10, 10, 20, 20, 20, 20] as [Float], shape: [2, 4])
        let iou = try bboxOverlaps(a, b).floats()
        XCTAssertEqual(iou[0], 1)
        XCTAssertEqual(iou[1], 0, "a degenerate box: union clamped at 1e-6, no NaN")
        XCTAssertEqual(iou[2], Float(25) / Float(175), accuracy: 1e-7)
    }
}
