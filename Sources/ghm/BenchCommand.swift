import ArgumentParser
import COCO
import Detection
import Foundation
import GHMLosses
import TorchCheckpoint
import Torch

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against the Python reference measured in the same run.",
        subcommands: [BenchDetect.self, BenchLoss.self, BenchCocoEval.self, BenchCheckpoint.self])
}

struct BenchOptions: ParsableArguments {
    @Option(help: "Timed runs (the median is reported).")
    var runs = 7
    @Option(help: "Intra-op threads for both Swift and Python (default: libtorch's choice).")
    var threads: Int?
    @Option(help: "The project folder with tools/ and the Python environments (default: found automatically).")
    var repo: String?
}

struct BenchLoss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "GHM-C + GHM-R (port and fused) vs FocalLoss + L1Loss over the five levels of a 2-image 1333×800 batch.",
        discussion: """
            Forward + backward of the losses on CPU, median of --runs. Also times MMDetection's own GHM and focal \
            losses in .venv-mmdet (skipped with a note when that environment is missing).
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        if let t = options.threads { try Torch.setThreads(t) }
        enableModelAllocator()
        let data = try LossBenchmark.inputs()
        func ghm(_ impl: GHMImplementation) throws -> Double {
            try LossBenchmark.time(cls: GHMC(bins: 30, momentum: 0.75, implementation: impl),
                                   reg: GHMR(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, implementation: impl),
                                   data: data, runs: options.runs)
        }
        let focal = try LossBenchmark.time(cls: FocalLoss(), reg: L1Loss(), data: data, runs: options.runs)
        let fused = try ghm(.fused)
        let port = try ghm(.port)
        print("threads \(Torch.threads), \(options.runs) runs, median seconds per iteration (5 levels, fwd+bwd)")
        print(String(format: "  Swift focal + L1        %8.4f s", focal))
        print(String(format: "  Swift GHM fused         %8.4f s   fused / focal = %.2f", fused, fused / focal))
        print(String(format: "  Swift GHM port          %8.4f s   port  / focal = %.2f", port, port / focal))
        let root = try projectRoot(options.repo)
        let py = root + "/.venv-mmdet/bin/python"
        guard FileManager.default.isExecutableFile(atPath: py) else {
            print("  (MMDetection reference not run: \(py) is missing; `make mmdet-env` creates it)")
            return
        }
        var args = [root + "/tools/bench_loss.py", "--runs", "\(options.runs)"]
        args += ["--threads", "\(options.threads ?? Torch.threads)"]
        let line = try runTool(py, args)
        guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let g = obj["ghm_s"] as? Double, let f = obj["focal_s"] as? Double else {
            throw RuntimeError("unexpected output of tools/bench_loss.py: \(line)")
        }
        print(String(format: "  mmdet focal + L1        %8.4f s", f))
        print(String(format: "  mmdet GHM (bin loop)    %8.4f s   mmdet GHM / focal = %.2f", g, g / f))
        print(String(format: "  Swift fused / mmdet GHM = %.2f", fused / g))
    }
}

struct BenchCocoEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cocoeval",
        abstract: "COCO box evaluation: Swift vs pycocotools (evaluate + accumulate + summarize) on a generated set.",
        discussion: "Generates ≥500 images and ≥20,000 detections with tools/make_coco_fixture.py, then times both.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        let root = try projectRoot(options.repo)
        print(try COCOBenchmark.run(repoRoot: root).description)
    }
}

struct BenchDetect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "End-to-end detect latency at 1333×800, Swift vs MMDetection 2.16.0 (same image, weights, threads, libtorch).",
        discussion: """
            Each run: read and decode the image file, resize, normalise, pad, forward, post-process (top-k, decode, \
            NMS). Median of --runs after warm-up, then tools/bench_mmdet_detect.py in .venv-mmdet on the same image \
            and checkpoint with the same thread count. Without --checkpoint/--image, a synthetic image and an MMDetection \
            checkpoint are generated into .build/bench/ (tools/make_test_images.py, tools/mmdet_reference.py).
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Config (default: configs/retinanet_ghm_r50_fpn_1x_coco.yml in the project folder).")
    var config: String?
    @Option(help: "An MMDetection checkpoint (default: generated).")
    var checkpoint: String?
    @Option(help: "An image file (default: a generated 640×480 synthetic image).")
    var image: String?
    @Option(help: "Warm-up runs before timing.")
    var warmup = 2
    @Option(help: "cpu, cuda or cuda:N (the Python side runs on CPU unless its torch has CUDA and this is cuda).")
    var device = "cpu"

    func run() throws {
        try reportingErrors {
            let root = try projectRoot(options.repo)
            let py = root + "/.venv-mmdet/bin/python"
            guard FileManager.default.isExecutableFile(atPath: py) else {
                throw RuntimeError("\(py) is missing: `make mmdet-env` creates the MMDetection environment")
            }
            let threads = options.threads ?? Torch.threads
            try Torch.setThreads(threads)
            enableModelAllocator()
            let (img, ckpt) = try inputs(root: root, python: py)
            let cfg = try DetectorConfig.load(path: config ?? root + "/configs/retinanet_ghm_r50_fpn_1x_coco.yml")
            guard let dev = Device(device) else { throw ValidationError("bad --device \(device)") }
            let detector = try Detector(config: cfg, checkpoint: ckpt, device: dev)
            var times: [Double] = [], prep: [Double] = [], forward: [Double] = [], post: [Double] = []
            var count = 0
            for r in 0..<(warmup + options.runs) {
                let t0 = now()
                let image = try detector.prepare(path: img)
                let batch = try ImageTransform.collate([image.tensor])
                let t1 = now()
                let (cls, reg) = try withNoGrad { () throws(TorchError) in try detector.model.forwardRaw(batch) }
                try Torch.synchronize()
                let t2 = now()
                let dets = try detector.model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: [image.meta])
                try Torch.synchronize()
                let t3 = now()
                if r >= warmup {
                    times.append(t3 - t0)
                    prep.append(t1 - t0)
                    forward.append(t2 - t1)
                    post.append(t3 - t2)
                }
                count = dets[0].count
            }
            let swift = median(times)
            let line = try runTool(py, [root + "/tools/bench_mmdet_detect.py", "--image", img, "--checkpoint", ckpt,
                                        "--threads", "\(threads)", "--warmup", "\(warmup)", "--runs", "\(options.runs)"])
            guard let json = line.split(separator: "\n").last,
                  let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let pyMs = obj["median_ms"] as? Double else {
                throw RuntimeError("unexpected output of tools/bench_mmdet_detect.py: \(line)")
            }
            print("end-to-end detect, 1333×800, \(threads) thread(s), median of \(options.runs) after \(warmup) warm-up, \(Torch.version)")
            print(String(format: "  Swift (ghm)    %8.1f ms   (%d detections; pre-processing %.1f, forward %.1f, post-processing %.1f ms)",
                         swift * 1000, count, median(prep) * 1000, median(forward) * 1000, median(post) * 1000))
            print(String(format: "  Python (mmdet) %8.1f ms   (%@ detections)", pyMs, "\(obj["num_dets"] ?? "?")" as NSString))
            print(String(format: "  ratio Swift / Python = %.3f", swift * 1000 / pyMs))
        }
    }

    /// The image and checkpoint to time: the given ones, or generated ones (cached in .build/bench).
    func inputs(root: String, python: String) throws -> (String, String) {
        if let image, let checkpoint { return (image, checkpoint) }
        let dir = root + "/.build/bench"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let img = image ?? dir + "/synthetic_640x480_s0.png"
        if !FileManager.default.fileExists(atPath: img) {
            _ = try runTool(python, [root + "/tools/make_test_images.py", "--out", dir, "--size", "640x480", "--formats", "png,jpg"])
        }
        let ckpt = checkpoint ?? dir + "/bench.pth"
        if !FileManager.default.fileExists(atPath: ckpt) {
            FileHandle.standardError.write(Data("generating an MMDetection checkpoint for \(img) …\n".utf8))
            _ = try runTool(python, [root + "/tools/mmdet_reference.py", "--image", img, "--out-checkpoint", ckpt,
                                     "--out-reference", dir + "/bench.safetensors", "--no-train"])
        }
        return (img, ckpt)
    }
}

struct BenchCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Reading a ~150 MB R50 checkpoint (legacy .pth): Swift vs Python torch.load, time and peak memory.",
        discussion: """
            Writes the file with Python torch (tools/make_checkpoint_fixtures.py --r50, the GHM model's 358 keys) into \
            .build/bench/, then times both readers (median of --runs) and measures the peak memory of a `ghm inspect` \
            child process.
            """)

    @OptionGroup var options: BenchOptions
    @Option(help: "A checkpoint to read instead of the generated one.")
    var file: String?

    func run() throws {
        try reportingErrors {
            let root = try projectRoot(options.repo)
            let py = root + "/.venv/bin/python"
            var path = file ?? ""
            if file == nil {
                let dir = root + "/.build/bench"
                path = dir + "/r50_legacy.pth"
                if !FileManager.default.fileExists(atPath: path) {
                    _ = try runTool(py, [root + "/tools/make_checkpoint_fixtures.py", dir, "--r50", "--only-r50"])
                }
            }
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            print(try CheckpointBenchmark.run(path: path, python: py, runs: options.runs,
                                              memoryProbe: [exe, "inspect", path, "--peak-memory"]))
        }
    }
}
