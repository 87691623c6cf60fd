import CGHMVision
import Foundation
import TestSupport
import XCTest

@testable import Imaging

/// The OpenCV shim's boundary, called through the dlopen-ed entry points: NULL out-pointers and NULL handles are
/// errors that name the function and the argument, never crashes.
final class VisionBoundaryTests: XCTestCase {
    func assertFails(_ lib: VisionLibrary, _ expected: String, _ body: () -> Int32,
                     file: StaticString = #filePath, line: UInt = #line) {
        let status = body()
        XCTAssertNotEqual(status, 0, "\(expected): status", file: file, line: line)
        XCTAssertEqual(lib.message(), expected, file: file, line: line)
    }

    func testNullOutPointersAndHandlesAreErrors() throws {
        let lib = try VisionLibrary.api()
        let img = try Image(bytes: [UInt8](repeating: 9, count: 2 * 3 * 3), height: 2, width: 3, channels: 3)
        let h = img.handle
        let null = gv_image(ptr: nil)
        var a: Int32 = 0, b: Int32 = 0, c: Int32 = 0
        var out = gv_image(ptr: nil)
        assertFails(lib, "gv_info: h is NULL") { lib.info(h, nil, &a, &b) }
        assertFails(lib, "gv_info: c is NULL") { lib.info(h, &a, &b, nil) }
        assertFails(lib, "gv_info: img is a NULL image handle") { lib.info(null, &a, &b, &c) }
        assertFails(lib, "gv_read: dst is NULL") { lib.read(h, nil, 18) }
        assertFails(lib, "gv_resize: out is NULL") { lib.resize(h, 4, 4, 1, nil) }
        assertFails(lib, "gv_clone: img is a NULL image handle") { lib.clone(null, &out) }
        assertFails(lib, "gv_cvt_color: out is NULL") { lib.cvtColor(h, Image.bgrToRGB, nil) }
        assertFails(lib, "gv_flip: out is NULL") { lib.flip(h, 1, nil) }
        assertFails(lib, "gv_imread: out is NULL") { lib.imread("x.png", 0, nil) }
        assertFails(lib, "gv_imread: path is NULL") { lib.imread(nil, 0, &out) }
        assertFails(lib, "gv_from_data: out is NULL") { lib.fromData([1, 2, 3], 1, 1, 3, nil) }
        assertFails(lib, "gv_imencode: out is NULL") { lib.imencode(h, ".png", -1, nil) }
        assertFails(lib, "gv_text_size: baseline is NULL") { lib.textSize("cat", 0.5, 1, &a, &b, nil) }
        assertFails(lib, "gv_rectangle: img is a NULL image handle") { lib.rectangle(null, 0, 0, 1, 1, 0, 0, 0, 1) }
        assertFails(lib, "gv_version: buf is NULL") { lib.version(nil, 64) }
        assertFails(lib, "gv_free: img is a NULL image handle") { lib.free(null) }
        var p: UnsafePointer<UInt8>?
        var n = 0
        assertFails(lib, "gv_buffer_data: buf is a NULL buffer handle") { lib.bufferData(gv_buffer(ptr: nil), &p, &n) }
        assertFails(lib, "gv_buffer_free: buf is a NULL buffer handle") { lib.bufferFree(gv_buffer(ptr: nil)) }
        XCTAssertNil(out.ptr, "no failed call wrote an image handle")
        // the image is unharmed
        XCTAssertEqual(lib.info(h, &a, &b, &c), 0)
        XCTAssertEqual([a, b, c], [2, 3, 3])
        XCTAssertEqual(try img.bytes(), [UInt8](repeating: 9, count: 18))
    }
}
