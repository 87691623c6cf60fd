import Foundation
import TestSupport
import Torch
@testable import TorchCheckpoint
import XCTest

/// Bad input of every class gives a `CheckpointError` that says what and where; nothing traps, hangs or runs code.
final class ErrorTests: XCTestCase {
    // MARK: helpers

    private func records(_ bytes: [UInt8]) throws -> [(name: String, data: [UInt8])] {
        let src = ByteSource(copying: bytes)
        let zip = try ZipArchive(src)
        return try zip.entries.map { e in (e.name, Array(src.bytes[try zip.dataRange(e)])) }
    }

    private func zipBytes(_ recs: [(name: String, data: [UInt8])]) throws -> [UInt8] {
        let sink = MemorySink()
        var w = ZipWriter(sink)
        for r in recs { try w.add(r.name, r.data) }
        try w.finish()
        return sink.bytes
    }

    /// A real torch zip (module.pth) with its data.pkl replaced.
    private func zipWithPickle(_ pickle: [UInt8]) throws -> [UInt8] {
        var recs = try records(try Fixtures.bytes("module.pth"))
        let i = try XCTUnwrap(recs.firstIndex { $0.name.hasSuffix("/data.pkl") })
        recs[i].data = pickle
        return try zipBytes(recs)
    }

    private func load(_ bytes: [UInt8], _ options: CheckpointReadOptions = .init()) throws -> Checkpoint {
        try Checkpoint.load(bytes: bytes, options: options)
    }

    /// A legacy file whose main pickle is `pickle` (no storages).
    private func loadPickle(_ pickle: [UInt8], _ options: CheckpointReadOptions = .init()) throws -> Checkpoint {
        try load(legacyFile(main: pickle, keys: [], storages: []), options)
    }

    /// Where the main pickle starts in `legacyFile`.
    private var mainOffset: Int { legacyFile(main: [], keys: [], storages: []).count - 6 }  // minus the empty key list

    /// A legacy file whose state dict holds one float tensor `w` on storage "0".
    private func legacyTensor(numel: Int, dataCount: Int64? = nil, dataBytes: Int? = nil, offset: Int, shape: [Int],
                              strides: [Int]) -> [UInt8] {
        let main = PickleAssembler.dict { p in
            p.str("w")
            p.tensor(key: "0", numel: numel, offset: offset, shape: shape, strides: strides)
        }
        let n = dataBytes ?? numel * 4
        return legacyFile(main: main, keys: ["0"], storages: [(dataCount ?? Int64(numel), floatBytes((0..<n / 4).map(Float.init)))])
    }

    // MARK: truncation and magic

    func testTruncatedAtEveryByte() throws {
        for name in ["module.legacy.pth", "module.pth", "dtypes.safetensors", "views.legacy.pth"] {
            let bytes = try Fixtures.bytes(name)
            var kinds: [CheckpointError.Kind: Int] = [:]
            for n in 0..<bytes.count {
                do {
                    _ = try load(Array(bytes[..<n]))
                    XCTFail("\(name) truncated to \(n) bytes loaded")
                } catch let e as CheckpointError {
                    kinds[e.kind, default: 0] += 1
                    XCTAssertNotNil(e.offset ?? (e.key != nil ? 0 : nil), "\(name)[..<\(n)]: \(e) says where")
                }
            }
            XCTAssertGreaterThan(kinds[.truncated] ?? 0, bytes.count / 2, "\(name): \(kinds)")
        }
        let legacy = try Fixtures.bytes("module.legacy.pth")
        assertCheckpointError(.truncated, ["storage", "needs 8 bytes", "only 4 are left in the file", "byte"]) {
            try load(Array(legacy.dropLast(4)))
        }
        assertCheckpointError(.truncated, ["no data"]) { try load([UInt8]()) }
    }

    func testTruncatedFileOnDisk() throws {
        let dir = try Repo.temporaryDirectory("ckpt-trunc")
        let path = dir + "/cut.pth"
        let bytes = try Fixtures.bytes("mmdet.pth")
        try Data(bytes.prefix(bytes.count - 100)).write(to: URL(fileURLWithPath: path))
        assertCheckpointError(.truncated, [path, "end-of-central-directory"]) { try Checkpoint.load(path) }
        try Data().write(to: URL(fileURLWithPath: path))
        assertCheckpointError(.truncated, [path, "empty"]) { try Checkpoint.load(path) }
        assertCheckpointError(.io, ["cannot open", "nope.pth"]) { try Checkpoint.load(dir + "/nope.pth") }
        assertCheckpointError(.io, ["not a regular file"]) { try Checkpoint.load(dir) }
    }

    func testWrongMagicAndUnknownFormats() throws {
        var legacy = try Fixtures.bytes("module.legacy.pth")
        legacy[5] ^= 0xff  // inside the pickled magic number
        assertCheckpointError(.unrecognizedFormat, ["magic number", "byte 0"]) { try load(legacy) }
        assertCheckpointError(.unrecognizedFormat, ["first bytes (de ad be ef", "neither"]) {
            try load([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6])
        }
        var tar = [UInt8](repeating: 0, count: 600)
        tar[257..<262] = ArraySlice("ustar".utf8)
        assertCheckpointError(.unsupported, ["tar-format"]) { try load(tar) }
        var proto = try Fixtures.bytes("module.legacy.pth")
        proto[18] = 0xea  // protocol 1001 → 1002
        assertCheckpointError(.unsupported, ["legacy protocol version 1002", "byte 15"]) { try load(proto) }
    }

    // MARK: tensors that do not fit their storage

    func testStorageShorterThanTensor() {
        assertCheckpointError(.corrupt, ["key 'w'", "reaches element 9", "storage '0' has 5 elements"]) {
            try self.load(self.legacyTensor(numel: 5, offset: 0, shape: [10], strides: [1]))
        }
        // the data section holds fewer elements than the pickle declares
        assertCheckpointError(.corrupt, ["storage '0' has 3 elements in the data section but 5 in the pickle"]) {
            try self.load(self.legacyTensor(numel: 5, dataCount: 3, dataBytes: 12, offset: 0, shape: [3], strides: [1]))
        }
    }

    func testOffsetsAndStridesOutOfBounds() {
        assertCheckpointError(.corrupt, ["key 'w'", "storage offset 5", "reaches element 5"]) {
            try self.load(self.legacyTensor(numel: 5, offset: 5, shape: [1], strides: [1]))
        }
        assertCheckpointError(.corrupt, ["key 'w'", "strides [10, 1]", "reaches element 12"]) {
            try self.load(self.legacyTensor(numel: 12, offset: 0, shape: [2, 3], strides: [10, 1]))
        }
        assertCheckpointError(.corrupt, ["stride has a negative"]) {
            try self.load(self.legacyTensor(numel: 12, offset: 0, shape: [2, 3], strides: [-1, 1]))
        }
        assertCheckpointError(.corrupt, ["bad storage offset"]) {
            try self.load(self.legacyTensor(numel: 12, offset: -4, shape: [2], strides: [1]))
        }
        assertCheckpointError(.corrupt, ["size [2] and stride [1, 1] differ"]) {
            try self.load(self.legacyTensor(numel: 12, offset: 0, shape: [2], strides: [1, 1]))
        }
        // a valid view still loads
        XCTAssertNoThrow(try self.load(self.legacyTensor(numel: 12, offset: 2, shape: [2, 3], strides: [4, 1])))
    }

    func testAbsurdSizesNeverAllocate() {
        assertCheckpointError(.limitExceeded, ["key 'w'", "too many elements"]) {
            try self.load(self.legacyTensor(numel: 4, offset: 0, shape: [1 << 62, 4], strides: [1, 1]))
        }
        assertCheckpointError(.limitExceeded, ["key 'w'", "tensor extent overflows"]) {
            try self.load(self.legacyTensor(numel: 4, offset: 0, shape: [3], strides: [Int.max / 2 + 1]))
        }
        assertCheckpointError(.limitExceeded, ["more than the limit"]) {
            try self.load(self.legacyTensor(numel: 4, offset: 0, shape: [1 << 41], strides: [0]))
        }
        // a storage of 2^40 floats declared consistently, backed by 16 bytes: refused before allocating
        assertCheckpointError(.truncated, ["storage '0' needs 4398046511104 bytes", "only 16 are left"]) {
            try self.load(self.legacyTensor(numel: 1 << 40, dataBytes: 16, offset: 0, shape: [4], strides: [1]))
        }
        assertCheckpointError(.limitExceeded, ["storage '0' size overflows"]) {
            try self.load(self.legacyTensor(numel: 1 << 62, dataBytes: 16, offset: 0, shape: [4], strides: [1]))
        }
        var deep = PickleAssembler()
        deep.op(0x5d)
        deep.op(0x4a, 0xff, 0xff, 0xff, 0x7f)
        assertCheckpointError(.limitExceeded, ["tensor with 65 dimensions"]) {
            let main = PickleAssembler.dict { p in
                p.str("w")
                p.tensor(key: "0", numel: 1, offset: 0, shape: [Int](repeating: 1, count: 65), strides: [Int](repeating: 1, count: 65))
            }
            return try self.load(legacyFile(main: main, keys: ["0"], storages: [(1, floatBytes([1]))]))
        }
    }

    // MARK: structures

    func testDeeplyNestedStructures() throws {
        var tuples = PickleAssembler()
        tuples.op(0x4e)
        for _ in 0..<100_000 { tuples.op(0x85) }  // ((((None,),),),…)
        assertCheckpointError(.limitExceeded, ["nested deeper than 100 levels", "byte \(mainOffset + 103)"]) { try self.loadPickle(tuples.stop()) }
        var lists = PickleAssembler()
        for _ in 0..<100_000 { lists.op(0x5d) }
        for _ in 0..<99_999 { lists.op(0x61) }
        assertCheckpointError(.limitExceeded, ["nested deeper than 100 levels"]) { try self.loadPickle(lists.stop()) }
        // the same inside a zip archive
        assertCheckpointError(.limitExceeded, ["record 'module/data.pkl'", "nested deeper"]) {
            try self.load(try self.zipWithPickle(tuples.stop()))
        }
        var options = CheckpointReadOptions()
        options.maxDepth = 1000
        var ok = PickleAssembler()
        ok.op(0x4e)
        for _ in 0..<500 { ok.op(0x85) }
        XCTAssertNoThrow(try loadPickle(ok.stop(), options))
    }

    func testRecursiveStructures() {
        var selfList = PickleAssembler()
        selfList.op(0x5d, 0x71, 0x00, 0x68, 0x00, 0x61)  // l = []; l.append(l)
        assertCheckpointError(.limitExceeded, ["recursive structure"]) { try self.loadPickle(selfList.stop()) }
        var selfDict = PickleAssembler()
        selfDict.op(0x7d, 0x71, 0x00)
        selfDict.str("me")
        selfDict.op(0x68, 0x00, 0x73)  // d = {}; d['me'] = d
        assertCheckpointError(.limitExceeded, ["recursive structure", "key 'me.me.me"]) { try self.loadPickle(selfDict.stop()) }
    }

    func testSharedReferencesCannotExplode() {
        var p = PickleAssembler()
        p.op(0x5d, 0x28, 0x4e, 0x4e, 0x65, 0x71, 0x00)  // [None, None] → memo 0
        for _ in 0..<40 { p.op(0x30, 0x5d, 0x28, 0x68, 0x00, 0x68, 0x00, 0x65, 0x71, 0x00) }  // [m0, m0] → memo 0
        assertCheckpointError(.limitExceeded, ["more than 1000000 values"]) { try self.loadPickle(p.stop()) }
    }

    /// A 1 MB string used a hundred thousand times (as a dict key, or as a list item) is refused quickly.
    func testRepeatedLargeStringsAreBounded() {
        let big = String(repeating: "k", count: 1 << 20)
        var keys = PickleAssembler()
        keys.op(0x7d)
        keys.str(big)
        keys.op(0x71, 0x00, 0x4e, 0x73)
        for _ in 0..<100_000 { keys.op(0x68, 0x00, 0x4e, 0x73) }
        let t0 = Date()
        assertCheckpointError(.limitExceeded, ["hashing work"]) { try self.loadPickle(keys.stop()) }
        var items = PickleAssembler()
        items.op(0x5d, 0x28)
        items.str(big)
        items.op(0x71, 0x00)
        for _ in 0..<100_000 { items.op(0x68, 0x00) }
        items.op(0x65)
        assertCheckpointError(.limitExceeded, ["more than 1000000 values"]) { try self.loadPickle(items.stop()) }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
    }

    func testMalformedPickles() {
        var unknown = PickleAssembler()
        unknown.op(0x4e, 0xff)
        assertCheckpointError(.unsupported, ["unsupported pickle opcode 0xff", "byte \(mainOffset + 3)"]) { try self.loadPickle(unknown.stop()) }
        var inst = PickleAssembler()
        inst.op(0x69)
        assertCheckpointError(.unsupported, ["(INST)"]) { try self.loadPickle(inst.stop()) }
        assertCheckpointError(.corrupt, ["stack underflow", "byte \(mainOffset + 2)"]) { try self.loadPickle([0x80, 0x02, 0x2e]) }
        assertCheckpointError(.corrupt, ["memo entry 5 read before it was stored"]) { try self.loadPickle([0x80, 0x02, 0x68, 0x05, 0x2e]) }
        assertCheckpointError(.truncated, ["without a STOP"]) { try self.loadPickle([0x80, 0x02, 0x4e]) }
        assertCheckpointError(.truncated, ["pickle ends inside a string"]) { try self.loadPickle([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41]) }
        assertCheckpointError(.corrupt, ["unhashable (or over-large) dict key of type list"]) {
            try self.loadPickle([0x80, 0x02, 0x7d, 0x5d, 0x4e, 0x73, 0x2e])
        }
        assertCheckpointError(.corrupt, ["not valid UTF-8"]) { try self.loadPickle([0x80, 0x02, 0x8c, 0x01, 0xff, 0x2e]) }
        assertCheckpointError(.unsupported, ["pickle protocol 6"]) { try self.loadPickle([0x80, 0x06, 0x4e, 0x2e]) }
    }

    // MARK: globals

    func testForeignGlobalsAreRefusedAndNeverRun() throws {
        let marker = try Repo.temporaryDirectory("pickle-globals") + "/pwned"
        for (module, name) in [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                               ("torch", "load"), ("__builtin__", "exec")] {
            var p = PickleAssembler()
            p.global(module, name)
            p.str("touch \(marker)")
            p.op(0x85, 0x52)
            let pickle = p.stop()
            let full = "\(module).\(name)"
            assertCheckpointError(.forbiddenGlobal, ["global '\(full)' is not allowed", "nothing was executed", "byte \(mainOffset + 2)"]) {
                try self.load(legacyFile(main: pickle, keys: [], storages: []))
            }
            assertCheckpointError(.forbiddenGlobal, ["'\(full)'", "record 'module/data.pkl'"]) {
                try self.load(try self.zipWithPickle(pickle))
            }
        }
        var stackGlobal = PickleAssembler()
        stackGlobal.op(0x8c, 8)
        stackGlobal.b += Array("builtins".utf8)
        stackGlobal.op(0x8c, 4)
        stackGlobal.b += Array("eval".utf8)
        stackGlobal.op(0x93)
        assertCheckpointError(.forbiddenGlobal, ["'builtins.eval'"]) { try self.loadPickle(stackGlobal.stop()) }
        assertCheckpointError(.unsupported, ["torch.ComplexFloatStorage is not supported"]) {
            let main = PickleAssembler.dict { p in
                p.str("w")
                p.tensor(storageType: "ComplexFloatStorage", key: "0", numel: 1, offset: 0, shape: [1], strides: [1])
            }
            return try self.load(legacyFile(main: main, keys: ["0"], storages: [(1, floatBytes([1, 2]))]))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    // MARK: byte order

    func testBigEndianIsRefused() throws {
        let main = PickleAssembler.dict { p in p.str("a"); p.op(0x4e) }
        assertCheckpointError(.bigEndian, ["little_endian=False", "big-endian"]) {
            try self.load(legacyFile(main: main, keys: [], storages: [], littleEndian: false))
        }
        var recs = try records(try Fixtures.bytes("module.pth"))
        let i = try XCTUnwrap(recs.firstIndex { $0.name.hasSuffix("/byteorder") })
        recs[i].data = Array("big".utf8)
        assertCheckpointError(.bigEndian, ["record 'module/byteorder'", "says 'big'"]) { try self.load(try self.zipBytes(recs)) }
        recs[i].data = Array("middle".utf8)
        assertCheckpointError(.corrupt, ["byteorder record says 'middle'"]) { try self.load(try self.zipBytes(recs)) }
    }

    // MARK: zip container

    func testZipContainerProblems() throws {
        let good = try Fixtures.bytes("module.pth")
        // flip a byte of a storage record: the CRC check names the record
        let recs = try records(good)
        let src = ByteSource(copying: good)
        let zip = try ZipArchive(src)
        let data0 = try XCTUnwrap(zip.entry("module/data/0"))
        let range = try zip.dataRange(data0)
        var flipped = good
        flipped[range.lowerBound + 3] ^= 0x40
        var crc = CheckpointReadOptions()
        crc.verifyChecksums = true
        assertCheckpointError(.corrupt, ["record 'module/data/0'", "CRC-32 mismatch", "byte \(range.lowerBound)"]) {
            try self.load(flipped, crc)
        }
        XCTAssertNoThrow(try load(flipped), "by default storage records are not checked, as in torch.load")
        // data.pkl is always checked
        let pkl = try XCTUnwrap(zip.entry("module/data.pkl"))
        var badPickle = good
        badPickle[try zip.dataRange(pkl).lowerBound + 20] ^= 0x01
        assertCheckpointError(.corrupt, ["record 'module/data.pkl'", "CRC-32 mismatch"]) { try self.load(badPickle) }

        // a compressed entry (method 8 in the central directory)
        var compressed = good
        let cd = try XCTUnwrap(findCentral(compressed, name: "module/data/0"))
        compressed[cd + 10] = 8
        assertCheckpointError(.unsupported, ["record 'module/data/0'", "compressed zip entry (method 8)"]) { try self.load(compressed) }

        // a missing storage record
        let without = try zipBytes(recs.filter { $0.name != "module/data/1" })
        assertCheckpointError(.corrupt, ["record 'module/data/1' of storage '1' is missing"]) { try self.load(without) }

        // a storage record of the wrong size
        var short = recs
        let j = try XCTUnwrap(short.firstIndex { $0.name == "module/data/0" })
        short[j].data.removeLast(4)
        assertCheckpointError(.corrupt, ["record 'module/data/0'", "record has 428 bytes, storage '0' needs 432 (108 × float32)"]) {
            try self.load(try self.zipBytes(short))
        }

        assertCheckpointError(.corrupt, ["no <root>/data.pkl"]) { try self.load(try self.zipBytes([("x/other", [1])])) }
        assertCheckpointError(.unsupported, ["TorchScript"]) {
            try self.load(try self.zipBytes([("m/constants.pkl", [1]), ("m/code/m.py", [1])]))
        }
        // a central directory that claims more entries than fit
        var eocdBad = good
        let e = eocdBad.count - 22
        eocdBad[e + 10] = 0xff
        eocdBad[e + 11] = 0xff
        var noZip64 = eocdBad
        noZip64[e - 20] = 0  // break the zip64 locator signature so the 16-bit count is used
        assertCheckpointError(.corrupt, ["65535 entries cannot fit"]) { try self.load(noZip64) }
    }

    private func findCentral(_ b: [UInt8], name: String) -> Int? {
        let n = Array(name.utf8)
        for i in 0..<(b.count - 46) where b[i] == 0x50 && b[i + 1] == 0x4b && b[i + 2] == 1 && b[i + 3] == 2 {
            let len = Int(b[i + 28]) | Int(b[i + 29]) << 8
            if len == n.count, Array(b[(i + 46)..<(i + 46 + len)]) == n { return i }
        }
        return nil
    }

    // MARK: legacy container

    func testLegacyStorageListProblems() {
        let main = PickleAssembler.dict { p in
            p.str("w")
            p.tensor(key: "0", numel: 2, offset: 0, shape: [2], strides: [1])
        }
        assertCheckpointError(.corrupt, ["storage 'zz' is listed but no tensor references it"]) {
            try self.load(legacyFile(main: main, keys: ["zz"], storages: [(2, floatBytes([1, 2]))]))
        }
        assertCheckpointError(.corrupt, ["key 'w'", "storage '0' has no data"]) {
            try self.load(legacyFile(main: main, keys: [], storages: []))
        }
        assertCheckpointError(.corrupt, ["storage '0' is listed twice"]) {
            try self.load(legacyFile(main: main, keys: ["0", "0"], storages: [(2, floatBytes([1, 2])), (2, floatBytes([1, 2]))]))
        }
        let twice = PickleAssembler.dict { p in
            p.str("a"); p.tensor(key: "0", numel: 2, offset: 0, shape: [2], strides: [1])
            p.str("b"); p.tensor(storageType: "LongStorage", key: "0", numel: 2, offset: 0, shape: [2], strides: [1])
        }
        assertCheckpointError(.corrupt, ["storage '0' is declared as 2 × float32 and as 2 × int64"]) {
            try self.load(legacyFile(main: twice, keys: ["0"], storages: [(2, floatBytes([1, 2]))]))
        }
    }

    // MARK: safetensors

    private func safetensors(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian, Array.init) + h + data
    }

    func testSafetensorsProblems() {
        assertCheckpointError(.unsupported, ["key 'x'", "dtype F8_E4M3 is not supported"]) {
            try self.load(self.safetensors(#"{"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        }
        assertCheckpointError(.corrupt, ["key 'x'", "data_offsets [0, 64] lie outside the 4 data bytes"]) {
            try self.load(self.safetensors(#"{"x":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}}"#, data: [0, 0, 0, 0]))
        }
        assertCheckpointError(.corrupt, ["key 'x'", "hold 4 bytes, shape [2] × F32 needs 8"]) {
            try self.load(self.safetensors(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        }
        assertCheckpointError(.corrupt, ["JSON header", "expected ',' or '}'"]) {
            try self.load(self.safetensors(#"{"x":{"dtype":"F32" "shape":[2]}}"#))
        }
        assertCheckpointError(.limitExceeded, ["header of 549755813888 bytes (limit"]) { try self.load(self.safetensors("{}", length: 1 << 39)) }
        assertCheckpointError(.unrecognizedFormat, ["neither"]) { try self.load(self.safetensors("{}", length: UInt64.max)) }
        assertCheckpointError(.truncated, ["header of 1000000 bytes, but only 2 follow"]) {
            try self.load(self.safetensors("{}", length: 1_000_000))
        }
        assertCheckpointError(.corrupt, ["nested deeper than 64"]) {
            try self.load(self.safetensors("{\"__metadata__\":" + String(repeating: "[", count: 200_000)))
        }
        assertCheckpointError(.limitExceeded, ["too many elements"]) {
            try self.load(self.safetensors(#"{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#))
        }
        XCTAssertNoThrow(try load(safetensors(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0x80, 0x3f])))
    }

    func testStateDictLookupErrors() throws {
        let c = try Checkpoint.load(try Fixtures.path("misc.pth"))
        assertCheckpointError(.invalidArgument, ["no state dict at 'state_dict'", "top-level keys: ints, big"]) { try c.stateDict() }
        assertCheckpointError(.invalidArgument, ["key 'text'", "'text' is a str"]) { try c.stateDict(at: "text") }
        assertCheckpointError(.invalidArgument, ["key 'nested.a'", "list, not a tensor"]) { try c.stateDict(at: "nested") }
    }
}
