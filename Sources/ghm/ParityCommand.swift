import ArgumentParser
import Detection
import Foundation
import GHMTools
import Torch

struct ParityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parity",
        abstract: "Compare the Swift model with a reference written by MMDetection 2.16.0 (tools/mmdet_reference.py).",
        discussion: """
            The model runs on the reference's `input`, so head outputs, detections, losses, GHM state and gradients \
            are each judged on their own; with --image the image is also pre-processed here and detected end to end. \
            One line per checked tensor (max |Δ|, max relative Δ, tolerance, PASS/FAIL), a summary, exit code 1 on \
            any FAIL. Reference entries this command does not know are listed as "not checked". The parity itself \
            always runs the fp32 reference path.

            --fast-paths (or any of --fuse-conv-bn, --channels-last, --amp) then measures each fast inference path \
            against the fp32 path on the --image files: the head outputs' largest relative difference and the \
            detections matched by label and IoU ≥ 0.9 (count, score and box differences). --fast-paths measures \
            fuse-conv-bn, channels-last, amp bf16 and their combinations; the flags measure the one combination given. \
            Without --image they are measured on the reference's own input (no image decoding).

            TensorFloat-32 is turned off for the whole run (torch.backends.cudnn.allow_tf32 = False and \
            torch.backends.cuda.matmul.allow_tf32 = False), so on CUDA the comparison is in fp32.

            Example:
              .venv-mmdet/bin/python tools/mmdet_reference.py --image img.png --out-checkpoint ref.pth \\
                  --out-reference ref.safetensors
              ghm parity --config configs/retinanet_ghm_r50_fpn_1x_coco.yml --checkpoint ref.pth \\
                  --reference ref.safetensors --image img.png
            """)

    @OptionGroup var model: ModelOptions

    @Option(help: "The reference tensors (safetensors) written by tools/mmdet_reference.py.")
    var reference: String

    @Option(name: .customLong("image"), help: "The reference's image file(s), in batch order, to check pre-processing and end-to-end detection.")
    var images: [String] = []

    @Flag(help: "Also measure every fast inference path against the fp32 path on the --image files.")
    var fastPaths = false

    func run() throws {
        try reportingErrors {
            let chosen = try model.fast.mode()
            Torch.allowTF32 = (cudnn: false, cublas: false)
            let detector = try model.makeDetector(mode: .reference)
            let runner = try ParityRunner(detector: detector, referencePath: reference)
            print("parity of \(model.checkpoint) against \(reference)")
            runner.log = { line in
                print(line.text)
                fflush(stdout)
            }
            let report = try runner.run(images: images)
            print(report.summary)
            if fastPaths || !chosen.isReference {
                let modes = fastPaths ? FastPathReport.standardModes : [chosen]
                let make = { try model.makeDetector(mode: .reference) }
                let lines: [FastPathReport.Line]
                if images.isEmpty {
                    print("fast inference paths against the fp32 path (the reference's input):")
                    lines = try FastPathReport.run(reference: detector, makeDetector: make,
                                                   inputs: [try runner.referenceInput()], modes: modes)
                } else {
                    print("fast inference paths against the fp32 path (\(images.count) image(s)):")
                    lines = try FastPathReport.run(reference: detector, makeDetector: make, images: images, modes: modes)
                }
                for line in lines { print(line) }
            }
            if !report.passed { throw ExitCode(1) }
        }
    }
}
