import Detection
import Foundation
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// The small COCO training set of tools/make_train_fixture.py (25 train images, 22 kept, 3 categories in file order
/// 9, 1, 5; 3 val images), MMDetection's own run on it, and the Swift run with the same inputs; each made once.
enum TrainFixture {
    static let work = Repo.path(".build/train-work")
    static let config = Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")
    private static let lock = NSRecursiveLock()
    private static var cache: [String: Result<String, Error>] = [:]

    static func once(_ key: String, _ make: () throws -> String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let r = cache[key] { return try r.get() }
        let r = Result { try make() }
        cache[key] = r
        return try r.get()
    }

    static func requireMMDet() throws {
        guard FileManager.default.isExecutableFile(atPath: Repo.mmdetPython) else {
            throw ProcessFailure(command: Repo.mmdetPython, status: -1,
                                 stderr: "the MMDetection environment is missing: run `make mmdet-env` (tools/mmdet_env.sh)")
        }
    }

    @discardableResult
    static func run(_ script: String, _ args: [String]) throws -> String {
        try requireMMDet()
        let r = try runProcess(Repo.mmdetPython, [Repo.path(script)] + args)
        guard r.status == 0 else {
            throw ProcessFailure(command: "\(script) \(args.joined(separator: " "))", status: r.status, stderr: String((r.stderr + r.stdout).suffix(4000)))
        }
        return r.stdout
    }

    /// The fixture folder (train.json, val.json, images/).
    static func data() throws -> String {
        try once("data") {
            let dir = work + "/fixture"
            try? FileManager.default.removeItem(atPath: dir)
            try run("tools/make_train_fixture.py", ["--out", dir])
            return dir
        }
    }

    /// MMDetection 2.16.0's training run (2 epochs × 12 iterations, 256×192, 2 threads, seed 0, no validation)
    /// from an 80-class start checkpoint cut to 3 classes (`W/load_from.pth`).
    static func mmdetRun() throws -> String {
        try once("mmdet") {
            let fx = try data()
            let start = try startCheckpoint()
            let w = work + "/mmdet"
            try run("tools/mmdet_train_reference.py", ["train", "--data", fx, "--checkpoint", start, "--work-dir", w,
                                                        "--threads", "2", "--no-validate", "--overwrite"])
            return w
        }
    }

    /// An 80-class COCO GHM checkpoint written by MMDetection (mmdet's fresh init; `tools/mmdet_reference.py`).
    static func startCheckpoint() throws -> String {
        try once("start") {
            let fx = try data()
            let start = work + "/start.pth"
            try run("tools/mmdet_reference.py", ["--image", fx + "/images/t00.png", "--img-scale", "256", "192", "--no-train",
                                                  "--no-api-check", "--out-checkpoint", start, "--out-reference", work + "/start.safetensors"])
            return start
        }
    }

    /// `ghm train`'s config overrides for the fixture, as the reference run's config.
    static func overrides(_ fx: String, scale: (Int, Int) = (256, 192), epochs: Int = 2) -> [String] {
        [
            "data.train.ann_file=\(fx)/train.json", "data.train.img_prefix=\(fx)/images/",
            "data.train.classes=[person, airplane, boat]",
            "data.val.ann_file=\(fx)/val.json", "data.val.img_prefix=\(fx)/images/",
            "model.bbox_head.num_classes=3", "model.backbone.init_cfg=null",
            "train_pipeline.2.img_scale=[\(scale.0), \(scale.1)]", "test_pipeline.1.img_scale=[\(scale.0), \(scale.1)]",
            "data.workers_per_gpu=2", "lr_config.warmup_iters=10", "lr_config.step=[1]",
            "runner.max_epochs=\(epochs)", "log_config.interval=1",
        ]
    }

    /// Runs the trainer in this process with 2 intra-op threads (as the reference), quietly.
    @discardableResult
    static func train(workDir: String, overrides: [String], loadFrom: String?, validate: Bool = false,
                      configure: (inout TrainOptions) -> Void = { _ in }) throws -> TrainOutcome {
        let resolved = try DetectorConfig.resolved(path: config, overrides: overrides)
        var options = TrainOptions(workDir: workDir, configYAML: resolved.yaml, configName: "retinanet_ghm_r50_fpn_1x_coco")
        options.loadFrom = loadFrom
        options.seed = 0
        options.validate = validate
        options.echo = { _ in }
        configure(&options)
        let threads = Torch.threads
        try Torch.setThreads(2)
        defer { try? Torch.setThreads(threads) }
        return try Trainer(config: resolved.config, options: options).run()
    }

    /// The Swift run with the reference's inputs (validation on, to exercise the evaluation hook).
    static func swiftRun() throws -> String {
        try once("swift") {
            let ref = try mmdetRun()
            let w = work + "/swift"
            try? FileManager.default.removeItem(atPath: w)
            try train(workDir: w, overrides: overrides(try data()), loadFrom: ref + "/load_from.pth", validate: true)
            return w
        }
    }

    static func stateDict(_ path: String) throws -> StateDict { try Checkpoint.load(path).stateDict() }

    /// Asserts two checkpoints hold bit-identical tensors (state dict and SGD momentum buffers).
    static func assertIdentical(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let ca = try Checkpoint.load(a), cb = try Checkpoint.load(b)
        let sa = try ca.stateDict(), sb = try cb.stateDict()
        XCTAssertEqual(sa.keys, sb.keys, file: file, line: line)
        var differing: [String] = []
        for k in sa.keys {
            guard let x = sa[k], let y = sb[k] else { continue }
            if try !bitEqual(x, y) { differing.append(k) }
        }
        XCTAssertEqual(differing, [], "tensors that differ between \(a) and \(b)", file: file, line: line)
        let oa = try SGDState(from: XCTUnwrap(ca.optimizer)), ob = try SGDState(from: XCTUnwrap(cb.optimizer))
        XCTAssertEqual(oa.lr, ob.lr, file: file, line: line)
        var buffers = 0
        for (x, y) in zip(oa.momentumBuffers, ob.momentumBuffers) {
            XCTAssertEqual(x == nil, y == nil, file: file, line: line)
            if let x, let y { buffers += 1; XCTAssertTrue(try bitEqual(x, y), file: file, line: line) }
        }
        XCTAssertGreaterThan(buffers, 0, file: file, line: line)
    }

    /// The log.json lines of a work dir (the newest log), meta line first.
    static func logLines(_ workDir: String) throws -> [[String: Any]] {
        let files = try FileManager.default.contentsOfDirectory(atPath: workDir).filter { $0.hasSuffix(".log.json") }.sorted()
        var out: [[String: Any]] = []
        for f in files {
            let text = try String(contentsOfFile: workDir + "/" + f, encoding: .utf8)
            for line in text.split(separator: "\n") {
                // Python's json writes NaN / Infinity (mmdet's grad_norm of a skipped fp16 step): read them as null
                let clean = line.replacingOccurrences(of: ": NaN", with: ": null")
                    .replacingOccurrences(of: ": -Infinity", with: ": null").replacingOccurrences(of: ": Infinity", with: ": null")
                out.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(clean.utf8)) as? [String: Any]))
            }
        }
        return out
    }
}

/// Same shape, dtype and bytes.
func bitEqual(_ a: Tensor, _ b: Tensor) throws -> Bool {
    guard a.shape == b.shape, try a.dtype == b.dtype else { return false }
    let x = try a.contiguous(), y = try b.contiguous()
    return try x.withUnsafeBytes { p in try y.withUnsafeBytes { q in p.elementsEqual(q) } }
}
