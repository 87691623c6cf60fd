import Detection
import Foundation
import Imaging
import Support
import Torch

// The batched detection pipeline shared by `ghm infer` and `ghm eval`:
//
//   decoder thread:  read file → decode → mmcv test pipeline (resize, normalise, pad)  ─┐ bounded queue
//   calling thread:  collate → model → post-processing → `body` (in input order)      ◀─┘ (prefetch batches)
//
// While the model runs on batch k, the decoder thread prepares batches k+1 … k+prefetch; it blocks when the
// queue is full, so at most `prefetchBatches` prepared batches (plus the one being decoded) are held in memory.
// With prefetchBatches = 0 the calling thread decodes between batches (no overlap; for comparisons).
// `ghm infer` adds a third stage, a `BackgroundWorker` that draws, encodes and writes the pictures.


/// One image to detect: its file and a caller-chosen identifier (the position in the input list for `ghm infer`,
/// the COCO image id for `ghm eval`).
public struct InferenceItem: Sendable, Equatable {
    public var id: Int
    public var path: String
    public init(id: Int, path: String) {
        self.id = id
        self.path = path
    }
}

/// The outcome for one image, handed to the consumer in input order.
public struct InferenceResult {
    public let item: InferenceItem
    /// Position of the item in the list given to `run`.
    public let position: Int
    /// Detections in original-image pixels; nil when the image failed.
    public let detections: Detections?
    /// Why the image failed (cannot be read, not an image, …).
    public let error: Error?
    /// The decoded image (BGR, original size) when `keepOriginals` is set; the consumer may draw on it.
    public let original: Image?
    /// (height, width) of the original image; nil when it failed.
    public let size: (height: Int, width: Int)?
}

/// Counters and timings of a `BatchInference.run`.
public struct BatchInferenceStats: Sendable {
    public var images = 0
    public var failed = 0
    public var batches = 0
    /// Wall time of the whole run (first decode to last consumer call).
    public var seconds = 0.0
    /// Time the decoder thread spent reading, decoding and pre-processing.
    public var decodeSeconds = 0.0
    /// Time in the model (collate, forward, post-processing).
    public var modelSeconds = 0.0
    /// Time the calling thread waited for a prepared batch (≈ 0 when decoding is hidden behind the model).
    public var waitSeconds = 0.0
    /// Time in the consumer's callback.
    public var consumerSeconds = 0.0

    public var succeeded: Int { images - failed }
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
}

/// Runs a detector over many image files in batches, decoding and pre-processing the next batches on a background
/// thread while the current one is in the model (bounded prefetch). Unreadable images are passed to the consumer
/// as failures and the run goes on; errors of the model or of the consumer stop it.
public final class BatchInference {
    public let detector: Detector
    /// Images per forward pass (images that fail to load do not take a place in a batch).
    public var batchSize: Int
    /// Prepared batches that may wait for the model (≥ 1); 0 decodes on the calling thread without overlap.
    public var prefetchBatches: Int
    /// Hand the decoded original image to the consumer (for drawing).
    public var keepOriginals: Bool

    public init(detector: Detector, batchSize: Int = 1, prefetchBatches: Int = 2, keepOriginals: Bool = false) {
        self.detector = detector
        self.batchSize = max(1, batchSize)
        self.prefetchBatches = max(0, prefetchBatches)
        self.keepOriginals = keepOriginals
    }

    /// A loaded (or failed) image on its way from the decoder thread to the model.
    private struct Loaded {
        var position: Int
        var item: InferenceItem
        var prepared: PreparedImage?
        var original: Image?
        var error: Error?
    }

    /// A group of consecutive items: up to `batchSize` prepared images and the failures among them.
    private struct Chunk {
        var entries: [Loaded] = []
        var decodeSeconds = 0.0
        var preparedCount: Int { entries.filter { $0.prepared != nil }.count }
    }

    /// Reads and pre-processes the items in order, one chunk at a time (on whichever thread calls `next`).
    private final class ChunkProducer: @unchecked Sendable {
        let items: [InferenceItem]
        let transform: ImageTransform
        let device: Device
        let batchSize: Int
        let keepOriginals: Bool
        var position = 0
        /// Total time in `next` (read by the consumer after the producer is done).
        var decodeSeconds = 0.0

        init(items: [InferenceItem], transform: ImageTransform, device: Device, batchSize: Int, keepOriginals: Bool) {
            self.items = items
            self.transform = transform
            self.device = device
            self.batchSize = batchSize
            self.keepOriginals = keepOriginals
        }

        /// The next chunk: items up to `batchSize` loaded images (or a long run of failures, which need no model
        /// time and are reported without waiting); nil at the end.
        func next() -> Chunk? {
            var chunk = Chunk()
            while position < items.count && chunk.preparedCount < batchSize && chunk.entries.count < batchSize + 8 {
                let item = items[position]
                let t0 = monotonicSeconds()
                var loaded = Loaded(position: position, item: item)
                do {
                    let image = try ImageTransform.loadImage(path: item.path)
                    loaded.prepared = try transform.prepare(image, filename: item.path, device: device)
                    if keepOriginals { loaded.original = image }
                } catch {
                    loaded.error = error
                }
                let dt = monotonicSeconds() - t0
                chunk.decodeSeconds += dt
                decodeSeconds += dt
                chunk.entries.append(loaded)
                position += 1
            }
            return chunk.entries.isEmpty ? nil : chunk
        }
    }

    /// Detects every item, calling `body` once per item in input order (on the calling thread); `progress` is
    /// advanced after each item. Returns the counters and timings.
    @discardableResult
    public func run(_ items: [InferenceItem], progress: ProgressReporter? = nil,
                    _ body: (InferenceResult) throws -> Void) throws -> BatchInferenceStats {
        var stats = BatchInferenceStats()
        let start = monotonicSeconds()
        let producer = ChunkProducer(items: items, transform: detector.transform, device: detector.device,
                                     batchSize: batchSize, keepOriginals: keepOriginals)
        // prefetchBatches == 0: decode on the calling thread, between batches (no overlap; for comparisons)
        let queue = prefetchBatches > 0 ? BoundedQueue<Chunk>(capacity: prefetchBatches) : nil
        let decoderDone = DispatchSemaphore(value: 0)
        if let queue {
            let decoder = Thread {
                defer { decoderDone.signal() }
                while !queue.isCancelled, let chunk = producer.next() {
                    guard queue.push(chunk) else { return }
                }
                queue.close()
            }
            decoder.name = "ghm-decoder"
            decoder.start()
        }
        var decoderJoined = queue == nil
        defer {
            if !decoderJoined {  // the model or the consumer failed: stop the decoder thread
                queue?.cancel()
                decoderDone.wait()
            }
        }

        while true {
            let w0 = monotonicSeconds()
            let popped: Chunk?
            if let queue { popped = queue.pop() } else { popped = producer.next() }
            guard let chunk = popped else { break }
            stats.waitSeconds += monotonicSeconds() - w0
            let ready = chunk.entries.filter { $0.prepared != nil }
            var detections: [Detections] = []
            if !ready.isEmpty {
                let m0 = monotonicSeconds()
                detections = try detector.detect(ready.map { $0.prepared! })
                stats.modelSeconds += monotonicSeconds() - m0
                stats.batches += 1
            }
            var next = 0
            for entry in chunk.entries {
                let c0 = monotonicSeconds()
                let result: InferenceResult
                if let prepared = entry.prepared {
                    let shape = prepared.meta.oriShape
                    result = InferenceResult(item: entry.item, position: entry.position, detections: detections[next],
                                             error: nil, original: entry.original, size: (shape.h, shape.w))
                    next += 1
                } else {
                    result = InferenceResult(item: entry.item, position: entry.position, detections: nil,
                                             error: entry.error, original: nil, size: nil)
                    stats.failed += 1
                }
                stats.images += 1
                try body(result)
                stats.consumerSeconds += monotonicSeconds() - c0
                progress?.advance(failed: result.error != nil)
            }
        }
        if !decoderJoined {
            decoderDone.wait()
            decoderJoined = true
        }
        stats.decodeSeconds = producer.decodeSeconds
        stats.seconds = monotonicSeconds() - start
        return stats
    }
}
