import ArgumentParser
import Foundation
import Imaging
import Support
import Training

/// `ghm plot-log`: training curves from log.json files, as mmdet's `tools/analyze_logs.py plot_curve`.
struct PlotLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot-log",
        abstract: "Draw the loss and AP curves of a training log (mmdet-format log.json) into a PNG.",
        discussion: """
            Reads <timestamp>.log.json as written by ghm train (or MMDetection's own runs): the train lines' losses \
            against epochs (iteration i of an epoch at epoch - 1 + i / iterations of that epoch) in the top panel, \
            and, when the log has validation lines, their AP keys on the same axis below. With several logs (a run \
            resumed into another work dir), their lines are joined in order. The PNG is written under a temporary \
            name and renamed.

            Example:
              ghm plot-log work_dirs/trees/20261202_101500.log.json --out curves.png \\
                  --keys loss_cls,loss_bbox,loss --val-keys bbox_mAP,bbox_mAP_50
            """)

    @Argument(help: ArgumentHelp("log.json file(s).", valueName: "LOG"))
    var logs: [String]

    @Option(name: .long, help: ArgumentHelp("Output PNG.", valueName: "FILE"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Train keys, comma-separated.", valueName: "K,…"))
    var keys = "loss_cls,loss_bbox,loss"

    @Option(name: .long, help: ArgumentHelp("Validation keys, comma-separated (drawn when the log has val lines).", valueName: "K,…"))
    var valKeys = "bbox_mAP,bbox_mAP_50"

    @Option(name: .long, help: "Title (default: the log's folder name).")
    var title: String?

    func validate() throws {
        guard !logs.isEmpty else { throw ValidationError("give at least one log.json") }
    }

    func run() throws {
        try reportingErrors {
            var curves = try TrainCurves(path: logs[0])
            for other in logs.dropFirst() { curves.records += try TrainCurves(path: other).records }
            func list(_ s: String) -> [String] { s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            let name = title ?? URL(fileURLWithPath: logs[0]).deletingLastPathComponent().lastPathComponent
            let image = try curves.render(trainKeys: list(keys), valKeys: list(valKeys), title: name)
            try Files.writeAtomically(PNGEncoder.encode(image), to: out)
            let train = curves.records.filter { $0.mode == "train" }.count, val = curves.records.filter { $0.mode == "val" }.count
            print("wrote \(out) (\(image.width)x\(image.height)): \(train) train lines, \(val) val lines")
        }
    }
}
