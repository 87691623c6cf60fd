import Foundation
import Support
import Torch

/// What one process of `ghm bench dist` does (its hidden worker mode), after joining the group.
public enum DistWorker {
    /// All-reduces the benchmark's tensors once and checks the sums exactly, then times `iterations` all-reduces
    /// (after one untimed). Returns one JSON line: `{"rank", "median_ms", "exact", "tensors", "floats"}`.
    public static func bench(_ g: ProcessGroup, floats: Int, iterations: Int) throws -> String {
        let shapes = DistBenchmark.sizes(floats: floats).map { [$0] }
        let ts = try shapes.map { s throws(TorchError) in try DistBenchmark.filled(s, rank: g.rank, dtype: .float32) }
        try g.allReduceSum(ts)
        for (i, (t, s)) in zip(ts, shapes).enumerated() {
            let d = try DistBenchmark.maxAbsDiff(t, DistBenchmark.expectedSum(s, world: g.worldSize, dtype: .float32))
            if d != 0 { throw ToolError("rank \(g.rank): tensor \(i) of the all-reduce is off by \(d)") }
        }
        try g.barrier()
        let times = try Statistics.time(warmup: 1, runs: iterations) { try g.allReduceSum(ts) }
        let ms = Statistics.median(times) * 1000
        return "{\"rank\": \(g.rank), \"median_ms\": \(ms), \"exact\": true, \"tensors\": \(ts.count), \"floats\": \(floats)}"
    }

    /// Checks every collective exactly on several shapes and dtypes (float32, float64, int64): the sum, the mean
    /// (floating point), a broadcast from the last rank, a barrier. Returns a line per check; throws on any mismatch.
    public static func verify(_ g: ProcessGroup) throws -> [String] {
        let specs: [([Int], DType)] = [([3, 4], .float32), ([5], .int64), ([2, 3, 2], .float64), ([1000], .float32),
                                       ([7], .int64), ([], .float32)]
        var lines: [String] = []
        func make() throws(TorchError) -> [Tensor] {
            try specs.map { s throws(TorchError) in try DistBenchmark.filled(s.0, rank: g.rank, dtype: s.1) }
        }
        func expectEqual(_ got: [Tensor], _ want: (Int) throws -> Tensor, _ what: String) throws {
            for (i, t) in got.enumerated() {
                let d = try DistBenchmark.maxAbsDiff(t, want(i))
                if d != 0 { throw ToolError("rank \(g.rank): \(what) of tensor \(i) (\(specs[i].1)) is off by \(d)") }
            }
            lines.append("\(what): \(got.count) tensors exact")
        }
        let sum = try make()
        try g.allReduceSum(sum)
        try expectEqual(sum, { try DistBenchmark.expectedSum(specs[$0].0, world: g.worldSize, dtype: specs[$0].1) },
                        "all_reduce sum")
        let floats = try make().enumerated().filter { specs[$0.offset].1.isFloatingPoint }
        try g.allReduceMean(floats.map(\.element))
        try expectEqual(floats.map(\.element), { i throws in
            let k = floats[i].offset
            return try DistBenchmark.expectedSum(specs[k].0, world: g.worldSize, dtype: .float64) / Double(g.worldSize)
        }, "all_reduce mean")
        let root = g.worldSize - 1
        let b = try make()
        try g.broadcast(b, root: root)
        try expectEqual(b, { try DistBenchmark.filled(specs[$0].0, rank: root, dtype: specs[$0].1) },
                        "broadcast from rank \(root)")
        try g.barrier()
        lines.append("barrier: passed")
        return lines
    }
}
