import COCO
import Foundation
import Imaging
import TestSupport
import XCTest

@testable import Datasets

final class TileSplitStatsTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try Repo.temporaryDirectory("ghm-tiles") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testWindowStartsCoverTheImage() {
        XCTAssertEqual(DatasetTiler.windowStarts(length: 1000, size: 400, stride: 300), [0, 300, 600])
        XCTAssertEqual(DatasetTiler.windowStarts(length: 1010, size: 400, stride: 300), [0, 300, 600, 610])
        XCTAssertEqual(DatasetTiler.windowStarts(length: 400, size: 400, stride: 300), [0])
        XCTAssertEqual(DatasetTiler.windowStarts(length: 250, size: 400, stride: 300), [0])
    }

    /// A 100×70 image, 60×60 tiles, overlap 0.5 (stride 30): x windows 0, 30, 40; y windows 0, 10.
    func testTilesBoxesClippedDroppedAndPixelsEqualTheCrop() throws {
        let pixels = try writeImage(dir, "src.png", width: 100, height: 70)
        let boxes = [
            COCOBox(x1: 5, y1: 5, x2: 25, y2: 25),    // only in x=0 tiles (fully); x=30/40 tiles: outside
            COCOBox(x1: 50, y1: 20, x2: 70, y2: 40),  // x=0 tile: [50,60] = half → kept at 0.5; x=30, 40: whole
            COCOBox(x1: 55, y1: 0, x2: 95, y2: 10),   // x=0 tile: 5 of 40 wide → dropped; x=30: 35/40 kept; x=40: whole
        ]
        let anns = boxes.enumerated().map { COCOAnnotation(id: $0.offset + 1, imageId: 7, categoryId: 3, bbox: $0.element) }
        let input = try DatasetFile(images: [COCOImage(id: 7, fileName: "src.png", width: 100, height: 70)],
                                    annotations: anns, categories: [COCOCategory(id: 3, name: "tree")])
        let out = dir + "/out"
        var tiler = DatasetTiler(options: .init(tileWidth: 60, tileHeight: 60, overlap: 0.5, minVisible: 0.5,
                                                imagesDir: dir, outDir: out))
        let summary = try tiler.run(input, inputPath: "in.json")
        XCTAssertEqual(summary.tiles, 6)
        XCTAssertEqual(summary.boxesLost, 0)
        let written = try DatasetFile.load(path: out + "/annotations.json")
        let coco = written.coco
        XCTAssertEqual(coco.images.map(\.fileName), ["src_0_0.png", "src_30_0.png", "src_40_0.png",
                                                     "src_0_10.png", "src_30_10.png", "src_40_10.png"])
        XCTAssertEqual(written.origins.map { $0?.sourceFile }, Array(repeating: "src.png", count: 6))
        XCTAssertEqual(written.origins.map { [$0!.x, $0!.y] }, [[0, 0], [30, 0], [40, 0], [0, 10], [30, 10], [40, 10]])
        XCTAssertEqual(coco.categories, [COCOCategory(id: 3, name: "tree")])
        func tileBoxes(_ i: Int) -> [[Double]] { coco.annotations(forImageId: coco.images[i].id).map(\.bbox.array) }
        XCTAssertEqual(tileBoxes(0), [[5, 5, 20, 20], [50, 20, 10, 20]])
        XCTAssertEqual(tileBoxes(1), [[20, 20, 20, 20], [25, 0, 35, 10]])   // box 3: x 55..90 in the tile (35 of 40)
        XCTAssertEqual(tileBoxes(2), [[10, 20, 20, 20], [15, 0, 40, 10]])
        XCTAssertEqual(tileBoxes(3), [[5, 0, 20, 15], [50, 10, 10, 20]])     // y=10: box 1 keeps 15 of 20 rows
        XCTAssertEqual(tileBoxes(4), [[20, 10, 20, 20]])                     // box 3 keeps 0 rows there: not in it
        XCTAssertEqual(tileBoxes(5), [[10, 10, 20, 20]])
        // Dropped pieces: box 3 in tiles (0,0) (5 of 40 wide) → 1; at y=10 box 3 is outside (y 0..10 ends at 10).
        XCTAssertEqual(summary.piecesDropped, 1)
        XCTAssertEqual(summary.piecesKept, coco.annotations.count)
        XCTAssertEqual(coco.annotations.map(\.id), Array(1...coco.annotations.count))
        for (i, image) in coco.images.enumerated() {
            let tile = try Image.read(out + "/images/" + image.fileName!)
            XCTAssertEqual([tile.width, tile.height], [60, 60])
            XCTAssertEqual(try tile.bytes(), DatasetTiler.crop(pixels, width: 100, channels: 3,
                                                               x: written.origins[i]!.x, y: written.origins[i]!.y, w: 60, h: 60))
        }
        // The crop itself, against the pixel formula of writeImage.
        let first = DatasetTiler.crop(pixels, width: 100, channels: 3, x: 30, y: 10, w: 60, h: 60)
        XCTAssertEqual(Array(first[0..<3]), [30, 10, UInt8((30 * 7 + 10 * 3) % 256)])
    }

    func testSmallImageIsOneTileAndSkipEmptyAndMissingImage() throws {
        try writeImage(dir, "small.png", width: 30, height: 20)
        let input = try DatasetFile(images: [COCOImage(id: 1, fileName: "small.png", width: 30, height: 20),
                                             COCOImage(id: 2, fileName: "gone.png", width: 30, height: 20)],
                                    annotations: [COCOAnnotation(id: 1, imageId: 2, categoryId: 1,
                                                                 bbox: COCOBox(x: 1, y: 1, width: 2, height: 2))],
                                    categories: [COCOCategory(id: 1, name: "a")])
        var tiler = DatasetTiler(options: .init(tileWidth: 64, tileHeight: 64, overlap: 0.25, minVisible: 0.5,
                                                imagesDir: dir, outDir: dir + "/keep"))
        var s = try tiler.run(input, inputPath: "in.json")
        XCTAssertEqual([s.tiles, s.imagesFailed], [1, 1])
        XCTAssertEqual(tiler.log.issues.count, 1)
        XCTAssertTrue(tiler.log.issues[0].description.hasPrefix("in.json: rejected: images[1] gone.png: "), tiler.log.issues[0].description)
        let kept = try DatasetFile.load(path: dir + "/keep/annotations.json").coco
        XCTAssertEqual(kept.images, [COCOImage(id: 1, fileName: "small_0_0.png", width: 30, height: 20)], "not padded")
        XCTAssertEqual(kept.annotations, [], "nothing of the failed image")
        tiler = DatasetTiler(options: .init(tileWidth: 64, tileHeight: 64, overlap: 0.25, minVisible: 0.5,
                                            imagesDir: dir, outDir: dir + "/skip", skipEmpty: true))
        s = try tiler.run(input, inputPath: "in.json")
        XCTAssertEqual([s.tiles, s.emptyTilesSkipped], [0, 1])
    }

    func tiled() throws -> DatasetFile {
        // Sources a (3 tiles), b (2 tiles), c (an untiled image), d (1 tile); 2 boxes per image.
        let sources = ["a.png", "a.png", "a.png", "b.png", "b.png", nil, "d.png"]
        var images: [COCOImage] = [], anns: [COCOAnnotation] = []
        for (i, _) in sources.enumerated() {
            images.append(COCOImage(id: 10 + i, fileName: sources[i] == nil ? "c.png" : "t\(i).png", width: 50, height: 40))
            for k in 0..<2 {
                anns.append(COCOAnnotation(id: 100 + 2 * i + k, imageId: 10 + i, categoryId: 1 + k,
                                           bbox: COCOBox(x: 0, y: 0, width: Double(i + 1), height: Double(2 * k + 1))))
            }
        }
        let origins = sources.map { $0.map { TileOrigin(sourceFile: $0, x: 0, y: 0) } }
        return try DatasetFile(images: images, annotations: anns,
                               categories: [COCOCategory(id: 1, name: "x"), COCOCategory(id: 2, name: "y")], origins: origins)
    }

    func testSplitKeepsSourcesTogether() throws {
        let file = try tiled()
        let (train, val) = try DatasetSplit.split(file, val: ["b", "c.png"])
        XCTAssertEqual(val.coco.images.map(\.id), [13, 14, 15])
        XCTAssertEqual(train.coco.images.map(\.id), [10, 11, 12, 16])
        XCTAssertEqual(val.coco.annotations.map(\.id), [106, 107, 108, 109, 110, 111], "annotations keep their ids")
        XCTAssertEqual(val.origins.map { $0?.sourceFile }, ["b.png", "b.png", nil])
        XCTAssertEqual(val.coco.categories.count, 2)
        XCTAssertThrowsError(try DatasetSplit.split(file, val: ["zzz"])) { XCTAssertEqual("\($0)", "--val zzz: no image has this source") }
        for seed: UInt64 in 0..<20 {
            let (tr, va) = try DatasetSplit.split(file, valFraction: 0.5, seed: seed)
            let trainSources = Set(tr.coco.images.indices.map { tr.source(ofImageAt: $0) })
            let valSources = Set(va.coco.images.indices.map { va.source(ofImageAt: $0) })
            XCTAssertEqual(valSources.count, 2, "round(0.5 × 4)")
            XCTAssertTrue(trainSources.isDisjoint(with: valSources))
            XCTAssertEqual(tr.coco.images.count + va.coco.images.count, 7)
            let again = try DatasetSplit.split(file, valFraction: 0.5, seed: seed)
            XCTAssertEqual(again.val.coco.images, va.coco.images, "same seed, same split")
        }
        // Written with the tile keys, read back with them.
        try val.write(to: dir + "/val.json")
        XCTAssertEqual(try DatasetFile.load(path: dir + "/val.json").origins, val.origins)
    }

    func testStats() throws {
        let stats = DatasetStats(try tiled())
        XCTAssertEqual([stats.images, stats.boxes, stats.sources, stats.imagesWithoutBoxes], [7, 14, 4, 0])
        XCTAssertEqual(stats.boxesPerClass.map(\.count), [7, 7])
        XCTAssertEqual(stats.boxesPerImage.min, 2)
        XCTAssertEqual(stats.boxesPerImage.max, 2)
        // Widths 1,1,2,2,…,7,7: numpy.percentile(…, [0,5,25,50,75,95,100]) = 1, 1, 2.25, 4, 5.75, 7, 7 (checked with numpy).
        XCTAssertEqual(stats.width.values, [1, 1, 2.25, 4, 5.75, 7, 7], accuracy: 1e-12)
        XCTAssertEqual(stats.height.values, [1, 1, 1, 2, 3, 3, 3])
        let json = try JSONSerialization.jsonObject(with: Data(stats.jsonText().utf8)) as! [String: Any]
        XCTAssertEqual(json["boxes"] as? Int, 14)
        XCTAssertEqual(json["boxes_per_class"] as? [String: Int], ["x": 7, "y": 7])
        XCTAssertTrue(stats.text().contains("images         7 (4 sources), 0 without boxes"), stats.text())
    }
}

func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
