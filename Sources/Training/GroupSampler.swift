import Torch

/// mmdet's `GroupSampler` (`mmdet/datasets/samplers/group_sampler.py`): images are grouped by aspect ratio
/// (`flag` 1 when w > h), each group is shuffled and padded to a multiple of `samplesPerGPU` with random members,
/// the groups are concatenated (flag 0 first) and the batches' order is permuted. All draws come from the numpy
/// legacy stream, in mmdet's order, so a seed gives mmdet's order.
public struct GroupSampler: Sendable {
    public let flags: [Int]
    public let samplesPerGPU: Int

    public init(flags: [Int], samplesPerGPU: Int) {
        self.flags = flags
        self.samplesPerGPU = samplesPerGPU
    }

    /// Images per aspect-ratio group (`np.bincount(flags)`).
    public var groupSizes: [Int] {
        let n = (flags.max() ?? -1) + 1
        var sizes = [Int](repeating: 0, count: Swift.max(n, 0))
        for f in flags { sizes[f] += 1 }
        return sizes
    }

    /// Samples per epoch: each group rounded up to a multiple of `samplesPerGPU`.
    public var numSamples: Int {
        groupSizes.reduce(0) { $0 + ($1 + samplesPerGPU - 1) / samplesPerGPU * samplesPerGPU }
    }

    public var batchesPerEpoch: Int { numSamples / samplesPerGPU }

    /// One epoch's dataset indices in yield order (`__iter__`), drawing from `rng`.
    public func epochOrder(_ rng: inout LegacyRandom) -> [Int] {
        var indices: [Int] = []
        for (g, size) in groupSizes.enumerated() where size > 0 {
            var members = flags.indices.filter { flags[$0] == g }
            rng.shuffle(&members)
            let extra = (size + samplesPerGPU - 1) / samplesPerGPU * samplesPerGPU - size
            if extra > 0 { members += rng.choice(members, count: extra) }
            indices += members
        }
        let perm = rng.permutation(indices.count / samplesPerGPU)
        return perm.flatMap { b in indices[(b * samplesPerGPU)..<((b + 1) * samplesPerGPU)] }
    }
}

/// mmdet's `DistributedGroupSampler`: every rank draws the same permutations from a torch generator seeded
/// `seed + epoch` (`torch.randperm(…, generator=g)`), pads each aspect-ratio group with its own members in order to a
/// multiple of `samplesPerGPU × numReplicas`, permutes the batches, and takes its contiguous share
/// (`numSamples` indices from `numSamples × rank`). The order equals mmdet's for the same seed and epoch.
public struct DistributedGroupSampler: Sendable {
    public let flags: [Int]
    public let samplesPerGPU: Int
    public let numReplicas: Int
    public let rank: Int
    public let seed: Int

    public init(flags: [Int], samplesPerGPU: Int, numReplicas: Int, rank: Int, seed: Int) {
        precondition(samplesPerGPU > 0 && numReplicas > 0 && (0..<numReplicas).contains(rank), "invalid sampler geometry")
        self.flags = flags
        self.samplesPerGPU = samplesPerGPU
        self.numReplicas = numReplicas
        self.rank = rank
        self.seed = seed
    }

    public var groupSizes: [Int] { GroupSampler(flags: flags, samplesPerGPU: samplesPerGPU).groupSizes }

    /// Group size rounded up to whole batches on every rank.
    func padded(_ size: Int) -> Int {
        let unit = samplesPerGPU * numReplicas
        return (size + unit - 1) / unit * unit
    }

    /// Indices per rank and epoch.
    public var numSamples: Int { groupSizes.reduce(0) { $0 + padded($1) / numReplicas } }
    public var totalSize: Int { numSamples * numReplicas }
    public var batchesPerEpoch: Int { numSamples / samplesPerGPU }

    /// This rank's indices for `epoch` (0-based, mmcv's `DistSamplerSeedHook` → `set_epoch(runner.epoch)`).
    public func epochOrder(epoch: Int) throws -> [Int] {
        let sizes = groupSizes
        let present = sizes.enumerated().filter { $0.element > 0 }
        var indices: [Int] = []
        // one generator: a permutation per non-empty group, then the batch permutation (drawn after the padding,
        // whose length it needs: every count is known up front, so all draws come in one call, in mmdet's order)
        let batches = present.reduce(0) { $0 + padded($1.element) } / samplesPerGPU
        let perms = try Tensor.randperms(present.map(\.element) + [batches], seed: UInt64(truncatingIfNeeded: seed + epoch))
        for (k, (g, size)) in present.enumerated() {
            let members = flags.indices.filter { flags[$0] == g }
            let once = try perms[k].int64s().map { members[Int($0)] }
            var group = once
            let extra = padded(size) - size
            for _ in 0..<(extra / size) { group += once }
            group += once.prefix(extra % size)
            indices += group
        }
        precondition(indices.count == totalSize)
        let ordered = try perms[present.count].int64s().flatMap { b in
            indices[(Int(b) * samplesPerGPU)..<((Int(b) + 1) * samplesPerGPU)]
        }
        let offset = numSamples * rank
        return Array(ordered[offset..<(offset + numSamples)])
    }
}
