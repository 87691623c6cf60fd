import Foundation
import GHMLosses
import Torch
import TorchNN

/// mmdet's `RetinaNet` (a `SingleStageDetector`): `backbone` (ResNet) → `neck` (FPN) → `bbox_head` (RetinaHead).
/// Its state-dict keys are MMDetection's by construction.
public final class RetinaNet: Module {
    public let backbone: ResNet
    public let neck: FPN
    public let bboxHead: RetinaHead
    public let config: DetectorConfig
    public let postProcessor: PostProcessor

    /// Builds the model with mmdet's fresh init. `randomBackboneInit: false` is mmdet's
    /// `init_cfg=dict(type='Pretrained')` on the backbone: its `init_weights` draws nothing (the caller loads the
    /// file), so the neck's and head's draws come where mmdet's do.
    public init(_ config: DetectorConfig, randomBackboneInit: Bool = true) throws {
        self.config = config
        backbone = try ResNet(config.model.backbone)
        neck = try FPN(config.model.neck)
        bboxHead = try RetinaHead(config.model.bboxHead)
        postProcessor = PostProcessor(cfg: config.model.testCfg, coder: bboxHead.bboxCoder,
                                      anchors: bboxHead.anchorGenerator, numClasses: config.model.bboxHead.numClasses)
        super.init()
        // mmdet builds every layer (PyTorch's default init draws as each conv is made), then `init_weights` runs
        // backbone, neck, head in turn: the same draws in the same order from the torch generator
        if randomBackboneInit { try backbone.initWeights() }
        try neck.initWeights()
        try bboxHead.initWeights()
    }

    /// The model's device (where its parameters live).
    public var device: Device {
        get throws(TorchError) { try backbone.conv1.weight.device }
    }

    /// FPN features P3…P7 of a pre-processed batch (N, 3, H, W).
    public func extractFeatures(_ images: Tensor) throws(TorchError) -> [Tensor] {
        try neck(backbone(images))
    }

    /// Raw head outputs per level.
    public func forwardRaw(_ images: Tensor) throws(TorchError) -> (clsScores: [Tensor], bboxPreds: [Tensor]) {
        try bboxHead(extractFeatures(images))
    }

    /// The network as mmdet runs it in fp16 mode (`wrap_fp16_model`; mmcv's `auto_fp16` under torch ≥ 1.6): the
    /// image cast to float16 (the detector's `forward`), the network under autocast to `dtype`, and the backbone's
    /// features cast to float16 again on their way into the FPN (its own `@auto_fp16()`, which casts every input
    /// tensor to half whatever the autocast dtype: under bf16 the C2–C5 features are bf16 and are rounded to fp16,
    /// and their gradients too on the way back). Outputs as autocast leaves them (half); the callers cast them to
    /// float32 (`force_fp32`).
    public func forwardMixedPrecision(_ images: Tensor, dtype: DType) throws(TorchError) -> (clsScores: [Tensor], bboxPreds: [Tensor]) {
        let half = try images.to(.float16)
        return try withAutocast(try images.device, dtype: dtype) { () throws(TorchError) in
            let c = try backbone(half)
            return try bboxHead(neck(try c.map { t throws(TorchError) in try t.to(.float16) }))
        }
    }

    /// How `detect` runs the network: the reference (fp32, NCHW, conv + BN), or the fast paths of mmdet's
    /// `tools/test.py --fuse-conv-bn`, PyTorch's channels-last memory format, and autocast.
    public struct InferenceMode: Equatable, Sendable, CustomStringConvertible {
        /// Batch norms folded into their convolutions (mmcv's `fuse_conv_bn`; irreversible).
        public var fuseConvBN = false
        /// Convolution weights and the input batch in channels-last layout.
        public var channelsLast = false
        /// Autocast dtype (bfloat16 or float16) for the network, the image cast to float16 first (mmdet's
        /// `auto_fp16`); the head's outputs are cast to float32 before the post-processing, as mmdet's `force_fp32`.
        public var autocast: DType?

        public init(fuseConvBN: Bool = false, channelsLast: Bool = false, autocast: DType? = nil) {
            (self.fuseConvBN, self.channelsLast, self.autocast) = (fuseConvBN, channelsLast, autocast)
        }

        public static let reference = InferenceMode()
        public var isReference: Bool { self == .reference }
        public var description: String {
            var parts: [String] = []
            if fuseConvBN { parts.append("fuse-conv-bn") }
            if channelsLast { parts.append("channels-last") }
            if let autocast { parts.append("amp \(autocast)") }
            return parts.isEmpty ? "fp32 reference" : parts.joined(separator: " + ")
        }
    }

    public private(set) var inferenceMode = InferenceMode.reference

    /// Switches to `mode` (for inference: the model must be in evaluation mode to fold its batch norms; folding
    /// cannot be undone).
    public func setInferenceMode(_ mode: InferenceMode) throws(TorchError) {
        if inferenceMode.fuseConvBN && !mode.fuseConvBN {
            throw TorchError(op: "inference_mode", message: "the batch norms are folded already; build the model again to unfold them")
        }
        if let dt = mode.autocast, dt != .bfloat16 && dt != .float16 {
            throw TorchError(op: "inference_mode", message: "autocast dtype must be bfloat16 or float16, not \(dt)")
        }
        if mode.fuseConvBN && !inferenceMode.fuseConvBN { try fuseConvBN() }
        if mode.channelsLast != inferenceMode.channelsLast {
            if mode.channelsLast { try toChannelsLast() } else { try toContiguous() }
        }
        inferenceMode = mode
    }

    /// Detections per image in original-image pixels (`simple_test(..., rescale=True)`), without gradients, in the
    /// current `inferenceMode`.
    public func detect(_ images: Tensor, metas: [ImageMeta]) throws(TorchError) -> [Detections] {
        try withNoGrad { () throws(TorchError) -> [Detections] in
            let (cls, reg) = try forwardInference(images)
            return try postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: metas)
        }
    }

    /// The head outputs in the current `inferenceMode` (channels-last input, autocast), always float32.
    public func forwardInference(_ images: Tensor) throws(TorchError) -> (clsScores: [Tensor], bboxPreds: [Tensor]) {
        let mode = inferenceMode
        let x = mode.channelsLast ? try images.contiguous(.channelsLast) : images
        guard let dt = mode.autocast else { return try forwardRaw(x) }
        // as mmdet's fp16 test (wrap_fp16_model + auto_fp16)
        let (cls, reg) = try forwardMixedPrecision(x, dtype: dt)
        // mmdet's force_fp32 on the head's get_bboxes
        return (try cls.map { t throws(TorchError) in try t.to(.float32) }, try reg.map { t throws(TorchError) in try t.to(.float32) })
    }

    /// The GHM buffers that mmdet's own loading tolerates to be absent from a checkpoint.
    public var optionalKeys: Set<String> {
        Set(namedBuffers().map(\.key).filter { $0.hasPrefix("bbox_head.loss_cls.") || $0.hasPrefix("bbox_head.loss_bbox.") })
    }

    /// Loads an mmdet state dict: strict, except that the GHM loss buffers may be absent (mmdet tolerates that).
    @discardableResult
    public func loadStateDict(_ tensors: [String: Tensor], source: String? = nil) throws -> LoadReport {
        try load(tensors, strict: true, allowMissing: optionalKeys, source: source)
    }
}

/// COCO's 80 class names in mmdet's label order (`CocoDataset.CLASSES`).
public let cocoClasses = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]
