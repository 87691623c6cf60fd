/// The records of a zip checkpoint as (name, bytes) pairs, and back: for the project's tools (the fuzzer mutates
/// one record of a real file and rebuilds the archive), not part of the library's public API.
package enum ZipRecords {
    /// The records of a zip file in archive order; `CheckpointError` when `bytes` is not a readable zip.
    package static func read(_ bytes: [UInt8]) throws(CheckpointError) -> [(name: String, data: [UInt8])] {
        let src = ByteSource(copying: bytes)
        guard CheckpointFormat.detect(src.bytes) == .zip else { throw CheckpointError(.invalidArgument, "not zip") }
        let zip = try ZipArchive(src)
        var out: [(String, [UInt8])] = []
        for e in zip.entries {
            let r = try zip.dataRange(e)
            out.append((e.name, Array(src.bytes[r])))
        }
        return out
    }

    /// A zip archive of `records` as `torch.save` lays it out (stored entries, 64-byte aligned data).
    package static func write(_ records: [(name: String, data: [UInt8])]) throws(CheckpointError) -> [UInt8] {
        let sink = MemorySink()
        var w = ZipWriter(sink)
        for (name, data) in records { try w.add(name, data) }
        try w.finish()
        return sink.bytes
    }
}
