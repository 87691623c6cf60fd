import Foundation
import Yams

/// A configuration problem: the dotted path of the key at fault and what is wrong.
public struct ConfigError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var file: String?

    public init(path: String, message: String, file: String? = nil) {
        self.path = path
        self.message = message
        self.file = file
    }

    public var description: String {
        "\(file.map { "\($0): " } ?? "")\(path.isEmpty ? "" : "\(path): ")\(message)"
    }
}

/// A coding key for any string (used to list the keys present in a mapping).
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

func dotted(_ path: [CodingKey]) -> String {
    path.map { $0.intValue.map { "\($0)" } ?? $0.stringValue }.joined(separator: ".")
}

extension Decoder {
    /// A keyed container that first rejects any key not in `K` (an error naming the key's full path).
    func strictContainer<K: CodingKey>(_ keys: K.Type) throws -> KeyedDecodingContainer<K> {
        let any = try container(keyedBy: AnyKey.self)
        for key in any.allKeys where K(stringValue: key.stringValue) == nil {
            throw ConfigError(path: dotted(codingPath + [key]), message: "unknown key")
        }
        return try container(keyedBy: K.self)
    }

    /// The `type` field of a mmdet-style dict, checked against the supported names.
    func typeName(allowed: [String]) throws -> String {
        let c = try container(keyedBy: AnyKey.self)
        let key = AnyKey(stringValue: "type")
        guard c.contains(key) else {
            throw ConfigError(path: dotted(codingPath + [key]), message: "missing (one of \(allowed.joined(separator: ", ")))")
        }
        let name = try c.decode(String.self, forKey: key)
        guard allowed.contains(name) else {
            throw ConfigError(path: dotted(codingPath + [key]),
                              message: "unsupported '\(name)' (supported: \(allowed.joined(separator: ", ")))")
        }
        return name
    }
}

extension KeyedDecodingContainer {
    /// Overwrites `value` with the key's value when the key is present (the default stays otherwise).
    func read<T: Decodable>(_ value: inout T, _ key: Key) throws {
        if let v = try decodeIfPresent(T.self, forKey: key) { value = v }
    }

    /// Like `read`, for optionals: an explicit `null` sets nil.
    func readOptional<T: Decodable>(_ value: inout T?, _ key: Key) throws {
        if contains(key) { value = try decodeIfPresent(T.self, forKey: key) }
    }
}

/// Turns Swift's decoding errors into `ConfigError`s with dotted paths.
func configError(_ error: Error, file: String?) -> ConfigError {
    if var e = error as? ConfigError {
        e.file = file
        return e
    }
    guard let d = error as? DecodingError else { return ConfigError(path: "", message: "\(error)", file: file) }
    switch d {
    case .typeMismatch(let type, let ctx):
        return ConfigError(path: dotted(ctx.codingPath), message: "expected \(type): \(ctx.debugDescription)", file: file)
    case .valueNotFound(let type, let ctx):
        return ConfigError(path: dotted(ctx.codingPath), message: "missing value of type \(type)", file: file)
    case .keyNotFound(let key, let ctx):
        return ConfigError(path: dotted(ctx.codingPath + [key]), message: "missing key", file: file)
    case .dataCorrupted(let ctx):
        return ConfigError(path: dotted(ctx.codingPath), message: ctx.debugDescription, file: file)
    @unknown default:
        return ConfigError(path: "", message: "\(d)", file: file)
    }
}

/// Command-line overrides `a.b.c=value` applied to the YAML tree before decoding; list elements are addressed by
/// index (`data.test.pipeline.1.img_scale=[416, 320]`). The value is parsed as YAML.
func applyOverrides(_ root: inout Node, _ overrides: [String]) throws {
    for item in overrides {
        guard let eq = item.firstIndex(of: "=") else {
            throw ConfigError(path: item, message: "an override must look like key.path=value")
        }
        let path = item[..<eq].split(separator: ".").map(String.init)
        guard !path.isEmpty else { throw ConfigError(path: item, message: "empty key path") }
        let value = try Yams.compose(yaml: String(item[item.index(after: eq)...])) ?? Node("null")
        try setNode(&root, path[...], value, full: path.joined(separator: "."))
    }
}

private func setNode(_ node: inout Node, _ path: ArraySlice<String>, _ value: Node, full: String) throws {
    guard let head = path.first else {
        node = value
        return
    }
    switch node {
    case .mapping(var m):
        if path.count > 1 && m[head] == nil {
            throw ConfigError(path: full, message: "no key '\(head)' to descend into")
        }
        var child = m[head] ?? Node("null")
        try setNode(&child, path.dropFirst(), value, full: full)
        m[head] = child
        node = .mapping(m)
    case .sequence(var s):
        guard let i = Int(head), s.indices.contains(i) else {
            throw ConfigError(path: full, message: "'\(head)' is not an index of a list of \(s.count)")
        }
        var child = s[i]
        try setNode(&child, path.dropFirst(), value, full: full)
        s[i] = child
        node = .sequence(s)
    default:
        throw ConfigError(path: full, message: "'\(head)' is below a scalar")
    }
}
