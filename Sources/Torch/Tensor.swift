import CGHMTorch

/// A libtorch tensor. One handle, freed in `deinit`. A class on purpose: libtorch tensors share storage, and in-place
/// ops are visible through every reference. Copies are explicit (`clone()`, `detach()`).
public final class Tensor: CustomStringConvertible {
    public let handle: gt_tensor

    /// Takes ownership of a handle returned by the shim (+1): the handle is freed when this object goes. Internal on
    /// purpose: a caller outside this module could hand in a handle it does not own, or wrap one handle twice, and
    /// get a double free.
    init(owning handle: gt_tensor) {
        self.handle = handle
    }

    deinit { gt_free(handle) }

    // MARK: information

    public var rank: Int {
        var n: Int32 = 0
        gt_ndim(handle, &n)
        return Int(n)
    }

    public var shape: [Int] {
        let n = rank
        var buf = [Int64](repeating: 0, count: n)
        gt_shape(handle, &buf, Int32(n))
        return buf.map { Int($0) }
    }

    public var strides: [Int] {
        let n = rank
        var buf = [Int64](repeating: 0, count: n)
        gt_strides(handle, &buf, Int32(n))
        return buf.map { Int($0) }
    }

    public var storageOffset: Int {
        var v: Int64 = 0
        gt_storage_offset(handle, &v)
        return Int(v)
    }

    /// The size of dimension `dim`; a negative `dim` counts from the end (`-1` is the last). A dimension outside
    /// `-rank ..< rank` is an error, as in PyTorch (a 0-dimensional tensor has no dimensions).
    public func size(_ dim: Int) throws(TorchError) -> Int {
        let s = shape
        guard dim >= -s.count, dim < s.count else {
            throw TorchError(op: "size", message: s.isEmpty
                ? "Dimension specified as \(dim) but tensor has no dimensions"
                : "Dimension out of range (expected to be in range of [\(-s.count), \(s.count - 1)], but got \(dim))")
        }
        return s[dim < 0 ? dim + s.count : dim]
    }

    public var numel: Int {
        var v: Int64 = 0
        gt_numel(handle, &v)
        return Int(v)
    }

    /// The element type. A dtype `DType` does not model (complex, quantized, …) is an error that names it.
    public var dtype: DType {
        get throws(TorchError) {
            var v: Int32 = 0
            try check("dtype", gt_dtype(handle, &v))
            guard let d = DType(rawValue: v) else {
                throw TorchError(op: "dtype", message: "unsupported dtype code \(v)")
            }
            return d
        }
    }

    /// Where the tensor lives. A device other than CPU or CUDA (meta, …) is an error that names it.
    public var device: Device {
        get throws(TorchError) {
            var type: Int32 = 0
            var index: Int32 = 0
            try check("device", gt_device(handle, &type, &index))
            switch type {
            case 0: return .cpu
            case 1: return .cuda(Int(Swift.max(index, 0)))
            default: throw TorchError(op: "device", message: "unsupported device type code \(type)")
            }
        }
    }

    public var isContiguous: Bool {
        var v: Int32 = 0
        gt_is_contiguous(handle, &v)
        return v != 0
    }

    /// True when both tensors view the same storage.
    public func sharesStorage(with other: Tensor) -> Bool {
        var v: Int32 = 0
        gt_same_storage(handle, other.handle, &v)
        return v != 0
    }

    public var description: String {
        let dtype: String, device: String
        do { dtype = "\(try self.dtype)" } catch { dtype = "<\(error.message)>" }
        do { device = "\(try self.device)" } catch { device = "<\(error.message)>" }
        return "Tensor(shape: \(shape), dtype: \(dtype), device: \(device))"
    }

    // MARK: creation from Swift data

    /// A tensor holding a copy of `array` with the given shape (row-major).
    public convenience init<T: TensorElement>(_ array: [T], shape: [Int]) throws(TorchError) {
        let count = shape.reduce(1, *)
        guard count == array.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw TorchError(op: "Tensor.init", message: "\(array.count) elements cannot have shape \(shape)")
        }
        let dims = shape.map { Int64($0) }
        var out = gt_tensor(ptr: nil)
        let status = array.withUnsafeBytes { raw in
            gt_from_data(raw.baseAddress, raw.count, dims, Int32(dims.count), T.dtype.rawValue, &out)
        }
        if status != 0 { throw TorchError.last("Tensor.init") }
        self.init(owning: out)
    }

    /// A 1-D tensor holding a copy of `array`.
    public convenience init<T: TensorElement>(_ array: [T]) throws(TorchError) {
        try self.init(array, shape: [array.count])
    }

    /// A 0-dimensional tensor.
    public convenience init<T: TensorElement>(scalar: T) throws(TorchError) {
        try self.init([scalar], shape: [])
    }

    /// A tensor of `dtype` holding a copy of raw bytes (native byte order), row-major.
    public static func fromBytes(_ bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws(TorchError) -> Tensor {
        let dims = shape.map { Int64($0) }
        return try make("Tensor.fromBytes") { gt_from_data(bytes.baseAddress, bytes.count, dims, Int32(dims.count), dtype.rawValue, $0) }
    }

    // MARK: read-out

    /// The elements converted to `T`, row-major (works for any device, layout and dtype).
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) throws(TorchError) -> [T] {
        let n = numel
        var out = [T](unsafeUninitializedCapacity: n) { _, count in count = n }
        let status = out.withUnsafeMutableBytes { raw in gt_read(handle, T.dtype.rawValue, raw.baseAddress, raw.count) }
        try check("toArray", status)
        return out
    }

    public func floats() throws(TorchError) -> [Float] { try toArray(Float.self) }
    public func doubles() throws(TorchError) -> [Double] { try toArray(Double.self) }
    public func int64s() throws(TorchError) -> [Int64] { try toArray(Int64.self) }
    public func bytes() throws(TorchError) -> [UInt8] { try toArray(UInt8.self) }
    public func bools() throws(TorchError) -> [Bool] { try toArray(Bool.self) }

    /// The value of a one-element tensor.
    public func item() throws(TorchError) -> Double {
        var f = 0.0
        try check("item", gt_item(handle, &f, nil))
        return f
    }

    public func itemInt() throws(TorchError) -> Int {
        var i: Int64 = 0
        try check("item", gt_item(handle, nil, &i))
        return Int(i)
    }

    /// Calls `body` with the raw bytes of a contiguous CPU tensor (no copy). The pointer is valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard try device == .cpu, isContiguous else {
            throw TorchError(op: "withUnsafeBytes", message: "needs a contiguous CPU tensor")
        }
        var p: UnsafeRawPointer?
        try check("withUnsafeBytes", gt_data_ptr(handle, &p))
        let count = try numel * dtype.byteSize
        return try withExtendedLifetime(self) { try body(UnsafeRawBufferPointer(start: p, count: count)) }
    }
}
