import Torch
import Support

/// The safetensors format: an 8-byte little-endian header length, a JSON header
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`, then the data.
public enum Safetensors {
    static let names: [DType: String] = [
        .float64: "F64", .float32: "F32", .float16: "F16", .bfloat16: "BF16", .int64: "I64", .int32: "I32",
        .int16: "I16", .int8: "I8", .uint8: "U8", .bool: "BOOL",
    ]
    static let dtypes: [String: DType] = Dictionary(uniqueKeysWithValues: names.map { ($1, $0) })
    static let maxHeader = 100_000_000

    static func read(_ src: ByteSource, options: CheckpointReadOptions) throws(CheckpointError) -> (CheckpointValue, [String: String]) {
        let b = src.bytes
        try src.checkRange(0, 8, "the safetensors header length")
        let n = try Checked.int(b.le64(0), "header length", offset: 0)
        guard n <= maxHeader else { throw CheckpointError(.limitExceeded, "header of \(n) bytes (limit \(maxHeader))", offset: 0) }
        guard n <= b.count - 8 else {
            throw CheckpointError(.truncated, "header of \(n) bytes, but only \(b.count - 8) follow", offset: 0)
        }
        let header = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: b[8..<(8 + n)]), base: 8)
        guard let fields = header.object else { throw CheckpointError(.corrupt, "header is not a JSON object", offset: 8) }
        let dataStart = 8 + n
        let dataLen = b.count - dataStart
        var metadata: [String: String] = [:]
        var specs: [(key: String, dtype: DType, shape: [Int], begin: Int, nbytes: Int)] = []
        var seen = Set<String>()
        for (key, v) in fields {
            guard seen.insert(key).inserted else { throw CheckpointError(.corrupt, "key appears twice in the header", offset: 8, key: key) }
            if key == "__metadata__" {
                guard let m = v.object else { throw CheckpointError(.corrupt, "__metadata__ is not an object", offset: 8) }
                for (mk, mv) in m {
                    guard let s = mv.string else { throw CheckpointError(.corrupt, "metadata value is not a string", offset: 8, key: mk) }
                    metadata[mk] = s
                }
                continue
            }
            specs.append(try spec(key, v, dataLen: dataLen, options: options))
        }
        var dict = CheckpointDict(ordered: true)
        for s in specs.sorted(by: { $0.begin < $1.begin }) {
            do {
                let t = try Tensor.empty(s.shape, dtype: s.dtype)
                if s.nbytes > 0 {
                    let dst = try t.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
                    try src.copy(from: dataStart + s.begin, count: s.nbytes, to: dst)
                }
                dict[s.key] = .tensor(t)
            } catch let e as CheckpointError {
                throw e.atKey(s.key)
            } catch {
                throw CheckpointError(.io, "cannot create the tensor: \(error)", key: s.key)
            }
        }
        return (.dict(dict), metadata)
    }

    private static func spec(_ key: String, _ v: JSONValue, dataLen: Int, options: CheckpointReadOptions)
        throws(CheckpointError) -> (key: String, dtype: DType, shape: [Int], begin: Int, nbytes: Int) {
        func bad(_ m: String, _ kind: CheckpointError.Kind = .corrupt) -> CheckpointError { CheckpointError(kind, m, offset: 8, key: key) }
        guard let name = v["dtype"]?.string else { throw bad("no dtype") }
        guard let dtype = dtypes[name] else {
            throw bad("dtype \(name) is not supported (supported: \(dtypes.keys.sorted().joined(separator: ", ")))", .unsupported)
        }
        guard let dims = v["shape"]?.array, dims.count <= options.maxRank else { throw bad("no shape, or too many dimensions") }
        var shape: [Int] = []
        for d in dims {
            guard let i = d.int, i >= 0 else { throw bad("shape has a negative or non-integer entry") }
            shape.append(i)
        }
        guard let offs = v["data_offsets"]?.array, offs.count == 2, let begin = offs[0].int, let end = offs[1].int else {
            throw bad("data_offsets is not [begin, end]")
        }
        let numel = try Checked.product(shape, limit: Int.max, "tensor of shape")
        let nbytes = try Checked.mul(numel, dtype.byteSize, "tensor size")
        guard begin >= 0, begin <= end, end <= dataLen else {
            throw bad("data_offsets [\(begin), \(end)] lie outside the \(dataLen) data bytes")
        }
        guard end - begin == nbytes else {
            throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes, shape \(shape) × \(name) needs \(nbytes)")
        }
        return (key, dtype, shape, begin, nbytes)
    }

    /// Writes `tensors` (made contiguous, on the CPU) and optional string metadata, atomically.
    public static func write(_ tensors: [(key: String, tensor: Tensor)], metadata: [String: String]? = nil,
                             to path: String) throws(CheckpointError) {
        do {
            let sink = try AtomicFileSink(path: path)
            try write(tensors, metadata: metadata, to: sink)
            try sink.commit()
        } catch {
            throw error.inFile(path)
        }
    }

    /// The safetensors bytes of `tensors` (for tests and in-memory use).
    public static func encode(_ tensors: [(key: String, tensor: Tensor)], metadata: [String: String]? = nil) throws(CheckpointError) -> [UInt8] {
        let sink = MemorySink()
        try write(tensors, metadata: metadata, to: sink)
        return sink.bytes
    }

    static func write(_ tensors: [(key: String, tensor: Tensor)], metadata: [String: String]?, to sink: ByteSink) throws(CheckpointError) {
        var seen = Set<String>()
        var parts: [String] = []
        if let metadata, !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(JSONText.quote($0.key)):\(JSONText.quote($0.value))" }
            parts.append("\"__metadata__\":{" + m.joined(separator: ",") + "}")
        }
        var prepared: [Tensor] = []
        var offset = 0
        for (key, t) in tensors {
            guard key != "__metadata__", seen.insert(key).inserted else {
                throw CheckpointError(.invalidArgument, "duplicate or reserved key", key: key)
            }
            let dtype: DType
            do { dtype = try t.dtype } catch { throw CheckpointError(.invalidArgument, error.message, key: key) }
            guard let name = names[dtype] else { throw CheckpointError(.invalidArgument, "unsupported dtype \(dtype)", key: key) }
            let c: Tensor
            do { c = try (t.device == .cpu ? t : t.to(.cpu)).contiguous() } catch {
                throw CheckpointError(.invalidArgument, "cannot make the tensor contiguous: \(error.message)", key: key)
            }
            let nbytes = c.numel * dtype.byteSize
            parts.append("\(JSONText.quote(key)):{\"dtype\":\"\(name)\",\"shape\":[\(c.shape.map(String.init).joined(separator: ","))],"
                         + "\"data_offsets\":[\(offset),\(offset + nbytes)]}")
            offset += nbytes
            prepared.append(c)
        }
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var len = UInt64(header.count).littleEndian
        try sink.write(withUnsafeBytes(of: &len) { Array($0) })
        try sink.write(header)
        for t in prepared where t.numel > 0 {
            try writeBytes(of: t, to: sink)
        }
    }
}

/// Writes a contiguous CPU tensor's bytes.
func writeBytes(of t: Tensor, to sink: ByteSink) throws(CheckpointError) {
    do {
        try t.withUnsafeBytes { p in try sink.write(p) }
    } catch let e as CheckpointError {
        throw e
    } catch {
        throw CheckpointError(.invalidArgument, "cannot read tensor data: \(error)")
    }
}
