import Torch

/// One expected state-dict entry (e.g. a line of `retinanet_ghm_r50_fpn_state_dict_keys.tsv`).
public struct KeyExpectation: Equatable, Sendable {
    public var key: String
    public var shape: [Int]
    /// nil: any dtype.
    public var dtype: DType?

    public init(key: String, shape: [Int], dtype: DType? = nil) {
        self.key = key
        self.shape = shape
        self.dtype = dtype
    }

    /// Parses `key<TAB>shape<TAB>dtype` lines (shape `64x3x7x7` or `scalar`; dtype optional); `#` lines and blank
    /// lines are skipped. Errors name the line.
    public static func parseTSV(_ text: String, source: String = "TSV") throws(CheckpointError) -> [KeyExpectation] {
        var out: [KeyExpectation] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func bad(_ m: String) -> CheckpointError { CheckpointError(.invalidArgument, "\(source) line \(i + 1): \(m)") }
            guard f.count == 2 || f.count == 3, !f[0].isEmpty else { throw bad("expected key<TAB>shape[<TAB>dtype]") }
            guard let shape = parseShape(f[1]) else { throw bad("bad shape '\(f[1])' (e.g. 64x3x7x7 or scalar)") }
            var dtype: DType?
            if f.count == 3, !f[2].isEmpty {
                guard let d = DType(name: f[2]) else { throw bad("unknown dtype '\(f[2])'") }
                dtype = d
            }
            out.append(KeyExpectation(key: f[0], shape: shape, dtype: dtype))
        }
        return out
    }

    /// "64x3x7x7" → [64, 3, 7, 7]; "scalar" → [].
    public static func parseShape(_ s: String) -> [Int]? {
        if s == "scalar" { return [] }
        let parts = s.split(separator: "x", omittingEmptySubsequences: false)
        var dims: [Int] = []
        for p in parts {
            guard let v = Int(p), v >= 0 else { return nil }
            dims.append(v)
        }
        return dims
    }
}

/// How a state dict's keys, shapes and dtypes compare with an expected list.
public struct KeyComparison: CustomStringConvertible, Sendable {
    /// Expected keys absent from the state dict, in the expected order.
    public var missing: [String] = []
    /// State-dict keys not expected, sorted.
    public var unexpected: [String] = []
    public var shapeMismatches: [(key: String, expected: [Int], actual: [Int])] = []
    public var dtypeMismatches: [(key: String, expected: DType, actual: DType)] = []
    /// Keys present on both sides with equal shape (and dtype when given).
    public var matched = 0

    public var isMatch: Bool {
        missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty && dtypeMismatches.isEmpty
    }

    public var description: String {
        var lines = [isMatch ? "keys match: \(matched) keys with equal shapes and dtypes"
                     : "keys differ: \(matched) match, \(missing.count) missing, \(unexpected.count) unexpected, "
                       + "\(shapeMismatches.count) shape and \(dtypeMismatches.count) dtype mismatches"]
        for k in missing { lines.append("  missing:    \(k)") }
        for k in unexpected { lines.append("  unexpected: \(k)") }
        for m in shapeMismatches { lines.append("  shape:      \(m.key): expected \(shapeText(m.expected)), found \(shapeText(m.actual))") }
        for m in dtypeMismatches { lines.append("  dtype:      \(m.key): expected \(m.expected), found \(m.actual)") }
        return lines.joined(separator: "\n")
    }
}

/// Compares a state dict's (shape, dtype) per key with the expected keys and shapes (dtypes when given).
public func compareKeys(_ stateDict: [String: (shape: [Int], dtype: DType)], expected: [KeyExpectation]) -> KeyComparison {
    var c = KeyComparison()
    var expectedKeys = Set<String>()
    for e in expected {
        expectedKeys.insert(e.key)
        guard let actual = stateDict[e.key] else {
            c.missing.append(e.key)
            continue
        }
        var ok = true
        if actual.shape != e.shape {
            c.shapeMismatches.append((e.key, e.shape, actual.shape))
            ok = false
        }
        if let d = e.dtype, d != actual.dtype {
            c.dtypeMismatches.append((e.key, d, actual.dtype))
            ok = false
        }
        if ok { c.matched += 1 }
    }
    c.unexpected = stateDict.keys.filter { !expectedKeys.contains($0) }.sorted()
    return c
}

/// Compares a state dict with expected keys and shapes only.
public func compareKeys(_ stateDict: [String: (shape: [Int], dtype: DType)],
                        expected: [(key: String, shape: [Int])]) -> KeyComparison {
    compareKeys(stateDict, expected: expected.map { KeyExpectation(key: $0.key, shape: $0.shape) })
}
