import COCO
import Detection
import Foundation
import GHMLosses
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
    /// One process, one rank of a process group, or N ranks' arithmetic in this process.
    public var parallel: Parallelism = .single
    /// Sum GHM's bin counts (and valid counts) over the ranks, so that every rank weights by the histogram of the
    /// whole iteration; mmdet does not (each rank keeps its own), so this is off by default.
    public var syncGHMBins = false
    /// The autocast dtype of mixed-precision training (the config's `fp16`): float16 or bfloat16; nil picks float16 on
    /// CUDA and bfloat16 on CPU (libtorch's fp16 CPU kernels are slow).
    public var ampDtype: DType?

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
    /// The epoch order of each rank this process computes: mmdet's `GroupSampler` in one process, its
    /// `DistributedGroupSampler` (seeded `seed + epoch`) when there are several ranks.
    public let samplers: [any EpochSampler]
    public let parallel: Parallelism
    public let pipeline: TrainPipeline
    public let schedule: LRSchedule
    public let optimizer: SGD
    /// mmcv's `Fp16OptimizerHook` (config `fp16`): the loss scaler and the autocast dtype; nil in fp32 training.
    public let scaler: GradScaler?
    public let ampDtype: DType?
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
    /// The model's GHM `acc_sum` buffers (rank 0's state between iterations when ranks are simulated).
    let ghmBuffers: [(key: String, tensor: Tensor)]
    /// Each simulated rank's GHM state, `[rank][buffer]`; empty unless ranks are simulated.
    var rankGHM: [[Tensor]] = []
    /// Whether a resume gave each rank its own GHM state (otherwise every rank starts from the model's).
    var ghmRestoredPerRank = false
    var rank: Int { parallel.rank }
    var worldSize: Int { parallel.worldSize }
    /// Logs, checkpoints and evaluation results come from rank 0 only, as mmdet's `master_only` hooks.
    var isMain: Bool { parallel.rank == 0 }

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
        parallel = options.parallel
        var seed = options.seed ?? config.seed ?? Int.random(in: 0..<(1 << 31))
        if let g = options.parallel.group, options.seed == nil && config.seed == nil {
            // every rank needs the same seed (the sampler's permutations, the flips, the fresh init): rank 0's
            let t = try Tensor([Int64(seed)], shape: [1])
            try g.broadcast([t], root: 0)
            seed = Int(try t.int64s()[0])
        }
        guard (0..<(1 << 32)).contains(seed) else { throw TrainingError("--seed \(seed): must be in 0..<2^32") }
        self.seed = seed
        let world = options.parallel.worldSize
        if world > 1 {
            let d = dataset, spg = config.data.samplesPerGpu
            samplers = options.parallel.localRanks.map {
                DistributedGroupSampler(flags: d.flags, samplesPerGPU: spg, numReplicas: world, rank: $0, seed: seed)
            }
        } else {
            samplers = [GroupSampler(flags: dataset.flags, samplesPerGPU: config.data.samplesPerGpu)]
        }
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
        let ghm = model.namedBuffers().filter { $0.key.hasSuffix("acc_sum") }
        ghmBuffers = ghm
        if case .simulated(let n) = options.parallel {
            guard n >= 1 else { throw TrainingError("simulated ranks: \(n) (must be at least 1)") }
            rankGHM = try (0..<n).map { _ in try ghm.map { try $0.tensor.clone() } }
        }
        if options.syncGHMBins {
            switch options.parallel {
            case .group(let g):
                let sync: GHMStatisticsSync = { v throws(TorchError) in try g.allReduceSum([v]) }
                for loss in [model.bboxHead.lossCls as AnyObject, model.bboxHead.lossBbox as AnyObject] {
                    if let c = loss as? GHMC {
                        guard c.implementation == .fused else { throw TrainingError("--sync-ghm-bins needs the fused GHM implementation") }
                        c.statisticsSync = sync
                    }
                    if let r = loss as? GHMR {
                        guard r.implementation == .fused else { throw TrainingError("--sync-ghm-bins needs the fused GHM implementation") }
                        r.statisticsSync = sync
                    }
                }
                initNotes.append("GHM bin counts summed over the \(g.worldSize) ranks (--sync-ghm-bins; mmdet keeps them per rank)")
            case .single:
                initNotes.append("note: --sync-ghm-bins has no effect with one rank")
            case .simulated, .merged:
                throw TrainingError("--sync-ghm-bins needs ranks as processes (--nproc or a launcher); simulated ranks keep "
                                    + "their own histograms, as mmdet's ranks")
            }
        }
        if let fp16 = config.fp16 {
            let a = fp16.scaler
            scaler = try GradScaler(initScale: a.initScale, growthFactor: a.growthFactor, backoffFactor: a.backoffFactor,
                                    growthInterval: a.growthInterval, device: options.device)
            let dt = options.ampDtype ?? (options.device.isCUDA ? .float16 : .bfloat16)
            guard dt == .float16 || dt == .bfloat16 else { throw TrainingError("--amp-dtype: float16 or bfloat16, not \(dt)") }
            ampDtype = dt
            initNotes.append("mixed precision (fp16 config): autocast \(dt) on \(options.device), losses in float32, loss scale "
                             + (a.fixed.map { "\($0) (static)" } ?? "\(a.initScale) (dynamic: ×\(a.growthFactor) after \(a.growthInterval) finite steps, ×\(a.backoffFactor) after a non-finite one)"))
        } else {
            scaler = nil
            ampDtype = nil
        }
        schedule = LRSchedule(baseLR: config.optimizer.lr, config: config.lrConfig)
        optimizer = SGD(model.parameters(), lr: config.optimizer.lr, momentum: config.optimizer.momentum,
                        weightDecay: config.optimizer.weightDecay)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd_HHmmss"
        timestamp = f.string(from: Date())
    }

    public var itersPerEpoch: Int { samplers[0].batchesPerEpoch }
    public var maxIterations: Int { config.runner.maxEpochs * itersPerEpoch }

    // MARK: - checkpoints

    static let resumeKey = "ghm_train"

    /// Every rank's GHM state (`[rank][flattened buffers]`): a collective when the ranks are processes.
    func gatherGHMStates() throws -> [[Double]] {
        func flat(_ ts: [Tensor]) throws -> [Double] { try ts.flatMap { try $0.to(.cpu).to(.float64).doubles() } }
        switch parallel {
        case .single, .merged: return [try flat(ghmBuffers.map(\.tensor))]
        case .simulated: return try rankGHM.map { try flat($0) }
        case .group(let g): return try RankExchange.allGather(g, try flat(ghmBuffers.map(\.tensor)))
        }
    }

    /// Sets GHM buffers from a flattened state (as `gatherGHMStates` gives it).
    func setGHMState(_ values: [Double], into tensors: [Tensor]) throws {
        var offset = 0
        for t in tensors {
            let n = t.shape.reduce(1, *)
            let v = try Tensor(Array(values[offset..<(offset + n)]), shape: t.shape).to(.float32).to(t.device)
            try withNoGrad { () throws(TorchError) in try t.copy_(v) }
            offset += n
        }
    }

    /// `epoch_N.pth` / `iter_N.pth` with mmcv's layout: meta (epoch, iter, CLASSES, config, seed, …, and what an
    /// exact resume needs under `ghm_train`, every rank's GHM state included), the state dict (GHM buffers included:
    /// rank 0's) and the SGD state. Every rank takes part (the GHM states are gathered); rank 0 writes, then all wait
    /// until the file is complete.
    @discardableResult
    func saveCheckpoint(name: String, log: TrainLog?) throws -> String {
        let path = (options.workDir as NSString).appendingPathComponent(name)
        let ghmStates = try gatherGHMStates()
        if isMain { try writeCheckpoint(path: path, name: name, ghmStates: ghmStates, log: log) }
        if let g = parallel.group { try g.barrier() }
        lastCheckpoint = path
        return path
    }

    private func writeCheckpoint(path: String, name: String, ghmStates: [[Double]], log: TrainLog?) throws {
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
        if let scaler {
            // mmcv's Fp16OptimizerHook: runner.meta['fp16']['loss_scaler'] = GradScaler.state_dict()
            let st = scaler.state
            meta["fp16"] = .dict(CheckpointDict([("loss_scaler", .dict(CheckpointDict([
                ("scale", .float(st.scale)), ("growth_factor", .float(st.growthFactor)),
                ("backoff_factor", .float(st.backoffFactor)), ("growth_interval", .int(st.growthInterval)),
                ("_growth_tracker", .int(st.growthTracker)),
            ])))]))
        }
        meta[Self.resumeKey] = .dict(CheckpointDict([
            ("inner_iter", .int(innerIteration)),
            ("epoch_start_rng_key", .list(epochStartRandom.key.map { .int(Int($0)) })),
            ("epoch_start_rng_pos", .int(epochStartRandom.position)),
            ("skipped_images", .int(skippedImages)),
            ("world_size", .int(worldSize)),
            ("ghm_state_keys", .list(ghmBuffers.map { .string($0.key) })),
            ("rank_ghm_state", .list(ghmStates.map { .list($0.map { .float($0) }) })),
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
        log?.info("Saving checkpoint at \(epoch) epochs, \(iteration) iterations: \(path)")
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
        if let scaler {
            if let ls = meta["fp16"]?.dict?["loss_scaler"]?.dict, let sc = ls["scale"]?.double {
                try scaler.load(scale: sc, growthTracker: ls["_growth_tracker"]?.int ?? 0)
            } else {
                log.info("note: \(path) has no loss scaler state (meta.fp16.loss_scaler); the scale starts at \(scaler.scale)")
            }
        }
        epoch = e
        iteration = it
        innerIteration = 0
        lastCheckpoint = URL(fileURLWithPath: path).resolvingSymlinksInPath().path  // latest.pth will move on
        if let r = meta[Self.resumeKey]?.dict, let inner = r["inner_iter"]?.int, let key = r["epoch_start_rng_key"]?.items,
           let pos = r["epoch_start_rng_pos"]?.int {
            innerIteration = inner
            epochStartRandom = try LegacyRandom(key: key.map { UInt32(truncatingIfNeeded: $0.int ?? 0) }, position: pos)
            skippedImages = r["skipped_images"]?.int ?? 0
            let savedWorld = r["world_size"]?.int ?? 1
            if savedWorld != worldSize && inner > 0 {
                log.info("note: \(path) was written in the middle of epoch \(e + 1) by a run of \(savedWorld) rank(s); this run has "
                         + "\(worldSize), whose sampler orders the epoch differently: epoch \(e + 1) restarts from its first batch")
                innerIteration = 0
            }
            try restoreRankGHM(r, savedWorld: savedWorld, path: path, log: log)
        } else {
            log.info("note: \(path) was not written by ghm train: the sampler's random stream restarts from the seed (as mmdet's resume)")
        }
        log.info("resumed from \(path): epoch \(epoch), iter \(iteration)\(innerIteration > 0 ? " (batch \(innerIteration) of epoch \(epoch + 1))" : "")")
    }

    /// Each rank continues with its own GHM state when the checkpoint holds one per rank for this world size;
    /// otherwise every rank starts from the state dict's (rank 0's), as every rank of mmdet loads the same file.
    func restoreRankGHM(_ r: CheckpointDict, savedWorld: Int, path: String, log: TrainLog) throws {
        let keys = r["ghm_state_keys"]?.items?.compactMap(\.string)
        let rows = r["rank_ghm_state"]?.items?.map { $0.items?.compactMap(\.double) ?? [] }
        let size = ghmBuffers.reduce(0) { $0 + $1.tensor.shape.reduce(1, *) }
        guard let keys, let rows, keys == ghmBuffers.map(\.key), rows.count == savedWorld, rows.allSatisfy({ $0.count == size }),
              savedWorld == worldSize else {
            if worldSize > 1 && !ghmBuffers.isEmpty {
                log.info("note: \(path) holds no GHM state for each of \(worldSize) ranks (written by \(savedWorld)); every rank "
                         + "continues from the checkpoint's acc_sum, as mmdet's resume")
            }
            return
        }
        ghmRestoredPerRank = true
        switch parallel {
        case .single, .merged: break
        case .group(let g): try setGHMState(rows[g.rank], into: ghmBuffers.map(\.tensor))
        case .simulated:
            for i in rankGHM.indices { try setGHMState(rows[i], into: rankGHM[i]) }
            try setGHMState(rows[0], into: ghmBuffers.map(\.tensor))
        }
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
    /// cannot be decoded (without `skipBadImages`). With several ranks as processes, every rank calls it; a rank that
    /// dies makes the others throw a `TrainingError` naming it (at the next collective, within the group's timeout).
    public func run() throws -> TrainOutcome {
        let log = isMain ? try TrainLog(workDir: options.workDir, timestamp: timestamp, echo: options.echo) : TrainLog.silent()
        defer { log.close() }
        do {
            return try runLogged(log)
        } catch let e as TorchError where Self.collectiveOps.contains(e.op) && parallel.group != nil {
            throw peerFailure(e, rank: rank, worldSize: worldSize, during: e.op)
        }
    }

    static let collectiveOps: Set<String> = ["all_reduce", "all_reduce_mean", "broadcast", "barrier"]

    private func runLogged(_ log: TrainLog) throws -> TrainOutcome {
        if isMain {
            let yamlPath = (options.workDir as NSString).appendingPathComponent("\(options.configName).yml")
            let dumped = try ConfigText.setting([("seed", "\(seed)"), ("work_dir", JSONText.quote(options.workDir))], inYAML: options.configYAML)
            try Files.writeAtomically(Data(dumped.utf8), to: yamlPath)
            let mmcvConfig = try ConfigText.mmcvText(fromYAML: options.configYAML)
            log.json([("env_info", .string("ghm (Swift) on libtorch \(Torch.version), \(Torch.threads) thread(s), device \(options.device)"
                                           + parallelDescription)),
                      ("config", .string(mmcvConfig)), ("seed", .int(seed)), ("exp_name", .string(options.configName))])
            log.info("Config saved to \(yamlPath)")
        }
        log.info("Set random seed to \(seed), deterministic: \(options.deterministic)")
        log.info("train: \(dataset.annFile): \(dataset.count) images kept of \(dataset.count + dataset.filtered.count), "
                 + "classes \(dataset.classNames), aspect groups \(samplers[0].groupSizes), \(itersPerEpoch) iterations per epoch"
                 + (worldSize > 1 ? " of \(worldSize) × \(config.data.samplesPerGpu) images\(parallelDescription)" : ""))
        for f in dataset.filtered { log.info("  filtered: image \(f.id) \(f.fileName): \(f.reason)") }
        for note in initNotes { log.info(note) }

        try loadStartingWeights(log: log)
        if !ghmRestoredPerRank && !rankGHM.isEmpty {
            rankGHM = try rankGHM.map { _ in try ghmBuffers.map { try $0.tensor.clone() } }
        }
        if let g = parallel.group {
            // DDP's _sync_module_states: rank 0's parameters and buffers, except the GHM state each rank keeps
            // (broadcast_buffers=False)
            let ghmKeys = Set(ghmBuffers.map(\.key))
            try withNoGrad { () throws(TorchError) in
                try g.broadcast(model.stateDict().filter { !ghmKeys.contains($0.key) }.map(\.tensor), root: 0)
            }
            log.info("rank 0's parameters and buffers broadcast to the \(worldSize) ranks (GHM state kept per rank)")
        }
        log.info("Start running, work_dir: \(options.workDir); max: \(config.runner.maxEpochs) epochs")

        installSignalHandlers()
        defer { restoreSignalHandlers() }
        var stopAfter = options.stopAfterIterations
        if let s = stopAfter, s <= iteration { stopAfter = nil }
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
            // before_train_epoch: every local rank's sampler order (one epoch of numpy draws with GroupSampler, none
            // with DistributedGroupSampler), then the flips of its samples from numpy's stream. Every rank draws as
            // many flips, so their streams stay equal and one state resumes them all.
            var endRandom = epochStartRandom
            var loaders: [TrainLoader] = []
            defer { for l in loaders { l.stop() } }
            for s in samplers {
                var rng = epochStartRandom
                let order = try s.epochOrder(epoch: epoch, rng: &rng)
                let flips = order.map { _ in hasFlip ? rng.flipDraw(ratio: flipRatio) : false }
                endRandom = rng
                loaders.append(TrainLoader(pipeline: pipeline, samples: dataset.samples, order: order, flips: flips,
                                           batchSize: config.data.samplesPerGpu, startBatch: innerIteration,
                                           workers: config.data.workersPerGpu))
            }
            var buffer = LogBuffer()
            var tick = monotonicSeconds()
            while innerIteration < itersPerEpoch {
                var batches: [LoadedBatch] = []
                for l in loaders {
                    guard let b = l.next() else { throw TrainingError("internal: the loader ended before batch \(innerIteration + 1)") }
                    batches.append(b)
                }
                let dataTime = monotonicSeconds() - tick
                let lr = schedule.lr(epoch: epoch, iteration: iteration)
                optimizer.lr = lr
                let skip = try handleBadImages(batches, log: log)
                let stats = try step(skip ? batches.map { _ in [] } : batches.map(\.items), lr: lr, skip: skip)
                let n = batches[0].items.count
                if stats.skipped {
                    log.info("iteration \(iteration + 1): inf/NaN gradients, the step is skipped (mixed precision); loss scale now "
                             + "\(stats.lossScale.map { "\($0)" } ?? "-")")
                }
                if n > 0 {
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
                let stop = try agreedStop(stopAfter)
                if stop.stop {
                    if innerIteration == itersPerEpoch { break }  // the epoch's end saves below
                    let ck = try saveCheckpoint(name: "iter_\(iteration).pth", log: log)
                    log.info(stop.signal != 0 ? "stopped by signal \(stop.signal) after iteration \(iteration)" : "stopped after iteration \(iteration) as asked")
                    return TrainOutcome(status: stop.signal != 0 ? .interrupted(signal: stop.signal) : .stoppedAfter(iterations: iteration),
                                        iterations: iteration, epochs: epoch, lastCheckpoint: ck, logJSON: log.jsonPath,
                                        skippedImages: skippedImages)
                }
            }
            // after_train_epoch: checkpoint, then evaluation
            epoch += 1
            innerIteration = 0
            epochStartRandom = endRandom
            if try epoch % Swift.max(1, config.checkpointConfig.interval) == 0 || agreedStop(stopAfter).stop {
                try saveCheckpoint(name: "epoch_\(epoch).pth", log: log)
                if isMain { removeOldCheckpoints() }
            }
            if options.validate && config.evaluation.evaluates(afterEpochs: epoch) {
                try evaluate(log: log)
                model.train()
            }
            let stop = try agreedStop(stopAfter)
            if stop.stop && epoch < config.runner.maxEpochs {
                return TrainOutcome(status: stop.signal != 0 ? .interrupted(signal: stop.signal) : .stoppedAfter(iterations: iteration),
                                    iterations: iteration, epochs: epoch, lastCheckpoint: lastCheckpoint,
                                    logJSON: log.jsonPath, skippedImages: skippedImages)
            }
        }
        return TrainOutcome(status: .finished, iterations: iteration, epochs: epoch, lastCheckpoint: lastCheckpoint,
                            logJSON: log.jsonPath, skippedImages: skippedImages)
    }

    var parallelDescription: String {
        switch parallel {
        case .single: return ""
        case .group(let g): return ", rank \(g.rank) of \(g.worldSize) (\(g.backend))"
        case .simulated(let n): return ", \(n) ranks simulated in one process"
        case .merged(let n): return ", \(n) ranks' images as one batch"
        }
    }

    /// Whether to stop after this iteration: a signal (on any rank) or `--stop-after`'s count, agreed by every rank so
    /// that they all stop at the same iteration.
    func agreedStop(_ stopAfter: Int?) throws -> (stop: Bool, signal: Int32) {
        var signal = Int32(pendingSignal)
        if let g = parallel.group {
            signal = Int32(try RankExchange.allGather(g, [Double(signal)]).map { $0[0] }.first { $0 != 0 } ?? 0)
        }
        return (signal != 0 || (stopAfter.map { iteration >= $0 } ?? false), signal)
    }

    /// Images that failed to decode: counted and left out with `skipBadImages`; otherwise every rank stops after a
    /// resumable checkpoint of the state before this iteration (decided together, before any rank's forward).
    /// Returns whether every rank skips this iteration's step: with `--sync-ghm-bins`, when a rank has no image left
    /// (its GHM statistics could not take part).
    func handleBadImages(_ batches: [LoadedBatch], log: TrainLog) throws -> Bool {
        let failures = batches.flatMap(\.failures)
        var all: [[Double]] = [[Double(failures.count), Double(batches.map(\.items.count).min() ?? 0)]]
        if let g = parallel.group { all = try RankExchange.allGather(g, all[0]) }
        if options.skipBadImages {
            skippedImages += failures.count
            for f in failures { log.info("skipped (--skip-bad-images): \(f)") }
            if let g = parallel.group {
                skippedImages += Int(all.enumerated().filter { $0.offset != g.rank }.reduce(0) { $0 + $1.element[0] })
            }
            let skip = options.syncGHMBins && parallel.group != nil && all.contains { $0[1] == 0 }
            if skip { log.info("iteration \(iteration + 1): a rank has no image left; every rank skips the step (--sync-ghm-bins)") }
            return skip
        }
        let failingRanks = all.indices.filter { all[$0][0] > 0 && $0 != rank && parallel.group != nil }
        guard !failures.isEmpty || !failingRanks.isEmpty else { return false }
        let ck = try saveCheckpoint(name: "iter_\(iteration).pth", log: log)
        var parts = failures.map(\.description)
        if !failingRanks.isEmpty { parts.append("images of rank(s) \(failingRanks.map(String.init).joined(separator: ", ")) (their output names them)") }
        throw TrainingStopped(reason: .badImage, message: "iteration \(iteration + 1): \(parts.joined(separator: "; ")) "
                              + "(--skip-bad-images leaves such images out)", checkpoint: ck)
    }

    /// The losses and the pre-clip gradient norm of one step: the losses averaged over the ranks, as mmdet's
    /// `_parse_losses` logs them, and every rank's own.
    public struct StepStats {
        public var lossCls: Double, lossBbox: Double, loss: Double
        public var gradNorm: Double?
        /// Rank r's `loss_cls`, `loss_bbox`, `loss` (the values before averaging).
        public var perRank: [[Double]] = []
        /// Mixed precision: whether a gradient was inf/NaN (then the step was skipped), and the scale after the update.
        public var nonFiniteGradients = false
        public var skipped = false
        public var lossScale: Double?
    }

    /// One iteration: for each local rank (with its GHM state) forward + losses, then `zero_grad` and backward
    /// (accumulating when ranks are simulated), gradients averaged over the ranks (one all-reduce when the ranks are
    /// processes), `clip_grad_norm_`, SGD step — stopping before the step when a loss or the gradient norm is not
    /// finite on any rank.
    func step(_ rankBatches: [[TrainItem]], lr: Double, skip: Bool = false) throws -> StepStats {
        var subBatches = rankBatches
        if case .merged = parallel { subBatches = [rankBatches.flatMap { $0 }] }
        if skip || (parallel.group == nil && subBatches.allSatisfy(\.isEmpty)) { return StepStats(lossCls: 0, lossBbox: 0, loss: 0) }
        let device = options.device
        let simulated = subBatches.count > 1
        typealias Collated = (images: Tensor, metas: [ImageMeta], boxes: [Tensor], labels: [Tensor])
        var traces: [(rank: Int, batch: Collated, losses: HeadLosses)] = []
        let tracing = ProcessInfo.processInfo.environment["GHM_TRAIN_TRACE"]
        var local: [[Double]] = []  // per local rank: loss_cls, loss_bbox, loss, images
        var files: [String] = []
        try optimizer.zeroGrad()
        let params = model.parameters().filter { $0.requiresGrad }
        var pending: Tensor?  // a rank's loss: backward once every rank's losses are known to be finite
        for (i, items) in subBatches.enumerated() {
            let r = parallel.localRanks[i]
            files.append(items.map { ($0.meta.filename as NSString).lastPathComponent }.joined(separator: ", "))
            guard !items.isEmpty else { local.append([0, 0, 0, 0]); continue }
            if simulated { for (b, s) in zip(ghmBuffers, rankGHM[i]) { try b.tensor.copy_(s) } }
            let batch = try TrainPipeline.collate(items)
            let images = try batch.images.to(device)
            var boxes: [Tensor] = [], labels: [Tensor] = []
            for b in batch.boxes { boxes.append(try b.to(device)) }
            for l in batch.labels { labels.append(try l.to(device)) }
            let losses = try model.forwardTrain(images, metas: batch.metas, gtBoxes: boxes, gtLabels: labels, autocast: ampDtype)
            let totals = try losses.totals()
            if simulated { for (b, s) in zip(ghmBuffers, rankGHM[i]) { try s.copy_(b.tensor) } }
            let values = [try totals.lossCls.item(), try totals.lossBbox.item(), try totals.loss.item(), Double(items.count)]
            local.append(values)
            if tracing != nil { traces.append((r, batch, losses)) }
            // mixed precision: the scaled loss (mmcv's loss_scaler.scale(loss).backward())
            let objective = try scaler.map { s throws(TorchError) in try s.scale(totals.loss) } ?? totals.loss
            if parallel.group != nil { pending = objective; continue }
            if scaler == nil { try checkFinite(values, rank: r, files: files[i]) }
            // simulated ranks: backward now (one graph at a time); the gradients accumulate over the sub-batches
            try objective.backward()
        }
        if simulated { for (b, s) in zip(ghmBuffers, rankGHM[0]) { try b.tensor.copy_(s) } }
        // every rank's losses (exact), for the agreed finiteness check and the averaged log values
        var perRank = local
        if let g = parallel.group {
            perRank = try RankExchange.allGather(g, local[0])
            if scaler == nil {
                for (r, v) in perRank.enumerated() { try checkFinite(v, rank: r, files: r == g.rank ? files[0] : nil) }
            }
            if let pending { try pending.backward() } else { try zeroGradients(params) }
            try g.allReduceMean(params.compactMap(\.grad))
        } else if simulated {
            // the accumulated sum over the sub-batches / N, as the all-reduce's sum / world size
            for p in params { if let gr = p.grad { try gr.div_(Double(subBatches.count)) } }
        }
        // mmdet's _parse_losses: every rank's value / world size, summed (float32, as the tensors)
        func mean(_ k: Int) -> Double {
            Double(perRank.reduce(Float(0)) { $0 + Float($1[k]) / Float(perRank.count) })
        }
        var stats = StepStats(lossCls: mean(0), lossBbox: mean(1), loss: mean(2), perRank: perRank.map { Array($0.prefix(3)) })
        if perRank.count == 1 { (stats.lossCls, stats.lossBbox, stats.loss) = (perRank[0][0], perRank[0][1], perRank[0][2]) }
        // mixed precision: unscale, clip, then a step only with finite gradients, and the scale's update
        if let scaler { stats.nonFiniteGradients = try scaler.unscale(params) }
        if let maxNorm = config.optimizerConfig.gradClipMaxNorm {
            let norm = try clipGradNorm(params, maxNorm: maxNorm)
            stats.gradNorm = norm
            guard norm.isFinite || scaler != nil else {
                throw TrainingStopped(reason: .nonFinite, message: "iteration \(iteration + 1) (epoch \(epoch + 1), images \(files.joined(separator: "; "))): the gradient norm is \(Self.text(norm)) "
                                      + "(loss_cls \(stats.lossCls), loss_bbox \(stats.lossBbox)); the run is stopped before the update",
                                      checkpoint: lastCheckpoint.map { "\($0) (the last good checkpoint)" })
            }
        }
        if let scaler {
            stats.skipped = try !scaler.step(optimizer)
            try scaler.update(newScale: config.fp16?.scaler.fixed)
            stats.lossScale = scaler.scale
        } else {
            try optimizer.step()
        }
        if let dir = tracing {
            for t in traces {
                try trace(dir: dir, rank: t.rank, batch: t.batch, losses: t.losses, stats: stats,
                          ghm: simulated ? rankGHM[t.rank] : ghmBuffers.map(\.tensor), params: params)
            }
        }
        return stats
    }

    /// `nan`, `inf`, `-inf` (Swift would print a NaN's payload) or the number.
    static func text(_ v: Double) -> String { v.isNaN ? "nan" : v.isInfinite ? (v > 0 ? "inf" : "-inf") : "\(v)" }

    /// Stops the run before the update when rank `rank`'s `loss_cls` or `loss_bbox` is not finite.
    func checkFinite(_ values: [Double], rank r: Int, files: String?) throws {
        for (name, v) in [("loss_cls", values[0]), ("loss_bbox", values[1])] where !v.isFinite {
            let who = worldSize > 1 ? "rank \(r)'s " : ""
            let images = files.map { ", images \($0)" } ?? (worldSize > 1 ? ", rank \(r)'s output names its images" : "")
            throw TrainingStopped(reason: .nonFinite, message: "iteration \(iteration + 1) (epoch \(epoch + 1)\(images)): \(who)\(name) is \(Self.text(v)); "
                                  + "the run is stopped before the update, the weights were not changed",
                                  checkpoint: lastCheckpoint.map { "\($0) (the last good checkpoint)" })
        }
    }

    /// Zero gradients for a rank whose images were all left out, so that it still takes part in the all-reduce.
    func zeroGradients(_ params: [Tensor]) throws {
        var total: Tensor?
        for p in params { let s = try p.sum() * 0.0; total = try total.map { try $0 + s } ?? s }
        try total?.backward()
    }

    /// Debugging aid (`GHM_TRAIN_TRACE=DIR`): the iteration's collated input, targets, per-level losses and the GHM
    /// buffers after the step, as `DIR/iter_NNNN.safetensors` (`iter_NNNN_rankR.safetensors` with several ranks), for
    /// comparison with the MMDetection reference and between runs; the metadata holds the losses, the gradient norm and
    /// the CRC-32 of every parameter's bytes after the step.
    func trace(dir: String, rank r: Int, batch: (images: Tensor, metas: [ImageMeta], boxes: [Tensor], labels: [Tensor]),
               losses: HeadLosses, stats: StepStats, ghm: [Tensor], params: [Tensor]) throws {
        var tensors: [(key: String, tensor: Tensor)] = [("img", batch.images)]
        for (j, b) in batch.boxes.enumerated() { tensors.append(("gt_bboxes.\(j)", b)) }
        for (j, l) in batch.labels.enumerated() { tensors.append(("gt_labels.\(j)", l)) }
        for (l, t) in losses.lossCls.enumerated() { tensors.append(("loss_cls.\(l)", try t.detach())) }
        for (l, t) in losses.lossBbox.enumerated() { tensors.append(("loss_bbox.\(l)", try t.detach())) }
        for (b, t) in zip(ghmBuffers, ghm) { tensors.append((b.key, try t.clone())) }
        var crc = CRC32()
        for p in params { try p.to(.cpu).contiguous().withUnsafeBytes { crc.update($0) } }
        if ProcessInfo.processInfo.environment["GHM_TRAIN_TRACE_GRADS"] != nil {
            // every gradient after clipping (large: for finding where two runs' backward parts)
            for (k, p) in model.namedParameters() { if let g = p.grad { tensors.append(("grad." + k, g)) } }
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let files = batch.metas.map { "\(($0.filename as NSString).lastPathComponent):\($0.flip)" }.joined(separator: ",")
        let mine = stats.perRank.count > 1 ? stats.perRank[r] : [stats.lossCls, stats.lossBbox, stats.loss]
        let name = worldSize > 1 ? String(format: "iter_%04d_rank%d.safetensors", iteration, r) : String(format: "iter_%04d.safetensors", iteration)
        try Safetensors.write(tensors, metadata: ["images": files, "grad_norm": "\(stats.gradNorm ?? .nan)",
                                                  "loss_cls": "\(mine[0])", "loss_bbox": "\(mine[1])", "loss": "\(mine[2])",
                                                  "params_crc32": "\(crc.value)"],
                              to: (dir as NSString).appendingPathComponent(name))
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
        let prefetch = Swift.max(1, config.data.workersPerGpu)
        let outcome: EvalRun.Outcome
        if let g = parallel.group {
            // mmdet's multi_gpu_test: each rank detects its share (every world-size-th image), rank 0 gathers
            // everything and evaluates
            let mine = dataset.images.enumerated().filter { $0.offset % g.worldSize == g.rank }.map(\.element)
            let found = try EvalRun.detect(detector: detector, images: mine, folder: val.imgPrefix, prefetchBatches: prefetch) {
                failures.append($0)
            }
            let rows = try RankExchange.gatherRows(g, found.rows.map(\.values), width: 7)
            let failed = try RankExchange.gatherRows(g, found.failedIds.sorted().map { [Double($0)] }, width: 1)
            let all = EvalRun.Detections(rows: rows.map { EvalRun.DetectionRow(values: $0) },
                                         failedIds: Set(failed.map { Int($0[0]) }), stats: found.stats)
            guard isMain else {
                for f in failures { FileHandle.standardError.write(Data("rank \(g.rank) evaluation: \(f)\n".utf8)) }
                return
            }
            outcome = try EvalRun.evaluate(all, selected: dataset.images, dataset: dataset)
        } else {
            outcome = try EvalRun.run(detector: detector, dataset: dataset, images: val.imgPrefix, batchSize: 1,
                                      prefetchBatches: prefetch) { failures.append($0) }
        }
        for f in failures { log.info("evaluation: \(f)") }
        log.info("evaluation: \(outcome.results.count) detections on \(outcome.evaluated) images"
                 + (worldSize > 1 && parallel.group != nil ? " from \(worldSize) ranks" : ""))
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
