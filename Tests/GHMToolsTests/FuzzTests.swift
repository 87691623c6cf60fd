import Foundation
import TestSupport
import XCTest
@testable import GHMTools
@testable import TorchCheckpoint

/// Mutated real checkpoints: every input loads or is refused with a `CheckpointError`; none traps or hangs.
///
/// The normal suite runs a few thousand inputs. `tools/fuzz_checkpoint.sh` (`make fuzz`) runs this same test with
/// `GHM_FUZZ_ITERATIONS=100000` (and `GHM_FUZZ_SEED`, `GHM_FUZZ_CRASH_FILE`, which holds the input being tried, so a
/// crash leaves the offending file behind).
final class FuzzTests: XCTestCase {
    func testMutatedCheckpointsNeverCrash() throws {
        let env = ProcessInfo.processInfo.environment
        let iterations = env["GHM_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 10_000
        let seed = env["GHM_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_240_601
        let crashFile = env["GHM_FUZZ_CRASH_FILE"]
        var seeds: [[UInt8]] = []
        for name in ["module", "mmdet", "dtypes", "views", "misc"] {
            seeds.append(try CheckpointFixtures.bytes(name + ".pth"))
            seeds.append(try CheckpointFixtures.bytes(name + ".legacy.pth"))
        }
        seeds.append(try CheckpointFixtures.bytes("dtypes.safetensors"))
        // files written by Swift too
        seeds.append(try CheckpointWriter.encode(try Checkpoint.load(try CheckpointFixtures.path("views.legacy.pth")).root))
        seeds.append(try Safetensors.encode(try Checkpoint.load(try CheckpointFixtures.path("module.pth")).stateDict().ordered,
                                            metadata: ["format": "pt"]))
        var fuzzer = CheckpointFuzzer(seeds: seeds, seed: seed)
        let report = fuzzer.run(iterations: iterations, crashFile: crashFile) { r in
            if iterations > 10_000 && r.iterations % 10_000 == 0 { print("fuzz: \(r)") }
        }
        print("fuzz (seed \(seed)): \(report)")
        XCTAssertEqual(report.iterations, iterations)
        XCTAssertEqual(report.failures.count, 0, report.description)
        XCTAssertGreaterThan(report.loaded, iterations / 50, "mutations should not all be trivially refused")
    }
}
