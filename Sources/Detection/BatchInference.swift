import Foundation
import Imaging
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

/// A FIFO between a producer and a consumer thread, holding at most `capacity` elements. `push` blocks while it
/// is full, `pop` while it is empty. `close()` ends the stream (pop drains what is left, then returns nil);
/// `cancel()` abandons it (both sides return at once, queued elements are dropped).
final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private var cancelled = false

    init(capacity: Int) { self.capacity = max(1, capacity) }

    private var count: Int { items.count - head }

    /// Appends `x`, waiting for room; false when the queue was cancelled (or closed).
    @discardableResult
    func push(_ x: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count >= capacity && !cancelled { condition.wait() }
        guard !cancelled, !closed else { return false }
        items.append(x)
        condition.broadcast()
        return true
    }

    /// The next element, waiting for one; nil at the end of a closed stream or after `cancel()`.
    func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 && !closed && !cancelled { condition.wait() }
        guard !cancelled, count > 0 else { return nil }
        let x = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return x
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}

/// A thread that runs queued jobs in order (e.g. drawing and writing images while the model works on the next
/// batch). The first error stops it (later jobs are skipped) and is rethrown by `finish()`.
public final class BackgroundWorker: @unchecked Sendable {
    /// What the thread shares with the owner (the thread does not keep the worker alive, so `deinit` can stop it).
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var firstError: Error?
        var busySeconds = 0.0
        func locked<T>(_ body: () -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body()
        }
    }

    private let queue: BoundedQueue<() throws -> Void>
    private let state = State()
    private let done = DispatchSemaphore(value: 0)
    private var finished = false

    /// `capacity` jobs may wait; `submit` blocks beyond that. Call `finish()` (or `abandon()`) at the end.
    public init(name: String, capacity: Int) {
        let queue = BoundedQueue<() throws -> Void>(capacity: capacity)
        let state = self.state, done = self.done
        self.queue = queue
        let thread = Thread {
            while let job = queue.pop() {
                if state.locked({ state.firstError != nil }) { continue }  // skip the rest after an error
                let t0 = monotonicSeconds()
                var failure: Error?
                do { try job() } catch { failure = error }
                state.locked {
                    if state.firstError == nil { state.firstError = failure }
                    state.busySeconds += monotonicSeconds() - t0
                }
            }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// The first error of a job so far.
    public var error: Error? { state.locked { state.firstError } }

    /// Seconds spent running jobs.
    public var busySeconds: Double { state.locked { state.busySeconds } }

    /// Queues a job (waits while `capacity` jobs are pending); throws the first error of an earlier job.
    public func submit(_ job: @escaping () throws -> Void) throws {
        if let error { throw error }
        queue.push(job)
    }

    /// Runs the remaining jobs, stops the thread, rethrows the first error. Idempotent.
    public func finish() throws {
        if !finished {
            finished = true
            queue.close()
            done.wait()
        }
        if let error { throw error }
    }

    /// Drops the pending jobs and stops the thread (after the job in progress).
    public func abandon() {
        guard !finished else { return }
        finished = true
        queue.cancel()
        done.wait()
    }

    deinit { abandon() }
}

/// Seconds on a monotonic clock.
public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

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

/// Progress with rate and ETA on standard error: one line rewritten in place on a terminal, a line every
/// `interval` seconds otherwise (logs, pipes); a last line at `finish()`.
public final class ProgressReporter {
    public let total: Int
    public let label: String
    public let isTerminal: Bool
    public let interval: Double
    private let write: (String) -> Void
    private let start = monotonicSeconds()
    private lazy var lastPrint = start
    public private(set) var done = 0
    public private(set) var failed = 0
    private var finished = false

    /// `write` receives the raw text (with "\r" and an erase-line escape on a terminal); by default standard error.
    public init(total: Int, label: String, isTerminal: Bool? = nil, interval: Double = 10,
                write: ((String) -> Void)? = nil) {
        self.total = total
        self.label = label
        self.isTerminal = isTerminal ?? (isatty(STDERR_FILENO) != 0)
        self.interval = interval
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// One more image done.
    public func advance(failed isFailure: Bool = false) {
        done += 1
        if isFailure { failed += 1 }
        let t = monotonicSeconds()
        if isTerminal {
            if t - lastPrint >= 0.1 || done == total {
                lastPrint = t
                write("\r" + line(now: t) + "\u{1B}[K")
            }
        } else if t - lastPrint >= interval && done < total {
            lastPrint = t
            write(line(now: t) + "\n")
        }
    }

    /// Prints a message line (e.g. a skipped image) without garbling the progress line: on a terminal the line
    /// is cleared, the message printed, and the progress line drawn again below it.
    public func log(_ message: String) {
        if isTerminal && !finished {
            write("\r\u{1B}[K" + message + "\n" + line(now: monotonicSeconds()) + "\u{1B}[K")
        } else {
            write(message + "\n")
        }
    }

    /// Prints the final state (and ends the terminal line). Idempotent.
    public func finish() {
        guard !finished else { return }
        finished = true
        let text = line(now: monotonicSeconds())
        write(isTerminal ? "\r" + text + "\u{1B}[K\n" : text + "\n")
    }

    /// `[infer] 12/40 (30%)  2.95 img/s  elapsed 0:04  ETA 0:09  (1 failed)`.
    public func line(now t: Double) -> String {
        let elapsed = t - start
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let pct = total > 0 ? 100 * done / total : 100
        var s = "[\(label)] \(done)/\(total) (\(pct)%)  " + String(format: "%.2f", rate) + " img/s  elapsed "
            + Self.clock(elapsed)
        if done < total {
            s += "  ETA " + (rate > 0 ? Self.clock(Double(total - done) / rate) : "?")
        }
        if failed > 0 { s += "  (\(failed) failed)" }
        return s
    }

    /// `m:ss` or `h:mm:ss`.
    public static func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded()))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }
}
