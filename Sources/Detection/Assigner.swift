import Torch

/// mmdet's `bbox_overlaps(b1, b2, mode='iou')` (BboxOverlaps2D, fp32): areas (x2−x1)(y2−y1) without +1, the
/// intersection clamped at 0, the union at least 1e-6. (G, 4) × (N, 4) → (G, N).
public func bboxOverlaps(_ b1: Tensor, _ b2: Tensor) throws(TorchError) -> Tensor {
    let rows = try b1.size(0), cols = try b2.size(0)
    if rows * cols == 0 { return try Tensor.zeros([rows, cols], device: b1.device) }
    func col(_ t: Tensor, _ i: Int) throws(TorchError) -> Tensor { try t.select(dim: -1, index: i) }
    let area1 = try (col(b1, 2) - col(b1, 0)) * (col(b1, 3) - col(b1, 1))
    let area2 = try (col(b2, 2) - col(b2, 0)) * (col(b2, 3) - col(b2, 1))
    let lt = try b1.slice(dim: 1, end: 2).unsqueeze(1).maximum(b2.slice(dim: 1, end: 2).unsqueeze(0))
    let rb = try b1.slice(dim: 1, start: 2).unsqueeze(1).minimum(b2.slice(dim: 1, start: 2).unsqueeze(0))
    let wh = try (rb - lt).clamp(min: 0)
    let overlap = try col(wh, 0) * col(wh, 1)
    let union = try area1.unsqueeze(1) + area2.unsqueeze(0) - overlap
    let eps = try Tensor([Float(1e-6)]).to(union.device)
    return try overlap / union.maximum(eps)
}

/// The result of assigning anchors to ground-truth boxes: `gtInds` (N,) int64 with −1 ignored, 0 negative and
/// i + 1 for the i-th box; `labels` (N,) the class of positives, −1 elsewhere.
public struct AssignResult {
    public var gtInds: Tensor
    public var labels: Tensor
    public var maxOverlaps: Tensor
}

/// mmdet's `MaxIoUAssigner` (`ignore_iof_thr` ≤ 0): negatives below `neg_iou_thr`, positives from `pos_iou_thr`,
/// then low-quality matches: every anchor whose IoU with box i equals box i's best IoU (≥ `min_pos_iou`) goes to
/// box i, later boxes overwriting earlier ones (`gt_max_assign_all`).
public struct MaxIoUAssigner {
    public let cfg: AssignerConfig

    public init(_ cfg: AssignerConfig) { self.cfg = cfg }

    public func assign(anchors: Tensor, gtBoxes: Tensor, gtLabels: Tensor) throws(TorchError) -> AssignResult {
        let n = try anchors.size(0), g = try gtBoxes.size(0)
        let device = try anchors.device
        if g == 0 || n == 0 {
            return AssignResult(gtInds: try Tensor.full([n], g == 0 ? 0 : -1, dtype: .int64, device: device),
                                labels: try Tensor.full([n], -1, dtype: .int64, device: device),
                                maxOverlaps: try Tensor.zeros([n], device: device))
        }
        let overlaps = try bboxOverlaps(gtBoxes, anchors)
        let (maxOverlaps, argmax) = try overlaps.max(dim: 0)
        let (gtMax, gtArgmax) = try overlaps.max(dim: 1)
        var assigned = try Tensor.full([n], -1, dtype: .int64, device: device)
        try assigned.maskedFill_((maxOverlaps .>= 0) .& (maxOverlaps .< cfg.negIouThr), 0)
        assigned = try Tensor.where(maxOverlaps .>= cfg.posIouThr, argmax + 1, assigned)
        if cfg.matchLowQuality {
            let eligible = try gtMax .>= cfg.minPosIou  // (G,)
            if cfg.gtMaxAssignAll {
                // For each anchor the last box i (in order) whose best IoU it attains: i + 1, else 0.
                let hit = try (overlaps .== gtMax.unsqueeze(1)) .& eligible.unsqueeze(1)
                let rank = try hit.to(.int64) * Tensor.arange(1, g + 1, device: device).unsqueeze(1)
                let last = try rank.amax([0])
                assigned = try Tensor.where(last .> 0, last, assigned)
            } else {
                let ok = try eligible.bools(), best = try gtArgmax.int64s()
                for i in 0..<g where ok[i] {
                    try assigned.narrow(dim: 0, start: Int(best[i]), length: 1).fill_(i + 1)
                }
            }
        }
        let positive = try assigned .> 0
        let gathered = try gtLabels.indexSelect(dim: 0, index: (assigned - 1).clamp(min: 0))
        let labels = try Tensor.where(positive, gathered, Tensor.full([n], -1, dtype: .int64, device: device))
        return AssignResult(gtInds: assigned, labels: labels, maxOverlaps: maxOverlaps)
    }
}
