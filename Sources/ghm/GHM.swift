import ArgumentParser
import Foundation

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
                      EvalCommand.self, TrainCommand.self, PlotLogCommand.self,
                      DatasetCommand.self,
                      ParityCommand.self, InspectCommand.self, CocoEvalCommand.self, BenchCommand.self]
    )
}
