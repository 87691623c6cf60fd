import Torch

/// An object on the unpickler's stack. Containers are boxes, so that later SETITEMS/APPENDS through the memo
/// reach the same object, as in Python.
enum PyObj {
    case none
    case bool(Bool)
    case int(Int)
    case big([UInt8])
    case float(Double)
    case str(String)
    case bytes([UInt8])
    case box(PyBox)
    case global(PyGlobal)
    case storage(StorageRef)
    case tensor(TensorSpec)
    case device(String)

    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .big: return "int"
        case .float: return "float"
        case .str: return "str"
        case .bytes: return "bytes"
        case .box(let b): return b.kind.rawValue
        case .global(let g): return "global \(g.name)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        case .device: return "torch.device"
        }
    }

    var depth: Int {
        switch self {
        case .box(let b): return b.depth
        case .tensor: return 1
        default: return 0
        }
    }

    var tuple: [PyObj]? {
        if case .box(let b) = self, b.kind == .tuple { return b.items }
        return nil
    }

    var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var isNone: Bool { if case .none = self { return true }; return false }

    var stringValue: String? { if case .str(let s) = self { return s }; return nil }

    /// Python's hash key, or nil for unhashable objects (and for tuple keys of more than 256 items in all, which
    /// no checkpoint uses and which would make hashing expensive).
    func dictKey() -> DictKey? {
        var budget = 256
        return dictKey(&budget)
    }

    private func dictKey(_ budget: inout Int) -> DictKey? {
        budget -= 1
        guard budget >= 0 else { return nil }
        switch self {
        case .none: return DictKey.none
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .big(let b): return .big(b)
        case .float(let d):
            if d.isFinite, d.rounded() == d, let i = Int(exactly: d) { return .int(i) }
            return .float((d == 0 ? 0 : d).bitPattern)
        case .str(let s): return .str(s)
        case .bytes(let b): return .bytes(b)
        case .device(let s): return .str("device:" + s)
        case .tensor(let t): return .object(ObjectIdentifier(t))
        case .global(let g): return .str("global:" + g.name)
        case .storage(let s): return .object(ObjectIdentifier(s))
        case .box(let b):
            guard b.kind == .tuple else { return nil }
            var keys: [DictKey] = []
            for item in b.items {
                guard let k = item.dictKey(&budget) else { return nil }
                keys.append(k)
            }
            return .tuple(keys)
        }
    }

    /// Rough cost of hashing this object as a key (1 per 64 bytes of text), for the work budget.
    var hashCost: Int {
        switch self {
        case .str(let s): return 1 + s.utf8.count / 64
        case .bytes(let b), .big(let b): return 1 + b.count / 64
        case .box(let b): return b.items.reduce(1) { $0 + $1.hashCost }
        default: return 1
        }
    }
}

/// A list, tuple, set or dict under construction.
final class PyBox {
    enum Kind: String { case list, tuple, set, dict, orderedDict = "OrderedDict" }
    let kind: Kind
    var items: [PyObj] = []
    var keys: [PyObj] = []
    var index: [DictKey: Int] = [:]
    var depth: Int = 1

    init(_ kind: Kind) { self.kind = kind }

    var isDict: Bool { kind == .dict || kind == .orderedDict }

    func releaseChildren() {
        items = []
        keys = []
        index = [:]
    }
}

/// The globals a checkpoint may name (the allow-list). Anything else is refused.
enum PyGlobal {
    case orderedDict
    case rebuildTensor
    case rebuildTensorV2
    case rebuildParameter
    case rebuildParameterWithState
    case storageType(DType, String)
    case device
    case size
    case codecsEncode
    case set
    case frozenset
    case bytearray

    var name: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .storageType(_, let n): return n
        case .device: return "torch.device"
        case .size: return "torch.Size"
        case .codecsEncode: return "_codecs.encode"
        case .set: return "builtins.set"
        case .frozenset: return "builtins.frozenset"
        case .bytearray: return "builtins.bytearray"
        }
    }

    static let storageTypes: [String: DType] = [
        "DoubleStorage": .float64, "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool,
    ]

    /// Resolves `module.name` against the allow-list.
    static func resolve(module: String, name: String) -> PyGlobal? {
        let module = module == "__builtin__" ? "builtins" : module
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch", "device"): return .device
        case ("torch", "Size"): return .size
        case ("_codecs", "encode"): return .codecsEncode
        case ("builtins", "set"): return .set
        case ("builtins", "frozenset"): return .frozenset
        case ("builtins", "bytearray"): return .bytearray
        case ("torch", "UntypedStorage"), ("torch.storage", "UntypedStorage"):
            return .storageType(.uint8, "\(module).\(name)")
        case ("torch", _), ("torch.cuda", _):
            if let d = storageTypes[name] { return .storageType(d, "\(module).\(name)") }
            return nil
        default: return nil
        }
    }
}

/// A storage named by a persistent id: its key, element type and size, and (once read) its data as a 1-D tensor.
final class StorageRef {
    let key: String
    let dtype: DType
    /// Elements in the storage as declared by the pickle.
    let numel: Int
    /// For a legacy storage view: the root storage and the element offset into it.
    let root: StorageRef?
    let viewOffset: Int
    /// Where the persistent id was read (byte offset), for messages.
    let offset: Int
    var data: Tensor?

    init(key: String, dtype: DType, numel: Int, root: StorageRef? = nil, viewOffset: Int = 0, offset: Int) {
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.root = root
        self.viewOffset = viewOffset
        self.offset = offset
    }
}

/// A tensor described by `_rebuild_tensor_v2`: created as a view of its storage after all storages are read.
final class TensorSpec {
    let storage: StorageRef
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
    let requiresGrad: Bool
    let offset: Int
    var tensor: Tensor?

    init(storage: StorageRef, storageOffset: Int, shape: [Int], strides: [Int], requiresGrad: Bool, offset: Int) {
        self.storage = storage
        self.storageOffset = storageOffset
        self.shape = shape
        self.strides = strides
        self.requiresGrad = requiresGrad
        self.offset = offset
    }
}
