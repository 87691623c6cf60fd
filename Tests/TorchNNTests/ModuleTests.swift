import TestSupport
import Torch
import XCTest

@testable import TorchNN

/// A small module tree shaped like mmdet's pieces, to test key paths and loading.
final class TinyBlock: Module, Layer {
    let conv1: Conv2d
    let bn1: BatchNorm2d
    let downsample: Sequential?
    init(withDownsample: Bool) throws {
        conv1 = try Conv2d(3, 4, kernelSize: 3, padding: 1, bias: false)
        bn1 = try BatchNorm2d(4)
        downsample = withDownsample ? Sequential([try Conv2d(3, 4, kernelSize: 1, bias: false), try BatchNorm2d(4)]) : nil
        super.init()
    }
    func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        var y = try bn1(conv1(x))
        if let downsample { y = try y + downsample(x) }
        return try y.relu()
    }
}

final class TinyNet: Module {
    let layer1: [TinyBlock]
    let fpnConvs: [ConvModule]
    let retinaCls: Conv2d
    @Buffer var accSum: Tensor
    init(seed: UInt64 = 0) throws {
        layer1 = [try TinyBlock(withDownsample: true), try TinyBlock(withDownsample: false)]
        fpnConvs = [try ConvModule(try Conv2d(4, 4, kernelSize: 3, padding: 1), relu: true)]
        retinaCls = try Conv2d(4, 2, kernelSize: 1)
        accSum = try Tensor.zeros([3])
        super.init()
    }
}

final class RenamedNet: Module {
    let head: Conv2d
    @Parameter var scale: Tensor
    override var keyOverrides: [String: String] { ["head": "bbox_head"] }
    init(seed: UInt64 = 0) throws {
        head = try Conv2d(1, 1, kernelSize: 1)
        _scale = Parameter(wrappedValue: try Tensor.ones([1]), key: "scale_param")
        super.init()
    }
}

final class ModuleTests: XCTestCase {
    func testSnakeCaseTable() {
        let table = [
            "bboxHead": "bbox_head", "fpnConvs": "fpn_convs", "runningMean": "running_mean",
            "numBatchesTracked": "num_batches_tracked", "layer1": "layer1", "conv1": "conv1", "retinaCls": "retina_cls",
            "lateralConvs": "lateral_convs", "weight": "weight", "accSum": "acc_sum",
        ]
        for (swift, key) in table { XCTAssertEqual(snakeCase(swift), key, swift) }
    }

    /// The same tree built in PyTorch gives the same (key, shape) list in the same order.
    func testStateDictMatchesPyTorchOrder() throws {
        let ref = try python("""
            import torch.nn as nn
            class Block(nn.Module):
                def __init__(self, ds):
                    super().__init__()
                    self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(4)
                    if ds: self.downsample = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4))
            class CM(nn.Module):
                def __init__(self):
                    super().__init__(); self.conv = nn.Conv2d(4, 4, 3, padding=1)
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layer1 = nn.Sequential(Block(True), Block(False))
                    self.fpn_convs = nn.ModuleList([CM()])
                    self.retina_cls = nn.Conv2d(4, 2, 1)
                    self.register_buffer('acc_sum', torch.zeros(3))
            out['keys'] = [[k, list(v.shape)] for k, v in Net().state_dict().items()]
            """)
        let expected = try XCTUnwrap(ref["keys"] as? [[Any]]).map { "\($0[0] as! String) \($0[1] as! [Int])" }
        let net = try TinyNet()
        // PyTorch registers a module's buffers after its parameters but before its children; `acc_sum` is a buffer
        // of the root, so it comes before the children's keys there.
        XCTAssertEqual(net.stateDict().map { "\($0.key) \($0.tensor.shape)" }, expected)
        XCTAssertEqual(net.namedParameters().count, 13)
        XCTAssertTrue(net.namedBuffers().contains { $0.key == "layer1.0.downsample.1.num_batches_tracked" })
    }

    func testKeyOverrides() throws {
        XCTAssertEqual(try RenamedNet().stateDict().map(\.key), ["scale_param", "bbox_head.weight", "bbox_head.bias"])
    }

    func testLoadReportsEveryProblemAtOnce() throws {
        let net = try TinyNet()
        var state = Dictionary(uniqueKeysWithValues: net.stateDict().map { ($0.key, try! $0.tensor.clone()) })
        state["layer1.0.conv1.weight"] = nil
        state["layer1.1.bn1.running_var"] = nil
        state["extra.key"] = try Tensor.zeros([1])
        state["retina_cls.weight"] = try Tensor.zeros([3, 4, 1, 1])
        let before = try net.retinaCls.bias!.floats()
        state["retina_cls.bias"] = try Tensor.full([2], 9.0)
        XCTAssertThrowsError(try net.load(state, source: "tiny.pth")) { e in
            guard let err = e as? StateDictError else { return XCTFail("\(e)") }
            XCTAssertEqual(err.missing, ["layer1.0.conv1.weight", "layer1.1.bn1.running_var"])
            XCTAssertEqual(err.unexpected, ["extra.key"])
            XCTAssertEqual(err.shapeMismatches.map(\.key), ["retina_cls.weight"])
            let text = "\(err)"
            XCTAssertTrue(text.contains("tiny.pth") && text.contains("model [2, 4, 1, 1], checkpoint [3, 4, 1, 1]"), text)
        }
        XCTAssertEqual(try net.retinaCls.bias!.floats(), before, "a failed load changes nothing")
        // Non-strict: missing, unexpected and shape-mismatched keys are reported, not fatal; a key whose shape
        // differs keeps the model's own values (mmcv's load_checkpoint(strict=False)).
        let ownWeight = try net.retinaCls.weight.floats()
        let skipped = try net.load(state, strict: false)
        XCTAssertEqual(skipped.shapeMismatches.map(\.key), ["retina_cls.weight"])
        XCTAssertEqual(skipped.shapeMismatches.first?.loaded, [3, 4, 1, 1])
        XCTAssertEqual(try net.retinaCls.weight.floats(), ownWeight)
        XCTAssertEqual(try net.retinaCls.bias!.floats(), [9, 9])
        XCTAssertFalse(skipped.loaded.contains("retina_cls.weight"))
        XCTAssertTrue(skipped.problemLines().contains { $0.hasPrefix("size mismatch for retina_cls.weight") })
        state["retina_cls.weight"] = try Tensor.full([2, 4, 1, 1], 0.25)
        let report = try net.load(state, strict: false)
        XCTAssertEqual(report.missing.count, 2)
        XCTAssertEqual(report.unexpected, ["extra.key"])
        XCTAssertEqual(report.shapeMismatches.count, 0)
        XCTAssertEqual(Set(try net.retinaCls.weight.floats()), [0.25])
        // allowMissing lets named keys be absent under strict loading
        state["extra.key"] = nil
        XCTAssertNoThrow(try net.load(state, allowMissing: ["layer1.0.conv1.weight", "layer1.1.bn1.running_var"]))
    }

    /// Loading copies into the existing tensors: references held elsewhere (an optimizer) see the new values.
    func testLoadKeepsTensorIdentity() throws {
        let net = try TinyNet()
        let w = net.retinaCls.weight
        XCTAssertTrue(w.requiresGrad)
        try net.load(["retina_cls.weight": try Tensor.full([2, 4, 1, 1], 3.0)], strict: false)
        XCTAssertTrue(w === net.retinaCls.weight)
        XCTAssertEqual(Set(try w.floats()), [3])
        XCTAssertTrue(w.requiresGrad)
    }

    func testTrainEvalAndNormEval() throws {
        let net = try TinyNet()
        XCTAssertTrue(net.layer1[0].bn1.isTraining)
        net.eval()
        XCTAssertFalse(net.layer1[0].bn1.isTraining)
        net.layer1[0].bn1.normEval = true
        net.train()
        XCTAssertFalse(net.layer1[0].bn1.isTraining, "normEval keeps BN in eval mode")
        XCTAssertTrue(net.layer1[1].bn1.isTraining)
        // A BN in training mode updates its running statistics and counter; in eval mode it does not.
        let x = try Tensor.randn([2, 3, 5, 5])
        let bn = net.layer1[1].bn1
        _ = try net.layer1[1](x)
        XCTAssertEqual(try bn.numBatchesTracked.itemInt(), 1)
        XCTAssertNotEqual(Set(try bn.runningMean.floats()), [0])
        let frozen = net.layer1[0].bn1
        _ = try net.layer1[0](x)
        XCTAssertEqual(try frozen.numBatchesTracked.itemInt(), 0)
        XCTAssertEqual(Set(try frozen.runningMean.floats()), [0])
        try net.layer1[0].requiresGrad(false)
        XCTAssertFalse(net.layer1[0].conv1.weight.requiresGrad)
        XCTAssertEqual(net.trainableParameters().count, net.parameters().count - 6)
    }

    /// Forward of the tiny tree against the same tree in PyTorch with the same weights.
    func testForwardMatchesPyTorch() throws {
        let ref = try python("""
            import torch.nn.functional as F
            torch.manual_seed(11)
            x = torch.randn(1, 3, 6, 6); w = torch.randn(4, 3, 3, 3) * 0.3; wd = torch.randn(4, 3, 1, 1) * 0.3
            rm = torch.rand(4); rv = torch.rand(4) + 0.5
            y = F.batch_norm(F.conv2d(x, w, padding=1), rm, rv, torch.ones(4), torch.zeros(4), False, 0.1, 1e-5)
            d = F.batch_norm(F.conv2d(x, wd), torch.zeros(4), torch.ones(4), torch.ones(4), torch.zeros(4), False, 0.1, 1e-5)
            out['y'] = (y + d).relu()
            """)
        try Torch.manualSeed(11)
        let x = try Tensor.randn([1, 3, 6, 6])
        let w = try Tensor.randn([4, 3, 3, 3]) * 0.3
        let wd = try Tensor.randn([4, 3, 1, 1]) * 0.3
        let rm = try Tensor.rand([4]), rv = try Tensor.rand([4]) + 0.5
        let block = try TinyBlock(withDownsample: true)
        try block.load(["conv1.weight": w, "bn1.running_mean": rm, "bn1.running_var": rv, "downsample.0.weight": wd],
                       strict: false)
        block.eval()
        assertClose(try block(x), ref["y"], atol: 1e-6, rtol: 1e-6)
    }
}
