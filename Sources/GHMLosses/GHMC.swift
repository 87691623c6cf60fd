import Torch
import TorchNN

/// Sums, in place, a float64 vector over the ranks of a data-parallel run: GHM's statistics of one call (the count
/// of every bin, then the number of valid elements), so that every rank weights its elements by the histogram of all
/// ranks' elements instead of its own (not mmdet's behaviour: there each rank keeps its own, see `statisticsSync`).
public typealias GHMStatisticsSync = (Tensor) throws(TorchError) -> Void

/// Which GHM implementation runs: a line-for-line port of mmdet's loop over bins (one host synchronisation per bin),
/// or a fused one-pass histogram (bucketize + bincount, no host synchronisation). They agree within 1e-6.
public enum GHMImplementation: String, Codable, Sendable { case port, fused }

/// GHM-C, the gradient-harmonised classification loss (mmdet 2.16.0 `GHMC`, sigmoid only). The gradient norm
/// g = |sigmoid(x) − y| of every valid element is binned into `bins` unit regions (edges k/bins, the last +1e-6);
/// each element is weighted by T / (its bin's count, or the bin's EMA with momentum) / (number of non-empty bins),
/// T = max(#valid, 1); the weighted BCE is summed and divided by T. With momentum, `acc_sum` is updated in place for
/// the non-empty bins of every call. `avg_factor` is accepted and ignored, as in mmdet.
public final class GHMC: ClassificationLoss {
    @Buffer public var edges: Tensor
    @Buffer public var accSum: Tensor?
    public let bins: Int
    public let momentum: Double
    public let lossWeight: Double
    public let reduction: LossReduction
    public var implementation: GHMImplementation
    /// When set (data-parallel training with the bin counts summed over the ranks), the weights come from every
    /// rank's histogram and valid count together; the loss is still divided by this rank's valid count. Needs the
    /// fused implementation. Nil (mmdet): each rank's own.
    public var statisticsSync: GHMStatisticsSync?

    public init(bins: Int = 10, momentum: Double = 0, useSigmoid: Bool = true, lossWeight: Double = 1,
                reduction: LossReduction = .mean, implementation: GHMImplementation = .fused) throws(TorchError) {
        guard useSigmoid else { throw TorchError(op: "GHMC", message: "use_sigmoid=False is not implemented (as in mmdet)") }
        (edges, accSum) = try GHMHistogram.buffers(op: "GHMC", bins: bins, momentum: momentum) { last throws(TorchError) in
            try last.add_(1e-6)
        }
        self.bins = bins
        self.momentum = momentum
        self.lossWeight = lossWeight
        self.reduction = reduction
        self.implementation = implementation
        super.init()
    }

    public override func callAsFunction(_ pred: Tensor, labels: Tensor, labelWeights: Tensor,
                                        avgFactor: Double) throws(TorchError) -> Tensor {
        try forward(pred, target: labels, labelWeight: labelWeights)
    }

    /// `target` is either labels (M,) — expanded to one-hot — or binary targets with the shape of `pred`.
    public func forward(_ pred: Tensor, target: Tensor, labelWeight: Tensor,
                        reductionOverride: LossReduction? = nil) throws(TorchError) -> Tensor {
        var target = target, labelWeight = labelWeight
        if pred.rank != target.rank {
            (target, labelWeight) = try expandOnehotLabels(target, labelWeight, channels: pred.size(-1))
        }
        target = try target.to(.float32)
        labelWeight = try labelWeight.to(.float32)
        let reduction = reductionOverride ?? self.reduction
        switch implementation {
        case .port: return try forwardPort(pred, target, labelWeight, reduction)
        case .fused: return try forwardFused(pred, target, labelWeight, reduction)
        }
    }

    /// mmdet's code, step by step.
    func forwardPort(_ pred: Tensor, _ target: Tensor, _ labelWeight: Tensor,
                     _ reduction: LossReduction) throws(TorchError) -> Tensor {
        // gradient length
        let g = try (pred.sigmoid().detach() - target).abs()
        let valid = try labelWeight .> 0
        let tot = Swift.max(try valid.to(.float32).sum().item(), 1.0)
        if statisticsSync != nil { throw TorchError(op: "GHMC", message: "summing the bin counts over ranks needs the fused implementation") }
        let weights = try GHMHistogram.portWeights(g: g, valid: valid, tot: tot, edges: edges, bins: bins,
                                                   momentum: momentum, accSum: accSum)
        let loss = try Functional.binaryCrossEntropyWithLogits(pred, target: target, reduction: .none)
        return try weightReduceLoss(loss, weight: weights, reduction: reduction, avgFactor: tot) * lossWeight
    }

    /// One histogram pass: the same numbers, no host synchronisation.
    func forwardFused(_ pred: Tensor, _ target: Tensor, _ labelWeight: Tensor,
                      _ reduction: LossReduction) throws(TorchError) -> Tensor {
        let g = try (pred.detach().sigmoid() - target).abs()
        let valid = try labelWeight .> 0
        let tot = try valid.to(.float32).sum().clamp(min: 1)
        let weights = try GHMHistogram.weights(g: g, valid: valid, edges: edges, bins: bins, momentum: momentum,
                                               accSum: accSum, tot: tot, sync: statisticsSync)
        let loss = try Functional.binaryCrossEntropyWithLogits(pred, target: target, reduction: .none)
        return try GHMHistogram.reduce(loss, weights: weights, reduction: reduction, tot: tot) * lossWeight
    }
}

/// The weighting shared by GHM-C and GHM-R: mmdet's loop over bins (the port) and the one-pass histogram (fused).
enum GHMHistogram {
    /// The bin edges k/bins (float32; the last one adjusted by `lastEdge`) and the momentum state `acc_sum`
    /// (zeros, nil without momentum), as mmdet's GHMC/GHMR `__init__`.
    static func buffers(op: String, bins: Int, momentum: Double,
                        lastEdge: (Tensor) throws(TorchError) -> Void) throws(TorchError) -> (Tensor, Tensor?) {
        guard bins > 0 else { throw TorchError(op: op, message: "bins must be positive, got \(bins)") }
        let edges = try Tensor.arange(bins + 1).to(.float32) / Double(bins)
        try lastEdge(try edges.narrow(dim: 0, start: bins, length: 1))
        return (edges, momentum > 0 ? try Tensor.zeros([bins]) : nil)
    }

    /// mmdet's loop, step by step: for each bin i, the valid elements with edges[i] ≤ g < edges[i+1]; a non-empty bin
    /// updates its EMA (`acc_sum[i] = μ·acc_sum[i] + (1 − μ)·count`, in place) and gives its elements T / acc_sum[i]
    /// (T / count without momentum); finally everything is divided by the number of non-empty bins.
    static func portWeights(g: Tensor, valid: Tensor, tot: Double, edges: Tensor, bins: Int, momentum mmt: Double,
                            accSum: Tensor?) throws(TorchError) -> Tensor {
        var weights = try g.zerosLike()
        var n = 0  // n valid bins
        for i in 0..<bins {
            let inds = try (g .>= edges[i]) .& (g .< edges[i + 1]) .& valid
            let numInBin = try inds.sum().itemInt()
            if numInBin > 0 {
                n += 1
                if mmt > 0, let accSum {
                    let acc = try accSum[i]
                    try acc.copy_(acc * mmt + (1 - mmt) * Double(numInBin))
                    try weights.indexPut_(inds, acc.reciprocal() * tot)
                } else {
                    try weights.indexFill_(inds, tot / Double(numInBin))
                }
            }
        }
        if n > 0 { weights = try weights / n }
        return weights
    }

    /// Per-element weights β for the gradient norms `g` (any shape) of the `valid` elements, updating `accSum` in place
    /// for non-empty bins when momentum > 0. Matches mmdet's loop: β = T / S_i / n with S_i the updated EMA (or the
    /// count), n the number of non-empty bins, and 0 for invalid elements.
    /// With `sync`, the counts and T are first summed over the ranks (T then only scales the weights: the caller
    /// still divides by its own).
    static func weights(g: Tensor, valid: Tensor, edges: Tensor, bins: Int, momentum: Double, accSum: Tensor?,
                        tot localTot: Tensor, sync: GHMStatisticsSync? = nil) throws(TorchError) -> Tensor {
        // bin i ⇔ edges[i] ≤ g < edges[i+1]; invalid elements (and any g outside the edges) go to the overflow bin.
        let raw = try Functional.bucketize(g, boundaries: edges, right: true) - 1
        let inside = try valid .& (raw .>= 0) .& (raw .< bins)
        let bin = try raw.maskedFill(inside.logicalNot(), bins)
        var counts = try Functional.bincount(bin.flatten(), minLength: bins + 1).narrow(dim: 0, start: 0, length: bins)
        var tot = localTot
        if let sync {
            let v = try Tensor.cat([counts.to(.float64), localTot.to(.float64).reshape([1])])
            try sync(v)
            counts = try v.narrow(dim: 0, start: 0, length: bins)
            tot = try v.narrow(dim: 0, start: bins, length: 1).reshape([]).to(.float32)
        }
        let nonEmpty = try counts .> 0
        let n = try nonEmpty.sum().clamp(min: 1)
        var perBin: Tensor
        if momentum > 0, let accSum {
            // mmdet adds (1 − μ)·count computed in double to the float32 EMA: do the same.
            let increment = try (counts.to(.float64) * (1 - momentum)).to(.float32)
            let updated = try accSum * momentum + increment
            try accSum.copy_(Tensor.where(nonEmpty, updated, accSum))
            perBin = try accSum.reciprocal() * tot
        } else {
            perBin = try (tot.to(.float64) / counts.to(.float64)).to(.float32)
        }
        perBin = try Tensor.where(nonEmpty, perBin, perBin.zerosLike()) / n
        let table = try Tensor.cat([perBin, Tensor.zeros([1], device: perBin.device)])
        return try table.index(bin)
    }

    static func reduce(_ loss: Tensor, weights: Tensor, reduction: LossReduction, tot: Tensor) throws(TorchError) -> Tensor {
        switch reduction {
        case .none: return try loss * weights
        case .mean: return try (loss * weights).sum() / tot
        case .sum: throw TorchError(op: "weight_reduce_loss", message: "avg_factor can not be used with reduction=\"sum\"")
        }
    }
}
