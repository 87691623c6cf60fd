import Foundation
import GHMLosses
import Yams

/// A complete experiment, decoded from one YAML file with MMDetection's field names (the fully resolved config of
/// `configs/ghm/retinanet_ghm_r50_fpn_1x_coco.py`). Unknown keys are errors naming the key; omitted keys take
/// mmdet's defaults.
public struct DetectorConfig: Decodable {
    public var model = ModelConfig()
    public var datasetType = "CocoDataset"
    public var dataRoot = "data/coco/"
    public var imgNormCfg = NormalizeConfig()
    public var trainPipeline: [PipelineStep] = []
    public var testPipeline: [PipelineStep] = []
    public var data = DataConfig()
    public var evaluation = EvaluationConfig()
    public var optimizer = OptimizerConfig()
    public var optimizerConfig = OptimizerHookConfig()
    /// `fp16 = dict(loss_scale=…)`: mixed-precision training (mmcv's `Fp16OptimizerHook`); nil trains in fp32.
    public var fp16: FP16Config?
    public var lrConfig = LRConfig()
    public var runner = RunnerConfig()
    public var checkpointConfig = CheckpointConfig()
    public var logConfig = LogConfig()
    public var customHooks: [TypedDict] = []
    public var distParams: [String: String] = ["backend": "nccl"]
    public var logLevel = "INFO"
    public var loadFrom: String?
    public var resumeFrom: String?
    public var workflow: [[WorkflowItem]] = []
    /// `tools/train.py` records these in the dumped config.
    public var seed: Int?
    public var workDir: String?
    public var gpuIds: [Int]?

    enum CodingKeys: String, CodingKey {
        case model, data, evaluation, optimizer, runner, workflow
        case datasetType = "dataset_type", dataRoot = "data_root", imgNormCfg = "img_norm_cfg"
        case trainPipeline = "train_pipeline", testPipeline = "test_pipeline", optimizerConfig = "optimizer_config"
        case lrConfig = "lr_config", checkpointConfig = "checkpoint_config", logConfig = "log_config"
        case customHooks = "custom_hooks", distParams = "dist_params", logLevel = "log_level"
        case loadFrom = "load_from", resumeFrom = "resume_from"
        case seed, workDir = "work_dir", gpuIds = "gpu_ids", fp16
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&model, .model)
        try c.read(&datasetType, .datasetType)
        try c.read(&dataRoot, .dataRoot)
        try c.read(&imgNormCfg, .imgNormCfg)
        try c.read(&trainPipeline, .trainPipeline)
        try c.read(&testPipeline, .testPipeline)
        try c.read(&data, .data)
        try c.read(&evaluation, .evaluation)
        try c.read(&optimizer, .optimizer)
        try c.read(&optimizerConfig, .optimizerConfig)
        try c.readOptional(&fp16, .fp16)
        try c.read(&lrConfig, .lrConfig)
        try c.read(&runner, .runner)
        try c.read(&checkpointConfig, .checkpointConfig)
        try c.read(&logConfig, .logConfig)
        try c.read(&customHooks, .customHooks)
        try c.read(&distParams, .distParams)
        try c.read(&logLevel, .logLevel)
        try c.readOptional(&loadFrom, .loadFrom)
        try c.readOptional(&resumeFrom, .resumeFrom)
        try c.read(&workflow, .workflow)
        try c.readOptional(&seed, .seed)
        try c.readOptional(&workDir, .workDir)
        try c.readOptional(&gpuIds, .gpuIds)
    }

    /// Reads a config file, applying `key.path=value` overrides first.
    public static func load(path: String, overrides: [String] = []) throws -> DetectorConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(path: "", message: "cannot read the config file (\(error.localizedDescription))", file: path)
        }
        return try parse(text, overrides: overrides, file: path)
    }

    /// The YAML text of a config file with `key.path=value` overrides applied (what `ghm train` saves in the work
    /// folder), and the decoded config.
    public static func resolved(path: String, overrides: [String] = []) throws -> (config: DetectorConfig, yaml: String) {
        let config = try load(path: path, overrides: overrides)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard var node = try Yams.compose(yaml: text) else { throw ConfigError(path: "", message: "the config is empty", file: path) }
        try applyOverrides(&node, overrides)
        return (config, try Yams.serialize(node: node))
    }

    public static func parse(_ yaml: String, overrides: [String] = [], file: String? = nil) throws -> DetectorConfig {
        do {
            guard var node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(path: "", message: "the config is empty")
            }
            try applyOverrides(&node, overrides)
            var config = try YAMLDecoder().decode(DetectorConfig.self, from: node)
            try config.validate()
            return config
        } catch let e as YamlError {
            throw ConfigError(path: "", message: "invalid YAML: \(e)", file: file)
        } catch {
            throw configError(error, file: file)
        }
    }

    /// Cross-field checks that decoding alone cannot do.
    mutating func validate() throws {
        let head = model.bboxHead
        if head.anchorGenerator.strides.count != model.neck.numOuts {
            throw ConfigError(path: "model.bbox_head.anchor_generator.strides",
                              message: "\(head.anchorGenerator.strides.count) strides for \(model.neck.numOuts) FPN levels")
        }
        if model.neck.inChannels.count != model.backbone.outIndices.count {
            throw ConfigError(path: "model.neck.in_channels",
                              message: "\(model.neck.inChannels.count) entries for \(model.backbone.outIndices.count) backbone outputs")
        }
        _ = try testTransform()
    }

    /// The test-time pre-processing parameters taken from `test_pipeline` (or `data.test.pipeline` when given).
    public func testTransform() throws -> ImageTransform {
        let steps = data.test.pipeline ?? testPipeline
        return try ImageTransform(pipeline: steps, path: data.test.pipeline != nil ? "data.test.pipeline" : "test_pipeline")
    }

    /// The training pre-processing parameters from `data.train.pipeline` (or `train_pipeline`).
    public func trainTransform() throws -> ImageTransform {
        let steps = data.train.pipeline ?? trainPipeline
        return try ImageTransform(pipeline: steps, path: data.train.pipeline != nil ? "data.train.pipeline" : "train_pipeline")
    }
}

/// Any mmdet dict with a `type` and free-form fields we do not interpret (hooks).
public struct TypedDict: Decodable {
    public var type: String
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        type = try c.decode(String.self, forKey: AnyKey(stringValue: "type"))
    }
}

/// One element of mmdet's `workflow` (`[['train', 1]]`).
public enum WorkflowItem: Decodable {
    case name(String), count(Int)
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .count(i) } else { self = .name(try c.decode(String.self)) }
    }
}

// MARK: model

public struct ModelConfig: Decodable {
    public var backbone = ResNetConfig()
    public var neck = FPNConfig()
    public var bboxHead = RetinaHeadConfig()
    public var trainCfg = TrainCfg()
    public var testCfg = TestCfg()

    enum CodingKeys: String, CodingKey {
        case type, backbone, neck
        case bboxHead = "bbox_head", trainCfg = "train_cfg", testCfg = "test_cfg"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["RetinaNet"])
        try c.read(&backbone, .backbone)
        try c.read(&neck, .neck)
        try c.read(&bboxHead, .bboxHead)
        try c.read(&trainCfg, .trainCfg)
        try c.read(&testCfg, .testCfg)
    }
}

public struct ResNetConfig: Decodable {
    public var depth = 50
    public var numStages = 4
    public var outIndices = [0, 1, 2, 3]
    public var frozenStages = -1
    public var normEval = true
    public var normRequiresGrad = true
    public var style = "pytorch"
    public var initCheckpoint: String?

    enum CodingKeys: String, CodingKey {
        case type, depth, style
        case numStages = "num_stages", outIndices = "out_indices", frozenStages = "frozen_stages"
        case normCfg = "norm_cfg", normEval = "norm_eval", initCfg = "init_cfg"
    }

    struct NormCfg: Decodable {
        var requiresGrad = true
        enum CodingKeys: String, CodingKey { case type, requiresGrad = "requires_grad" }
        init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(CodingKeys.self)
            _ = try decoder.typeName(allowed: ["BN"])
            try c.read(&requiresGrad, .requiresGrad)
        }
    }

    struct InitCfg: Decodable {
        var checkpoint: String?
        enum CodingKeys: String, CodingKey { case type, checkpoint }
        init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(CodingKeys.self)
            _ = try decoder.typeName(allowed: ["Pretrained"])
            checkpoint = try c.decodeIfPresent(String.self, forKey: .checkpoint)
        }
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["ResNet"])
        try c.read(&depth, .depth)
        guard [18, 34, 50, 101, 152].contains(depth) else {
            throw ConfigError(path: dotted(decoder.codingPath) + ".depth", message: "invalid depth \(depth) (18, 34, 50, 101, 152)")
        }
        try c.read(&numStages, .numStages)
        try c.read(&outIndices, .outIndices)
        try c.read(&frozenStages, .frozenStages)
        try c.read(&normEval, .normEval)
        try c.read(&style, .style)
        guard style == "pytorch" else {
            throw ConfigError(path: dotted(decoder.codingPath) + ".style", message: "only style 'pytorch' is supported")
        }
        if let n = try c.decodeIfPresent(NormCfg.self, forKey: .normCfg) { normRequiresGrad = n.requiresGrad }
        initCheckpoint = try c.decodeIfPresent(InitCfg.self, forKey: .initCfg)?.checkpoint
    }
}

public struct FPNConfig: Decodable {
    public var inChannels = [256, 512, 1024, 2048]
    public var outChannels = 256
    public var startLevel = 1
    public var addExtraConvs = "on_input"
    public var numOuts = 5
    public var reluBeforeExtraConvs = false

    enum CodingKeys: String, CodingKey {
        case type
        case inChannels = "in_channels", outChannels = "out_channels", startLevel = "start_level"
        case addExtraConvs = "add_extra_convs", numOuts = "num_outs", reluBeforeExtraConvs = "relu_before_extra_convs"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["FPN"])
        try c.read(&inChannels, .inChannels)
        try c.read(&outChannels, .outChannels)
        try c.read(&startLevel, .startLevel)
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .addExtraConvs) {
            addExtraConvs = flag ? "on_input" : "none"  // mmdet: True means 'on_input'
        } else {
            try c.read(&addExtraConvs, .addExtraConvs)
        }
        guard ["on_input", "on_lateral", "on_output", "none"].contains(addExtraConvs) else {
            throw ConfigError(path: dotted(decoder.codingPath) + ".add_extra_convs",
                              message: "unsupported '\(addExtraConvs)' (on_input, on_lateral, on_output, false)")
        }
        try c.read(&numOuts, .numOuts)
        try c.read(&reluBeforeExtraConvs, .reluBeforeExtraConvs)
    }
}

public struct AnchorGeneratorConfig: Decodable {
    public var octaveBaseScale = 4.0
    public var scalesPerOctave = 3
    public var ratios = [0.5, 1.0, 2.0]
    public var strides = [8, 16, 32, 64, 128]

    enum CodingKeys: String, CodingKey {
        case type, ratios, strides
        case octaveBaseScale = "octave_base_scale", scalesPerOctave = "scales_per_octave"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["AnchorGenerator"])
        try c.read(&octaveBaseScale, .octaveBaseScale)
        try c.read(&scalesPerOctave, .scalesPerOctave)
        try c.read(&ratios, .ratios)
        try c.read(&strides, .strides)
    }
}

public struct BBoxCoderConfig: Decodable {
    public var targetMeans = [0.0, 0.0, 0.0, 0.0]
    public var targetStds = [1.0, 1.0, 1.0, 1.0]

    enum CodingKeys: String, CodingKey { case type, targetMeans = "target_means", targetStds = "target_stds" }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["DeltaXYWHBBoxCoder"])
        try c.read(&targetMeans, .targetMeans)
        try c.read(&targetStds, .targetStds)
        guard targetMeans.count == 4, targetStds.count == 4 else {
            throw ConfigError(path: dotted(decoder.codingPath), message: "target_means and target_stds need 4 values")
        }
    }
}

/// `loss_cls`: GHMC (the GHM config) or FocalLoss (the RetinaNet baseline).
public enum ClassificationLossConfig: Decodable {
    case ghmc(bins: Int, momentum: Double, lossWeight: Double, reduction: LossReduction, implementation: GHMImplementation)
    case focal(gamma: Double, alpha: Double, lossWeight: Double, reduction: LossReduction)

    enum CodingKeys: String, CodingKey {
        case type, bins, momentum, gamma, alpha, reduction, implementation
        case useSigmoid = "use_sigmoid", lossWeight = "loss_weight"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        let type = try decoder.typeName(allowed: ["GHMC", "FocalLoss"])
        var useSigmoid = true, lossWeight = 1.0, reduction = LossReduction.mean
        try c.read(&useSigmoid, .useSigmoid)
        try c.read(&lossWeight, .lossWeight)
        try c.read(&reduction, .reduction)
        guard useSigmoid else {
            throw ConfigError(path: dotted(decoder.codingPath) + ".use_sigmoid", message: "only use_sigmoid=True is supported")
        }
        if type == "GHMC" {
            var bins = 10, momentum = 0.0, implementation = GHMImplementation.fused
            try c.read(&bins, .bins)
            try c.read(&momentum, .momentum)
            try c.read(&implementation, .implementation)
            for key in [CodingKeys.gamma, .alpha] where c.contains(key) {
                throw ConfigError(path: dotted(decoder.codingPath + [key]), message: "unknown key for GHMC")
            }
            self = .ghmc(bins: bins, momentum: momentum, lossWeight: lossWeight, reduction: reduction,
                         implementation: implementation)
        } else {
            var gamma = 2.0, alpha = 0.25
            try c.read(&gamma, .gamma)
            try c.read(&alpha, .alpha)
            for key in [CodingKeys.bins, .momentum, .implementation] where c.contains(key) {
                throw ConfigError(path: dotted(decoder.codingPath + [key]), message: "unknown key for FocalLoss")
            }
            self = .focal(gamma: gamma, alpha: alpha, lossWeight: lossWeight, reduction: reduction)
        }
    }
}

/// `loss_bbox`: GHMR (the GHM config) or L1Loss (the RetinaNet baseline).
public enum RegressionLossConfig: Decodable {
    case ghmr(mu: Double, bins: Int, momentum: Double, lossWeight: Double, reduction: LossReduction,
              implementation: GHMImplementation)
    case l1(lossWeight: Double, reduction: LossReduction)

    enum CodingKeys: String, CodingKey { case type, mu, bins, momentum, reduction, implementation, lossWeight = "loss_weight" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        let type = try decoder.typeName(allowed: ["GHMR", "L1Loss"])
        var lossWeight = 1.0, reduction = LossReduction.mean
        try c.read(&lossWeight, .lossWeight)
        try c.read(&reduction, .reduction)
        if type == "GHMR" {
            var mu = 0.02, bins = 10, momentum = 0.0, implementation = GHMImplementation.fused
            try c.read(&mu, .mu)
            try c.read(&bins, .bins)
            try c.read(&momentum, .momentum)
            try c.read(&implementation, .implementation)
            self = .ghmr(mu: mu, bins: bins, momentum: momentum, lossWeight: lossWeight, reduction: reduction,
                         implementation: implementation)
        } else {
            for key in [CodingKeys.mu, .bins, .momentum, .implementation] where c.contains(key) {
                throw ConfigError(path: dotted(decoder.codingPath + [key]), message: "unknown key for L1Loss")
            }
            self = .l1(lossWeight: lossWeight, reduction: reduction)
        }
    }
}

public struct RetinaHeadConfig: Decodable {
    public var numClasses = 80
    public var inChannels = 256
    public var stackedConvs = 4
    public var featChannels = 256
    public var anchorGenerator = AnchorGeneratorConfig()
    public var bboxCoder = BBoxCoderConfig()
    public var lossCls = ClassificationLossConfig.ghmc(bins: 30, momentum: 0.75, lossWeight: 1, reduction: .mean,
                                                         implementation: .fused)
    public var lossBbox = RegressionLossConfig.ghmr(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, reduction: .mean,
                                                      implementation: .fused)

    enum CodingKeys: String, CodingKey {
        case type
        case numClasses = "num_classes", inChannels = "in_channels", stackedConvs = "stacked_convs"
        case featChannels = "feat_channels", anchorGenerator = "anchor_generator", bboxCoder = "bbox_coder"
        case lossCls = "loss_cls", lossBbox = "loss_bbox"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["RetinaHead"])
        try c.read(&numClasses, .numClasses)
        try c.read(&inChannels, .inChannels)
        try c.read(&stackedConvs, .stackedConvs)
        try c.read(&featChannels, .featChannels)
        try c.read(&anchorGenerator, .anchorGenerator)
        try c.read(&bboxCoder, .bboxCoder)
        try c.read(&lossCls, .lossCls)
        try c.read(&lossBbox, .lossBbox)
        guard numClasses > 0 else {
            throw ConfigError(path: dotted(decoder.codingPath) + ".num_classes", message: "must be positive")
        }
    }
}

public struct AssignerConfig: Decodable {
    public var posIouThr = 0.5
    public var negIouThr = 0.4
    public var minPosIou = 0.0
    public var ignoreIofThr = -1.0
    public var gtMaxAssignAll = true
    public var matchLowQuality = true

    enum CodingKeys: String, CodingKey {
        case type
        case posIouThr = "pos_iou_thr", negIouThr = "neg_iou_thr", minPosIou = "min_pos_iou"
        case ignoreIofThr = "ignore_iof_thr", gtMaxAssignAll = "gt_max_assign_all", matchLowQuality = "match_low_quality"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["MaxIoUAssigner"])
        try c.read(&posIouThr, .posIouThr)
        try c.read(&negIouThr, .negIouThr)
        try c.read(&minPosIou, .minPosIou)
        try c.read(&ignoreIofThr, .ignoreIofThr)
        try c.read(&gtMaxAssignAll, .gtMaxAssignAll)
        try c.read(&matchLowQuality, .matchLowQuality)
    }
}

public struct TrainCfg: Decodable {
    public var assigner = AssignerConfig()
    public var allowedBorder = -1.0
    public var posWeight = -1.0
    public var debug = false

    enum CodingKeys: String, CodingKey { case assigner, debug, allowedBorder = "allowed_border", posWeight = "pos_weight" }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&assigner, .assigner)
        try c.read(&allowedBorder, .allowedBorder)
        try c.read(&posWeight, .posWeight)
        try c.read(&debug, .debug)
    }
}

public struct TestCfg: Decodable {
    public var nmsPre = 1000
    public var minBboxSize = 0.0
    public var scoreThr = 0.05
    public var nmsIouThreshold = 0.5
    public var maxPerImg = 100

    enum CodingKeys: String, CodingKey {
        case nms
        case nmsPre = "nms_pre", minBboxSize = "min_bbox_size", scoreThr = "score_thr", maxPerImg = "max_per_img"
    }

    struct NMS: Decodable {
        var iouThreshold = 0.5
        enum CodingKeys: String, CodingKey { case type, iouThreshold = "iou_threshold" }
        init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(CodingKeys.self)
            _ = try decoder.typeName(allowed: ["nms"])
            try c.read(&iouThreshold, .iouThreshold)
        }
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&nmsPre, .nmsPre)
        try c.read(&minBboxSize, .minBboxSize)
        try c.read(&scoreThr, .scoreThr)
        if let n = try c.decodeIfPresent(NMS.self, forKey: .nms) { nmsIouThreshold = n.iouThreshold }
        try c.read(&maxPerImg, .maxPerImg)
    }

}

// MARK: data

public struct NormalizeConfig: Decodable {
    public var mean = [123.675, 116.28, 103.53]
    public var std = [58.395, 57.12, 57.375]
    public var toRGB = true

    enum CodingKeys: String, CodingKey { case type, mean, std, toRGB = "to_rgb" }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&mean, .mean)
        try c.read(&std, .std)
        try c.read(&toRGB, .toRGB)
        guard mean.count == 3, std.count == 3 else {
            throw ConfigError(path: dotted(decoder.codingPath), message: "mean and std need 3 values")
        }
    }
}

public struct DatasetConfig: Decodable {
    public var annFile = ""
    public var imgPrefix = ""
    public var pipeline: [PipelineStep]?
    /// A subset / renaming of classes for custom data (mmdet's `classes=`); nil uses the annotation file's.
    public var classes: [String]?
    public var filterEmptyGt = true

    enum CodingKeys: String, CodingKey {
        case type, pipeline, classes
        case annFile = "ann_file", imgPrefix = "img_prefix", filterEmptyGt = "filter_empty_gt"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["CocoDataset"])
        try c.read(&annFile, .annFile)
        try c.read(&imgPrefix, .imgPrefix)
        try c.readOptional(&pipeline, .pipeline)
        try c.readOptional(&classes, .classes)
        try c.read(&filterEmptyGt, .filterEmptyGt)
    }
}

public struct DataConfig: Decodable {
    public var samplesPerGpu = 2
    public var workersPerGpu = 2
    public var train = DatasetConfig()
    public var val = DatasetConfig()
    public var test = DatasetConfig()

    enum CodingKeys: String, CodingKey {
        case train, val, test, samplesPerGpu = "samples_per_gpu", workersPerGpu = "workers_per_gpu"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&samplesPerGpu, .samplesPerGpu)
        try c.read(&workersPerGpu, .workersPerGpu)
        try c.read(&train, .train)
        try c.read(&val, .val)
        try c.read(&test, .test)
    }
}

/// One step of an mmdet data pipeline. Only the standard single-scale detection steps are supported.
public enum PipelineStep: Decodable {
    case loadImageFromFile
    case loadAnnotations(withBBox: Bool)
    case resize(imgScale: [Int]?, keepRatio: Bool)
    case randomFlip(flipRatio: Double?)
    case normalize(NormalizeConfig)
    case pad(sizeDivisor: Int)
    case defaultFormatBundle
    case collect(keys: [String])
    case imageToTensor(keys: [String])
    case multiScaleFlipAug(imgScale: [Int], flip: Bool, transforms: [PipelineStep])

    enum CodingKeys: String, CodingKey {
        case type, keys, flip, transforms, mean, std
        case withBBox = "with_bbox", imgScale = "img_scale", keepRatio = "keep_ratio", flipRatio = "flip_ratio"
        case sizeDivisor = "size_divisor", toRGB = "to_rgb"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        let type = try decoder.typeName(allowed: [
            "LoadImageFromFile", "LoadAnnotations", "Resize", "RandomFlip", "Normalize", "Pad", "DefaultFormatBundle",
            "Collect", "ImageToTensor", "MultiScaleFlipAug",
        ])
        let allowed: [String: [CodingKeys]] = [
            "LoadImageFromFile": [], "LoadAnnotations": [.withBBox], "Resize": [.imgScale, .keepRatio],
            "RandomFlip": [.flipRatio], "Normalize": [.mean, .std, .toRGB], "Pad": [.sizeDivisor],
            "DefaultFormatBundle": [], "Collect": [.keys], "ImageToTensor": [.keys],
            "MultiScaleFlipAug": [.imgScale, .flip, .transforms],
        ]
        for key in c.allKeys where key != .type && !(allowed[type] ?? []).contains(key) {
            throw ConfigError(path: dotted(decoder.codingPath + [key]), message: "unknown key for \(type)")
        }
        switch type {
        case "LoadImageFromFile": self = .loadImageFromFile
        case "LoadAnnotations": self = .loadAnnotations(withBBox: try c.decodeIfPresent(Bool.self, forKey: .withBBox) ?? true)
        case "Resize":
            self = .resize(imgScale: try c.decodeIfPresent([Int].self, forKey: .imgScale),
                           keepRatio: try c.decodeIfPresent(Bool.self, forKey: .keepRatio) ?? true)
        case "RandomFlip": self = .randomFlip(flipRatio: try c.decodeIfPresent(Double.self, forKey: .flipRatio))
        case "Normalize": self = .normalize(try NormalizeConfig(from: decoder))
        case "Pad": self = .pad(sizeDivisor: try c.decodeIfPresent(Int.self, forKey: .sizeDivisor) ?? 32)
        case "DefaultFormatBundle": self = .defaultFormatBundle
        case "Collect": self = .collect(keys: try c.decode([String].self, forKey: .keys))
        case "ImageToTensor": self = .imageToTensor(keys: try c.decode([String].self, forKey: .keys))
        default:
            self = .multiScaleFlipAug(imgScale: try c.decode([Int].self, forKey: .imgScale),
                                      flip: try c.decodeIfPresent(Bool.self, forKey: .flip) ?? false,
                                      transforms: try c.decode([PipelineStep].self, forKey: .transforms))
        }
    }
}

// MARK: schedule and runtime

public struct EvaluationConfig: Decodable {
    public var interval = 1
    public var metric = "bbox"
    /// mmcv's `EvalHook(start=…)`: evaluate after epochs start, start + interval, …; with `start: 0` also once
    /// before the first epoch (the AP of the starting weights). nil: every `interval` epochs.
    public var start: Int?
    enum CodingKeys: String, CodingKey { case interval, metric, start }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&metric, .metric)
        try c.readOptional(&start, .start)
        if let start, start < 0 {
            throw ConfigError(path: dotted(decoder.codingPath) + ".start", message: "must be >= 0, found \(start)")
        }
    }

    /// mmcv 1.4's `EvalHook._should_evaluate` after `completedEpochs` epochs.
    public func evaluates(afterEpochs completedEpochs: Int) -> Bool {
        let interval = Swift.max(1, self.interval)
        guard let start else { return completedEpochs % interval == 0 }
        return completedEpochs >= start && (completedEpochs - start) % interval == 0
    }

    /// mmcv's initial evaluation (`before_train_epoch` of a run's first epoch, `epoch` = epochs done so far).
    public func evaluatesBefore(epoch: Int) -> Bool {
        guard let start, epoch >= start else { return false }
        return evaluates(afterEpochs: epoch + 1)
    }
}

public struct OptimizerConfig: Decodable {
    public var lr = 0.01
    public var momentum = 0.9
    public var weightDecay = 0.0001
    enum CodingKeys: String, CodingKey { case type, lr, momentum, weightDecay = "weight_decay" }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["SGD"])
        try c.read(&lr, .lr)
        try c.read(&momentum, .momentum)
        try c.read(&weightDecay, .weightDecay)
    }
}

public struct OptimizerHookConfig: Decodable {
    /// `grad_clip.max_norm`; nil means no clipping (`grad_clip=None`).
    public var gradClipMaxNorm: Double?
    enum CodingKeys: String, CodingKey { case gradClip = "grad_clip" }
    struct GradClip: Decodable {
        var maxNorm = 35.0
        enum CodingKeys: String, CodingKey { case maxNorm = "max_norm", normType = "norm_type" }
        init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(CodingKeys.self)
            try c.read(&maxNorm, .maxNorm)
            if let t = try c.decodeIfPresent(Double.self, forKey: .normType), t != 2 {
                throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.normType]), message: "only norm_type 2 is supported")
            }
        }
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        gradClipMaxNorm = try c.decodeIfPresent(GradClip.self, forKey: .gradClip)?.maxNorm
    }
}

/// mmcv 1.4's `Fp16OptimizerHook(loss_scale=…)` on `torch.cuda.amp.GradScaler`: `dynamic` (GradScaler's defaults:
/// 2^16, ×2 after 2000 finite steps, ×0.5 after a non-finite one), a number (that scale, set again after every
/// step: static), or a dict of GradScaler's arguments (`init_scale`, `growth_factor`, `backoff_factor`,
/// `growth_interval`). Steps with inf/NaN gradients are skipped in every case.
public struct FP16Config: Decodable, Equatable {
    public enum LossScale: Equatable {
        case dynamic
        case fixed(Double)
        case custom(initScale: Double, growthFactor: Double, backoffFactor: Double, growthInterval: Int)
    }
    /// mmcv's default: 512, static.
    public var lossScale = LossScale.fixed(512)

    enum CodingKeys: String, CodingKey { case lossScale = "loss_scale" }
    struct ScalerArgs: Decodable {
        var initScale = 65536.0, growthFactor = 2.0, backoffFactor = 0.5, growthInterval = 2000
        enum CodingKeys: String, CodingKey {
            case initScale = "init_scale", growthFactor = "growth_factor", backoffFactor = "backoff_factor"
            case growthInterval = "growth_interval"
        }
        init(from decoder: Decoder) throws {
            let d = try decoder.strictContainer(CodingKeys.self)
            try d.read(&initScale, .initScale)
            try d.read(&growthFactor, .growthFactor)
            try d.read(&backoffFactor, .backoffFactor)
            try d.read(&growthInterval, .growthInterval)
        }
    }

    public init(lossScale: LossScale = .fixed(512)) { self.lossScale = lossScale }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        guard c.contains(.lossScale) else { return }
        if let v = try? c.decode(Double.self, forKey: .lossScale) {
            guard v > 0 else { throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.lossScale]), message: "must be positive") }
            lossScale = .fixed(v)
        } else if let text = try? c.decode(String.self, forKey: .lossScale) {
            guard text == "dynamic" else {
                throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.lossScale]),
                                  message: "'\(text)': loss_scale is 'dynamic', a number or a dict of GradScaler's arguments")
            }
            lossScale = .dynamic
        } else {
            let a = try c.decode(ScalerArgs.self, forKey: .lossScale)
            lossScale = .custom(initScale: a.initScale, growthFactor: a.growthFactor, backoffFactor: a.backoffFactor,
                                growthInterval: a.growthInterval)
        }
    }

    /// GradScaler's arguments and, for a static scale, the value `update` sets after every step.
    public var scaler: (initScale: Double, growthFactor: Double, backoffFactor: Double, growthInterval: Int, fixed: Double?) {
        switch lossScale {
        case .dynamic: return (65536, 2, 0.5, 2000, nil)
        case .fixed(let v): return (v, 2, 0.5, 2000, v)
        case .custom(let i, let g, let b, let n): return (i, g, b, n, nil)
        }
    }
}

public struct LRConfig: Decodable {
    public var policy = "step"
    public var warmup: String? = "linear"
    public var warmupIters = 500
    public var warmupRatio = 0.001
    public var step = [8, 11]
    /// `step` given as a single int: decay every `step` epochs (iterations), mmcv's int form.
    public var stepIsPeriod = false
    public var gamma = 0.1
    /// Steps counted in epochs (mmcv's default) or in iterations.
    public var byEpoch = true
    enum CodingKeys: String, CodingKey {
        case policy, warmup, step, gamma, warmupIters = "warmup_iters", warmupRatio = "warmup_ratio", byEpoch = "by_epoch"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&policy, .policy)
        guard policy == "step" else {
            throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.policy]), message: "only policy 'step' is supported")
        }
        try c.readOptional(&warmup, .warmup)
        if let w = warmup, !["linear", "constant", "exp"].contains(w) {
            throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.warmup]), message: "unsupported warmup '\(w)'")
        }
        try c.read(&warmupIters, .warmupIters)
        try c.read(&warmupRatio, .warmupRatio)
        if let single = try? c.decodeIfPresent(Int.self, forKey: .step) {
            step = [single]
            stepIsPeriod = true
            guard single > 0 else {
                throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.step]), message: "must be positive")
            }
        } else {
            try c.read(&step, .step)
        }
        try c.read(&gamma, .gamma)
        try c.read(&byEpoch, .byEpoch)
        guard warmup == nil || warmupIters > 0 else {
            throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.warmupIters]), message: "must be positive with a warmup")
        }
    }
}

public struct RunnerConfig: Decodable {
    public var maxEpochs = 12
    enum CodingKeys: String, CodingKey { case type, maxEpochs = "max_epochs" }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        _ = try decoder.typeName(allowed: ["EpochBasedRunner"])
        try c.read(&maxEpochs, .maxEpochs)
    }
}

public struct CheckpointConfig: Decodable {
    public var interval = 1
    public var maxKeepCkpts = -1
    enum CodingKeys: String, CodingKey { case interval, maxKeepCkpts = "max_keep_ckpts", byEpoch = "by_epoch" }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&maxKeepCkpts, .maxKeepCkpts)
        if let b = try c.decodeIfPresent(Bool.self, forKey: .byEpoch), !b {
            throw ConfigError(path: dotted(decoder.codingPath + [CodingKeys.byEpoch]), message: "only epoch-based checkpoints are supported")
        }
    }
}

public struct LogConfig: Decodable {
    public var interval = 50
    public var hooks: [TypedDict] = []
    enum CodingKeys: String, CodingKey { case interval, hooks }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&hooks, .hooks)
    }
}
