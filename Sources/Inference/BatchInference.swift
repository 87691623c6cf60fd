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
    /// Windows of the image that went through the model (1 unless tiled; 0 when it failed).
    public let windows: Int
}

/// Counters and timings of a `BatchInference.run`.
public struct BatchInferenceStats: Sendable {
    public var images = 0
    public var failed = 0
    public var batches = 0
    /// Windows through the model (tiled runs; = images that loaded otherwise).
    public var windows = 0
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
    /// Tiled inference: each image is cut into windows, the windows go through the model (`batchSize` windows
    /// per forward pass) and their detections are merged into the image's (`TiledInference`); nil: whole images.
    public var tiling: TileSettings?

    public init(detector: Detector, batchSize: Int = 1, prefetchBatches: Int = 2, keepOriginals: Bool = false,
                tiling: TileSettings? = nil) {
        self.detector = detector
        self.batchSize = max(1, batchSize)
        self.prefetchBatches = max(0, prefetchBatches)
        self.keepOriginals = keepOriginals
        self.tiling = tiling
    }

    /// A loaded (or failed) image on its way from the decoder thread to the model: its prepared windows (one, the
    /// whole image, unless tiled). A tiled image's windows may come in several parts, over several chunks; the
    /// last part carries the image (and the error, if a window failed).
    private struct Loaded {
        var position: Int
        var item: InferenceItem
        var prepared: [PreparedImage] = []
        /// Windows in this part (`prepared.count`; kept once the tensors have gone to the model's queue).
        var partWindows = 0
        /// All windows of the image (tiled runs).
        var windows: [TileWindow] = []
        var lastPart = true
        var size: (height: Int, width: Int)?
        var original: Image?
        var error: Error?
    }

    /// A group of consecutive items: up to `batchSize` prepared windows (fewer at the end) and the failures
    /// among them.
    private struct Chunk {
        var entries: [Loaded] = []
        var decodeSeconds = 0.0
        var preparedCount: Int { entries.reduce(0) { $0 + $1.prepared.count } }
    }

    /// Reads and pre-processes the items in order, one chunk at a time (on whichever thread calls `next`).
    private final class ChunkProducer: @unchecked Sendable {
        let items: [InferenceItem]
        let transform: ImageTransform
        let device: Device
        let batchSize: Int
        let keepOriginals: Bool
        let tiling: TileSettings?
        var position = 0
        /// A tiled image whose windows are being prepared, a chunk's worth at a time (so memory holds about
        /// `batchSize` prepared windows per chunk, however large the image): its entry, pixels and next window.
        var open: (entry: Loaded, image: Image, pixels: [UInt8], next: Int)?
        /// Total time in `next` (read by the consumer after the producer is done).
        var decodeSeconds = 0.0

        init(items: [InferenceItem], transform: ImageTransform, device: Device, batchSize: Int, keepOriginals: Bool,
             tiling: TileSettings?) {
            self.items = items
            self.transform = transform
            self.device = device
            self.batchSize = batchSize
            self.keepOriginals = keepOriginals
            self.tiling = tiling
        }

        /// Reads the next item: prepared whole (not tiled, or it fits one tile: the same input as a whole-image
        /// run), or opened for `windowsOfOpen` when it has several windows; a failure as it is.
        func loadNext() -> Loaded? {
            var loaded = Loaded(position: position, item: items[position])
            position += 1
            do {
                let path = loaded.item.path
                let image = try ImageTransform.loadImage(path: path)
                loaded.size = (image.height, image.width)
                let windows = tiling.map { TiledInference.windows(width: image.width, height: image.height, settings: $0) }
                loaded.windows = windows ?? []
                if let windows, windows.count > 1 {
                    open = (loaded, image, try image.bytes(), 0)
                    return nil
                }
                loaded.prepared = [try transform.prepare(image, filename: path, device: device)]
                if keepOriginals { loaded.original = image }
            } catch {
                loaded.error = error
            }
            return loaded
        }

        /// Up to `room` more windows of the open image, as one part; the last part closes it.
        func windowsOfOpen(room: Int) -> Loaded {
            guard let (first, image, pixels, start) = open else { preconditionFailure("no open image") }
            var entry = first, next = start
            entry.lastPart = false
            do {
                while entry.prepared.count < room && next < entry.windows.count {
                    let crop = try TiledInference.crop(image, pixels: pixels, to: entry.windows[next])
                    entry.prepared.append(try transform.prepare(crop, filename: entry.item.path, device: device))
                    next += 1
                }
            } catch {
                (entry.prepared, entry.error, next) = ([], error, entry.windows.count)
            }
            if next < entry.windows.count {
                let rest = Loaded(position: entry.position, item: entry.item, windows: entry.windows, size: entry.size)
                open = (rest, image, pixels, next)
                return entry
            }
            open = nil
            entry.lastPart = true
            if keepOriginals && entry.error == nil { entry.original = image }
            return entry
        }

        /// The next chunk: up to `batchSize` prepared windows (or a long run of failures, which need no model
        /// time and are reported without waiting); nil at the end.
        func next() -> Chunk? {
            var chunk = Chunk()
            while (open != nil || position < items.count) && chunk.preparedCount < batchSize
                    && chunk.entries.count < batchSize + 8 {
                let t0 = monotonicSeconds()
                if open != nil {
                    chunk.entries.append(windowsOfOpen(room: batchSize - chunk.preparedCount))
                } else if let loaded = loadNext() {
                    chunk.entries.append(loaded)
                }
                let dt = monotonicSeconds() - t0
                chunk.decodeSeconds += dt
                decodeSeconds += dt
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
                                     batchSize: batchSize, keepOriginals: keepOriginals, tiling: tiling)
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

        // Whole images: each chunk is one batch. Tiled: windows wait in `queued` until a full batch is there (or
        // the inputs end), so batches may span images; an image is handed over once all its windows are done.
        var pending: [Loaded] = [], queued: [PreparedImage] = [], done: [Detections] = []
        var parts: [Detections] = []  // the detections of the earlier parts of the image at the front
        var finished = false
        while !finished {
            let w0 = monotonicSeconds()
            let popped: Chunk?
            if let queue { popped = queue.pop() } else { popped = producer.next() }
            if let chunk = popped {
                stats.waitSeconds += monotonicSeconds() - w0
                for var entry in chunk.entries {  // the tensors wait in `queued` only, and are freed when run
                    queued += entry.prepared
                    entry.partWindows = entry.prepared.count
                    entry.prepared = []
                    pending.append(entry)
                }
            } else {
                finished = true
            }
            while !queued.isEmpty && (queued.count >= batchSize || finished || tiling == nil) {
                let batch = Array(queued.prefix(batchSize))
                queued.removeFirst(batch.count)
                let m0 = monotonicSeconds()
                done += try detector.detect(batch)
                stats.modelSeconds += monotonicSeconds() - m0
                stats.batches += 1
                stats.windows += batch.count
            }
            while let entry = pending.first, entry.partWindows <= done.count {
                pending.removeFirst()
                parts += done.prefix(entry.partWindows)
                done.removeFirst(entry.partWindows)
                guard entry.lastPart else { continue }
                try deliver(entry, parts, &stats, progress: progress, body)
                parts = []
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

    /// Hands one loaded (or failed) item with its windows' detections to `body`.
    private func deliver(_ entry: Loaded, _ own: [Detections], _ stats: inout BatchInferenceStats,
                         progress: ProgressReporter?, _ body: (InferenceResult) throws -> Void) throws {
        let result: InferenceResult
        if entry.error == nil {
            let m0 = monotonicSeconds()
            let merged = try mergeWindows(own, entry.windows)
            stats.modelSeconds += monotonicSeconds() - m0
            result = InferenceResult(item: entry.item, position: entry.position, detections: merged,
                                     error: nil, original: entry.original, size: entry.size, windows: own.count)
        } else {
            result = InferenceResult(item: entry.item, position: entry.position, detections: nil,
                                     error: entry.error, original: nil, size: nil, windows: 0)
            stats.failed += 1
        }
        stats.images += 1
        let c0 = monotonicSeconds()
        try body(result)
        stats.consumerSeconds += monotonicSeconds() - c0
        progress?.advance(failed: result.error != nil)
    }

    /// The image's detections from those of its windows: as they are for one window (the whole image), else
    /// placed in the image and merged (`TiledInference.merge` with the config's NMS IoU threshold and max_per_img).
    private func mergeWindows(_ perWindow: [Detections], _ windows: [TileWindow]) throws -> Detections {
        guard perWindow.count > 1, let tiling else { return perWindow[0] }
        var placed: [TileDetection] = []
        for (index, (dets, window)) in zip(perWindow, windows).enumerated() {
            placed += TiledInference.place(try dets.rows(), window: index, of: window, edgeMargin: tiling.edgeMargin)
        }
        let cfg = detector.config.model.testCfg
        let merged = TiledInference.merge(placed, iouThreshold: cfg.nmsIouThreshold,
                                          coverThreshold: tiling.coverThreshold, maxPerImage: cfg.maxPerImg)
        return try TiledInference.detections(merged)
    }
}
