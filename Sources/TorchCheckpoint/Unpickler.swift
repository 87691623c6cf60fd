import Torch

/// Options and safety limits for reading checkpoints.
public struct CheckpointReadOptions: Sendable {
    /// Deepest nesting of containers accepted (Python's own limit is about 1000; real checkpoints stay under 20).
    public var maxDepth = 100
    /// Most values the loaded tree may have after expanding shared references (guards against "billion laughs").
    public var maxNodes = 1_000_000
    /// Most dimensions of a tensor.
    public var maxRank = 64
    /// Most elements a tensor view may address (a view allocates nothing, but later copies of it would).
    public var maxViewElements = 1 << 40
    /// Also verify the CRC-32 of every storage record of a zip checkpoint (`data.pkl` is always verified).
    /// Off by default, like `torch.load`, which checks none; it costs about 0.5 s per GB.
    public var verifyChecksums = false

    public init() {}
}

/// A pickle virtual machine for the opcodes `torch.save` emits (protocols 2–5). It builds objects only from
/// literals and the allow-listed globals (`PyGlobal`); no other global is ever resolved, so nothing is executed.
final class Unpickler {
    typealias PersistentLoad = (PyObj, Int) throws(CheckpointError) -> PyObj

    private let bytes: UnsafeRawBufferPointer
    private var pos: Int
    private let end: Int
    private let persistentLoad: PersistentLoad?
    private let options: CheckpointReadOptions
    private var stack: [PyObj] = []
    private var marks: [Int] = []
    private var memo: [Int: PyObj] = [:]
    private var boxes: [PyBox] = []
    private var opStart = 0
    /// Work spent hashing dict keys, bounded by `options.maxNodes` (a key of 1 MB set a million times through the
    /// memo would otherwise take hours).
    private var hashWork = 0

    /// Parses the pickle that starts at `start` (absolute offset in `bytes`) and ends at its STOP, before `end`.
    init(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int, options: CheckpointReadOptions,
         persistentLoad: PersistentLoad? = nil) {
        self.bytes = bytes
        self.pos = start
        self.end = Swift.min(end, bytes.count)
        self.options = options
        self.persistentLoad = persistentLoad
    }

    /// Breaks every container link so deep or cyclic graphs are freed without recursion.
    deinit {
        for b in boxes { b.releaseChildren() }
    }

    /// The offset just after the STOP opcode, once `load()` returned.
    var position: Int { pos }

    func fail(_ kind: CheckpointError.Kind, _ message: String) -> CheckpointError {
        CheckpointError(kind, message, offset: opStart)
    }

    // MARK: reading operands

    private func need(_ n: Int, _ what: String) throws(CheckpointError) {
        guard n >= 0, n <= end - pos else {
            throw CheckpointError(.truncated, "pickle ends inside \(what) (needs \(n) bytes, \(Swift.max(end - pos, 0)) left)",
                                  offset: opStart)
        }
    }

    private func u8() throws(CheckpointError) -> Int {
        try need(1, "an operand")
        defer { pos += 1 }
        return Int(bytes[pos])
    }

    private func u16() throws(CheckpointError) -> Int {
        try need(2, "an operand")
        defer { pos += 2 }
        return Int(bytes.le16(pos))
    }

    private func u32() throws(CheckpointError) -> Int {
        try need(4, "an operand")
        defer { pos += 4 }
        return Int(bytes.le32(pos))
    }

    private func i32() throws(CheckpointError) -> Int {
        try need(4, "an operand")
        defer { pos += 4 }
        return Int(Int32(bitPattern: bytes.le32(pos)))
    }

    private func u64() throws(CheckpointError) -> Int {
        try need(8, "an operand")
        defer { pos += 8 }
        return try Checked.int(bytes.le64(pos), "a length", offset: opStart)
    }

    private func raw(_ n: Int, _ what: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        try need(n, what)
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    private func text(_ n: Int) throws(CheckpointError) -> String {
        let b = try raw(n, "a string")
        guard let s = String(validating: b, as: UTF8.self) else { throw fail(.corrupt, "string is not valid UTF-8") }
        return s
    }

    private func line() throws(CheckpointError) -> String {
        let limit = Swift.min(end, pos + 512)
        var i = pos
        while i < limit && bytes[i] != 0x0a { i += 1 }
        guard i < limit else { throw fail(.truncated, "GLOBAL name is not terminated by a newline within 512 bytes") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<i]), as: UTF8.self)
        pos = i + 1
        return s
    }

    // MARK: stack

    private func push(_ o: PyObj) { stack.append(o) }

    private func pop() throws(CheckpointError) -> PyObj {
        guard stack.count > (marks.last ?? 0) else { throw fail(.corrupt, "stack underflow") }
        return stack.removeLast()
    }

    private func top() throws(CheckpointError) -> PyObj {
        guard stack.count > (marks.last ?? 0), let t = stack.last else { throw fail(.corrupt, "stack underflow") }
        return t
    }

    private func popMark() throws(CheckpointError) -> [PyObj] {
        guard let m = marks.popLast() else { throw fail(.corrupt, "no MARK on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private func newBox(_ kind: PyBox.Kind, _ items: [PyObj] = []) throws(CheckpointError) -> PyBox {
        let b = PyBox(kind)
        boxes.append(b)
        if !items.isEmpty {
            b.items = items
            try deepen(b, by: items)
        }
        return b
    }

    private func deepen(_ b: PyBox, by items: [PyObj]) throws(CheckpointError) {
        var d = b.depth
        for i in items { d = Swift.max(d, i.depth + 1) }
        guard d <= options.maxDepth else {
            throw fail(.limitExceeded, "containers nested deeper than \(options.maxDepth) levels")
        }
        b.depth = d
    }

    private func setItems(_ target: PyObj, _ kv: [PyObj]) throws(CheckpointError) {
        guard case .box(let b) = target, b.isDict else { throw fail(.corrupt, "SETITEM(S) on a \(target.typeName)") }
        guard kv.count % 2 == 0 else { throw fail(.corrupt, "SETITEMS with an odd number of items") }
        try deepen(b, by: kv)
        var i = 0
        while i < kv.count {
            guard let h = kv[i].dictKey() else {
                throw fail(.corrupt, "unhashable (or over-large) dict key of type \(kv[i].typeName)")
            }
            hashWork += kv[i].hashCost
            guard hashWork <= options.maxNodes else {
                throw fail(.limitExceeded, "dict keys need more than \(options.maxNodes) units of hashing work")
            }
            if let j = b.index[h] {
                b.items[j] = kv[i + 1]
            } else {
                b.index[h] = b.items.count
                b.keys.append(kv[i])
                b.items.append(kv[i + 1])
            }
            i += 2
        }
    }

    private func appendItems(_ target: PyObj, _ items: [PyObj]) throws(CheckpointError) {
        guard case .box(let b) = target, b.kind == .list || b.kind == .set else {
            throw fail(.corrupt, "APPEND(S)/ADDITEMS on a \(target.typeName)")
        }
        try deepen(b, by: items)
        b.items.append(contentsOf: items)
    }

    // MARK: the machine

    /// Runs to STOP and returns the pickled object.
    func load() throws(CheckpointError) -> PyObj {
        while true {
            opStart = pos
            guard pos < end else { throw CheckpointError(.truncated, "pickle ends without a STOP opcode", offset: pos) }
            let op = bytes[pos]
            pos += 1
            if op == 0x2e {  // STOP
                let result = try pop()
                guard marks.isEmpty else { throw fail(.corrupt, "STOP with an open MARK") }
                return result
            }
            try step(op)
        }
    }

    private func step(_ op: UInt8) throws(CheckpointError) {
        if try literal(op) { return }
        if try container(op) { return }
        try object(op)
    }

    /// Framing, stack and literal opcodes; false when `op` is not one of them.
    private func literal(_ op: UInt8) throws(CheckpointError) -> Bool {
        switch op {
        case 0x80:  // PROTO
            let p = try u8()
            guard p <= 5 else { throw fail(.unsupported, "pickle protocol \(p) (supported: up to 5)") }
        case 0x95:  // FRAME
            let n = try u64()
            guard n <= end - pos else { throw fail(.truncated, "FRAME of \(n) bytes runs past the end of the data") }
        case 0x28: marks.append(stack.count)  // MARK
        case 0x30: _ = try pop()  // POP
        case 0x31: _ = try popMark()  // POP_MARK
        case 0x32: push(try top())  // DUP
        case 0x4e: push(.none)
        case 0x88: push(.bool(true))
        case 0x89: push(.bool(false))
        case 0x4b: push(.int(try u8()))  // BININT1
        case 0x4d: push(.int(try u16()))  // BININT2
        case 0x4a: push(.int(try i32()))  // BININT
        case 0x8a: push(try long(try u8()))  // LONG1
        case 0x8b:  // LONG4
            let n = try i32()
            guard n >= 0 else { throw fail(.corrupt, "LONG4 with negative length \(n)") }
            push(try long(n))
        case 0x47:  // BINFLOAT (big-endian)
            let b = try raw(8, "a float")
            var v: UInt64 = 0
            for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
            push(.float(Double(bitPattern: v)))
        case 0x58: push(.str(try text(try u32())))  // BINUNICODE
        case 0x8c: push(.str(try text(try u8())))  // SHORT_BINUNICODE
        case 0x8d: push(.str(try text(try u64())))  // BINUNICODE8
        case 0x54:  // BINSTRING (Python 2 str)
            let n = try i32()
            guard n >= 0 else { throw fail(.corrupt, "BINSTRING with negative length \(n)") }
            push(.str(try text(n)))
        case 0x55: push(.str(try text(try u8())))  // SHORT_BINSTRING
        case 0x42: push(.bytes(Array(try raw(try u32(), "bytes"))))  // BINBYTES
        case 0x43: push(.bytes(Array(try raw(try u8(), "bytes"))))  // SHORT_BINBYTES
        case 0x8e, 0x96: push(.bytes(Array(try raw(try u64(), "bytes"))))  // BINBYTES8, BYTEARRAY8
        default: return false
        }
        return true
    }

    /// Containers and the memo; false when `op` is not one of them.
    private func container(_ op: UInt8) throws(CheckpointError) -> Bool {
        switch op {
        case 0x7d: push(.box(try newBox(.dict)))  // EMPTY_DICT
        case 0x5d: push(.box(try newBox(.list)))  // EMPTY_LIST
        case 0x29: push(.box(try newBox(.tuple)))  // EMPTY_TUPLE
        case 0x8f: push(.box(try newBox(.set)))  // EMPTY_SET
        case 0x74: push(.box(try newBox(.tuple, try popMark())))  // TUPLE
        case 0x85, 0x86, 0x87:  // TUPLE1..3
            let n = Int(op - 0x84)
            guard stack.count - (marks.last ?? 0) >= n else { throw fail(.corrupt, "stack underflow") }
            let items = Array(stack.suffix(n))
            stack.removeLast(n)
            push(.box(try newBox(.tuple, items)))
        case 0x6c: push(.box(try newBox(.list, try popMark())))  // LIST
        case 0x91: push(.box(try newBox(.set, try popMark())))  // FROZENSET
        case 0x64:  // DICT
            let kv = try popMark()
            let d = try newBox(.dict)
            try setItems(.box(d), kv)
            push(.box(d))
        case 0x73:  // SETITEM
            let v = try pop()
            let k = try pop()
            try setItems(try top(), [k, v])
        case 0x75:  // SETITEMS
            let kv = try popMark()
            try setItems(try top(), kv)
        case 0x61:  // APPEND
            let v = try pop()
            try appendItems(try top(), [v])
        case 0x65, 0x90:  // APPENDS, ADDITEMS
            let items = try popMark()
            try appendItems(try top(), items)
        case 0x71: memo[try u8()] = try top()  // BINPUT
        case 0x72: memo[try u32()] = try top()  // LONG_BINPUT
        case 0x94: memo[memo.count] = try top()  // MEMOIZE
        case 0x68, 0x6a:  // BINGET, LONG_BINGET
            let i = op == 0x68 ? try u8() : try u32()
            guard let v = memo[i] else { throw fail(.corrupt, "memo entry \(i) read before it was stored") }
            push(v)
        default: return false
        }
        return true
    }

    /// Globals, calls, object state and persistent ids; anything else is an unsupported opcode.
    private func object(_ op: UInt8) throws(CheckpointError) {
        switch op {
        case 0x63:  // GLOBAL
            let module = try line()
            let name = try line()
            push(.global(try global(module, name)))
        case 0x93:  // STACK_GLOBAL
            let name = try pop()
            let module = try pop()
            guard let m = module.stringValue, let n = name.stringValue else {
                throw fail(.corrupt, "STACK_GLOBAL needs two strings, got \(module.typeName) and \(name.typeName)")
            }
            push(.global(try global(m, n)))
        case 0x52, 0x81:  // REDUCE, NEWOBJ
            let args = try pop()
            let callable = try pop()
            push(try reduce(callable, args))
        case 0x62:  // BUILD
            let state = try pop()
            try build(try top(), state)
        case 0x51:  // BINPERSID
            let pid = try pop()
            guard let persistentLoad else { throw fail(.corrupt, "persistent id in a pickle that cannot reference storages") }
            push(try persistentLoad(pid, opStart))
        default:
            throw fail(.unsupported, "unsupported pickle opcode 0x\(hex2(op))\(opcodeName(op).map { " (\($0))" } ?? "")")
        }
    }

    private func long(_ n: Int) throws(CheckpointError) -> PyObj {
        guard n <= 1 << 20 else { throw fail(.limitExceeded, "integer of \(n) bytes") }
        let b = try raw(n, "an integer")
        if n == 0 { return .int(0) }
        if n <= 8 {
            var v: UInt64 = 0
            for i in stride(from: n - 1, through: 0, by: -1) { v = v << 8 | UInt64(b[i]) }
            if n < 8 && b[n - 1] & 0x80 != 0 { v |= ~0 << UInt64(8 * n) }  // sign-extend
            return .int(Int(Int64(bitPattern: v)))
        }
        return .big(Array(b))
    }

    private func global(_ module: String, _ name: String) throws(CheckpointError) -> PyGlobal {
        if let g = PyGlobal.resolve(module: module, name: name) { return g }
        if module == "torch", name.hasSuffix("Storage") {
            throw fail(.unsupported, "storage type torch.\(name) is not supported (supported: \(PyGlobal.storageTypes.keys.sorted().joined(separator: ", ")))")
        }
        throw fail(.forbiddenGlobal, "global '\(module).\(name)' is not allowed: a checkpoint may only reference tensor "
                   + "rebuild functions, torch storage types, collections.OrderedDict, torch.device and the builtins "
                   + "torch.save uses; nothing was executed")
    }

    // MARK: REDUCE and BUILD for the allowed globals

    private func reduce(_ callable: PyObj, _ argsObj: PyObj) throws(CheckpointError) -> PyObj {
        guard case .global(let g) = callable else { throw fail(.corrupt, "REDUCE on a \(callable.typeName), not a global") }
        guard let args = argsObj.tuple else { throw fail(.corrupt, "REDUCE arguments for \(g.name) are a \(argsObj.typeName), not a tuple") }
        switch g {
        case .orderedDict:
            let d = try newBox(.orderedDict)
            if let first = args.first {
                guard args.count == 1, case .box(let src) = first, src.kind == .list || src.kind == .tuple else {
                    throw fail(.corrupt, "OrderedDict() with unexpected arguments")
                }
                var kv: [PyObj] = []
                for pair in src.items {
                    guard let p = pair.tuple, p.count == 2 else { throw fail(.corrupt, "OrderedDict() item is not a pair") }
                    kv.append(contentsOf: p)
                }
                try setItems(.box(d), kv)
            }
            return .box(d)
        case .rebuildTensor, .rebuildTensorV2: return .tensor(try rebuildTensor(args, name: g.name))
        case .rebuildParameter, .rebuildParameterWithState:
            guard args.count >= 1, case .tensor(let t) = args[0] else { throw fail(.corrupt, "\(g.name) without a tensor") }
            return .tensor(t)
        case .storageType: throw fail(.unsupported, "constructing a storage with \(g.name)() is not supported")
        case .device:
            guard let s = args.first?.stringValue, args.count <= 2 else { throw fail(.corrupt, "torch.device() without a device string") }
            if args.count == 2 {
                guard let i = args[1].intValue, i >= 0 else { throw fail(.corrupt, "torch.device() with a bad index") }
                return .device("\(s):\(i)")
            }
            return .device(s)
        case .size:
            guard args.count == 1, let items = args[0].tuple else { throw fail(.corrupt, "torch.Size() without a tuple") }
            return .box(try newBox(.tuple, items))
        case .codecsEncode:
            guard args.count == 2, let s = args[0].stringValue, let enc = args[1].stringValue else {
                throw fail(.corrupt, "_codecs.encode() needs a string and an encoding")
            }
            return .bytes(try encode(s, enc))
        case .set, .frozenset:
            guard args.count <= 1 else { throw fail(.corrupt, "\(g.name)() with \(args.count) arguments") }
            guard let first = args.first else { return .box(try newBox(.set)) }
            guard case .box(let src) = first, !src.isDict else { throw fail(.corrupt, "\(g.name)() of a \(first.typeName)") }
            return .box(try newBox(.set, src.items))
        case .bytearray:
            guard let first = args.first else { return .bytes([]) }
            guard args.count == 1, case .bytes(let b) = first else { throw fail(.corrupt, "bytearray() of a \(first.typeName)") }
            return .bytes(b)
        }
    }

    private func encode(_ s: String, _ encoding: String) throws(CheckpointError) -> [UInt8] {
        switch encoding.lowercased() {
        case "latin1", "latin-1", "iso-8859-1":
            var out: [UInt8] = []
            out.reserveCapacity(s.unicodeScalars.count)
            for u in s.unicodeScalars {
                guard u.value < 256 else { throw fail(.corrupt, "_codecs.encode: character U+\(String(u.value, radix: 16)) is not latin-1") }
                out.append(UInt8(u.value))
            }
            return out
        case "utf-8", "utf8": return Array(s.utf8)
        default: throw fail(.unsupported, "_codecs.encode with encoding '\(encoding)'")
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    private func rebuildTensor(_ args: [PyObj], name: String) throws(CheckpointError) -> TensorSpec {
        guard args.count >= 4, args.count <= 7 else { throw fail(.corrupt, "\(name) with \(args.count) arguments") }
        guard case .storage(let storage) = args[0] else { throw fail(.corrupt, "\(name): first argument is a \(args[0].typeName), not a storage") }
        guard let offset = args[1].intValue, offset >= 0 else { throw fail(.corrupt, "\(name): bad storage offset") }
        let shape = try intTuple(args[2], "size")
        let strides = try intTuple(args[3], "stride")
        guard shape.count == strides.count else {
            throw fail(.corrupt, "\(name): size \(shape) and stride \(strides) differ in length")
        }
        var requiresGrad = false
        if args.count > 4 {
            guard case .bool(let b) = args[4] else { throw fail(.corrupt, "\(name): requires_grad is a \(args[4].typeName)") }
            requiresGrad = b
        }
        return TensorSpec(storage: storage, storageOffset: offset, shape: shape, strides: strides,
                          requiresGrad: requiresGrad, offset: opStart)
    }

    private func intTuple(_ o: PyObj, _ what: String) throws(CheckpointError) -> [Int] {
        guard let items = o.tuple else { throw fail(.corrupt, "tensor \(what) is a \(o.typeName), not a tuple") }
        guard items.count <= options.maxRank else {
            throw fail(.limitExceeded, "tensor with \(items.count) dimensions (limit \(options.maxRank))")
        }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for i in items {
            guard case .int(let v) = i, v >= 0 else { throw fail(.corrupt, "tensor \(what) has a negative or non-integer entry") }
            out.append(v)
        }
        return out
    }

    /// BUILD: only an OrderedDict's instance dict (`_metadata` of a state dict) is accepted, and ignored.
    private func build(_ target: PyObj, _ state: PyObj) throws(CheckpointError) {
        guard case .box(let b) = target, b.kind == .orderedDict else {
            throw fail(.unsupported, "BUILD (setting object state) on a \(target.typeName) is not supported")
        }
        switch state {
        case .none: return
        case .box(let s) where s.isDict || s.kind == .tuple: return
        default: throw fail(.corrupt, "BUILD state of an OrderedDict is a \(state.typeName)")
        }
    }
}

private func opcodeName(_ op: UInt8) -> String? {
    let names: [UInt8: String] = [
        0x69: "INST", 0x6f: "OBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x50: "PERSID",
        0x49: "INT", 0x4c: "LONG", 0x46: "FLOAT", 0x53: "STRING", 0x56: "UNICODE", 0x70: "PUT", 0x67: "GET",
        0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
    return names[op]
}
