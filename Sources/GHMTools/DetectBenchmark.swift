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

        public var ratio: Double { Statistics.median(swift) * 1000 / pythonMilliseconds }
        public var description: String {
            func ms(_ t: [Double]) -> Double { Statistics.median(t) * 1000 }
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
