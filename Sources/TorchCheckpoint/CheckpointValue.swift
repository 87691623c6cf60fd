import Torch

/// A value read from (or to be written to) a checkpoint: the Python objects `torch.save` stores, with tensors
/// as libtorch tensors. Tensors that shared a storage in the file share it here too.
public indirect enum CheckpointValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    /// A Python int outside the 64-bit range: little-endian two's complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([CheckpointValue])
    case tuple([CheckpointValue])
    case set([CheckpointValue])
    case dict(CheckpointDict)
    case tensor(Tensor)
    /// A `torch.device`, e.g. "cpu" or "cuda:0".
    case device(String)

    // MARK: accessors

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var tensor: Tensor? { if case .tensor(let t) = self { return t }; return nil }
    public var dict: CheckpointDict? { if case .dict(let d) = self { return d }; return nil }
    public var isNone: Bool { if case .none = self { return true }; return false }

    /// The elements of a list, tuple or set.
    public var items: [CheckpointValue]? {
        switch self {
        case .list(let a), .tuple(let a), .set(let a): return a
        default: return nil
        }
    }

    /// `value["key"]` for a dict with string keys (nil when not a dict or absent).
    public subscript(key: String) -> CheckpointValue? { dict?[key] }

    /// The Python type name, for messages.
    public var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .set: return "set"
        case .dict(let d): return d.isOrdered ? "OrderedDict" : "dict"
        case .tensor: return "Tensor"
        case .device: return "torch.device"
        }
    }

    /// A short one-line summary (long strings and containers are abbreviated).
    public var description: String { summary(maxItems: 6) }

    public func summary(maxItems: Int = 6, maxString: Int = 60) -> String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let b): return "int(0x" + b.reversed().map { hex2($0) }.joined() + ")"
        case .float(let d): return String(d)
        case .string(let s):
            if s.count <= maxString && !s.contains("\n") { return "'\(s)'" }
            let first = s.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return "str of \(s.count) chars ('\(first.prefix(maxString))…')"
        case .bytes(let b): return "bytes of \(b.count)"
        case .list(let a), .tuple(let a), .set(let a):
            let (open, close) = typeName == "list" ? ("[", "]") : typeName == "set" ? ("{", "}") : ("(", ")")
            let shown = a.prefix(maxItems).map { $0.summary(maxItems: 2, maxString: 24) }
            let more = a.count > maxItems ? ", … (\(a.count) items)" : ""
            return open + shown.joined(separator: ", ") + more + close
        case .dict(let d):
            let shown = d.entries.prefix(maxItems).map { "\($0.key.summary(maxItems: 2, maxString: 24)): \($0.value.summary(maxItems: 2, maxString: 24))" }
            let more = d.count > maxItems ? ", … (\(d.count) keys)" : ""
            return "{" + shown.joined(separator: ", ") + more + "}"
        case .tensor(let t): return "Tensor(\(dtypeLabel(t)), \(shapeText(t.shape)))"
        case .device(let s): return "device('\(s)')"
        }
    }

    /// Every tensor in the tree with its key path (`a.b.0.c`), in order.
    public func tensors(prefix: String = "") -> [(key: String, tensor: Tensor)] {
        var out: [(key: String, tensor: Tensor)] = []
        collectTensors(prefix, &out)
        return out
    }

    private func collectTensors(_ path: String, _ out: inout [(key: String, tensor: Tensor)]) {
        switch self {
        case .tensor(let t): out.append((path, t))
        case .list(let a), .tuple(let a), .set(let a):
            for (i, v) in a.enumerated() { v.collectTensors(joinKey(path, String(i)), &out) }
        case .dict(let d):
            for (k, v) in d.entries { v.collectTensors(joinKey(path, k.keyText), &out) }
        default: break
        }
    }

    /// A dict key as text for key paths: strings as they are, other keys as their summary.
    var keyText: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        default: return summary(maxItems: 3, maxString: 40)
        }
    }
}

func joinKey(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

func hex2(_ b: UInt8) -> String {
    let d = Array("0123456789abcdef")
    return String([d[Int(b >> 4)], d[Int(b & 15)]])
}

/// A tensor's dtype for human-readable summaries: its name, or the error when `DType` does not model it.
func dtypeLabel(_ t: Tensor) -> String {
    do { return "\(try t.dtype)" } catch { return "<\(error.message)>" }
}

/// "64x3x7x7", or "scalar" for a 0-dimensional shape (the format of the key TSV files).
public func shapeText(_ shape: [Int]) -> String {
    shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "x")
}

/// A Python dict (or `collections.OrderedDict`): entries in insertion order, keys of any hashable type.
public struct CheckpointDict {
    public private(set) var entries: [(key: CheckpointValue, value: CheckpointValue)] = []
    /// True for an `OrderedDict` (state dicts are).
    public var isOrdered: Bool
    private var index: [DictKey: Int] = [:]

    public init(ordered: Bool = false) {
        self.isOrdered = ordered
    }

    /// A dict with string keys, in the given order.
    public init(_ pairs: [(String, CheckpointValue)], ordered: Bool = false) {
        self.isOrdered = ordered
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { entries.count }
    public var keys: [CheckpointValue] { entries.map(\.key) }
    /// The keys that are strings, in order.
    public var stringKeys: [String] { entries.compactMap(\.key.string) }

    /// Sets `value` for `key`: replaces an existing entry in place (Python semantics) or appends.
    /// Keys that Python could not hash (lists, dicts, sets) are refused.
    public mutating func set(_ value: CheckpointValue, for key: CheckpointValue) throws(CheckpointError) {
        guard let h = DictKey(key) else {
            throw CheckpointError(.corrupt, "a \(key.typeName) cannot be a dict key (unhashable)")
        }
        if let i = index[h] {
            entries[i].value = value
        } else {
            index[h] = entries.count
            entries.append((key, value))
        }
    }

    public subscript(key: String) -> CheckpointValue? {
        get { index[.str(key)].map { entries[$0].value } }
        set {
            if let newValue { try? set(newValue, for: .string(key)) } else { remove(.str(key)) }
        }
    }

    public subscript(key: Int) -> CheckpointValue? {
        get { index[.int(key)].map { entries[$0].value } }
        set {
            if let newValue { try? set(newValue, for: .int(key)) } else { remove(.int(key)) }
        }
    }

    public func value(for key: CheckpointValue) -> CheckpointValue? {
        DictKey(key).flatMap { index[$0] }.map { entries[$0].value }
    }

    private mutating func remove(_ k: DictKey) {
        guard let i = index[k] else { return }
        entries.remove(at: i)
        index = [:]
        for (j, e) in entries.enumerated() { if let h = DictKey(e.key) { index[h] = j } }
    }
}

/// A dict key with Python's equality: `True == 1 == 1.0`, tuples by value, tensors by identity.
enum DictKey: Hashable {
    case none
    case int(Int)
    case big([UInt8])
    case float(UInt64)
    case str(String)
    case bytes([UInt8])
    case tuple([DictKey])
    case object(ObjectIdentifier)

    init?(_ v: CheckpointValue, depth: Int = 0) {
        guard depth < 64 else { return nil }
        switch v {
        case .none: self = .none
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .bigInt(let b): self = .big(b)
        case .float(let d):
            if d.isFinite, d.rounded() == d, let i = Int(exactly: d) { self = .int(i) } else { self = .float((d == 0 ? 0 : d).bitPattern) }
        case .string(let s): self = .str(s)
        case .bytes(let b): self = .bytes(b)
        case .device(let s): self = .str("device:" + s)
        case .tuple(let items):
            var keys: [DictKey] = []
            for item in items {
                guard let k = DictKey(item, depth: depth + 1) else { return nil }
                keys.append(k)
            }
            self = .tuple(keys)
        case .tensor(let t): self = .object(ObjectIdentifier(t))
        case .list, .set, .dict: return nil
        }
    }
}
