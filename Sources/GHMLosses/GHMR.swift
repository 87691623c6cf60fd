import Torch
import TorchNN

/// GHM-R, the gradient-harmonised regression loss (mmdet 2.16.0 `GHMR`): Authentic Smooth L1
/// ASL1 = sqrt(d² + μ²) − μ on d = pred − target, weighted like GHM-C by the histogram of g = |d / sqrt(μ² + d²)|
/// over `bins` regions (edges k/bins, the last 1000), T = max(Σ weights, 1); `avg_factor` is ignored.
public final class GHMR: RegressionLoss {
    @Buffer public var edges: Tensor
    @Buffer public var accSum: Tensor?
    public let mu: Double
    public let bins: Int
    public let momentum: Double
    public let lossWeight: Double
    public let reduction: LossReduction
    public var implementation: GHMImplementation
    /// Every rank's histogram and valid count together, as `GHMC.statisticsSync`.
    public var statisticsSync: GHMStatisticsSync?

    public init(mu: Double = 0.02, bins: Int = 10, momentum: Double = 0, lossWeight: Double = 1,
                reduction: LossReduction = .mean, implementation: GHMImplementation = .fused) throws(TorchError) {
        (edges, accSum) = try GHMHistogram.buffers(op: "GHMR", bins: bins, momentum: momentum) { last throws(TorchError) in
            try last.fill_(1e3)
        }
        self.mu = mu
        self.bins = bins
        self.momentum = momentum
        self.lossWeight = lossWeight
        self.reduction = reduction
        self.implementation = implementation
        super.init()
    }

    public override func callAsFunction(_ pred: Tensor, target: Tensor, weights: Tensor,
                                        avgFactor: Double) throws(TorchError) -> Tensor {
        try forward(pred, target: target, labelWeight: weights)
    }

    public func forward(_ pred: Tensor, target: Tensor, labelWeight: Tensor,
                        reductionOverride: LossReduction? = nil) throws(TorchError) -> Tensor {
        let reduction = reductionOverride ?? self.reduction
        switch implementation {
        case .port: return try forwardPort(pred, target, labelWeight, reduction)
        case .fused: return try forwardFused(pred, target, labelWeight, reduction)
        }
    }

    /// mmdet's code, step by step.
    func forwardPort(_ pred: Tensor, _ target: Tensor, _ labelWeight: Tensor,
                     _ reduction: LossReduction) throws(TorchError) -> Tensor {
        // ASL1 loss
        let diff = try pred - target
        let loss = try (diff * diff + mu * mu).sqrt() - mu
        // gradient length
        let g = try (diff / (mu * mu + diff * diff).sqrt()).abs().detach()
        let valid = try labelWeight .> 0
        let tot = Swift.max(try labelWeight.to(.float32).sum().item(), 1.0)
        if statisticsSync != nil { throw TorchError(op: "GHMR", message: "summing the bin counts over ranks needs the fused implementation") }
        let weights = try GHMHistogram.portWeights(g: g, valid: valid, tot: tot, edges: edges, bins: bins,
                                                   momentum: momentum, accSum: accSum)
        return try weightReduceLoss(loss, weight: weights, reduction: reduction, avgFactor: tot) * lossWeight
    }

    /// One histogram pass: the same numbers, no host synchronisation.
    func forwardFused(_ pred: Tensor, _ target: Tensor, _ labelWeight: Tensor,
                      _ reduction: LossReduction) throws(TorchError) -> Tensor {
        let diff = try pred - target
        let loss = try (diff * diff + mu * mu).sqrt() - mu
        let g = try (diff / (mu * mu + diff * diff).sqrt()).abs().detach()
        let valid = try labelWeight .> 0
        let tot = try labelWeight.to(.float32).sum().clamp(min: 1)
        let weights = try GHMHistogram.weights(g: g, valid: valid, edges: edges, bins: bins, momentum: momentum,
                                               accSum: accSum, tot: tot, sync: statisticsSync)
        return try GHMHistogram.reduce(loss, weights: weights, reduction: reduction, tot: tot) * lossWeight
    }
}
