import Detection
import Foundation
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// Whole training runs: the trajectory against MMDetection's own loop, resume, signals, failures.
final class TrainRunTests: XCTestCase {
    /// 24 iterations over 2 epochs (warmup ends at iteration 10, lr × 0.1 at epoch 2, both aspect groups, flips on)
    /// from the same start checkpoint, seed and thread count as MMDetection 2.16.0's run: tools/compare_train.py
    /// must pass every check at 1e-4 (lr exactly; losses, grad norm, weights, GHM buffers).
    func testTrajectoryMatchesMMDetection() throws {
        let ref = try TrainFixture.mmdetRun(), swift = try TrainFixture.swiftRun()
        let r = try runProcess(Repo.mmdetPython, [Repo.path("tools/compare_train.py"), swift, ref, "--rtol", "1e-4"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("RESULT: PASS (9/9"), r.stdout)
        for quantity in ["loss_cls", "loss_bbox", "loss", "grad_norm"] {
            XCTAssertTrue(r.stdout.contains("PASS \(quantity.padding(toLength: 15, withPad: " ", startingAt: 0))"), "\(quantity): \(r.stdout)")
        }
        // the log.json: meta line, 24 train lines with mmdet's keys, one val line per epoch with bbox_mAP keys
        let lines = try TrainFixture.logLines(swift)
        XCTAssertNotNil(lines[0]["config"])
        let train = lines.filter { $0["mode"] as? String == "train" }
        XCTAssertEqual(train.count, 24)
        XCTAssertEqual(Set(train[0].keys), ["mode", "epoch", "iter", "lr", "data_time", "loss_cls", "loss_bbox", "loss", "grad_norm", "time"])
        let val = lines.filter { $0["mode"] as? String == "val" }
        XCTAssertEqual(val.map { $0["epoch"] as? Int }, [1, 2])
        for v in val { for k in COCOMetricsNames.all { XCTAssertNotNil(v[k], k) } }
        XCTAssertTrue(FileManager.default.fileExists(atPath: swift + "/retinanet_ghm_r50_fpn_1x_coco.yml"))
    }

    /// A run stopped after iteration 5 (mid epoch 1) and resumed with --auto-resume ends bit-identical to the
    /// uninterrupted run: weights, GHM buffers, SGD momentum, and the losses of every later iteration.
    func testResumeMidEpochIsBitIdentical() throws {
        let ref = try TrainFixture.mmdetRun(), full = try TrainFixture.swiftRun(), fx = try TrainFixture.data()
        let w = TrainFixture.work + "/resume"
        try? FileManager.default.removeItem(atPath: w)
        let first = try TrainFixture.train(workDir: w, overrides: TrainFixture.overrides(fx), loadFrom: ref + "/load_from.pth") {
            $0.stopAfterIterations = 5
        }
        XCTAssertEqual(first.status, .stoppedAfter(iterations: 5))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth"), "iter_5.pth")
        let second = try TrainFixture.train(workDir: w, overrides: TrainFixture.overrides(fx), loadFrom: nil) { $0.autoResume = true }
        XCTAssertEqual(second.status, .finished)
        XCTAssertEqual(second.iterations, 24)
        try TrainFixture.assertIdentical(w + "/epoch_2.pth", full + "/epoch_2.pth")
        let a = try TrainFixture.logLines(w).filter { $0["mode"] as? String == "train" }
        let b = try TrainFixture.logLines(full).filter { $0["mode"] as? String == "train" }
        XCTAssertEqual(a.count, 24)
        for (x, y) in zip(a, b) {
            for k in ["lr", "loss_cls", "loss_bbox", "loss", "grad_norm"] {
                XCTAssertEqual(x[k] as? Double, y[k] as? Double, "\(k) at epoch \(x["epoch"] ?? "?") iter \(x["iter"] ?? "?")")
            }
        }
    }

    /// `ghm train` (the binary) gets SIGTERM during epoch 1: it saves iter_N.pth, exits 143; `--auto-resume` then
    /// finishes the epoch bit-identical to the uninterrupted run's epoch_1.pth.
    func testSigtermThenAutoResumeFinishesIdentical() throws {
        let ref = try TrainFixture.mmdetRun(), full = try TrainFixture.swiftRun(), fx = try TrainFixture.data()
        let ghm = Repo.path(".build/debug/ghm")
        guard FileManager.default.isExecutableFile(atPath: ghm) else { throw XCTSkip("build the ghm binary first (make build)") }
        let w = TrainFixture.work + "/sigterm"
        try? FileManager.default.removeItem(atPath: w)
        var args = ["train", "--config", TrainFixture.config, "--work-dir", w, "--seed", "0", "--threads", "2", "--no-validate",
                    "--load-from", ref + "/load_from.pth"]
        for o in TrainFixture.overrides(fx, epochs: 1) { args += ["--set", o] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ghm)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        // wait for the 3rd iteration's log line, then SIGTERM
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline && p.isRunning {
            let n = (try? TrainFixture.logLines(w).filter { $0["mode"] as? String == "train" }.count) ?? 0
            if n >= 3 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        p.terminate()
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 143, stderr)
        let latest = try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth")
        XCTAssertTrue(latest.hasPrefix("iter_"), latest)
        XCTAssertTrue(stderr.contains("--auto-resume"), stderr)
        let r = try runProcess(ghm, args + ["--auto-resume"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("12 iterations"), r.stdout)
        try TrainFixture.assertIdentical(w + "/epoch_1.pth", full + "/epoch_1.pth")
    }

    /// Checkpoints load with torch.load(weights_only=True) and mmcv's load_checkpoint and runner.resume; mmdet's
    /// analyze_logs.py plot_curve reads the log.json.
    func testCheckpointsLoadInPyTorchAndMMCV() throws {
        let swift = try TrainFixture.swiftRun()
        let out = try mmdetPython("""
            import torch, logging, contextlib
            _quiet = contextlib.redirect_stdout(sys.stderr); _quiet.__enter__()  # mmcv prints to stdout
            ck = torch.load(\(String(reflecting: swift + "/latest.pth")), weights_only=True)
            out['meta'] = sorted(ck['meta'].keys())
            out['epoch'] = ck['meta']['epoch']; out['iter'] = ck['meta']['iter']
            out['classes'] = list(ck['meta']['CLASSES'])
            out['keys'] = len(ck['state_dict']); out['buffers'] = len(ck['optimizer']['state'])
            from mmcv import Config
            from mmcv.runner import load_checkpoint, EpochBasedRunner
            from mmdet.models import build_detector
            cfg = Config.fromstring(ck['meta']['config'], file_format='.py')
            model = build_detector(cfg.model)
            load_checkpoint(model, \(String(reflecting: swift + "/epoch_2.pth")), map_location='cpu', strict=True)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
            r = EpochBasedRunner(model, optimizer=opt, work_dir=\(String(reflecting: TrainFixture.work + "/mmcv-resume")),
                                 logger=logging.getLogger('t'), max_epochs=3)
            r.resume(\(String(reflecting: swift + "/epoch_2.pth")), map_location='cpu')
            out['resumed'] = [r.epoch, r.iter, opt.param_groups[0]['lr']]
            out['same'] = bool(torch.equal(model.state_dict()['bbox_head.loss_cls.acc_sum'], ck['state_dict']['bbox_head.loss_cls.acc_sum']))
            # mmdet's tools/analysis_tools/analyze_logs.py reads the log.json (seaborn, only styling, is not installed)
            import glob, importlib.util, os, types, mmdet, matplotlib
            matplotlib.use('Agg')
            sys.modules.setdefault('seaborn', types.SimpleNamespace(set_style=lambda *a, **k: None))
            spec = importlib.util.spec_from_file_location('analyze_logs', os.path.join(os.path.dirname(mmdet.__file__),
                                                          '.mim/tools/analysis_tools/analyze_logs.py'))
            al = importlib.util.module_from_spec(spec); spec.loader.exec_module(al)
            log = sorted(glob.glob(\(String(reflecting: swift + "/*.log.json"))))[-1]
            logs = al.load_json_logs([log])
            out['plot_epochs'] = sorted(logs[0].keys())
            out['plot_iters'] = len(logs[0][1]['loss_cls'])
            png = \(String(reflecting: TrainFixture.work + "/curve.png"))
            al.plot_curve(logs, types.SimpleNamespace(json_logs=[log], keys=['loss_cls', 'bbox_mAP'], title=None, legend=None,
                                                      backend=None, style='dark', out=png))
            out['plot_bytes'] = os.path.getsize(png)
            _quiet.__exit__(None, None, None)
            """)
        XCTAssertEqual(out["epoch"] as? Int, 2)
        XCTAssertEqual(out["iter"] as? Int, 24)
        XCTAssertEqual(out["classes"] as? [String], ["boat", "person", "airplane"])
        XCTAssertEqual(out["keys"] as? Int, 358)
        XCTAssertEqual(out["buffers"] as? Int, 162)
        XCTAssertEqual((out["resumed"] as? [Double])?.prefix(2).map { Int($0) }, [2, 24])
        XCTAssertEqual(out["same"] as? Bool, true)
        XCTAssertEqual(out["plot_epochs"] as? [Int], [1, 2])
        XCTAssertEqual(out["plot_iters"] as? Int, 12)
        XCTAssertGreaterThan(out["plot_bytes"] as? Int ?? 0, 1000)
        for k in ["CLASSES", "config", "epoch", "iter", "seed", "hook_msgs"] { XCTAssertTrue((out["meta"] as? [String] ?? []).contains(k), k) }
    }

    /// An absurd lr in epoch 2 (gamma 1e12) makes the loss non-finite: the run stops before the update, naming the
    /// iteration and the loss; epoch_1.pth (the last good checkpoint) is intact and nothing non-finite was written.
    func testNonFiniteLossStopsKeepingLastGoodCheckpoint() throws {
        let ref = try TrainFixture.mmdetRun(), fx = try TrainFixture.data()
        let w = TrainFixture.work + "/nan"
        try? FileManager.default.removeItem(atPath: w)
        let overrides = TrainFixture.overrides(fx, scale: (128, 96)) + ["lr_config.gamma=1e12"]
        XCTAssertThrowsError(try TrainFixture.train(workDir: w, overrides: overrides, loadFrom: ref + "/load_from.pth")) { error in
            guard let stop = error as? TrainingStopped else { return XCTFail("\(error)") }
            XCTAssertEqual(stop.reason, .nonFinite)
            XCTAssertTrue(stop.message.contains("iteration 1"), stop.message)
            XCTAssertTrue(stop.message.contains("loss") || stop.message.contains("gradient norm"), stop.message)
            XCTAssertTrue(stop.description.contains("epoch_1.pth"), stop.description)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: w).filter { $0.hasSuffix(".pth") }.sorted()
        XCTAssertEqual(files, ["epoch_1.pth", "latest.pth"])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth"), "epoch_1.pth")
        for (k, t) in try TrainFixture.stateDict(w + "/epoch_1.pth").ordered where try t.dtype == .float32 {
            XCTAssertTrue(try t.floats().allSatisfy(\.isFinite), k)
        }
    }

    /// Missing image files are all listed before the first iteration.
    func testMissingImagesListedBeforeTraining() throws {
        let fx = try TrainFixture.data()
        let images = TrainFixture.work + "/missing-images"
        try? FileManager.default.removeItem(atPath: images)
        try FileManager.default.copyItem(atPath: fx + "/images", toPath: images)
        let removed = ["t05.png", "t07.png", "t00.png"]
        for name in removed { try FileManager.default.removeItem(atPath: images + "/" + name) }
        let overrides = TrainFixture.overrides(fx, scale: (128, 96)) + ["data.train.img_prefix=\(images)/"]
        XCTAssertThrowsError(try TrainFixture.train(workDir: TrainFixture.work + "/missing", overrides: overrides, loadFrom: nil)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("3 problem(s)"), text)
            for name in removed {
                XCTAssertTrue(text.contains(images + "/" + name), "\(name) not listed: \(text)")
            }
        }
        let made = (try? FileManager.default.contentsOfDirectory(atPath: TrainFixture.work + "/missing")) ?? []
        XCTAssertFalse(made.contains { $0.hasSuffix(".log") }, "nothing is logged before the checks pass")
    }

    /// An image that cannot be decoded stops the run with the file named, after a resumable checkpoint;
    /// with skipBadImages the run finishes and counts it.
    func testUndecodableImageStopsOrIsSkipped() throws {
        let fx = try TrainFixture.data()
        let images = TrainFixture.work + "/bad-images"
        try? FileManager.default.removeItem(atPath: images)
        try FileManager.default.copyItem(atPath: fx + "/images", toPath: images)
        let victim = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasPrefix("t1") }.sorted()[0]
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: images + "/" + victim))
        let overrides = TrainFixture.overrides(fx, scale: (128, 96), epochs: 1) + ["data.train.img_prefix=\(images)/"]
        let w = TrainFixture.work + "/bad"
        try? FileManager.default.removeItem(atPath: w)
        XCTAssertThrowsError(try TrainFixture.train(workDir: w, overrides: overrides, loadFrom: nil)) { error in
            guard let stop = error as? TrainingStopped else { return XCTFail("\(error)") }
            XCTAssertEqual(stop.reason, .badImage)
            XCTAssertTrue(stop.message.contains(victim), stop.message)
            XCTAssertNotNil(stop.checkpoint)
        }
        XCTAssertTrue(try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth").hasPrefix("iter_"))
        let w2 = TrainFixture.work + "/bad-skip"
        try? FileManager.default.removeItem(atPath: w2)
        let outcome = try TrainFixture.train(workDir: w2, overrides: overrides, loadFrom: nil) { $0.skipBadImages = true }
        XCTAssertEqual(outcome.status, .finished)
        XCTAssertGreaterThan(outcome.skippedImages, 0)
    }
}

enum COCOMetricsNames {
    static let all = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l", "bbox_mAP_copypaste"]
}
