import Foundation
import Yams

/// The resolved config as mmcv's Python config text (`key = dict(...)` lines), which is what mmdet stores in
/// `meta.config` of its checkpoints and logs; mmcv's `runner.resume` parses it with `Config.fromstring(…, '.py')`.
/// This project's own key `implementation` (of GHMC / GHMR) is left out, so that mmdet can build the model from it.
public enum ConfigText {
    public static func mmcvText(fromYAML yaml: String) throws -> String {
        guard let node = try Yams.compose(yaml: yaml), case .mapping(let m) = node else {
            throw TrainingError("the resolved config is not a mapping")
        }
        var lines: [String] = []
        for (k, v) in m {
            guard let key = k.string else { continue }
            lines.append("\(key) = \(literal(v))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The YAML with top-level `values` set (what `tools/train.py` adds to the dumped config: seed, work_dir).
    public static func setting(_ values: [(String, String)], inYAML yaml: String) throws -> String {
        guard let node = try Yams.compose(yaml: yaml), case .mapping(var m) = node else {
            throw TrainingError("the resolved config is not a mapping")
        }
        for (k, v) in values { m[Node(k)] = try Yams.compose(yaml: v) ?? Node("null") }
        return try Yams.serialize(node: .mapping(m))
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let f = s.first, f == "_" || f.isLetter else { return false }
        let keywords: Set<String> = ["None", "True", "False", "and", "or", "not", "if", "else", "for", "in", "is",
                                     "def", "class", "return", "import", "from", "as", "with", "lambda", "while", "pass", "del", "global"]
        return s.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber } && !keywords.contains(s) && s.allSatisfy(\.isASCII)
    }

    static func quote(_ s: String) -> String {
        var out = "'"
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if ch.value < 0x20 { out += String(format: "\\x%02x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "'"
    }

    static func literal(_ node: Node) -> String {
        switch node {
        case .mapping(var m):
            if m["type"]?.string == "GHMC" || m["type"]?.string == "GHMR" { m["implementation"] = nil }
            let keys = m.map { $0.key.string ?? "" }
            if keys.allSatisfy(isIdentifier) {
                return "dict(" + m.map { "\($0.key.string!)=\(literal($0.value))" }.joined(separator: ", ") + ")"
            }
            return "{" + m.map { "\(quote($0.key.string ?? "")): \(literal($0.value))" }.joined(separator: ", ") + "}"
        case .sequence(let s):
            return "[" + s.map(literal).joined(separator: ", ") + "]"
        case .scalar(let sc):
            if sc.style == .plain {
                if node.null != nil { return "None" }
                if let b = node.bool { return b ? "True" : "False" }
                if let i = node.int { return "\(i)" }
                if let d = node.float, d.isFinite { return "\(d)" }
            }
            return quote(sc.string)
        case .alias:
            return "None"
        }
    }
}
