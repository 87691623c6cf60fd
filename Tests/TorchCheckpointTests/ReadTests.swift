import Foundation
import TestSupport
import Torch
@testable import TorchCheckpoint
import XCTest

final class ReadTests: XCTestCase {
    /// Every tensor of a fixture matches Python's description bit for bit: dtype, shape, strides, offset, bytes;
    /// tensors that shared a storage in Python share one here.
    func checkFixture(_ file: String, expected name: String, format: CheckpointFormat,
                      line: UInt = #line) throws {
        let ckpt = try Checkpoint.load(try Fixtures.path(file))
        XCTAssertEqual(ckpt.format, format, line: line)
        let (expected, shared) = try Fixtures.expected(name)
        let tensors = Dictionary(ckpt.root.tensors(), uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(tensors.keys), Set(expected.keys), "\(file): tensor key paths", line: line)
        for (key, e) in expected {
            guard let t = tensors[key] else { continue }
            XCTAssertEqual(try t.dtype.description, e.dtype, "\(file) \(key) dtype", line: line)
            XCTAssertEqual(t.shape, e.shape, "\(file) \(key) shape", line: line)
            if format != .safetensors {
                XCTAssertEqual(t.strides, e.stride, "\(file) \(key) strides", line: line)
                XCTAssertEqual(t.storageOffset, e.offset, "\(file) \(key) storage offset", line: line)
            }
            XCTAssertEqual(try Fixtures.rawBytes(t), e.bytes, "\(file) \(key) bytes", line: line)
        }
        if format != .safetensors {
            for group in shared {
                let ts = group.compactMap { tensors[$0] }
                XCTAssertEqual(ts.count, group.count, line: line)
                for t in ts.dropFirst() { XCTAssertTrue(t.sharesStorage(with: ts[0]), "\(file): \(group) share a storage", line: line) }
            }
            // and tensors from different storages do not
            let groups = shared.map(Set.init)
            let keys = expected.keys.sorted()
            for (i, a) in keys.enumerated() {
                for b in keys[(i + 1)...] where !groups.contains(where: { $0.contains(a) && $0.contains(b) }) {
                    guard let ta = tensors[a], let tb = tensors[b], ta.numel > 0, tb.numel > 0 else { continue }
                    XCTAssertFalse(ta.sharesStorage(with: tb), "\(file): \(a) and \(b) must not share", line: line)
                }
            }
        }
    }

    func testModuleStateDictBothFormats() throws {
        for (file, format) in [("module.pth", CheckpointFormat.zip), ("module.legacy.pth", .legacy)] {
            try checkFixture(file, expected: "module", format: format)
            let c = try Checkpoint.load(try Fixtures.path(file))
            XCTAssertTrue(c.root.dict?.isOrdered ?? false, "a state dict is an OrderedDict")
            let sd = try c.stateDict()  // no 'state_dict' key: the top level is the state dict
            XCTAssertEqual(sd.keys, ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                     "bn1.num_batches_tracked", "layer.0.weight", "layer.0.bias", "fc.weight", "fc.bias"])
            XCTAssertEqual(try sd["bn1.num_batches_tracked"]!.itemInt(), 7)
            XCTAssertEqual(sd["bn1.num_batches_tracked"]!.shape, [])
        }
    }

    func testMMDetCheckpointBothFormats() throws {
        for (file, format) in [("mmdet.pth", CheckpointFormat.zip), ("mmdet.legacy.pth", .legacy)] {
            try checkFixture(file, expected: "mmdet", format: format)
            let c = try Checkpoint.load(try Fixtures.path(file))
            let meta = try XCTUnwrap(c.meta)
            XCTAssertEqual(meta["epoch"]?.int, 12)
            XCTAssertEqual(meta["iter"]?.int, 87936)
            XCTAssertEqual(meta["mmdet_version"]?.string, "2.16.0+abc1234")
            XCTAssertEqual(meta["CLASSES"]?.items?.compactMap(\.string).prefix(3), ["person", "bicycle", "car"])
            guard case .tuple(let classes)? = meta["CLASSES"] else { return XCTFail("CLASSES is a tuple") }
            XCTAssertEqual(classes.count, 10)
            XCTAssertTrue(meta["config"]?.string?.contains("type='GHMC'") ?? false)
            XCTAssertTrue(meta["seed"]?.isNone ?? false)
            XCTAssertEqual(meta["lr"]?.double, 0.0001)
            let sd = try c.stateDict(at: "state_dict")
            XCTAssertEqual(sd.count, 10)
            XCTAssertEqual(sd.elementCount, 155)
            let sgd = try SGDState(from: try XCTUnwrap(c.optimizer))
            XCTAssertEqual(sgd.lr, 0.01)
            XCTAssertEqual(sgd.momentum, 0.9)
            XCTAssertEqual(sgd.weightDecay, 0.0001)
            XCTAssertEqual(sgd.nesterov, false)
            XCTAssertEqual(sgd.momentumBuffers.count, 7)
            XCTAssertEqual(sgd.momentumBuffers.compactMap { $0 }.count, 7)
            XCTAssertEqual(sgd.extra.map(\.key), ["initial_lr"])
            XCTAssertEqual(sgd.momentumBuffers[0]?.shape, [4, 3, 3, 3])
        }
    }

    func testEveryDtypeAllFormats() throws {
        try checkFixture("dtypes.pth", expected: "dtypes", format: .zip)
        try checkFixture("dtypes.legacy.pth", expected: "dtypes", format: .legacy)
        try checkFixture("dtypes.safetensors", expected: "dtypes.safetensors", format: .safetensors)
        let st = try Checkpoint.load(try Fixtures.path("dtypes.safetensors"))
        XCTAssertEqual(st.safetensorsMetadata, ["format": "pt", "note": "fixture"])
        let c = try Checkpoint.load(try Fixtures.path("dtypes.legacy.pth"))
        XCTAssertEqual(Set(try c.root.tensors().map { (_, t) throws(TorchError) in try t.dtype }), Set(DType.allCases))
    }

    func testViewsOffsetsStridesAndSharing() throws {
        try checkFixture("views.pth", expected: "views", format: .zip)
        try checkFixture("views.legacy.pth", expected: "views", format: .legacy)
        let c = try Checkpoint.load(try Fixtures.path("views.legacy.pth"))
        let sd = try c.stateDict()
        XCTAssertEqual(sd["matrix_t"]!.strides, [1, 6])
        XCTAssertEqual(sd["expanded"]!.strides, [1, 0])
        // in-place writes through one view are visible through the others: one storage, not copies
        try sd["slice"]!.fill_(-7)
        XCTAssertEqual(try sd["base"]!.floats()[10..<20], ArraySlice(repeating: -7, count: 10))
    }

    func testPythonValues() throws {
        for file in ["misc.pth", "misc.legacy.pth"] {
            let c = try Checkpoint.load(try Fixtures.path(file))
            let r = c.root
            XCTAssertEqual(r["ints"]?.items?.compactMap(\.int),
                           [0, 1, -1, 255, 256, 65535, 65536, -(1 << 31), (1 << 31) - 1, 1 << 31, Int.min, Int.max])
            guard case .bigInt(let big)? = r["big"] else { return XCTFail("2**100 is a big int") }
            XCTAssertEqual(big, [UInt8](repeating: 0, count: 12) + [0x10])
            guard case .bigInt(let neg)? = r["negbig"] else { return XCTFail("-(2**70) is a big int") }
            XCTAssertEqual(neg, [0, 0, 0, 0, 0, 0, 0, 0, 0xc0])
            XCTAssertEqual(r["floats"]?.items?.compactMap(\.double), [0.5, -1e-300, .infinity])
            XCTAssertEqual(r["text"]?.string, "héllo\nwörld ✓")
            guard case .bytes(let b)? = r["bytes"] else { return XCTFail("bytes") }
            XCTAssertEqual(b, [0, 1, 255])
            XCTAssertTrue(r["none"]?.isNone ?? false)
            XCTAssertEqual(r["flags"]?.items?.compactMap(\.bool), [true, false])
            XCTAssertEqual(r["nested"]?["a"]?.items?[1].items?[1].items?[1].items?.compactMap(\.int), [4, 5])
            let ik = try XCTUnwrap(r["int_keys"]?.dict)
            XCTAssertEqual(ik[0]?.string, "zero")
            XCTAssertEqual(ik[-5]?.string, "minus five")
            XCTAssertEqual(r["tuple_key"]?.dict?.value(for: .tuple([.int(1), .string("a")]))?.string, "pair")
            guard case .set(let s)? = r["set"] else { return XCTFail("set") }
            XCTAssertEqual(s.compactMap(\.int), [3])
            guard case .device(let d)? = r["device"] else { return XCTFail("device") }
            XCTAssertEqual(d, "cpu")
            XCTAssertEqual(r["long_list"]?.items?.count, 2500)
            XCTAssertEqual(r["long_list"]?.items?.last?.int, 2499)
            let shared = try XCTUnwrap(r["shared"]?.items?.compactMap(\.tensor))
            XCTAssertTrue(shared[0] === shared[1], "one object pickled twice is one tensor")
        }
    }

    func testBytesAndFileGiveTheSameResult() throws {
        let fromBytes = try Checkpoint.load(bytes: try Fixtures.bytes("mmdet.legacy.pth"))
        let fromFile = try Checkpoint.load(try Fixtures.path("mmdet.legacy.pth"))
        let a = try fromBytes.stateDict(), b = try fromFile.stateDict()
        XCTAssertEqual(a.keys, b.keys)
        for k in a.keys { XCTAssertEqual(try Fixtures.rawBytes(a[k]!), try Fixtures.rawBytes(b[k]!)) }
        XCTAssertNil(fromBytes.file)
        XCTAssertEqual(fromFile.file, try Fixtures.path("mmdet.legacy.pth"))
    }

    func testSummaryAndKeyListing() throws {
        let c = try Checkpoint.load(try Fixtures.path("mmdet.legacy.pth"))
        let s = CheckpointReport.summary(c)
        for fragment in ["legacy", "CLASSES", "tuple of 10 str", "epoch", "10 tensors, 155 elements",
                         "float32: 9 tensors", "int64: 1 tensors", "momentum 0.9", "7 momentum buffers"] {
            XCTAssertTrue(s.contains(fragment), "summary lacks '\(fragment)':\n\(s)")
        }
        let tsv = try CheckpointReport.keysTSV(try c.stateDict())
        XCTAssertTrue(tsv.hasPrefix("conv1.weight\t4x3x3x3\tfloat32\n"))
        XCTAssertTrue(tsv.contains("bn1.num_batches_tracked\tscalar\tint64"))
    }
}
