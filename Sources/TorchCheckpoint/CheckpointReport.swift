import Torch

/// Human-readable summaries of a checkpoint (what `ghm inspect` prints).
public enum CheckpointReport {
    /// Format, top-level keys, meta, tensor and element counts, dtypes, optimizer.
    public static func summary(_ c: Checkpoint, fileSize: Int? = nil, stateDictKey: String? = "state_dict") -> String {
        var lines: [String] = []
        func row(_ label: String, _ text: String) { lines.append(label.padding(12) + text) }
        if let f = c.file { row("file:", f + (fileSize.map { " (\(bytesText($0)))" } ?? "")) }
        row("format:", c.format.description + (c.archiveName.map { " (archive '\($0)')" } ?? ""))
        if let d = c.root.dict {
            row("top level:", "\(c.root.typeName) with \(d.count) keys: "
                + d.entries.prefix(12).map { $0.key.keyText }.joined(separator: ", ") + (d.count > 12 ? ", …" : ""))
        } else {
            row("top level:", c.root.summary())
        }
        if let meta = c.meta {
            row("meta:", "\(meta.count) keys")
            let width = Swift.min(24, (meta.entries.map { $0.key.keyText.count }.max() ?? 0) + 2)
            for (k, v) in meta.entries { lines.append("  " + k.keyText.padding(width) + metaText(v)) }
        }
        if !c.safetensorsMetadata.isEmpty {
            row("metadata:", "\(c.safetensorsMetadata.count) entries")
            for (k, v) in c.safetensorsMetadata.sorted(by: { $0.key < $1.key }) {
                lines.append("  " + k.padding(24) + CheckpointValue.string(v).summary())
            }
        }
        let tensors: [(key: String, tensor: Tensor)]
        if let sd = try? c.stateDict(at: stateDictKey) {
            let name = (stateDictKey.flatMap { c.root[$0] } != nil) ? "'\(stateDictKey!)'" : "top level"
            row("state dict:", "\(name): \(sd.count) tensors, \(grouped(sd.elementCount)) elements")
            tensors = sd.ordered
        } else {
            tensors = c.root.tensors()
            row("tensors:", "\(tensors.count) tensors (no state dict), \(grouped(tensors.reduce(0) { saturatingAdd($0, $1.tensor.numel) })) elements")
        }
        row("dtypes:", dtypeText(tensors.map(\.tensor)))
        let all = c.root.tensors()
        if all.count != tensors.count {
            row("all:", "\(all.count) tensors in the file, \(grouped(all.reduce(0) { saturatingAdd($0, $1.tensor.numel) })) elements")
        }
        if let opt = c.optimizer { row("optimizer:", optimizerText(opt)) }
        return lines.joined(separator: "\n")
    }

    /// One line per state-dict key: `key<TAB>shape<TAB>dtype` (the format `--against-keys` reads).
    public static func keysTSV(_ sd: StateDict) throws(TorchError) -> String {
        var lines: [String] = []
        for (key, t) in sd.ordered { lines.append("\(key)\t\(shapeText(t.shape))\t\(try t.dtype)") }
        return lines.joined(separator: "\n")
    }

    static func metaText(_ v: CheckpointValue) -> String {
        switch v {
        case .string(let s) where s.contains("\n") || s.count > 60:
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            return "str of \(grouped(s.count)) chars, \(lines.count) lines (\(String(lines.first ?? "").prefix(50).debugDescription)…)"
        case .tuple(let a), .list(let a):
            let kinds = Set(a.map(\.typeName))
            let kind = kinds.count == 1 ? " " + kinds.first! : ""
            return "\(v.typeName) of \(a.count)\(kind): " + v.summary(maxItems: 5, maxString: 30)
        default:
            return v.summary(maxItems: 5, maxString: 60)
        }
    }

    static func dtypeText(_ tensors: [Tensor]) -> String {
        var counts: [String: (n: Int, e: Int)] = [:]
        for t in tensors {
            let d = dtypeLabel(t)
            counts[d, default: (0, 0)].n += 1
            counts[d, default: (0, 0)].e = saturatingAdd(counts[d, default: (0, 0)].e, t.numel)
        }
        if counts.isEmpty { return "none" }
        return counts.sorted { $0.value.e > $1.value.e }
            .map { "\($0.key): \($0.value.n) tensors, \(grouped($0.value.e)) elements" }.joined(separator: "; ")
    }

    static func optimizerText(_ v: CheckpointValue) -> String {
        guard let groups = v["param_groups"]?.items, let state = v["state"]?.dict else { return v.summary() }
        var parts = ["\(groups.count) param group\(groups.count == 1 ? "" : "s")"]
        if let g = groups.first?.dict {
            let keys = ["lr", "momentum", "weight_decay"].compactMap { k in g[k].map { "\(k) \($0.summary())" } }
            parts.append(keys.joined(separator: ", "))
            if let p = g["params"]?.items { parts.append("\(p.count) params") }
        }
        let buffers = state.entries.filter { $0.value["momentum_buffer"]?.tensor != nil }.count
        parts.append("state for \(state.count) params (\(buffers) momentum buffers)")
        return parts.joined(separator: "; ")
    }

    public static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    public static func bytesText(_ n: Int) -> String {
        if n < 1024 { return "\(n) bytes" }
        if n < 1 << 20 { return String(format1(Double(n) / 1024)) + " KiB" }
        return format1(Double(n) / Double(1 << 20)) + " MiB"
    }

    static func format1(_ x: Double) -> String {
        let r = (x * 10).rounded() / 10
        return String(r)
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
