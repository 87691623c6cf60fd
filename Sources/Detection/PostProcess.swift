import Torch

/// mmdet 2.16.0 `AnchorHead._get_bboxes` + `multiclass_nms` + mmcv `batched_nms`, in the same order of operations.
public struct PostProcessor {
    public let cfg: TestCfg
    public let coder: DeltaXYWHBBoxCoder
    public let anchors: AnchorGenerator
    public let numClasses: Int

    public init(cfg: TestCfg, coder: DeltaXYWHBBoxCoder, anchors: AnchorGenerator, numClasses: Int) {
        self.cfg = cfg
        self.coder = coder
        self.anchors = anchors
        self.numClasses = numClasses
    }

    /// Detections per image from the raw head outputs of a batch. `rescale` divides boxes by the scale factors.
    public func detections(clsScores: [Tensor], bboxPreds: [Tensor], metas: [ImageMeta],
                           rescale: Bool = true) throws(TorchError) -> [Detections] {
        try withNoGrad { () throws(TorchError) -> [Detections] in
            let (boxes, scores) = try candidates(clsScores: clsScores, bboxPreds: bboxPreds, metas: metas, rescale: rescale)
            var out: [Detections] = []
            for i in 0..<metas.count { out.append(try multiclassNMS(boxes[i], scores[i])) }
            return out
        }
    }

    /// Per level: sigmoid scores, top-`nms_pre` anchors by max class score, decoded and clipped boxes; levels
    /// concatenated; optionally rescaled. Returns (B, K, 4) boxes and (B, K, C) scores.
    func candidates(clsScores: [Tensor], bboxPreds: [Tensor], metas: [ImageMeta],
                    rescale: Bool) throws(TorchError) -> (Tensor, Tensor) {
        let batch = try clsScores[0].size(0)
        let device = try clsScores[0].device
        var mlvlBoxes: [Tensor] = [], mlvlScores: [Tensor] = []
        for (level, (cls, reg)) in zip(clsScores, bboxPreds).enumerated() {
            let h = try cls.size(2), w = try cls.size(3)
            var scores = try cls.permute([0, 2, 3, 1]).reshape([batch, -1, numClasses]).sigmoid()
            var pred = try reg.permute([0, 2, 3, 1]).reshape([batch, -1, 4])
            var anc = try anchors.gridAnchors(level: level, height: h, width: w, device: device).expand(pred.shape)
            let count = try pred.size(1)
            if cfg.nmsPre > 0 && cfg.nmsPre < count {
                let maxScores = try scores.amax([-1])
                let topk = try maxScores.topk(cfg.nmsPre).indices  // (B, k)
                let idx = try topk.unsqueeze(-1)
                anc = try anc.gather(dim: 1, index: idx.expand([batch, cfg.nmsPre, 4]))
                pred = try pred.gather(dim: 1, index: idx.expand([batch, cfg.nmsPre, 4]))
                scores = try scores.gather(dim: 1, index: idx.expand([batch, cfg.nmsPre, numClasses]))
            }
            let shapes = metas.map { (h: $0.imgShape.h, w: $0.imgShape.w) }
            mlvlBoxes.append(try coder.decode(anc, pred, maxShape: shapes))
            mlvlScores.append(scores)
        }
        var boxes = try Tensor.cat(mlvlBoxes, dim: 1)
        if rescale {
            let factors = try Tensor(metas.flatMap(\.scaleFactor), shape: [metas.count, 4]).to(device).unsqueeze(1)
            boxes = try boxes / factors
        }
        return (boxes, try Tensor.cat(mlvlScores, dim: 1))
    }

    /// `multiclass_nms(bboxes, scores, score_thr, nms, max_per_img)` for one image: every (box, class) pair with
    /// score > score_thr, per-class NMS by mmcv's coordinate-offset trick, the best `max_per_img` kept.
    func multiclassNMS(_ boxes: Tensor, _ scores: Tensor) throws(TorchError) -> Detections {
        let k = try scores.size(0), c = try scores.size(1)
        let allBoxes = try boxes.unsqueeze(1).expand([k, c, 4]).reshape([-1, 4])
        let allScores = try scores.reshape([-1])
        let allLabels = try Tensor.arange(c, device: scores.device).view([1, -1]).expand([k, c]).reshape([-1])
        let inds = try (allScores .> cfg.scoreThr).nonzero().squeeze(1)
        let b = try allBoxes.indexSelect(dim: 0, index: inds)
        let s = try allScores.indexSelect(dim: 0, index: inds)
        let l = try allLabels.indexSelect(dim: 0, index: inds)
        guard s.numel > 0 else { return Detections(boxes: b, scores: s, labels: l) }
        // batched_nms: offsets = label · (max coordinate + 1), added to all four coordinates (float32)
        let maxCoordinate = try b.max()
        let offsets = try l.to(b.dtype) * (maxCoordinate + Tensor(scalar: Float(1)).to(b.device))
        let shifted = try b + offsets.unsqueeze(1)
        var keep = try Functional.nms(boxes: shifted, scores: s, iouThreshold: cfg.nmsIouThreshold)
        if cfg.maxPerImg > 0 && keep.numel > cfg.maxPerImg { keep = try keep.narrow(dim: 0, start: 0, length: cfg.maxPerImg) }
        return Detections(boxes: try b.indexSelect(dim: 0, index: keep), scores: try s.indexSelect(dim: 0, index: keep),
                          labels: try l.indexSelect(dim: 0, index: keep))
    }
}
