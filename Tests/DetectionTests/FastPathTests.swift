import TestSupport
import Torch
import XCTest

@testable import Detection
import TorchNN

/// The fast inference paths against the fp32 reference path on the same weights: batch norms folded into the
/// convolutions (mmcv's `fuse_conv_bn`), channels-last memory, autocast; and the shim pieces under them.
final class FastPathTests: XCTestCase {
    static let config = Repo.path("configs/retinanet_ghm_r50_fpn_1x_coco.yml")

    /// A model in evaluation mode whose batch norms have non-trivial statistics and affine parameters (a fresh
    /// model's are 0/1, which would make folding trivial), and a copy with the same weights.
    func models() throws -> (RetinaNet, RetinaNet, Tensor) {
        try Torch.manualSeed(3)
        let cfg = try DetectorConfig.load(path: Self.config)
        let a = try RetinaNet(cfg)
        try withNoGrad { () throws(TorchError) in
            for (_, m) in a.namedModules() {
                guard let bn = m as? BatchNorm2d else { continue }
                let n = bn.weight.shape[0]
                try bn.runningMean.copy_(Tensor.randn([n]) * 0.1)
                try bn.runningVar.copy_(Tensor.rand([n]) + 0.5)
                try bn.weight.copy_(Tensor.randn([n]) * 0.1 + 1)
                try bn.bias.copy_(Tensor.randn([n]) * 0.1)
            }
        }
        let b = try RetinaNet(cfg)
        try b.loadStateDict(Dictionary(uniqueKeysWithValues: a.stateDict().map { ($0.key, $0.tensor) }))
        a.eval()
        b.eval()
        let x = try Tensor.randn([1, 3, 128, 160])
        return (a, b, x)
    }

    /// max |a − b| / max |a| over the head outputs of every level.
    func relativeDifference(_ a: (clsScores: [Tensor], bboxPreds: [Tensor]), _ b: (clsScores: [Tensor], bboxPreds: [Tensor])) throws -> Double {
        var worst = 0.0
        for (x, y) in zip(a.clsScores + a.bboxPreds, b.clsScores + b.bboxPreds) {
            XCTAssertEqual(x.shape, y.shape)
            XCTAssertEqual(try y.dtype, .float32)
            let scale = try x.abs().max().item()
            worst = Swift.max(worst, try (x - y).abs().max().item() / scale)
        }
        return worst
    }

    func testFusedConvBNEqualsUnfusedWithin1e4() throws {
        let (ref, fused, x) = try models()
        let want = try withNoGrad { () throws(TorchError) in try ref.forwardRaw(x) }
        try fused.setInferenceMode(.init(fuseConvBN: true))
        // 53 batch norms of the ResNet-50: stem 1, 16 blocks × 3, 4 downsamples
        XCTAssertEqual(fused.namedModules().compactMap { $0.1 as? BatchNorm2d }.filter(\.foldedIntoConv).count, 53)
        XCTAssertNotNil(fused.backbone.conv1.bias, "a folded conv gets a bias")
        let got = try withNoGrad { () throws(TorchError) in try fused.forwardInference(x) }
        let d = try relativeDifference(want, got)
        print("fused vs unfused: max relative difference of the head outputs \(d)")
        XCTAssertLessThanOrEqual(d, 1e-4)
        XCTAssertGreaterThan(d, 0, "the folded products round differently: the path really changed")
        // folding again does nothing; unfolding is refused
        XCTAssertEqual(try fused.fuseConvBN(), 0)
        XCTAssertThrowsError(try fused.setInferenceMode(.reference))
    }

    /// One conv + BN pair against the formula's meaning: conv then BN equals the folded conv, with and without bias.
    func testFoldOfOnePair() throws {
        for bias in [false, true] {
            let conv = try Conv2d(4, 6, kernelSize: 3, padding: 1, bias: bias)
            let bn = try BatchNorm2d(6)
            try withNoGrad { () throws(TorchError) in
                try bn.runningMean.copy_(Tensor.randn([6]))
                try bn.runningVar.copy_(Tensor.rand([6]) + 0.2)
                try bn.weight.copy_(Tensor.randn([6]))
                try bn.bias.copy_(Tensor.randn([6]))
            }
            bn.eval()
            let x = try Tensor.randn([2, 4, 9, 7])
            let want = try withNoGrad { () throws(TorchError) in try bn(conv(x)) }
            try ConvBNFusion.fold(conv, bn)
            let got = try withNoGrad { () throws(TorchError) in try bn(conv(x)) }
            assertClose(try got.doubles(), try want.doubles(), atol: 1e-5, rtol: 1e-5, "bias \(bias)")
        }
        // a batch norm that normalises with batch statistics (training mode) cannot be folded
        let bn = try BatchNorm2d(6)
        bn.train()
        XCTAssertThrowsError(try ConvBNFusion.fold(try Conv2d(4, 6, kernelSize: 1), bn))
    }

    func testChannelsLastEqualsContiguousWithin1e5() throws {
        let (ref, cl, x) = try models()
        let want = try withNoGrad { () throws(TorchError) in try ref.forwardRaw(x) }
        try cl.setInferenceMode(.init(channelsLast: true))
        XCTAssertTrue(try cl.backbone.conv1.weight.isContiguous(.channelsLast))
        XCTAssertFalse(try cl.backbone.conv1.weight.isContiguous(.contiguous))
        let got = try withNoGrad { () throws(TorchError) in try cl.forwardInference(x) }
        let d = try relativeDifference(want, got)
        print("channels-last vs contiguous: max relative difference of the head outputs \(d)")
        XCTAssertLessThanOrEqual(d, 1e-5)
        // and back
        try cl.setInferenceMode(.reference)
        XCTAssertTrue(try cl.backbone.conv1.weight.isContiguous(.contiguous))
    }

    /// Autocast to bfloat16 on CPU: the convolutions run in bf16 inside the region (and only there), the head's
    /// outputs come back as float32 and close to the fp32 ones (bf16 keeps 8 bits of mantissa).
    func testAutocastBF16() throws {
        let (ref, amp, x) = try models()
        let want = try withNoGrad { () throws(TorchError) in try ref.forwardRaw(x) }
        XCTAssertFalse(Torch.autocastEnabled(.cpu))
        let inside = try withAutocast(.cpu, dtype: .bfloat16) { () throws(TorchError) -> DType in
            XCTAssertTrue(Torch.autocastEnabled(.cpu))
            let conv = try Conv2d(3, 4, kernelSize: 3)
            return try conv(x).dtype
        }
        XCTAssertEqual(inside, .bfloat16)
        XCTAssertFalse(Torch.autocastEnabled(.cpu), "the state is restored")
        try amp.setInferenceMode(.init(autocast: .bfloat16))
        let got = try withNoGrad { () throws(TorchError) in try amp.forwardInference(x) }
        let d = try relativeDifference(want, got)
        print("autocast bf16 vs fp32: max relative difference of the head outputs \(d)")
        XCTAssertGreaterThan(d, 1e-4, "bf16 really ran")
        XCTAssertLessThan(d, 0.2)
        XCTAssertThrowsError(try amp.setInferenceMode(.init(autocast: .float64)))
    }

    func testMemoryFormatErrors() throws {
        XCTAssertThrowsError(try Tensor.zeros([2, 3]).contiguous(.channelsLast)) { e in
            XCTAssertTrue("\(e)".contains("4-D"), "\(e)")
        }
        let t = try Tensor.randn([2, 3, 4, 5])
        let c = try t.contiguous(.channelsLast)
        XCTAssertEqual(try c.doubles(), try t.doubles(), "same values")
        XCTAssertEqual(c.shape, t.shape)
    }
}
