import Detection
import Foundation
import Imaging
import Support
import Torch

/// One pre-processed training image: the normalised, padded CHW tensor, its meta, and its boxes (float32, in the
/// resized — and flipped — image's pixels, clipped to it) and labels (int64).
public struct TrainItem {
    public var position: Int
    public var sample: Int
    public var image: Tensor
    public var meta: ImageMeta
    public var gtBoxes: Tensor
    public var gtLabels: Tensor
    /// The boxes as plain values (what `gtBoxes` holds).
    public var boxes: [[Float]]
}

/// mmdet's train pipeline with the config's parameters: `LoadImageFromFile` (BGR), `LoadAnnotations`,
/// `Resize` keep-ratio (mmcv's rounding; boxes × the float32 scale factor, clipped to the image),
/// `RandomFlip` (the draw is made by the caller; boxes `w − x2, w − x1`), `Normalize`, `Pad` to the size divisor,
/// `DefaultFormatBundle`. Batches are collated to the largest H×W (mmcv's `collate`).
public struct TrainPipeline: Sendable {
    public let transform: ImageTransform

    public init(transform: ImageTransform) { self.transform = transform }

    /// The boxes of `sample` as `Resize` and `RandomFlip` leave them, in float32 arithmetic like numpy's.
    public func transformBoxes(_ boxes: [[Float]], scale: [Float], imgShape: (h: Int, w: Int), flip: Bool) -> [[Float]] {
        let w = Float(imgShape.w), h = Float(imgShape.h)
        return boxes.map { b in
            var r = [b[0] * scale[0], b[1] * scale[1], b[2] * scale[2], b[3] * scale[3]]
            r[0] = Swift.min(Swift.max(r[0], 0), w)
            r[2] = Swift.min(Swift.max(r[2], 0), w)
            r[1] = Swift.min(Swift.max(r[1], 0), h)
            r[3] = Swift.min(Swift.max(r[3], 0), h)
            if flip { r = [w - r[2], r[1], w - r[0], r[3]] }
            return r
        }
    }

    /// Loads and pre-processes one sample.
    public func load(_ sample: TrainSample, flip: Bool) throws -> (image: Tensor, meta: ImageMeta, boxes: [[Float]], labels: [Int]) {
        let decoded = try ImageTransform.loadImage(path: sample.path)
        let prepared = try transform.prepare(decoded, filename: sample.path, flip: flip)
        let boxes = transformBoxes(sample.bboxes, scale: prepared.meta.scaleFactor,
                                   imgShape: (prepared.meta.imgShape.h, prepared.meta.imgShape.w), flip: flip)
        return (prepared.tensor, prepared.meta, boxes, sample.labels)
    }

    func item(_ sample: TrainSample, index: Int, position: Int, flip: Bool) throws -> TrainItem {
        let r = try load(sample, flip: flip)
        let boxes = r.boxes.isEmpty ? try Tensor.zeros([0, 4]) : try Tensor(r.boxes.flatMap { $0 }, shape: [r.boxes.count, 4])
        let labels = try Tensor(r.labels.map { Int64($0) }, shape: [r.labels.count])
        return TrainItem(position: position, sample: index, image: r.image, meta: r.meta, gtBoxes: boxes, gtLabels: labels,
                         boxes: r.boxes)
    }
}

/// A failed image of a batch: which and why.
public struct BadImage: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { reason.contains(path) ? reason : "\(path): \(reason)" }
}

/// The images of one iteration as the pipeline produced them, in sampler order.
public struct LoadedBatch {
    public var items: [TrainItem]
    public var failures: [BadImage]
    /// Seconds the training thread waited for it (mmcv's `data_time`).
    public var waitSeconds: Double
}

/// Runs the train pipeline for one epoch's sampler order on `workers` background threads (0: on the calling
/// thread), ahead of the model by at most `prefetch` batches. The order and the flips are fixed before any image is
/// decoded, so the batches do not depend on the number of threads.
public final class TrainLoader: @unchecked Sendable {
    private let pipeline: TrainPipeline
    private let samples: [TrainSample]
    private let order: [Int]
    private let flips: [Bool]
    private let batchSize: Int
    private let workers: Int
    private let prefetch: Int
    private let condition = NSCondition()
    private var results: [Int: Result<TrainItem, BadImage>] = [:]
    private var nextPosition = 0
    private var consumedBatches = 0
    private var stopped = false
    private var threadsDone = 0
    private var threadCount = 0
    public private(set) var batch: Int

    /// Starts at batch `startBatch` of the epoch (a resumed run skips the batches already trained).
    public init(pipeline: TrainPipeline, samples: [TrainSample], order: [Int], flips: [Bool], batchSize: Int,
                startBatch: Int = 0, workers: Int, prefetch: Int = 2) {
        self.pipeline = pipeline
        self.samples = samples
        self.order = order
        self.flips = flips
        self.batchSize = batchSize
        self.workers = Swift.max(0, workers)
        self.prefetch = Swift.max(1, prefetch)
        batch = startBatch
        consumedBatches = startBatch
        nextPosition = startBatch * batchSize
        threadCount = self.workers
        for w in 0..<self.workers {
            let t = Thread { [self] in self.work() }
            t.name = "ghm-data-\(w)"
            t.start()
        }
    }

    public var batchCount: Int { order.count / batchSize }

    private func produce(_ p: Int) -> Result<TrainItem, BadImage> {
        let s = samples[order[p]]
        do {
            return .success(try pipeline.item(s, index: order[p], position: p, flip: flips[p]))
        } catch {
            return .failure(BadImage(path: s.path, reason: "\(error)"))
        }
    }

    private func work() {
        while true {
            condition.lock()
            while !stopped && nextPosition < order.count && nextPosition / batchSize >= consumedBatches + prefetch {
                condition.wait()
            }
            if stopped || nextPosition >= order.count || nextPosition / batchSize >= batchCount {
                threadsDone += 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let p = nextPosition
            nextPosition += 1
            condition.unlock()
            let r = produce(p)
            condition.lock()
            results[p] = r
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next batch, or nil after the last one.
    public func next() -> LoadedBatch? {
        guard batch < batchCount else { return nil }
        let t0 = monotonicSeconds()
        let positions = (batch * batchSize)..<((batch + 1) * batchSize)
        var got: [Result<TrainItem, BadImage>] = []
        if workers == 0 {
            got = positions.map { produce($0) }
        } else {
            condition.lock()
            while !positions.allSatisfy({ results[$0] != nil }) { condition.wait() }
            got = positions.map { results.removeValue(forKey: $0)! }
            consumedBatches += 1
            condition.broadcast()
            condition.unlock()
        }
        batch += 1
        var items: [TrainItem] = [], failures: [BadImage] = []
        for r in got {
            switch r {
            case .success(let i): items.append(i)
            case .failure(let f): failures.append(f)
            }
        }
        return LoadedBatch(items: items, failures: failures, waitSeconds: monotonicSeconds() - t0)
    }

    /// Stops the threads (pending work is dropped). Idempotent.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while threadsDone < threadCount { condition.wait() }
        condition.unlock()
    }

    deinit { stop() }
}

extension TrainPipeline {
    /// Collates loaded items into the model's batch: images padded to the largest H×W and stacked.
    public static func collate(_ items: [TrainItem]) throws -> (images: Tensor, metas: [ImageMeta], boxes: [Tensor], labels: [Tensor]) {
        (try ImageTransform.collate(items.map(\.image)), items.map(\.meta), items.map(\.gtBoxes), items.map(\.gtLabels))
    }
}
