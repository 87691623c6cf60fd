import Foundation
import TestSupport
import Torch
import XCTest
@testable import Detection
@testable import GHMTools

/// Parity with MMDetection 2.16.0 itself: `tools/mmdet_reference.py` (in .venv-mmdet, made by `make mmdet-env`)
/// writes a checkpoint in the legacy format and reference tensors for a synthetic image; the Swift model must PASS
/// every check of `ghm parity` (inference, pre-processing, end to end, targets, losses, GHM state, gradients), at a
/// small scale (416×320), at the full 1333×800 scale, and for a 2-image batch. Missing mmdet environment = failure.
final class ParityTests: XCTestCase {
    static let work = Repo.path(".build/parity-work")

    /// Generates (or reuses, keyed by the reference script's contents and the arguments) a reference.
    static func reference(name: String, image: String, args: [String]) throws -> (checkpoint: String, reference: String) {
        let fm = FileManager.default
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        let script = Repo.path("tools/mmdet_reference.py")
        let stamp = "\(work)/\(name).stamp"
        let ckpt = "\(work)/\(name).pth", ref = "\(work)/\(name).safetensors"
        let digest = try runProcess("/usr/bin/sha256sum", [script]).stdout.prefix(64) + " " + args.joined(separator: " ") + " " + image
        if (try? String(contentsOfFile: stamp, encoding: .utf8)) == String(digest), fm.fileExists(atPath: ckpt), fm.fileExists(atPath: ref) {
            return (ckpt, ref)
        }
        guard fm.isExecutableFile(atPath: Repo.mmdetPython) else {
            throw ProcessFailure(command: Repo.mmdetPython, status: -1,
                                 stderr: "the MMDetection environment is missing: run `make mmdet-env` (tools/mmdet_env.sh)")
        }
        let r = try runProcess(Repo.mmdetPython, [script, "--image", image, "--out-checkpoint", ckpt,
                                                  "--out-reference", ref] + args)
        guard r.status == 0 else { throw ProcessFailure(command: "mmdet_reference.py", status: r.status, stderr: r.stderr + r.stdout) }
        try String(digest).write(toFile: stamp, atomically: true, encoding: .utf8)
        return (ckpt, ref)
    }

    static func images() throws -> String {
        let dir = work + "/images"
        if !FileManager.default.fileExists(atPath: dir + "/synthetic_640x480_s0.png") {
            let r = try runProcess(Repo.mmdetPython, [Repo.path("tools/make_test_images.py"), "--out", dir,
                                                      "--size", "640x480", "--size", "300x230", "--size", "500x420"])
            guard r.status == 0 else { throw ProcessFailure(command: "make_test_images.py", status: r.status, stderr: r.stderr) }
        }
        return dir
    }

    func runParity(name: String, imageNames: [String], scale: [Int]?, extra: [String] = []) throws {
        let dir = try Self.images()
        let imgs = imageNames.map { "\(dir)/\($0)" }
        var args = extra
        if let scale { args += ["--img-scale", "\(scale[0])", "\(scale[1])"] }
        if imgs.count > 1 { args += ["--batch", "2", "--image2", imgs[1]] }
        let (ckpt, ref) = try Self.reference(name: name, image: imgs[0], args: args)
        var overrides: [String] = []
        if let scale { overrides.append("test_pipeline.1.img_scale=[\(scale[0]), \(scale[1])]") }
        let config = try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml"), overrides: overrides)
        let detector = try Detector(config: config, checkpoint: ckpt)
        let runner = try ParityRunner(detector: detector, referencePath: ref)
        let report = try runner.run(images: imgs)
        print(report.lines.map(\.text).joined(separator: "\n"))
        print(report.summary)
        for line in report.failures { XCTFail(line.text) }
        XCTAssertTrue(report.passed, report.summary)
        // Every kind of entry was checked: inference, pre-processing, end to end, targets, losses, GHM, gradients.
        let names = report.checked.map(\.name)
        for needed in ["cls_score.4", "bbox_pred.0", "resized_uint8_bgr", "input (from image)", "detections (end to end) boxes",
                       "targets.labels.0", "loss", "iter2.loss", "ghmc.acc_sum.iter2", "ghmr.acc_sum.iter1"] {
            XCTAssertTrue(names.contains(needed), "\(needed) was not checked")
        }
        XCTAssertTrue(names.contains { $0.hasPrefix("gradients (") })
    }

    func testParitySmallScale() throws {
        try runParity(name: "small", imageNames: ["synthetic_300x230_s0.png"], scale: [416, 320])
    }

    func testParityFullScale() throws {
        try runParity(name: "full", imageNames: ["synthetic_640x480_s0.png"], scale: nil)
    }

    func testParityBatchOfTwo() throws {
        try runParity(name: "batch2", imageNames: ["synthetic_300x230_s0.png", "synthetic_500x420_s0.png"], scale: [416, 320])
    }

    /// `ghm parity --fast-paths`' measurements at 416×320 on the small reference's weights: the fp32 fast paths
    /// (fused conv-BN, channels-last) stay within 1e-4 of the fp32 path's head outputs, scores within 1e-3, all but
    /// at most 2 detections matched; bf16 autocast is measured too (its head outputs really differ, and the report says by how much).
    func testFastPathReport() throws {
        let dir = try Self.images()
        let image = "\(dir)/synthetic_300x230_s0.png"
        let (ckpt, _) = try Self.reference(name: "small", image: image, args: ["--img-scale", "416", "320"])
        let config = try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml"),
                                             overrides: ["test_pipeline.1.img_scale=[416, 320]"])
        let reference = try Detector(config: config, checkpoint: ckpt)
        let lines = try FastPathReport.run(reference: reference, makeDetector: { try Detector(config: config, checkpoint: ckpt) },
                                           images: [image], modes: FastPathReport.standardModes)
        for line in lines { print(line) }
        XCTAssertEqual(lines.count, 5)
        for line in lines where line.mode.autocast == nil {
            XCTAssertLessThanOrEqual(line.headRelative, 1e-4, "\(line)")
            XCTAssertGreaterThanOrEqual(line.agreement.matched, line.agreement.referenceCount - 2, "\(line)")
            XCTAssertLessThan(line.agreement.maxScoreDifference, 1e-3, "\(line)")
        }
        for line in lines where line.mode.autocast != nil { XCTAssertGreaterThan(line.headRelative, 1e-3, "\(line)") }
        XCTAssertThrowsError(try FastPathReport.run(reference: reference, makeDetector: { reference }, images: [], modes: []))
    }

    /// A reference the model cannot match (a perturbed weight) fails, and says where.
    func testParityDetectsADifference() throws {
        let dir = try Self.images()
        let (ckpt, ref) = try Self.reference(name: "small", image: "\(dir)/synthetic_300x230_s0.png", args: ["--img-scale", "416", "320"])
        let config = try DetectorConfig.load(path: Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml"),
                                             overrides: ["test_pipeline.1.img_scale=[416, 320]"])
        let detector = try Detector(config: config, checkpoint: ckpt)
        let bias = try XCTUnwrap(detector.model.namedParameters().first { $0.key == "bbox_head.retina_reg.bias" }?.tensor)
        try withNoGrad { () throws(TorchError) in try bias.add_(1e-3) }
        let report = try ParityRunner(detector: detector, referencePath: ref).run(images: [])
        XCTAssertFalse(report.passed)
        XCTAssertTrue(report.failures.contains { $0.name.hasPrefix("bbox_pred.") }, report.summary)
        XCTAssertFalse(report.failures.contains { $0.name.hasPrefix("cls_score.") }, "classification is untouched")
    }
}
