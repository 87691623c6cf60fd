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
///
/// On another device, with mixed precision or another batch size, the comparison is PyTorch eager
/// (`tools/torch_eager_ghm.py train`: the same network, targets, GHM losses, clipping and SGD written in plain
/// PyTorch, no mmdet needed) on the same device, batch, weights and autocast dtype; the memory is then the CUDA
/// caching allocator's peak on both sides (`max_memory_allocated`).
public enum TrainBenchmark {
    public struct Losses {
        public var lossCls: Double, lossBbox: Double, loss: Double, gradNorm: Double
    }

    /// What the Swift side is compared with.
    public enum Baseline: String, CaseIterable, Sendable {
        /// MMDetection 2.16.0 (`tools/bench_mmdet_train.py` in .venv-mmdet): CPU, fp32, the batch file's size only.
        case mmdet
        /// `tools/torch_eager_ghm.py train`: any device, fp32 or autocast, any batch size.
        case eager
        /// The Swift side alone.
        case none
    }

    /// Where and how both sides train.
    public struct Setup: Sendable {
        public var device: Device = .cpu
        /// Mixed precision: autocast dtype (and a dynamic GradScaler, mmcv's `loss_scale='dynamic'`); nil: fp32.
        public var amp: DType?
        /// Images per iteration, the batch file's images repeated cyclically; nil: the file's own count.
        public var batchSize: Int?
        public var baseline: Baseline = .mmdet
        /// The interpreter of the baseline's script.
        public var python = ""
        public init() {}
    }

    public struct Report: CustomStringConvertible {
        public var threads: Int, runs: Int, warmup: Int
        public var inputShape: [Int]
        public var setup = Setup()
        /// CUDA caching allocator peaks (max_memory_allocated) of both sides, on a CUDA device.
        public var swiftDevicePeakBytes: Int?
        public var pythonDevicePeakBytes: Int?
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

        public var imagesPerSecond: Double { Double(inputShape.first ?? 0) / Statistics.median(swift) }
        public var pythonImagesPerSecond: Double { Double(inputShape.first ?? 0) * 1000 / pythonMilliseconds }

        public var description: String {
            setup.baseline == .mmdet && !setup.device.isCUDA && setup.amp == nil ? mmdetDescription : deviceDescription
        }

        /// Against PyTorch eager (or alone): time, images/s and, on CUDA, the caching allocator's peaks.
        var deviceDescription: String {
            func mb(_ b: Int?) -> String { b.map { String(format: "%7.0f MB", Double($0) / 1e6) } ?? "    n/a" }
            func losses(_ l: Losses?) -> String {
                l.map { String(format: "loss_cls %.6f, loss_bbox %.6f, loss %.6f, grad norm %.4f", $0.lossCls, $0.lossBbox,
                               $0.loss, $0.gradNorm) } ?? "n/a"
            }
            let shape = inputShape.map(String.init).joined(separator: "×")
            let amp = setup.amp.map { "autocast \($0) + dynamic loss scale" } ?? "fp32"
            var lines = [
                "train iteration on \(setup.device), \(amp), batch \(shape) (zero grad, forward, GHM-C + GHM-R losses, backward, clip 35, SGD step),",
                "  \(threads) thread(s), median of \(runs) after \(warmup) warm-up, \(Torch.version) (Python: \(pythonTorch))",
                String(format: "  Swift (ghm)          %9.1f ms   %7.1f images/s", Statistics.median(swift) * 1000, imagesPerSecond),
            ]
            if setup.baseline != .none {
                lines += [
                    String(format: "  PyTorch eager        %9.1f ms   %7.1f images/s   (tools/torch_eager_ghm.py train)",
                           pythonMilliseconds, pythonImagesPerSecond),
                    String(format: "  ratio Swift / PyTorch time = %.3f", ratio),
                ]
            }
            if setup.device.isCUDA {
                lines.append("  goals on an H100/H200: ≥ 120 images/s with AMP at batch 8; ≤ 3.5 GB peak at batch 2")
                let r = swiftDevicePeakBytes.flatMap { s in pythonDevicePeakBytes.map { Double(s) / Double(max($0, 1)) } }
                lines.append("  peak CUDA memory (max_memory_allocated): Swift \(mb(swiftDevicePeakBytes))   PyTorch \(mb(pythonDevicePeakBytes))"
                             + (r.map { String(format: "   ratio %.3f", $0) } ?? ""))
            } else {
                lines.append("  peak memory, whole process (VmHWM): Swift \(mb(swiftPeakBytes))   PyTorch \(mb(pythonPeakBytes))")
            }
            lines.append("  first iteration: Swift   \(losses(swiftFirst))")
            if setup.baseline != .none { lines.append("                   PyTorch \(losses(pythonFirst))") }
            return lines.joined(separator: "\n")
        }

        var mmdetDescription: String {
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

        /// `n` images: the file's repeated cyclically (image i is the file's i mod count), on `device`.
        public func repeated(to n: Int, device: Device) throws -> Batch {
            let m = try input.size(0)
            guard n >= 1 else { throw ToolError("the batch size must be at least 1") }
            var b = self
            b.input = try input.indexSelect(dim: 0, index: Tensor((0..<n).map { Int64($0 % m) })).to(device)
            b.metas = (0..<n).map { metas[$0 % m] }
            b.gtBoxes = try (0..<n).map { try gtBoxes[$0 % m].to(device) }
            b.gtLabels = try (0..<n).map { try gtLabels[$0 % m].to(device) }
            return b
        }
    }

    /// Times `warmup + runs` training iterations of a model built from `config` with the weights of `checkpoint`,
    /// then the MMDetection script on the same files with the same thread count.
    public static func run(config: DetectorConfig, checkpoint: String, batch batchPath: String, root: String,
                           setup: Setup, threads: Int, runs: Int, warmup: Int,
                           progress: (String) -> Void = { _ in }) throws -> Report {
        let file = try Batch(path: batchPath)
        let fileCount = try file.input.size(0)
        if setup.baseline == .mmdet {
            guard !setup.device.isCUDA, setup.amp == nil, (setup.batchSize ?? fileCount) == fileCount else {
                throw ToolError("the MMDetection baseline runs on CPU in fp32 with the batch file's \(fileCount) images; "
                                + "use --baseline eager (PyTorch eager) for --device cuda, --amp or --batch-size")
            }
        }
        let batch = try file.repeated(to: setup.batchSize ?? fileCount, device: setup.device)
        var report = Report(threads: threads, runs: runs, warmup: warmup, inputShape: batch.input.shape)
        report.setup = setup
        report.cachingAllocator = Torch.cachingAllocatorEnabled
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        try swiftSide(config: config, checkpoint: checkpoint, batch: batch, setup: setup, runs: runs, warmup: warmup,
                      report: &report, progress: progress)
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        let script: String, arguments: [String]
        switch setup.baseline {
        case .none: return report
        case .mmdet:
            script = "tools/bench_mmdet_train.py"
            arguments = ["--batch", batchPath, "--checkpoint", checkpoint, "--threads", "\(threads)", "--warmup", "\(warmup)",
                         "--runs", "\(runs)"]
        case .eager:
            script = "tools/torch_eager_ghm.py"
            arguments = ["train", "--weights", checkpoint, "--batch", batchPath, "--device", "\(setup.device)",
                         "--amp", setup.amp.map { $0 == .float16 ? "fp16" : "bf16" } ?? "none",
                         "--batch-size", "\(batch.metas.count)", "--threads", "\(threads)", "--warmup", "\(warmup)",
                         "--runs", "\(runs)"]
        }
        progress("Python side: \(script) …")
        let out = try ProjectRoot.runScript(setup.python, root: root, script, arguments)
        let obj = try ProjectRoot.lastJSONLine(out, script: script)
        guard let pyMs = obj["median_ms"] as? Double else { throw ToolError("unexpected output of \(script): \(out)") }
        report.pythonMilliseconds = pyMs
        report.loadAverages.append(contentsOf: loadAverage().map { [$0] } ?? [])
        report.pythonTorch = obj["torch"] as? String ?? "?"
        report.pythonPeakBytes = obj["peak_rss_bytes"] as? Int
        if setup.baseline == .eager {
            if setup.device.isCUDA { report.pythonDevicePeakBytes = obj["peak_memory_bytes"] as? Int }
            else { report.pythonPeakBytes = obj["peak_memory_bytes"] as? Int }
        }
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

    static func swiftSide(config: DetectorConfig, checkpoint: String, batch: Batch, setup: Setup, runs: Int, warmup: Int,
                          report: inout Report, progress: (String) -> Void) throws {
        report.swiftBaselineBytes = ProcessMemory.residentBytes()
        report.swiftPeakReset = ProcessMemory.resetPeak()
        if let i = setup.device.cudaIndex { _ = try Torch.acceleratorMemory(device: i, resetPeak: true) }
        let model = try RetinaNet(config)
        try model.loadStateDict(try Checkpoint.load(checkpoint).stateDict().tensors, source: checkpoint)
        try model.to(setup.device)
        model.train()
        let params = model.trainableParameters()
        let optimizer = SGD(params, lr: 0.01, momentum: 0.9, weightDecay: 1e-4)
        // mmcv's Fp16OptimizerHook with loss_scale='dynamic': GradScaler's defaults, unscale before the clipping
        let scaler = setup.amp == nil ? nil : try GradScaler(device: setup.device)
        for r in 0..<(warmup + runs) {
            let t0 = monotonicSeconds()
            try optimizer.zeroGrad()
            let losses = try model.forwardTrain(batch.input, metas: batch.metas, gtBoxes: batch.gtBoxes,
                                                gtLabels: batch.gtLabels, autocast: setup.amp)
            let totals = try losses.totals()
            // _parse_losses reads every logged value with .item(); so does this side
            let values = Losses(lossCls: try totals.lossCls.item(), lossBbox: try totals.lossBbox.item(),
                                loss: try totals.loss.item(), gradNorm: .nan)
            try (scaler.map { s throws(TorchError) in try s.scale(totals.loss) } ?? totals.loss).backward()
            if let scaler { try scaler.unscale(params) }
            let norm = try clipGradNorm(params, maxNorm: 35)
            if let scaler {
                try scaler.step(optimizer)
                try scaler.update()
            } else {
                try optimizer.step()
            }
            try Torch.synchronize()
            let dt = monotonicSeconds() - t0
            if r >= warmup { report.swift.append(dt) }
            if r == 0 { report.swiftFirst = values; report.swiftFirst?.gradNorm = norm }
            progress(String(format: "Swift %@ %d: %.1f ms, loss %.6f", r < warmup ? "warm-up" : "run",
                            r < warmup ? r + 1 : r - warmup + 1, dt * 1000, values.loss))
        }
        report.swiftPeakBytes = ProcessMemory.peakResidentBytes()
        if let i = setup.device.cudaIndex { report.swiftDevicePeakBytes = try Torch.acceleratorMemory(device: i).peakAllocated }
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
