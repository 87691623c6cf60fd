import Foundation
import Support
import Torch

/// How `Trainer` spreads an iteration over ranks.
public enum Parallelism {
    /// One process and one batch per iteration: mmdet's non-distributed `train_detector`.
    case single
    /// This process is one rank of a group (torchrun, `ghm train --nproc`, a SLURM wrapper): mmdet's distributed
    /// training. Parameters are broadcast from rank 0 at the start, every rank draws its share of the epoch from
    /// `DistributedGroupSampler`, keeps its own GHM state and loss normaliser, and the gradients are averaged over the
    /// ranks before `clip_grad_norm_` and the SGD step, so every rank holds the same parameters after every step.
    case group(ProcessGroup)
    /// The arithmetic of `ranks` ranks in this process (one GPU reproducing the 8-GPU recipe): every iteration
    /// computes rank 0's … rank N−1's sub-batch in turn, each with that rank's own GHM state and normaliser, and
    /// averages the gradients. Checkpoints carry every rank's GHM state, so they resume in a real N-process run and
    /// back.
    case simulated(ranks: Int)
    /// For comparison only: the images `ranks` ranks would train on, as one batch of `ranks × samples_per_gpu` with
    /// one GHM state and one normaliser (what one process with the whole batch computes; not mmdet's arithmetic).
    case merged(ranks: Int)

    public var worldSize: Int {
        switch self {
        case .single: return 1
        case .group(let g): return g.worldSize
        case .simulated(let n), .merged(let n): return n
        }
    }

    /// This process's rank (0 when it computes every rank itself).
    public var rank: Int {
        if case .group(let g) = self { return g.rank }
        return 0
    }

    /// The ranks whose sub-batches this process computes.
    public var localRanks: [Int] {
        switch self {
        case .single: return [0]
        case .group(let g): return [g.rank]
        case .simulated(let n), .merged(let n): return Array(0..<n)
        }
    }

    var group: ProcessGroup? {
        if case .group(let g) = self { return g }
        return nil
    }
}

/// An epoch's sample order: mmdet's `GroupSampler` (numpy's stream) or `DistributedGroupSampler` (a torch generator
/// seeded `seed + epoch`, numpy untouched).
public protocol EpochSampler: Sendable {
    var groupSizes: [Int] { get }
    var batchesPerEpoch: Int { get }
    func epochOrder(epoch: Int, rng: inout LegacyRandom) throws -> [Int]
}

extension GroupSampler: EpochSampler {
    public func epochOrder(epoch: Int, rng: inout LegacyRandom) -> [Int] { epochOrder(&rng) }
}

extension DistributedGroupSampler: EpochSampler {
    public func epochOrder(epoch: Int, rng: inout LegacyRandom) throws -> [Int] { try epochOrder(epoch: epoch) }
}

/// The few collectives training needs beyond the gradient all-reduce, each a sum over a vector where every rank
/// fills its own slots (so the sum is exact and every rank ends with every rank's values).
enum RankExchange {
    /// Every rank's `values` (the same count on every rank), as `[rank][i]`, exactly.
    static func allGather(_ g: ProcessGroup, _ values: [Double]) throws -> [[Double]] {
        let n = values.count, w = g.worldSize
        var slots = [Double](repeating: 0, count: n * w)
        for (i, v) in values.enumerated() { slots[g.rank * n + i] = v }
        let t = try Tensor(slots, shape: [n * w])
        try g.allReduceSum([t])
        let all = try t.doubles()
        return (0..<w).map { r in Array(all[(r * n)..<((r + 1) * n)]) }
    }

    /// Every rank's rows (any count per rank), concatenated in rank order, exactly; rows have `width` values.
    static func gatherRows(_ g: ProcessGroup, _ rows: [[Double]], width: Int) throws -> [[Double]] {
        let counts = try allGather(g, [Double(rows.count)]).map { Int($0[0]) }
        let total = counts.reduce(0, +)
        guard total > 0 else { return [] }
        let offset = counts.prefix(g.rank).reduce(0, +)
        var flat = [Double](repeating: 0, count: total * width)
        for (i, row) in rows.enumerated() {
            precondition(row.count == width)
            for (j, v) in row.enumerated() { flat[(offset + i) * width + j] = v }
        }
        let t = try Tensor(flat, shape: [total * width])
        try g.allReduceSum([t])
        let all = try t.doubles()
        return (0..<total).map { Array(all[($0 * width)..<(($0 + 1) * width)]) }
    }
}

/// The error a collective gives when a peer is gone, with what the user can do about it.
func peerFailure(_ error: Error, rank: Int, worldSize: Int, during what: String) -> TrainingError {
    let others = (0..<worldSize).filter { $0 != rank }
    let who = others.count == 1 ? "rank \(others[0])" : "another rank (one of \(others.map(String.init).joined(separator: ", ")))"
    let detail = (error as? TorchError)?.message ?? "\(what) failed on rank \(rank) of \(worldSize): \(error)"
    return TrainingError("\(detail)\n\(who) stopped or cannot be reached; its own "
                         + "output says why. The last checkpoint is intact: restart all ranks with --auto-resume to continue.")
}
