import ArgumentParser
import COCO
import Foundation
import GHMLosses
import Torch

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against the Python reference measured in the same run.",
        subcommands: [BenchLoss.self, BenchCocoEval.self])
}

struct BenchOptions: ParsableArguments {
    @Option(help: "Timed runs (the median is reported).")
    var runs = 7
    @Option(help: "Intra-op threads for both Swift and Python (default: libtorch's choice).")
    var threads: Int?
    @Option(help: "The project folder with tools/ and the Python environments (default: found automatically).")
    var repo: String?
}

struct BenchLoss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "GHM-C + GHM-R (port and fused) vs FocalLoss + L1Loss over the five levels of a 2-image 1333×800 batch.",
        discussion: """
            Forward + backward of the losses on CPU, median of --runs. Also times MMDetection's own GHM and focal \
            losses in .venv-mmdet (skipped with a note when that environment is missing).
            """)

    @OptionGroup var options: BenchOptions

    func run() throws {
        if let t = options.threads { try Torch.setThreads(t) }
        let data = try LossBenchmark.inputs()
        func ghm(_ impl: GHMImplementation) throws -> Double {
            try LossBenchmark.time(cls: GHMC(bins: 30, momentum: 0.75, implementation: impl),
                                   reg: GHMR(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, implementation: impl),
                                   data: data, runs: options.runs)
        }
        let focal = try LossBenchmark.time(cls: FocalLoss(), reg: L1Loss(), data: data, runs: options.runs)
        let fused = try ghm(.fused)
        let port = try ghm(.port)
        print("threads \(Torch.threads), \(options.runs) runs, median seconds per iteration (5 levels, fwd+bwd)")
        print(String(format: "  Swift focal + L1        %8.4f s", focal))
        print(String(format: "  Swift GHM fused         %8.4f s   fused / focal = %.2f", fused, fused / focal))
        print(String(format: "  Swift GHM port          %8.4f s   port  / focal = %.2f", port, port / focal))
        let root = try projectRoot(options.repo)
        let py = root + "/.venv-mmdet/bin/python"
        guard FileManager.default.isExecutableFile(atPath: py) else {
            print("  (MMDetection reference not run: \(py) is missing; `make mmdet-env` creates it)")
            return
        }
        var args = [root + "/tools/bench_loss.py", "--runs", "\(options.runs)"]
        args += ["--threads", "\(options.threads ?? Torch.threads)"]
        let line = try runTool(py, args)
        guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let g = obj["ghm_s"] as? Double, let f = obj["focal_s"] as? Double else {
            throw RuntimeError("unexpected output of tools/bench_loss.py: \(line)")
        }
        print(String(format: "  mmdet focal + L1        %8.4f s", f))
        print(String(format: "  mmdet GHM (bin loop)    %8.4f s   mmdet GHM / focal = %.2f", g, g / f))
        print(String(format: "  Swift fused / mmdet GHM = %.2f", fused / g))
    }
}

struct BenchCocoEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cocoeval",
        abstract: "COCO box evaluation: Swift vs pycocotools (evaluate + accumulate + summarize) on a generated set.",
        discussion: "Generates ≥500 images and ≥20,000 detections with tools/make_coco_fixture.py, then times both.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        let root = try projectRoot(options.repo)
        print(try COCOBenchmark.run(repoRoot: root).description)
    }
}
