import Foundation

/// A FIFO between a producer and a consumer thread, holding at most `capacity` elements. `push` blocks while it
/// is full, `pop` while it is empty. `close()` ends the stream (pop drains what is left, then returns nil);
/// `cancel()` abandons it (both sides return at once, queued elements are dropped).
public final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private var cancelled = false

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    private var count: Int { items.count - head }

    /// Appends `x`, waiting for room; false when the queue was cancelled (or closed).
    @discardableResult
    public func push(_ x: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count >= capacity && !cancelled { condition.wait() }
        guard !cancelled, !closed else { return false }
        items.append(x)
        condition.broadcast()
        return true
    }

    /// The next element, waiting for one; nil at the end of a closed stream or after `cancel()`.
    public func pop() -> Element? {
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

    public var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    public func cancel() {
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
