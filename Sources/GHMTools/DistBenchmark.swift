import Foundation
import Support
import Torch
#if canImport(Glibc)
import Glibc
#endif

/// `ghm bench dist`: all-reduce of a gradient-sized list of tensors across local processes, Swift (the shim's c10d
/// Gloo group) vs Python `torch.distributed` (gloo), both started here with torchrun's variables.
public enum DistBenchmark {
    /// The tensor sizes of the benchmark: RetinaNet-like conv weights and biases (3·3·512·512, 512, 3·3·256·256, 256,
    /// repeated), the last one cut so that they sum to `floats`. tools/bench_dist.py makes the same list.
    public static func sizes(floats: Int) -> [Int] {
        let pattern = [2_359_296, 512, 589_824, 256]
        var out: [Int] = [], left = floats, i = 0
        while left > 0 {
            let n = Swift.min(pattern[i % pattern.count], left)
            out.append(n)
            left -= n
            i += 1
        }
        return out
    }

    /// Rank-dependent values: element i of a tensor holds (rank + 1)·(i mod 7 + 1), small integers, so the sums are
    /// exact in every dtype.
    static func filled(_ n: [Int], rank: Int, dtype: DType) throws(TorchError) -> Tensor {
        let numel = n.reduce(1, *)
        return try ((Tensor.arange(numel).remainder(7) + 1) * (rank + 1)).to(dtype).view(n)
    }

    /// The all-reduced value of `filled` over `world` ranks: (i mod 7 + 1)·world·(world + 1)/2.
    static func expectedSum(_ n: [Int], world: Int, dtype: DType) throws(TorchError) -> Tensor {
        let numel = n.reduce(1, *)
        return try ((Tensor.arange(numel).remainder(7) + 1) * (world * (world + 1) / 2)).to(dtype).view(n)
    }

    static func maxAbsDiff(_ a: Tensor, _ b: Tensor) throws(TorchError) -> Double {
        try (a.to(.float64) - b.to(.float64)).abs().max().item()
    }

    /// A free TCP port on the loopback interface (`RankLauncher.freePort`).
    public static func freePort() throws -> Int { try RankLauncher.freePort() }

    /// One finished worker process.
    public struct Worker {
        public let rank: Int
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Starts `world` processes `executable arguments…` with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and
    /// MASTER_PORT set, waits for all of them (killing the rest after `deadline` seconds), returns them by rank.
    public static func launch(_ executable: String, _ arguments: [String], world: Int, port: Int,
                              deadline: Double, extraEnvironment: [String: String] = [:]) throws -> [Worker] {
        var procs: [(Process, Pipe, Pipe)] = []
        let base = ProcessInfo.processInfo.environment.merging(extraEnvironment) { $1 }
        for r in 0..<world {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
            p.environment = base.merging(["RANK": "\(r)", "WORLD_SIZE": "\(world)", "LOCAL_RANK": "\(r)",
                                          "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"]) { $1 }
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            procs.append((p, out, err))
        }
        let end = monotonicSeconds() + deadline
        while procs.contains(where: { $0.0.isRunning }) && monotonicSeconds() < end { usleep(20_000) }
        for (p, _, _) in procs where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        return procs.enumerated().map { r, w in
            w.0.waitUntilExit()
            return Worker(rank: r, status: w.0.terminationStatus,
                          stdout: String(decoding: w.1.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                          stderr: String(decoding: w.2.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
    }

    /// The median milliseconds per all-reduce reported by rank 0 of a finished run, or an error with the workers' output.
    static func rank0Milliseconds(_ workers: [Worker], what: String) throws -> Double {
        for w in workers where w.status != 0 {
            throw ToolError("\(what): rank \(w.rank) exited with status \(w.status): \(w.stderr.suffix(800))")
        }
        let line = workers[0].stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let ms = obj["median_ms"] as? Double, obj["exact"] as? Bool == true else {
            throw ToolError("\(what): unexpected output of rank 0: \(workers[0].stdout.suffix(400))")
        }
        return ms
    }

    /// The whole report: Swift workers (`executable workerArguments…`), then tools/bench_dist.py in .venv.
    public static func report(executable: String, workerArguments: [String], root: String?, floats: Int,
                              iterations: Int, world: Int, timeoutSeconds: Int) throws -> String {
        let deadline = Double(timeoutSeconds) * 2 + Double(iterations) * 10 + 60
        let swift = try rank0Milliseconds(try launch(executable, workerArguments, world: world, port: try freePort(),
                                                     deadline: deadline), what: "Swift workers")
        let n = sizes(floats: floats).count
        var lines = [
            "all-reduce (sum) of \(floats) float32 in \(n) tensors across \(world) local processes, Gloo; "
                + "median of \(iterations) (rank 0)",
            String(format: "  Swift (shim, c10d)        %9.2f ms", swift),
        ]
        guard let root, FileManager.default.isExecutableFile(atPath: root + "/.venv/bin/python") else {
            lines.append("  (Python reference not run: .venv is missing; `make setup` creates it)")
            return lines.joined(separator: "\n")
        }
        let args = [root + "/tools/bench_dist.py", "--floats", "\(floats)", "--iterations", "\(iterations)",
                    "--timeout", "\(timeoutSeconds)"]
        let python = try rank0Milliseconds(try launch(root + "/.venv/bin/python", args, world: world,
                                                      port: try freePort(), deadline: deadline),
                                           what: "tools/bench_dist.py")
        lines.append(String(format: "  Python torch.distributed  %9.2f ms", python))
        lines.append(String(format: "  Swift / Python = %.2f", swift / python))
        return lines.joined(separator: "\n")
    }
}
