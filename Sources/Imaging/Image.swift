import CGHMVision
import Foundation

/// An error from the OpenCV shim: what was attempted and OpenCV's message.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public let op: String
    public let message: String
    public init(op: String, message: String) {
        self.op = op
        self.message = message
    }
    public var description: String { "\(op): \(message)" }
}

/// Runs one shim call with the loaded library; a non-zero status becomes an `ImageError`.
@inline(__always)
func vcheck(_ op: @autoclosure () -> String, _ body: (VisionLibrary) -> Int32) throws(ImageError) {
    let lib = try VisionLibrary.api()
    if body(lib) != 0 { throw ImageError(op: op(), message: lib.message()) }
}

/// Runs one shim call that writes a new image handle, and wraps it.
@inline(__always)
func vmake(_ op: @autoclosure () -> String, _ body: (VisionLibrary, UnsafeMutablePointer<gv_image>) -> Int32) throws(ImageError) -> Image {
    let lib = try VisionLibrary.api()
    var out = gv_image(ptr: nil)
    if body(lib, &out) != 0 { throw ImageError(op: op(), message: lib.message()) }
    return Image(owning: out, lib: lib)
}

/// An 8-bit image (1 or 3 channels, BGR) held by OpenCV.
public final class Image {
    let handle: gv_image
    let lib: VisionLibrary

    init(owning handle: gv_image, lib: VisionLibrary) {
        self.handle = handle
        self.lib = lib
    }

    deinit { _ = lib.free(handle) }

    /// Whether OpenCV image support could be loaded (libghm_vision.so and OpenCV present).
    public static var isAvailable: Bool { VisionLibrary.isAvailable }

    /// OpenCV's version, or why image support is not available.
    public static var openCVVersion: String {
        do {
            let lib = try VisionLibrary.api()
            var buf = [CChar](repeating: 0, count: 64)
            _ = lib.version(&buf, buf.count)
            return String(cString: buf)
        } catch {
            return "not available (\(error.message))"
        }
    }

    public static func setThreads(_ n: Int) { _ = try? VisionLibrary.api().setNumThreads(Int32(n)) }

    public var height: Int { info.h }
    public var width: Int { info.w }
    public var channels: Int { info.c }

    private var info: (h: Int, w: Int, c: Int) {
        var h: Int32 = 0, w: Int32 = 0, c: Int32 = 0
        _ = lib.info(handle, &h, &w, &c)
        return (Int(h), Int(w), Int(c))
    }

    public enum ReadMode: Int32 { case color = 0, grayscale = 1, unchanged = 2 }

    /// Reads an image file like `cv2.imread(path, IMREAD_COLOR)`: BGR, 3 channels.
    public static func read(_ path: String, mode: ReadMode = .color) throws(ImageError) -> Image {
        try vmake("imread") { lib, out in lib.imread(path, mode.rawValue, out) }
    }

    /// Decodes encoded bytes like `cv2.imdecode(buf, IMREAD_COLOR)` (what mmcv's `imfrombytes` does).
    public static func decode(_ data: Data, mode: ReadMode = .color) throws(ImageError) -> Image {
        try vmake("imdecode") { lib, out in
            data.withUnsafeBytes { raw in lib.imdecode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, mode.rawValue, out) }
        }
    }

    /// An image from row-major HWC bytes.
    public convenience init(bytes: [UInt8], height: Int, width: Int, channels: Int) throws(ImageError) {
        guard bytes.count == height * width * channels else {
            throw ImageError(op: "Image.init", message: "\(bytes.count) bytes cannot be \(height)x\(width)x\(channels)")
        }
        let lib = try VisionLibrary.api()
        var out = gv_image(ptr: nil)
        let status = lib.fromData(bytes, Int32(height), Int32(width), Int32(channels), &out)
        if status != 0 { throw ImageError(op: "Image.init", message: lib.message()) }
        self.init(owning: out, lib: lib)
    }

    /// The pixels, row-major HWC.
    public func bytes() throws(ImageError) -> [UInt8] {
        let n = height * width * channels
        var out = [UInt8](repeating: 0, count: n)
        try vcheck("read") { lib in lib.read(handle, &out, n) }
        return out
    }

    public func clone() throws(ImageError) -> Image { try vmake("clone") { lib, out in lib.clone(handle, out) } }

    public enum Interpolation: Int32 { case nearest = 0, linear = 1, cubic = 2, area = 3 }

    /// `cv2.resize(img, (width, height), interpolation)`.
    public func resized(width: Int, height: Int, interpolation: Interpolation = .linear) throws(ImageError) -> Image {
        try vmake("resize") { lib, out in lib.resize(handle, Int32(width), Int32(height), interpolation.rawValue, out) }
    }

    /// `cv2.cvtColor` with an OpenCV conversion code.
    public func converted(code: Int32) throws(ImageError) -> Image {
        try vmake("cvtColor") { lib, out in lib.cvtColor(handle, code, out) }
    }

    public static let bgrToRGB: Int32 = 4
    public static let bgrToGray: Int32 = 6
    public static let grayToBGR: Int32 = 8

    /// Mirror image: horizontally by default.
    public func flipped(horizontal: Bool = true) throws(ImageError) -> Image {
        try vmake("flip") { lib, out in lib.flip(handle, horizontal ? 1 : 0, out) }
    }

    // MARK: drawing (in place)

    public func drawRectangle(x1: Int, y1: Int, x2: Int, y2: Int, color: (b: Int, g: Int, r: Int),
                              thickness: Int = 2) throws(ImageError) {
        try vcheck("rectangle") { lib in
            lib.rectangle(handle, Int32(x1), Int32(y1), Int32(x2), Int32(y2), Int32(color.b), Int32(color.g), Int32(color.r),
                          Int32(thickness))
        }
    }

    /// Draws text with its baseline-left corner at (x, y).
    public func drawText(_ text: String, x: Int, y: Int, scale: Double = 0.5, color: (b: Int, g: Int, r: Int),
                         thickness: Int = 1) throws(ImageError) {
        try vcheck("putText") { lib in
            lib.putText(handle, text, Int32(x), Int32(y), scale, Int32(color.b), Int32(color.g), Int32(color.r), Int32(thickness))
        }
    }

    public static func textSize(_ text: String, scale: Double = 0.5, thickness: Int = 1) -> (width: Int, height: Int, baseline: Int) {
        var w: Int32 = 0, h: Int32 = 0, b: Int32 = 0
        _ = try? VisionLibrary.api().textSize(text, scale, Int32(thickness), &w, &h, &b)
        return (Int(w), Int(h), Int(b))
    }

    // MARK: encoding

    /// Encodes as the format of `ext` (".jpg", ".png", …).
    public func encoded(ext: String, quality: Int? = nil) throws(ImageError) -> Data {
        var buf = gv_buffer(ptr: nil)
        try vcheck("imencode") { lib in lib.imencode(handle, ext, Int32(quality ?? -1), &buf) }
        defer { _ = lib.bufferFree(buf) }
        var p: UnsafePointer<UInt8>?
        var n = 0
        try vcheck("imencode") { lib in lib.bufferData(buf, &p, &n) }
        guard let p else { return Data() }
        return Data(bytes: p, count: n)
    }

    /// Writes the image to `path` atomically (a temporary file in the same folder, then a rename); the format
    /// follows the extension.
    public func write(to path: String, quality: Int? = nil) throws {
        let url = URL(fileURLWithPath: path)
        let ext = "." + url.pathExtension
        let data = try encoded(ext: ext, quality: quality)
        try data.write(to: url, options: .atomic)
    }
}
