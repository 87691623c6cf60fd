import Foundation
import Torch
import GHMLosses
import Support

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
        let times = try Statistics.time(warmup: warmup, runs: runs) {
            for l in data {
                let x = try l.logits.clone().requiresGrad_()
                let d = try l.deltas.clone().requiresGrad_()
                let loss = try cls(x, labels: l.labels, labelWeights: l.labelWeights, avgFactor: l.numPos)
                    + reg(d, target: l.targets, weights: l.weights, avgFactor: l.numPos)
                try loss.backward()
            }
            try Torch.synchronize()
        }
        return Statistics.median(times)
    }

    /// The whole `ghm bench loss` report: Swift's three pairs of losses, then MMDetection's GHM and focal losses
    /// timed by `tools/bench_loss.py` in .venv-mmdet (skipped with a note when that environment is missing).
    public static func report(runs: Int, threads: Int, root: String?) throws -> String {
        let data = try inputs()
        func ghm(_ impl: GHMImplementation) throws -> Double {
            try time(cls: GHMC(bins: 30, momentum: 0.75, implementation: impl),
                     reg: GHMR(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, implementation: impl),
                     data: data, runs: runs)
        }
        let focal = try time(cls: FocalLoss(), reg: L1Loss(), data: data, runs: runs)
        let fused = try ghm(.fused)
        let port = try ghm(.port)
        var lines = [
            "threads \(Torch.threads), \(runs) runs, median seconds per iteration (5 levels, fwd+bwd)",
            String(format: "  Swift focal + L1        %8.4f s", focal),
            String(format: "  Swift GHM fused         %8.4f s   fused / focal = %.2f", fused, fused / focal),
            String(format: "  Swift GHM port          %8.4f s   port  / focal = %.2f", port, port / focal),
        ]
        guard let root, let py = try? ProjectRoot.mmdetPython(root) else {
            lines.append("  (MMDetection reference not run: .venv-mmdet is missing; `make mmdet-env` creates it)")
            return lines.joined(separator: "\n")
        }
        let script = "tools/bench_loss.py"
        let out = try ProjectRoot.runScript(py, root: root, script, ["--runs", "\(runs)", "--threads", "\(threads)"])
        let obj = try ProjectRoot.lastJSONLine(out, script: script)
        guard let g = obj["ghm_s"] as? Double, let f = obj["focal_s"] as? Double else {
            throw ToolError("unexpected output of \(script): \(out)")
        }
        lines.append(String(format: "  mmdet focal + L1        %8.4f s", f))
        lines.append(String(format: "  mmdet GHM (bin loop)    %8.4f s   mmdet GHM / focal = %.2f", g, g / f))
        lines.append(String(format: "  Swift fused / mmdet GHM = %.2f", fused / g))
        return lines.joined(separator: "\n")
    }
}
