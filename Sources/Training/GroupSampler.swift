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
