import COCO
import Foundation
import Imaging
import TestSupport
import XCTest

@testable import Datasets

/// Writes `text` to `dir/name` and returns the path.
@discardableResult
func write(_ text: String, _ dir: String, _ name: String) throws -> String {
    let path = dir + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A BGR test image whose pixel (x, y) is (x % 251, y % 241, (x * 7 + y * 3) % 256), written as PNG.
@discardableResult
func writeImage(_ dir: String, _ name: String, width: Int, height: Int) throws -> [UInt8] {
    var px = [UInt8]()
    px.reserveCapacity(width * height * 3)
    for y in 0..<height { for x in 0..<width { px += [UInt8(x % 251), UInt8(y % 241), UInt8((x * 7 + y * 3) % 256)] } }
    try Image(bytes: px, height: height, width: width, channels: 3).write(to: dir + "/" + name)
    return px
}

/// The 1-based line of the first line of `text` containing `marker`.
func line(of marker: String, in text: String) -> Int {
    text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(marker) }! + 1
}

func vocObject(_ name: String, _ box: [String], difficult: Int = 0) -> String {
    """
      <object>
        <name>\(name)</name>
        <difficult>\(difficult)</difficult>
        <bndbox>
          <xmin>\(box[0])</xmin>
          <ymin>\(box[1])</ymin>
          <xmax>\(box[2])</xmax>
          <ymax>\(box[3])</ymax>
        </bndbox>
      </object>
    """
}

func voc(_ file: String, size: (Int, Int)?, _ objects: [String]) -> String {
    let sizeText = size.map { "  <size><width>\($0.0)</width><height>\($0.1)</height><depth>3</depth></size>\n" } ?? ""
    return "<annotation>\n  <folder>x</folder>\n  <filename>\(file)</filename>\n" + sizeText
        + objects.joined(separator: "\n") + "\n</annotation>\n"
}

final class ConvertTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try Repo.temporaryDirectory("ghm-datasets") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func convert(voc: [String] = [], csv: [String] = [], classes: [String]? = nil, map: [String: String] = [:],
                 difficult: DatasetConverter.Difficult = .keep) throws -> DatasetConverter.Result {
        var converter = DatasetConverter(options: .init(imagesDir: dir, classes: classes, classMap: map, difficult: difficult))
        return try converter.convert(voc: voc, csv: csv)
    }

    func testVOCGoodAndBadBoxesEachReportedWithFileAndLine() throws {
        try writeImage(dir, "a.png", width: 100, height: 80)
        try writeImage(dir, "c.png", width: 50, height: 40)
        let a = voc("a.png", size: (100, 80), [
            vocObject("cat", ["10", "20", "30.5", "40"]),
            vocObject("cat", ["abc", "1", "5", "5"]),
            vocObject("dog", ["50", "10", "40", "30"]),
            vocObject("dog", ["90", "10", "120", "30"]),
            vocObject("dog", ["0", "0", "101", "80"], difficult: 1),
            vocObject("cat", ["200", "10", "220", "30"]),
            vocObject("bird", ["1", "1", "2", "2"]),
        ])
        let aPath = try write(a, dir, "a.xml")
        let bPath = try write("<annotation>\n<filename>b.png</filename>\n<object><name>x</name>\n</annotation>\n", dir, "b.xml")
        // Names c.jpg, which does not exist; c.png does. No <size>: read from the image.
        let cPath = try write(voc("c.jpg", size: nil, [vocObject("cat", ["1", "2", "11", "12"])]), dir, "c.xml")
        let dPath = try write(voc("missing.png", size: (10, 10), [vocObject("cat", ["1", "1", "3", "3"])]), dir, "d.xml")

        let r = try convert(voc: [dir], classes: ["cat", "dog"], difficult: .crowd)
        let issues = r.log.issues.map(\.description)
        let lineOf = { (m: String, n: Int) -> Int in
            // the n-th object's <xmin> line
            var count = 0
            for (i, l) in a.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where l.contains(m) {
                if count == n { return i + 1 }
                count += 1
            }
            return -1
        }
        XCTAssertEqual(issues.filter { $0.hasPrefix(aPath) }, [
            "\(aPath):\(lineOf("<xmin>", 1)): rejected: xmin 'abc' is not a number",
            "\(aPath):\(lineOf("<xmin>", 2)): rejected: xmax <= xmin in box (50, 10, 40, 30)",
            "\(aPath):\(lineOf("<xmin>", 3)): clipped: box (90, 10, 120, 30) reaches outside the 100x80 image; clipped to (90, 10, 100, 30)",
            "\(aPath):\(lineOf("<xmin>", 5)): rejected: box (200, 10, 220, 30) is outside the 100x80 image",
            "\(aPath):\(lineOf("<xmin>", 6)): rejected: class 'bird' is not in --classes (cat,dog)",
        ])
        let bIssue = try XCTUnwrap(r.log.issues.first { $0.file == bPath })
        XCTAssertEqual(bIssue.kind, .rejected)
        XCTAssertNotNil(bIssue.line)
        XCTAssertEqual(bIssue.line, 4)
        XCTAssertTrue(bIssue.message.hasPrefix("malformed XML ("), bIssue.message)
        #if os(Linux)
        XCTAssertEqual(bIssue.message, "malformed XML (opening and ending tag mismatch, libxml2 error 76), file skipped")
        #endif
        XCTAssertFalse(r.dataset.coco.images.contains { $0.fileName == "b.png" })
        XCTAssertEqual(issues.filter { $0.hasPrefix(cPath) },
                       ["\(cPath):\(line(of: "<filename>", in: voc("c.jpg", size: nil, []))): image c.jpg not found in \(dir); using c.png"])
        XCTAssertEqual(issues.filter { $0.hasPrefix(dPath) },
                       ["\(dPath):3: rejected: image not found: \(dir)/missing.png; its 1 boxes are skipped"])
        XCTAssertEqual(r.rejected, 6)
        XCTAssertEqual(r.clipped, 1)
        XCTAssertEqual(r.slightlyClipped, 1)

        let coco = r.dataset.coco
        XCTAssertEqual(coco.images, [COCOImage(id: 1, fileName: "a.png", width: 100, height: 80),
                                     COCOImage(id: 2, fileName: "c.png", width: 50, height: 40)])
        XCTAssertEqual(coco.categories, [COCOCategory(id: 1, name: "cat"), COCOCategory(id: 2, name: "dog")])
        XCTAssertEqual(coco.annotations, [
            COCOAnnotation(id: 1, imageId: 1, categoryId: 1, bbox: COCOBox(x: 10, y: 20, width: 20.5, height: 20)),
            COCOAnnotation(id: 2, imageId: 1, categoryId: 2, bbox: COCOBox(x: 90, y: 10, width: 10, height: 20)),
            COCOAnnotation(id: 3, imageId: 1, categoryId: 2, bbox: COCOBox(x: 0, y: 0, width: 100, height: 80), isCrowd: true),
            COCOAnnotation(id: 4, imageId: 2, categoryId: 1, bbox: COCOBox(x: 1, y: 2, width: 10, height: 10)),
        ])
    }

    /// The binary: a rejected box means exit 1 and no output file (nothing half-written); --allow-bad writes the
    /// good boxes and exits 0.
    func testCommandExitCodesAndNothingWrittenOnRejects() throws {
        let ghm = Repo.path(".build/debug/ghm")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: ghm), "build the ghm binary first (swift build)")
        try writeImage(dir, "a.png", width: 60, height: 40)
        let xml = voc("a.png", size: (60, 40), [vocObject("tree", ["1", "2", "11", "12"]), vocObject("tree", ["30", "5", "20", "9"])])
        let xmlPath = try write(xml, dir, "a.xml")
        let out = dir + "/out/all.json"
        let rejected = try runProcess(ghm, ["dataset", "convert", "--voc", dir, "--out", out])
        XCTAssertEqual(rejected.status, 1, rejected.stderr)
        XCTAssertTrue(rejected.stderr.contains("\(xmlPath):\(lineOfSecondXmin(xml)): rejected: xmax <= xmin"),
                      rejected.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir + "/out")) ?? [], [], "no temporary file left")
        let allowed = try runProcess(ghm, ["dataset", "convert", "--voc", dir, "--out", out, "--allow-bad"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        let coco = try COCODataset.load(path: out)
        XCTAssertEqual(coco.annotations.map(\.bbox), [COCOBox(x: 1, y: 2, width: 10, height: 10)])
        let usage = try runProcess(ghm, ["dataset", "tile", "--ann", out, "--images", dir, "--size", "0x400", "--out", dir + "/tiles"])
        XCTAssertEqual(usage.status, 64, "a usage error")
        XCTAssertTrue(usage.stderr.contains("--size must be WxH"), usage.stderr)
        let format = try runProcess(ghm, ["dataset", "tile", "--ann", out, "--images", dir, "--format", "gif", "--out", dir + "/tiles"])
        XCTAssertEqual(format.status, 64, "checked before any tile is cut")
        XCTAssertTrue(format.stderr.contains("--format must be one of"), format.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/tiles/annotations.json"))
    }

    func lineOfSecondXmin(_ xml: String) -> Int {
        xml.split(separator: "\n", omittingEmptySubsequences: false).enumerated().filter { $0.element.contains("<xmin>") }[1].offset + 1
    }

    func testCSVRowsWithHeaderEmptyImagesAndBadRows() throws {
        try writeImage(dir, "p.png", width: 60, height: 50)
        try writeImage(dir, "q.png", width: 30, height: 30)
        let csv = """
            image_path,xmin,ymin,xmax,ymax,label
            p.png,1,2,11,22,Alive
            p.png,5,5,x,9,Dead
            q.png,0,0,0,0,Tree
            p.png,3,4,5
            gone.png,1,1,2,2,Tree
            "p.png",20,20,10,30,Dead
            p.png,40,30,70,49,Dead

            p.png,,,,,
            """
        let path = try write(csv, dir, "boxes.csv")
        let r = try convert(csv: [path], map: ["Alive": "Tree"])
        // Row format while reading, then the boxes image by image.
        XCTAssertEqual(r.log.issues.map(\.description), [
            "\(path):5: rejected: row has 4 fields, expected 6 (image_path,xmin,ymin,xmax,ymax,label)",
            "\(path):3: rejected: xmax 'x' is not a number",
            "\(path):7: rejected: xmax <= xmin in box (20, 20, 10, 30)",
            "\(path):8: clipped: box (40, 30, 70, 49) reaches outside the 60x50 image; clipped to (40, 30, 60, 49)",
            "\(path):6: rejected: image not found: \(dir)/gone.png; its 1 boxes are skipped",
        ])
        let coco = r.dataset.coco
        XCTAssertEqual(coco.images.map(\.fileName), ["p.png", "q.png"], "q.png has no box but is an image")
        XCTAssertEqual(coco.images.map(\.width), [60, 30], "sizes read from the files")
        XCTAssertEqual(coco.categories.map(\.name), ["Dead", "Tree"], "sorted, after --class-map")
        XCTAssertEqual(coco.annotations, [
            COCOAnnotation(id: 1, imageId: 1, categoryId: 2, bbox: COCOBox(x: 1, y: 2, width: 10, height: 20)),
            COCOAnnotation(id: 2, imageId: 1, categoryId: 1, bbox: COCOBox(x: 40, y: 30, width: 20, height: 19)),
        ])
    }

    func testHeaderlessCSVAndWrittenFileReadsBack() throws {
        try writeImage(dir, "p.png", width: 60, height: 50)
        let path = try write("p.png,1,2,11,22,Tree\np.png,3,3,9,9,Bush\n", dir, "k.csv")
        let r = try convert(csv: [path], classes: ["Tree", "Bush"])
        XCTAssertEqual(r.log.issues, [])
        XCTAssertEqual(r.dataset.coco.annotations.map(\.categoryId), [1, 2], "--classes order gives the ids")
        let out = dir + "/out/coco.json"
        try r.dataset.write(to: out)
        let back = try COCODataset.load(path: out)
        XCTAssertEqual(back.images, r.dataset.coco.images)
        XCTAssertEqual(back.annotations, r.dataset.coco.annotations)
        XCTAssertEqual(back.categories, r.dataset.coco.categories)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out"), ["coco.json"], "no temporary file left")
    }

    func testDuplicateImageAndEmptyFolder() throws {
        try writeImage(dir, "a.png", width: 20, height: 20)
        let p1 = try write(voc("a.png", size: (20, 20), [vocObject("t", ["1", "1", "5", "5"])]), dir, "1.xml")
        let p2 = try write(voc("a.png", size: (20, 20), [vocObject("t", ["2", "2", "6", "6"])]), dir, "2.xml")
        let r = try convert(voc: [dir])
        XCTAssertEqual(r.log.issues.map(\.description), ["\(p2):3: rejected: image a.png already given by \(p1):3; its boxes here are skipped"])
        XCTAssertEqual(r.dataset.coco.annotations.count, 1)
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try convert(voc: [empty])) { XCTAssertEqual("\($0)", "\(empty): no .xml files in the VOC folder") }
    }
}
