import Detection
import Foundation
import Support
import Torch
import TorchCheckpoint
import TorchNN

/// `ghm bench train`: one training iteration on a batch of 2 images at 1333×800 (zero grad, forward, GHM-C/GHM-R
/// losses, backward, gradient clipping at max-norm 35, SGD step with lr 0.01, momentum 0.9, weight decay 1e-4),
/// Swift vs MMDetection 2.16.0's `train_step` + mmcv's `OptimizerHook` clipping + SGD step, on the same batch file,
/// weights, threads and libtorch, measured in the same run; and the peak memory of both.
///
/// Memory, the same on both sides: the resident size right before the model is built (after the libraries are
/// loaded and the batch is read) is the baseline, then the peak is reset (`/proc/self/clear_refs`), and after the
/// last iteration the peak (VmHWM) is read. "increase" = peak − baseline (the model, its gradients, the momentum
/// buffers, the activations and the allocators' caches); "whole process" = the peak itself (runtime, libraries and,
/// for Python, the interpreter and mmdet's imports included).
public enum TrainBenchmark {
    public struct Losses {
        public var lossCls: Double, lossBbox: Double, loss: Double, gradNorm: Double
    }

    public struct Report: CustomStringConvertible {
        public var threads: Int, runs: Int, warmup: Int
        public var inputShape: [Int]
        public var swift: [Double] = []
        public var swiftFirst: Losses?
        public var swiftBaselineBytes: Int?
        public var swiftPeakBytes: Int?
        public var swiftPeakReset = false
        public var cachingAllocator = false
        public var pythonMilliseconds = 0.0
        public var pythonFirst: Losses?
        public var pythonBaselineBytes: Int?
        public var pythonPeakBytes: Int?
        public var pythonTorch = "?"
        /// /proc/loadavg's 1-minute load average before the Swift side, between the sides and after the Python side
        /// (the other work on the machine, which both sides share).
        public var loadAverages: [Double] = []

        public var swiftIncreaseBytes: Int? {
            guard swiftPeakReset, let p = swiftPeakBytes, let b = swiftBaselineBytes else { return nil }
            return p - b
        }
        public var pythonIncreaseBytes: Int? {
            guard let p = pythonPeakBytes, let b = pythonBaselineBytes else { return nil }
            return p - b
        }
        public var ratio: Double { Statistics.median(swift) * 1000 / pythonMilliseconds }
        public var memoryRatio: Double? {
            guard let s = swiftIncreaseBytes, let p = pythonIncreaseBytes, p > 0 else { return nil }
            return Double(s) / Double(p)
        }
        public var wholeProcessMemoryRatio: Double? {
            guard let s = swiftPeakBytes, let p = pythonPeakBytes, p > 0 else { return nil }
            return Double(s) / Double(p)
        }

        public var description: String {
            func mb(_ b: Int?) -> String { b.map { String(format: "%7.0f MB", Double($0) / 1e6) } ?? "    n/a" }
            func r(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "n/a" }
            func losses(_ l: Losses?) -> String {
                l.map { String(format: "loss_cls %.6f, loss_bbox %.6f, loss %.6f, grad norm %.4f", $0.lossCls, $0.lossBbox,
                               $0.loss, $0.gradNorm) } ?? "n/a"
            }
            let shape = inputShape.map(String.init).joined(separator: "×")
            return [
                "train iteration, batch \(shape) (zero grad, forward, GHM-C + GHM-R losses, backward, clip 35, SGD step),",
                "  \(threads) thread(s), median of \(runs) after \(warmup) warm-up, \(Torch.version) (Python: \(pythonTorch))",
                String(format: "  Swift (ghm)    %9.1f ms", Statistics.median(swift) * 1000),
                String(format: "  Python (mmdet) %9.1f ms   (train_step + clip_grads + optimizer.step)", pythonMilliseconds),
                String(format: "  ratio Swift / Python = %.3f   (goal ≤ 0.9)", ratio),
                "  peak memory, increase over the resident size right before the model is built"
                    + (cachingAllocator ? " (Swift: caching allocator on):" : " (Swift: libtorch's allocator):"),
                "    Swift  \(mb(swiftIncreaseBytes))   Python \(mb(pythonIncreaseBytes))   ratio \(r(memoryRatio))   (goal ≤ 1.0)",
                "  peak memory, whole process (VmHWM; runtime, libraries, Python interpreter and imports included):",
                "    Swift  \(mb(swiftPeakBytes))   Python \(mb(pythonPeakBytes))   ratio \(r(wholeProcessMemoryRatio))",
                "  first iteration: Swift  \(losses(swiftFirst))",
                "                   Python \(losses(pythonFirst))",
                "  1-min load average before / between / after the sides: "
                    + (loadAverages.isEmpty ? "n/a" : loadAverages.map { String(format: "%.2f", $0) }.joined(separator: " / ")),
            ].joined(separator: "\n")
        }
    }

    /// The batch file (written by `tools/bench_mmdet_train.py --make-batch`): the pre-processed input, metas and GT.
    public struct Batch {
        public var input: Tensor
        public var metas: [ImageMeta]
        public var gtBoxes: [Tensor]
        public var gtLabels: [Tensor]

        public init(path: String) throws {
            let t = try Checkpoint.load(path).stateDict(at: nil).tensors
            func need(_ key: String) throws -> Tensor {
                guard let v = t[key] else { throw ToolError("\(path) has no '\(key)' (rewrite it with --make-batch)") }
                return v
            }
            input = try need("input")
            metas = []; gtBoxes = []; gtLabels = []
            for i in 0..<(try input.size(0)) {
                let s = i == 0 ? "" : ".\(i)"
                let img = try need("img_shape" + s).floats().map { Int($0) }
                let pad = try need("pad_shape" + s).floats().map { Int($0) }
                let ori = try need("ori_shape" + s).floats().map { Int($0) }
                guard img.count == 3, pad.count == 3, ori.count == 3 else { throw ToolError("\(path): bad shapes of image \(i)") }
                metas.append(ImageMeta(filename: "batch[\(i)]", oriShape: (ori[0], ori[1], ori[2]),
                                       imgShape: (img[0], img[1], img[2]), padShape: (pad[0], pad[1], pad[2]),
                                       scaleFactor: try need("scale_factor" + s).floats()))
                gtBoxes.append(try need("gt_bboxes" + s).to(.float32))
                gtLabels.append(try need("gt_labels" + s).to(.int64))
            }
        }
    }

    /// Times `warmup + runs` training iterations of a model built from `config` with the weights of `checkpoint`,
    /// then the MMDetection script on the same files with the same thread count.
    public static func run(config: DetectorConfig, checkpoint: String, batch batchPath: String, root: String,
                           python: String, threads: Int, runs: Int, warmup: Int,
                           progress: (String) -> Void = { _ in }) throws -> Report {
        let batch = try Batch(path: batchPath)
        var report = Report(threads: threads, runs: runs, warmup: warmup, inputShape: batch.input.shape)
        report.cachingAllocator = Torch.cachingAllocatorEnabled
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        try swiftSide(config: config, checkpoint: checkpoint, batch: batch, runs: runs, warmup: warmup,
                      report: &report, progress: progress)
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        progress("Python (mmdet) side: tools/bench_mmdet_train.py …")
        let script = "tools/bench_mmdet_train.py"
        let out = try ProjectRoot.runScript(python, root: root, script, [
            "--batch", batchPath, "--checkpoint", checkpoint, "--threads", "\(threads)", "--warmup", "\(warmup)",
            "--runs", "\(runs)"])
        let obj = try ProjectRoot.lastJSONLine(out, script: script)
        guard let pyMs = obj["median_ms"] as? Double else { throw ToolError("unexpected output of \(script): \(out)") }
        report.pythonMilliseconds = pyMs
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        report.pythonTorch = obj["torch"] as? String ?? "?"
        report.pythonPeakBytes = obj["peak_rss_bytes"] as? Int
        if obj["peak_reset"] as? Bool == true { report.pythonBaselineBytes = obj["baseline_rss_bytes"] as? Int }
        if let l = obj["first_losses"] as? [String: Any] {
            func d(_ k: String) -> Double { (l[k] as? Double) ?? .nan }
            report.pythonFirst = Losses(lossCls: d("loss_cls"), lossBbox: d("loss_bbox"), loss: d("loss"),
                                        gradNorm: d("grad_norm"))
        }
        return report
    }

    static func loadAverage() -> Double? {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
    }

    static func swiftSide(config: DetectorConfig, checkpoint: String, batch: Batch, runs: Int, warmup: Int,
                          report: inout Report, progress: (String) -> Void) throws {
        report.swiftBaselineBytes = ProcessMemory.residentBytes()
        report.swiftPeakReset = ProcessMemory.resetPeak()
        let model = try RetinaNet(config)
        try model.loadStateDict(try Checkpoint.load(checkpoint).stateDict().tensors, source: checkpoint)
        model.train()
        let params = model.trainableParameters()
        let optimizer = SGD(params, lr: 0.01, momentum: 0.9, weightDecay: 1e-4)
        for r in 0..<(warmup + runs) {
            let t0 = monotonicSeconds()
            try optimizer.zeroGrad()
            let losses = try model.forwardTrain(batch.input, metas: batch.metas, gtBoxes: batch.gtBoxes,
                                                gtLabels: batch.gtLabels)
            let totals = try losses.totals()
            // _parse_losses reads every logged value with .item(); so does this side
            let values = Losses(lossCls: try totals.lossCls.item(), lossBbox: try totals.lossBbox.item(),
                                loss: try totals.loss.item(), gradNorm: .nan)
            try totals.loss.backward()
            let norm = try clipGradNorm(params, maxNorm: 35)
            try optimizer.step()
            try Torch.synchronize()
            let dt = monotonicSeconds() - t0
            if r >= warmup { report.swift.append(dt) }
            if r == 0 { report.swiftFirst = values; report.swiftFirst?.gradNorm = norm }
            progress(String(format: "Swift %@ %d: %.1f ms, loss %.6f", r < warmup ? "warm-up" : "run",
                            r < warmup ? r + 1 : r - warmup + 1, dt * 1000, values.loss))
        }
        report.swiftPeakBytes = ProcessMemory.peakResidentBytes()
        withExtendedLifetime((model, optimizer)) {}
    }

    /// The checkpoint (that of `ghm bench detect`, generated by MMDetection into .build/bench when missing) and the
    /// batch file (two synthetic images, 640×480 and 1000×600, through mmdet's pipeline: a 2×3×800×1344 input).
    public static func inputs(root: String, python: String, checkpoint: String?) throws -> (checkpoint: String, batch: String) {
        let (image, ckpt) = try DetectBenchmark.inputs(root: root, python: python, image: nil, checkpoint: checkpoint)
        let dir = root + "/.build/bench"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image2 = dir + "/synthetic_1000x600_s0.png"
        if !FileManager.default.fileExists(atPath: image2) {
            _ = try ProjectRoot.runScript(python, root: root, "tools/make_test_images.py",
                                          ["--out", dir, "--size", "1000x600", "--formats", "png"])
        }
        let batch = dir + "/train_batch.safetensors"
        if !FileManager.default.fileExists(atPath: batch) {
            _ = try ProjectRoot.runScript(python, root: root, "tools/bench_mmdet_train.py", [
                "--make-batch", batch, "--image", image, "--image2", image2])
        }
        return (ckpt, batch)
    }
}
