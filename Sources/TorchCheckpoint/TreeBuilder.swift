import Torch

/// The storages a pickle references through persistent ids, by key.
final class StorageTable {
    enum Layout { case zip, legacy }
    let layout: Layout
    private(set) var byKey: [String: StorageRef] = [:]
    /// Root storages in the order of their first reference.
    private(set) var roots: [StorageRef] = []
    private var views: [String: StorageRef] = [:]

    init(_ layout: Layout) { self.layout = layout }

    /// `persistent_load` for ('storage', storage_type, key, location, numel[, view_metadata]).
    func load(_ pid: PyObj, at offset: Int) throws(CheckpointError) -> PyObj {
        func bad(_ m: String) -> CheckpointError { CheckpointError(.corrupt, "persistent id: \(m)", offset: offset) }
        guard let t = pid.tuple, !t.isEmpty else { throw bad("expected a tuple, got a \(pid.typeName)") }
        let tag: String
        switch t[0] {
        case .str(let s): tag = s
        case .bytes(let b): tag = String(decoding: b, as: UTF8.self)
        default: throw bad("first item is a \(t[0].typeName)")
        }
        guard tag == "storage" else {
            throw CheckpointError(.unsupported, "persistent id of type '\(tag)' (only 'storage' is supported)", offset: offset)
        }
        let expected = layout == .zip ? 5 : 6
        guard t.count == expected else { throw bad("storage id has \(t.count) items, expected \(expected)") }
        guard case .global(.storageType(let dtype, _)) = t[1] else { throw bad("storage type is a \(t[1].typeName)") }
        let key = try keyText(t[2], bad)
        guard case .str = t[3] else { throw bad("location is a \(t[3].typeName)") }
        guard let numel = t[4].intValue, numel >= 0 else { throw bad("storage size is not a non-negative integer") }
        let root = try root(key: key, dtype: dtype, numel: numel, offset: offset)
        guard layout == .legacy, case .box = t[5] else {
            if layout == .legacy, !(t[5].isNone) { throw bad("view metadata is a \(t[5].typeName)") }
            return .storage(root)
        }
        guard let v = t[5].tuple, v.count == 3, let vo = v[1].intValue, let vn = v[2].intValue, vo >= 0, vn >= 0 else {
            throw bad("view metadata is not (key, offset, size)")
        }
        let viewKey = try keyText(v[0], bad)
        if let existing = views[viewKey] {
            guard existing.root === root, existing.viewOffset == vo, existing.numel == vn else {
                throw bad("storage view '\(viewKey)' is declared twice differently")
            }
            return .storage(existing)
        }
        let view = StorageRef(key: viewKey, dtype: dtype, numel: vn, root: root, viewOffset: vo, offset: offset)
        views[viewKey] = view
        return .storage(view)
    }

    private func keyText(_ o: PyObj, _ bad: (String) -> CheckpointError) throws(CheckpointError) -> String {
        switch o {
        case .str(let s): return s
        case .int(let i): return String(i)
        default: throw bad("storage key is a \(o.typeName)")
        }
    }

    private func root(key: String, dtype: DType, numel: Int, offset: Int) throws(CheckpointError) -> StorageRef {
        if let existing = byKey[key] {
            guard existing.dtype == dtype, existing.numel == numel else {
                throw CheckpointError(.corrupt, "storage '\(key)' is declared as \(existing.numel) × \(existing.dtype) "
                                      + "and as \(numel) × \(dtype)", offset: offset)
            }
            return existing
        }
        let r = StorageRef(key: key, dtype: dtype, numel: numel, offset: offset)
        byKey[key] = r
        roots.append(r)
        return r
    }
}

/// Allocates the 1-D tensor for a storage and fills it from the source (one copy, range-checked first).
func readStorage(_ ref: StorageRef, from source: ByteSource, at offset: Int, byteCount: Int) throws(CheckpointError) {
    do {
        let t = try Tensor.empty([ref.numel], dtype: ref.dtype)
        if byteCount > 0 {
            try source.checkRange(offset, byteCount, "storage '\(ref.key)'")
            let dst = try t.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
            try source.copy(from: offset, count: byteCount, to: dst)
        }
        ref.data = t
    } catch let e as CheckpointError {
        throw e
    } catch {
        throw CheckpointError(.io, "cannot create storage '\(ref.key)' of \(ref.numel) × \(ref.dtype): \(error)", offset: offset)
    }
}

/// Turns unpickled objects into `CheckpointValue`s, creating each tensor as a bounds-checked view of its storage.
struct TreeBuilder {
    let options: CheckpointReadOptions
    private var nodes = 0

    init(options: CheckpointReadOptions) { self.options = options }

    mutating func value(_ o: PyObj, path: String = "", depth: Int = 0) throws(CheckpointError) -> CheckpointValue {
        nodes += 1
        guard nodes <= options.maxNodes else {
            throw CheckpointError(.limitExceeded, "more than \(options.maxNodes) values (shared references expand too far)",
                                  key: path.isEmpty ? nil : path)
        }
        guard depth <= options.maxDepth else {
            throw CheckpointError(.limitExceeded, "nested deeper than \(options.maxDepth) levels (a recursive structure?)",
                                  key: path.isEmpty ? nil : path)
        }
        switch o {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .big(let b): return .bigInt(b)
        case .float(let d): return .float(d)
        case .str(let s):
            try charge(s.utf8.count / 64, path)
            return .string(s)
        case .bytes(let b):
            try charge(b.count / 64, path)
            return .bytes(b)
        case .device(let s): return .device(s)
        case .tensor(let spec): return .tensor(try tensor(spec, path: path))
        case .storage(let s):
            throw CheckpointError(.unsupported, "a bare storage ('\(s.key)') outside a tensor is not supported",
                                  offset: s.offset, key: path.isEmpty ? nil : path)
        case .global(let g):
            throw CheckpointError(.unsupported, "the global \(g.name) itself as a value is not supported", key: path.isEmpty ? nil : path)
        case .box(let b): return try container(b, path: path, depth: depth)
        }
    }

    /// Text counts against the value budget (1 per 64 bytes), since shared strings are hashed again in every copy.
    private mutating func charge(_ units: Int, _ path: String) throws(CheckpointError) {
        nodes += units
        guard nodes <= options.maxNodes else {
            throw CheckpointError(.limitExceeded, "more than \(options.maxNodes) values (shared references expand too far)",
                                  key: path.isEmpty ? nil : path)
        }
    }

    private mutating func container(_ b: PyBox, path: String, depth: Int) throws(CheckpointError) -> CheckpointValue {
        switch b.kind {
        case .list, .tuple, .set:
            var items: [CheckpointValue] = []
            items.reserveCapacity(b.items.count)
            for (i, item) in b.items.enumerated() {
                items.append(try value(item, path: joinKey(path, String(i)), depth: depth + 1))
            }
            return b.kind == .list ? .list(items) : b.kind == .tuple ? .tuple(items) : .set(items)
        case .dict, .orderedDict:
            var d = CheckpointDict(ordered: b.kind == .orderedDict)
            for (k, v) in zip(b.keys, b.items) {
                let key = try value(k, path: path, depth: depth + 1)
                let val = try value(v, path: joinKey(path, key.keyText), depth: depth + 1)
                try d.set(val, for: key)
            }
            return .dict(d)
        }
    }

    /// The view `spec` describes, after checking it lies inside its storage.
    private func tensor(_ spec: TensorSpec, path: String) throws(CheckpointError) -> Tensor {
        if let t = spec.tensor { return t }
        do {
            return try makeTensor(spec, path: path)
        } catch {
            var e = error.atKey(path)
            if e.offset == nil { e.offset = spec.offset }
            throw e
        }
    }

    private func makeTensor(_ spec: TensorSpec, path: String) throws(CheckpointError) -> Tensor {
        func bad(_ k: CheckpointError.Kind, _ m: String) -> CheckpointError {
            CheckpointError(k, m, offset: spec.offset, key: path.isEmpty ? nil : path)
        }
        let s = spec.storage
        let base: StorageRef
        var start = spec.storageOffset
        if let root = s.root {
            base = root
            let viewEnd = try Checked.add(s.viewOffset, s.numel, "storage view end")
            guard viewEnd <= root.numel else {
                throw bad(.corrupt, "storage view '\(s.key)' [\(s.viewOffset), \(viewEnd)) lies outside storage '\(root.key)' of \(root.numel) elements")
            }
            start = try Checked.add(start, s.viewOffset, "storage offset")
        } else {
            base = s
        }
        guard let data = base.data else { throw bad(.corrupt, "storage '\(base.key)' has no data in the file") }
        let numel = try Checked.product(spec.shape, limit: options.maxViewElements, "tensor of shape")
        if numel > 0 {
            var last = spec.storageOffset
            for (n, st) in zip(spec.shape, spec.strides) {
                let step = try Checked.mul(n - 1, st, "tensor extent")
                last = try Checked.add(last, step, "tensor extent")
            }
            guard last < s.numel else {
                throw bad(.corrupt, "tensor of shape \(spec.shape), strides \(spec.strides) at storage offset "
                          + "\(spec.storageOffset) reaches element \(last), but storage '\(s.key)' has \(s.numel) elements")
            }
        } else if spec.storageOffset > s.numel {
            throw bad(.corrupt, "empty tensor at storage offset \(spec.storageOffset) beyond storage '\(s.key)' of \(s.numel) elements")
        }
        do {
            let t = try data.asStrided(shape: spec.shape, strides: spec.strides, offset: start)
            spec.tensor = t
            return t
        } catch {
            throw bad(.corrupt, "cannot create the tensor view: \(error.message)")
        }
    }
}
