import TestSupport
import Torch
import XCTest

@testable import GHMLosses

/// GHM-C and GHM-R (both implementations) against MMDetection 2.16.0's own `ghm_loss.py`, run in the mmdet
/// environment at test time: values, gradients and `acc_sum` within 1e-6 relative.
final class GHMAgainstMMDetTests: XCTestCase {
    /// Cases: (name, kind, bins, momentum, calls, special). Inputs are drawn in Python and sent back exactly.
    static let reference: [String: Any] = {
        do {
            return try mmdetPython("""
                from mmdet.models.losses.ghm_loss import GHMC, GHMR
                torch.manual_seed(0)
                def ghmc_case(name, bins, mmt, calls, M=600, C=8, special=None):
                    fn = GHMC(bins=bins, momentum=mmt, use_sigmoid=True, loss_weight=1.0)
                    for k in range(calls):
                        pred = torch.randn(M, C) * 4
                        pred[:5] = 40.0; pred[5:10] = -40.0          # saturated sigmoid: g exactly 0 or 1
                        labels = torch.randint(0, C + 1, (M,))        # C = background: all-zero target rows
                        lw = (torch.rand(M) > 0.15).float()           # some anchors ignored
                        if special == 'novalid' and k == calls - 1: lw = torch.zeros(M)
                        pred.requires_grad_(True)
                        red = 'none' if special == 'none' else None
                        loss = fn(pred, labels, lw, reduction_override=red)
                        (loss.sum() if red else loss).backward()
                        p = f'{name}.{k}.'
                        out[p + 'pred'] = pred.detach(); out[p + 'labels'] = labels; out[p + 'lw'] = lw
                        out[p + 'loss'] = loss.detach(); out[p + 'grad'] = pred.grad
                        if mmt > 0: out[p + 'acc'] = fn.acc_sum.clone()
                def ghmr_case(name, bins, mmt, calls, M=400, special=None):
                    fn = GHMR(mu=0.02, bins=bins, momentum=mmt, loss_weight=10.0)
                    for k in range(calls):
                        pred = torch.randn(M, 4) * 0.5
                        target = torch.randn(M, 4) * 0.5
                        pos = (torch.rand(M) > 0.7).float()
                        if special == 'nopos' and k == calls - 1: pos = torch.zeros(M)
                        w = pos.view(-1, 1).expand(M, 4).contiguous()
                        target = target * w                             # all-zero target rows for negatives
                        pred.requires_grad_(True)
                        red = 'none' if special == 'none' else None
                        loss = fn(pred, target, w, reduction_override=red)
                        (loss.sum() if red else loss).backward()
                        p = f'{name}.{k}.'
                        out[p + 'pred'] = pred.detach(); out[p + 'target'] = target; out[p + 'w'] = w
                        out[p + 'loss'] = loss.detach(); out[p + 'grad'] = pred.grad
                        if mmt > 0: out[p + 'acc'] = fn.acc_sum.clone()
                ghmc_case('c_plain', 10, 0.0, 1)
                ghmc_case('c_mmt', 30, 0.75, 3)
                ghmc_case('c_novalid', 30, 0.75, 2, special='novalid')
                ghmc_case('c_none', 30, 0.75, 1, special='none')
                ghmr_case('r_plain', 10, 0.0, 1)
                ghmr_case('r_mmt', 10, 0.7, 3)
                ghmr_case('r_nopos', 10, 0.7, 2, special='nopos')
                ghmr_case('r_none', 10, 0.7, 1, special='none')
                try:
                    GHMC(bins=30, momentum=0.75)(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.ones(2),
                                                 reduction_override='sum')
                    out['sum_error'] = ''
                except ValueError as e:
                    out['sum_error'] = str(e)
                """)
        } catch {
            return ["error": "\(error)"]
        }
    }()

    var ref: [String: Any] { Self.reference }

    func tensor(_ key: String, dtype: DType = .float32) throws -> Tensor {
        let t = try XCTUnwrap(PyTensor(ref[key]), "missing reference \(key): \(ref["error"] ?? "")")
        return try Tensor(t.data, shape: t.shape).to(dtype)
    }

    /// Compares within `rtol` relative to the largest reference magnitude of the tensor (elementwise for scalars).
    func check(_ t: Tensor, _ key: String, rtol: Double = 1e-6, _ what: String) throws {
        let r = try XCTUnwrap(PyTensor(ref[key]))
        let scale = Swift.max(r.data.map(Swift.abs).max() ?? 0, 1e-30)
        let ours = try t.doubles()
        assertClose(ours, r.data, atol: rtol * scale, rtol: rtol, what)
        if ours.count == r.data.count {
            let worst = zip(ours, r.data).map { Swift.abs($0 - $1) }.max() ?? 0
            print(String(format: "max |Δ| / max |ref| = %.2e  %@", worst / scale, what as NSString))
        }
    }

    func runGHMC(_ name: String, bins: Int, momentum: Double, calls: Int, none: Bool = false) throws {
        XCTAssertNil(ref["error"], "\(ref["error"] ?? "")")
        for impl in [GHMImplementation.port, .fused] {
            let fn = try GHMC(bins: bins, momentum: momentum, implementation: impl)
            for k in 0..<calls {
                let p = "\(name).\(k)."
                let pred = try tensor(p + "pred").requiresGrad_()
                let loss = try fn.forward(pred, target: tensor(p + "labels", dtype: .int64), labelWeight: tensor(p + "lw"),
                                          reductionOverride: none ? LossReduction.none : nil)
                try (none ? loss.sum() : loss).backward()
                try check(loss, p + "loss", "\(impl) \(p)loss")
                try check(try XCTUnwrap(pred.grad), p + "grad", "\(impl) \(p)grad")
                if momentum > 0 { try check(try XCTUnwrap(fn.accSum), p + "acc", "\(impl) \(p)acc_sum") }
            }
        }
    }

    func runGHMR(_ name: String, bins: Int, momentum: Double, calls: Int, none: Bool = false) throws {
        XCTAssertNil(ref["error"], "\(ref["error"] ?? "")")
        for impl in [GHMImplementation.port, .fused] {
            let fn = try GHMR(mu: 0.02, bins: bins, momentum: momentum, lossWeight: 10, implementation: impl)
            for k in 0..<calls {
                let p = "\(name).\(k)."
                let pred = try tensor(p + "pred").requiresGrad_()
                let loss = try fn.forward(pred, target: tensor(p + "target"), labelWeight: tensor(p + "w"),
                                          reductionOverride: none ? LossReduction.none : nil)
                try (none ? loss.sum() : loss).backward()
                try check(loss, p + "loss", "\(impl) \(p)loss")
                try check(try XCTUnwrap(pred.grad), p + "grad", "\(impl) \(p)grad")
                if momentum > 0 { try check(try XCTUnwrap(fn.accSum), p + "acc", "\(impl) \(p)acc_sum") }
            }
        }
    }

    func testGHMCWithoutMomentum() throws { try runGHMC("c_plain", bins: 10, momentum: 0, calls: 1) }
    func testGHMCMomentumOverThreeCalls() throws { try runGHMC("c_mmt", bins: 30, momentum: 0.75, calls: 3) }
    func testGHMCCallWithoutValidElements() throws {
        try runGHMC("c_novalid", bins: 30, momentum: 0.75, calls: 2)
        XCTAssertEqual(try XCTUnwrap(PyTensor(ref["c_novalid.1.loss"])).data, [0])
    }
    func testGHMCReductionNone() throws { try runGHMC("c_none", bins: 30, momentum: 0.75, calls: 1, none: true) }
    func testGHMRWithoutMomentum() throws { try runGHMR("r_plain", bins: 10, momentum: 0, calls: 1) }
    func testGHMRMomentumOverThreeCalls() throws { try runGHMR("r_mmt", bins: 10, momentum: 0.7, calls: 3) }
    func testGHMRWithoutPositivesIsExactlyZero() throws {
        try runGHMR("r_nopos", bins: 10, momentum: 0.7, calls: 2)
        XCTAssertEqual(try XCTUnwrap(PyTensor(ref["r_nopos.1.loss"])).data, [0])
    }
    func testGHMRReductionNone() throws { try runGHMR("r_none", bins: 10, momentum: 0.7, calls: 1, none: true) }

    /// reduction='sum' together with GHM's avg_factor is an error in mmdet; the same here.
    func testSumReductionIsAnErrorAsInMMDet() throws {
        let mmdetMessage = try XCTUnwrap(ref["sum_error"] as? String)
        XCTAssertFalse(mmdetMessage.isEmpty)
        for impl in [GHMImplementation.port, .fused] {
            let fn = try GHMC(bins: 30, momentum: 0.75, implementation: impl)
            XCTAssertThrowsError(try fn.forward(Tensor.zeros([2, 3]), target: Tensor.zeros([2], dtype: .int64),
                                                labelWeight: Tensor.ones([2]), reductionOverride: .sum)) { e in
                XCTAssertEqual((e as? TorchError)?.message, mmdetMessage)
            }
        }
    }
}
