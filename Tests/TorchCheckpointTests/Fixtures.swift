import Foundation
import TestSupport
import Torch
@testable import TorchCheckpoint
import XCTest

/// Checkpoints written by Python torch at test time (`tools/make_checkpoint_fixtures.py`), once per test process.
enum Fixtures {
    struct Expected {
        let dtype: String
        let shape: [Int]
        let stride: [Int]
        let offset: Int
        let bytes: Data
    }

    static func dir() throws -> String { try CheckpointFixtures.dir() }

    static func path(_ name: String) throws -> String { try CheckpointFixtures.path(name) }

    static func bytes(_ name: String) throws -> [UInt8] { try CheckpointFixtures.bytes(name) }

    /// expected.json: fixture name → (tensors by key path, groups of keys sharing a storage).
    static func expected(_ name: String) throws -> (tensors: [String: Expected], shared: [[String]]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("expected.json")))
        let all = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entry = try XCTUnwrap(all[name] as? [String: Any], "no \(name) in expected.json")
        let tensors = try XCTUnwrap(entry["tensors"] as? [String: [String: Any]])
        var out: [String: Expected] = [:]
        for (k, v) in tensors {
            out[k] = Expected(dtype: v["dtype"] as! String, shape: v["shape"] as! [Int], stride: v["stride"] as! [Int],
                              offset: v["offset"] as! Int, bytes: Data(base64Encoded: v["bytes"] as! String)!)
        }
        return (out, entry["shared"] as? [[String]] ?? [])
    }

    /// Raw bytes of a tensor's contiguous copy.
    static func rawBytes(_ t: Tensor) throws -> Data {
        let c = try t.contiguous()
        return try c.withUnsafeBytes { Data($0) }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Asserts that a `CheckpointError` of `kind` is thrown and that its text contains every fragment.
func assertCheckpointError<T>(_ kind: CheckpointError.Kind, _ fragments: [String], file: StaticString = #filePath,
                              line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected a \(kind) error mentioning \(fragments), but it succeeded", file: file, line: line)
    } catch let e as CheckpointError {
        XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(e.description.contains(f), "'\(e)' does not mention '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a CheckpointError, got \(error)", file: file, line: line)
    }
}

/// Hand-assembled pickles (protocol 2) for crafted inputs.
struct PickleAssembler {
    var b: [UInt8] = [0x80, 0x02]

    mutating func op(_ x: UInt8...) { b += x }

    mutating func str(_ s: String) {
        let u = Array(s.utf8)
        op(0x58)
        b += withUnsafeBytes(of: UInt32(u.count).littleEndian, Array.init)
        b += u
    }

    mutating func int(_ v: Int) {
        op(0x8a, 8)
        b += withUnsafeBytes(of: Int64(v).littleEndian, Array.init)
    }

    mutating func global(_ module: String, _ name: String) {
        op(0x63)
        b += Array("\(module)\n\(name)\n".utf8)
    }

    mutating func tuple(_ v: [Int]) {
        op(0x28)
        for x in v { int(x) }
        op(0x74)
    }

    /// `_rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())` on a legacy persistent id.
    mutating func tensor(storageType: String = "FloatStorage", key: String, numel: Int, offset: Int, shape: [Int],
                         strides: [Int], legacy: Bool = true) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28, 0x28)
        str("storage")
        global("torch", storageType)
        str(key)
        str("cpu")
        int(numel)
        if legacy { op(0x4e) }
        op(0x74, 0x51)
        int(offset)
        tuple(shape)
        tuple(strides)
        op(0x89)
        global("collections", "OrderedDict")
        op(0x29, 0x52, 0x74, 0x52)
    }

    mutating func stop() -> [UInt8] {
        op(0x2e)
        return b
    }

    /// A pickle of one string-keyed dict built by `body` (which pushes key/value pairs).
    static func dict(_ body: (inout PickleAssembler) -> Void) -> [UInt8] {
        var p = PickleAssembler()
        p.op(0x7d, 0x28)
        body(&p)
        p.op(0x75)
        return p.stop()
    }
}

/// A legacy-format file: magic, protocol, sys_info, `main`, the key list, then each storage (count, bytes).
func legacyFile(main: [UInt8], keys: [String], storages: [(count: Int64, bytes: [UInt8])], littleEndian: Bool = true) -> [UInt8] {
    var out: [UInt8] = [0x80, 0x02, 0x8a, 0x0a] + LegacyFormat.magic + [0x2e]
    out += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]  // 1001
    var info = PickleAssembler()
    info.op(0x7d, 0x28)
    info.str("protocol_version"); info.op(0x4d, 0xe9, 0x03)
    info.str("little_endian"); info.op(littleEndian ? 0x88 : 0x89)
    info.op(0x75)
    out += info.stop()
    out += main
    var k = PickleAssembler()
    k.op(0x5d, 0x28)
    for key in keys { k.str(key) }
    k.op(0x65)
    out += k.stop()
    for s in storages {
        out += withUnsafeBytes(of: s.count.littleEndian, Array.init)
        out += s.bytes
    }
    return out
}

func floatBytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
