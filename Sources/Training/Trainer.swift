import COCO
import Detection
import Foundation
import Inference
import Support
import Torch
import TorchCheckpoint
import TorchNN

#if canImport(Glibc)
import Glibc
#endif

/// What `ghm train` is asked to do beyond the config.
public struct TrainOptions {
    public var workDir: String
    /// The resolved config as YAML (saved in the work dir) and its name (`exp_name`).
    public var configYAML: String
    public var configName: String
    public var resumeFrom: String?
    /// Resume from `latest.pth` in the work dir when there is one.
    public var autoResume = false
    public var loadFrom: String?
    /// numpy/torch seed; nil draws one (logged and saved, so a resume continues the same stream).
    public var seed: Int?
    public var deterministic = false
    public var validate = true
    public var device: Device = .cpu
    /// Leave out images that fail to decode (counted) instead of stopping.
    public var skipBadImages = false
    /// Stop as an interrupted run would (checkpoint, non-zero status) after this many global iterations.
    public var stopAfterIterations: Int?
    /// Terminal output (the text log is echoed here).
    public var echo: (String) -> Void = { print($0) }
    /// Where `TORCH_HOME` (torchvision's weight cache) is looked up.
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init(workDir: String, configYAML: String, configName: String) {
        self.workDir = workDir
        self.configYAML = configYAML
        self.configName = configName
    }
}

/// How a run ended.
public struct TrainOutcome {
    public enum Status: Equatable { case finished, interrupted(signal: Int32), stoppedAfter(iterations: Int) }
    public var status: Status
    public var iterations: Int
    public var epochs: Int
    public var lastCheckpoint: String?
    public var logJSON: String
    public var skippedImages: Int
}

/// A stop the run cannot continue from by itself; `checkpoint` is the resumable checkpoint written before stopping
/// (nil when the last good one is an earlier file).
public struct TrainingStopped: Error, CustomStringConvertible {
    public enum Reason: Sendable { case nonFinite, badImage }
    public var reason: Reason
    public var message: String
    public var checkpoint: String?
    public var description: String {
        message + (checkpoint.map { "\nresumable checkpoint: \($0) (continue with --resume-from or --auto-resume)" } ?? "")
    }
}

// SIGINT / SIGTERM: the handler only records the signal; the loop checks it after every iteration.
nonisolated(unsafe) private var pendingSignal: sig_atomic_t = 0

private func installSignalHandlers() {
    pendingSignal = 0
    signal(SIGINT) { pendingSignal = $0 }
    signal(SIGTERM) { pendingSignal = $0 }
}

private func restoreSignalHandlers() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}

/// MMDetection 2.16's `train_detector` on mmcv 1.4's `EpochBasedRunner` with the config's hooks, in their order:
/// per epoch the sampler's draws and the flip draws (numpy's legacy stream), the LR hook's epoch lr; per iteration
/// the LR hook (warmup), forward + losses (`_parse_losses`), `zero_grad`, backward, `clip_grad_norm_`, SGD step,
/// the iteration timer and the text/JSON loggers; after an epoch the checkpoint (`epoch_N.pth`, `latest.pth`,
/// `max_keep_ckpts`) and the evaluation on `data.val`.
public final class Trainer {
    public let config: DetectorConfig
    public let options: TrainOptions
    public let model: RetinaNet
    public let dataset: TrainDataset
    /// `data.val`, read and checked once before training (nil with `validate` off), as mmdet's EvalHook builds it.
    let valDataset: COCODataset?
    public let sampler: GroupSampler
    public let pipeline: TrainPipeline
    public let schedule: LRSchedule
    public let optimizer: SGD
    public let seed: Int
    /// Whether the train pipeline has a `RandomFlip` (then every sample draws, as mmdet's does).
    let hasFlip: Bool
    let flipRatio: Double

    /// Epochs completed and global iterations done.
    public private(set) var epoch = 0
    public private(set) var iteration = 0
    /// Batches done in the current epoch (a resumed mid-epoch run skips them).
    var innerIteration = 0
    /// numpy's stream before the current epoch's draws.
    var epochStartRandom: LegacyRandom
    var lastCheckpoint: String?
    var skippedImages = 0
    let timestamp: String
    /// What building the model did (the backbone file), for the log.
    var initNotes: [String] = []

    /// Builds everything and checks everything that can be checked before the first iteration: the work dir is
    /// writable, the annotation files are readable, every image file exists, the class count matches.
    public init(config: DetectorConfig, options: TrainOptions) throws {
        self.config = config
        self.options = options
        try Files.prepareDirectory(options.workDir, role: "work dir")

        dataset = try TrainDataset(config: config.data.train)
        var problems: [String] = []
        for path in dataset.missingFiles() { problems.append("missing image: \(path)") }
        var loadedVal: COCODataset?
        if options.validate {
            let val = config.data.val
            if !FileManager.default.fileExists(atPath: val.annFile) {
                problems.append("\(val.annFile): validation annotation file not found (data.val.ann_file; or --no-validate)")
            } else {
                do {
                    let valSet = try EvalRun.loadDataset(ann: val.annFile, images: val.imgPrefix,
                                                         numClasses: config.model.bboxHead.numClasses, classes: val.classes)
                    if valSet.classNames != dataset.classNames {
                        problems.append("data.val: \(val.annFile) gives the classes \(valSet.classNames) but data.train gives "
                                        + "\(dataset.classNames): label i must mean the same class in both (set data.val.classes)")
                    }
                    loadedVal = valSet
                } catch {
                    problems.append("data.val: \(error) (or --no-validate)")
                }
            }
        }
        guard problems.isEmpty else {
            throw TrainingError("\(problems.count) problem(s) found before training:\n  " + problems.joined(separator: "\n  "))
        }
        valDataset = loadedVal
        guard !dataset.samples.isEmpty else { throw TrainingError("\(dataset.annFile): no training image left after filtering") }
        let k = config.model.bboxHead.numClasses
        guard k == dataset.catIds.count else {
            throw TrainingError("model.bbox_head.num_classes is \(k) but the training set has \(dataset.catIds.count) "
                                + "classes (\(dataset.classNames.joined(separator: ", "))): set --set model.bbox_head.num_classes="
                                + "\(dataset.catIds.count), or choose the classes with data.train.classes")
        }
        let steps = config.data.train.pipeline ?? config.trainPipeline
        hasFlip = steps.contains { if case .randomFlip = $0 { return true }; return false }
        let transform = try config.trainTransform()
        flipRatio = transform.flipRatio
        pipeline = TrainPipeline(transform: transform)
        sampler = GroupSampler(flags: dataset.flags, samplesPerGPU: config.data.samplesPerGpu)

        let seed = options.seed ?? config.seed ?? Int.random(in: 0..<(1 << 31))
        guard (0..<(1 << 32)).contains(seed) else { throw TrainingError("--seed \(seed): must be in 0..<2^32") }
        self.seed = seed
        epochStartRandom = LegacyRandom(seed: UInt32(seed))
        try Torch.manualSeed(UInt64(seed))
        // mmdet's init_weights: a `Pretrained` backbone is read from its file instead of drawn
        let backboneCheckpoint = config.model.backbone.initCheckpoint
        model = try RetinaNet(config, randomBackboneInit: backboneCheckpoint == nil)
        if let backboneCheckpoint {
            let location = try PretrainedWeights.locate(backboneCheckpoint, environment: options.environment)
            let latest = (options.workDir as NSString).appendingPathComponent("latest.pth")
            let weightsFollow = options.resumeFrom != nil || options.loadFrom != nil
                || (options.autoResume && FileManager.default.fileExists(atPath: latest))
            if location.exists {
                let report = try PretrainedWeights.load(location.path, into: model.backbone)
                initNotes.append("load backbone checkpoint from \(backboneCheckpoint) (\(location.path)): "
                                 + "\(report.loaded.count) tensors loaded")
                initNotes += report.problemLines().map { "  " + $0 }
            } else if weightsFollow {
                initNotes.append("note: the backbone file for \(backboneCheckpoint) is not at \(location.path); not needed, "
                                 + "the checkpoint given to --load-from/--resume-from sets the weights")
            } else {
                throw TrainingError(PretrainedWeights.missingMessage(backboneCheckpoint, location))
            }
        }
        try model.to(options.device)
        schedule = LRSchedule(baseLR: config.optimizer.lr, config: config.lrConfig)
        optimizer = SGD(model.parameters(), lr: config.optimizer.lr, momentum: config.optimizer.momentum,
                        weightDecay: config.optimizer.weightDecay)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd_HHmmss"
        timestamp = f.string(from: Date())
    }

    public var itersPerEpoch: Int { sampler.batchesPerEpoch }
    public var maxIterations: Int { config.runner.maxEpochs * itersPerEpoch }

    // MARK: - checkpoints

    static let resumeKey = "ghm_train"

    /// `epoch_N.pth` / `iter_N.pth` with mmcv's layout: meta (epoch, iter, CLASSES, config, seed, …, and what an
    /// exact resume needs under `ghm_train`), the state dict (GHM buffers included) and the SGD state.
    func saveCheckpoint(name: String, log: TrainLog?) throws -> String {
        let path = (options.workDir as NSString).appendingPathComponent(name)
        var meta = CheckpointDict()
        meta["ghm_version"] = .string("0.1")
        meta["CLASSES"] = .tuple(dataset.classNames.map { .string($0) })
        meta["config"] = .string(try ConfigText.mmcvText(fromYAML: options.configYAML))
        meta["seed"] = .int(seed)
        meta["exp_name"] = .string(options.configName)
        meta["epoch"] = .int(epoch)
        meta["iter"] = .int(iteration)
        meta["time"] = .string(Date().description)
        meta["hook_msgs"] = .dict(CheckpointDict([("last_ckpt", .string(path))]))
        meta[Self.resumeKey] = .dict(CheckpointDict([
            ("inner_iter", .int(innerIteration)),
            ("epoch_start_rng_key", .list(epochStartRandom.key.map { .int(Int($0)) })),
            ("epoch_start_rng_pos", .int(epochStartRandom.position)),
            ("skipped_images", .int(skippedImages)),
        ]))
        var cpu: [(key: String, tensor: Tensor)] = []
        for (k, t) in model.stateDict() { cpu.append((k, try t.to(.cpu).detach())) }
        var buffers: [Tensor?] = []
        for b in optimizer.momentumBuffers { buffers.append(try b.map { try $0.to(.cpu) }) }
        let sgd = SGDState(lr: optimizer.lr, momentum: optimizer.momentum, dampening: optimizer.dampening,
                           weightDecay: optimizer.weightDecay, nesterov: optimizer.nesterov,
                           extra: [(key: "initial_lr", value: .float(schedule.baseLR))], momentumBuffers: buffers)
        try CheckpointWriter.save(CheckpointWriter.mmdetCheckpoint(meta: meta, stateDict: StateDict(cpu), optimizer: sgd), to: path)
        try Self.linkLatest(workDir: options.workDir, target: name)
        lastCheckpoint = path
        log?.info("Saving checkpoint at \(epoch) epochs, \(iteration) iterations: \(path)")
        return path
    }

    /// Points `latest.pth` at `target` (a relative symlink, replaced atomically as mmcv's `symlink` would leave it).
    static func linkLatest(workDir: String, target: String) throws {
        let link = (workDir as NSString).appendingPathComponent("latest.pth")
        let tmp = (workDir as NSString).appendingPathComponent(".latest.pth.tmp-\(getpid())")
        unlink(tmp)
        guard symlink(target, tmp) == 0, rename(tmp, link) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw TrainingError("\(link): cannot link it to \(target) (\(why))")
        }
    }

    /// `max_keep_ckpts`: removes `epoch_{k}.pth` older than the newest `n` (mmcv's rule, stepping by the interval).
    func removeOldCheckpoints() {
        let n = config.checkpointConfig.maxKeepCkpts, interval = config.checkpointConfig.interval
        guard n > 0 else { return }
        var e = epoch - n * interval
        while e > 0 {
            let p = (options.workDir as NSString).appendingPathComponent("epoch_\(e).pth")
            guard FileManager.default.fileExists(atPath: p) else { break }
            try? FileManager.default.removeItem(atPath: p)
            e -= interval
        }
    }

    /// Restores weights, optimizer state, GHM buffers, epoch/iteration, and the sampler's random stream from a
    /// checkpoint written by `ghm train` (or mmdet: then the stream restarts from the seed, as mmdet's resume does).
    public func resume(from path: String, log: TrainLog) throws {
        let ckpt = try Checkpoint.load(path)
        try model.loadStateDict(try ckpt.stateDict().tensors, source: path)
        guard let meta = ckpt.meta, let e = meta["epoch"]?.int, let it = meta["iter"]?.int else {
            throw TrainingError("\(path): no meta.epoch / meta.iter: not a training checkpoint (use --load-from for weights only)")
        }
        if let opt = ckpt.optimizer {
            let state = try SGDState(from: opt)
            guard state.momentumBuffers.count == optimizer.params.count else {
                throw TrainingError("\(path): optimizer state has \(state.momentumBuffers.count) parameters, the model \(optimizer.params.count)")
            }
            var buffers: [Tensor?] = []
            for b in state.momentumBuffers { buffers.append(try b.map { try $0.to(options.device).contiguous() }) }
            try optimizer.setMomentumBuffers(buffers)
            optimizer.lr = state.lr
        } else {
            log.info("note: \(path) has no optimizer state; SGD momentum starts from zero")
        }
        epoch = e
        iteration = it
        innerIteration = 0
        if let r = meta[Self.resumeKey]?.dict, let inner = r["inner_iter"]?.int, let key = r["epoch_start_rng_key"]?.items,
           let pos = r["epoch_start_rng_pos"]?.int {
            innerIteration = inner
            epochStartRandom = try LegacyRandom(key: key.map { UInt32(truncatingIfNeeded: $0.int ?? 0) }, position: pos)
            skippedImages = r["skipped_images"]?.int ?? 0
        } else {
            log.info("note: \(path) was not written by ghm train: the sampler's random stream restarts from the seed (as mmdet's resume)")
        }
        log.info("resumed from \(path): epoch \(epoch), iter \(iteration)\(innerIteration > 0 ? " (batch \(innerIteration) of epoch \(epoch + 1))" : "")")
    }

    /// A resume (`--resume-from`, or `latest.pth` with `--auto-resume`) restores everything; otherwise `load_from`
    /// loads weights only, as mmcv's `load_checkpoint(strict=False)`: keys whose name and shape match are copied,
    /// the rest are listed (a classifier whose class count differs keeps its fresh init, prior bias included); the
    /// iteration count and the warmup start at 0.
    func loadStartingWeights(log: TrainLog) throws {
        var resumePath = options.resumeFrom
        if resumePath == nil && options.autoResume {
            let latest = (options.workDir as NSString).appendingPathComponent("latest.pth")
            if FileManager.default.fileExists(atPath: latest) { resumePath = latest } else { log.info("auto-resume: no \(latest) yet, starting fresh") }
        }
        if let resumePath {
            try resume(from: resumePath, log: log)
        } else if let loadFrom = options.loadFrom {
            let report = try PretrainedWeights.load(loadFrom, into: model)
            log.info("load checkpoint from \(loadFrom): \(report.loaded.count) of \(model.stateDict().count) tensors loaded")
            for line in report.problemLines() { log.info("  " + line) }
        }
    }

    // MARK: - the run

    /// Trains to `runner.max_epochs`. Throws `TrainingStopped` for a non-finite loss or gradient and for an image that
    /// cannot be decoded (without `skipBadImages`).
    public func run() throws -> TrainOutcome {
        let log = try TrainLog(workDir: options.workDir, timestamp: timestamp, echo: options.echo)
        defer { log.close() }
        let yamlPath = (options.workDir as NSString).appendingPathComponent("\(options.configName).yml")
        let dumped = try ConfigText.setting([("seed", "\(seed)"), ("work_dir", JSONText.quote(options.workDir))], inYAML: options.configYAML)
        try Files.writeAtomically(Data(dumped.utf8), to: yamlPath)
        let mmcvConfig = try ConfigText.mmcvText(fromYAML: options.configYAML)
        log.json([("env_info", .string("ghm (Swift) on libtorch \(Torch.version), \(Torch.threads) thread(s), device \(options.device)")),
                  ("config", .string(mmcvConfig)), ("seed", .int(seed)), ("exp_name", .string(options.configName))])
        log.info("Config saved to \(yamlPath)")
        log.info("Set random seed to \(seed), deterministic: \(options.deterministic)")
        log.info("train: \(dataset.annFile): \(dataset.count) images kept of \(dataset.count + dataset.filtered.count), "
                 + "classes \(dataset.classNames), aspect groups \(sampler.groupSizes), \(itersPerEpoch) iterations per epoch")
        for f in dataset.filtered { log.info("  filtered: image \(f.id) \(f.fileName): \(f.reason)") }
        for note in initNotes { log.info(note) }

        try loadStartingWeights(log: log)
        log.info("Start running, work_dir: \(options.workDir); max: \(config.runner.maxEpochs) epochs")

        installSignalHandlers()
        defer { restoreSignalHandlers() }
        var stopAfter = options.stopAfterIterations
        if let s = stopAfter, s <= iteration { stopAfter = nil }
        // a signal arrived, or --stop-after's iteration count is reached
        func stopRequested() -> Bool { pendingSignal != 0 || (stopAfter.map { iteration >= $0 } ?? false) }
        let logInterval = Swift.max(1, config.logConfig.interval)
        var timeTotal = 0.0
        let startIteration = iteration
        model.train()

        // mmcv's EvalHook with `start`: once before the run's first epoch (a val line of the epochs done so far)
        if options.validate && epoch < config.runner.maxEpochs && config.evaluation.evaluatesBefore(epoch: epoch) {
            try evaluate(log: log)
            model.train()
        }
        while epoch < config.runner.maxEpochs {
            // before_train_epoch: the sampler's draws (DataLoader iter), then the flips of the epoch's samples
            var rng = epochStartRandom
            let order = sampler.epochOrder(&rng)
            let flips = order.map { _ in hasFlip ? rng.flipDraw(ratio: flipRatio) : false }
            let loader = TrainLoader(pipeline: pipeline, samples: dataset.samples, order: order, flips: flips,
                                     batchSize: config.data.samplesPerGpu, startBatch: innerIteration,
                                     workers: config.data.workersPerGpu)
            defer { loader.stop() }
            var buffer = LogBuffer()
            var tick = monotonicSeconds()
            while let batch = loader.next() {
                let dataTime = monotonicSeconds() - tick
                let lr = schedule.lr(epoch: epoch, iteration: iteration)
                optimizer.lr = lr
                if !batch.failures.isEmpty {
                    if options.skipBadImages {
                        skippedImages += batch.failures.count
                        for f in batch.failures { log.info("skipped (--skip-bad-images): \(f)") }
                    } else {
                        let ck = try saveCheckpoint(name: "iter_\(iteration).pth", log: log)
                        throw TrainingStopped(reason: .badImage, message: "iteration \(iteration + 1): \(batch.failures.map(\.description).joined(separator: "; ")) "
                                              + "(--skip-bad-images leaves such images out)", checkpoint: ck)
                    }
                }
                if !batch.items.isEmpty {
                    let stats = try step(batch.items, lr: lr)
                    let n = batch.items.count
                    buffer.update("data_time", dataTime)
                    buffer.update("loss_cls", stats.lossCls, count: n)
                    buffer.update("loss_bbox", stats.lossBbox, count: n)
                    buffer.update("loss", stats.loss, count: n)
                    if let g = stats.gradNorm { buffer.update("grad_norm", g, count: n) }
                }
                let iterTime = monotonicSeconds() - tick
                buffer.update("time", iterTime)
                tick = monotonicSeconds()
                innerIteration += 1
                iteration += 1
                if innerIteration % logInterval == 0 {
                    let avg = buffer.average(logInterval)
                    timeTotal += (avg.first { $0.0 == "time" }?.1 ?? iterTime) * Double(logInterval)
                    logTrain(log, avg, lr: lr, timeTotal: timeTotal, done: iteration - startIteration)
                    buffer.clear()
                }
                if stopRequested() {
                    let sig = pendingSignal
                    if innerIteration == itersPerEpoch { break }  // the epoch's end saves below
                    let ck = try saveCheckpoint(name: "iter_\(iteration).pth", log: log)
                    log.info(sig != 0 ? "stopped by signal \(sig) after iteration \(iteration)" : "stopped after iteration \(iteration) as asked")
                    return TrainOutcome(status: sig != 0 ? .interrupted(signal: Int32(sig)) : .stoppedAfter(iterations: iteration),
                                        iterations: iteration, epochs: epoch, lastCheckpoint: ck, logJSON: log.jsonPath,
                                        skippedImages: skippedImages)
                }
            }
            // after_train_epoch: checkpoint, then evaluation
            epoch += 1
            innerIteration = 0
            epochStartRandom = rng
            if epoch % Swift.max(1, config.checkpointConfig.interval) == 0 || stopRequested() {
                _ = try saveCheckpoint(name: "epoch_\(epoch).pth", log: log)
                removeOldCheckpoints()
            }
            if options.validate && config.evaluation.evaluates(afterEpochs: epoch) {
                try evaluate(log: log)
                model.train()
            }
            if stopRequested() {
                let sig = pendingSignal
                if epoch < config.runner.maxEpochs {
                    return TrainOutcome(status: sig != 0 ? .interrupted(signal: Int32(sig)) : .stoppedAfter(iterations: iteration),
                                        iterations: iteration, epochs: epoch, lastCheckpoint: lastCheckpoint,
                                        logJSON: log.jsonPath, skippedImages: skippedImages)
                }
            }
        }
        return TrainOutcome(status: .finished, iterations: iteration, epochs: epoch, lastCheckpoint: lastCheckpoint,
                            logJSON: log.jsonPath, skippedImages: skippedImages)
    }

    /// The losses and the pre-clip gradient norm of one step.
    public struct StepStats {
        public var lossCls: Double, lossBbox: Double, loss: Double
        public var gradNorm: Double?
    }

    /// One iteration: forward + losses, `zero_grad`, backward, `clip_grad_norm_`, SGD step — stopping before the step
    /// when the loss or the gradient norm is not finite.
    func step(_ items: [TrainItem], lr: Double) throws -> StepStats {
        let batch = try TrainPipeline.collate(items)
        let device = options.device
        let images = try batch.images.to(device)
        var boxes: [Tensor] = [], labels: [Tensor] = []
        for b in batch.boxes { boxes.append(try b.to(device)) }
        for l in batch.labels { labels.append(try l.to(device)) }
        let losses = try model.forwardTrain(images, metas: batch.metas, gtBoxes: boxes, gtLabels: labels)
        let totals = try losses.totals()
        var stats = StepStats(lossCls: try totals.lossCls.item(), lossBbox: try totals.lossBbox.item(), loss: try totals.loss.item())
        let files = items.map { ($0.meta.filename as NSString).lastPathComponent }.joined(separator: ", ")
        for (name, v) in [("loss_cls", stats.lossCls), ("loss_bbox", stats.lossBbox)] where !v.isFinite {
            throw TrainingStopped(reason: .nonFinite, message: "iteration \(iteration + 1) (epoch \(epoch + 1), images \(files)): \(name) is \(v); "
                                  + "the run is stopped before the update, the weights were not changed",
                                  checkpoint: lastCheckpoint.map { "\($0) (the last good checkpoint)" })
        }
        try optimizer.zeroGrad()
        try totals.loss.backward()
        if let maxNorm = config.optimizerConfig.gradClipMaxNorm {
            let params = model.parameters().filter { $0.requiresGrad }
            let norm = try clipGradNorm(params, maxNorm: maxNorm)
            stats.gradNorm = norm
            guard norm.isFinite else {
                throw TrainingStopped(reason: .nonFinite, message: "iteration \(iteration + 1) (epoch \(epoch + 1), images \(files)): the gradient norm is \(norm) "
                                      + "(loss_cls \(stats.lossCls), loss_bbox \(stats.lossBbox)); the run is stopped before the update",
                                      checkpoint: lastCheckpoint.map { "\($0) (the last good checkpoint)" })
            }
        }
        try optimizer.step()
        if let dir = ProcessInfo.processInfo.environment["GHM_TRAIN_TRACE"] {
            try trace(dir: dir, batch: batch, losses: losses, stats: stats)
        }
        return stats
    }

    /// Debugging aid (`GHM_TRAIN_TRACE=DIR`): the iteration's collated input, targets, per-level losses and the GHM
    /// buffers after the step, as `DIR/iter_NNNN.safetensors`, for comparison with the MMDetection reference.
    func trace(dir: String, batch: (images: Tensor, metas: [ImageMeta], boxes: [Tensor], labels: [Tensor]),
               losses: HeadLosses, stats: StepStats) throws {
        var tensors: [(key: String, tensor: Tensor)] = [("img", batch.images)]
        for (j, b) in batch.boxes.enumerated() { tensors.append(("gt_bboxes.\(j)", b)) }
        for (j, l) in batch.labels.enumerated() { tensors.append(("gt_labels.\(j)", l)) }
        for (l, t) in losses.lossCls.enumerated() { tensors.append(("loss_cls.\(l)", try t.detach())) }
        for (l, t) in losses.lossBbox.enumerated() { tensors.append(("loss_bbox.\(l)", try t.detach())) }
        for (k, t) in model.namedBuffers() where k.hasSuffix("acc_sum") { tensors.append((k, t)) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let files = batch.metas.map { "\(($0.filename as NSString).lastPathComponent):\($0.flip)" }.joined(separator: ",")
        try Safetensors.write(tensors, metadata: ["images": files, "grad_norm": "\(stats.gradNorm ?? .nan)"],
                              to: (dir as NSString).appendingPathComponent(String(format: "iter_%04d.safetensors", iteration)))
    }

    func logTrain(_ log: TrainLog, _ avg: [(String, Double)], lr: Double, timeTotal: Double, done: Int) {
        // the iteration belongs to epoch `epoch + 1` (1-based), `innerIteration` within it (1-based), as mmcv logs
        var fields: [(String, JSONValue)] = [("mode", .string("train")), ("epoch", .int(epoch + 1)),
                                             ("iter", .int(innerIteration)), ("lr", .number(lr))]
        for (k, v) in avg { fields.append((k, .number(v))) }
        log.json(fields)
        let value = Dictionary(avg, uniquingKeysWith: { a, _ in a })
        let eta = timeTotal / Double(Swift.max(done, 1)) * Double(maxIterations - iteration)
        var text = "Epoch [\(epoch + 1)][\(innerIteration)/\(itersPerEpoch)]\tlr: \(String(format: "%.3e", lr)), "
        text += "eta: \(timedeltaText(eta)), time: \(String(format: "%.3f", value["time"] ?? 0)), "
        text += "data_time: \(String(format: "%.3f", value["data_time"] ?? 0)), "
        text += avg.filter { !["time", "data_time"].contains($0.0) }.map { "\($0.0): \(String(format: "%.4f", $0.1))" }
            .joined(separator: ", ")
        log.info(text)
    }

    /// mmdet's `EvalHook`: the test pipeline over `data.val`, COCO box AP, the 12-line table in the log and the
    /// `bbox_mAP*` keys (3 decimals, as mmdet's `CocoDataset.evaluate`) on a `val` line of log.json.
    func evaluate(log: TrainLog) throws {
        model.eval()
        let val = config.data.val
        guard let dataset = valDataset else { throw TrainingError("evaluation without data.val (validation was off when the run was built)") }
        let detector = try Detector(model: model, classNames: self.dataset.classNames)
        var failures: [String] = []
        let outcome = try EvalRun.run(detector: detector, dataset: dataset, images: val.imgPrefix, batchSize: 1,
                                      prefetchBatches: Swift.max(1, config.data.workersPerGpu)) { failures.append($0) }
        for f in failures { log.info("evaluation: \(f)") }
        log.info("Evaluating bbox...\n" + outcome.metrics.text(perCategory: false))
        let s = outcome.metrics.stats
        // mmdet: float(f'{stats[i]:.3f}')
        func r3(_ v: Double) -> Double { Double(String(format: "%.3f", v)) ?? v }
        let names = COCOMetrics.mmdetNames
        var fields: [(String, JSONValue)] = [("mode", .string("val")), ("epoch", .int(epoch)), ("iter", .int(outcome.evaluated)),
                                             ("lr", .number(optimizer.lr))]
        for (i, n) in names.enumerated() { fields.append((n, .number(r3(s[i])))) }
        fields.append(("bbox_mAP_copypaste", .string(s.prefix(6).map { String(format: "%.3f", $0) }.joined(separator: " "))))
        log.json(fields)
        log.info("Epoch(val) [\(epoch)][\(outcome.evaluated)]\t" + names.enumerated().map { "\($0.element): \(String(format: "%.4f", r3(s[$0.offset])))" }.joined(separator: ", "))
    }
}
