import ArgumentParser
import Detection
import Foundation
import Support
import Torch
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train RetinaNet-GHM as MMDetection's tools/train.py does (same config fields, logs and checkpoints).",
        discussion: """
            Runs the config's schedule (runner.max_epochs, lr_config, optimizer, grad_clip) on data.train, saving \
            epoch_N.pth and latest.pth in the work dir every checkpoint_config.interval epochs and evaluating COCO \
            box AP on data.val every evaluation.interval epochs. Logs: <timestamp>.log (text, also printed) and \
            <timestamp>.log.json (MMDetection's format; tools/analyze_logs.py plot_curve reads it). For the same \
            config, data, seed and starting weights the sample order, the flips, the learning rates and — with the \
            same thread count — the losses equal MMDetection 2.16.0's (see README "Training").

            Starting weights, as MMDetection: the fresh init (mmdet's init_weights), with the backbone read from model.backbone.init_cfg's file (torchvision://resnet50 = $TORCH_HOME/hub/checkpoints/resnet50-0676ba61.pth, TORCH_HOME defaulting to ~/.cache/torch; or a path); then --load-from / load_from: the weights of a whole detector, non-strict. Keys whose shape differs (the classifier when the class count changes, e.g. 720 = 9×80 rows vs 9×K) keep the fresh init (prior bias -log(99)); they and any missing or unexpected keys are listed on screen and in the log. The iteration count and the warmup start at 0. Without the backbone file, train from scratch with --set model.backbone.init_cfg=null, or give --load-from (then the file is not needed).

            Classes: data.train.classes (and data.val.classes) pick categories of the annotation files by name; labels follow the files' category order, as mmdet. model.bbox_head.num_classes must equal their count (checked before the first iteration). Every checkpoint's meta.CLASSES holds the names, which ghm detect, infer and eval then use.

            Ctrl-C / SIGTERM save a resumable checkpoint (iter_N.pth, latest.pth) after the current iteration and \
            exit with 130 / 143; --auto-resume continues the run bit-identically. A non-finite loss or gradient \
            stops the run before the update (exit 3), naming the iteration and the loss; an image that cannot be \
            decoded stops it after a resumable checkpoint (exit 4) unless --skip-bad-images.

            Data-parallel training (MMDetection's distributed training, on PyTorch's c10d: Gloo for CPU tensors, NCCL \
            for CUDA ones): --nproc N starts N ranks on this machine and shows rank 0's output; any launcher that \
            sets torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) works too, e.g. \
            torchrun --nproc-per-node N --no-python ghm train … (and --nnodes/--node-rank/--master-addr for several \
            machines; the work dir must then be shared for --auto-resume). data.samples_per_gpu is per rank; each \
            rank draws its share from DistributedGroupSampler (seeded seed + epoch) and keeps its own GHM state; the \
            gradients are averaged over the ranks; rank 0 writes the logs and checkpoints; evaluation is split over \
            the ranks. --simulate-ranks N computes N ranks' sub-batches in turn in one process (the 8 × 2 recipe on \
            one GPU); its checkpoints resume in an N-process run and back. A rank that dies stops the others (exit 1, \
            naming it); continue with --auto-resume.

            Example:
              ghm train --config configs/retinanet_ghm_r50_fpn_1x_coco.yml --work-dir work_dirs/ghm \\
                --set data.train.ann_file=data/train.json --set data.train.img_prefix=data/images/ \\
                --set data.val.ann_file=data/val.json --set data.val.img_prefix=data/images/ \\
                --set model.bbox_head.num_classes=3 --load-from start.pth --seed 0
            """)

    @Option(name: .long, help: "Experiment config (YAML, MMDetection field names).")
    var config: String

    @Option(name: .long, help: "Where logs, the resolved config and checkpoints go (default: work_dirs/<config name>/).")
    var workDir: String?

    @Option(name: .long, help: "Continue a run from this checkpoint (weights, optimizer, GHM buffers, epoch/iteration, sampler state).")
    var resumeFrom: String?

    @Flag(name: .long, help: "Continue from <work dir>/latest.pth when it exists.")
    var autoResume = false

    @Option(name: .long, help: "Start from these weights (non-strict, iteration 0), as the config's load_from.")
    var loadFrom: String?

    @Option(name: .long, help: "Seed of numpy's legacy stream (sample order, flips) and of torch (fresh weights).")
    var seed: Int?

    @Flag(name: .long, help: "Deterministic kernels (CPU kernels here already are; recorded in the log).")
    var deterministic = false

    @Flag(name: .long, help: "Do not evaluate on data.val during training.")
    var noValidate = false

    @Flag(name: .long, help: "Leave out images that cannot be decoded (counted and logged) instead of stopping.")
    var skipBadImages = false

    @Option(name: .long, help: "Stop after this many iterations in total, saving a resumable checkpoint (for splitting a run).")
    var stopAfter: Int?

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Override a config value with MMDetection's names, e.g. --set runner.max_epochs=2 (repeatable).")
    var overrides: [String] = []

    @Option(name: .long, help: "cpu, cuda or cuda:N.")
    var device = "cpu"

    @Option(name: .long, help: "Intra-op threads (default: libtorch's choice; with --nproc, the cores shared among the ranks).")
    var threads: Int?

    @Option(name: .long, help: "Start this many ranks on this machine (data-parallel training); rank 0's output is shown.")
    var nproc: Int?

    @Option(name: .long, help: "Port of --nproc's rendezvous on 127.0.0.1 (default: a free one).")
    var masterPort: Int?

    @Option(name: .long, help: "Compute N ranks' sub-batches in turn in this process (one GPU reproducing N GPUs).")
    var simulateRanks: Int?

    @Option(name: .long, help: "Seconds a collective waits for the other ranks before the run stops with an error.")
    var distTimeout = 1800

    @Flag(name: .long, help: "Sum GHM's bin counts over the ranks (one histogram per iteration; mmdet keeps one per rank).")
    var syncGhmBins = false

    @Option(name: .long, help: ArgumentHelp("Mixed precision (the config's fp16, e.g. --set fp16.loss_scale=dynamic): the autocast dtype (default: fp16 on CUDA, bf16 on CPU).", valueName: "bf16|fp16"))
    var ampDtype: String?

    func validate() throws {
        guard Device(device) != nil else { throw ValidationError("--device must be cpu, cuda or cuda:N, not '\(device)'") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
        if resumeFrom != nil && autoResume { throw ValidationError("give --resume-from or --auto-resume, not both") }
        if let nproc, nproc < 1 { throw ValidationError("--nproc must be at least 1") }
        if let simulateRanks, simulateRanks < 1 { throw ValidationError("--simulate-ranks must be at least 1") }
        if nproc ?? 1 > 1 && simulateRanks ?? 1 > 1 { throw ValidationError("give --nproc or --simulate-ranks, not both") }
        if distTimeout < 1 { throw ValidationError("--dist-timeout must be at least 1 second") }
        if let ampDtype, !["bf16", "bfloat16", "fp16", "float16"].contains(ampDtype.lowercased()) {
            throw ValidationError("--amp-dtype takes bf16 or fp16, not '\(ampDtype)'")
        }
        if nproc ?? 1 > 1 && ProcessInfo.processInfo.environment["WORLD_SIZE"] != nil {
            throw ValidationError("--nproc inside a launched rank (WORLD_SIZE is set): use either the launcher or --nproc")
        }
    }

    /// `--nproc N`: this command again as N ranks, without `--nproc`; returns the exit status to give.
    func launchRanks(_ n: Int) throws -> Int32 {
        var args: [String] = []
        var it = CommandLine.arguments.dropFirst().makeIterator()
        while let a = it.next() {
            if a == "--nproc" || a == "--master-port" { _ = it.next(); continue }
            if a.hasPrefix("--nproc=") || a.hasPrefix("--master-port=") { continue }
            args.append(a)
        }
        if threads == nil {
            let each = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount / n)
            args += ["--threads", "\(each)"]
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let port = try masterPort ?? RankLauncher.freePort()
        func say(_ s: String) { FileHandle.standardError.write(Data("ghm train: \(s)\n".utf8)) }
        say("starting \(n) ranks on 127.0.0.1:\(port) (rank 0's output follows)")
        let exits = try RankLauncher.run(executable: exe, arguments: args, world: n, port: port,
                                         grace: Double(distTimeout) + 30) { say($0) }
        return RankLauncher.exitCode(exits)
    }

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)  // line by line into pipes and files too (tee, the launcher, a test)
        if let nproc, nproc > 1 {
            let code: Int32
            do { code = try launchRanks(nproc) } catch { printError("\(error)"); throw ExitCode(1) }
            if code != 0 { throw ExitCode(code) }
            return
        }
        // the errors of ranks other than 0 say whose they are (their output is otherwise silent)
        let env = ProcessInfo.processInfo.environment
        let who = (env["WORLD_SIZE"].flatMap { Int($0) } ?? 1) > 1 && env["RANK"] != "0" ? "[rank \(env["RANK"] ?? "?")] " : ""
        var outcome: TrainOutcome?
        do {
            if let threads { try Torch.setThreads(threads) }
            var parallel = Parallelism.single
            if let w = env["WORLD_SIZE"], Int(w) != 1 {
                parallel = .group(try ProcessGroup.fromEnvironment(env, timeout: .seconds(distTimeout)))
            } else if let simulateRanks, simulateRanks > 1 {
                parallel = .simulated(ranks: simulateRanks)
            }
            enableModelAllocator(training: true)
            let resolved = try DetectorConfig.resolved(path: config, overrides: overrides)
            let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
            let dir = workDir ?? resolved.config.workDir ?? "work_dirs/\(name)"
            var options = TrainOptions(workDir: dir, configYAML: resolved.yaml, configName: name)
            options.resumeFrom = resumeFrom ?? resolved.config.resumeFrom
            options.autoResume = autoResume
            options.loadFrom = loadFrom ?? resolved.config.loadFrom
            options.seed = seed
            options.deterministic = deterministic
            options.validate = !noValidate
            options.device = Device(device)!
            options.skipBadImages = skipBadImages
            options.stopAfterIterations = stopAfter
            options.parallel = parallel
            options.syncGHMBins = syncGhmBins
            options.ampDtype = ampDtype.map { ["bf16", "bfloat16"].contains($0.lowercased()) ? .bfloat16 : .float16 }
            if ampDtype != nil && resolved.config.fp16 == nil {
                throw ValidationError("--amp-dtype needs mixed precision on: the config's fp16 (e.g. --set fp16.loss_scale=dynamic)")
            }
            if case .group(let g) = parallel {
                if options.device == .cuda(0) && device == "cuda" { options.device = .cuda(g.localRank) }
                if g.rank != 0 { options.echo = { _ in } }
            }
            let trainer = try Trainer(config: resolved.config, options: options)
            outcome = try trainer.run()
        } catch let e as TrainingStopped {
            printError(who + "\(e)")
            throw ExitCode(e.reason == .badImage ? 4 : 3)
        } catch let e as ExitCode {
            throw e
        } catch {
            printError(who + "\(error)")
            throw ExitCode(1)
        }
        guard let outcome else { return }
        if !who.isEmpty, case .finished = outcome.status { return }  // rank 0 reports for everyone
        switch outcome.status {
        case .finished:
            print("training finished: \(outcome.epochs) epochs, \(outcome.iterations) iterations; log \(outcome.logJSON)"
                  + (outcome.lastCheckpoint.map { "; checkpoint \($0)" } ?? "")
                  + (outcome.skippedImages > 0 ? "; \(outcome.skippedImages) image(s) skipped" : ""))
        case .interrupted(let sig):
            printError(who + "interrupted by signal \(sig); resumable checkpoint \(outcome.lastCheckpoint ?? "-") (continue with --auto-resume)")
            throw ExitCode(128 + sig)
        case .stoppedAfter(let n):
            if !who.isEmpty { return }
            print("stopped after \(n) iterations as asked; resumable checkpoint \(outcome.lastCheckpoint ?? "-")")
        }
    }
}
