import CGHMTorch

/// Element types, with c10::ScalarType's codes.
public enum DType: Int32, CaseIterable, CustomStringConvertible, Sendable {
    case uint8 = 0, int8 = 1, int16 = 2, int32 = 3, int64 = 4, float16 = 5, float32 = 6, float64 = 7
    case bool = 11, bfloat16 = 15

    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .int16, .float16, .bfloat16: return 2
        case .int32, .float32: return 4
        case .int64, .float64: return 8
        }
    }

    public var isFloatingPoint: Bool { [.float16, .float32, .float64, .bfloat16].contains(self) }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .float16: return "float16"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .bfloat16: return "bfloat16"
        }
    }

    /// Parses names such as "float32", "float", "int64", "long", "uint8".
    public init?(name: String) {
        switch name.lowercased() {
        case "uint8", "byte": self = .uint8
        case "int8", "char": self = .int8
        case "int16", "short": self = .int16
        case "int32", "int": self = .int32
        case "int64", "long": self = .int64
        case "float16", "half": self = .float16
        case "float32", "float": self = .float32
        case "float64", "double": self = .float64
        case "bool": self = .bool
        case "bfloat16": self = .bfloat16
        default: return nil
        }
    }
}

/// Where a tensor lives.
public enum Device: Equatable, CustomStringConvertible, Sendable {
    case cpu
    case cuda(Int)

    var typeCode: Int32 {
        if case .cpu = self { return 0 }
        return 1
    }

    var indexCode: Int32 {
        if case .cuda(let i) = self { return Int32(i) }
        return -1
    }

    public var isCUDA: Bool { typeCode == 1 }

    /// N of cuda:N; nil on the CPU.
    public var cudaIndex: Int? {
        if case .cuda(let i) = self { return i }
        return nil
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let i): return "cuda:\(i)"
        }
    }

    /// Parses "cpu", "cuda", "cuda:N".
    public init?(_ text: String) {
        let t = text.lowercased()
        if t == "cpu" { self = .cpu; return }
        if t == "cuda" || t == "gpu" { self = .cuda(0); return }
        if t.hasPrefix("cuda:"), let i = Int(t.dropFirst(5)), i >= 0 { self = .cuda(i); return }
        return nil
    }
}

/// A Swift number usable as a scalar operand (`t + 1`, `t * 0.5`, `t.fill(true)`).
public protocol TensorScalar {
    var gtScalar: gt_scalar { get }
}

extension Double: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: self, i: 0, kind: 0) } }
extension Float: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: Double(self), i: 0, kind: 0) } }
extension Int: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: 0, i: Int64(self), kind: 1) } }
extension Int64: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: 0, i: self, kind: 1) } }
extension Int32: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: 0, i: Int64(self), kind: 1) } }
extension Bool: TensorScalar { public var gtScalar: gt_scalar { gt_scalar(f: 0, i: self ? 1 : 0, kind: 2) } }

/// A Swift element type that maps 1:1 onto a tensor dtype, for creating tensors from arrays and reading them back.
public protocol TensorElement {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
