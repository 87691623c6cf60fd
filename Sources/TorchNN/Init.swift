import Foundation
import Torch

/// Weight initialisers (in place, under no-grad), as torch.nn.init / mmcv.cnn.utils.weight_init.
public enum Init {
    /// Fan-in and fan-out of a conv or linear weight (out, in, kh, kw) / (out, in).
    public static func fans(_ w: Tensor) -> (fanIn: Int, fanOut: Int) {
        let s = w.shape
        let receptive = s.dropFirst(2).reduce(1, *)
        return (s.count > 1 ? s[1] * receptive : s[0], s[0] * receptive)
    }

    public static func normal(_ t: Tensor, mean: Double = 0, std: Double) throws(TorchError) {
        try withNoGrad { () throws(TorchError) in try t.normal_(mean: mean, std: std) }
    }

    public static func uniform(_ t: Tensor, from: Double, to: Double) throws(TorchError) {
        try withNoGrad { () throws(TorchError) in try t.uniform_(from: from, to: to) }
    }

    public static func constant(_ t: Tensor, _ value: Double) throws(TorchError) {
        try withNoGrad { () throws(TorchError) in try t.fill_(value) }
    }

    // The bounds and standard deviations below are PyTorch's expressions, operation for operation, so that a seeded
    // initialisation draws the same values as torch.nn.init.

    /// `nn.init.xavier_uniform_(gain)`: `a = sqrt(3) · gain · sqrt(2 / (fan_in + fan_out))`.
    public static func xavierUniform(_ t: Tensor, gain: Double = 1) throws(TorchError) {
        let (fi, fo) = fans(t)
        let std = gain * Foundation.sqrt(2.0 / Double(fi + fo))
        let a = Foundation.sqrt(3.0) * std
        try uniform(t, from: -a, to: a)
    }

    /// `nn.init.kaiming_uniform_(a, mode='fan_in', nonlinearity='leaky_relu')`:
    /// `bound = sqrt(3) · sqrt(2 / (1 + a²)) / sqrt(fan_in)`.
    public static func kaimingUniform(_ t: Tensor, a: Double = 0) throws(TorchError) {
        let gain = Foundation.sqrt(2.0 / (1 + a * a))
        let std = gain / Foundation.sqrt(Double(fans(t).fanIn))
        let bound = Foundation.sqrt(3.0) * std
        try uniform(t, from: -bound, to: bound)
    }

    /// `nn.init.kaiming_normal_(mode='fan_out', nonlinearity='relu')` (mmcv's `kaiming_init` for ResNet convs):
    /// `std = sqrt(2) / sqrt(fan_out)`.
    public static func kaimingNormalFanOut(_ t: Tensor) throws(TorchError) {
        try normal(t, std: Foundation.sqrt(2.0) / Foundation.sqrt(Double(fans(t).fanOut)))
    }

    /// mmcv's `bias_init_with_prob(p)` = −log((1 − p) / p).
    public static func biasWithProbability(_ p: Double) -> Double { -Foundation.log((1 - p) / p) }
}
