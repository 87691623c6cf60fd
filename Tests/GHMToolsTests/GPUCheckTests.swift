import Foundation
import TestSupport
import XCTest

/// `tools/gpu_check.sh`: its CPU dry run (`prepare`, then `run --device cpu --quick`) goes through every step the GPU
/// machine runs — the shim rebuilt against the Python's libtorch, the weights regenerated from their seed, parity
/// against MMDetection's reference, the fast paths, bench detect/train against PyTorch eager, a short fp16 `ghm train`.
final class GPUCheckTests: XCTestCase {
    static let script = Repo.path("tools/gpu_check.sh")

    func testUsageErrors() throws {
        let none = try runProcess("/bin/bash", [Self.script])
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stdout.contains("prepare") && none.stdout.contains("run"), none.stdout)
        let bad = try runProcess("/bin/bash", [Self.script, "fly"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("prepare or run"), bad.stderr)
        let device = try runProcess("/bin/bash", [Self.script, "run", "--device", "tpu"])
        XCTAssertEqual(device.status, 2)
        XCTAssertTrue(device.stderr.contains("--device takes cpu, cuda or cuda:N"), device.stderr)
        let help = try runProcess("/bin/bash", [Self.script, "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--quick"))
    }

    func testRunWithoutPreparedDataSaysWhatToDo() throws {
        let dir = try Repo.temporaryDirectory("gpu-check-empty")
        let r = try runProcess("/bin/bash", [Self.script, "run", "--device", "cpu", "--dir", dir, "--quick"],
                               environment: ProcessInfo.processInfo.environment.merging(
                                   ["GPU_CHECK_WORK": dir + "/work"]) { $1 })
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("gpu_check.sh prepare"), r.stderr)
    }

    func testCPUDryRunPassesEveryStep() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Repo.mmdetPython), "needs .venv-mmdet (make mmdet-env)")
        let dir = try Repo.temporaryDirectory("gpu-check")
        var env = ProcessInfo.processInfo.environment
        env["GPU_CHECK_WORK"] = dir + "/work"
        env["GPU_CHECK_NO_BUILD"] = "1"  // `make test` built dist/ already; SwiftPM's lock is held while tests run
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Repo.path("dist/bin/ghm")), "needs dist/ (make build)")
        let prep = try runProcess("/bin/bash", [Self.script, "prepare", "--dir", dir + "/carry", "--no-compress"], environment: env)
        XCTAssertEqual(prep.status, 0, prep.stderr)
        for f in ["bundle/bin/ghm", "bundle/lib/libghm_vision.so", "data/reference.safetensors", "data/batch.safetensors",
                  "data/weights.json", "data/fixture/train.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/carry/" + f), f)
        }
        // the bundle carries no libtorch and no torch shim: both come from the GPU machine
        let libs = try FileManager.default.contentsOfDirectory(atPath: dir + "/carry/bundle/lib")
        XCTAssertFalse(libs.contains { $0.hasPrefix("libtorch") || $0.hasPrefix("libc10") || $0 == "libghm_torch.so" }, "\(libs)")

        let run = try runProcess("/bin/bash", [Self.script, "run", "--device", "cpu", "--dir", dir + "/carry", "--quick",
                                               "--out", dir + "/out"], environment: env)
        let log = (try? String(contentsOfFile: dir + "/out/gpu_check.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(run.status, 0, String(log.suffix(4000)))
        let summary = log.components(separatedBy: "==== summary").last ?? ""
        let steps = summary.split(separator: "\n").filter { $0.hasPrefix("  PASS") || $0.hasPrefix("  FAIL") || $0.hasPrefix("  SKIP") }
        XCTAssertEqual(steps.count, 11, summary)
        XCTAssertTrue(steps.allSatisfy { $0.hasPrefix("  PASS") }, summary)
        // what the steps printed
        XCTAssertTrue(log.range(of: #"parity: (\d+) checked, \1 PASS, 0 FAIL"#, options: .regularExpression) != nil, "parity")
        XCTAssertTrue(log.contains("gradients ("), "the reference's gradients are checked")
        XCTAssertTrue(log.contains("fuse-conv-bn + channels-last + amp bfloat16"), "the fast path report (bf16 on CPU)")
        XCTAssertTrue(log.contains("PyTorch eager  forward"), "bench detect against PyTorch eager")
        XCTAssertTrue(log.contains("ratio Swift / PyTorch time"), "bench train against PyTorch eager")
        XCTAssertTrue(log.contains("mixed precision (fp16 config)"), "ghm train with fp16")
    }
}
