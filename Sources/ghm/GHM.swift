import ArgumentParser
import Foundation
import Torch

@main
struct GHM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ghm",
        abstract: "GHM object detector (RetinaNet-R50-FPN with GHM-C and GHM-R losses) on libtorch.",
        discussion: """
            A Swift reproduction of MMDetection v2.16.0's retinanet_ghm_r50_fpn_1x_coco. Each subcommand has its own \
            --help. Exit codes: 0 success, 1 failure (a message on stderr names the file, key or item at fault), \
            64 usage error.
            """,
        subcommands: [InfoCommand.self, DetectCommand.self,
                      InferCommand.self,
                      EvalCommand.self,
                      ParityCommand.self, InspectCommand.self, CocoEvalCommand.self, BenchCommand.self]
    )

    /// Process set-up before any command: the caching CPU allocator (GHM_CPU_ALLOCATOR=default turns it off;
    /// GHM_CPU_CACHE_MB sets its limit, default a quarter of the memory, at most 4 GiB).
    static func main() {
        let env = ProcessInfo.processInfo.environment
        if env["GHM_CPU_ALLOCATOR"] != "default" {
            let quarter = Int(ProcessInfo.processInfo.physicalMemory / 4)
            let limit = env["GHM_CPU_CACHE_MB"].flatMap(Int.init).map { $0 << 20 } ?? Swift.min(quarter, 4 << 30)
            try? Torch.enableCachingAllocator(limitBytes: limit)
        }
        main(nil)
    }
}
