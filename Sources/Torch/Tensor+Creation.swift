import CGHMTorch

extension Tensor {
    public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws(TorchError) -> Tensor {
        let d = shape.map { Int64($0) }
        return try make("empty") { gt_empty(d, Int32(d.count), dtype.rawValue, device.typeCode, device.indexCode, $0) }
    }

    public static func full(_ shape: [Int], _ value: some TensorScalar, dtype: DType = .float32,
                            device: Device = .cpu) throws(TorchError) -> Tensor {
        let d = shape.map { Int64($0) }
        return try make("full") {
            gt_full(d, Int32(d.count), value.gtScalar, dtype.rawValue, device.typeCode, device.indexCode, $0)
        }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws(TorchError) -> Tensor {
        try full(shape, 0, dtype: dtype, device: device)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws(TorchError) -> Tensor {
        try full(shape, 1, dtype: dtype, device: device)
    }

    /// `torch.arange(start, end, step)`.
    public static func arange(_ start: some TensorScalar, _ end: some TensorScalar, step: some TensorScalar = 1,
                              dtype: DType = .int64, device: Device = .cpu) throws(TorchError) -> Tensor {
        try make("arange") {
            gt_arange(start.gtScalar, end.gtScalar, step.gtScalar, dtype.rawValue, device.typeCode, device.indexCode, $0)
        }
    }

    public static func arange(_ end: Int, dtype: DType = .int64, device: Device = .cpu) throws(TorchError) -> Tensor {
        try arange(0, end, step: 1, dtype: dtype, device: device)
    }

    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32,
                                device: Device = .cpu) throws(TorchError) -> Tensor {
        try make("linspace") { gt_linspace(start, end, Int64(steps), dtype.rawValue, device.typeCode, device.indexCode, $0) }
    }

    /// Standard normal samples from the global generator (seed it with `Torch.manualSeed`).
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws(TorchError) -> Tensor {
        let d = shape.map { Int64($0) }
        return try make("randn") { gt_random(0, d, Int32(d.count), dtype.rawValue, device.typeCode, device.indexCode, $0) }
    }

    /// Uniform samples in [0, 1).
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws(TorchError) -> Tensor {
        let d = shape.map { Int64($0) }
        return try make("rand") { gt_random(1, d, Int32(d.count), dtype.rawValue, device.typeCode, device.indexCode, $0) }
    }

    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64) throws(TorchError) -> Tensor {
        let d = shape.map { Int64($0) }
        return try make("randint") { gt_randint(Int64(low), Int64(high), d, Int32(d.count), dtype.rawValue, $0) }
    }

    public static func randperm(_ n: Int) throws(TorchError) -> Tensor {
        try make("randperm") { gt_randperm(Int64(n), $0) }
    }

    /// `g = torch.Generator(); g.manual_seed(seed)`, then `torch.randperm(n, generator=g)` for each n in turn: the
    /// same permutations as Python torch; the global generator is not touched.
    public static func randperms(_ ns: [Int], seed: UInt64) throws(TorchError) -> [Tensor] {
        let sizes = ns.map { Int64($0) }
        var handles = [gt_tensor](repeating: gt_tensor(ptr: nil), count: sizes.count)
        try check("randperm", gt_randperms_seeded(sizes, Int32(sizes.count), seed, &handles))
        return handles.map { Tensor(owning: $0) }
    }

    /// In place: `normal_(mean, std)`.
    @discardableResult
    public func normal_(mean: Double = 0, std: Double = 1) throws(TorchError) -> Tensor {
        try check("normal_", gt_random_(handle, 0, mean, std))
        return self
    }

    /// In place: `uniform_(from, to)`.
    @discardableResult
    public func uniform_(from: Double = 0, to: Double = 1) throws(TorchError) -> Tensor {
        try check("uniform_", gt_random_(handle, 1, from, to))
        return self
    }

    /// A 1-D storage tensor holding a copy of raw bytes of `dtype` elements (checkpoint loading).
    public static func storage(bytes: UnsafeRawBufferPointer, dtype: DType) throws(TorchError) -> Tensor {
        try make("storage") { gt_from_storage(bytes.baseAddress, bytes.count, dtype.rawValue, $0) }
    }

    /// A view with explicit shape, strides and storage offset (in elements), checked against the storage size.
    public func asStrided(shape: [Int], strides: [Int], offset: Int) throws(TorchError) -> Tensor {
        guard shape.count == strides.count else {
            throw TorchError(op: "as_strided", message: "shape \(shape) and strides \(strides) differ in length")
        }
        let s = shape.map { Int64($0) }
        let st = strides.map { Int64($0) }
        return try make("as_strided") { gt_as_strided(handle, s, st, Int32(s.count), Int64(offset), $0) }
    }

    // MARK: conversion and copies

    public func to(_ dtype: DType) throws(TorchError) -> Tensor {
        let dev = try device
        return try make("to") { gt_to(handle, dtype.rawValue, dev.typeCode, dev.indexCode, $0) }
    }

    public func to(_ device: Device, dtype: DType? = nil) throws(TorchError) -> Tensor {
        try make("to") { gt_to(handle, dtype?.rawValue ?? -1, device.typeCode, device.indexCode, $0) }
    }

    /// In place: copies `src` (broadcast, converted) into this tensor.
    @discardableResult
    public func copy_(_ src: Tensor) throws(TorchError) -> Tensor {
        try check("copy_", gt_copy_(handle, src.handle))
        return self
    }

    @discardableResult
    public func fill_(_ value: some TensorScalar) throws(TorchError) -> Tensor {
        try check("fill_", gt_fill_(handle, value.gtScalar))
        return self
    }

    @discardableResult
    public func zero_() throws(TorchError) -> Tensor { try fill_(0) }
}
