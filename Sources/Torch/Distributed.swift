import CGHMTorch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A group of processes that run collectives together (PyTorch's `torch.distributed` with one default group):
/// Gloo for CPU tensors, NCCL for CUDA tensors where the shim was built with it. Rank 0 hosts the rendezvous store on
/// `masterAddress:masterPort`. Every collective blocks until it is done, and throws (never hangs past `timeout`) when a
/// peer dies or does not answer. Joining a group sets SIGPIPE to be ignored in this process, as Python does.
public final class ProcessGroup {
    public let rank: Int
    public let worldSize: Int
    /// This process's index on its machine (torchrun's `LOCAL_RANK`); `rank` when not given.
    public let localRank: Int
    /// "gloo", or "gloo+nccl" on a CUDA build with NCCL.
    public let backend: String
    let handle: gt_process_group

    /// Whether this build can run collectives: Gloo and NCCL compiled in, or why not (`""` when both are).
    public static var availability: (gloo: Bool, nccl: Bool, reason: String) {
        var g: Int32 = 0, n: Int32 = 0
        var buf = [CChar](repeating: 0, count: 512)
        gt_dist_available(&g, &n, &buf, buf.count)
        return (g != 0, n != 0, String(cString: buf))
    }

    /// Joins the group; returns when all `worldSize` ranks have joined, throws when they have not within `timeout`.
    public init(rank: Int, worldSize: Int, localRank: Int? = nil, masterAddress: String, masterPort: Int,
                timeout: Duration = .seconds(300)) throws(TorchError) {
        let ms = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard let r = Int32(exactly: rank), let w = Int32(exactly: worldSize), let p = Int32(exactly: masterPort) else {
            throw TorchError(op: "dist_init", message: "rank, world size or port out of range")
        }
        // A write to a peer that died raises SIGPIPE, whose default action kills this process without a word; Python
        // ignores it from the start, so torch.distributed sees EPIPE and raises. Do the same: the collective then
        // fails with Gloo's message.
        signal(SIGPIPE, SIG_IGN)
        var h = gt_process_group(ptr: nil)
        try check("dist_init", gt_dist_init(r, w, masterAddress, p, ms, &h))
        self.handle = h
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank ?? rank
        var buf = [CChar](repeating: 0, count: 64)
        gt_dist_backend(h, &buf, buf.count)
        self.backend = String(cString: buf)
    }

    deinit { gt_dist_destroy(handle) }

    /// Joins the group described by the variables torchrun sets: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`
    /// (required) and `LOCAL_RANK` (optional). A missing or invalid variable is an error that names it.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment,
                                       timeout: Duration = .seconds(300)) throws(TorchError) -> ProcessGroup {
        let c = try Config(environment: env)
        return try ProcessGroup(rank: c.rank, worldSize: c.worldSize, localRank: c.localRank,
                                masterAddress: c.masterAddress, masterPort: c.masterPort, timeout: timeout)
    }

    /// What `fromEnvironment` reads, checked before anything connects.
    public struct Config: Equatable {
        public var rank: Int
        public var worldSize: Int
        public var localRank: Int
        public var masterAddress: String
        public var masterPort: Int

        public init(environment env: [String: String]) throws(TorchError) {
            func int(_ name: String, _ range: ClosedRange<Int>?) throws(TorchError) -> Int? {
                guard let s = env[name] else { return nil }
                guard let v = Int(s.trimmingCharacters(in: .whitespaces)), range.map({ $0.contains(v) }) ?? true else {
                    let want = range.map { " (expected an integer in \($0.lowerBound)...\($0.upperBound))" }
                        ?? " (expected an integer)"
                    throw TorchError(op: "dist_env", message: "\(name)='\(s)' is invalid\(want)")
                }
                return v
            }
            func required<T>(_ name: String, _ v: T?) throws(TorchError) -> T {
                guard let v else {
                    throw TorchError(op: "dist_env", message: "\(name) is not set (torchrun sets RANK, WORLD_SIZE, "
                                     + "MASTER_ADDR and MASTER_PORT)")
                }
                return v
            }
            let world = try required("WORLD_SIZE", try int("WORLD_SIZE", 1...65536))
            rank = try required("RANK", try int("RANK", 0...(world - 1)))
            worldSize = world
            localRank = try int("LOCAL_RANK", 0...65535) ?? rank
            let addr = try required("MASTER_ADDR", env["MASTER_ADDR"])
            if addr.isEmpty { throw TorchError(op: "dist_env", message: "MASTER_ADDR is empty") }
            masterAddress = addr
            masterPort = try required("MASTER_PORT", try int("MASTER_PORT", 1...65535))
        }
    }

    /// Sums each tensor over the ranks, in place. All ranks pass the same shapes and dtypes in the same order; the
    /// tensors of one dtype and device travel as one flat buffer.
    public func allReduceSum(_ tensors: [Tensor]) throws(TorchError) {
        let hs = tensors.map { $0.handle }
        try withExtendedLifetime(tensors) { () throws(TorchError) in
            try check("all_reduce", gt_dist_all_reduce_sum(handle, hs, Int32(hs.count)))
        }
    }

    /// The mean over the ranks, in place (sum, then division by `worldSize`); floating-point tensors only, checked
    /// before anything is sent.
    public func allReduceMean(_ tensors: [Tensor]) throws(TorchError) {
        for (i, t) in tensors.enumerated() {
            let dt = try t.dtype
            if !dt.isFloatingPoint {
                throw TorchError(op: "all_reduce_mean", message: "tensor \(i) is \(dt); the mean needs a floating-point dtype")
            }
        }
        try allReduceSum(tensors)
        for t in tensors { try t.div_(Double(worldSize)) }
    }

    /// Every rank's tensors take `root`'s values, in place.
    public func broadcast(_ tensors: [Tensor], root: Int) throws(TorchError) {
        guard let r = Int32(exactly: root) else { throw TorchError(op: "broadcast", message: "root \(root) out of range") }
        let hs = tensors.map { $0.handle }
        try withExtendedLifetime(tensors) { () throws(TorchError) in
            try check("broadcast", gt_dist_broadcast(handle, hs, Int32(hs.count), r))
        }
    }

    /// Returns when every rank has reached it.
    public func barrier() throws(TorchError) {
        try check("barrier", gt_dist_barrier(handle))
    }
}
