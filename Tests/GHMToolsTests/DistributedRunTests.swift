import Foundation
import GHMTools
import Support
import TestSupport
import Torch
import XCTest

/// Collectives across real processes: the ghm binary's hidden worker mode (`ghm bench dist-worker`), two local ranks
/// started with torchrun's variables. Needs `swift build` first (the binary) and a shim built with Gloo.
final class DistributedRunTests: XCTestCase {
    let ghm = Repo.path(".build/debug/ghm")

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessGroup.availability.gloo, ProcessGroup.availability.reason)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: ghm), "build the ghm binary first (swift build)")
    }

    func workers(_ extra: [String], deadline: Double = 60) throws -> [DistBenchmark.Worker] {
        try DistBenchmark.launch(ghm, ["bench", "dist-worker", "--timeout", "5"] + extra, world: 2,
                                 port: try DistBenchmark.freePort(), deadline: deadline)
    }

    /// Sum, mean, broadcast from rank 1 and barrier over float32, float64 and int64 tensors of several shapes, exact.
    func testCollectivesAreExactAcrossTwoProcesses() throws {
        let ws = try workers(["--verify"])
        for w in ws {
            XCTAssertEqual(w.status, 0, "rank \(w.rank): \(w.stderr)")
            for line in ["rank \(w.rank) of 2 joined (gloo", "all_reduce sum: 6 tensors exact",
                         "all_reduce mean: 4 tensors exact", "broadcast from rank 1: 6 tensors exact", "barrier: passed"] {
                XCTAssertTrue(w.stdout.contains(line), "rank \(w.rank) lacks '\(line)':\n\(w.stdout)")
            }
        }
    }

    /// The benchmark's path with a small size: the sums are checked exactly inside, rank 0 reports a time.
    func testBenchWorkersSmall() throws {
        let ws = try workers(["--floats", "3000000", "--iterations", "2"])
        for w in ws { XCTAssertEqual(w.status, 0, "rank \(w.rank): \(w.stderr)") }
        let obj = try JSONSerialization.jsonObject(with: Data(ws[0].stdout.split(separator: "\n").last!.utf8))
        let d = try XCTUnwrap(obj as? [String: Any])
        XCTAssertEqual(d["exact"] as? Bool, true)
        XCTAssertEqual(d["tensors"] as? Int, 5)  // 2,359,296 + 512 + 589,824 + 256 + 50,112
        XCTAssertGreaterThan(d["median_ms"] as? Double ?? 0, 0)
    }

    /// A rank killed (SIGKILL) before the first collective: the other fails with a message naming the collective
    /// and the dead peer, within the 5 s timeout; it neither hangs nor aborts. Once for each rank (rank 0 hosts the store).
    func testKilledRankStopsTheOtherCleanly() throws {
        for dead in [1, 0] {
            let t0 = monotonicSeconds()
            let ws = try workers(["--verify", "--crash-rank", "\(dead)"], deadline: 30)
            let elapsed = monotonicSeconds() - t0
            let other = ws[1 - dead]
            XCTAssertEqual(ws[dead].status, SIGKILL, "rank \(dead) killed itself")
            XCTAssertEqual(other.status, 1, "rank \(other.rank) exits with 1: \(other.stderr)")
            XCTAssertTrue(other.stderr.contains("all_reduce failed on rank \(other.rank) of 2"), other.stderr)
            // Gloo's words for a dead peer: "Connection closed by peer" or "Connection reset by peer".
            XCTAssertTrue(other.stderr.contains("by peer") || other.stderr.lowercased().contains("timed out"), other.stderr)
            XCTAssertLessThan(elapsed, 25, "no hang: the collective fails within its timeout")
        }
    }

    /// Gloo's types cross only as shared_ptrs made in libtorch: the shim defines no gloo:: symbol of its own.
    func testShimDefinesNoGlooSymbol() throws {
        let lib = Repo.path(".build-shim/lib/libghm_torch.so")
        for flags in [["-DC"], ["-C"]] {
            let r = try runProcess("/usr/bin/nm", flags + ["--defined-only", lib])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("gt_dist_all_reduce_sum"), "the dist entry points are in the shim")
            let gloo = r.stdout.split(separator: "\n").filter { $0.contains("gloo::") }
            XCTAssertEqual(gloo, [], "nm \(flags) finds gloo:: symbols defined in the shim")
        }
    }
}
