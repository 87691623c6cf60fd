import Torch

/// The legacy `torch.save` format (`_use_new_zipfile_serialization=False`, how MMDetection publishes checkpoints):
/// pickled magic number, protocol version, sys_info, the main pickle, the pickled list of storage keys, then for
/// each storage an int64 element count and its raw little-endian bytes.
enum LegacyFormat {
    /// 0x1950a86a20f9469cfc6c as a pickled LONG1 (little-endian bytes).
    static let magic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
    static let protocolVersion = 1001

    static func read(_ src: ByteSource, options: CheckpointReadOptions) throws(CheckpointError) -> CheckpointValue {
        let b = src.bytes
        var pos = 0
        func next(_ table: StorageTable? = nil) throws(CheckpointError) -> (PyObj, Unpickler) {
            var load: Unpickler.PersistentLoad?
            if let table { load = { (pid: PyObj, at: Int) throws(CheckpointError) -> PyObj in try table.load(pid, at: at) } }
            let u = Unpickler(b, start: pos, end: b.count, options: options, persistentLoad: load)
            let o = try u.load()
            pos = u.position
            return (o, u)
        }
        let (m, _) = try next()
        guard case .big(let bytes) = m, bytes == magic else {
            throw CheckpointError(.unrecognizedFormat, "not a torch.save file: the first pickle holds \(m.typeName) "
                                  + "instead of the legacy magic number 0x1950a86a20f9469cfc6c", offset: 0)
        }
        let protoStart = pos
        let (p, _) = try next()
        guard p.intValue == protocolVersion else {
            throw CheckpointError(.unsupported, "legacy protocol version \(p.intValue.map(String.init) ?? p.typeName) "
                                  + "(supported: \(protocolVersion))", offset: protoStart)
        }
        let infoStart = pos
        let (info, infoU) = try next()
        try withExtendedLifetime(infoU) { () throws(CheckpointError) in try checkSysInfo(info, at: infoStart) }
        let table = StorageTable(.legacy)
        let (main, mainU) = try next(table)
        let keysStart = pos
        let (keys, keysU) = try next()
        let keyList: [String] = try withExtendedLifetime(keysU) { () throws(CheckpointError) -> [String] in
            guard case .box(let kb) = keys, kb.kind == .list || kb.kind == .tuple else {
                throw CheckpointError(.corrupt, "the storage key list is a \(keys.typeName)", offset: keysStart)
            }
            var out: [String] = []
            for k in kb.items {
                switch k {
                case .str(let s): out.append(s)
                case .int(let i): out.append(String(i))
                default: throw CheckpointError(.corrupt, "a storage key is a \(k.typeName)", offset: keysStart)
                }
            }
            return out
        }
        try readStorages(src, keyList, table, from: pos)
        return try withExtendedLifetime(mainU) { () throws(CheckpointError) -> CheckpointValue in
            var builder = TreeBuilder(options: options)
            return try builder.value(main)
        }
    }

    private static func checkSysInfo(_ info: PyObj, at offset: Int) throws(CheckpointError) {
        guard case .box(let d) = info, d.isDict else {
            throw CheckpointError(.corrupt, "sys_info is a \(info.typeName), not a dict", offset: offset)
        }
        if let i = d.index[.str("little_endian")], case .bool(false) = d.items[i] {
            throw CheckpointError(.bigEndian, "the file was written on a big-endian machine (sys_info little_endian=False); "
                                  + "big-endian checkpoints are not supported", offset: offset)
        }
    }

    private static func readStorages(_ src: ByteSource, _ keys: [String], _ table: StorageTable,
                                     from start: Int) throws(CheckpointError) {
        var c = ByteCursor(src.bytes, from: start, to: src.count)
        for key in keys {
            let at = c.pos
            guard let ref = table.byKey[key] else {
                throw CheckpointError(.corrupt, "storage '\(key)' is listed but no tensor references it", offset: at)
            }
            guard ref.data == nil else { throw CheckpointError(.corrupt, "storage '\(key)' is listed twice", offset: at) }
            let raw = try c.u64("the size of storage '\(key)'")
            guard let n = Int(exactly: Int64(bitPattern: raw)), n == ref.numel else {
                throw CheckpointError(.corrupt, "storage '\(key)' has \(Int64(bitPattern: raw)) elements in the data section "
                                      + "but \(ref.numel) in the pickle", offset: at)
            }
            let nbytes = try Checked.mul(n, ref.dtype.byteSize, "storage '\(key)' size", offset: at)
            guard nbytes <= c.remaining else {
                throw CheckpointError(.truncated, "storage '\(key)' needs \(nbytes) bytes (\(n) × \(ref.dtype)), "
                                      + "only \(c.remaining) are left in the file", offset: c.pos)
            }
            try readStorage(ref, from: src, at: c.pos, byteCount: nbytes)
            c.pos += nbytes
        }
    }
}

/// The zip `torch.save` format (the default since torch 1.6): `<root>/data.pkl`, `<root>/data/<key>`,
/// `<root>/byteorder`, `<root>/version`, …, stored uncompressed.
enum ZipFormat {
    static func read(_ src: ByteSource, options: CheckpointReadOptions) throws(CheckpointError) -> (CheckpointValue, String) {
        let zip = try ZipArchive(src)
        guard let pkl = zip.entries.first(where: { isRootRecord($0.name, "data.pkl") }) else {
            if zip.entries.contains(where: { $0.name.hasSuffix("/constants.pkl") || $0.name.contains("/code/") }) {
                throw CheckpointError(.unsupported, "a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
            }
            throw CheckpointError(.corrupt, "zip archive has no <root>/data.pkl record (not a torch.save file)")
        }
        let root = String(pkl.name.dropLast("data.pkl".count))
        if let bo = zip.entry(root + "byteorder") {
            let r = try zip.dataRange(bo)
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: src.bytes[r]), as: UTF8.self)
                .filter { !$0.isWhitespace }
            if text == "big" {
                throw CheckpointError(.bigEndian, "byteorder record says 'big': big-endian checkpoints are not supported",
                                      offset: r.lowerBound, record: bo.name)
            }
            guard text == "little" else {
                throw CheckpointError(.corrupt, "byteorder record says '\(text.prefix(20))', expected 'little'",
                                      offset: r.lowerBound, record: bo.name)
            }
        }
        let range = try zip.dataRange(pkl)
        try zip.verify(pkl, range)
        let table = StorageTable(.zip)
        let u = Unpickler(src.bytes, start: range.lowerBound, end: range.upperBound, options: options,
                          persistentLoad: { (pid: PyObj, at: Int) throws(CheckpointError) in try table.load(pid, at: at) })
        let main: PyObj
        do { main = try u.load() } catch { throw error.inRecord(pkl.name) }
        for ref in table.roots {
            let name = root + "data/" + ref.key
            guard let e = zip.entry(name) else {
                throw CheckpointError(.corrupt, "record '\(name)' of storage '\(ref.key)' is missing", offset: ref.offset,
                                      record: pkl.name)
            }
            let r = try zip.dataRange(e)
            let nbytes = try Checked.mul(ref.numel, ref.dtype.byteSize, "storage '\(ref.key)' size")
            guard r.count == nbytes else {
                throw CheckpointError(.corrupt, "record has \(r.count) bytes, storage '\(ref.key)' needs \(nbytes) "
                                      + "(\(ref.numel) × \(ref.dtype))", offset: r.lowerBound, record: name)
            }
            do { try readStorage(ref, from: src, at: r.lowerBound, byteCount: nbytes) } catch { throw error.inRecord(name) }
            if options.verifyChecksums, nbytes > 0, let t = ref.data {
                do {
                    try t.withUnsafeBytes { p in try zip.verify(e, p, at: r) }
                } catch {
                    throw error as? CheckpointError ?? CheckpointError(.io, "\(error)", record: name)
                }
            }
        }
        let value = try withExtendedLifetime(u) { () throws(CheckpointError) -> CheckpointValue in
            var builder = TreeBuilder(options: options)
            return try builder.value(main)
        }
        return (value, String(root.dropLast()))
    }

    private static func isRootRecord(_ name: String, _ leaf: String) -> Bool {
        guard name.hasSuffix("/" + leaf) else { return false }
        return !name.dropLast(leaf.count + 1).contains("/")
    }
}
