import GHMLosses
import Torch

/// Training targets of a batch, per FPN level: labels (N, A_l) int64 (C = background), label weights (N, A_l),
/// box targets and weights (N, A_l, 4); and `numTotalPos` = Σ_images max(#positives, 1) (mmdet's avg_factor).
public struct HeadTargets {
    public var labels: [Tensor]
    public var labelWeights: [Tensor]
    public var bboxTargets: [Tensor]
    public var bboxWeights: [Tensor]
    public var numTotalPos: Int
}

/// The head losses as mmdet reports them: one value per FPN level for each loss.
public struct HeadLosses {
    public var lossCls: [Tensor]
    public var lossBbox: [Tensor]

    /// mmdet's `_parse_losses`: per key the sum of the per-level means, then the sum of every loss.
    public func totals() throws(TorchError) -> (lossCls: Tensor, lossBbox: Tensor, loss: Tensor) {
        var cls = try lossCls[0].mean(), box = try lossBbox[0].mean()
        for t in lossCls.dropFirst() { cls = try cls + t.mean() }
        for t in lossBbox.dropFirst() { box = try box + t.mean() }
        return (cls, box, try cls + box)
    }
}

extension RetinaHead {
    /// `AnchorHead.get_targets` for the anchors of a batch whose feature maps have `sizes`.
    public func targets(sizes: [(h: Int, w: Int)], gtBoxes: [Tensor], gtLabels: [Tensor], metas: [ImageMeta],
                        trainCfg: TrainCfg, device: Device) throws(TorchError) -> HeadTargets {
        let levelAnchors = try anchorGenerator.gridAnchors(sizes: sizes, device: device)
        var counts: [Int] = []
        for a in levelAnchors { counts.append(try a.size(0)) }
        let anchors = try Tensor.cat(levelAnchors, dim: 0)
        let assigner = MaxIoUAssigner(trainCfg.assigner)
        var labels: [Tensor] = [], labelWeights: [Tensor] = [], boxTargets: [Tensor] = [], boxWeights: [Tensor] = []
        var numTotalPos = 0
        for (i, meta) in metas.enumerated() {
            let flags = try Tensor.cat(anchorGenerator.validFlags(sizes: sizes, padShape: (meta.padShape.h, meta.padShape.w),
                                                                  device: device), dim: 0)
            let t = try targetsSingle(anchors: anchors, validFlags: flags, gtBoxes: gtBoxes[i], gtLabels: gtLabels[i],
                                      meta: meta, trainCfg: trainCfg, assigner: assigner)
            labels.append(t.labels)
            labelWeights.append(t.labelWeights)
            boxTargets.append(t.bboxTargets)
            boxWeights.append(t.bboxWeights)
            numTotalPos += Swift.max(t.numPos, 1)
        }
        // images_to_levels: stack the images, split the anchors back into levels
        func levels(_ list: [Tensor]) throws(TorchError) -> [Tensor] {
            try Tensor.stack(list, dim: 0).split(counts, dim: 1)
        }
        return HeadTargets(labels: try levels(labels), labelWeights: try levels(labelWeights),
                           bboxTargets: try levels(boxTargets), bboxWeights: try levels(boxWeights),
                           numTotalPos: numTotalPos)
    }

    /// `_get_targets_single` with the pseudo sampler (every positive and negative anchor is used).
    func targetsSingle(anchors: Tensor, validFlags: Tensor, gtBoxes: Tensor, gtLabels: Tensor, meta: ImageMeta,
                       trainCfg: TrainCfg, assigner: MaxIoUAssigner) throws(TorchError)
        -> (labels: Tensor, labelWeights: Tensor, bboxTargets: Tensor, bboxWeights: Tensor, numPos: Int) {
        let inside = try insideFlags(anchors, validFlags, meta: meta, allowedBorder: trainCfg.allowedBorder)
        guard try inside.any().item() != 0 else {
            throw TorchError(op: "RetinaHead.targets", message: "'\(meta.filename)' has no valid anchor inside the image")
        }
        let insideIdx = try inside.nonzero().squeeze(1)
        let a = try anchors.indexSelect(dim: 0, index: insideIdx)
        let result = try assigner.assign(anchors: a, gtBoxes: gtBoxes, gtLabels: gtLabels)
        let m = try a.size(0), device = try a.device
        let posIdx = try (result.gtInds .> 0).nonzero().squeeze(1)
        let negIdx = try (result.gtInds .== 0).nonzero().squeeze(1)
        let labels = try Tensor.full([m], numClasses, dtype: .int64, device: device)
        let labelWeights = try Tensor.zeros([m], device: device)
        let targets = try Tensor.zeros([m, 4], device: device)
        let weights = try Tensor.zeros([m, 4], device: device)
        let numPos = posIdx.numel
        if numPos > 0 {
            let assignedGt = try result.gtInds.indexSelect(dim: 0, index: posIdx) - 1
            let encoded = try bboxCoder.encode(a.indexSelect(dim: 0, index: posIdx), gtBoxes.indexSelect(dim: 0, index: assignedGt))
            try targets.indexPut_(posIdx, encoded)
            try weights.indexFill_(posIdx, 1.0)
            try labels.indexPut_(posIdx, gtLabels.indexSelect(dim: 0, index: assignedGt))
            try labelWeights.indexFill_(posIdx, trainCfg.posWeight <= 0 ? 1.0 : trainCfg.posWeight)
        }
        if negIdx.numel > 0 { try labelWeights.indexFill_(negIdx, 1.0) }
        // unmap to all anchors: background label, zero weights and targets outside
        let total = try anchors.size(0)
        let fullLabels = try Tensor.full([total], numClasses, dtype: .int64, device: device).indexPut_(insideIdx, labels)
        let fullLW = try Tensor.zeros([total], device: device).indexPut_(insideIdx, labelWeights)
        let fullT = try Tensor.zeros([total, 4], device: device).indexPut_(insideIdx, targets)
        let fullW = try Tensor.zeros([total, 4], device: device).indexPut_(insideIdx, weights)
        return (fullLabels, fullLW, fullT, fullW, numPos)
    }

    /// `anchor_inside_flags`: with a negative allowed border the valid flags as they are.
    func insideFlags(_ anchors: Tensor, _ valid: Tensor, meta: ImageMeta, allowedBorder: Double) throws(TorchError) -> Tensor {
        guard allowedBorder >= 0 else { return valid }
        let b = allowedBorder
        let x1 = try anchors.select(dim: 1, index: 0), y1 = try anchors.select(dim: 1, index: 1)
        let x2 = try anchors.select(dim: 1, index: 2), y2 = try anchors.select(dim: 1, index: 3)
        return try valid .& (x1 .>= -b) .& (y1 .>= -b) .& (x2 .< Double(meta.imgShape.w) + b) .& (y2 .< Double(meta.imgShape.h) + b)
    }

    /// `AnchorHead.loss`: targets for the batch, then each loss called once per level on all images of the batch.
    public func loss(clsScores: [Tensor], bboxPreds: [Tensor], gtBoxes: [Tensor], gtLabels: [Tensor],
                     metas: [ImageMeta], trainCfg: TrainCfg) throws(TorchError) -> HeadLosses {
        var sizes: [(h: Int, w: Int)] = []
        for c in clsScores { sizes.append((h: try c.size(2), w: try c.size(3))) }
        let t = try targets(sizes: sizes, gtBoxes: gtBoxes, gtLabels: gtLabels, metas: metas, trainCfg: trainCfg,
                            device: clsScores[0].device)
        var lc: [Tensor] = [], lb: [Tensor] = []
        for l in 0..<clsScores.count {
            let cls = try clsScores[l].permute([0, 2, 3, 1]).reshape([-1, numClasses])
            lc.append(try lossCls(cls, labels: t.labels[l].reshape([-1]), labelWeights: t.labelWeights[l].reshape([-1]),
                                  avgFactor: Double(t.numTotalPos)))
            let reg = try bboxPreds[l].permute([0, 2, 3, 1]).reshape([-1, 4])
            lb.append(try lossBbox(reg, target: t.bboxTargets[l].reshape([-1, 4]), weights: t.bboxWeights[l].reshape([-1, 4]),
                                   avgFactor: Double(t.numTotalPos)))
        }
        return HeadLosses(lossCls: lc, lossBbox: lb)
    }
}

extension RetinaNet {
    /// `forward_train`: features of the batch, then the head losses. `gtBoxes[i]` (K_i, 4) in pre-processed-image
    /// pixels, `gtLabels[i]` (K_i,) int64.
    /// With `autocast` (mmdet's fp16 training: `auto_fp16(apply_to=('img',))` on the detector's forward), the image is
    /// cast to float16 (mmcv casts to half whatever autocast's dtype), the network runs under autocast, and its outputs
    /// are cast to float32 before the losses, which run outside it (`force_fp32` on the head's loss): GHM's histogram
    /// and weights stay in fp32.
    public func forwardTrain(_ images: Tensor, metas: [ImageMeta], gtBoxes: [Tensor], gtLabels: [Tensor],
                             autocast: DType? = nil) throws(TorchError) -> HeadLosses {
        var cls: [Tensor], reg: [Tensor]
        if let dt = autocast {
            (cls, reg) = try forwardMixedPrecision(images, dtype: dt)
            cls = try cls.map { t throws(TorchError) in try t.to(.float32) }
            reg = try reg.map { t throws(TorchError) in try t.to(.float32) }
        } else {
            (cls, reg) = try forwardRaw(images)
        }
        return try bboxHead.loss(clsScores: cls, bboxPreds: reg, gtBoxes: gtBoxes, gtLabels: gtLabels, metas: metas,
                                 trainCfg: config.model.trainCfg)
    }
}
