import Torch

/// The file formats `TorchCheckpoint` reads.
public enum CheckpointFormat: String, Sendable, CustomStringConvertible {
    /// `torch.save` since torch 1.6: a zip archive with `data.pkl` and one record per storage.
    case zip
    /// `torch.save(..., _use_new_zipfile_serialization=False)` (MMDetection's published checkpoints).
    case legacy
    case safetensors

    public var description: String {
        switch self {
        case .zip: return "torch.save zip archive"
        case .legacy: return "torch.save legacy (non-zip) pickle"
        case .safetensors: return "safetensors"
        }
    }

    /// The format of a file from its first bytes, or nil.
    public static func detect(_ b: UnsafeRawBufferPointer) -> CheckpointFormat? {
        if b.count >= 4, b[0] == 0x50, b[1] == 0x4b, (b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) { return .zip }
        if b.count >= 2, b[0] == 0x80 { return .legacy }
        if b.count >= 10, b[8] == UInt8(ascii: "{"), b.le64(0) < 1 << 40 { return .safetensors }
        return nil
    }
}

/// A loaded checkpoint: its format and the object tree it holds.
///
/// ```swift
/// let ckpt = try Checkpoint.load("retinanet_ghm_r50_fpn_1x_coco.pth")
/// let sd = try ckpt.stateDict()                 // "state_dict", or the top level when it is one
/// print(ckpt.meta?["CLASSES"] ?? .none)
/// ```
public struct Checkpoint {
    public let format: CheckpointFormat
    public let root: CheckpointValue
    /// The file it came from (nil for bytes).
    public let file: String?
    /// The zip archive's root folder name (zip format only).
    public let archiveName: String?
    /// The `__metadata__` strings (safetensors only).
    public let safetensorsMetadata: [String: String]

    public init(format: CheckpointFormat, root: CheckpointValue, file: String? = nil, archiveName: String? = nil,
                safetensorsMetadata: [String: String] = [:]) {
        self.format = format
        self.root = root
        self.file = file
        self.archiveName = archiveName
        self.safetensorsMetadata = safetensorsMetadata
    }

    /// Reads a checkpoint file of any supported format (detected from its first bytes).
    public static func load(_ path: String, options: CheckpointReadOptions = .init()) throws(CheckpointError) -> Checkpoint {
        do {
            let src = try ByteSource(path: path)
            return try load(src, options: options)
        } catch {
            throw error.inFile(path)
        }
    }

    /// Reads a checkpoint from bytes in memory.
    public static func load<C: Collection>(bytes: C, options: CheckpointReadOptions = .init()) throws(CheckpointError) -> Checkpoint
        where C.Element == UInt8 {
        guard !bytes.isEmpty else { throw CheckpointError(.truncated, "no data", offset: 0) }
        return try load(ByteSource(copying: bytes), options: options)
    }

    static func load(_ src: ByteSource, options: CheckpointReadOptions) throws(CheckpointError) -> Checkpoint {
        let b = src.bytes
        guard let format = CheckpointFormat.detect(b) else {
            if b.count >= 262, Array(b[257..<262]) == Array("ustar".utf8) {
                throw CheckpointError(.unsupported, "a tar-format checkpoint (torch < 0.1.10) is not supported", offset: 0)
            }
            let head = b.prefix(8).map { hex2($0) }.joined(separator: " ")
            throw CheckpointError(.unrecognizedFormat, "not a checkpoint: the first bytes (\(head)) are neither a zip "
                                  + "archive (torch.save), a legacy torch.save pickle nor safetensors", offset: 0)
        }
        switch format {
        case .zip:
            let (v, name) = try ZipFormat.read(src, options: options)
            return Checkpoint(format: .zip, root: v, file: src.path, archiveName: name)
        case .legacy:
            return Checkpoint(format: .legacy, root: try LegacyFormat.read(src, options: options), file: src.path)
        case .safetensors:
            let (v, meta) = try Safetensors.read(src, options: options)
            return Checkpoint(format: .safetensors, root: v, file: src.path, safetensorsMetadata: meta)
        }
    }

    // MARK: parts

    /// `meta` of an MMDetection/mmcv checkpoint.
    public var meta: CheckpointDict? { root["meta"]?.dict }

    /// `optimizer` of a training checkpoint.
    public var optimizer: CheckpointValue? { root["optimizer"] }

    /// The state dict at `key` (default `state_dict`), or the top level when it is itself a state dict (all values
    /// tensors). Every value must be a tensor; keys keep the file's order.
    public func stateDict(at key: String? = "state_dict") throws(CheckpointError) -> StateDict {
        let container: CheckpointDict
        var prefix = ""
        if let key, let sub = root[key] {
            guard let d = sub.dict else {
                throw CheckpointError(.invalidArgument, "'\(key)' is a \(sub.typeName), not a dict of tensors", key: key, file: file)
            }
            container = d
            prefix = key
        } else if let d = root.dict, d.count > 0, d.entries.allSatisfy({ $0.value.tensor != nil }) {
            container = d
        } else {
            let top = root.dict.map { "top-level keys: " + $0.entries.prefix(10).map { $0.key.keyText }.joined(separator: ", ") }
                ?? "the top level is a \(root.typeName)"
            throw CheckpointError(.invalidArgument, "no state dict\(key.map { " at '\($0)'" } ?? "") (\(top))", file: file)
        }
        var keys: [String] = []
        var tensors: [String: Tensor] = [:]
        for (k, v) in container.entries {
            guard let s = k.string else {
                throw CheckpointError(.invalidArgument, "state dict key \(k.summary()) is not a string", key: prefix, file: file)
            }
            guard let t = v.tensor else {
                throw CheckpointError(.invalidArgument, "state dict value is a \(v.typeName), not a tensor", key: joinKey(prefix, s), file: file)
            }
            keys.append(s)
            tensors[s] = t
        }
        return StateDict(keys: keys, tensors: tensors)
    }
}

/// A state dict: tensors by key, with the file's key order.
public struct StateDict {
    public let keys: [String]
    public let tensors: [String: Tensor]

    public init(keys: [String], tensors: [String: Tensor]) {
        self.keys = keys
        self.tensors = tensors
    }

    public init(_ pairs: [(key: String, tensor: Tensor)]) {
        var keys: [String] = []
        var tensors: [String: Tensor] = [:]
        for (k, t) in pairs where tensors.updateValue(t, forKey: k) == nil { keys.append(k) }
        self.init(keys: keys, tensors: tensors)
    }

    public subscript(key: String) -> Tensor? { tensors[key] }
    public var count: Int { keys.count }
    /// (key, tensor) in order.
    public var ordered: [(key: String, tensor: Tensor)] { keys.map { ($0, tensors[$0]!) } }
    /// Total number of elements over all tensors.
    public var elementCount: Int { keys.reduce(0) { saturatingAdd($0, tensors[$1]!.numel) } }
    /// Shape and dtype per key (the input of `compareKeys`); a tensor of a dtype `DType` does not model is an error.
    public var signatures: [String: (shape: [Int], dtype: DType)] {
        get throws(TorchError) {
            var out: [String: (shape: [Int], dtype: DType)] = [:]
            for (key, t) in tensors { out[key] = (t.shape, try t.dtype) }
            return out
        }
    }

    /// As a value tree (an OrderedDict of tensors), e.g. for `CheckpointWriter`.
    public var value: CheckpointValue {
        .dict(CheckpointDict(keys.map { ($0, CheckpointValue.tensor(tensors[$0]!)) }, ordered: true))
    }
}
