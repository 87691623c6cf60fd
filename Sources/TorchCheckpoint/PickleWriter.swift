import Torch

/// Emits pickle protocol 2 the way `torch.save` does, using only globals that `torch.load(weights_only=True)`
/// accepts: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.<T>Storage`, `torch.device`,
/// `_codecs.encode` (bytes) and `builtins.set`.
struct PickleWriter {
    /// Where each tensor's data lives in the archive: storage key, its element type and size, and the view.
    struct TensorRef {
        let key: String
        let dtype: DType
        let storageNumel: Int
        let offset: Int
        let shape: [Int]
        let strides: [Int]
    }

    private(set) var out: [UInt8] = [0x80, 2]
    let refs: [ObjectIdentifier: TensorRef]

    init(refs: [ObjectIdentifier: TensorRef]) { self.refs = refs }

    mutating func finish() -> [UInt8] {
        out.append(0x2e)  // STOP
        return out
    }

    private mutating func op(_ b: UInt8) { out.append(b) }

    private mutating func global(_ module: String, _ name: String) {
        op(0x63)
        out.append(contentsOf: Array(module.utf8))
        op(0x0a)
        out.append(contentsOf: Array(name.utf8))
        op(0x0a)
    }

    private mutating func u32(_ v: Int) {
        let u = UInt32(truncatingIfNeeded: v)
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: u >> (8 * UInt32(i)))) }
    }

    mutating func string(_ s: String) {
        let b = Array(s.utf8)
        op(0x58)
        u32(b.count)
        out.append(contentsOf: b)
    }

    mutating func int(_ v: Int) {
        if v >= 0 && v < 256 {
            op(0x4b); op(UInt8(v))
        } else if v >= 0 && v < 65536 {
            op(0x4d); op(UInt8(v & 0xff)); op(UInt8(v >> 8))
        } else if v >= Int(Int32.min) && v <= Int(Int32.max) {
            op(0x4a); u32(v)
        } else {
            var bytes: [UInt8] = []
            var x = v
            for _ in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
            // drop redundant sign bytes, keeping the sign bit right
            while bytes.count > 1 {
                let last = bytes[bytes.count - 1], prev = bytes[bytes.count - 2]
                if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) { bytes.removeLast() } else { break }
            }
            bigInt(bytes)
        }
    }

    private mutating func bigInt(_ bytes: [UInt8]) {
        if bytes.count < 256 {
            op(0x8a); op(UInt8(bytes.count))
        } else {
            op(0x8b); u32(bytes.count)
        }
        out.append(contentsOf: bytes)
    }

    private mutating func items(_ values: [CheckpointValue], depth: Int) throws(CheckpointError) {
        for v in values { try value(v, depth: depth + 1) }
    }

    mutating func value(_ v: CheckpointValue, depth: Int = 0) throws(CheckpointError) {
        guard depth < 1000 else { throw CheckpointError(.limitExceeded, "value nested deeper than 1000 levels") }
        switch v {
        case .none: op(0x4e)
        case .bool(let b): op(b ? 0x88 : 0x89)
        case .int(let i): int(i)
        case .bigInt(let b): bigInt(b.isEmpty ? [0] : b)
        case .float(let d):
            op(0x47)
            let bits = d.bitPattern
            for i in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(i))) }
        case .string(let s): string(s)
        case .bytes(let b):
            global("_codecs", "encode")
            string(String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) })))
            string("latin1")
            op(0x86); op(0x52)  // TUPLE2, REDUCE
        case .list(let a):
            op(0x5d)
            for chunk in stride(from: 0, to: a.count, by: 1000) {
                op(0x28); try items(Array(a[chunk..<Swift.min(chunk + 1000, a.count)]), depth: depth); op(0x65)
            }
        case .tuple(let a):
            switch a.count {
            case 0: op(0x29)
            case 1...3: try items(a, depth: depth); op(0x84 + UInt8(a.count))
            default: op(0x28); try items(a, depth: depth); op(0x74)
            }
        case .set(let a):
            global("builtins", "set")
            try value(.list(a), depth: depth + 1)
            op(0x85); op(0x52)  // TUPLE1, REDUCE
        case .dict(let d):
            if d.isOrdered {
                global("collections", "OrderedDict"); op(0x29); op(0x52)
            } else {
                op(0x7d)
            }
            let e = d.entries
            for chunk in stride(from: 0, to: e.count, by: 1000) {
                op(0x28)
                for (k, val) in e[chunk..<Swift.min(chunk + 1000, e.count)] {
                    try value(k, depth: depth + 1)
                    try value(val, depth: depth + 1)
                }
                op(0x75)
            }
        case .device(let s):
            global("torch", "device"); string(s); op(0x85); op(0x52)
        case .tensor(let t):
            guard let r = refs[ObjectIdentifier(t)] else { throw CheckpointError(.invalidArgument, "internal: tensor without a storage") }
            tensor(r)
        }
    }

    private mutating func tensor(_ r: TensorRef) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)
        op(0x28)  // persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
        string("storage")
        global("torch", PyGlobal.storageTypes.first { $0.value == r.dtype }!.key)
        string(r.key)
        string("cpu")
        int(r.storageNumel)
        op(0x74)
        op(0x51)  // BINPERSID
        int(r.offset)
        try? value(.tuple(r.shape.map { .int($0) }))
        try? value(.tuple(r.strides.map { .int($0) }))
        op(0x89)  // requires_grad False
        global("collections", "OrderedDict"); op(0x29); op(0x52)
        op(0x74)
        op(0x52)
    }
}

/// Assigns every tensor of a value tree to a storage record, so that views that share memory in Swift share one
/// storage in the file (as `torch.save` does).
struct StoragePlan {
    struct Group {
        var representative: Tensor
        let dtype: DType
        var extent: Int
        let key: String
    }

    private(set) var groups: [Group] = []
    private(set) var refs: [ObjectIdentifier: PickleWriter.TensorRef] = [:]

    init(_ root: CheckpointValue) throws(CheckpointError) {
        var seen = Set<ObjectIdentifier>()
        var pending: [(id: ObjectIdentifier, tensor: Tensor, dtype: DType, group: Int, key: String)] = []
        for (key, original) in root.tensors() where seen.insert(ObjectIdentifier(original)).inserted {
            var t = original
            let dtype: DType
            do { dtype = try t.dtype } catch { throw CheckpointError(.invalidArgument, error.message, key: key) }
            do {
                if try t.device != .cpu { t = try t.to(.cpu) }
            } catch {
                throw CheckpointError(.invalidArgument, "cannot copy the tensor to the CPU: \(error.message)", key: key)
            }
            let g = try group(for: t, dtype: dtype, key: key)
            pending.append((ObjectIdentifier(original), t, dtype, g, key))
        }
        for p in pending {
            let g = groups[p.group]
            let t = p.tensor
            let empty = t.numel == 0
            refs[p.id] = PickleWriter.TensorRef(key: g.key, dtype: p.dtype, storageNumel: g.extent,
                                                offset: empty ? 0 : t.storageOffset, shape: t.shape, strides: t.strides)
        }
    }

    private mutating func group(for t: Tensor, dtype: DType, key: String) throws(CheckpointError) -> Int {
        guard PyGlobal.storageTypes.values.contains(dtype) else {
            throw CheckpointError(.invalidArgument, "dtype \(dtype) cannot be saved", key: key)
        }
        if t.numel == 0 {
            groups.append(Group(representative: t, dtype: dtype, extent: 0, key: String(groups.count)))
            return groups.count - 1
        }
        var extent = t.storageOffset + 1
        for (n, s) in zip(t.shape, t.strides) { extent += (n - 1) * s }
        for i in groups.indices where groups[i].extent > 0 && groups[i].dtype == dtype
            && groups[i].representative.sharesStorage(with: t) {
            groups[i].extent = Swift.max(groups[i].extent, extent)
            return i
        }
        groups.append(Group(representative: t, dtype: dtype, extent: extent, key: String(groups.count)))
        return groups.count - 1
    }

    /// The bytes of a group's storage, as a contiguous 1-D tensor viewing (not copying) the original storage.
    func storageTensor(_ g: Group) throws(CheckpointError) -> Tensor {
        do {
            return try g.representative.detach().asStrided(shape: [g.extent], strides: [1], offset: 0).contiguous()
        } catch {
            throw CheckpointError(.invalidArgument, "cannot read storage \(g.key): \(error.message)")
        }
    }
}
