import CGHMTorch
import Foundation
import TestSupport
import Torch
import XCTest

/// ProcessGroup in one process: torchrun's variables are checked by name, arguments are checked, and a group of one
/// rank runs every collective. Groups of several processes: Tests/GHMToolsTests/DistributedRunTests.swift.
final class DistributedTests: XCTestCase {
    let full = ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29555"]

    func testEnvironmentIsRead() throws {
        let c = try ProcessGroup.Config(environment: full)
        XCTAssertEqual([c.rank, c.worldSize, c.localRank, c.masterPort], [1, 2, 0, 29555])
        XCTAssertEqual(c.masterAddress, "127.0.0.1")
        var noLocal = full
        noLocal["LOCAL_RANK"] = nil
        XCTAssertEqual(try ProcessGroup.Config(environment: noLocal).localRank, 1, "LOCAL_RANK defaults to RANK")
    }

    func testMissingOrInvalidVariableIsNamed() {
        func message(_ env: [String: String]) -> String {
            do {
                _ = try ProcessGroup.Config(environment: env)
                return "no error"
            } catch {
                return error.description
            }
        }
        for name in ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"] {
            var env = full
            env[name] = nil
            XCTAssertTrue(message(env).contains("\(name) is not set"), message(env))
        }
        for (name, bad) in [("MASTER_PORT", "70000"), ("MASTER_PORT", "x"), ("RANK", "2"), ("WORLD_SIZE", "0"),
                            ("LOCAL_RANK", "-1")] {
            var env = full
            env[name] = bad
            XCTAssertTrue(message(env).contains("\(name)='\(bad)' is invalid"), message(env))
        }
        var empty = full
        empty["MASTER_ADDR"] = ""
        XCTAssertTrue(message(empty).contains("MASTER_ADDR is empty"))
    }

    func testAvailability() {
        let a = ProcessGroup.availability
        if !a.gloo { XCTAssertFalse(a.reason.isEmpty, "without Gloo the reason is given") }
        if !a.nccl { XCTAssertFalse(a.reason.isEmpty, "without NCCL the reason is given") }
    }

    func testBadArgumentsAreErrors() throws {
        try XCTSkipUnless(ProcessGroup.availability.gloo, ProcessGroup.availability.reason)
        XCTAssertThrowsError(try ProcessGroup(rank: 2, worldSize: 2, masterAddress: "127.0.0.1", masterPort: 29556)) {
            XCTAssertTrue("\($0)".contains("rank 2 is not in [0, 2)"), "\($0)")
        }
        XCTAssertThrowsError(try ProcessGroup(rank: 0, worldSize: 1, masterAddress: "127.0.0.1", masterPort: 0)) {
            XCTAssertTrue("\($0)".contains("master port 0"), "\($0)")
        }
    }

    /// The C API: a NULL group handle or tensor array is an error that names the function and the argument.
    func testNullArgumentsAreErrors() throws {
        try XCTSkipUnless(ProcessGroup.availability.gloo, ProcessGroup.availability.reason)
        let null = gt_process_group(ptr: nil)
        XCTAssertNotEqual(gt_dist_barrier(null), 0)
        XCTAssertEqual(String(cString: gt_last_error()), "gt_dist_barrier: pg is a NULL process group handle")
        XCTAssertNotEqual(gt_dist_all_reduce_sum(null, nil, 0), 0)
        XCTAssertEqual(String(cString: gt_last_error()), "gt_dist_all_reduce_sum: pg is a NULL process group handle")
        XCTAssertNotEqual(gt_dist_init(0, 1, nil, 29557, 1000, nil), 0)
        XCTAssertEqual(String(cString: gt_last_error()), "gt_dist_init: master_addr is NULL")
    }

    /// A group of one: the sum and the broadcast leave the values, the mean divides by 1, int64 works, the barrier
    /// returns; a bad root and an integer mean are errors and leave the tensors as they were.
    func testGroupOfOne() throws {
        try XCTSkipUnless(ProcessGroup.availability.gloo, ProcessGroup.availability.reason)
        var g: ProcessGroup?
        for _ in 0..<5 where g == nil {
            g = try? ProcessGroup(rank: 0, worldSize: 1, masterAddress: "127.0.0.1",
                                  masterPort: Int.random(in: 30000...60000), timeout: .seconds(10))
        }
        let group = try XCTUnwrap(g)
        XCTAssertEqual(group.rank, 0)
        XCTAssertEqual(group.worldSize, 1)
        XCTAssertTrue(group.backend.hasPrefix("gloo"), group.backend)
        let a = try Tensor.arange(12).to(.float32).view([3, 4])
        let b = try Tensor.arange(5)
        let c = try Tensor.arange(12).to(.float64).view([3, 4]).transpose(0, 1)  // not contiguous
        let want = try [a, b, c].map { try $0.clone() }
        try group.allReduceSum([a, b, c])
        try group.broadcast([a, b, c], root: 0)
        try group.allReduceMean([a, c])
        try group.barrier()
        for (x, y) in zip([a, b, c], want) { XCTAssertEqual(try (x.to(.float64) - y.to(.float64)).abs().max().item(), 0) }
        XCTAssertThrowsError(try group.broadcast([a], root: 1)) { XCTAssertTrue("\($0)".contains("root 1"), "\($0)") }
        XCTAssertThrowsError(try group.allReduceMean([a, b])) { XCTAssertTrue("\($0)".contains("tensor 1 is"), "\($0)") }
        XCTAssertEqual(try (b - want[1]).abs().max().item(), 0)
    }
}
