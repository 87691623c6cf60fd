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

    /// `statisticsSync` (data-parallel training with `--sync-ghm-bins`): two halves of a batch, each summing the other's
    /// bin counts and valid count into its own, give losses that recombine (each × its own valid count) into the loss
    /// of the whole batch in one call, for GHM-C and GHM-R; with momentum both halves end with the whole batch's EMA.
    func testStatisticsSyncEqualsOneHistogramOverTheWholeBatch() throws {
        try Torch.manualSeed(7)
        let m = 3000
        // the halves differ in distribution (as two ranks' images do), so their own histograms differ
        let logits = try Tensor.cat([try Tensor.randn([m / 2, 20]) * 2 - 3, try Tensor.randn([m / 2, 20]) * 4])
        let labels = try Tensor.randint(0, 21, [m])
        let lw = try (Tensor.rand([m]) .> 0.1).to(.float32)
        let deltas = try Tensor.cat([try Tensor.randn([m / 2, 4]) * 0.3, try Tensor.randn([m / 2, 4]) * 0.02]), targets = try Tensor.randn([m, 4]) * 0.3
        let rw = try (Tensor.rand([m, 1]) .> 0.9).to(.float32).expand([m, 4]).contiguous()
        let h = m / 2
        func half(_ t: Tensor, _ i: Int) throws -> Tensor { try t.narrow(dim: 0, start: i * h, length: h) }
        for momentum in [0.0, 0.75] {
            // the statistics each half contributes: recorded by a sync that leaves them as they are
            final class Seen { var t: Tensor? }
            func stats(_ run: (@escaping GHMStatisticsSync) throws -> Void) throws -> Tensor {
                let seen = Seen()
                try run { v throws(TorchError) in seen.t = try v.clone() }
                return try XCTUnwrap(seen.t)
            }
            func cls(_ i: Int, _ sync: GHMStatisticsSync?) throws -> (Double, GHMC) {
                let c = try GHMC(bins: 30, momentum: momentum)
                c.statisticsSync = sync
                let loss = try c(try half(logits, i), labels: try half(labels, i), labelWeights: try half(lw, i), avgFactor: 1)
                return (try loss.item(), c)
            }
            func reg(_ i: Int, _ sync: GHMStatisticsSync?) throws -> (Double, GHMR) {
                let r = try GHMR(mu: 0.02, bins: 10, momentum: momentum)
                r.statisticsSync = sync
                let loss = try r(try half(deltas, i), target: try half(targets, i), weights: try half(rw, i), avgFactor: 1)
                return (try loss.item(), r)
            }
            let cs = try (0..<2).map { i in try stats { _ = try cls(i, $0) } }
            let rs = try (0..<2).map { i in try stats { _ = try reg(i, $0) } }
            let c0 = try cls(0) { v throws(TorchError) in try v.add_(cs[1]) }, c1 = try cls(1) { v throws(TorchError) in try v.add_(cs[0]) }
            let r0 = try reg(0) { v throws(TorchError) in try v.add_(rs[1]) }, r1 = try reg(1) { v throws(TorchError) in try v.add_(rs[0]) }
            let whole = try GHMC(bins: 30, momentum: momentum), wholeR = try GHMR(mu: 0.02, bins: 10, momentum: momentum)
            let lc = try whole(logits, labels: labels, labelWeights: lw, avgFactor: 1).item()
            let lr = try wholeR(deltas, target: targets, weights: rw, avgFactor: 1).item()
            // tot = the valid count (GHM-C: label weights > 0 per class element; GHM-R: the weights' sum)
            let (t0, t1) = (try cs[0][30].item(), try cs[1][30].item())
            assertClose([(c0.0 * t0 + c1.0 * t1) / (t0 + t1)], [lc], atol: 0, rtol: 1e-5, "GHMC, momentum \(momentum)")
            let (u0, u1) = (try rs[0][10].item(), try rs[1][10].item())
            assertClose([(r0.0 * u0 + r1.0 * u1) / (u0 + u1)], [lr], atol: 0, rtol: 1e-5, "GHMR, momentum \(momentum)")
            if momentum > 0 {
                assertClose(try c0.1.accSum!.doubles(), try whole.accSum!.doubles(), atol: 0, rtol: 1e-6, "GHMC acc_sum")
                assertClose(try c1.1.accSum!.doubles(), try whole.accSum!.doubles(), atol: 0, rtol: 1e-6, "GHMC acc_sum")
                assertClose(try r1.1.accSum!.doubles(), try wholeR.accSum!.doubles(), atol: 0, rtol: 1e-6, "GHMR acc_sum")
            }
            // without the sync, each half's own histogram gives a different total
            let own = try (cls(0, nil).0 * t0 + cls(1, nil).0 * t1) / (t0 + t1)
            XCTAssertGreaterThan(abs(own - lc) / lc, 1e-4, "far above float32 rounding")
            let ownR = try (reg(0, nil).0 * u0 + reg(1, nil).0 * u1) / (u0 + u1)
            XCTAssertGreaterThan(abs(ownR - lr) / lr, 1e-4, "far above float32 rounding")
        }
        let port = try GHMC(bins: 30, implementation: .port)
        port.statisticsSync = { _ throws(TorchError) in }
        XCTAssertThrowsError(try port(try half(logits, 0), labels: try half(labels, 0), labelWeights: try half(lw, 0), avgFactor: 1))
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
