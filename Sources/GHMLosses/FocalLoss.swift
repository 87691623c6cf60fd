import Torch
import TorchNN

/// Sigmoid focal loss as mmdet's `FocalLoss(use_sigmoid=True)` on CPU (`py_sigmoid_focal_loss`): one-hot targets
/// without the background column, focal weight (α·y + (1−α)·(1−y))·pt^γ, per-anchor label weights, the sum divided
/// by `avg_factor` (the number of positives), times `loss_weight`.
public final class FocalLoss: ClassificationLoss {
    public let gamma: Double, alpha: Double, lossWeight: Double
    public let reduction: LossReduction

    public init(gamma: Double = 2, alpha: Double = 0.25, lossWeight: Double = 1, reduction: LossReduction = .mean) {
        self.gamma = gamma
        self.alpha = alpha
        self.lossWeight = lossWeight
        self.reduction = reduction
        super.init()
    }

    public override func callAsFunction(_ pred: Tensor, labels: Tensor, labelWeights: Tensor,
                                        avgFactor: Double) throws(TorchError) -> Tensor {
        let (target, _) = try expandOnehotLabels(labels, labelWeights, channels: pred.size(-1))
        let t = try target.to(pred.dtype)
        let p = try pred.sigmoid()
        let pt = try (1 - p) * t + p * (1 - t)
        let focalWeight = try (alpha * t + (1 - alpha) * (1 - t)) * pt.pow(gamma)
        let loss = try Functional.binaryCrossEntropyWithLogits(pred, target: t, reduction: .none) * focalWeight
        let w = try labelWeights.view([-1, 1])
        return try lossWeight * weightReduceLoss(loss, weight: w, reduction: reduction, avgFactor: avgFactor)
    }
}

/// mmdet's `L1Loss`: |pred − target| weighted, the sum divided by `avg_factor`, times `loss_weight`.
public final class L1Loss: RegressionLoss {
    public let lossWeight: Double
    public let reduction: LossReduction

    public init(lossWeight: Double = 1, reduction: LossReduction = .mean) {
        self.lossWeight = lossWeight
        self.reduction = reduction
        super.init()
    }

    public override func callAsFunction(_ pred: Tensor, target: Tensor, weights: Tensor,
                                        avgFactor: Double) throws(TorchError) -> Tensor {
        let loss = try (pred - target).abs()
        return try lossWeight * weightReduceLoss(loss, weight: weights, reduction: reduction, avgFactor: avgFactor)
    }
}
