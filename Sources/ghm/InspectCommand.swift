import ArgumentParser
import Detection
import Foundation
import GHMTools
import Support
import Torch
import TorchCheckpoint

/// `ghm inspect`: what a checkpoint holds (format, meta, tensors, dtypes), its keys, and how they compare with an
/// expected key list.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a checkpoint (.pth zip or legacy, or .safetensors): format, meta, tensors, dtypes.",
        discussion: """
            Reads the file without running any code from it (only tensor-rebuild functions, storage types, \
            OrderedDict, torch.device and a few builtins may appear in a pickle). --keys lists every state-dict key \
            as key<TAB>shape<TAB>dtype (shape like 64x3x7x7, or "scalar") after the summary as '#' lines: the \
            format --against-keys reads, so `ghm inspect A.pth --keys > keys.tsv` makes a key list. \
            Exit code 1 when the file cannot be read (the message names the byte offset, record or key) or when \
            --against-keys finds differences.
            """)

    @Argument(help: ArgumentHelp("The checkpoint file.", valueName: "FILE"))
    var file: String

    @Flag(name: .long, help: "List every state-dict key with its shape and dtype.")
    var keys = false

    @Option(name: .long, help: ArgumentHelp("Where the state dict is (default: state_dict, or the top level).", valueName: "KEY"))
    var stateDictKey = "state_dict"

    @Option(name: .long, help: ArgumentHelp("Compare keys, shapes and dtypes with a key<TAB>shape<TAB>dtype file.",
                                            valueName: "KEYS.tsv"))
    var againstKeys: String?

    @Option(name: .long, help: ArgumentHelp("Compare keys, shapes and dtypes with the model a config builds (the 4 GHM loss buffers may be absent, as mmdet tolerates).", valueName: "CONFIG"))
    var against: String?

    @Flag(name: .long, help: "Time reading the file against Python torch.load (median of --runs), and peak memory.")
    var benchmark = false

    @Option(name: .long, help: ArgumentHelp("Python with torch for --benchmark (default: .venv/bin/python).", valueName: "PATH"))
    var python: String?

    @Option(name: .long, help: "Runs per side for --benchmark.")
    var runs = 5

    @Flag(name: .long, help: .hidden)
    var peakMemory = false

    func run() throws {
        do {
            if benchmark { return try runBenchmark() }
            let ckpt = try Checkpoint.load(file)
            if peakMemory {
                print("peak_rss_bytes \(ProcessMemory.peakResidentBytes() ?? 0)")
                return
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
            let summary = CheckpointReport.summary(ckpt, fileSize: size, stateDictKey: stateDictKey)
            // with --keys the output is a key list file: the summary becomes '#' comment lines
            print(keys ? summary.split(separator: "\n").map { "# " + $0 }.joined(separator: "\n") : summary)
            if keys || againstKeys != nil || against != nil {
                let sd = try ckpt.stateDict(at: stateDictKey)
                if keys { print(try CheckpointReport.keysTSV(sd)) }
                if let againstKeys { try compare(sd, againstKeys) }
                if let against { try compare(sd, config: against) }
            }
        } catch let e as CheckpointError {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        } catch let e as ConfigError {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Keys, shapes and dtypes against the model built from `config`; the GHM loss buffers are optional.
    private func compare(_ sd: StateDict, config: String) throws {
        let model = try RetinaNet(try DetectorConfig.load(path: config))
        let optional = model.optionalKeys
        var expected: [KeyExpectation] = []
        for (key, t) in model.stateDict() where !optional.contains(key) || sd.tensors[key] != nil {
            expected.append(KeyExpectation(key: key, shape: t.shape, dtype: try t.dtype))
        }
        let result = compareKeys(try sd.signatures, expected: expected)
        print(result)
        let absent = optional.filter { sd.tensors[$0] == nil }.sorted()
        if !absent.isEmpty { print("optional keys absent (tolerated, as in mmdet): \(absent.joined(separator: ", "))") }
        if !result.isMatch { throw ExitCode(1) }
    }

    private func compare(_ sd: StateDict, _ tsv: String) throws {
        guard let text = try? String(contentsOfFile: tsv, encoding: .utf8) else {
            throw CheckpointError(.io, "cannot read the key list", file: tsv)
        }
        let expected = try KeyExpectation.parseTSV(text, source: tsv)
        let result = compareKeys(try sd.signatures, expected: expected)
        print(result)
        if !result.isMatch { throw ExitCode(1) }
    }

    private func runBenchmark() throws {
        let py = python ?? FileManager.default.currentDirectoryPath + "/.venv/bin/python"
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let probe = [exe, "inspect", file, "--peak-memory"]
        let report = try CheckpointBenchmark.run(path: file, python: py, runs: runs, memoryProbe: probe)
        print(report)
    }
}
