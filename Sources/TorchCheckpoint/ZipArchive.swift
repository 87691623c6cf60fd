import Support

/// A read-only view of a zip archive's directory (the subset `torch.save` writes: stored entries, optional zip64).
struct ZipArchive {
    struct Entry {
        let name: String
        let flags: UInt16
        let method: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let entries: [Entry]
    private let byName: [String: Int]
    private let source: ByteSource

    init(_ source: ByteSource) throws(CheckpointError) {
        self.source = source
        let bytes = source.bytes
        let eocd = try Self.findEndRecord(bytes)
        var total = Int(bytes.le16(eocd + 10))
        var cdSize = Int(bytes.le32(eocd + 12))
        var cdOffset = Int(bytes.le32(eocd + 16))
        // zip64: a locator right before the end record points at the zip64 end record.
        if eocd >= 20, bytes.le32(eocd - 20) == 0x0706_4b50 {
            let z = try Checked.int(bytes.le64(eocd - 12), "zip64 end record offset", offset: eocd - 12)
            guard z <= eocd - 20 - 56, bytes.le32(z) == 0x0606_4b50 else {
                throw CheckpointError(.corrupt, "zip64 locator points at byte \(z), where there is no zip64 end record", offset: eocd - 20)
            }
            total = try Checked.int(bytes.le64(z + 32), "zip64 entry count", offset: z + 32)
            cdSize = try Checked.int(bytes.le64(z + 40), "zip64 directory size", offset: z + 40)
            cdOffset = try Checked.int(bytes.le64(z + 48), "zip64 directory offset", offset: z + 48)
        }
        let cdEnd = try Checked.add(cdOffset, cdSize, "central directory end", offset: eocd)
        guard cdEnd <= eocd else {
            throw CheckpointError(.corrupt, "central directory [\(cdOffset), \(cdEnd)) overlaps the end record at byte \(eocd)",
                                  offset: eocd)
        }
        guard total <= cdSize / 46 else {
            throw CheckpointError(.corrupt, "\(total) entries cannot fit a central directory of \(cdSize) bytes", offset: eocd)
        }
        var cursor = ByteCursor(bytes, from: cdOffset, to: cdEnd)
        var entries: [Entry] = []
        var byName: [String: Int] = [:]
        entries.reserveCapacity(total)
        for _ in 0..<total {
            let e = try Self.centralEntry(&cursor, limit: eocd)
            guard byName[e.name] == nil else {
                throw CheckpointError(.corrupt, "two entries are named '\(e.name)'", offset: cursor.pos)
            }
            byName[e.name] = entries.count
            entries.append(e)
        }
        self.entries = entries
        self.byName = byName
    }

    private static func findEndRecord(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError) -> Int {
        guard bytes.count >= 22 else {
            throw CheckpointError(.truncated, "zip archive of \(bytes.count) bytes has no end-of-directory record", offset: 0)
        }
        var p = bytes.count - 22
        let stop = Swift.max(0, p - 65535)
        while p >= stop {
            if bytes[p] == 0x50, bytes.le32(p) == 0x0605_4b50, p + 22 + Int(bytes.le16(p + 20)) <= bytes.count { return p }
            p -= 1
        }
        throw CheckpointError(.truncated, "no zip end-of-central-directory record (the file is truncated?)", offset: bytes.count)
    }

    private static func centralEntry(_ c: inout ByteCursor, limit: Int) throws(CheckpointError) -> Entry {
        let start = c.pos
        guard try c.u32("a central directory entry") == 0x0201_4b50 else {
            throw CheckpointError(.corrupt, "bad central directory entry signature", offset: start)
        }
        try c.skip(4, "entry header")
        let flags = try c.u16()
        let method = try c.u16()
        try c.skip(4, "entry header")
        let crc = try c.u32()
        var csize = Int(try c.u32())
        var usize = Int(try c.u32())
        let nameLen = Int(try c.u16())
        let extraLen = Int(try c.u16())
        let commentLen = Int(try c.u16())
        try c.skip(8, "entry header")
        var lho = Int(try c.u32())
        let nameBytes = try c.slice(nameLen, "an entry name")
        let name = String(decoding: nameBytes, as: UTF8.self)
        var extra = ByteCursor(c.bytes, from: c.pos, to: c.pos + Swift.min(extraLen, c.remaining))
        try c.skip(extraLen, "an entry's extra field")
        try c.skip(commentLen, "an entry comment")
        while extra.remaining >= 4 {
            let id = try extra.u16()
            let len = Int(try extra.u16())
            let fieldEnd = extra.pos + len
            guard fieldEnd <= extra.end else { break }
            if id == 0x0001 {  // zip64: 8-byte values for each 32-bit field that is 0xFFFFFFFF, in this order
                if usize == 0xFFFF_FFFF { usize = try Checked.int(try extra.u64("zip64 size"), "zip64 size", offset: extra.pos) }
                if csize == 0xFFFF_FFFF { csize = try Checked.int(try extra.u64("zip64 size"), "zip64 size", offset: extra.pos) }
                if lho == 0xFFFF_FFFF { lho = try Checked.int(try extra.u64("zip64 offset"), "zip64 offset", offset: extra.pos) }
            }
            extra.pos = fieldEnd
        }
        guard lho < limit else {
            throw CheckpointError(.corrupt, "entry '\(name)' starts at byte \(lho), beyond the archive", offset: start)
        }
        return Entry(name: name, flags: flags, method: method, crc32: crc, compressedSize: csize, size: usize,
                     localHeaderOffset: lho)
    }

    func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// The byte range of a stored entry's data, after checking its local header.
    func dataRange(_ e: Entry) throws(CheckpointError) -> Range<Int> {
        func bad(_ k: CheckpointError.Kind, _ m: String, _ at: Int) -> CheckpointError {
            CheckpointError(k, m, offset: at, record: e.name)
        }
        guard e.flags & 1 == 0 else { throw bad(.unsupported, "encrypted zip entries are not supported", e.localHeaderOffset) }
        guard e.method == 0 else {
            throw bad(.unsupported, "compressed zip entry (method \(e.method)); torch.save writes stored (uncompressed) "
                      + "entries only — re-save the file with torch.save", e.localHeaderOffset)
        }
        guard e.compressedSize == e.size else {
            throw bad(.corrupt, "stored entry has compressed size \(e.compressedSize) ≠ size \(e.size)", e.localHeaderOffset)
        }
        let b = source.bytes
        let h = e.localHeaderOffset
        try source.checkRange(h, 30, "local header of '\(e.name)'")
        guard b.le32(h) == 0x0403_4b50 else { throw bad(.corrupt, "bad local header signature", h) }
        let nameLen = Int(b.le16(h + 26))
        let extraLen = Int(b.le16(h + 28))
        let start = h + 30 + nameLen + extraLen
        try source.checkRange(h + 30, nameLen + extraLen, "local header of '\(e.name)'")
        guard String(decoding: UnsafeRawBufferPointer(rebasing: b[(h + 30)..<(h + 30 + nameLen)]), as: UTF8.self) == e.name else {
            throw bad(.corrupt, "local header names a different entry", h)
        }
        do {
            try source.checkRange(start, e.size, "entry '\(e.name)'")
        } catch {
            throw error.inRecord(e.name)
        }
        return start..<(start + e.size)
    }

    /// Checks the CRC-32 of an entry's data in the file.
    func verify(_ e: Entry, _ range: Range<Int>) throws(CheckpointError) {
        try verify(e, UnsafeRawBufferPointer(rebasing: source.bytes[range]), at: range)
    }

    /// Checks the CRC-32 of an entry's data, already copied to `data` (so the file's pages are not touched twice).
    func verify(_ e: Entry, _ data: UnsafeRawBufferPointer, at range: Range<Int>) throws(CheckpointError) {
        let crc = CRC32.checksum(data)
        guard crc == e.crc32 else {
            throw CheckpointError(.corrupt, "CRC-32 mismatch (stored 0x\(String(e.crc32, radix: 16)), data 0x\(String(crc, radix: 16)))",
                                  offset: range.lowerBound, record: e.name)
        }
    }
}
