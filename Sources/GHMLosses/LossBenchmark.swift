import Foundation
import Torch

/// `ghm bench loss`: GHM-C + GHM-R (port and fused) vs FocalLoss + L1Loss, forward + backward, over the five FPN
/// levels of a 2-image 1333×800 batch (P3…P7 of an 800×1344 input, 9 anchors, 80 classes), median of `runs`.
public enum LossBenchmark {
    public static let levels = [(100, 168), (50, 84), (25, 42), (13, 21), (7, 11)]

    public struct Level {
        let logits: Tensor, labels: Tensor, labelWeights: Tensor, deltas: Tensor, targets: Tensor, weights: Tensor
        let numPos: Double
    }

    /// Synthetic inputs: logits around −4, ~0.2% positives, 5% ignored anchors.
    public static func inputs(seed: UInt64 = 0, batch: Int = 2) throws(TorchError) -> [Level] {
        try Torch.manualSeed(seed)
        var out: [Level] = []
        for (h, w) in levels {
            let m = batch * h * w * 9
            let logits = try Tensor.randn([m, 80]) * 2 - 4
            let pos = try Tensor.rand([m]) .< 0.002
            let randomLabels = try Tensor.randint(0, 80, [m])
            let labels = try Tensor.where(pos, randomLabels, Tensor.full([m], 80, dtype: .int64))
            let lw = try (Tensor.rand([m]) .> 0.05).to(.float32)
            let posF = try pos.to(.float32).view([-1, 1])
            let deltas = try Tensor.randn([m, 4]) * 0.3
            let targets = try Tensor.randn([m, 4]) * 0.3 * posF
            let weights = try posF.expand([m, 4]).contiguous()
            out.append(Level(logits: logits, labels: labels, labelWeights: lw, deltas: deltas, targets: targets,
                             weights: weights, numPos: Swift.max(try pos.sum().item(), 1)))
        }
        return out
    }

    /// Median seconds of one pass (all levels, forward + backward) of the given pair of losses.
    public static func time(cls: ClassificationLoss, reg: RegressionLoss, data: [Level], runs: Int,
                            warmup: Int = 2) throws -> Double {
        var times: [Double] = []
        for r in 0..<(warmup + runs) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for l in data {
                let x = try l.logits.clone().requiresGrad_()
                let d = try l.deltas.clone().requiresGrad_()
                let loss = try cls(x, labels: l.labels, labelWeights: l.labelWeights, avgFactor: l.numPos)
                    + reg(d, target: l.targets, weights: l.weights, avgFactor: l.numPos)
                try loss.backward()
            }
            try Torch.synchronize()
            if r >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        return times.sorted()[times.count / 2]
    }
}
