import Detection
import Foundation
import Support
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// Data-parallel `ghm train` on the training fixture (random init, seed 0, 256×192, 1 thread per rank): two real
/// processes (`ghm train --nproc 2`, Gloo) against the same two ranks simulated in one process, resume across the two,
/// a killed rank, sharded evaluation, and how far one process with the whole batch drifts from it.
final class DistributedTrainTests: XCTestCase {
    static let ghm = Repo.path(".build/debug/ghm")
    static let work = TrainFixture.work + "/dist"

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessGroup.availability.gloo, ProcessGroup.availability.reason)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.ghm), "build the ghm binary first (swift build)")
    }

    static func overrides() throws -> [String] {
        try TrainFixture.overrides(TrainFixture.data()) + ["data.workers_per_gpu=1"]
    }

    /// `ghm train` as a process (`--nproc 2` or not), with the per-rank trace in `W/trace`.
    @discardableResult
    static func cli(_ w: String, _ extra: [String], fresh: Bool) throws -> ProcessResult {
        if fresh { try? FileManager.default.removeItem(atPath: w) }
        var args = ["train", "--config", TrainFixture.config, "--work-dir", w, "--seed", "0", "--threads", "1",
                    "--dist-timeout", "60"]
        for o in try overrides() { args += ["--set", o] }
        return try runProcess(ghm, args + extra, environment: ["GHM_TRAIN_TRACE": w + "/trace"])
    }

    /// The trainer in this process with 1 thread (as each rank of the 2-process runs).
    @discardableResult
    static func inProcess(_ w: String, _ parallel: Parallelism, fresh: Bool = true, stopAfter: Int, validate: Bool = false,
                          extra: [String] = [], resumeFrom: String? = nil) throws -> TrainOutcome {
        if fresh { try? FileManager.default.removeItem(atPath: w) }
        setenv("GHM_TRAIN_TRACE", w + "/trace", 1)
        defer { unsetenv("GHM_TRAIN_TRACE") }
        let threads = Torch.threads
        try Torch.setThreads(1)
        defer { try? Torch.setThreads(threads) }
        let resolved = try DetectorConfig.resolved(path: TrainFixture.config, overrides: try overrides() + extra)
        var options = TrainOptions(workDir: w, configYAML: resolved.yaml, configName: "retinanet_ghm_r50_fpn_1x_coco")
        options.seed = 0
        options.validate = validate
        options.echo = { _ in }
        options.parallel = parallel
        options.stopAfterIterations = stopAfter
        options.resumeFrom = resumeFrom
        return try Trainer(config: resolved.config, options: options).run()
    }

    // The runs the tests compare, each made once: S = 2 simulated ranks (iterations 1–2, then resumed to 4),
    // D = 2 processes (1–2, evaluating before the first epoch), K = D resumed and rank 1 killed during iteration 3,
    // D2 = D resumed by 2 processes to 4 after the kill.
    static func simulated() throws -> String {
        try TrainFixture.once("dist-S") {
            let w = work + "/S"
            try inProcess(w, .simulated(ranks: 2), stopAfter: 2, validate: true, extra: evalOverrides)
            try inProcess(w, .simulated(ranks: 2), fresh: false, stopAfter: 4, resumeFrom: w + "/iter_2.pth")
            return w
        }
    }

    /// Evaluation before the first epoch, every detection kept (the random init scores below 0.05).
    static let evalOverrides = ["evaluation.start=0", "model.test_cfg.score_thr=0.0"]

    static func processes() throws -> (w: String, first: ProcessResult) {
        let w = work + "/D"
        let r = try TrainFixture.once("dist-D") { () throws -> String in
            let r = try cli(w, ["--nproc", "2", "--stop-after", "2"] + evalOverrides.flatMap { ["--set", $0] }, fresh: true)
            guard r.status == 0 else { throw ProcessFailure(command: "ghm train --nproc 2", status: r.status, stderr: r.stderr + r.stdout) }
            return r.stdout + "\n" + r.stderr
        }
        return (w, ProcessResult(status: 0, stdout: r, stderr: ""))
    }

    /// Metadata of a trace file (`iter_NNNN_rankR.safetensors`).
    static func traceMeta(_ w: String, iteration: Int, rank: Int) throws -> [String: String] {
        let path = w + String(format: "/trace/iter_%04d_rank%d.safetensors", iteration, rank)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        return try XCTUnwrap(header["__metadata__"] as? [String: String])
    }

    /// The largest |a − b| / max(|b|, 1e-12) over the state dicts of two checkpoints (GHM buffers included).
    static func maxRelativeDifference(_ a: String, _ b: String) throws -> Double {
        let x = try TrainFixture.stateDict(a), y = try TrainFixture.stateDict(b)
        XCTAssertEqual(x.keys, y.keys)
        var worst = 0.0
        for k in x.keys {
            let p = try XCTUnwrap(x[k]).to(.float64), q = try XCTUnwrap(y[k]).to(.float64)
            let d = try ((p - q).abs() / q.abs().clamp(min: 1e-12)).max().item()
            worst = Swift.max(worst, d)
        }
        return worst
    }

    /// The largest ‖a − b‖∞ / ‖b‖∞ over the parameters of two checkpoints (GHM buffers left out), its key, and
    /// ‖a − b‖₂ / ‖b‖₂ over all of them.
    static func maxScaledDifference(_ a: String, _ b: String) throws -> (Double, String, Double) {
        let x = try TrainFixture.stateDict(a), y = try TrainFixture.stateDict(b)
        var worst = (0.0, "", 0.0)
        var num = 0.0, den = 0.0
        for k in x.keys where !k.hasSuffix("acc_sum") {
            let p = try XCTUnwrap(x[k]).to(.float64), q = try XCTUnwrap(y[k]).to(.float64)
            let scale = try q.abs().max().item()
            let d = scale > 0 ? try (p - q).abs().max().item() / scale : 0
            if d > worst.0 { (worst.0, worst.1) = (d, k) }
            num += try ((p - q) * (p - q)).sum().item()
            den += try (q * q).sum().item()
        }
        worst.2 = (num / Swift.max(den, 1e-300)).squareRoot()
        return worst
    }

    /// Two processes equal two ranks simulated in one process, iteration by iteration: every rank's losses (its own
    /// GHM state and normaliser) and the parameters after every step; and both ranks hold bit-identical parameters.
    func testTwoProcessesEqualSimulatedRanks() throws {
        let s = try Self.simulated(), (d, out) = try Self.processes()
        XCTAssertTrue(out.stdout.contains("rank 0 of 2 (gloo)"), out.stdout)
        var worst = 0.0
        for it in 0..<2 {
            let d0 = try Self.traceMeta(d, iteration: it, rank: 0), d1 = try Self.traceMeta(d, iteration: it, rank: 1)
            XCTAssertEqual(d0["params_crc32"], d1["params_crc32"], "iteration \(it + 1): the ranks' parameters differ")
            for r in 0..<2 {
                let dm = try Self.traceMeta(d, iteration: it, rank: r), sm = try Self.traceMeta(s, iteration: it, rank: r)
                XCTAssertEqual(dm["images"], sm["images"], "iteration \(it + 1) rank \(r): the same images and flips")
                for k in ["loss_cls", "loss_bbox", "loss", "grad_norm"] {
                    let a = try XCTUnwrap(Double(dm[k] ?? "")), b = try XCTUnwrap(Double(sm[k] ?? ""))
                    worst = Swift.max(worst, abs(a - b) / Swift.max(abs(b), 1e-12))
                }
                XCTAssertEqual(dm["params_crc32"], sm["params_crc32"], "iteration \(it + 1): parameters after the step")
            }
            // the ranks saw different images and computed different losses
            XCTAssertNotEqual(d0["images"], d1["images"])
        }
        XCTAssertLessThanOrEqual(worst, 1e-5, "per-rank losses and grad norms, relative")
        let p = try Self.maxRelativeDifference(d + "/iter_2.pth", s + "/iter_2.pth")
        print("2 processes vs 2 simulated ranks after 2 iterations: losses \(worst), parameters \(p) (max relative)")
        XCTAssertLessThanOrEqual(p, 1e-5)
        // both ranks' GHM states are in the checkpoint, and they differ (each rank keeps its own)
        let meta = try XCTUnwrap(Checkpoint.load(d + "/iter_2.pth").meta?["ghm_train"]?.dict)
        let rows = try XCTUnwrap(meta["rank_ghm_state"]?.items)
        XCTAssertEqual(rows.count, 2)
        XCTAssertNotEqual(rows[0].items?.compactMap(\.double), rows[1].items?.compactMap(\.double))
    }

    /// Evaluation split over the ranks and gathered on rank 0 gives what one process gives (every detection kept).
    func testShardedEvaluationEqualsOneProcess() throws {
        let s = try Self.simulated(), (d, out) = try Self.processes()
        XCTAssertTrue(out.stdout.contains("evaluation: 300 detections on 3 images from 2 ranks"), out.stdout)
        let dv = try TrainFixture.logLines(d).first { $0["mode"] as? String == "val" }
        let sv = try TrainFixture.logLines(s).first { $0["mode"] as? String == "val" }
        let dvals = try XCTUnwrap(dv), svals = try XCTUnwrap(sv)
        for k in COCOMetricsNames.all { XCTAssertEqual(dvals[k] as? Double, svals[k] as? Double, k) }
        XCTAssertEqual(dvals["epoch"] as? Int, 0)
    }

    /// A rank killed mid-run stops the other within the timeout, naming it; the launcher exits with the killed
    /// rank's status; the last checkpoint stays whole and --auto-resume continues to the same parameters as an
    /// uninterrupted run: the simulated run's, which itself resumed a checkpoint of 2 processes.
    func testKilledRankStopsTheOtherAndAutoResumeContinues() throws {
        let s = try Self.simulated(), (d, _) = try Self.processes()
        // a copy of D's work dir after its 2 iterations, resumed; rank 1 killed once iteration 3 is logged
        let k = Self.work + "/K"
        try? FileManager.default.removeItem(atPath: k)
        try FileManager.default.copyItem(atPath: d, toPath: k)
        try? FileManager.default.removeItem(atPath: k + "/trace")
        let t0 = monotonicSeconds()
        let killed = try Self.runAndKillRank1(k, after: "Epoch [1][3/")
        XCTAssertEqual(killed.status, 128 + SIGKILL, killed.stderr)
        XCTAssertTrue(killed.stderr.contains("rank 1 was killed by signal 9; stopping the other ranks"), killed.stderr)
        XCTAssertTrue(killed.stderr.contains("rank 1 stopped or cannot be reached"), killed.stderr)
        XCTAssertLessThan(monotonicSeconds() - t0, 120, "no hang")
        let files = try FileManager.default.contentsOfDirectory(atPath: k)
        XCTAssertEqual(files.filter { $0.contains(".tmp") }, [], "nothing half-written")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: k + "/latest.pth"), "iter_2.pth")
        // --auto-resume by 2 processes continues from iter_2.pth to iteration 4
        let r = try Self.cli(k, ["--nproc", "2", "--auto-resume", "--stop-after", "4"], fresh: false)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("resumed from \(k)/latest.pth: epoch 0, iter 2"), r.stdout)
        let p = try Self.maxRelativeDifference(k + "/iter_4.pth", s + "/iter_4.pth")
        print("2 processes resumed after a kill vs 2 simulated ranks, iteration 4: parameters \(p) (max relative)")
        XCTAssertLessThanOrEqual(p, 1e-5)
        let a = try Checkpoint.load(k + "/iter_4.pth").meta?["ghm_train"]?.dict?["rank_ghm_state"]?.items?.map { $0.items?.compactMap(\.double) }
        let b = try Checkpoint.load(s + "/iter_4.pth").meta?["ghm_train"]?.dict?["rank_ghm_state"]?.items?.map { $0.items?.compactMap(\.double) }
        XCTAssertEqual(a, b, "every rank's GHM state")
        for it in 2..<4 {
            let km = try Self.traceMeta(k, iteration: it, rank: 1), sm = try Self.traceMeta(s, iteration: it, rank: 1)
            XCTAssertEqual(km["loss_cls"], sm["loss_cls"], "iteration \(it + 1), rank 1")
        }
    }

    /// torchrun (the venv's, `--no-python`) starts the same 2 ranks as `--nproc 2`: the same parameters after 2 steps.
    func testTorchrunLaunchesTheSameRun() throws {
        let (d, _) = try Self.processes()
        let torchrun = Repo.path(".venv/bin/torchrun")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: torchrun), "no torchrun in .venv")
        let w = Self.work + "/torchrun"
        try? FileManager.default.removeItem(atPath: w)
        var args = ["--nproc-per-node", "2", "--master-port", "\(try RankLauncher.freePort())", "--no-python", Self.ghm, "train",
                    "--config", TrainFixture.config, "--work-dir", w, "--seed", "0", "--threads", "1", "--no-validate",
                    "--stop-after", "2"]
        for o in try Self.overrides() { args += ["--set", o] }
        let r = try runProcess(torchrun, args)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.components(separatedBy: "stopped after 2 iterations as asked").count, 2, "rank 0 reports, once")
        XCTAssertEqual(try Self.maxRelativeDifference(w + "/iter_2.pth", d + "/iter_2.pth"), 0)
    }

    /// `--sync-ghm-bins`: both ranks weight by one histogram of the iteration, so they keep one GHM state between
    /// them (unlike mmdet's per-rank states of the run without it) and the same parameters.
    func testSyncGHMBinsGivesOneStateForAllRanks() throws {
        let (d, _) = try Self.processes()
        let w = Self.work + "/sync"
        let r = try Self.cli(w, ["--nproc", "2", "--stop-after", "2", "--no-validate", "--sync-ghm-bins"], fresh: true)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("GHM bin counts summed over the 2 ranks"), r.stdout)
        func rows(_ path: String) throws -> [[Double]] {
            try XCTUnwrap(Checkpoint.load(path).meta?["ghm_train"]?.dict?["rank_ghm_state"]?.items).map { $0.items?.compactMap(\.double) ?? [] }
        }
        let synced = try rows(w + "/iter_2.pth"), own = try rows(d + "/iter_2.pth")
        XCTAssertEqual(synced[0], synced[1], "one GHM state on both ranks")
        XCTAssertNotEqual(synced[0], own[0])
        for it in 0..<2 {
            XCTAssertEqual(try Self.traceMeta(w, iteration: it, rank: 0)["params_crc32"], try Self.traceMeta(w, iteration: it, rank: 1)["params_crc32"])
        }
    }

    /// tools/slurm_train.sh maps SLURM's task variables to torchrun's: two tasks started as srun would start them train
    /// the same run as `--nproc 2`.
    func testSlurmWrapperStartsTheSameRun() throws {
        let (d, _) = try Self.processes()
        let w = Self.work + "/slurm"
        try? FileManager.default.removeItem(atPath: w)
        var args = ["--config", TrainFixture.config, "--work-dir", w, "--seed", "0", "--threads", "1", "--no-validate",
                    "--stop-after", "2"]
        for o in try Self.overrides() { args += ["--set", o] }
        let port = try RankLauncher.freePort()
        var procs: [(Process, Pipe)] = []
        for r in 0..<2 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Repo.path("tools/slurm_train.sh"))
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging([
                "SLURM_PROCID": "\(r)", "SLURM_NTASKS": "2", "SLURM_LOCALID": "\(r)", "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": "\(port)", "GHM_BIN": Self.ghm]) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            procs.append((p, err))
        }
        for (r, (p, err)) in procs.enumerated() {
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "task \(r): \(text)")
        }
        XCTAssertEqual(try Self.maxRelativeDifference(w + "/iter_2.pth", d + "/iter_2.pth"), 0)
        // outside srun it says what is missing
        let bare = try runProcess(Repo.path("tools/slurm_train.sh"), ["--help"], environment: ["SLURM_PROCID": ""])
        XCTAssertEqual(bare.status, 2)
        XCTAssertTrue(bare.stderr.contains("SLURM_PROCID is not set"), bare.stderr)
    }

    /// SIGTERM to the launcher (as Ctrl-C reaches every rank): it passes the signal on, the ranks agree to stop after
    /// the same iteration, rank 0 saves a resumable checkpoint, every rank exits 143 and so does the launcher.
    func testSigtermToLauncherStopsAllRanksWithACheckpoint() throws {
        let (d, _) = try Self.processes()
        let w = Self.work + "/T"
        try? FileManager.default.removeItem(atPath: w)
        try FileManager.default.copyItem(atPath: d, toPath: w)
        let r = try Self.runAndAct(w, after: "Epoch [1][3/") { kill($0, SIGTERM) == 0 }
        XCTAssertEqual(r.status, 128 + SIGTERM, r.stderr)
        let stopped = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("stopped by signal 15 after iteration") })
        let n = try XCTUnwrap(Int(stopped.split(separator: " ").last ?? ""))
        XCTAssertGreaterThanOrEqual(n, 3)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth"), "iter_\(n).pth")
        XCTAssertEqual(try Checkpoint.load(w + "/iter_\(n).pth").meta?["iter"]?.int, n)
        XCTAssertTrue(r.stderr.contains("[rank 1] interrupted by signal 15"), r.stderr)
        XCTAssertFalse(r.stderr.contains("all_reduce failed"), r.stderr)
    }

    /// A non-finite loss on the ranks (an absurd lr after a resume): every rank stops before the update at the same
    /// iteration (exit 3, naming it), the last good checkpoint stays as it was, no rank hangs.
    func testNonFiniteLossStopsEveryRank() throws {
        let (d, _) = try Self.processes()
        let w = Self.work + "/nan"
        try? FileManager.default.removeItem(atPath: w)
        try FileManager.default.copyItem(atPath: d, toPath: w)
        let r = try Self.cli(w, ["--nproc", "2", "--auto-resume", "--stop-after", "6", "--no-validate", "--set", "optimizer.lr=1e12"],
                             fresh: false)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("is nan") || r.stderr.contains("is inf") || r.stderr.contains("gradient norm is"), r.stderr)
        XCTAssertTrue(r.stderr.contains("/iter_2.pth (the last good checkpoint)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("[rank 1] iteration"), "rank 1 stops on its own account too: \(r.stderr)")
        XCTAssertFalse(r.stderr.contains("cannot be reached"), r.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: w + "/latest.pth"), "iter_2.pth")
        XCTAssertEqual(try Self.maxRelativeDifference(w + "/iter_2.pth", d + "/iter_2.pth"), 0, "untouched")
    }

    /// A checkpoint of 2 processes resumes in 2 simulated ranks and ends where the simulated run ends; one process
    /// computing the same images as one batch (one GHM state, one normaliser) drifts from it (reported).
    func testSimulatedResumesProcessCheckpointAndDoubleBatchDrifts() throws {
        let s = try Self.simulated(), (d, _) = try Self.processes()
        let w = Self.work + "/S-from-D"
        try? FileManager.default.removeItem(atPath: w)
        try FileManager.default.createDirectory(atPath: w, withIntermediateDirectories: true)
        try Self.inProcess(w, .simulated(ranks: 2), fresh: false, stopAfter: 4, resumeFrom: d + "/iter_2.pth")
        XCTAssertLessThanOrEqual(try Self.maxRelativeDifference(w + "/iter_4.pth", s + "/iter_4.pth"), 1e-5)

        let m = Self.work + "/merged"
        try Self.inProcess(m, .merged(ranks: 2), stopAfter: 4)
        let drift = try Self.maxScaledDifference(m + "/iter_4.pth", s + "/iter_4.pth")
        let l0 = try Self.traceMeta(s, iteration: 0, rank: 0), l1 = try Self.traceMeta(s, iteration: 0, rank: 1)
        let mean = ((Double(l0["loss_cls"]!)! + Double(l1["loss_cls"]!)!) / 2)
        let mergedLoss = try XCTUnwrap(TrainFixture.logLines(m).first { $0["mode"] as? String == "train" }?["loss_cls"] as? Double)
        print("one process with both ranks' images as one batch of 4, vs 2 ranks: loss_cls at iteration 1 \(mergedLoss) vs "
              + "\(mean) (mean of the ranks'), parameters after 4 iterations differ by up to \(drift.0) of the tensor's largest value (\(drift.1)); ‖Δ‖/‖θ‖ over all parameters \(drift.2)")
        XCTAssertNotEqual(mergedLoss, mean, "one GHM histogram over 4 images is not two over 2")
    }

    /// Starts `ghm train --nproc 2` (auto-resume) in `w`, SIGKILLs rank 1 once rank 0 has printed `marker`, and
    /// returns the launcher's status and output.
    static func runAndKillRank1(_ w: String, after marker: String) throws -> ProcessResult {
        try runAndAct(w, after: marker) { _ in
            guard let pid = rankPid(1, workDir: w) else { return false }
            kill(pid, SIGKILL)
            return true
        }
    }

    /// Starts `ghm train --nproc 2` (auto-resume) in `w`; once rank 0 has printed `marker`, calls `act` with the
    /// launcher's pid until it returns true; returns the launcher's status and output.
    static func runAndAct(_ w: String, after marker: String, act: (Int32) -> Bool) throws -> ProcessResult {
        var args = ["train", "--config", TrainFixture.config, "--work-dir", w, "--seed", "0", "--threads", "1",
                    "--dist-timeout", "60", "--nproc", "2", "--auto-resume", "--stop-after", "6"]
        for o in try overrides() { args += ["--set", o] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ghm)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        final class Box: @unchecked Sendable { var text = ""; let lock = NSLock() }
        let stdout = Box(), stderr = Box()
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            stdout.lock.lock(); stdout.text += String(decoding: d, as: UTF8.self); stdout.lock.unlock()
        }
        err.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            stderr.lock.lock(); stderr.text += String(decoding: d, as: UTF8.self); stderr.lock.unlock()
        }
        try p.run()
        let deadline = monotonicSeconds() + 120
        var killed = false
        while p.isRunning && monotonicSeconds() < deadline {
            stdout.lock.lock(); let seen = stdout.text.contains(marker); stdout.lock.unlock()
            if seen && !killed { killed = act(p.processIdentifier) }
            usleep(100_000)
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        XCTAssertTrue(killed, "the action was taken")
        return ProcessResult(status: p.terminationStatus, stdout: stdout.text, stderr: stderr.text)
    }

    /// The pid of the process whose environment has `RANK=rank` and whose arguments name `workDir`.
    static func rankPid(_ rank: Int, workDir: String) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let pid = Int32(e),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(e)/cmdline"),
                  String(decoding: cmd, as: UTF8.self).split(separator: "\0").contains(Substring(workDir)),
                  let env = FileManager.default.contents(atPath: "/proc/\(e)/environ") else { continue }
            if String(decoding: env, as: UTF8.self).split(separator: "\0").contains("RANK=\(rank)") { return pid }
        }
        return nil
    }
}
