import Foundation
import TestSupport
import Torch
import XCTest

@testable import TorchNN

final class OptimizerTests: XCTestCase {
    /// GradScaler against `torch.amp.GradScaler("cpu")` (init 1024, growth 2, backoff 0.5, interval 2) with SGD over 7
    /// steps, an inf injected into the loss of step 3 and a NaN into step 6: the same steps skipped, the same scale and
    /// growth tracker after every update, the same parameters (bitwise); clipping between unscale and step as mmcv's
    /// Fp16OptimizerHook; a fixed scale (mmcv's static loss_scale) stays put.
    func testGradScalerMatchesTorch() throws {
        let ref = try python("""
            torch.manual_seed(5)
            w = torch.randn(6, requires_grad=True); v = torch.randn(3, 2, requires_grad=True)
            opt = torch.optim.SGD([w, v], lr=0.1, momentum=0.9)
            sc = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
            scales = []; trackers = []; stepped = []
            for step in range(7):
                opt.zero_grad()
                bad = float('inf') if step == 2 else (float('nan') if step == 5 else 1.0)
                loss = (w.sin() * bad).sum() + (v ** 2).sum() * (step + 1)
                sc.scale(loss).backward()
                sc.unscale_(opt)
                torch.nn.utils.clip_grad_norm_([w, v], 5.0)
                before = w.detach().clone()
                sc.step(opt)
                stepped.append(0 if torch.equal(before, w.detach()) else 1)
                sc.update()
                scales.append(sc.get_scale()); trackers.append(sc.state_dict()['_growth_tracker'])
            out['w'] = w; out['v'] = v; out['scales'] = scales; out['trackers'] = trackers; out['stepped'] = stepped
            """)
        try Torch.manualSeed(5)
        let w = try Tensor.randn([6]).requiresGrad_(), v = try Tensor.randn([3, 2]).requiresGrad_()
        let opt = SGD([w, v], lr: 0.1, momentum: 0.9)
        let sc = try GradScaler(initScale: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2)
        var scales: [Double] = [], trackers: [Int] = [], stepped: [Int] = []
        for step in 0..<7 {
            try opt.zeroGrad()
            let bad = step == 2 ? Double.infinity : (step == 5 ? Double.nan : 1.0)
            let loss = try (w.sin() * bad).sum() + v.pow(2).sum() * Double(step + 1)
            try sc.scale(loss).backward()
            let nonFinite = try sc.unscale([w, v])
            XCTAssertEqual(nonFinite, step == 2 || step == 5, "step \(step)")
            try clipGradNorm([w, v], maxNorm: 5)
            stepped.append(try sc.step(opt) ? 1 : 0)
            try sc.update()
            scales.append(sc.scale)
            trackers.append(sc.state.growthTracker)
        }
        XCTAssertEqual(stepped, (ref["stepped"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue })
        XCTAssertEqual(stepped, [1, 1, 0, 1, 1, 0, 1])
        XCTAssertEqual(scales, (ref["scales"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue })
        XCTAssertEqual(trackers, (ref["trackers"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue })
        assertClose(w, ref["w"], atol: 0, rtol: 0, "w")
        assertClose(v, ref["v"], atol: 0, rtol: 0, "v")
        // a fixed scale: update(newScale:) sets it whatever happened
        try sc.update(newScale: 512)
        XCTAssertEqual(sc.scale, 512)
        try sc.load(scale: 256, growthTracker: 1)
        XCTAssertEqual(sc.scale, 256)
        XCTAssertEqual(sc.state.growthTracker, 1)
        XCTAssertThrowsError(try GradScaler(growthInterval: 0))
    }

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
