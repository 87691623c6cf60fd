import Foundation
import TestSupport
import XCTest

@testable import Imaging

final class ImageTests: XCTestCase {
    /// A 5×4 BGR gradient with known pixels.
    func gradient() throws -> Image {
        var px: [UInt8] = []
        for y in 0..<4 { for x in 0..<5 { px += [UInt8(x * 50), UInt8(y * 60), 200] } }
        return try Image(bytes: px, height: 4, width: 5, channels: 3)
    }

    func testRoundTripPNGAndDecode() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = try gradient()
        XCTAssertEqual([img.height, img.width, img.channels], [4, 5, 3])
        let path = dir + "/g.png"
        try img.write(to: path)
        let back = try Image.read(path)
        XCTAssertEqual(try back.bytes(), try img.bytes(), "PNG is lossless")
        let decoded = try Image.decode(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(try decoded.bytes(), try img.bytes())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["g.png"], "no temporary file left")
        let jpg = try img.encoded(ext: ".jpg", quality: 95)
        XCTAssertEqual(Array(jpg.prefix(2)), [0xFF, 0xD8])
    }

    func testResizeColourFlip() throws {
        let img = try gradient()
        let r = try img.resized(width: 10, height: 8)
        XCTAssertEqual([r.height, r.width], [8, 10])
        // A constant image stays constant under bilinear resizing.
        let flat = try Image(bytes: [UInt8](repeating: 77, count: 6 * 7 * 3), height: 6, width: 7, channels: 3)
        XCTAssertEqual(Set(try flat.resized(width: 13, height: 3).bytes()), [77])
        let rgb = try img.converted(code: Image.bgrToRGB).bytes()
        let bgr = try img.bytes()
        XCTAssertEqual(Array(rgb[0..<3]), [bgr[2], bgr[1], bgr[0]])
        let f = try img.flipped().bytes()
        XCTAssertEqual(Array(f[0..<3]), Array(bgr[12..<15]), "first pixel of the mirror is the last of the row")
    }

    func testDrawingChangesPixels() throws {
        let img = try Image(bytes: [UInt8](repeating: 0, count: 40 * 60 * 3), height: 40, width: 60, channels: 3)
        try img.drawRectangle(x1: 5, y1: 5, x2: 30, y2: 20, color: (0, 255, 0), thickness: 2)
        try img.drawText("cat 0.91", x: 5, y: 35, scale: 0.4, color: (255, 255, 255))
        let px = try img.bytes()
        XCTAssertGreaterThan(px.filter { $0 > 0 }.count, 50)
        XCTAssertGreaterThan(Image.textSize("cat 0.91", scale: 0.4).width, 10)
    }

    func testUnreadableFilesAreClearErrors() throws {
        let dir = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try Image.read(dir + "/missing.jpg")) { e in
            XCTAssertTrue("\(e)".contains("missing.jpg"), "\(e)")
        }
        let bad = dir + "/corrupt.jpg"
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try Image.read(bad)) { e in XCTAssertTrue("\(e)".contains("corrupt.jpg"), "\(e)") }
        XCTAssertThrowsError(try Image.decode(Data([1, 2, 3])))
        XCTAssertThrowsError(try Image.decode(Data()))
        XCTAssertThrowsError(try Image(bytes: [1, 2], height: 1, width: 1, channels: 3))
        XCTAssertThrowsError(try gradient().resized(width: 0, height: 3))
        XCTAssertTrue(Image.isAvailable, "libghm_vision.so is loaded on first use (dlopen)")
        XCTAssertTrue(Image.openCVVersion.first?.isNumber ?? false, Image.openCVVersion)
    }
}
