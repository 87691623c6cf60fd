import Foundation
import Imaging
import Support
import TestSupport
import XCTest
@testable import Detection
@testable import Inference

final class TiledInferenceTests: XCTestCase {
    // MARK: - windows

    func testPositionsAndWindowCounts() {
        XCTAssertEqual(TiledInference.positions(length: 1249, tile: 400, stride: 300), [0, 300, 600, 849])
        XCTAssertEqual(TiledInference.positions(length: 1035, tile: 400, stride: 300), [0, 300, 600, 635])
        XCTAssertEqual(TiledInference.positions(length: 400, tile: 400, stride: 300), [0], "fits exactly: one window")
        XCTAssertEqual(TiledInference.positions(length: 250, tile: 400, stride: 300), [0])
        XCTAssertEqual(TiledInference.positions(length: 401, tile: 400, stride: 300), [0, 1])
        XCTAssertEqual(TiledInference.positions(length: 800, tile: 400, stride: 400), [0, 400], "no overlap, no extra window")
        XCTAssertEqual(TiledInference.positions(length: 700, tile: 400, stride: 300), [0, 300])

        let s = TileSettings(width: 400, height: 400, overlap: 0.25)
        XCTAssertEqual(s.strideX, 300)
        XCTAssertEqual(TileSettings(width: 10, height: 7, overlap: 0.9).strideY, 1)
        XCTAssertEqual(TileSettings(width: 10, height: 3, overlap: 0.9).strideY, 1, "at least 1")
        let w = TiledInference.windows(width: 1249, height: 1035, settings: s)
        XCTAssertEqual(w.count, 16)
        XCTAssertEqual(w.first, TileWindow(x: 0, y: 0, width: 400, height: 400, imageWidth: 1249, imageHeight: 1035))
        XCTAssertEqual(w.last, TileWindow(x: 849, y: 635, width: 400, height: 400, imageWidth: 1249, imageHeight: 1035),
                       "the last window is aligned to the right and bottom edges")
        XCTAssertEqual(w[1].x, 300, "row by row")
        XCTAssertEqual(w[4].y, 300)

        // an image not larger than the tile: one window, the whole image, all edges the image's own
        let one = TiledInference.windows(width: 300, height: 230, settings: s)
        XCTAssertEqual(one, [TileWindow(x: 0, y: 0, width: 300, height: 230, imageWidth: 300, imageHeight: 230)])
        XCTAssertFalse(one[0].interiorLeft || one[0].interiorTop || one[0].interiorRight || one[0].interiorBottom)
        // larger in one direction only: full-width windows
        let strip = TiledInference.windows(width: 300, height: 900, settings: s)
        XCTAssertEqual(strip.map(\.y), [0, 300, 500])
        XCTAssertTrue(strip.allSatisfy { $0.x == 0 && $0.width == 300 && $0.height == 400 })
        XCTAssertEqual(strip.map(\.interiorTop), [false, true, true])
        XCTAssertEqual(strip.map(\.interiorBottom), [true, true, false])
    }

    func testWindowsCoverEveryPixel() {
        let lengths = [1, 15, 16, 250, 399, 400, 401, 699, 900, 1249], tiles = [16, 100, 250, 400]
        let layouts = lengths.flatMap { l in tiles.map { (l, $0) } }
        for (k, (width, tileWidth)) in layouts.enumerated() {
            let (height, tileHeight) = layouts[(7 * k + 3) % layouts.count]
            let s = TileSettings(width: tileWidth, height: tileHeight, overlap: [0, 0.1, 0.25, 0.5, 0.9][k % 5])
            let windows = TiledInference.windows(width: width, height: height, settings: s)
            let label = "\(width)x\(height) tile \(s.width)x\(s.height) overlap \(s.overlap)"
            let xs = Set(windows.map(\.x)).sorted(), ys = Set(windows.map(\.y)).sorted()
            XCTAssertEqual(windows.count, xs.count * ys.count, label)
            for w in windows {
                XCTAssertTrue(w.x >= 0 && w.y >= 0 && w.x + w.width <= width && w.y + w.height <= height, label)
                XCTAssertEqual(w.width, min(s.width, width), label)
                XCTAssertEqual(w.height, min(s.height, height), label)
            }
            // consecutive windows overlap or touch, the first starts at 0 and the last ends at the edge
            for (axis, starts, tile, length, stride) in [("x", xs, min(s.width, width), width, s.strideX),
                                                         ("y", ys, min(s.height, height), height, s.strideY)] {
                XCTAssertEqual(starts.first, 0, label)
                XCTAssertEqual(starts.last.map { $0 + tile }, length, "\(label): last aligned on \(axis)")
                for (a, b) in zip(starts, starts.dropFirst()) {
                    XCTAssertTrue(b - a >= 1 && b - a <= stride, "\(label): \(axis) steps \(a) → \(b)")
                }
                let expected = length <= tile ? 1 : Int((Double(length - tile) / Double(stride)).rounded(.up)) + 1
                XCTAssertEqual(starts.count, expected, "\(label): \(axis) count")
            }
        }
    }

    func testParseSize() {
        XCTAssertTrue(TileSettings.parseSize("800x600")! == (800, 600))
        XCTAssertTrue(TileSettings.parseSize("512X512")! == (512, 512))
        XCTAssertTrue(TileSettings.parseSize("640")! == (640, 640))
        for bad in ["", "x", "800x", "0x600", "-1x5", "8x6x4", "axb", "800 x 600"] {
            XCTAssertNil(TileSettings.parseSize(bad), bad)
        }
    }

    // MARK: - placing and merging

    /// Image 700x400, window A = x 0..400, window B = x 300..700 (both full height).
    let a = TileWindow(x: 0, y: 0, width: 400, height: 400, imageWidth: 700, imageHeight: 400)
    let b = TileWindow(x: 300, y: 0, width: 400, height: 400, imageWidth: 700, imageHeight: 400)

    /// A detection given in image pixels, placed like a model's output of `window`.
    func det(_ box: [Double], _ score: Double, label: Int = 0, in index: Int) -> TileDetection {
        let w = index == 0 ? a : b
        let local = [box[0] - Double(w.x), box[1] - Double(w.y), box[2] - Double(w.x), box[3] - Double(w.y)]
        return TiledInference.place([(local.map(Float.init), Float(score), label)], window: index, of: w, edgeMargin: 2)[0]
    }

    func merge(_ d: [TileDetection], max: Int = 100) -> [TileDetection] {
        TiledInference.merge(d, iouThreshold: 0.5, coverThreshold: 0.8, maxPerImage: max)
    }

    func testPlaceShiftsAndMarksCutBoxes() {
        let rows: [(box: [Float], score: Float, label: Int)] = [
            ([0.5, 10, 50, 60], 0.9, 3), ([100, 100, 200, 398.5], 0.8, 1), ([100, 100, 398.5, 200], 0.7, 2),
        ]
        let inB = TiledInference.place(rows, window: 1, of: b, edgeMargin: 2)
        XCTAssertEqual(inB.map(\.box), [[300.5, 10, 350, 60], [400, 100, 500, 398.5], [400, 100, 698.5, 200]])
        XCTAssertEqual(inB.map(\.window), [1, 1, 1])
        XCTAssertEqual(inB.map(\.label), [3, 1, 2])
        // B's left edge is inside the image, its bottom and right edges are the image's
        XCTAssertEqual(inB.map(\.cut), [true, false, false])
        let inA = TiledInference.place(rows, window: 0, of: a, edgeMargin: 2)
        XCTAssertEqual(inA.map(\.cut), [false, false, true], "A's right edge (x 400) is inside the image")
        XCTAssertFalse(TiledInference.place([([10, 10, 397, 20], 0.5, 0)], window: 0, of: a, edgeMargin: 2)[0].cut,
                       "3 px from the edge is not cut")
    }

    func testObjectWholeInOneWindowAndCutInTheOtherBecomesOneDetection() {
        // the object spans x 200..380: whole in A; B sees x 300..380, cut by its left edge (IoU with the whole
        // box 0.44, so plain NMS would keep both, and the fragment even scores higher)
        let whole = det([200, 50, 380, 150], 0.6, in: 0)
        let fragment = det([300, 52, 380, 150], 0.9, in: 1)
        XCTAssertFalse(whole.cut)
        XCTAssertTrue(fragment.cut)
        XCTAssertLessThan(whole.iou(fragment), 0.5)
        var merged = merge([whole, fragment])
        XCTAssertEqual(merged, [whole], "exactly one detection, with the whole box")
        merged = merge([fragment, whole])
        XCTAssertEqual(merged, [whole], "in either order")
        // half of the box (IoU exactly 0.5, not > 0.5) is merged too
        let halfWhole = det([204, 50, 396, 150], 0.5, in: 0)  // not touching A's right edge
        let half = det([300, 50, 396, 150], 0.7, in: 1)
        XCTAssertEqual(halfWhole.iou(half), 0.5)
        XCTAssertEqual(halfWhole.cut, false)
        XCTAssertEqual(merge([halfWhole, half]), [halfWhole])
        // a fragment of another class is another object
        let other = det([300, 52, 380, 150], 0.9, label: 1, in: 1)
        XCTAssertEqual(merge([whole, other]), [other, whole])
    }

    func testDistinctAdjacentObjectsAreNotMerged() {
        // O1 spans x 220..330 (whole in A, cut in B), O2 spans x 330..450 (whole in B, cut in A); they touch
        let o1 = det([220, 50, 330, 150], 0.8, in: 0), o1cut = det([300, 50, 330, 150], 0.85, in: 1)
        let o2 = det([330, 50, 450, 150], 0.7, in: 1), o2cut = det([330, 50, 400, 150], 0.75, in: 0)
        XCTAssertEqual([o1, o1cut, o2, o2cut].map(\.cut), [false, true, false, true])
        XCTAssertEqual(merge([o1, o2cut, o1cut, o2]), [o1, o2], "two objects, each with its whole box")
        // two objects side by side, both seen whole in both windows: two detections
        let p = det([310, 200, 340, 240], 0.9, in: 0), q = det([342, 200, 372, 240], 0.8, in: 0)
        let p2 = det([311, 201, 340, 240], 0.85, in: 1), q2 = det([342, 200, 373, 241], 0.95, in: 1)
        XCTAssertEqual(merge([p, q, p2, q2]), [q2, p], "duplicates merged by NMS between windows, the best kept")
        // a small object inside a larger one of another window, not cut: kept (containment only drops fragments)
        let big = det([100, 100, 390, 390], 0.9, in: 0), small = det([320, 120, 360, 160], 0.5, in: 1)
        XCTAssertEqual(merge([big, small]), [big, small])
    }

    func testMergeKeepsEachWindowsOwnDetectionsAndTheBestMaxPerImage() {
        // two overlapping boxes of one window (the model's NMS kept both; IoU 0.6 here would be > 0.5) stay
        let x = det([10, 10, 110, 110], 0.9, in: 0), y = det([30, 10, 130, 110], 0.8, in: 0)
        XCTAssertEqual(merge([y, x]), [x, y], "score order, nothing removed within a window")
        // a cut box is not dropped for a box of its own window either
        let frag = det([300, 10, 340, 50], 0.9, in: 1), around = det([300, 0, 400, 100], 0.5, in: 1)
        XCTAssertEqual(merge([frag, around]).count, 2)
        // max_per_img: the best by score
        let many: [TileDetection] = (0..<10).map { (i: Int) -> TileDetection in
            let x = Double(40 * i)
            return det([x, 300, x + 20, 320], Double(i) / 10, in: i % 2)
        }
        XCTAssertEqual(merge(many, max: 3).map { ($0.score * 10).rounded() }, [9, 8, 7])
        XCTAssertEqual(merge(many, max: 0).count, 10)
        XCTAssertEqual(merge([]), [])
        // the result as a whole-image `Detections`
        let d = try! TiledInference.detections(merge([x, y]))
        let rows = try! d.rows()
        XCTAssertEqual(rows.map(\.box), [[10, 10, 110, 110], [30, 10, 130, 110]])
        XCTAssertEqual(rows.map(\.label), [0, 0])
        XCTAssertEqual(try TiledInference.detections([]).count, 0)
    }

    func testCrop() throws {
        try XCTSkipUnless(Image.isAvailable, "OpenCV image support")
        let w = 7, h = 5
        let bytes = (0..<(w * h * 3)).map { UInt8($0 % 251) }
        let image = try Image(bytes: bytes, height: h, width: w, channels: 3)
        let window = TileWindow(x: 2, y: 1, width: 4, height: 3, imageWidth: w, imageHeight: h)
        let crop = try TiledInference.crop(image, to: window)
        XCTAssertEqual([crop.width, crop.height, crop.channels], [4, 3, 3])
        var expected: [UInt8] = []
        for row in 1..<4 { expected += bytes[(row * w + 2) * 3..<(row * w + 6) * 3] }
        XCTAssertEqual(try crop.bytes(), expected)
        let all = TileWindow(x: 0, y: 0, width: w, height: h, imageWidth: w, imageHeight: h)
        XCTAssertTrue(try TiledInference.crop(image, to: all) === image, "the whole image is not copied")
    }

    // MARK: - with the model

    /// An image that fits one tile: the same results.json, byte for byte, as without --tile.
    func testImageThatFitsOneTileGivesTheWholeImageResults() throws {
        let detector = try InferFixture.detector()
        let src = try InferFixture.images()
        let root = try Repo.temporaryDirectory("ghm-tile-one")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = ["\(src)/synthetic_400x300_s0.png", "\(src)/synthetic_300x230_s0.jpg"]
        let plain = try InferenceRun.run(detector: detector, files: files,
                                         options: InferOptions(outputDirectory: root + "/plain", batchSize: 2, draw: false))
        var options = InferOptions(outputDirectory: root + "/tiled", batchSize: 2, draw: false)
        options.tiling = TileSettings(width: 400, height: 300, overlap: 0.25)
        let tiled = try InferenceRun.run(detector: detector, files: files, options: options)
        XCTAssertGreaterThan(plain.detections.count, 40)
        let a = try Data(contentsOf: URL(fileURLWithPath: root + "/plain/results.json"))
        let b = try Data(contentsOf: URL(fileURLWithPath: root + "/tiled/results.json"))
        XCTAssertEqual(a, b, "results.json identical")
        XCTAssertEqual(tiled.stats.windows, 2)
        XCTAssertEqual(tiled.stats.batches, 1)
        let s = try XCTUnwrap(try InferFixture.json(root + "/tiled/summary.json") as? [String: Any])
        let tile = try XCTUnwrap(s["tile"] as? [String: Any])
        XCTAssertEqual(tile["width"] as? Int, 400)
        XCTAssertEqual(tile["windows"] as? Int, 2)
        XCTAssertEqual((s["images"] as? [[String: Any]])?.map { $0["windows"] as? Int }, [1, 1])
        let p = try XCTUnwrap(try InferFixture.json(root + "/plain/summary.json") as? [String: Any])
        XCTAssertNil(p["tile"], "without --tile, summary.json as before")
        XCTAssertNil((p["images"] as? [[String: Any]])?.first?["windows"])
    }

    /// Images larger than the tile: several windows, batched across images; the results are the windows' own
    /// detections (each window detected alone) placed in the image and merged, in image bounds, and drawn on
    /// the full image.
    func testLargerImagesSplitIntoWindows() throws {
        let detector = try InferFixture.detector()
        let src = try InferFixture.images()
        let root = try Repo.temporaryDirectory("ghm-tile-many")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = ["\(src)/synthetic_400x300_s0.png", "\(src)/synthetic_360x270_s0.png"]
        let settings = TileSettings(width: 250, height: 200, overlap: 0.3)
        var options = InferOptions(outputDirectory: root, batchSize: 3, scoreThreshold: 0.05)
        options.tiling = settings
        options.prefetchBatches = 1
        let summary = try InferenceRun.run(detector: detector, files: files, options: options)
        print(summary.text)
        XCTAssertEqual(summary.failedCount, 0)
        XCTAssertEqual(summary.stats.windows, 8, "2x2 windows per image")
        XCTAssertEqual(summary.stats.batches, 3, "8 windows of both images in batches of 3")
        XCTAssertEqual(summary.images.map(\.windows), [4, 4])
        XCTAssertEqual(summary.images.map(\.width), [400, 360], "sizes of the full images")
        XCTAssertEqual(summary.images.map(\.height), [300, 270])
        XCTAssertTrue(summary.text.contains("tiles:      250x200, overlap 0.3: 8 windows (4.0 per image)"), summary.text)
        let cfg = detector.config.model.testCfg
        for (id, file) in files.enumerated() {
            let image = try Image.read(file)
            let mine = summary.detections.filter { $0.imageId == id }
            XCTAssertGreaterThan(mine.count, 10)
            XCTAssertLessThanOrEqual(mine.count, cfg.maxPerImg)
            for d in mine {
                XCTAssertTrue(d.bbox[0] >= 0 && d.bbox[1] >= 0 && d.bbox[2] >= 0 && d.bbox[3] >= 0, "\(d.bbox)")
                XCTAssertLessThanOrEqual(d.bbox[0] + d.bbox[2], Double(image.width) + 1e-3)
                XCTAssertLessThanOrEqual(d.bbox[1] + d.bbox[3], Double(image.height) + 1e-3)
            }
            XCTAssertTrue(mine.contains { $0.bbox[0] + $0.bbox[2] > 250 }, "boxes shifted into the right windows")
            XCTAssertTrue(mine.contains { $0.bbox[1] + $0.bbox[3] > 200 }, "boxes shifted into the bottom windows")
            // no two boxes of a class overlap by more than the NMS threshold (within a window the model's NMS saw
            // to it, between windows the merge)
            for (i, p) in mine.enumerated() {
                for q in mine[(i + 1)...] where q.label == p.label {
                    XCTAssertLessThanOrEqual(iou(p.bbox, q.bbox), cfg.nmsIouThreshold + 1e-4, "\(p.bbox) \(q.bbox)")
                }
            }
            // the same, window by window, one forward pass each
            let windows = TiledInference.windows(width: image.width, height: image.height, settings: settings)
            XCTAssertEqual(windows.count, 4)
            var placed: [TileDetection] = []
            for (k, w) in windows.enumerated() {
                let prepared = try detector.transform.prepare(try TiledInference.crop(image, to: w), filename: file)
                let rows = try detector.detect([prepared])[0].rows()
                placed += TiledInference.place(rows, window: k, of: w, edgeMargin: settings.edgeMargin)
            }
            let expected = TiledInference.merge(placed, iouThreshold: cfg.nmsIouThreshold,
                                                coverThreshold: settings.coverThreshold, maxPerImage: cfg.maxPerImg)
                .filter { $0.score > 0.05 }
            XCTAssertEqual(mine.count, expected.count)
            for (m, e) in zip(mine, expected) {
                XCTAssertEqual(m.label, e.label)
                XCTAssertEqual(m.score, e.score, accuracy: 1e-4)
                assertClose(m.bbox, [e.box[0], e.box[1], e.box[2] - e.box[0], e.box[3] - e.box[1]], atol: 1e-2, rtol: 0)
            }
            XCTAssertLessThan(expected.count, placed.count, "the merge removed duplicates of the overlaps")
        }
        // drawn: the full images
        for name in ["synthetic_400x300_s0.png", "synthetic_360x270_s0.png"] {
            let drawn = try Image.read(root + "/vis/" + name), original = try Image.read(src + "/" + name)
            XCTAssertEqual([drawn.width, drawn.height], [original.width, original.height])
        }
    }

    func iou(_ a: [Double], _ b: [Double]) -> Double {
        let w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]), h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        let i = w > 0 && h > 0 ? w * h : 0
        let union = a[2] * a[3] + b[2] * b[3] - i
        return union > 0 ? i / union : 0  // boxes clipped to an image edge can be empty
    }

    // MARK: - through the executable

    func testTileOptions() throws {
        let root = try Repo.temporaryDirectory("ghm-tile-cli")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let img = try InferFixture.images() + "/synthetic_400x300_s0.png"
        let common = ["infer", img, "--config", InferFixture.config, "--checkpoint", try InferFixture.checkpoint(),
                      "--no-draw"]
        for (args, message) in [(["--tile", "400"] + ["--overlap", "0.95"], "--overlap must be in [0, 0.9]"),
                                (["--tile", "4x0"], "--tile takes WxH with two positive integers"),
                                (["--overlap", "0.2"], "--overlap needs --tile")] {
            let r = try InferFixture.runGHM(common + ["--out", root + "/bad"] + args)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
        XCTAssertEqual(InferFixture.allFiles(root), [], "nothing written")
        let r = try InferFixture.runGHM(common + ["--out", root + "/out", "--tile", "250x200", "--overlap", "0.3",
                                                  "--batch-size", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("tiles:      250x200, overlap 0.3: 4 windows (4.0 per image)"), r.stdout)
        let s = try XCTUnwrap(try InferFixture.json(root + "/out/summary.json") as? [String: Any])
        XCTAssertEqual((s["tile"] as? [String: Any])?["overlap"] as? Double, 0.3)
        XCTAssertEqual((s["images"] as? [[String: Any]])?.first?["windows"] as? Int, 4)
        let help = try InferFixture.runGHM(["infer", "--help"])
        XCTAssertTrue(help.stdout.contains("--tile <WxH>") && help.stdout.contains("--overlap 0.25"), help.stdout)
    }
}
