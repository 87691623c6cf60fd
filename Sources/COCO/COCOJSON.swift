import Foundation
import Support

/// Reading COCO JSON files: clear errors naming the file and the JSON path of the item at fault, and the field
/// decoders shared by the dataset and results types. Writing goes through `Support` (`JSONText`, `Files`).
public enum COCOJSON {
    // MARK: - Reading

    /// Reads a whole file, with a clear error for a missing file, a directory or an unreadable file.
    public static func readFile(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw COCOError(file: path, "file not found")
        }
        if isDirectory.boolValue {
            throw COCOError(file: path, "is a directory, expected a JSON file")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw COCOError(file: path, "cannot read file (\(error.localizedDescription))")
        }
    }

    /// Decodes `T` from `data`, turning every DecodingError into a COCOError that names the file
    /// and the JSON path of the item (`root` is prefixed to the path, e.g. "results").
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, file: String, root: String = "") throws -> T {
        if data.isEmpty || data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw COCOError(file: file, "file is empty, expected JSON")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw mapDecodingError(error, data: data, file: file, root: root)
        } catch let error as COCOError {
            throw error
        } catch {
            throw COCOError(file: file, "cannot decode JSON (\(error))")
        }
    }

    static func mapDecodingError(_ error: DecodingError, data: Data, file: String, root: String) -> COCOError {
        switch error {
        case .typeMismatch(let type, let context):
            let item = path(root: root, context.codingPath)
            return COCOError(file: file, item: item, "expected \(typeName(type))\(foundPart(context.debugDescription))")
        case .valueNotFound(let type, let context):
            let item = path(root: root, context.codingPath)
            return COCOError(file: file, item: item, "expected \(typeName(type)), found null")
        case .keyNotFound(let key, let context):
            let item = path(root: root, context.codingPath + [key])
            return COCOError(file: file, item: item, "missing required field")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty && context.debugDescription.contains("not valid JSON") {
                // Foundation says nothing about where; find it ourselves.
                if let problem = JSONSyntaxScanner.firstProblem(in: data) {
                    let item = path(root: root, problem.path)
                    return COCOError(file: file, item: item,
                                     "invalid JSON at line \(problem.line), column \(problem.column): \(problem.message)")
                }
                return COCOError(file: file, "invalid JSON (\(context.debugDescription))")
            }
            let item = path(root: root, context.codingPath)
            return COCOError(file: file, item: item, context.debugDescription)
        @unknown default:
            return COCOError(file: file, "cannot decode JSON (\(error))")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            if name.hasPrefix("Dictionary") || name.contains("Dictionary") { return "an object" }
            return "an object"
        }
    }

    /// Foundation's debug text reads "Expected to decode X but found a string instead."; keep the
    /// "found ..." part.
    static func foundPart(_ debug: String) -> String {
        guard let range = debug.range(of: "but found ") else { return "" }
        var found = String(debug[range.upperBound...])
        if found.hasSuffix(" instead.") { found.removeLast(" instead.".count) }
        found = found.trimmingCharacters(in: .whitespaces)
        if found.hasSuffix(".") { found.removeLast() }
        if !found.isEmpty, found != "null", !found.hasPrefix("a "), !found.hasPrefix("an ") {
            found = ("aeiou".contains(found.first!) ? "an " : "a ") + found
        }
        return found.isEmpty ? "" : ", found \(found)"
    }

    /// `annotations[12].bbox` from a coding path.
    static func path(root: String, _ keys: [any CodingKey]) -> String {
        var s = root
        for key in keys {
            if let index = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == "\(index)" {
                s += "[\(index)]"
            } else if s.isEmpty {
                s = key.stringValue
            } else {
                s += "." + key.stringValue
            }
        }
        return s
    }

    // MARK: - Field helpers used by the Decodable types

    /// An integer id; JSON numbers such as `3.0` are accepted, `3.5` is not.
    static func decodeInt<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int {
        let value: Double
        do {
            value = try c.decode(Double.self, forKey: key)
        } catch DecodingError.typeMismatch(_, let context) {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                   debugDescription: "expected an integer\(foundPart(context.debugDescription))")
        } catch DecodingError.valueNotFound {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "expected an integer, found null")
        }
        guard let i = exactInt(value) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                   debugDescription: "expected an integer, found \(JSONText.number(value))")
        }
        return i
    }

    static func decodeIntIfPresent<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Int? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        return try decodeInt(c, key)
    }

    static func exactInt(_ v: Double) -> Int? {
        guard v.isFinite, v == v.rounded(), abs(v) <= 9_007_199_254_740_992 else { return nil }
        return Int(v)
    }

    /// A 0/1 (or true/false) flag such as `iscrowd`; missing or null is false.
    static func decodeFlag<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Bool {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return false }
        if let b = try? c.decode(Bool.self, forKey: key) { return b }
        do {
            let v = try c.decode(Double.self, forKey: key)
            return v != 0
        } catch {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                   debugDescription: "expected 0, 1, true or false")
        }
    }

    /// `[x, y, w, h]`: exactly four numbers.
    static func decodeBox<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> COCOBox {
        let values: [Double]
        do {
            values = try c.decode([Double].self, forKey: key)
        } catch DecodingError.keyNotFound(let k, let ctx) {
            throw DecodingError.keyNotFound(k, ctx)
        } catch DecodingError.dataCorrupted(let ctx) where ctx.codingPath.isEmpty {
            throw DecodingError.dataCorrupted(ctx)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                   debugDescription: "expected array of 4 numbers [x, y, w, h]")
        }
        guard values.count == 4 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c,
                debugDescription: "expected array of 4 numbers [x, y, w, h], found \(values.count) number\(values.count == 1 ? "" : "s")")
        }
        return COCOBox(x: values[0], y: values[1], width: values[2], height: values[3])
    }
}

// MARK: - Locating syntax errors

/// A strict JSON (RFC 8259) syntax checker that only runs after Foundation has rejected a file,
/// to say where and why: line, column, the JSON path of the value being read, and a message
/// (`NaN` and `Infinity`, as Python's json module writes them, get their own message).
enum JSONSyntaxScanner {
    struct Problem {
        var path: [any CodingKey]
        var line: Int
        var column: Int
        var message: String
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ s: String) { stringValue = s; intValue = nil }
        init(index: Int) { stringValue = "Index \(index)"; intValue = index }
        init?(stringValue: String) { self.init(stringValue) }
        init?(intValue: Int) { self.init(index: intValue) }
    }

    private struct Failure: Error { var offset: Int; var message: String }

    static func firstProblem(in data: Data) -> Problem? {
        let bytes = [UInt8](data)
        var scanner = Scanner(bytes: bytes)
        do {
            try scanner.run()
            return nil
        } catch let f as Failure {
            var line = 1, column = 1
            for b in bytes[0..<min(f.offset, bytes.count)] {
                if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            }
            return Problem(path: scanner.path, line: line, column: column, message: f.message)
        } catch {
            return nil
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var i = 0
        var path: [any CodingKey] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func run() throws {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
            skipSpace()
            try value(depth: 0)
            skipSpace()
            if i < bytes.count { throw Failure(offset: i, message: "unexpected \(describe(i)) after the end of the JSON value") }
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        func describe(_ at: Int) -> String {
            guard at < bytes.count else { return "end of file" }
            let b = bytes[at]
            if b >= 0x21 && b < 0x7F { return "character '\(Character(UnicodeScalar(b)))'" }
            return String(format: "byte 0x%02X", b)
        }

        func startsWith(_ word: String) -> Bool {
            let w = Array(word.utf8)
            return bytes.count - i >= w.count && Array(bytes[i..<(i + w.count)]) == w
        }

        mutating func value(depth: Int) throws {
            guard depth < 10_000 else { throw Failure(offset: i, message: "nesting too deep") }
            guard i < bytes.count else { throw Failure(offset: i, message: "unexpected end of file, expected a value") }
            switch bytes[i] {
            case UInt8(ascii: "{"): try object(depth: depth)
            case UInt8(ascii: "["): try array(depth: depth)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "N") where startsWith("NaN"):
                throw Failure(offset: i, message: "NaN is not allowed in JSON (values must be finite numbers)")
            case UInt8(ascii: "I") where startsWith("Infinity"):
                throw Failure(offset: i, message: "Infinity is not allowed in JSON (values must be finite numbers)")
            case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "I"):
                throw Failure(offset: i, message: "-Infinity is not allowed in JSON (values must be finite numbers)")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw Failure(offset: i, message: "unexpected \(describe(i)), expected a value")
            }
        }

        mutating func literal(_ word: String) throws {
            guard startsWith(word) else { throw Failure(offset: i, message: "unexpected \(describe(i)), expected a value") }
            i += word.utf8.count
        }

        mutating func number() throws {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 }
            guard digit(i) else { throw Failure(offset: i, message: "invalid number") }
            if bytes[i] == 0x30 {
                i += 1
                if digit(i) { throw Failure(offset: start, message: "invalid number (leading zero)") }
            } else {
                while digit(i) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digit(i) else { throw Failure(offset: i, message: "invalid number (digit expected after '.')") }
                while digit(i) { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digit(i) else { throw Failure(offset: i, message: "invalid number (digit expected in exponent)") }
                while digit(i) { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if let v = Double(text), !v.isFinite {
                throw Failure(offset: start, message: "number \(text) is out of range")
            }
        }

        mutating func string() throws {
            let start = i
            i += 1
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; return }
                if b < 0x20 { throw Failure(offset: i, message: "control character in string (escape it)") }
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count else { break }
                    switch bytes[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        for k in 1...4 {
                            guard i + k < bytes.count, isHex(bytes[i + k]) else {
                                throw Failure(offset: i, message: "invalid \\u escape in string")
                            }
                        }
                        i += 5
                    default:
                        throw Failure(offset: i - 1, message: "invalid escape in string")
                    }
                    continue
                }
                i += 1
            }
            throw Failure(offset: start, message: "unterminated string")
        }

        func isHex(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
        }

        mutating func array(depth: Int) throws {
            i += 1
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
            var index = 0
            while true {
                path.append(Key(index: index))
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                    throw Failure(offset: i, message: "trailing comma before ']'")
                }
                try value(depth: depth + 1)
                path.removeLast()
                skipSpace()
                guard i < bytes.count else { throw Failure(offset: i, message: "unexpected end of file, expected ',' or ']'") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; index += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return }
                path.append(Key(index: index))
                throw Failure(offset: i, message: "unexpected \(describe(i)), expected ',' or ']'")
            }
        }

        mutating func object(depth: Int) throws {
            i += 1
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard i < bytes.count else { throw Failure(offset: i, message: "unexpected end of file, expected a key") }
                if bytes[i] == UInt8(ascii: "}") { throw Failure(offset: i, message: "trailing comma before '}'") }
                guard bytes[i] == UInt8(ascii: "\"") else {
                    throw Failure(offset: i, message: "unexpected \(describe(i)), expected a string key")
                }
                let keyStart = i + 1
                try string()
                let key = String(decoding: bytes[keyStart..<(i - 1)], as: UTF8.self)
                path.append(Key(key))
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else {
                    throw Failure(offset: i, message: "unexpected \(describe(i)), expected ':'")
                }
                i += 1
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw Failure(offset: i, message: "unexpected end of file, expected ',' or '}'") }
                if bytes[i] == UInt8(ascii: ",") { path.removeLast(); i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { path.removeLast(); i += 1; return }
                throw Failure(offset: i, message: "unexpected \(describe(i)), expected ',' or '}'")
            }
        }
    }
}
