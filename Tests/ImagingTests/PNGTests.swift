import Foundation
@testable import Imaging
import TestSupport
import XCTest

/// The PNG writer's output is checked by an independent decoder: Python's zlib plus a few lines
/// of PNG chunk parsing.
final class PNGTests: XCTestCase {
    /// Decodes a PNG (8-bit RGB, any filter type) with Python's zlib, checks the chunk CRCs, and
    /// compares the pixels with a raw RGB file. Prints "width height".
    static let decoder = """
        import struct, sys, zlib
        png = open(sys.argv[1], 'rb').read()
        raw = open(sys.argv[2], 'rb').read()
        assert png[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'bad signature'
        pos, idat, ihdr, types = 8, b'', None, []
        while pos < len(png):
            n, = struct.unpack('>I', png[pos:pos + 4]); t = png[pos + 4:pos + 8]; d = png[pos + 8:pos + 8 + n]
            crc, = struct.unpack('>I', png[pos + 8 + n:pos + 12 + n])
            assert zlib.crc32(t + d) & 0xffffffff == crc, 'bad CRC in ' + t.decode()
            types.append(t.decode())
            if t == b'IHDR': ihdr = struct.unpack('>IIBBBBB', d)
            if t == b'IDAT': idat += d
            pos += 12 + n
        assert types[0] == 'IHDR' and types[-1] == 'IEND', types
        w, h, depth, ctype, comp, filt, inter = ihdr
        assert (depth, ctype, comp, filt, inter) == (8, 2, 0, 0, 0), ihdr
        data = zlib.decompress(idat)
        stride = 3 * w
        assert len(data) == h * (stride + 1), (len(data), h, stride)
        out, prev = bytearray(), bytearray(stride)
        for y in range(h):
            f = data[y * (stride + 1)]; row = bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            for i in range(stride):
                a = row[i - 3] if i >= 3 else 0; b = prev[i]; c = prev[i - 3] if i >= 3 else 0
                if f == 1: row[i] = (row[i] + a) & 255
                elif f == 2: row[i] = (row[i] + b) & 255
                elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
                else: assert f == 0, f
            out += row; prev = row
        assert bytes(out) == raw, 'pixels differ'
        print(w, h)
        """

    func decode(_ image: RGBImage, name: String, dir: String) throws -> String {
        let png = dir + "/\(name).png", raw = dir + "/\(name).rgb"
        try PNGEncoder.write(image, to: png)
        try Data(image.pixels).write(to: URL(fileURLWithPath: raw))
        return try runPythonScript(Self.decoder, arguments: [png, raw]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testDeflateRoundTripsThroughPythonZlib() throws {
        let dir = try Repo.temporaryDirectory("deflate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SystemRandomNumberGenerator()
        let randomBytes = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var mixed: [UInt8] = []
        while mixed.count < 200_000 {
            if Bool.random() {
                mixed += [UInt8](repeating: UInt8.random(in: 0...3), count: Int.random(in: 1...600))
            } else {
                let start = max(0, mixed.count - Int.random(in: 1...40_000))
                mixed += mixed[start..<min(mixed.count, start + Int.random(in: 1...300))]
                mixed += (0..<Int.random(in: 0...20)).map { _ in UInt8.random(in: 0...255) }
            }
        }
        let cases: [[UInt8]] = [[], [7], [1, 2], Array("abcabcabcabcabc".utf8), [UInt8](repeating: 0, count: 100_000),
                                randomBytes, mixed, Array(randomBytes.prefix(1000)) + Array(randomBytes.prefix(1000))]
        var args: [String] = []
        for (i, bytes) in cases.enumerated() {
            let z = dir + "/\(i).z", raw = dir + "/\(i).raw"
            try Data(Deflate.zlibCompress(bytes)).write(to: URL(fileURLWithPath: z))
            try Data(bytes).write(to: URL(fileURLWithPath: raw))
            args += [z, raw]
        }
        let out = try runPythonScript("""
            import sys, zlib
            a = sys.argv[1:]
            for z, raw in zip(a[::2], a[1::2]):
                assert zlib.decompress(open(z, 'rb').read()) == open(raw, 'rb').read(), z
            print('ok', len(a) // 2)
            """, arguments: args)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "ok \(cases.count)")
        // It does compress: a blank 640x480 image is tiny.
        XCTAssertLessThan(Deflate.zlibCompress([UInt8](repeating: 255, count: 640 * 480 * 3)).count, 8000)
    }

    func testPNGDecodesWithRightSizeAndPixels() throws {
        let dir = try Repo.temporaryDirectory("png")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var pattern = RGBImage(width: 37, height: 23)
        for y in 0..<23 { for x in 0..<37 { pattern.set(x, y, (UInt8(x * 7 % 256), UInt8(y * 11 % 256), UInt8((x * y) % 256))) } }
        XCTAssertEqual(try decode(pattern, name: "pattern", dir: dir), "37 23")
        XCTAssertEqual(try decode(RGBImage(width: 1, height: 1, fill: (1, 2, 3)), name: "one", dir: dir), "1 1")

        let curve = (0...100).map { r in (x: Double(r) / 100, y: max(0, 1 - Double(r) / 80)) }
        let plot = LinePlot(title: "Test plot: person (id 1)", x: .init(label: "RECALL", min: 0, max: 1),
                            y: .init(label: "PRECISION", min: 0, max: 1), series: [
            .init(label: "IOU=.50 AP=0.500", points: curve, color: LinePlot.blue),
            .init(label: "UNDEFINED", points: curve.map { ($0.x, Double.nan) }, color: LinePlot.green),
        ], width: 500, height: 360).render()
        XCTAssertEqual(try decode(plot, name: "plot", dir: dir), "500 360")
        // The curve is drawn: its colour appears, and the background is white.
        var blue = 0
        for y in 0..<plot.height { for x in 0..<plot.width where plot.get(x, y) == LinePlot.blue { blue += 1 } }
        XCTAssertGreaterThan(blue, 300)
        XCTAssertTrue(plot.get(plot.width - 3, plot.height - 3) == (255, 255, 255))
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/plot.png")[.size] as! Int
        XCTAssertLessThan(size, 60_000)
    }

    func testFontHasTheCharactersThePlotsUse() {
        for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:=-+_/()[]@%#'!?<>&*" {
            XCTAssertNotNil(Font5x7.glyphs[ch], "missing glyph \(ch)")
            XCTAssertEqual(Font5x7.glyphs[ch]?.count, 7)
        }
        XCTAssertEqual(Font5x7.glyph("~"), Font5x7.glyphs["?"])
    }

    /// Training curves use axes fitted to the data: round steps, the data inside, a few labelled divisions.
    func testAxisCoveringFitsTheData() {
        let losses = [1.73, 1.52, 1.31, 1.12, 0.98, 0.91]
        let a = LinePlot.Axis.covering(losses, label: "LOSS")
        XCTAssertLessThanOrEqual(a.min, 0.91)
        XCTAssertGreaterThanOrEqual(a.max, 1.73)
        XCTAssertEqual(a.min, 0.8, accuracy: 1e-12)
        XCTAssertEqual(a.max, 1.8, accuracy: 1e-12)
        XCTAssertEqual(a.gridLines, 5)
        XCTAssertEqual(a.format(a.min), "0.8")
        let iters = LinePlot.Axis.covering([1, 7330], label: "ITER", includeZero: true)
        XCTAssertEqual(iters.min, 0)
        XCTAssertEqual(iters.max, 8000)
        XCTAssertEqual(iters.format(2000), "2000")
        XCTAssertTrue((4...10).contains(iters.gridLines))
        // a constant series still gets a non-empty range
        let flat = LinePlot.Axis.covering([2, 2, 2], label: "Y")
        XCTAssertLessThan(flat.min, flat.max)
    }

    /// A non-finite value breaks a series: no pixel of its colour between the two halves.
    func testNonFiniteValuesBreakASeries() {
        let points = (0...100).map { i in (x: Double(i), y: (45...55).contains(i) ? Double.nan : 0.5) }
        let plot = LinePlot(title: "", x: .init(label: "X", min: 0, max: 100), y: .init(label: "Y", min: 0, max: 1),
                            series: [.init(label: "", points: points, color: LinePlot.red)]).render()
        let left = 56, plotW = 640 - 16 - 56, row = 480 - 44 - (480 - 44 - 34) / 2
        func redAt(_ x: Double) -> Bool { plot.get(left + Int(x / 100 * Double(plotW)), row) == LinePlot.red }
        XCTAssertTrue(redAt(20))
        XCTAssertTrue(redAt(80))
        XCTAssertFalse(redAt(50))
    }
}
