import ArgumentParser
import Detection
import Foundation
import GHMTools
import Support
import Imaging
import Torch

/// Options shared by the commands that run the model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Experiment config (YAML, MMDetection field names), e.g. configs/retinanet_ghm_r50_fpn_1x_coco.yml.")
    var config: String

    @Option(name: .long, help: "Weights: an MMDetection .pth (legacy or zip) or a safetensors file.")
    var checkpoint: String

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "Override a config value, e.g. --set model.test_cfg.score_thr=0.3 (repeatable).")
    var overrides: [String] = []

    @Option(name: .long, help: ArgumentHelp("Test-time img_scale as WxH, e.g. 1333x800 (shorthand for the test pipeline's img_scale).",
                                            valueName: "WxH"))
    var imgScale: String?

    /// --img-scale parsed: [W, H], or empty when not given.
    var scale: [Int] {
        guard let imgScale else { return [] }
        let parts = imgScale.split(whereSeparator: { $0 == "x" || $0 == "X" || $0 == "," }).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.count == 2 && parts.allSatisfy({ ($0 ?? 0) > 0 }) ? parts.map { $0! } : [-1]
    }

    @Option(name: .long, help: "cpu, cuda or cuda:N.")
    var device = "cpu"

    @Option(name: .long, help: "Intra-op threads (default: libtorch's choice).")
    var threads: Int?

    @OptionGroup var fast: FastPathOptions

    func validate() throws {
        guard Device(device) != nil else { throw ValidationError("--device must be cpu, cuda or cuda:N, not '\(device)'") }
        guard scale.count != 1 else {
            throw ValidationError("--img-scale takes WxH with two positive integers, e.g. 1333x800, not '\(imgScale ?? "")'")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The config with the overrides (and --img-scale) applied.
    func loadConfig() throws -> DetectorConfig {
        var sets = overrides
        let imgScale = scale
        if imgScale.count == 2 {
            // the img_scale of whichever test pipeline is in use
            let probe = try DetectorConfig.load(path: config, overrides: overrides)
            let inData = probe.data.test.pipeline != nil
            let steps = probe.data.test.pipeline ?? probe.testPipeline
            let base = inData ? "data.test.pipeline" : "test_pipeline"
            for (i, step) in steps.enumerated() {
                switch step {
                case .multiScaleFlipAug: sets.append("\(base).\(i).img_scale=[\(imgScale[0]), \(imgScale[1])]")
                case .resize(let s, _) where s != nil: sets.append("\(base).\(i).img_scale=[\(imgScale[0]), \(imgScale[1])]")
                default: break
                }
            }
        }
        return try DetectorConfig.load(path: config, overrides: sets)
    }

    /// Config + checkpoint → a detector on the chosen device, in the inference mode of the flags (or `mode`).
    func makeDetector(mode: RetinaNet.InferenceMode? = nil) throws -> Detector {
        enableModelAllocator()
        if let threads {
            try Torch.setThreads(threads)
            Image.setThreads(threads)
        }
        let dev = try usableDevice(device)
        guard FileManager.default.fileExists(atPath: checkpoint) else {
            throw ToolError("\(checkpoint): no such checkpoint file")
        }
        let detector = try Detector(config: loadConfig(), checkpoint: checkpoint, device: dev)
        try detector.model.setInferenceMode(try mode ?? fast.mode())
        return detector
    }
}

/// The fast inference paths (`detect`, `infer`, `eval`, `parity`, `bench detect`).
struct FastPathOptions: ParsableArguments {
    @Flag(name: .long, help: "Fold the batch norms into the convolutions (MMDetection's tools/test.py --fuse-conv-bn).")
    var fuseConvBn = false

    @Flag(name: .long, help: "Channels-last memory format for the convolutions and the input.")
    var channelsLast = false

    @Option(name: .long, help: ArgumentHelp("Autocast the network to bf16 or fp16 (the post-processing stays fp32).", valueName: "bf16|fp16"))
    var amp: String?

    func validate() throws { _ = try mode() }

    func mode() throws -> RetinaNet.InferenceMode {
        RetinaNet.InferenceMode(fuseConvBN: fuseConvBn, channelsLast: channelsLast, autocast: try autocastType(amp))
    }
}

/// The autocast dtype of an `--amp` value (bf16 | fp16), nil without one.
func autocastType(_ amp: String?) throws -> DType? {
    guard let amp else { return nil }
    switch amp.lowercased() {
    case "bf16", "bfloat16": return .bfloat16
    case "fp16", "float16", "half": return .float16
    default: throw ValidationError("--amp takes bf16 or fp16, not '\(amp)'")
    }
}

/// The device of a `--device` value, refused with a pointer to the README when it is CUDA and this libtorch has none.
func usableDevice(_ text: String) throws -> Device {
    guard let dev = Device(text) else { throw ValidationError("--device must be cpu, cuda or cuda:N, not '\(text)'") }
    if dev.isCUDA && !Torch.cudaAvailable {
        throw ToolError("--device \(text): CUDA is not available in this libtorch (\(Torch.version)); see README, 'Using another libtorch'")
    }
    return dev
}

/// Batching options of the commands that run the model over many images (`infer`, `eval`).
struct BatchOptions: ParsableArguments {
    @Option(name: .long, help: "Images per forward pass.")
    var batchSize = 1

    @Option(name: .long, help: "Batches decoded ahead of the model by a background thread (0: decode between batches, no overlap).")
    var prefetch = 2

    @Flag(name: .long, help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard prefetch >= 0 else { throw ValidationError("--prefetch must be at least 0") }
    }

    /// The progress line for `total` images, unless --quiet.
    func progress(total: Int, label: String) -> ProgressReporter? {
        quiet ? nil : ProgressReporter(total: total, label: label)
    }
}

/// The ground truth and per-category option of the commands that evaluate boxes (`eval`, `cocoeval`).
struct GroundTruthOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Ground truth: a COCO instances JSON.", valueName: "GT.json"))
    var ann: String

    @Flag(name: .long, help: "Also print AP (IoU .50:.95, area all, 100 detections) for each category.")
    var perCategory = false
}

/// Runs `body`; prints any error on stderr (naming what is at fault) and exits 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}
