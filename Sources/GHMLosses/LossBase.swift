import Torch
import TorchNN

/// How an elementwise loss is reduced (mmdet's `reduction`).
public enum LossReduction: String, Codable, Sendable { case mean, sum, none }

/// A classification loss called by the head once per FPN level: logits (M, C), labels (M,) int64 in 0…C with C the
/// background index, label weights (M,), and mmdet's `avg_factor` (the number of positive samples).
open class ClassificationLoss: Module {
    open func callAsFunction(_ pred: Tensor, labels: Tensor, labelWeights: Tensor, avgFactor: Double) throws(TorchError) -> Tensor {
        throw TorchError(op: "\(type(of: self))", message: "classification loss not implemented")
    }
}

/// A box-regression loss called by the head once per FPN level: predicted deltas (M, 4), target deltas (M, 4),
/// weights (M, 4), and `avg_factor`.
open class RegressionLoss: Module {
    open func callAsFunction(_ pred: Tensor, target: Tensor, weights: Tensor, avgFactor: Double) throws(TorchError) -> Tensor {
        throw TorchError(op: "\(type(of: self))", message: "regression loss not implemented")
    }
}

/// mmdet's `weight_reduce_loss(loss, weight, reduction, avg_factor)`: multiply by the weights, then 'mean' divides the
/// sum by `avgFactor` (or takes the mean without it), 'sum' sums (an error together with `avgFactor`, as in mmdet),
/// 'none' returns the weighted elements.
public func weightReduceLoss(_ loss: Tensor, weight: Tensor?, reduction: LossReduction,
                             avgFactor: Double?) throws(TorchError) -> Tensor {
    let weighted = try weight.map { w throws(TorchError) in try loss * w } ?? loss
    switch (reduction, avgFactor) {
    case (.none, _): return weighted
    case (.mean, nil): return try weighted.mean()
    case (.mean, let f?): return try weighted.sum() / f
    case (.sum, nil): return try weighted.sum()
    case (.sum, _?): throw TorchError(op: "weight_reduce_loss", message: "avg_factor can not be used with reduction=\"sum\"")
    }
}

/// mmdet's `_expand_onehot_labels`: labels (M,) in 0…C (C = background) → binary targets (M, C) with a one in the
/// label's column (an all-zero row for background or out-of-range labels), and the weights broadcast to (M, C).
public func expandOnehotLabels(_ labels: Tensor, _ labelWeights: Tensor, channels: Int) throws(TorchError) -> (Tensor, Tensor) {
    let m = try labels.size(0)
    let inRange = try (labels .>= 0) .& (labels .< channels)
    let column = try labels.clamp(min: 0, max: Double(channels - 1)).unsqueeze(1)
    let target = try Tensor.zeros([m, channels], dtype: labels.dtype, device: labels.device)
        .scatter(dim: 1, index: column, src: inRange.unsqueeze(1).to(labels.dtype))
    let weights = try labelWeights.view([-1, 1]).expand([m, channels])
    return (target, weights)
}
