import Torch

/// Why a checkpoint could not be read or written: what went wrong and where (file, zip record, byte offset, key).
///
/// Every problem with the input, however malformed, is reported as a `CheckpointError`; reading never traps.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// The file could not be opened, read, written or renamed.
        case io
        /// The first bytes match none of the supported formats (zip / legacy torch.save, safetensors).
        case unrecognizedFormat
        /// The data ends before a structure it announces.
        case truncated
        /// Inconsistent content: bad signatures, sizes that disagree, views outside their storage, checksums.
        case corrupt
        /// Valid but outside what this reader supports (compressed zip entries, exotic dtypes, opcodes).
        case unsupported
        /// A pickle names a global outside the allow-list (e.g. `os.system`); nothing was run.
        case forbiddenGlobal
        /// A size, depth or count exceeds a safety limit.
        case limitExceeded
        /// The file says its data is big-endian.
        case bigEndian
        /// The caller asked for something that is not there or passed an unusable value.
        case invalidArgument
    }

    public var kind: Kind
    public var message: String
    /// The file, when reading or writing one.
    public var file: String?
    /// The zip record (e.g. `archive/data.pkl`) the problem is in.
    public var record: String?
    /// Absolute byte offset in the file (or the in-memory buffer) where the problem was found.
    public var offset: Int?
    /// The key path in the checkpoint (e.g. `state_dict.backbone.conv1.weight`).
    public var key: String?

    public init(_ kind: Kind, _ message: String, offset: Int? = nil, key: String? = nil, record: String? = nil,
                file: String? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
        self.key = key
        self.record = record
        self.file = file
    }

    public var description: String {
        var places: [String] = []
        if let key { places.append("key '\(key)'") }
        if let record { places.append("record '\(record)'") }
        if let offset { places.append("byte \(offset)") }
        let prefix = file.map { "\($0): " } ?? ""
        return prefix + (places.isEmpty ? "" : places.joined(separator: ", ") + ": ") + message
    }

    /// The same error with the file name filled in (when not already set).
    func inFile(_ path: String?) -> CheckpointError {
        var e = self
        if e.file == nil { e.file = path }
        return e
    }

    func atKey(_ key: String) -> CheckpointError {
        var e = self
        if e.key == nil && !key.isEmpty { e.key = key }
        return e
    }

    func inRecord(_ name: String) -> CheckpointError {
        var e = self
        if e.record == nil { e.record = name }
        return e
    }

    static func torch(_ error: TorchError, _ what: String) -> CheckpointError {
        CheckpointError(.corrupt, "\(what): \(error.message)")
    }
}

// MARK: checked arithmetic for sizes read from files

/// Sizes and indices read from a file pass through these, so that overflow is an error instead of a trap.
enum Checked {
    static func mul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String, offset: Int? = nil) throws(CheckpointError) -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { throw CheckpointError(.limitExceeded, "\(what()) overflows (\(a) × \(b))", offset: offset) }
        return r
    }

    static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String, offset: Int? = nil) throws(CheckpointError) -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        if o { throw CheckpointError(.limitExceeded, "\(what()) overflows (\(a) + \(b))", offset: offset) }
        return r
    }

    /// An unsigned 64-bit value from a file as an `Int`, or an error.
    static func int(_ v: UInt64, _ what: @autoclosure () -> String, offset: Int? = nil) throws(CheckpointError) -> Int {
        guard let i = Int(exactly: v) else {
            throw CheckpointError(.limitExceeded, "\(what()) \(v) is too large", offset: offset)
        }
        return i
    }

    /// The product of non-negative sizes, or an error on overflow or beyond `limit`.
    static func product(_ sizes: [Int], limit: Int, _ what: @autoclosure () -> String) throws(CheckpointError) -> Int {
        var n = 1
        for s in sizes {
            guard s >= 0 else { throw CheckpointError(.corrupt, "\(what()) has a negative size in \(sizes)") }
            let (r, o) = n.multipliedReportingOverflow(by: s)
            if o { throw CheckpointError(.limitExceeded, "\(what()) \(sizes) has too many elements") }
            n = r
        }
        if n > limit { throw CheckpointError(.limitExceeded, "\(what()) \(sizes) has \(n) elements, more than the limit \(limit)") }
        return n
    }
}

/// `a + b`, or `Int.max` when that overflows (for totals in reports).
func saturatingAdd(_ a: Int, _ b: Int) -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? Int.max : r
}
