import Foundation
import TestSupport
import Training
import XCTest

/// The numpy legacy stream and mmdet's GroupSampler + RandomFlip draws against numpy itself (the project venv's).
final class SamplerTests: XCTestCase {
    func testLegacyRandomMatchesNumpy() throws {
        let out = try python("""
            import numpy as np
            r = np.random.RandomState(12345)
            out['words'] = [int(x) for x in r.randint(0, 2**32, size=1300, dtype=np.uint32)]
            r = np.random.RandomState(7)
            out['samples'] = torch.tensor([r.random_sample() for _ in range(5)], dtype=torch.float64)
            a = np.arange(17); r.shuffle(a); out['shuffle'] = a.tolist()
            out['perm'] = r.permutation(9).tolist()
            out['randint'] = r.randint(0, 13, size=6).tolist()
            out['after'] = torch.tensor([r.random_sample()], dtype=torch.float64)
            """)
        var rng = LegacyRandom(seed: 12345)
        XCTAssertEqual((0..<1300).map { _ in Int(rng.next32()) }, out["words"] as? [Int])
        rng = LegacyRandom(seed: 7)
        XCTAssertEqual((0..<5).map { _ in rng.randomSample() }, PyTensor(out["samples"])?.data, "exact doubles")
        var a = Array(0..<17)
        rng.shuffle(&a)
        XCTAssertEqual(a, out["shuffle"] as? [Int])
        XCTAssertEqual(rng.permutation(9), out["perm"] as? [Int])
        XCTAssertEqual(rng.randint(below: 13, count: 6), out["randint"] as? [Int])
        XCTAssertEqual([rng.randomSample()], PyTensor(out["after"])?.data)
    }

    /// mmdet's own GroupSampler and RandomFlip draw sequence, run with numpy for several seeds, sizes, group mixes
    /// and batch sizes, two epochs each (the second continues the stream).
    func testGroupSamplerAndFlipsMatchMMDetection() throws {
        let cases: [(flags: [Int], spg: Int, seed: Int, ratio: Double)] = [
            ([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1], 2, 0, 0.5),
            ([1, 1, 1, 1, 1], 2, 42, 0.5),
            ([0, 0, 0, 1], 3, 7, 0.3),
            (Array(repeating: 0, count: 11) + Array(repeating: 1, count: 30), 4, 2026, 0.5),
            ([1], 2, 3, 1.0),
            ([0, 1, 0, 1, 1, 1, 0], 1, 99, 0.0),
        ]
        let json = try String(data: JSONSerialization.data(withJSONObject: cases.map {
            ["flags": $0.flags, "spg": $0.spg, "seed": $0.seed, "ratio": $0.ratio] as [String: Any] }), encoding: .utf8)!
        let out = try mmdetPython("""
            import json, numpy as np
            from mmdet.datasets.samplers import GroupSampler
            from mmdet.datasets.pipelines import RandomFlip
            class DS:
                def __init__(self, flags): self.flag = np.array(flags, dtype=np.uint8)
                def __len__(self): return len(self.flag)
            res = []
            for c in json.loads('\(json)'):
                np.random.seed(c['seed'])
                s = GroupSampler(DS(c['flags']), c['spg'])
                flip = RandomFlip(flip_ratio=float(c['ratio']))
                epochs = []
                for e in range(2):
                    order = [int(i) for i in s]
                    flips = []
                    for _ in order:
                        r = flip({'img': np.zeros((2, 2, 3), np.uint8), 'img_fields': ['img'], 'bbox_fields': []})
                        flips.append(bool(r['flip']))
                    epochs.append({'order': order, 'flips': flips})
                res.append(epochs)
            out['cases'] = res
            """)
        let expected = try XCTUnwrap(out["cases"] as? [[[String: Any]]])
        for (c, want) in zip(cases, expected) {
            let sampler = GroupSampler(flags: c.flags, samplesPerGPU: c.spg)
            var rng = LegacyRandom(seed: UInt32(c.seed))
            for e in 0..<2 {
                let order = sampler.epochOrder(&rng)
                let flips = order.map { _ in rng.flipDraw(ratio: c.ratio) }
                XCTAssertEqual(order, want[e]["order"] as? [Int], "order, case \(c), epoch \(e)")
                XCTAssertEqual(flips, want[e]["flips"] as? [Bool], "flips, case \(c), epoch \(e)")
                XCTAssertEqual(order.count, sampler.numSamples)
            }
        }
    }

    /// mmdet's DistributedGroupSampler (torch generator seeded seed + epoch) for several geometries, seeds, ranks
    /// and epochs: every rank's order and length equal to mmdet's.
    func testDistributedGroupSamplerMatchesMMDetection() throws {
        let cases: [(flags: [Int], spg: Int, replicas: Int, seed: Int)] = [
            ([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1], 2, 2, 0),
            ([1, 1, 1, 1, 1], 2, 2, 42),
            ([0, 0, 0, 1], 3, 4, 7),
            (Array(repeating: 0, count: 11) + Array(repeating: 1, count: 30), 2, 8, 2026),
            ([1], 2, 3, 3),
            ([0, 1, 0, 1, 1, 1, 0], 1, 2, 99),
        ]
        let json = try String(data: JSONSerialization.data(withJSONObject: cases.map {
            ["flags": $0.flags, "spg": $0.spg, "replicas": $0.replicas, "seed": $0.seed] as [String: Any] }), encoding: .utf8)!
        let out = try mmdetPython("""
            import json, numpy as np
            from mmdet.datasets.samplers import DistributedGroupSampler
            class DS:
                def __init__(self, flags): self.flag = np.array(flags, dtype=np.uint8)
                def __len__(self): return len(self.flag)
            res = []
            for c in json.loads('\(json)'):
                ranks = []
                for r in range(c['replicas']):
                    s = DistributedGroupSampler(DS(c['flags']), c['spg'], num_replicas=c['replicas'], rank=r, seed=c['seed'])
                    epochs = []
                    for e in range(3):
                        s.set_epoch(e)
                        epochs.append([int(i) for i in s])
                    ranks.append(epochs)
                res.append(ranks)
            out['cases'] = res
            """)
        let expected = try XCTUnwrap(out["cases"] as? [[[[Int]]]])
        XCTAssertEqual(expected.count, cases.count)
        for (c, want) in zip(cases, expected) {
            for rank in 0..<c.replicas {
                let sampler = DistributedGroupSampler(flags: c.flags, samplesPerGPU: c.spg, numReplicas: c.replicas,
                                                      rank: rank, seed: c.seed)
                for e in 0..<3 {
                    let order = try sampler.epochOrder(epoch: e)
                    XCTAssertEqual(order, want[rank][e], "case \(c), rank \(rank), epoch \(e)")
                    XCTAssertEqual(order.count, sampler.numSamples)
                }
            }
        }
    }
}
