import Foundation
import Support

/// An 8-bit RGB raster, row-major, top row first.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        precondition(width > 0 && height > 0, "image size must be positive")
        self.width = width
        self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: p.count, by: 3) { p[i] = fill.0; p[i + 1] = fill.1; p[i + 2] = fill.2 }
        pixels = p
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3, "pixels must hold width*height*3 bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Sets a pixel; coordinates outside the image are ignored.
    @inline(__always)
    public mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }

    public func get(_ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// A PNG encoder without dependencies: truecolour 8-bit, no interlace, filter type 0, zlib data
/// compressed by `Deflate` (LZ77 + fixed Huffman codes).
public enum PNGEncoder {
    public static func encode(_ image: RGBImage) -> Data {
        var raw = [UInt8]()
        let rowBytes = image.width * 3
        raw.reserveCapacity((rowBytes + 1) * image.height)
        image.pixels.withUnsafeBufferPointer { p in
            for y in 0..<image.height {
                raw.append(0)  // filter: none
                raw.append(contentsOf: p[(y * rowBytes)..<((y + 1) * rowBytes)])
            }
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr = [UInt8]()
        appendBE32(&ihdr, UInt32(image.width))
        appendBE32(&ihdr, UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, filter set 0, no interlace
        appendChunk(&png, "IHDR", ihdr)
        appendChunk(&png, "IDAT", Deflate.zlibCompress(raw))
        appendChunk(&png, "IEND", [])
        return Data(png)
    }

    /// Writes the PNG atomically.
    public static func write(_ image: RGBImage, to path: String) throws(FileError) {
        try Files.writeAtomically(encode(image), to: path)
    }

    static func appendBE32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBE32(&out, UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = CRC32()
        crc.update(typeBytes)
        crc.update(data)
        out += typeBytes
        out += data
        appendBE32(&out, crc.value)
    }
}

/// A small DEFLATE (RFC 1951) compressor: greedy LZ77 over a 32 KiB window with hash chains,
/// coded with the fixed Huffman table in a single block; `zlibCompress` adds the RFC 1950
/// header and Adler-32 trailer.
public enum Deflate {
    public static func zlibCompress(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // deflate, 32K window, no dictionary, fastest level
        out += compress(input)
        let adler = Adler32.checksum(input)
        out += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        return out
    }

    private struct BitWriter {
        var bytes: [UInt8] = []
        var acc: UInt64 = 0
        var count = 0

        /// `n` bits of `v`, least significant first (the order of extra bits and headers).
        @inline(__always)
        mutating func write(_ v: UInt32, _ n: Int) {
            acc |= UInt64(v) << UInt64(count)
            count += n
            while count >= 8 {
                bytes.append(UInt8(acc & 0xFF))
                acc >>= 8
                count -= 8
            }
        }

        /// A Huffman code of `n` bits, most significant bit first.
        @inline(__always)
        mutating func writeCode(_ code: UInt32, _ n: Int) {
            var r: UInt32 = 0
            var c = code
            for _ in 0..<n { r = (r << 1) | (c & 1); c >>= 1 }
            write(r, n)
        }

        mutating func flush() {
            if count > 0 { bytes.append(UInt8(acc & 0xFF)) }
            acc = 0
            count = 0
        }
    }

    private static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                            67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                             4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                          1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
                                           9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    @inline(__always)
    private static func writeLiteralOrLength(_ w: inout BitWriter, _ symbol: Int) {
        switch symbol {
        case 0...143: w.writeCode(UInt32(0x30 + symbol), 8)
        case 144...255: w.writeCode(UInt32(0x190 + symbol - 144), 9)
        case 256...279: w.writeCode(UInt32(symbol - 256), 7)
        default: w.writeCode(UInt32(0xC0 + symbol - 280), 8)
        }
    }

    private static func writeMatch(_ w: inout BitWriter, length: Int, distance: Int) {
        var li = lengthBase.count - 1
        while lengthBase[li] > length { li -= 1 }
        writeLiteralOrLength(&w, 257 + li)
        if lengthExtra[li] > 0 { w.write(UInt32(length - lengthBase[li]), lengthExtra[li]) }
        var di = distBase.count - 1
        while distBase[di] > distance { di -= 1 }
        w.writeCode(UInt32(di), 5)
        if distExtra[di] > 0 { w.write(UInt32(distance - distBase[di]), distExtra[di]) }
    }

    /// Raw DEFLATE data for `input` (one final block with fixed codes).
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var w = BitWriter()
        w.bytes.reserveCapacity(input.count / 4 + 64)
        w.write(1, 1)  // BFINAL
        w.write(1, 2)  // BTYPE = 01, fixed Huffman codes
        let n = input.count
        let window = 32768, maxLength = 258, minLength = 3, maxChain = 32
        let hashBits = 15
        var head = [Int32](repeating: -1, count: 1 << hashBits)
        var prev = [Int32](repeating: -1, count: window)
        input.withUnsafeBufferPointer { src in
            @inline(__always) func hash(_ i: Int) -> Int {
                let v = (UInt32(src[i]) << 16) | (UInt32(src[i + 1]) << 8) | UInt32(src[i + 2])
                return Int((v &* 2_654_435_761) >> UInt32(32 - hashBits))
            }
            @inline(__always) func insert(_ i: Int) {
                guard i + minLength <= n else { return }
                let h = hash(i)
                prev[i & (window - 1)] = head[h]
                head[h] = Int32(i)
            }
            var i = 0
            while i < n {
                var bestLength = 0, bestDistance = 0
                if i + minLength <= n {
                    var candidate = Int(head[hash(i)])
                    var chain = 0
                    let limit = min(maxLength, n - i)
                    while candidate >= 0 && i - candidate <= window - 1 && chain < maxChain {
                        if src[candidate + bestLength] == src[i + bestLength] {
                            var l = 0
                            while l < limit && src[candidate + l] == src[i + l] { l += 1 }
                            if l > bestLength {
                                bestLength = l
                                bestDistance = i - candidate
                                if l == limit { break }
                            }
                        }
                        let next = Int(prev[candidate & (window - 1)])
                        if next >= candidate { break }  // stale entry from an older window
                        candidate = next
                        chain += 1
                    }
                }
                if bestLength >= minLength {
                    writeMatch(&w, length: bestLength, distance: bestDistance)
                    for j in i..<(i + bestLength) { insert(j) }
                    i += bestLength
                } else {
                    writeLiteralOrLength(&w, Int(src[i]))
                    insert(i)
                    i += 1
                }
            }
        }
        writeLiteralOrLength(&w, 256)  // end of block
        w.flush()
        return w.bytes
    }
}
