/// CRC-32 (ISO-HDLC, the zip checksum), slicing-by-8.
enum CRC32 {
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

    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        update(0xFFFF_FFFF, data) ^ 0xFFFF_FFFF
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
