import Detection
import Foundation
import GHMLosses
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// Mixed-precision training (the config's `fp16`, mmcv's `Fp16OptimizerHook`) on CPU with bf16 autocast, against
/// MMDetection's own loop with mmcv's fp16 code pointed at `torch.autocast("cpu")` and `torch.amp.GradScaler("cpu")`
/// (`tools/mmdet_train_reference.py train --amp bf16`). The loss scale starts at 1e38 with a backoff factor of 1e-34:
/// the first iteration's scaled loss overflows (the injected inf), its step is skipped and the scale drops to 1e4.
final class MixedPrecisionTests: XCTestCase {
    static let lossScale = "{\"init_scale\": 1e38, \"backoff_factor\": 1e-34, \"growth_interval\": 4}"
    static let fp16 = "fp16={loss_scale: {init_scale: 1.0e38, backoff_factor: 1.0e-34, growth_interval: 4}}"

    static func mmdetRun() throws -> String {
        try TrainFixture.once("amp-mmdet") {
            let w = TrainFixture.work + "/amp-mmdet"
            try TrainFixture.run("tools/mmdet_train_reference.py", [
                "train", "--data", try TrainFixture.data(), "--checkpoint", try TrainFixture.startCheckpoint(), "--work-dir", w,
                "--threads", "2", "--epochs", "1", "--no-validate", "--overwrite", "--amp", "bf16", "--loss-scale", lossScale])
            return w
        }
    }

    static func swiftRun(_ w: String, stopAfter: Int?, fresh: Bool = true, autoResume: Bool = false) throws -> TrainOutcome {
        if fresh { try? FileManager.default.removeItem(atPath: w) }
        return try TrainFixture.train(workDir: w, overrides: TrainFixture.overrides(try TrainFixture.data(), epochs: 1) + [fp16],
                                      loadFrom: try mmdetRun() + "/load_from.pth") {
            $0.stopAfterIterations = stopAfter
            $0.autoResume = autoResume
        }
    }

    static func trainLines(_ w: String) throws -> [[String: Any]] {
        try TrainFixture.logLines(w).filter { $0["mode"] as? String == "train" }
    }

    /// Iteration 1 overflows on both sides: the step is skipped (the weights stay the start's, no momentum yet), the
    /// scale becomes 1e38 × 1e-34; iteration 2 then runs on the same weights and batch as mmdet's: the same losses
    /// and a grad norm within 1e-4.
    func testInjectedInfIsSkippedAsMMDetAndTheNextStepAgrees() throws {
        let ref = try Self.mmdetRun()
        let w = TrainFixture.work + "/amp-2"
        try Self.swiftRun(w, stopAfter: 1)
        let ck = try Checkpoint.load(w + "/iter_1.pth")
        let start = try TrainFixture.stateDict(ref + "/load_from.pth"), after = try ck.stateDict()
        for k in start.keys where !k.hasSuffix("acc_sum") {
            XCTAssertTrue(try bitEqual(XCTUnwrap(start[k]), XCTUnwrap(after[k])), "\(k) changed by a skipped step")
        }
        let sgd = try SGDState(from: XCTUnwrap(ck.optimizer))
        XCTAssertTrue(sgd.momentumBuffers.allSatisfy { $0 == nil }, "no step: no momentum buffer")
        let scaler = try XCTUnwrap(ck.meta?["fp16"]?.dict?["loss_scaler"]?.dict)
        XCTAssertEqual(try XCTUnwrap(scaler["scale"]?.double), Double(Float(1e38) * Float(1e-34)), accuracy: 0)
        XCTAssertEqual(scaler["_growth_tracker"]?.int, 0)
        let text = try String(contentsOfFile: try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: w)
            .first { $0.hasSuffix(".log") }.map { w + "/" + $0 }), encoding: .utf8)
        XCTAssertTrue(text.contains("iteration 1: inf/NaN gradients, the step is skipped"), text)

        let w2 = TrainFixture.work + "/amp-3"
        try Self.swiftRun(w2, stopAfter: 2)
        let mine = try Self.trainLines(w2), theirs = try Self.trainLines(ref)
        for it in 0..<2 {
            for k in ["loss_cls", "loss_bbox", "loss"] {
                let a = try XCTUnwrap(mine[it][k] as? Double), b = try XCTUnwrap(theirs[it][k] as? Double)
                XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b) + 1e-5, "iteration \(it + 1) \(k)")  // mmdet logs 5 decimals
            }
        }
        XCTAssertNil(mine[0]["grad_norm"] as? Double, "a non-finite grad norm is logged as NaN (mmdet: nan)")
        let a = try XCTUnwrap(mine[1]["grad_norm"] as? Double), b = try XCTUnwrap(theirs[1]["grad_norm"] as? Double)
        print("mixed precision, iteration 2: grad norm \(a) (Swift) vs \(b) (mmdet), relative \(abs(a - b) / b)")
        XCTAssertEqual(a, b, accuracy: 1e-4 * b)
    }

    /// A whole epoch (11 iterations, the skipped first step included) against mmdet's: with the FPN's own fp16 cast
    /// of the backbone features (mmdet's `FPN.forward` has `@auto_fp16()`: under bf16 autocast the C2–C5 features are
    /// rounded to float16, and their gradients on the way back) every logged loss and grad norm agrees, and the final
    /// weights are bit-identical.
    func testBF16TrainingFollowsMMDetForAWholeEpoch() throws {
        let ref = try Self.mmdetRun()
        let w = TrainFixture.work + "/amp-full-epoch"
        try Self.swiftRun(w, stopAfter: nil)
        let mine = try Self.trainLines(w), theirs = try Self.trainLines(ref)
        XCTAssertEqual(mine.count, theirs.count)
        XCTAssertGreaterThanOrEqual(mine.count, 10)
        var worstNorm = 0.0
        for (it, (m, t)) in zip(mine, theirs).enumerated() {
            for k in ["loss_cls", "loss_bbox", "loss"] {
                let a = try XCTUnwrap(m[k] as? Double), b = try XCTUnwrap(t[k] as? Double)
                XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b) + 1e-5, "iteration \(it + 1) \(k)")  // mmdet logs 5 decimals
            }
            if let a = m["grad_norm"] as? Double, let b = t["grad_norm"] as? Double {
                worstNorm = max(worstNorm, abs(a - b) / b)
                XCTAssertEqual(a, b, accuracy: 1e-5 * b, "iteration \(it + 1) grad_norm")
            }
        }
        let a = try TrainFixture.stateDict(w + "/epoch_1.pth"), b = try TrainFixture.stateDict(ref + "/epoch_1.pth")
        var worst = 0.0, worstKey = ""
        for k in b.keys {
            guard let x = a[k], let y = b[k], try y.dtype == .float32 else { continue }
            let scale = max(try y.abs().max().item(), 1e-12)
            let d = try (x - y).abs().max().item() / scale
            if d > worst { (worst, worstKey) = (d, k) }
        }
        print("bf16 epoch against mmdet: \(mine.count) iterations, grad norms within \(worstNorm) relative; final weights "
              + "max |Δ|/max|w| \(worst) (\(worstKey))")
        XCTAssertEqual(worst, 0, "final weights bit-identical to mmdet's (worst \(worstKey))")
    }

    /// The scaler's state (scale, growth tracker) is saved in meta.fp16.loss_scaler and restored: a run stopped after
    /// iteration 2 and resumed ends bit-identical to the uninterrupted run after 3.
    func testScalerResumesExactly() throws {
        let full = TrainFixture.work + "/amp-full3", split = TrainFixture.work + "/amp-split"
        try Self.swiftRun(full, stopAfter: 3)
        try Self.swiftRun(split, stopAfter: 2)
        try Self.swiftRun(split, stopAfter: 3, fresh: false, autoResume: true)
        try TrainFixture.assertIdentical(full + "/iter_3.pth", split + "/iter_3.pth")
        let s = { (p: String) throws -> [String: Double] in
            let d = try XCTUnwrap(Checkpoint.load(p).meta?["fp16"]?.dict?["loss_scaler"]?.dict)
            return ["scale": try XCTUnwrap(d["scale"]?.double), "tracker": Double(try XCTUnwrap(d["_growth_tracker"]?.int))]
        }
        XCTAssertEqual(try s(full + "/iter_3.pth"), try s(split + "/iter_3.pth"))
        XCTAssertEqual(try s(full + "/iter_3.pth")["tracker"], 2, "two finite steps since the backoff")
    }

    /// GHM's weights stay float32 under autocast: T / count for 100,000 valid elements in one bin would be inf in
    /// float16 (max 65504); GHM-C called inside an fp16 autocast region gives the same finite loss as outside it.
    func testGHMStaysFloat32UnderAutocast() throws {
        let m = 100_000
        let pred = try Tensor.full([m, 1], 3.0), labels = try Tensor.zeros([m], dtype: .int64)
        let lw = try Tensor.ones([m])
        let outside = try GHMC(bins: 30, momentum: 0)(pred, labels: labels, labelWeights: lw, avgFactor: 1)
        let inside = try withAutocast(.cpu, dtype: .float16) { () throws(TorchError) in
            try GHMC(bins: 30, momentum: 0)(pred, labels: labels, labelWeights: lw, avgFactor: 1)
        }
        XCTAssertEqual(try inside.dtype, .float32)
        XCTAssertTrue(try inside.item().isFinite)
        XCTAssertEqual(try inside.item(), try outside.item())
        XCTAssertTrue(try Tensor.full([1], Double(m)).to(.float16).item().isInfinite, "fp16 would overflow here")
    }
}
