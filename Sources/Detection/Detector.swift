import Foundation
import Imaging
import Torch
import TorchCheckpoint
import TorchNN

/// A ready-to-run detector: the model with its weights, the test-time transform and the class names.
public final class Detector {
    public let model: RetinaNet
    public let config: DetectorConfig
    public let transform: ImageTransform
    public let classNames: [String]
    public let device: Device
    /// `meta` of the checkpoint, when it had one.
    public let meta: CheckpointDict?

    /// Builds the model from `config`, loads `checkpoint` (mmdet `.pth`, legacy or zip, or safetensors; strict
    /// except the optional GHM buffers), moves it to `device`, evaluation mode. Class names come from the
    /// checkpoint's `meta.CLASSES`, else the config's `data.test.classes`, else COCO's when there are 80 classes.
    public init(config: DetectorConfig, checkpoint: String?, device: Device = .cpu) throws {
        self.config = config
        model = try RetinaNet(config)
        var meta: CheckpointDict?
        if let checkpoint {
            let ckpt = try Checkpoint.load(checkpoint)
            try model.loadStateDict(try ckpt.stateDict().tensors, source: checkpoint)
            meta = ckpt.meta
        }
        self.meta = meta
        try model.to(device)
        model.eval()
        self.device = device
        transform = try config.testTransform()
        let n = config.model.bboxHead.numClasses
        classNames = Detector.classNames(meta: meta, config: config, count: n)
    }

    /// A detector around a model that is already built (e.g. the one being trained): its config's test transform,
    /// the given class names, the model's device. The model's mode is left to the caller.
    public init(model: RetinaNet, classNames: [String]) throws {
        self.model = model
        config = model.config
        meta = nil
        device = try model.device
        transform = try model.config.testTransform()
        self.classNames = classNames
    }

    static func classNames(meta: CheckpointDict?, config: DetectorConfig, count: Int) -> [String] {
        for key in ["CLASSES", "classes"] {
            if let items = meta?[key]?.items {
                let names = items.compactMap(\.string)
                if names.count == count { return names }
            }
        }
        if let names = config.data.test.classes, names.count == count { return names }
        if count == cocoClasses.count { return cocoClasses }
        return (0..<count).map { "class_\($0)" }
    }

    public func className(_ label: Int) -> String {
        classNames.indices.contains(label) ? classNames[label] : "class_\(label)"
    }

    /// Pre-processes one image file (mmcv's test pipeline).
    public func prepare(path: String) throws -> PreparedImage {
        try transform.prepare(try ImageTransform.loadImage(path: path), filename: path, device: device)
    }

    /// Detections for already prepared images (one batch, padded together).
    public func detect(_ images: [PreparedImage]) throws -> [Detections] {
        let batch = try ImageTransform.collate(images.map(\.tensor))
        return try model.detect(batch, metas: images.map(\.meta))
    }

    /// Detections for image files, one batch.
    public func detect(paths: [String]) throws -> [Detections] {
        try detect(paths.map { try prepare(path: $0) })
    }
}
