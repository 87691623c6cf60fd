import ArgumentParser
import Detection
import Foundation
import GHMTools
import Support
import Torch

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against the Python reference measured in the same run.",
        subcommands: [BenchDetect.self, BenchTrain.self, BenchLoss.self, BenchCocoEval.self, BenchCheckpoint.self,
                      BenchDist.self, BenchDistWorker.self])
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
        try reportingErrors {
            if let t = options.threads { try Torch.setThreads(t) }
            enableModelAllocator()
            print(try LossBenchmark.report(runs: options.runs, threads: options.threads ?? Torch.threads,
                                           root: try? ProjectRoot.find(options.repo)))
        }
    }
}

struct BenchCocoEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cocoeval",
        abstract: "COCO box evaluation: Swift vs pycocotools (evaluate + accumulate + summarize) on a generated set.",
        discussion: "Generates ≥500 images and ≥20,000 detections with tools/make_coco_fixture.py, then times both.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        try reportingErrors {
            print(try COCOBenchmark.run(repoRoot: try ProjectRoot.find(options.repo)).description)
        }
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
            checkpoint are generated into .build/bench/ (tools/make_test_images.py, tools/mmdet_reference.py). \
            With --fuse-conv-bn, --channels-last or --amp the Swift side runs that fast path (MMDetection stays on \
            fp32), and its detections are matched against the fp32 path's (label, IoU ≥ 0.9).

            --input FILE starts from a pre-processed input instead (the first image of a batch file such as \
            .build/bench/train_batch.safetensors; no image decoding, so no OpenCV needed, e.g. on a GPU machine): \
            each run is the forward + post-processing, and the forward is compared with PyTorch eager's \
            (tools/torch_eager_ghm.py detect, same device, weights and mode; --baseline none: the Swift side alone).

            Examples:
              ghm bench detect --fuse-conv-bn --channels-last --amp bf16
              ghm bench detect --device cuda --input b.safetensors --checkpoint w.pth --channels-last --amp fp16 \\
                  --python python3
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
    @OptionGroup var fast: FastPathOptions
    @Option(help: "A pre-processed input (a batch file's first image) to time instead of an image file; needs --checkpoint.")
    var input: String?
    @Option(help: ArgumentHelp("With --input: eager (PyTorch eager, tools/torch_eager_ghm.py) or none.", valueName: "eager|none"))
    var baseline = "eager"
    @Option(help: "The eager baseline's Python (default: .venv/bin/python, else python3).")
    var python: String?

    func run() throws {
        try reportingErrors {
            let dev = try usableDevice(device)
            let mode = try fast.mode()
            let root = try ProjectRoot.find(options.repo)
            let threads = options.threads ?? Torch.threads
            try Torch.setThreads(threads)
            if !dev.isCUDA { enableModelAllocator() }
            if let input {
                guard let checkpoint else { throw ValidationError("--input needs --checkpoint") }
                guard let base = TrainBenchmark.Baseline(rawValue: baseline), base != .mmdet else {
                    throw ValidationError("--baseline takes eager or none with --input, not '\(baseline)'")
                }
                let cfg = try DetectorConfig.load(path: config ?? root + "/configs/retinanet_ghm_r50_fpn_1x_coco.yml")
                let detector = try Detector(config: cfg, checkpoint: checkpoint, device: dev)
                try detector.model.setInferenceMode(mode)
                let reference = mode.isReference ? nil : try Detector(config: cfg, checkpoint: checkpoint, device: dev)
                print(try DetectBenchmark.runOnInput(detector: detector, reference: reference, inputPath: input,
                                                     checkpoint: checkpoint, root: root, device: dev, baseline: base,
                                                     python: python ?? ProjectRoot.defaultPython(root), threads: threads,
                                                     runs: options.runs, warmup: warmup))
                return
            }
            let py = try ProjectRoot.mmdetPython(root)
            let (img, ckpt) = try DetectBenchmark.inputs(root: root, python: py, image: image, checkpoint: checkpoint)
            let cfg = try DetectorConfig.load(path: config ?? root + "/configs/retinanet_ghm_r50_fpn_1x_coco.yml")
            let detector = try Detector(config: cfg, checkpoint: ckpt, device: dev)
            try detector.model.setInferenceMode(mode)
            let reference = mode.isReference ? nil : try Detector(config: cfg, checkpoint: ckpt, device: dev)
            print(try DetectBenchmark.run(detector: detector, reference: reference, image: img, checkpoint: ckpt, root: root,
                                          python: py, threads: threads, runs: options.runs, warmup: warmup))
        }
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "One training iteration, batch 2 at 1333×800: Swift vs MMDetection 2.16.0 (time and peak memory).",
        discussion: """
            Timed per iteration, on both sides: zero the gradients (set to none), forward of the 2×3×800×1344 batch \
            (backbone, FPN, head), targets and the GHM-C + GHM-R losses (mmdet's _parse_losses totals, read back as \
            numbers), backward, gradient clipping (clip_grad_norm_ of the parameters with a gradient, max-norm 35) \
            and the SGD step (lr 0.01, momentum 0.9, weight decay 1e-4: the GHM config's optimizer). Data loading is \
            not timed: both sides read the same pre-processed batch file. Median of --runs after --warmup; then \
            tools/bench_mmdet_train.py in .venv-mmdet does mmdet's train_step + mmcv's OptimizerHook.clip_grads + \
            optimizer.step on the same batch, checkpoint and thread count.

            Memory: the resident size right before the model is built is the baseline; the peak (VmHWM, reset at \
            that point) after the last iteration minus it is compared, and the whole-process peaks are shown too. The Swift \
            side uses the caching CPU allocator (GHM_CPU_ALLOCATOR=default: libtorch's own; GHM_CPU_CACHE_MB: its limit).

            Without --checkpoint, the checkpoint of `ghm bench detect` is used (generated by MMDetection into \
            .build/bench/ when missing); the batch (.build/bench/train_batch.safetensors: two synthetic images, \
            640×480 and 1000×600, through mmdet's pipeline, with a fixed set of GT boxes) is written by \
            tools/bench_mmdet_train.py --make-batch. About 15-35 s per iteration and side on a 2-core CPU.

            On a GPU, with mixed precision or another batch size (--device cuda, --amp fp16|bf16, --batch-size N: \
            the batch file's images repeated), MMDetection cannot be the baseline; --baseline eager compares with \
            PyTorch eager (tools/torch_eager_ghm.py train: the same network, targets, GHM losses, clipping and SGD in \
            plain PyTorch; autocast and a dynamic GradScaler with --amp) on the same device, batch and weights, with \
            --python naming an interpreter whose torch can use the device. On CUDA the memory reported is the \
            caching allocator's peak (max_memory_allocated) of both sides. --baseline none times the Swift side alone.

            Examples:
              ghm bench train
              ghm bench train --device cuda --amp fp16 --batch-size 8 --baseline eager --python python3 \\
                  --checkpoint w.pth --batch b.safetensors
            """)

    @Option(help: "Timed iterations per side (the median is reported; at least 5).")
    var runs = 5
    @Option(help: "Untimed iterations first, per side.")
    var warmup = 1
    @Option(help: "Intra-op threads for both Swift and Python (default: libtorch's choice).")
    var threads: Int?
    @Option(help: "The project folder with tools/ and the Python environments (default: found automatically).")
    var repo: String?
    @Option(help: "Config (default: configs/retinanet_ghm_r50_fpn_1x_coco.yml in the project folder).")
    var config: String?
    @Option(help: "An MMDetection checkpoint to start from (default: the generated one of `ghm bench detect`).")
    var checkpoint: String?
    @Option(help: "The batch file (default: .build/bench/train_batch.safetensors, written by MMDetection when missing).")
    var batch: String?
    @Option(help: "cpu, cuda or cuda:N, for both sides.")
    var device = "cpu"
    @Option(help: ArgumentHelp("Mixed precision on both sides: autocast to bf16 or fp16 with a dynamic loss scale.", valueName: "bf16|fp16"))
    var amp: String?
    @Option(help: "Images per iteration (the batch file's repeated; default: the file's 2).")
    var batchSize: Int?
    @Option(help: ArgumentHelp("What the Swift side is compared with: mmdet (CPU, fp32, the file's batch), eager (PyTorch eager, tools/torch_eager_ghm.py) or none. Default: mmdet where it can run, else eager.", valueName: "mmdet|eager|none"))
    var baseline: String?
    @Option(help: "The baseline's Python (default: .venv-mmdet/bin/python for mmdet, .venv/bin/python or python3 for eager).")
    var python: String?
    @Option(help: ArgumentHelp("Minimum timed iterations (below 5 only for smoke tests).", visibility: .hidden))
    var minRuns = 5

    func validate() throws {
        guard runs >= minRuns, minRuns >= 1 else { throw ValidationError("--runs must be at least 5") }
        guard Device(device) != nil else { throw ValidationError("--device must be cpu, cuda or cuda:N, not '\(device)'") }
        _ = try autocastType(amp)
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be ≥ 1") }
        if let baseline, TrainBenchmark.Baseline(rawValue: baseline) == nil {
            throw ValidationError("--baseline takes mmdet, eager or none, not '\(baseline)'")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be ≥ 0") }
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
    }

    func run() throws {
        try reportingErrors {
            let root = try ProjectRoot.find(repo)
            var setup = TrainBenchmark.Setup()
            setup.device = try usableDevice(device)
            setup.amp = try autocastType(amp)
            setup.batchSize = batchSize
            setup.baseline = baseline.flatMap(TrainBenchmark.Baseline.init(rawValue:))
                ?? (setup.device.isCUDA || setup.amp != nil || (batchSize ?? 2) != 2 ? .eager : .mmdet)
            switch setup.baseline {
            case .mmdet: setup.python = try python ?? ProjectRoot.mmdetPython(root)
            case .eager, .none: setup.python = python ?? ProjectRoot.defaultPython(root)
            }
            let threads = self.threads ?? Torch.threads
            try Torch.setThreads(threads)
            if !setup.device.isCUDA { enableModelAllocator(training: true) }
            let inputs: (checkpoint: String, batch: String)
            if let checkpoint, let batch {
                inputs = (checkpoint, batch)
            } else {
                let generated = try TrainBenchmark.inputs(root: root, python: try ProjectRoot.mmdetPython(root), checkpoint: checkpoint)
                inputs = (generated.checkpoint, batch ?? generated.batch)
            }
            let cfg = try DetectorConfig.load(path: config ?? root + "/configs/retinanet_ghm_r50_fpn_1x_coco.yml")
            let progress: (String) -> Void = { FileHandle.standardError.write(Data("[bench train] \($0)\n".utf8)) }
            print(try TrainBenchmark.run(config: cfg, checkpoint: inputs.checkpoint, batch: inputs.batch, root: root,
                                         setup: setup, threads: threads, runs: runs, warmup: warmup, progress: progress))
        }
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
            let root = try ProjectRoot.find(options.repo)
            let py = root + "/.venv/bin/python"
            var path = file ?? ""
            if file == nil {
                let dir = root + "/.build/bench"
                path = dir + "/r50_legacy.pth"
                if !FileManager.default.fileExists(atPath: path) {
                    _ = try ProjectRoot.runScript(py, root: root, "tools/make_checkpoint_fixtures.py", [dir, "--r50", "--only-r50"])
                }
            }
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            print(try CheckpointBenchmark.run(path: path, python: py, runs: options.runs,
                                              memoryProbe: [exe, "inspect", path, "--peak-memory"]))
        }
    }
}

struct BenchDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dist",
        abstract: "All-reduce across 2 local processes (Swift c10d Gloo vs torch.distributed), then training images/s of 2 processes vs 1.",
        discussion: """
            Starts --world local processes of this binary (a hidden worker mode, with RANK, WORLD_SIZE, LOCAL_RANK, \
            MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set, as torchrun does). Each fills float32 tensors (sizes of \
            3·3·512·512 and 3·3·256·256 conv weights and their biases, summing to --floats) with rank-dependent \
            integers, all-reduces them once and checks the sums exactly, then times --iterations all-reduces (one \
            flat buffer per call, copied back). Then tools/bench_dist.py in .venv does the same with \
            torch.distributed (gloo), started the same way; the ratio of rank 0's medians is printed. \
            --verify instead checks sum, mean, broadcast and barrier on several shapes and dtypes.

            Then (unless --no-train) the images per second of `ghm train` on a generated set (noise with filled \
            rectangles, --train-scale, 2 images per process, random init, no validation): --nproc 2 with 1 thread \
            per rank against 1 process with 2 threads, each for --train-iterations iterations, the first left out.
            """)

    @Option(help: "Floats all-reduced per call (default: 38M, about RetinaNet-GHM's parameter count).")
    var floats = 38_000_000
    @Option(help: "Timed all-reduces (the median is reported).")
    var iterations = 10
    @Option(help: "Processes.")
    var world = 2
    @Option(help: "Seconds a collective may wait for a peer before it fails.")
    var timeout = 60
    @Flag(help: "Check every collective exactly on several shapes and dtypes instead of timing (Swift only).")
    var verify = false
    @Option(help: "The project folder with tools/ and .venv (default: found automatically).")
    var repo: String?
    @Flag(help: "Skip the training images/s comparison.")
    var noTrain = false
    @Option(help: "Training iterations per mode (the first is left out).")
    var trainIterations = 5
    @Option(help: "The training scale, WxH (the config's is 1333x800).")
    var trainScale = "1333x800"

    func validate() throws {
        guard trainIterations >= 2 else { throw ValidationError("--train-iterations must be at least 2") }
        guard parsedScale != nil else { throw ValidationError("--train-scale must be WxH, e.g. 1333x800") }
        guard floats >= 1, iterations >= 1, world >= 1, timeout >= 1 else {
            throw ValidationError("--floats, --iterations, --world and --timeout must be ≥ 1")
        }
    }

    func run() throws {
        try reportingErrors {
            guard ProcessGroup.availability.gloo else {
                throw ToolError("distributed training is not available: \(ProcessGroup.availability.reason)")
            }
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            var args = ["bench", "dist-worker", "--timeout", "\(timeout)"]
            args += verify ? ["--verify"] : ["--floats", "\(floats)", "--iterations", "\(iterations)"]
            if verify {
                let ws = try DistBenchmark.launch(exe, args, world: world, port: try DistBenchmark.freePort(),
                                                  deadline: Double(timeout) * 3 + 60)
                for w in ws {
                    print("rank \(w.rank): exit \(w.status)")
                    print(w.stdout.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                    if w.status != 0 { FileHandle.standardError.write(Data(w.stderr.utf8)) }
                }
                if ws.contains(where: { $0.status != 0 }) { throw ExitCode(1) }
                return
            }
            print(try DistBenchmark.report(executable: exe, workerArguments: args, root: try? ProjectRoot.find(repo),
                                           floats: floats, iterations: iterations, world: world, timeoutSeconds: timeout))
            if !noTrain { try trainReport(exe) }
        }
    }

    var parsedScale: (Int, Int)? {
        let p = trainScale.lowercased().split(separator: "x").compactMap { Int($0) }
        return p.count == 2 && p[0] >= 64 && p[1] >= 64 ? (p[0], p[1]) : nil
    }

    func trainReport(_ exe: String) throws {
        let root = try ProjectRoot.find(repo)
        let dir = root + "/.build/bench/dist-train"
        let scale = parsedScale!
        let count = 4 * trainIterations + 4
        if !FileManager.default.fileExists(atPath: dir + "/train.json") || (try? String(contentsOfFile: dir + "/count", encoding: .utf8)) != "\(count)" {
            try? FileManager.default.removeItem(atPath: dir)
            try DistTrainBenchmark.makeSet(in: dir, count: count, width: scale.0 / 2, height: scale.1 / 2)
            try Files.writeAtomically(Data("\(count)".utf8), to: dir + "/count")
        }
        print("training images/s: ghm train at \(scale.0)×\(scale.1), 2 images per process, median of \(trainIterations - 1) "
              + "iterations after the first")
        let modes = [DistTrainBenchmark.Mode(name: "1 process x 2 threads", arguments: ["--threads", "2"], imagesPerIteration: 2),
                     DistTrainBenchmark.Mode(name: "2 processes x 1 thread", arguments: ["--nproc", "2", "--threads", "1"],
                                             imagesPerIteration: 4)]
        let results = try DistTrainBenchmark.run(executable: exe, config: root + "/configs/retinanet_ghm_r50_fpn_1x_coco.yml",
                                                 dir: dir, iterations: trainIterations, scale: scale, modes: modes) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        for r in results {
            print("  " + r.mode.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                  + String(format: "%6.3f images/s (%.2f s per iteration of %d images)", r.imagesPerSecond,
                           r.secondsPerIteration, r.mode.imagesPerIteration))
        }
        print(String(format: "  2 processes / 1 process = %.2f", results[1].imagesPerSecond / results[0].imagesPerSecond))
    }
}

/// One process of `ghm bench dist` (and of the distributed tests): joins the group from torchrun's variables.
struct BenchDistWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dist-worker", abstract: "A worker process of `ghm bench dist`.", shouldDisplay: false)

    @Option var floats = 38_000_000
    @Option var iterations = 10
    @Option var timeout = 60
    @Flag var verify = false
    @Option(help: "For tests: this rank kills itself (SIGKILL) right after joining, before the first collective.")
    var crashRank: Int?

    func run() throws {
        try reportingErrors {
            let g = try ProcessGroup.fromEnvironment(timeout: .seconds(timeout))
            print("rank \(g.rank) of \(g.worldSize) joined (\(g.backend))")
            if g.rank == crashRank {
                fflush(stdout)
                kill(getpid(), SIGKILL)
            }
            if verify {
                for line in try DistWorker.verify(g) { print(line) }
            } else {
                print(try DistWorker.bench(g, floats: floats, iterations: iterations))
            }
        }
    }
}
