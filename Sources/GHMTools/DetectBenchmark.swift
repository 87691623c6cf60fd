import Detection
import Foundation
import Support
import Torch

/// `ghm bench detect`: end-to-end detection latency (read + decode + resize + normalise + pad + forward +
/// post-processing), Swift vs MMDetection 2.16.0's `inference_detector` on the same image, weights, threads and
/// libtorch, measured in the same run.
public enum DetectBenchmark {
    public struct Report: CustomStringConvertible {
        public var threads: Int, runs: Int, warmup: Int
        public var swift: [Double], prep: [Double], forward: [Double], post: [Double]
        public var detections: Int
        public var pythonMilliseconds: Double
        public var pythonDetections: String
        /// The Swift side's inference mode, and its detections against the fp32 path's (which equal mmdet's).
        public var mode = RetinaNet.InferenceMode.reference
        public var agreement: DetectionAgreement?

        /// Set when the run started from a pre-processed input (`--input`): then the comparison is the forward alone
        /// against PyTorch eager's forward (`tools/torch_eager_ghm.py detect`), or nothing with `baseline` none.
        public var inputRun: (shape: [Int], device: Device, baseline: TrainBenchmark.Baseline, pythonTorch: String)?

        public var ratio: Double {
            inputRun == nil ? Statistics.median(swift) * 1000 / pythonMilliseconds
                : Statistics.median(forward) * 1000 / pythonMilliseconds
        }
        public var description: String {
            func ms(_ t: [Double]) -> Double { Statistics.median(t) * 1000 }
            if let run = inputRun {
                let shape = run.shape.map(String.init).joined(separator: "×")
                var lines = [
                    "detect on \(run.device) from a pre-processed \(shape) input (no decode), \(threads) thread(s), median of \(runs) after \(warmup) warm-up, \(Torch.version)",
                    String(format: "  Swift (ghm)    forward %8.2f ms, + post-processing %.2f ms = %.2f ms   (%d detections)%@",
                           ms(forward), ms(post), ms(forward) + ms(post), detections,
                           (mode.isReference ? "" : "; \(mode)") as NSString),
                ]
                if run.baseline != .none {
                    lines.append(String(format: "  PyTorch eager  forward %8.2f ms   (tools/torch_eager_ghm.py detect, the same mode; torch %@)",
                                        pythonMilliseconds, run.pythonTorch as NSString))
                    lines.append(String(format: "  ratio Swift / PyTorch forward = %.3f", ratio))
                }
                if run.device.isCUDA { lines.append("  goal on an H100/H200: batch 1 at 800×1333 ≤ 8 ms with the fast paths") }
                return lines.joined(separator: "\n") + (agreement.map { "\n  \(mode) vs the fp32 path: \($0)" } ?? "")
            }
            return [
                "end-to-end detect, 1333×800, \(threads) thread(s), median of \(runs) after \(warmup) warm-up, \(Torch.version)",
                String(format: "  Swift (ghm)    %8.1f ms   (%d detections; pre-processing %.1f, forward %.1f, post-processing %.1f ms)%@",
                       ms(swift), detections, ms(prep), ms(forward), ms(post),
                       (mode.isReference ? "" : "; \(mode)") as NSString),
                String(format: "  Python (mmdet) %8.1f ms   (%@ detections)", pythonMilliseconds, pythonDetections as NSString),
                String(format: "  ratio Swift / Python = %.3f", ratio),
            ].joined(separator: "\n") + (agreement.map { "\n  \(mode) vs the fp32 path (= mmdet's): \($0)" } ?? "")
        }
    }

    /// Times `runs` detections after `warmup` on `detector`, then the MMDetection script on the same files.
    /// With a fast inference mode on `detector`, `reference` (the same weights on the fp32 path) gives the detections
    /// the fast ones are matched against.
    public static func run(detector: Detector, reference: Detector? = nil, image: String, checkpoint: String, root: String,
                           python: String, threads: Int, runs: Int, warmup: Int) throws -> Report {
        var report = Report(threads: threads, runs: runs, warmup: warmup, swift: [], prep: [], forward: [], post: [],
                            detections: 0, pythonMilliseconds: 0, pythonDetections: "?")
        report.mode = detector.model.inferenceMode
        if let reference {
            report.agreement = try DetectionAgreement(reference: try reference.detect(paths: [image]),
                                                      other: try detector.detect(paths: [image]))
        }
        for r in 0..<(warmup + runs) {
            let t0 = monotonicSeconds()
            let prepared = try detector.prepare(path: image)
            let batch = try ImageTransform.collate([prepared.tensor])
            let t1 = monotonicSeconds()
            let (cls, reg) = try withNoGrad { () throws(TorchError) in try detector.model.forwardInference(batch) }
            try Torch.synchronize()
            let t2 = monotonicSeconds()
            let dets = try detector.model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: [prepared.meta])
            try Torch.synchronize()
            let t3 = monotonicSeconds()
            if r >= warmup {
                report.swift.append(t3 - t0)
                report.prep.append(t1 - t0)
                report.forward.append(t2 - t1)
                report.post.append(t3 - t2)
            }
            report.detections = dets[0].count
        }
        let script = "tools/bench_mmdet_detect.py"
        let out = try ProjectRoot.runScript(python, root: root, script, [
            "--image", image, "--checkpoint", checkpoint, "--threads", "\(threads)", "--warmup", "\(warmup)",
            "--runs", "\(runs)"])
        let obj = try ProjectRoot.lastJSONLine(out, script: script)
        guard let pyMs = obj["median_ms"] as? Double else { throw ToolError("unexpected output of \(script): \(out)") }
        report.pythonMilliseconds = pyMs
        report.pythonDetections = "\(obj["num_dets"] ?? "?")"
        return report
    }

    /// Times `runs` forwards + post-processing of a pre-processed input (the first image of a batch file, e.g. the
    /// one of `ghm bench train`), with no image decoding, then PyTorch eager's forward of the same input and mode
    /// (`tools/torch_eager_ghm.py detect`, run by `python`) unless `baseline` is none.
    public static func runOnInput(detector: Detector, reference: Detector?, inputPath: String, checkpoint: String,
                                  root: String, device: Device, baseline: TrainBenchmark.Baseline, python: String,
                                  threads: Int, runs: Int, warmup: Int) throws -> Report {
        let batch = try TrainBenchmark.Batch(path: inputPath)
        let input = try batch.input.narrow(dim: 0, start: 0, length: 1).contiguous().to(device)
        let metas = [batch.metas[0]]
        var report = Report(threads: threads, runs: runs, warmup: warmup, swift: [], prep: [], forward: [], post: [],
                            detections: 0, pythonMilliseconds: .nan, pythonDetections: "-")
        report.mode = detector.model.inferenceMode
        report.inputRun = (input.shape, device, baseline, "-")
        func detect(_ d: Detector) throws -> [Detections] {
            let (cls, reg) = try withNoGrad { () throws(TorchError) in try d.model.forwardInference(input) }
            return try d.model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: metas)
        }
        if let reference { report.agreement = try DetectionAgreement(reference: try detect(reference), other: try detect(detector)) }
        for r in 0..<(warmup + runs) {
            try Torch.synchronize()
            let t1 = monotonicSeconds()
            let (cls, reg) = try withNoGrad { () throws(TorchError) in try detector.model.forwardInference(input) }
            try Torch.synchronize()
            let t2 = monotonicSeconds()
            let dets = try detector.model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: metas)
            try Torch.synchronize()
            let t3 = monotonicSeconds()
            if r >= warmup {
                report.swift.append(t3 - t1)
                report.prep.append(0)
                report.forward.append(t2 - t1)
                report.post.append(t3 - t2)
            }
            report.detections = dets[0].count
        }
        guard baseline != .none else { return report }
        guard baseline == .eager else { throw ToolError("--input compares with PyTorch eager (--baseline eager) or nothing (--baseline none)") }
        let mode = detector.model.inferenceMode
        var args = ["detect", "--weights", checkpoint, "--input", inputPath, "--device", "\(device)",
                    "--amp", mode.autocast.map { $0 == .float16 ? "fp16" : "bf16" } ?? "none",
                    "--threads", "\(threads)", "--warmup", "\(warmup)", "--runs", "\(runs)"]
        if mode.channelsLast { args.append("--channels-last") }
        let script = "tools/torch_eager_ghm.py"
        let obj = try ProjectRoot.lastJSONLine(try ProjectRoot.runScript(python, root: root, script, args), script: script)
        guard let pyMs = obj["median_ms"] as? Double else { throw ToolError("unexpected output of \(script): \(obj)") }
        report.pythonMilliseconds = pyMs
        report.inputRun?.pythonTorch = obj["torch"] as? String ?? "?"
        return report
    }

    /// The image and checkpoint to time: the given ones, or generated ones (cached in .build/bench).
    public static func inputs(root: String, python: String, image: String?, checkpoint: String?) throws -> (String, String) {
        if let image, let checkpoint { return (image, checkpoint) }
        let dir = root + "/.build/bench"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let img = image ?? dir + "/synthetic_640x480_s0.png"
        if !FileManager.default.fileExists(atPath: img) {
            _ = try ProjectRoot.runScript(python, root: root, "tools/make_test_images.py",
                                          ["--out", dir, "--size", "640x480", "--formats", "png,jpg"])
        }
        let ckpt = checkpoint ?? dir + "/bench.pth"
        if !FileManager.default.fileExists(atPath: ckpt) {
            FileHandle.standardError.write(Data("generating an MMDetection checkpoint for \(img) …\n".utf8))
            _ = try ProjectRoot.runScript(python, root: root, "tools/mmdet_reference.py", [
                "--image", img, "--out-checkpoint", ckpt, "--out-reference", dir + "/bench.safetensors", "--no-train"])
        }
        return (img, ckpt)
    }
}
