import Detection
import Foundation
import TestSupport
import Torch
import TorchCheckpoint
import Training
import XCTest

/// The parts of training against MMDetection 2.16.0 / mmcv 1.4.0 themselves (tools/mmdet_train_reference.py).
final class ReferenceTests: XCTestCase {
    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The lr of every iteration against mmcv's StepLrUpdaterHook driven by a real EpochBasedRunner: linear warmup
    /// across an epoch-based step, the GHM schedule's shape, int steps, constant/exp warmup, iteration-based steps,
    /// and a resume in the middle of an epoch.
    func testLearningRatesMatchMMCV() throws {
        let cases: [(args: [String], config: [String])] = [
            (["--iters-per-epoch", "7", "--epochs", "12", "--warmup-iters", "30", "--step", "8,11"],
             ["warmup_iters: 30", "step: [8, 11]"]),
            (["--iters-per-epoch", "6", "--epochs", "3", "--warmup-iters", "10", "--step", "1", "--resume-iter", "7"],
             ["warmup_iters: 10", "step: [1]"]),
            (["--iters-per-epoch", "5", "--epochs", "7", "--warmup", "exp", "--warmup-iters", "8", "--warmup-ratio", "0.1",
              "--step", "2", "--step-int", "--gamma", "0.5"],
             ["warmup: exp", "warmup_iters: 8", "warmup_ratio: 0.1", "step: 2", "gamma: 0.5"]),
            (["--iters-per-epoch", "4", "--epochs", "4", "--warmup", "constant", "--warmup-iters", "6", "--step", "5,9",
              "--by-epoch", "0"],
             ["warmup: constant", "warmup_iters: 6", "step: [5, 9]", "by_epoch: false"]),
            (["--iters-per-epoch", "4", "--epochs", "3", "--warmup", "none", "--step", "1,2", "--lr", "0.02"],
             ["warmup: null", "step: [1, 2]"]),
        ]
        for c in cases {
            let file = TrainFixture.work + "/lr.json"
            try TrainFixture.run("tools/mmdet_train_reference.py", ["lr"] + c.args + ["--out", file])
            let out = try json(try String(contentsOfFile: file, encoding: .utf8))
            // the lrs exactly (Foundation's JSON number parsing is not correctly rounded; Python's json is)
            let exact = try python("""
                import json
                d = json.load(open(\(String(reflecting: file))))
                out['lr'] = torch.tensor(d['lr'], dtype=torch.float64)
                out['resume'] = torch.tensor(d['resume']['lr'] if 'resume' in d else [], dtype=torch.float64)
                """)
            let lrConfig = try DetectorConfig.load(path: TrainFixture.config,
                                                   overrides: c.config.map { "lr_config." + $0.replacingOccurrences(of: ": ", with: "=") }).lrConfig
            let base = out["base_lr"] as? Double ?? 0.01
            let schedule = LRSchedule(baseLR: base, config: lrConfig)
            let n = out["iters_per_epoch"] as! Int, epochs = out["epochs"] as! Int
            XCTAssertEqual(schedule.allLRs(epochs: epochs, itersPerEpoch: n), PyTensor(exact["lr"])?.data, "\(c.args)")
            if let resume = out["resume"] as? [String: Any] {
                let k = resume["resume_iter"] as! Int
                let after = (k..<(n * epochs)).map { schedule.lr(epoch: $0 / n, iteration: $0) }
                XCTAssertEqual(after, PyTensor(exact["resume"])?.data)
                XCTAssertEqual(resume["equal_to_uninterrupted"] as? Bool, true)
            }
        }
    }

    /// `CocoDataset` for training on the fixture: kept images in file order, flags, parsed boxes (float32 values),
    /// labels in the file's category order, crowd boxes as ignored, and what `_filter_imgs` dropped.
    func testDatasetMatchesMMDetection() throws {
        let fx = try TrainFixture.data()
        let out = try json(try TrainFixture.run("tools/mmdet_train_reference.py", ["dataset", "--data", fx]))
        let train = try XCTUnwrap(out["train"] as? [String: Any])
        let config = try DetectorConfig.load(path: TrainFixture.config, overrides: TrainFixture.overrides(fx))
        let ds = try TrainDataset(config: config.data.train)
        XCTAssertEqual(ds.catIds, train["cat_ids"] as? [Int])
        XCTAssertEqual(ds.samples.map(\.imageId), train["img_ids"] as? [Int])
        XCTAssertEqual(ds.flags, train["flags"] as? [Int])
        XCTAssertEqual(Set(ds.filtered.map(\.id)), Set(((train["train_filtered"] ?? out["train_filtered"]) as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }))
        let images = try XCTUnwrap(train["images"] as? [[String: Any]])
        XCTAssertEqual(images.count, ds.count)
        for (s, im) in zip(ds.samples, images) {
            let ann = try XCTUnwrap(im["ann"] as? [String: Any])
            let boxes = (ann["bboxes"] as? [[Double]] ?? []).map { $0.map { Float($0) } }
            let ignore = (ann["bboxes_ignore"] as? [[Double]] ?? []).map { $0.map { Float($0) } }
            XCTAssertEqual(s.bboxes, boxes, "image \(s.imageId)")
            XCTAssertEqual(s.labels, ann["labels"] as? [Int], "image \(s.imageId)")
            XCTAssertEqual(s.bboxesIgnore, ignore, "image \(s.imageId)")
            XCTAssertEqual(s.fileName, im["file_name"] as? String)
        }
    }

    /// The train pipeline for the same images and flip draws: the normalised padded tensor, the boxes after
    /// resize/clip/flip, labels, shapes, scale factors; and the collated batch.
    func testPipelineMatchesMMDetection() throws {
        let fx = try TrainFixture.data()
        let indices = [0, 1, 2, 4, 5, 8], flips = [1, 0, 1, 1, 0, 1]
        let prefix = TrainFixture.work + "/pipeline"
        _ = try TrainFixture.run("tools/mmdet_train_reference.py", [
            "pipeline", "--data", fx, "--index", indices.map(String.init).joined(separator: ","),
            "--flip", flips.map(String.init).joined(separator: ","), "--img-scale", "256x192",
            "--classes", "person,airplane,boat", "--out", prefix])
        let ref = try Checkpoint.load(prefix + ".safetensors").stateDict(at: nil)
        let meta = try json(try String(contentsOfFile: prefix + ".json", encoding: .utf8))
        let items = try XCTUnwrap(meta["items"] as? [[String: Any]])
        let config = try DetectorConfig.load(path: TrainFixture.config, overrides: TrainFixture.overrides(fx))
        let ds = try TrainDataset(config: config.data.train)
        let pipeline = TrainPipeline(transform: try config.trainTransform())
        var tensors: [Tensor] = []
        for (k, (i, f)) in zip(indices, flips).enumerated() {
            let suffix = k == 0 ? "" : ".\(k)"
            let r = try pipeline.load(ds.samples[i], flip: f == 1)
            tensors.append(r.image)
            let name = ds.samples[i].fileName
            XCTAssertTrue(try bitEqual(r.image, XCTUnwrap(ref["img" + suffix])), "img of \(name)")
            let wantBoxes = try XCTUnwrap(ref["gt_bboxes" + suffix]).floats()
            XCTAssertEqual(r.boxes.flatMap { $0 }, wantBoxes, "boxes of \(name)")
            XCTAssertEqual(r.labels.map(Int64.init), try XCTUnwrap(ref["gt_labels" + suffix]).int64s(), "labels of \(name)")
            let m = items[k]
            XCTAssertEqual([r.meta.imgShape.h, r.meta.imgShape.w, r.meta.imgShape.c], m["img_shape"] as? [Int], name)
            XCTAssertEqual([r.meta.padShape.h, r.meta.padShape.w, r.meta.padShape.c], m["pad_shape"] as? [Int], name)
            XCTAssertEqual(r.meta.scaleFactor, (m["scale_factor"] as? [Double])?.map { Float($0) }, name)
            XCTAssertEqual(r.meta.flip, m["flip"] as? Bool, name)
        }
        XCTAssertTrue(try bitEqual(ImageTransform.collate(tensors), XCTUnwrap(ref["batch_img"])), "collated batch")
    }
}
