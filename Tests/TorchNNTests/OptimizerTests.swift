import TestSupport
import Torch
import XCTest

@testable import TorchNN

final class OptimizerTests: XCTestCase {
    /// SGD (momentum 0.9, weight decay 1e-4) for 5 steps equals torch.optim.SGD; the gradient of each step is a
    /// deterministic function of the parameters, so both sides follow the same trajectory.
    func testSGDMatchesTorch() throws {
        let ref = try python("""
            torch.manual_seed(2)
            a = torch.randn(4, 3, requires_grad=True); b = torch.randn(3, requires_grad=True)
            c = torch.randn(2, requires_grad=True)  # never gets a gradient: skipped
            opt = torch.optim.SGD([a, b, c], lr=0.05, momentum=0.9, weight_decay=1e-4)
            for step in range(5):
                opt.zero_grad()
                loss = (a.sin() * 2).sum() + (b ** 2).sum() * (step + 1) + (a @ b).pow(2).mean()
                loss.backward()
                opt.step()
            out['a'] = a; out['b'] = b; out['c'] = c
            out['buf_a'] = opt.state[a]['momentum_buffer']
            """)
        try Torch.manualSeed(2)
        let a = try Tensor.randn([4, 3]).requiresGrad_()
        let b = try Tensor.randn([3]).requiresGrad_()
        let c = try Tensor.randn([2]).requiresGrad_()
        let c0 = try c.floats()
        let opt = SGD([a, b, c], lr: 0.05, momentum: 0.9, weightDecay: 1e-4)
        for step in 0..<5 {
            try opt.zeroGrad()
            let ab = try Functional.matmul(a, b)
            let loss = try (a.sin() * 2).sum() + b.pow(2).sum() * Double(step + 1) + ab.pow(2).mean()
            try loss.backward()
            try opt.step()
        }
        assertClose(a, ref["a"], atol: 1e-6, rtol: 1e-6, "a")
        assertClose(b, ref["b"], atol: 1e-6, rtol: 1e-6, "b")
        assertClose(c, ref["c"], atol: 0, rtol: 0, "c untouched")
        XCTAssertEqual(try c.floats(), c0)
        assertClose(try XCTUnwrap(opt.momentumBuffers[0]), ref["buf_a"], atol: 1e-6, rtol: 1e-6, "momentum buffer")
        XCTAssertNil(opt.momentumBuffers[2])
    }

    func testGradClippingMatchesTorch() throws {
        let ref = try python("""
            torch.manual_seed(4)
            ps = [torch.randn(5, 3, requires_grad=True), torch.randn(7, requires_grad=True), torch.randn(2, requires_grad=True)]
            (ps[0].exp().sum() * 3 + (ps[1] ** 3).sum()).backward()
            out['norm'] = torch.nn.utils.clip_grad_norm_(ps, max_norm=4.0, norm_type=2)
            out['g0'] = ps[0].grad; out['g1'] = ps[1].grad
            qs = [torch.ones(3, requires_grad=True)]
            (qs[0] * 0.1).sum().backward()
            out['small_norm'] = torch.nn.utils.clip_grad_norm_(qs, max_norm=35)
            out['small_g'] = qs[0].grad
            """)
        try Torch.manualSeed(4)
        let ps = [try Tensor.randn([5, 3]).requiresGrad_(), try Tensor.randn([7]).requiresGrad_(),
                  try Tensor.randn([2]).requiresGrad_()]
        try (ps[0].exp().sum() * 3 + ps[1].pow(3).sum()).backward()
        let norm = try clipGradNorm(ps, maxNorm: 4.0)
        assertClose([norm], try XCTUnwrap(PyTensor(ref["norm"])).data, atol: 1e-5, rtol: 1e-6, "total norm")
        assertClose(try XCTUnwrap(ps[0].grad), ref["g0"], atol: 1e-6, rtol: 1e-6, "g0")
        assertClose(try XCTUnwrap(ps[1].grad), ref["g1"], atol: 1e-6, rtol: 1e-6, "g1")
        XCTAssertNil(ps[2].grad)
        let q = try Tensor.ones([3]).requiresGrad_()
        try (q * 0.1).sum().backward()
        let small = try clipGradNorm([q], maxNorm: 35)
        assertClose([small], try XCTUnwrap(PyTensor(ref["small_norm"])).data, atol: 1e-7, rtol: 1e-6)
        assertClose(try XCTUnwrap(q.grad), ref["small_g"], atol: 0, rtol: 0, "below max_norm: unchanged")
    }
}
