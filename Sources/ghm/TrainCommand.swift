import ArgumentParser
import Detection
import Foundation
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

            Starting weights, as MMDetection: the fresh init (mmdet's init_weights), with the backbone read from             model.backbone.init_cfg's file (torchvision://resnet50 = $TORCH_HOME/hub/checkpoints/            resnet50-0676ba61.pth, TORCH_HOME defaulting to ~/.cache/torch; or a path); then --load-from /             load_from: the weights of a whole detector, non-strict. Keys whose shape differs (the classifier when             the class count changes, e.g. 720 = 9×80 rows vs 9×K) keep the fresh init (prior bias -log(99)); they             and any missing or unexpected keys are listed on screen and in the log. The iteration count and the             warmup start at 0. Without the backbone file, train from scratch with             --set model.backbone.init_cfg=null, or give --load-from (then the file is not needed).

            Classes: data.train.classes (and data.val.classes) pick categories of the annotation files by name;             labels follow the files' category order, as mmdet. model.bbox_head.num_classes must equal their count             (checked before the first iteration). Every checkpoint's meta.CLASSES holds the names, which ghm             detect, infer and eval then use.

            Ctrl-C / SIGTERM save a resumable checkpoint (iter_N.pth, latest.pth) after the current iteration and \
            exit with 130 / 143; --auto-resume continues the run bit-identically. A non-finite loss or gradient \
            stops the run before the update (exit 3), naming the iteration and the loss; an image that cannot be \
            decoded stops it after a resumable checkpoint (exit 4) unless --skip-bad-images.

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

    @Option(name: .long, help: "Intra-op threads (default: libtorch's choice). Use the same number as a run you compare with.")
    var threads: Int?

    func validate() throws {
        guard Device(device) != nil else { throw ValidationError("--device must be cpu, cuda or cuda:N, not '\(device)'") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
        if resumeFrom != nil && autoResume { throw ValidationError("give --resume-from or --auto-resume, not both") }
    }

    func run() throws {
        var outcome: TrainOutcome?
        do {
            if let threads { try Torch.setThreads(threads) }
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
            let trainer = try Trainer(config: resolved.config, options: options)
            outcome = try trainer.run()
        } catch let e as TrainingStopped {
            printError("\(e)")
            throw ExitCode(e.reason == .badImage ? 4 : 3)
        } catch let e as ExitCode {
            throw e
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        guard let outcome else { return }
        switch outcome.status {
        case .finished:
            print("training finished: \(outcome.epochs) epochs, \(outcome.iterations) iterations; log \(outcome.logJSON)"
                  + (outcome.lastCheckpoint.map { "; checkpoint \($0)" } ?? "")
                  + (outcome.skippedImages > 0 ? "; \(outcome.skippedImages) image(s) skipped" : ""))
        case .interrupted(let sig):
            printError("interrupted by signal \(sig); resumable checkpoint \(outcome.lastCheckpoint ?? "-") (continue with --auto-resume)")
            throw ExitCode(128 + sig)
        case .stoppedAfter(let n):
            print("stopped after \(n) iterations as asked; resumable checkpoint \(outcome.lastCheckpoint ?? "-")")
        }
    }
}
