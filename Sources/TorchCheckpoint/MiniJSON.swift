/// A small JSON parser for safetensors headers: keeps object key order (the tensors' order in the file, which
/// `JSONSerialization` loses), limits depth, never traps, and reports problems as `CheckpointError`s with the byte
/// offset in the file (the fuzzer feeds it hostile headers).
enum JSONValue {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var int: Int? { if case .int(let i) = self { return i }; return nil }
    var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    var object: [(String, JSONValue)]? { if case .object(let o) = self { return o }; return nil }

    subscript(key: String) -> JSONValue? { object?.first { $0.0 == key }?.1 }
}

struct JSONParser {
    private let b: UnsafeRawBufferPointer
    private var pos: Int
    private let end: Int
    /// Absolute offset of `b[0]` in the file, for messages.
    private let base: Int
    private let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer, base: Int) {
        self.b = bytes
        self.pos = 0
        self.end = bytes.count
        self.base = base
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, base: Int) throws(CheckpointError) -> JSONValue {
        var p = JSONParser(bytes, base: base)
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.pos == p.end else { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    private func fail(_ m: String) -> CheckpointError {
        CheckpointError(.corrupt, "JSON header: \(m)", offset: base + pos)
    }

    private mutating func skipSpace() {
        while pos < end, b[pos] == 0x20 || b[pos] == 0x0a || b[pos] == 0x0d || b[pos] == 0x09 { pos += 1 }
    }

    private mutating func literal(_ word: String, _ v: JSONValue) throws(CheckpointError) -> JSONValue {
        let w = Array(word.utf8)
        guard end - pos >= w.count, (0..<w.count).allSatisfy({ b[pos + $0] == w[$0] }) else { throw fail("invalid literal") }
        pos += w.count
        return v
    }

    private mutating func value(depth: Int) throws(CheckpointError) -> JSONValue {
        guard depth < maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
        skipSpace()
        guard pos < end else { throw fail("unexpected end") }
        switch b[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var items: [(String, JSONValue)] = []
            skipSpace()
            if pos < end, b[pos] == UInt8(ascii: "}") { pos += 1; return .object(items) }
            while true {
                skipSpace()
                guard pos < end, b[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skipSpace()
                guard pos < end, b[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                items.append((k, try value(depth: depth + 1)))
                skipSpace()
                guard pos < end else { throw fail("unexpected end in an object") }
                if b[pos] == UInt8(ascii: ",") { pos += 1; continue }
                guard b[pos] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                pos += 1
                return .object(items)
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipSpace()
            if pos < end, b[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard pos < end else { throw fail("unexpected end in an array") }
                if b[pos] == UInt8(ascii: ",") { pos += 1; continue }
                guard b[pos] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                pos += 1
                return .array(items)
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: return try number()
        }
    }

    private mutating func number() throws(CheckpointError) -> JSONValue {
        let start = pos
        var isInt = true
        while pos < end {
            let c = b[pos]
            if c >= 0x30 && c <= 0x39 || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
                pos += 1
            } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                isInt = false
                pos += 1
            } else {
                break
            }
        }
        guard pos > start, pos - start <= 64 else { throw fail("invalid number") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<pos]), as: UTF8.self)
        if isInt {
            guard let i = Int(text) else { throw fail("integer \(text) is invalid or out of range") }
            return .int(i)
        }
        guard let d = Double(text) else { throw fail("invalid number \(text)") }
        return .double(d)
    }

    private mutating func hex4() throws(CheckpointError) -> UInt32 {
        guard end - pos >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func string() throws(CheckpointError) -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard pos < end else { throw fail("unterminated string") }
            let c = b[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw fail("control character in a string") }
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard pos < end else { throw fail("unterminated escape") }
            let e = b[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if u >= 0xD800 && u < 0xDC00 {
                    guard end - pos >= 2, b[pos] == UInt8(ascii: "\\"), b[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate")
                    }
                    pos += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("unpaired surrogate") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(u) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }
}
