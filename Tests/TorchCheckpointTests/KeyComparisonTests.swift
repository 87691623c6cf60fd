import TestSupport
import Torch
@testable import TorchCheckpoint
import XCTest

final class KeyComparisonTests: XCTestCase {
    /// Python writes the TSV of a module's state dict (the format of the spec's key list); the Swift-read state dict
    /// matches it, and every kind of difference is reported by key.
    func testAgainstPythonWrittenKeyList() throws {
        let path = try Fixtures.path("mmdet.legacy.pth")
        let out = try python("""
            sd = torch.load(\(String(reflecting: path)))['state_dict']
            out['tsv'] = '# key, shape, dtype\\n' + '\\n'.join(
                k + '\\t' + ('x'.join(str(d) for d in v.shape) if v.dim() else 'scalar') + '\\t' + str(v.dtype).replace('torch.', '')
                for k, v in sd.items()) + '\\n'
            """)
        let tsv = try XCTUnwrap(out["tsv"] as? String)
        let expected = try KeyExpectation.parseTSV(tsv)
        XCTAssertEqual(expected.count, 10)
        XCTAssertEqual(expected[5], KeyExpectation(key: "bn1.num_batches_tracked", shape: [], dtype: .int64))
        let sd = try Checkpoint.load(path).stateDict()
        let same = compareKeys(try sd.signatures, expected: expected)
        XCTAssertTrue(same.isMatch, same.description)
        XCTAssertEqual(same.matched, 10)
        XCTAssertEqual(try CheckpointReport.keysTSV(sd) + "\n", String(tsv.drop { $0 != "\n" }.dropFirst()))

        var changed = expected
        changed.removeFirst()                                           // conv1.weight unexpected
        changed[0].shape = [5]                                          // bn1.weight shape
        changed[4].dtype = .int32                                       // num_batches_tracked dtype
        changed.append(KeyExpectation(key: "bbox_head.loss_cls.edges", shape: [31]))  // missing
        let diff = compareKeys(try sd.signatures, expected: changed)
        XCTAssertFalse(diff.isMatch)
        XCTAssertEqual(diff.missing, ["bbox_head.loss_cls.edges"])
        XCTAssertEqual(diff.unexpected, ["conv1.weight"])
        XCTAssertEqual(diff.shapeMismatches.map(\.key), ["bn1.weight"])
        XCTAssertEqual(diff.dtypeMismatches.map(\.key), ["bn1.num_batches_tracked"])
        XCTAssertEqual(diff.matched, 7)
        for f in ["missing:    bbox_head.loss_cls.edges", "unexpected: conv1.weight", "bn1.weight: expected 5, found 4",
                  "expected int32, found int64"] {
            XCTAssertTrue(diff.description.contains(f), diff.description)
        }
        // the tuple form the model issue uses
        let pairs = expected.map { (key: $0.key, shape: $0.shape) }
        XCTAssertTrue(compareKeys(try sd.signatures, expected: pairs).isMatch)
    }

    func testTSVErrorsNameTheLine() {
        assertCheckpointError(.invalidArgument, ["line 2", "bad shape"]) {
            try KeyExpectation.parseTSV("a\t3\tfloat32\nb\t3xq\tfloat32\n")
        }
        assertCheckpointError(.invalidArgument, ["line 1", "unknown dtype 'float8'"]) {
            try KeyExpectation.parseTSV("a\t3\tfloat8\n")
        }
        assertCheckpointError(.invalidArgument, ["line 1"]) { try KeyExpectation.parseTSV("just-a-key\n") }
        XCTAssertEqual(KeyExpectation.parseShape("256x2048x3x3"), [256, 2048, 3, 3])
        XCTAssertEqual(KeyExpectation.parseShape("scalar"), [])
    }
}
