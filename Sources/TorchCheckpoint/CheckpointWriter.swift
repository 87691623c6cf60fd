import Torch
import Support

/// Writes checkpoints that Python's `torch.load(path)` reads with its default `weights_only=True`.
public enum CheckpointWriter {
    /// Writes `value` as a `torch.save` zip archive, atomically (a temporary file renamed over `path`).
    public static func save(_ value: CheckpointValue, to path: String) throws(CheckpointError) {
        do {
            let sink = try AtomicFileSink(path: path)
            try write(value, to: sink)
            try sink.commit()
        } catch {
            throw error.inFile(path)
        }
    }

    /// The `torch.save` zip bytes of `value` (for tests and in-memory use).
    public static func encode(_ value: CheckpointValue) throws(CheckpointError) -> [UInt8] {
        let sink = MemorySink()
        try write(value, to: sink)
        return sink.bytes
    }

    /// An mmcv-style checkpoint: `{'meta': meta, 'state_dict': OrderedDict(...), 'optimizer': ...}` (no optimizer
    /// key when nil, as in published model-zoo files).
    public static func mmdetCheckpoint(meta: CheckpointDict, stateDict: StateDict, optimizer: SGDState? = nil) -> CheckpointValue {
        var d = CheckpointDict()
        d["meta"] = .dict(meta)
        d["state_dict"] = stateDict.value
        if let optimizer { d["optimizer"] = optimizer.value }
        return .dict(d)
    }

    static let archive = "archive"

    static func write(_ value: CheckpointValue, to sink: ByteSink, forceZip64: Bool = false) throws(CheckpointError) {
        let plan = try StoragePlan(value)
        var pw = PickleWriter(refs: plan.refs)
        try pw.value(value)
        var zip = ZipWriter(sink)
        zip.forceZip64 = forceZip64
        try zip.add("\(archive)/data.pkl", pw.finish())
        try zip.add("\(archive)/.format_version", Array("1".utf8))
        try zip.add("\(archive)/.storage_alignment", Array("64".utf8))
        try zip.add("\(archive)/byteorder", Array("little".utf8))
        for g in plan.groups {
            let t = try plan.storageTensor(g)
            do {
                try t.withUnsafeBytes { p in try zip.add("\(archive)/data/\(g.key)", p) }
            } catch {
                throw error as? CheckpointError ?? CheckpointError(.invalidArgument, "cannot read storage \(g.key): \(error)")
            }
        }
        try zip.add("\(archive)/version", Array("3\n".utf8))
        let id = (0..<40).map { _ in String(Int.random(in: 0...9)) }.joined()
        try zip.add("\(archive)/.data/serialization_id", Array(id.utf8))
        try zip.finish()
    }
}

/// A minimal zip writer: stored entries whose data starts on 64-byte boundaries (as torch writes them), CRC-32 in
/// the local headers, zip64 fields when sizes or offsets need them, and a zip64 end record.
struct ZipWriter {
    private struct Central {
        let name: [UInt8]
        let crc: UInt32
        let size: Int
        let offset: Int
    }

    private let sink: ByteSink
    private var central: [Central] = []
    /// Write zip64 fields for every entry, not only where sizes or offsets need them (for tests).
    var forceZip64 = false

    init(_ sink: ByteSink) { self.sink = sink }

    mutating func add(_ name: String, _ data: [UInt8]) throws(CheckpointError) {
        do {
            try data.withUnsafeBytes { p in try add(name, p) }
        } catch {
            throw error as? CheckpointError ?? CheckpointError(.io, "\(error)")
        }
    }

    mutating func add(_ name: String, _ data: UnsafeRawBufferPointer) throws(CheckpointError) {
        let n = Array(name.utf8)
        let offset = sink.offset
        let crc = CRC32.checksum(data)
        let big = forceZip64 || data.count >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF
        var zip64 = Bytes()
        if big { zip64.u16(1); zip64.u16(16); zip64.u64(data.count); zip64.u64(data.count) }
        // pad the extra field so the data starts on a 64-byte boundary
        let unpadded = offset + 30 + n.count + zip64.b.count
        var pad = (64 - unpadded % 64) % 64
        if pad > 0 && pad < 4 { pad += 64 }
        var extra = zip64.b
        if pad > 0 {
            var f = Bytes()
            f.u16(0x4246); f.u16(pad - 4)
            extra += f.b + [UInt8](repeating: 0x5a, count: pad - 4)
        }
        var h = Bytes()
        h.u32(0x0403_4b50); h.u16(big ? 45 : 20); h.u16(0x0800); h.u16(0); h.u16(0); h.u16(0)
        h.u32(Int(crc)); h.u32(big ? 0xFFFF_FFFF : data.count); h.u32(big ? 0xFFFF_FFFF : data.count)
        h.u16(n.count); h.u16(extra.count)
        try sink.write(h.b + n + extra)
        try sink.write(data)
        central.append(Central(name: n, crc: crc, size: data.count, offset: offset))
    }

    mutating func finish() throws(CheckpointError) {
        let cdStart = sink.offset
        for c in central {
            let big = forceZip64 || c.size >= 0xFFFF_FFFF || c.offset >= 0xFFFF_FFFF
            var extra = Bytes()
            if big { extra.u16(1); extra.u16(24); extra.u64(c.size); extra.u64(c.size); extra.u64(c.offset) }
            var h = Bytes()
            h.u32(0x0201_4b50); h.u16(0x031e); h.u16(big ? 45 : 20); h.u16(0x0800); h.u16(0); h.u16(0); h.u16(0)
            h.u32(Int(c.crc)); h.u32(big ? 0xFFFF_FFFF : c.size); h.u32(big ? 0xFFFF_FFFF : c.size)
            h.u16(c.name.count); h.u16(extra.b.count); h.u16(0); h.u16(0); h.u16(0); h.u32(0)
            h.u32(big ? 0xFFFF_FFFF : c.offset)
            try sink.write(h.b + c.name + extra.b)
        }
        let cdEnd = sink.offset
        let cdSize = cdEnd - cdStart
        var e = Bytes()
        // zip64 end record and locator (torch writes them always)
        e.u32(0x0606_4b50); e.u64(44); e.u16(0x031e); e.u16(45); e.u32(0); e.u32(0)
        e.u64(central.count); e.u64(central.count); e.u64(cdSize); e.u64(cdStart)
        e.u32(0x0706_4b50); e.u32(0); e.u64(cdEnd); e.u32(1)
        let many = forceZip64 || central.count >= 0xFFFF
        e.u32(0x0605_4b50); e.u16(0); e.u16(0)
        e.u16(many ? 0xFFFF : central.count); e.u16(many ? 0xFFFF : central.count)
        e.u32(forceZip64 || cdSize >= 0xFFFF_FFFF ? 0xFFFF_FFFF : cdSize)
        e.u32(forceZip64 || cdStart >= 0xFFFF_FFFF ? 0xFFFF_FFFF : cdStart)
        e.u16(0)
        try sink.write(e.b)
    }
}

/// A little-endian byte builder.
struct Bytes {
    var b: [UInt8] = []
    mutating func u16(_ v: Int) { b.append(UInt8(truncatingIfNeeded: v)); b.append(UInt8(truncatingIfNeeded: v >> 8)) }
    mutating func u32(_ v: Int) { for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: Int) { for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
}
