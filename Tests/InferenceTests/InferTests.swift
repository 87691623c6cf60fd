import COCO
import Foundation
import Imaging
import Support
import TestSupport
import Torch
import XCTest
@testable import Detection
@testable import Inference

/// What the `ghm infer` / `ghm eval` tests share: one MMDetection-made checkpoint (calibrated on a synthetic
/// 300x230 image at img_scale 416x320, ~100 confident detections per synthetic image), synthetic images, one
/// loaded detector, and the built `ghm` executable.
enum InferFixture {
    static let work = Repo.path(".build/infer-work")
    static let config = Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")
    static let overrides = ["test_pipeline.1.img_scale=[416, 320]"]
    /// All these pad to 416x320 at img_scale 416x320, so batching them changes no input tensor.
    static let sizes = ["300x230", "320x240", "400x300", "360x270", "288x216"]

    private static let lock = NSLock()
    private static var cachedImages: String?
    private static var cachedCheckpoint: String?
    private static var cachedDetector: Detector?

    /// Folder with synthetic_<W>x<H>_s0.{png,jpg} for `sizes`.
    static func images() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedImages { return cachedImages }
        let dir = work + "/images"
        if !sizes.allSatisfy({ FileManager.default.fileExists(atPath: "\(dir)/synthetic_\($0)_s0.jpg") }) {
            try requireMMDet()
            let r = try runProcess(Repo.mmdetPython, [Repo.path("tools/make_test_images.py"), "--out", dir]
                                   + sizes.flatMap { ["--size", $0] })
            guard r.status == 0 else { throw ProcessFailure(command: "make_test_images.py", status: r.status, stderr: r.stderr) }
        }
        cachedImages = dir
        return dir
    }

    static func requireMMDet() throws {
        guard FileManager.default.isExecutableFile(atPath: Repo.mmdetPython) else {
            throw ProcessFailure(command: Repo.mmdetPython, status: -1,
                                 stderr: "the MMDetection environment is missing: run `make mmdet-env` (tools/mmdet_env.sh)")
        }
    }

    /// The checkpoint (made once by tools/mmdet_reference.py, reused while the script and arguments are unchanged).
    static func checkpoint() throws -> String {
        let imageDir = try images()
        lock.lock()
        defer { lock.unlock() }
        if let cachedCheckpoint { return cachedCheckpoint }
        let script = Repo.path("tools/mmdet_reference.py")
        let ckpt = work + "/ghm_416x320.pth", ref = work + "/ghm_416x320.safetensors", stamp = work + "/ghm_416x320.stamp"
        let args = ["--image", "\(imageDir)/synthetic_300x230_s0.png", "--img-scale", "416", "320", "--no-train"]
        let digest = try runProcess("/usr/bin/sha256sum", [script]).stdout.prefix(64) + " " + args.joined(separator: " ")
        let fm = FileManager.default
        if (try? String(contentsOfFile: stamp, encoding: .utf8)) != String(digest) || !fm.fileExists(atPath: ckpt) {
            try requireMMDet()
            let r = try runProcess(Repo.mmdetPython, [script, "--out-checkpoint", ckpt, "--out-reference", ref] + args)
            guard r.status == 0 else { throw ProcessFailure(command: "mmdet_reference.py", status: r.status, stderr: r.stderr + r.stdout) }
            try String(digest).write(toFile: stamp, atomically: true, encoding: .utf8)
        }
        cachedCheckpoint = ckpt
        return ckpt
    }

    /// One detector for all in-process tests.
    static func detector() throws -> Detector {
        let ckpt = try checkpoint()
        lock.lock()
        defer { lock.unlock() }
        if let cachedDetector { return cachedDetector }
        let d = try Detector(config: try DetectorConfig.load(path: config, overrides: overrides), checkpoint: ckpt)
        cachedDetector = d
        return d
    }

    /// The `ghm` executable of this build: next to the test bundle (`<scratch>/<triple>/debug/`), where
    /// `swift build` / `swift test` put it. The tests build nothing themselves.
    static func ghm() throws -> String {
        var dirs: [URL] = []
        let arg0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        dirs.append(arg0.deletingLastPathComponent())
        dirs.append(Bundle.main.bundleURL)
        dirs.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            dirs.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for dir in dirs {
            let candidate = dir.appendingPathComponent("ghm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ProcessFailure(command: "ghm", status: -1,
                             stderr: "no ghm executable next to the tests (looked in \(dirs.map(\.path))); run `swift build` first")
    }

    /// Runs `ghm` with `args` and `--img-scale 416x320`.
    static func runGHM(_ args: [String], cwd: String? = nil) throws -> ProcessResult {
        try runProcess(try ghm(), args + ["--img-scale", "416x320"], cwd: cwd)
    }

    /// Random bytes with a .jpg name.
    static func writeCorruptJPEG(_ path: String) throws {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &g) }
        // make sure it is not accidentally a valid JPEG start
        try Data([0x00, 0x11] + bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Every file under `dir` (relative paths), including hidden ones.
    static func allFiles(_ dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let p = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir), !isDir.boolValue { out.append(p) }
        }
        return out.sorted()
    }

    static func json(_ path: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

final class InferTests: XCTestCase {
    /// A folder `a/` with good images and a corrupt JPEG, a folder `b/` with an image of the same name as one in
    /// `a/`, and `list.txt` naming b's image, a duplicate of a's, a missing file and a comment.
    func makeInputs() throws -> (root: String, good: [String]) {
        let src = try InferFixture.images()
        let root = try Repo.temporaryDirectory("ghm-infer")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
        for size in ["300x230", "320x240", "400x300"] {
            try fm.copyItem(atPath: "\(src)/synthetic_\(size)_s0.jpg", toPath: "\(root)/a/synthetic_\(size)_s0.jpg")
        }
        try fm.copyItem(atPath: "\(src)/synthetic_360x270_s0.jpg", toPath: "\(root)/b/synthetic_300x230_s0.jpg")
        try InferFixture.writeCorruptJPEG(root + "/a/corrupt.jpg")
        try "# images to run\nb/synthetic_300x230_s0.jpg\n\na/synthetic_320x240_s0.jpg\nmissing.jpg\n"
            .write(toFile: root + "/list.txt", atomically: true, encoding: .utf8)
        let good = ["a/synthetic_300x230_s0.jpg", "a/synthetic_320x240_s0.jpg", "a/synthetic_400x300_s0.jpg",
                    "b/synthetic_300x230_s0.jpg"].map { "\(root)/\($0)" }
        return (root, good)
    }

    // MARK: - through the library

    func testInferLibraryFolderListCorruptAndMissing() throws {
        let detector = try InferFixture.detector()
        let (root, good) = try makeInputs()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (files, problems) = InferenceInputs.collect([root + "/a", root + "/list.txt"])
        XCTAssertEqual(files, [root + "/a/corrupt.jpg"] + good.prefix(3) + [good[3]], "folder sorted, list appended, duplicate dropped")
        XCTAssertEqual(problems.map(\.path), [root + "/missing.jpg"])
        XCTAssertEqual(problems.first?.origin, root + "/list.txt:5")

        let out = root + "/out"
        var reported: [String] = []
        var progressText = ""
        let progress = ProgressReporter(total: files.count, label: "infer", isTerminal: false, write: { progressText += $0 })
        var options = InferOptions(outputDirectory: out, batchSize: 3)
        options.prefetchBatches = 1
        let summary = try InferenceRun.run(detector: detector, files: files, inputProblems: problems, options: options,
                                           progress: progress, report: { reported.append($0) })
        print(summary.text)
        XCTAssertEqual(summary.succeededCount, 4)
        XCTAssertEqual(summary.failedCount, 2)
        XCTAssertEqual(reported.count, 2)
        XCTAssertTrue(reported.contains { $0.contains("missing.jpg") && $0.contains("no such file") }, "\(reported)")
        XCTAssertTrue(reported.contains { $0.contains("corrupt.jpg") && $0.contains("not a readable image") }, "\(reported)")
        XCTAssertTrue(progressText.contains("[infer] 5/5 (100%)"), progressText)
        XCTAssertEqual(summary.stats.images, 5)
        XCTAssertEqual(summary.stats.batches, 2)  // corrupt + 3 good, then 1 good
        XCTAssertGreaterThan(summary.stats.decodeSeconds, 0)

        // results.json: the COCO-like list with file names, only for the good images
        let results = try XCTUnwrap(try InferFixture.json(out + "/results.json") as? [[String: Any]])
        XCTAssertGreaterThan(results.count, 40)
        XCTAssertEqual(Set(results.compactMap { $0["file"] as? String }), Set(good))
        for r in results {
            XCTAssertEqual(Set(r.keys), ["file", "image_id", "bbox", "score", "category_id", "label", "class"])
            let bbox = try XCTUnwrap(r["bbox"] as? [Double])
            XCTAssertEqual(bbox.count, 4)
            XCTAssertTrue(bbox[2] >= 0 && bbox[3] >= 0)
            XCTAssertGreaterThan(try XCTUnwrap(r["score"] as? Double), 0.05)
            let label = try XCTUnwrap(r["label"] as? Int)
            XCTAssertEqual(r["class"] as? String, cocoClasses[label])
            XCTAssertEqual(r["category_id"] as? Int, InferenceRun.cocoCategoryIds[label])
            XCTAssertEqual(r["image_id"] as? Int, files.firstIndex(of: r["file"] as! String))
        }
        XCTAssertEqual(InferenceRun.cocoCategoryIds.count, 80)
        XCTAssertEqual(InferenceRun.cocoCategoryIds.last, 90)

        // a batch of three gives what one image alone gives (same padded size, so the same input)
        let single = try detector.detect(paths: [good[1]])[0].rows()
        let mine = results.filter { ($0["file"] as? String) == good[1] }
        XCTAssertEqual(mine.count, single.count)
        for (r, s) in zip(mine, single) {
            XCTAssertEqual(r["label"] as? Int, s.label)
            XCTAssertEqual(try XCTUnwrap(r["score"] as? Double), Double(s.score), accuracy: 1e-4)
            let b = try XCTUnwrap(r["bbox"] as? [Double])
            assertClose(b, [Double(s.box[0]), Double(s.box[1]), Double(s.box[2] - s.box[0]), Double(s.box[3] - s.box[1])],
                        atol: 1e-3, rtol: 0)
        }

        // drawn images: one per good image, no collision between a/ and b/, each decodes with the input's size
        let written = InferFixture.allFiles(out)
        XCTAssertEqual(written, ["results.json", "summary.json", "vis/a/synthetic_300x230_s0.jpg",
                                 "vis/a/synthetic_320x240_s0.jpg", "vis/a/synthetic_400x300_s0.jpg",
                                 "vis/b/synthetic_300x230_s0.jpg"], "no temporary or extra files")
        for (input, drawn) in zip(good, ["a/synthetic_300x230_s0.jpg", "a/synthetic_320x240_s0.jpg",
                                         "a/synthetic_400x300_s0.jpg", "b/synthetic_300x230_s0.jpg"]) {
            let original = try Image.read(input), picture = try Image.read(out + "/vis/" + drawn)
            XCTAssertEqual(picture.width, original.width)
            XCTAssertEqual(picture.height, original.height)
            let a = try original.bytes(), b = try picture.bytes()
            let changed = zip(a, b).filter { abs(Int($0) - Int($1)) > 40 }.count
            XCTAssertGreaterThan(changed, a.count / 50, "boxes and labels were drawn on \(drawn)")
        }

        // summary.json: every image, with its id, size or error
        let s = try XCTUnwrap(try InferFixture.json(out + "/summary.json") as? [String: Any])
        XCTAssertEqual(s["num_images"] as? Int, 6)
        XCTAssertEqual(s["num_failed"] as? Int, 2)
        XCTAssertEqual(s["num_detections"] as? Int, results.count)
        let images = try XCTUnwrap(s["images"] as? [[String: Any]])
        XCTAssertEqual(images.count, 5)
        XCTAssertNotNil(images[0]["error"])
        XCTAssertEqual(images[1]["width"] as? Int, 300)
        XCTAssertEqual(images[4]["drawn"] as? String, "vis/b/synthetic_300x230_s0.jpg")
        XCTAssertEqual((s["input_errors"] as? [String])?.count, 1)
    }

    func testScoreThresholdAndNoDraw() throws {
        let detector = try InferFixture.detector()
        let src = try InferFixture.images()
        let out = try Repo.temporaryDirectory("ghm-infer-nodraw")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let files = ["\(src)/synthetic_288x216_s0.png"]
        let summary = try InferenceRun.run(detector: detector, files: files,
                                           options: InferOptions(outputDirectory: out, scoreThreshold: 0.5, draw: false))
        XCTAssertEqual(summary.failedCount, 0)
        XCTAssertGreaterThan(summary.detections.count, 0)
        XCTAssertTrue(summary.detections.allSatisfy { $0.score > 0.5 })
        let all = try detector.detect(paths: files)[0].rows()
        XCTAssertEqual(summary.detections.count, all.filter { $0.score > 0.5 }.count)
        XCTAssertLessThan(summary.detections.count, all.count)
        XCTAssertEqual(InferFixture.allFiles(out), ["results.json", "summary.json"])
    }

    func testUnwritableOutputFolder() throws {
        let root = try Repo.temporaryDirectory("ghm-infer-unwritable")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "x".write(toFile: root + "/file", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try InferenceRun.prepareOutputDirectory(root + "/file/out")) { error in
            XCTAssertTrue("\(error)".contains("output folder \(root)/file/out: cannot create it"), "\(error)")
        }
        XCTAssertThrowsError(try InferenceRun.prepareOutputDirectory(root + "/file")) { error in
            XCTAssertTrue("\(error)".contains("is not a folder"), "\(error)")
        }
        XCTAssertEqual(InferFixture.allFiles(root), ["file"])
    }

    // MARK: - through the executable

    func testInferExecutable() throws {
        let (root, good) = try makeInputs()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // relative inputs, run from the input folder
        let r = try InferFixture.runGHM(["infer", "a", "list.txt", "--config", InferFixture.config,
                                         "--checkpoint", try InferFixture.checkpoint(), "--out", "out",
                                         "--batch-size", "2", "--score-thr", "0.3"], cwd: root)
        print(r.stdout, r.stderr)
        XCTAssertEqual(r.status, 1, "a corrupt and a missing image: exit code 1")
        XCTAssertTrue(r.stderr.contains("error: decode: 'a/corrupt.jpg' is not a readable image"), r.stderr)
        XCTAssertTrue(r.stderr.contains("error: list.txt:5: missing.jpg: no such file or folder"), r.stderr)
        XCTAssertTrue(r.stderr.contains("error: 2 inputs failed"), r.stderr)
        XCTAssertTrue(r.stderr.contains("[infer] 5/5 (100%)"), r.stderr)
        XCTAssertTrue(r.stdout.contains("images:     6 (4 done, 2 failed)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("with score > 0.3"), r.stdout)
        let results = try XCTUnwrap(try InferFixture.json(root + "/out/results.json") as? [[String: Any]])
        XCTAssertEqual(Set(results.compactMap { $0["file"] as? String }),
                       Set(good.map { String($0.dropFirst(root.count + 1)) }), "file names as given (relative)")
        XCTAssertTrue(results.allSatisfy { ($0["score"] as? Double ?? 0) > 0.3 })
        let vis = InferFixture.allFiles(root + "/out/vis")
        XCTAssertEqual(vis, ["a/synthetic_300x230_s0.jpg", "a/synthetic_320x240_s0.jpg", "a/synthetic_400x300_s0.jpg",
                             "b/synthetic_300x230_s0.jpg"])
        for name in vis { XCTAssertNoThrow(try Image.read(root + "/out/vis/" + name)) }

        // only good images, --no-draw: exit 0, no vis folder
        let ok = try InferFixture.runGHM(["infer", good[0], "--config", InferFixture.config, "--checkpoint",
                                          try InferFixture.checkpoint(), "--out", root + "/out2", "--no-draw"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(InferFixture.allFiles(root + "/out2"), ["results.json", "summary.json"])
    }

    func testInferExecutableErrors() throws {
        let root = try Repo.temporaryDirectory("ghm-infer-errors")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let img = try InferFixture.images() + "/synthetic_300x230_s0.jpg"
        try "x".write(toFile: root + "/file", atomically: true, encoding: .utf8)
        let common = ["--config", InferFixture.config, "--checkpoint", try InferFixture.checkpoint()]
        // output folder cannot be created
        var r = try InferFixture.runGHM(["infer", img] + common + ["--out", root + "/file/out"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: output folder \(root)/file/out: cannot create it"), r.stderr)
        // nothing to do
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        r = try InferFixture.runGHM(["infer", root + "/empty"] + common + ["--out", root + "/out"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("no image files in the inputs"), r.stderr)
        XCTAssertEqual(InferFixture.allFiles(root), ["file"], "nothing written")
        // usage errors
        r = try InferFixture.runGHM(["infer", img] + common + ["--out", root + "/out", "--batch-size", "0"])
        XCTAssertEqual(r.status, 64)
    }

    // MARK: - pieces without the model

    func testInputCollection() throws {
        let root = try Repo.temporaryDirectory("ghm-inputs")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        for dir in ["d", "d/sub", "d/sub/deeper", "d/.hidden"] { try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        for f in ["d/b.JPG", "d/a.png", "d/notes.txt", "d/.x.jpg", "d/sub/c.jpeg", "d/sub/deeper/e.tif", "d/.hidden/h.jpg", "noext"] {
            XCTAssertTrue(fm.createFile(atPath: "\(root)/\(f)", contents: Data([0xFF, 0xD8, 0x00])))
        }
        XCTAssertEqual(symlink("\(root)/d", "\(root)/d/sub/loop"), 0)
        try "  # comment\r\nd/a.png\r\n/abs/missing.jpg\nd/sub\n\n".write(toFile: "\(root)/list.lst", atomically: true, encoding: .utf8)

        var r = InferenceInputs.collect(["\(root)/d"])
        XCTAssertEqual(r.files, ["\(root)/d/a.png", "\(root)/d/b.JPG"])
        XCTAssertEqual(r.problems, [])
        r = InferenceInputs.collect(["\(root)/d"], recursive: true)
        XCTAssertEqual(r.files, ["\(root)/d/a.png", "\(root)/d/b.JPG", "\(root)/d/sub/c.jpeg", "\(root)/d/sub/deeper/e.tif"],
                       "subfolders, no hidden files, the symlink cycle skipped")
        r = InferenceInputs.collect(["\(root)/list.lst", "\(root)/noext", "\(root)/d/a.png", "\(root)/nope"])
        XCTAssertEqual(r.files, ["\(root)/d/a.png", "\(root)/d/sub/c.jpeg", "\(root)/noext"])
        XCTAssertEqual(r.problems.map(\.description), ["\(root)/list.lst:3: /abs/missing.jpg: no such file or folder",
                                                       "\(root)/nope: no such file or folder"])
        // a list in the current folder keeps relative names
        let cwd = fm.currentDirectoryPath
        XCTAssertTrue(fm.changeCurrentDirectoryPath(root))
        defer { _ = fm.changeCurrentDirectoryPath(cwd) }
        XCTAssertEqual(InferenceInputs.collect(["list.lst"]).files, ["d/a.png", "d/sub/c.jpeg"])
    }

    func testOutputNames() {
        XCTAssertEqual(InferenceInputs.outputNames(for: ["/x/y/a.jpg"]), ["a.jpg"])
        XCTAssertEqual(InferenceInputs.outputNames(for: ["/data/a/x.jpg", "/data/b/x.jpg", "/data/b/c/x.jpg"]),
                       ["a/x.jpg", "b/x.jpg", "b/c/x.jpg"])
        XCTAssertEqual(InferenceInputs.outputNames(for: ["/d/X.jpg", "/d/x.jpg", "/d/scan.tif", "/d/scan.tif.png", "/d/p.PNG"]),
                       ["X.jpg", "x_2.jpg", "scan.tif.png", "scan.tif_2.png", "p.PNG"])
        XCTAssertEqual(InferenceInputs.outputNames(for: ["/d/a.jpg", "/d/./a.jpg"]).count, 2)
    }

    func testProgressReporter() {
        var text = ""
        let p = ProgressReporter(total: 3, label: "eval", isTerminal: true, write: { text += $0 })
        p.advance()
        p.advance(failed: true)
        p.advance()
        p.finish()
        XCTAssertTrue(text.hasPrefix("\r[eval] "), text)
        XCTAssertTrue(text.contains("[eval] 3/3 (100%)"), text)
        XCTAssertTrue(text.contains("(1 failed)"), text)
        XCTAssertTrue(text.hasSuffix("\u{1B}[K\n"), text)
        let q = ProgressReporter(total: 10, label: "infer", isTerminal: false, interval: 1000, write: { _ in })
        q.advance()
        XCTAssertTrue(q.line(now: monotonicSeconds()).contains("ETA "))
        XCTAssertEqual(ProgressReporter.clock(75), "1:15")
        XCTAssertEqual(ProgressReporter.clock(3725), "1:02:05")
    }

    func testPaletteAndJSON() {
        let colors = (0..<80).map { DetectionDrawer.color(forLabel: $0) }
        XCTAssertEqual(Set(colors.map { "\($0)" }).count, 80, "one colour per class")
        XCTAssertTrue(colors.allSatisfy { [$0.b, $0.g, $0.r].allSatisfy { (0...255).contains($0) } })
        XCTAssertEqual(InferenceRun.categoryId(forLabel: 79, classNames: cocoClasses), 90)
        XCTAssertEqual(InferenceRun.categoryId(forLabel: 2, classNames: ["a", "b", "c"]), 3)
    }

    /// The pipeline hands results over in input order, failures included, and stops its decoder thread when the
    /// consumer throws.
    func testBatchInferenceOrderAndCancellation() throws {
        let detector = try InferFixture.detector()
        let src = try InferFixture.images()
        let items = [InferenceItem(id: 10, path: "\(src)/synthetic_300x230_s0.png"),
                     InferenceItem(id: 11, path: "\(src)/nope.png"),
                     InferenceItem(id: 12, path: "\(src)/synthetic_320x240_s0.png")]
        var seen: [(Int, Int, Bool)] = []
        let stats = try BatchInference(detector: detector, batchSize: 2).run(items) { r in
            seen.append((r.position, r.item.id, r.detections != nil))
        }
        XCTAssertEqual(seen.map(\.0), [0, 1, 2])
        XCTAssertEqual(seen.map(\.1), [10, 11, 12])
        XCTAssertEqual(seen.map(\.2), [true, false, true])
        XCTAssertEqual(stats.failed, 1)
        XCTAssertEqual(stats.batches, 1)
        // without the decoder thread (prefetch 0): the same outcomes
        var inline: [(Int, Int, Bool)] = []
        try BatchInference(detector: detector, batchSize: 2, prefetchBatches: 0).run(items) { r in
            inline.append((r.position, r.item.id, r.detections != nil))
        }
        XCTAssertEqual(inline.map(\.1), [10, 11, 12])
        XCTAssertEqual(inline.map(\.2), [true, false, true])

        struct Stop: Error {}
        let many = (0..<40).map { InferenceItem(id: $0, path: "\(src)/nope\($0).png") }
        var calls = 0
        XCTAssertThrowsError(try BatchInference(detector: detector, batchSize: 1).run(many) { _ in
            calls += 1
            if calls == 3 { throw Stop() }
        })
        XCTAssertEqual(calls, 3)
    }
}
