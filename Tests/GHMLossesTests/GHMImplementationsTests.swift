import TestSupport
import Torch
import XCTest

@testable import GHMLosses

/// The port (mmdet's bin loop) and the fused one-pass histogram agree within 1e-6 relative on values, gradients and
/// `acc_sum`, on detector-sized inputs with the config's settings, over successive calls.
final class GHMImplementationsTests: XCTestCase {
    func testPortAndFusedAgree() throws {
        try Torch.manualSeed(42)
        let c = try (GHMC(bins: 30, momentum: 0.75, implementation: .port), GHMC(bins: 30, momentum: 0.75, implementation: .fused))
        let r = try (GHMR(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, implementation: .port),
                     GHMR(mu: 0.02, bins: 10, momentum: 0.7, lossWeight: 10, implementation: .fused))
        for call in 0..<4 {
            let m = 9 * 40 * 50
            let logits = try Tensor.randn([m, 80]) * 2 - 4
            let labels = try Tensor.randint(0, 81, [m])
            let lw = try (Tensor.rand([m]) .> 0.05).to(.float32)
            let p1 = try logits.clone().requiresGrad_(), p2 = try logits.clone().requiresGrad_()
            let l1 = try c.0(p1, labels: labels, labelWeights: lw, avgFactor: 10)
            let l2 = try c.1(p2, labels: labels, labelWeights: lw, avgFactor: 10)
            try l1.backward()
            try l2.backward()
            assertClose([try l2.item()], [try l1.item()], atol: 0, rtol: 1e-6, "GHMC loss, call \(call)")
            let g1 = try XCTUnwrap(p1.grad), g2 = try XCTUnwrap(p2.grad)
            let gmax = try g1.abs().max().item()
            assertClose(try g2.doubles(), try g1.doubles(), atol: 1e-6 * gmax, rtol: 1e-6, "GHMC grad, call \(call)")
            assertClose(try c.1.accSum!.doubles(), try c.0.accSum!.doubles(), atol: 0, rtol: 1e-6, "GHMC acc_sum")

            let deltas = try Tensor.randn([m, 4]) * 0.3
            let targets = try Tensor.randn([m, 4]) * 0.3
            let w = try (Tensor.rand([m, 1]) .> 0.97).to(.float32).expand([m, 4]).contiguous()
            let q1 = try deltas.clone().requiresGrad_(), q2 = try deltas.clone().requiresGrad_()
            let b1 = try r.0(q1, target: targets, weights: w, avgFactor: 10)
            let b2 = try r.1(q2, target: targets, weights: w, avgFactor: 10)
            try b1.backward()
            try b2.backward()
            assertClose([try b2.item()], [try b1.item()], atol: 0, rtol: 1e-6, "GHMR loss, call \(call)")
            let h1 = try XCTUnwrap(q1.grad), h2 = try XCTUnwrap(q2.grad)
            assertClose(try h2.doubles(), try h1.doubles(), atol: 1e-6 * (try h1.abs().max().item()), rtol: 1e-6, "GHMR grad")
            assertClose(try r.1.accSum!.doubles(), try r.0.accSum!.doubles(), atol: 0, rtol: 1e-6, "GHMR acc_sum")
        }
    }

    func testBuffersAsMMDetBuildsThem() throws {
        let c = try GHMC(bins: 30, momentum: 0.75)
        XCTAssertEqual(c.stateDict().map(\.key), ["edges", "acc_sum"])
        XCTAssertEqual(try c.edges.floats().count, 31)
        XCTAssertEqual(try c.edges.floats().last, Float(1) + Float(1e-6))
        XCTAssertEqual(try GHMR(bins: 10, momentum: 0.7).edges.floats().last, 1000)
        XCTAssertEqual(try GHMC(bins: 10, momentum: 0).stateDict().map(\.key), ["edges"], "no acc_sum without momentum")
        XCTAssertThrowsError(try GHMC(useSigmoid: false))
    }
}
