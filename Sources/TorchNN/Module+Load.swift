import Torch

/// Every problem found while loading a state dict, reported at once, by key.
public struct StateDictError: Error, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []
    /// (key, shape in the model, shape in the state dict)
    public var shapeMismatches: [(key: String, model: [Int], loaded: [Int])] = []
    /// Where the state dict came from (a file name), for the message.
    public var source: String?

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    public var description: String {
        var lines = ["cannot load state dict\(source.map { " from \($0)" } ?? ""):"]
        if !missing.isEmpty {
            lines.append("  \(missing.count) missing key(s): \(missing.prefix(20).joined(separator: ", "))\(missing.count > 20 ? ", …" : "")")
        }
        if !unexpected.isEmpty {
            lines.append("  \(unexpected.count) unexpected key(s): \(unexpected.prefix(20).joined(separator: ", "))\(unexpected.count > 20 ? ", …" : "")")
        }
        for m in shapeMismatches.prefix(20) {
            lines.append("  shape mismatch for \(m.key): model \(m.model), checkpoint \(m.loaded)")
        }
        if shapeMismatches.count > 20 { lines.append("  … \(shapeMismatches.count - 20) more shape mismatches") }
        return lines.joined(separator: "\n")
    }
}

/// What a load copied and what a non-strict load skipped.
public struct LoadReport: Sendable {
    public var loaded: [String] = []
    public var missing: [String] = []
    public var unexpected: [String] = []
    /// Keys whose shape differs (model, file): not copied, the model keeps its own values (mmcv's non-strict
    /// `load_state_dict` does the same and warns "size mismatch for …").
    public var shapeMismatches: [(key: String, model: [Int], loaded: [Int])] = []

    public init() {}

    /// mmcv's warning text, one line per problem, empty when everything matched.
    public func problemLines(limit: Int = 50) -> [String] {
        var lines: [String] = []
        for m in shapeMismatches {
            lines.append("size mismatch for \(m.key): copying a param with shape \(m.loaded) from checkpoint, "
                         + "the shape in current model is \(m.model); kept the model's own (fresh) values")
        }
        func list(_ title: String, _ keys: [String]) {
            guard !keys.isEmpty else { return }
            let shown = keys.prefix(limit).joined(separator: ", ")
            lines.append("\(title) (\(keys.count)): \(shown)\(keys.count > limit ? ", … \(keys.count - limit) more" : "")")
        }
        list("unexpected key in source state_dict", unexpected)
        list("missing keys in source state_dict", missing)
        return lines
    }
}

extension Module {
    /// Compares keys and shapes of `state` with this module's state dict, without loading anything.
    public func checkStateDict(_ state: [String: Tensor], allowMissing: Set<String> = []) -> StateDictError {
        var err = StateDictError()
        var seen = Set<String>()
        for (key, tensor, _) in namedTensors() {
            seen.insert(key)
            guard let src = state[key] else {
                if !allowMissing.contains(key) { err.missing.append(key) }
                continue
            }
            if src.shape != tensor.shape { err.shapeMismatches.append((key, tensor.shape, src.shape)) }
        }
        err.unexpected = state.keys.filter { !seen.contains($0) }.sorted()
        return err
    }

    /// Copies `state` into this module's tensors under no-grad (the tensors keep their identity, so optimizer
    /// references stay valid). Strict by default: any missing (outside `allowMissing`), unexpected or
    /// shape-mismatched key fails the whole load, before anything is copied, with every problem listed.
    /// Non-strict loading (mmcv's `load_checkpoint(strict=False)`, i.e. `load_from`) copies every key whose name and
    /// shape match and reports the rest: missing and unexpected keys, and keys whose shape differs (those keep the
    /// model's values, e.g. a fresh classifier when the class count changed).
    @discardableResult
    public func load(_ state: [String: Tensor], strict: Bool = true, allowMissing: Set<String> = [],
                     source: String? = nil) throws -> LoadReport {
        var err = checkStateDict(state, allowMissing: allowMissing)
        err.source = source
        if strict && !err.isEmpty { throw err }
        var report = LoadReport()
        report.missing = err.missing
        report.unexpected = err.unexpected
        report.shapeMismatches = err.shapeMismatches
        try withNoGrad { () throws(TorchError) in
            for (key, tensor, _) in namedTensors() {
                guard let src = state[key], src.shape == tensor.shape else { continue }
                try tensor.copy_(src)
                report.loaded.append(key)
            }
        }
        return report
    }
}
