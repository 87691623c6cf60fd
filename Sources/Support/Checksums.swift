/// CRC-32 (ISO-HDLC: the checksum of zip, PNG and zlib's `crc32`), slicing-by-8. Feed it in pieces with
/// `update`, or in one call with `checksum`.
public struct CRC32: Sendable {
    /// Eight 256-entry tables, flattened: table k at [k * 256 ..< (k + 1) * 256].
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xff)]
            }
        }
        return t
    }()

    /// The running, pre-inverted register.
    private var crc: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The checksum of everything fed so far.
    public var value: UInt32 { crc ^ 0xFFFF_FFFF }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        crc = Self.update(crc, data)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        update(0xFFFF_FFFF, data) ^ 0xFFFF_FFFF
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Continues a running (pre-inverted) CRC over `data`.
    static func update(_ crc: UInt32, _ data: UnsafeRawBufferPointer) -> UInt32 {
        let n = data.count
        guard n > 0, let base = data.baseAddress else { return crc }
        return table.withUnsafeBufferPointer { t -> UInt32 in
            var c = crc
            var i = 0
            while i + 8 <= n {
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t[1792 + Int(lo & 0xff)] ^ t[1536 + Int((lo >> 8) & 0xff)]
                    ^ t[1280 + Int((lo >> 16) & 0xff)] ^ t[1024 + Int(lo >> 24)]
                    ^ t[768 + Int(hi & 0xff)] ^ t[512 + Int((hi >> 8) & 0xff)]
                    ^ t[256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xff)] ^ (c >> 8)
                i += 1
            }
            return c
        }
    }
}

/// Adler-32 (zlib's stream checksum).
public enum Adler32 {
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < bytes.count {
            let end = min(i + 5552, bytes.count)  // largest block without UInt32 overflow
            while i < end {
                a += UInt32(bytes[i])
                b += a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return (b << 16) | a
    }
}
