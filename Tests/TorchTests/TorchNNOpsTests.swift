import TestSupport
import XCTest

@testable import Torch

/// Neural-network ops, histograms, NMS and autograd against Python torch.
final class TorchNNOpsTests: XCTestCase {
    static let pythonInputs = """
        import torch.nn.functional as F
        torch.manual_seed(1)
        img = torch.randn(2, 3, 9, 11)
        w = torch.randn(4, 3, 3, 3) * 0.2
        b = torch.randn(4)
        g = torch.rand(50)
        logits = torch.randn(6, 5)
        target = (torch.rand(6, 5) > 0.7).float()
        weight = torch.rand(6, 5)

        """

    func inputs() throws -> (img: Tensor, w: Tensor, b: Tensor, g: Tensor, logits: Tensor, target: Tensor, weight: Tensor) {
        try Torch.manualSeed(1)
        let img = try Tensor.randn([2, 3, 9, 11])
        let w = try Tensor.randn([4, 3, 3, 3]) * 0.2
        let b = try Tensor.randn([4])
        let g = try Tensor.rand([50])
        let logits = try Tensor.randn([6, 5])
        let target = try (Tensor.rand([6, 5]) .> 0.7).to(.float32)
        let weight = try Tensor.rand([6, 5])
        return (img, w, b, g, logits, target, weight)
    }

    func testConvPoolNormUpsample() throws {
        let ref = try python(Self.pythonInputs + """
            out['conv'] = F.conv2d(img, w, b, stride=1, padding=1)
            out['conv_s2'] = F.conv2d(img, w, None, stride=2, padding=1)
            out['conv_dil'] = F.conv2d(img, w, b, stride=1, padding=2, dilation=2)
            out['pool'] = F.max_pool2d(img, 3, 2, 1)
            out['pool_ceil'] = F.max_pool2d(img, 2, 2, 0, ceil_mode=True)
            out['up'] = F.interpolate(img, size=(17, 23), mode='nearest')
            rm = torch.zeros(3); rv = torch.ones(3); bw = torch.rand(3); bb = torch.rand(3)
            out['bn_eval'] = F.batch_norm(img, rm + 0.5, rv * 2, bw, bb, training=False, eps=1e-5)
            out['bn_train'] = F.batch_norm(img, rm, rv, bw, bb, training=True, momentum=0.1, eps=1e-5)
            out['rm'] = rm; out['rv'] = rv
            out['linear'] = F.linear(logits, torch.ones(3, 5) * 0.1, torch.arange(3.0))
            out['matmul'] = logits @ logits.t()
            """)
        let t = try inputs()
        assertClose(try Functional.conv2d(t.img, weight: t.w, bias: t.b, padding: 1), ref["conv"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.conv2d(t.img, weight: t.w, bias: nil, stride: 2, padding: 1), ref["conv_s2"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.conv2d(t.img, weight: t.w, bias: t.b, padding: 2, dilation: 2), ref["conv_dil"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.maxPool2d(t.img, kernel: 3, stride: 2, padding: 1), ref["pool"], atol: 0, rtol: 0)
        assertClose(try Functional.maxPool2d(t.img, kernel: 2, stride: 2, ceilMode: true), ref["pool_ceil"], atol: 0, rtol: 0)
        assertClose(try Functional.upsampleNearest(t.img, height: 17, width: 23), ref["up"], atol: 0, rtol: 0)
        // The Python side drew rand(3) twice after its inputs; replay the generator the same way.
        let rm = try Tensor.zeros([3]), rv = try Tensor.ones([3])
        let bw = try Tensor.rand([3]), bb = try Tensor.rand([3])
        assertClose(try Functional.batchNorm(t.img, weight: bw, bias: bb, runningMean: rm + 0.5, runningVar: rv * 2,
                                             training: false), ref["bn_eval"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.batchNorm(t.img, weight: bw, bias: bb, runningMean: rm, runningVar: rv, training: true),
                    ref["bn_train"], atol: 1e-6, rtol: 1e-6)
        assertClose(rm, ref["rm"], atol: 1e-7, rtol: 1e-6, "running mean updated in place")
        assertClose(rv, ref["rv"], atol: 1e-7, rtol: 1e-6, "running var updated in place")
        assertClose(try Functional.linear(t.logits, weight: Tensor.ones([3, 5]) * 0.1, bias: Tensor.arange(0.0, 3.0, dtype: .float32)),
                    ref["linear"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.matmul(t.logits, t.logits.transpose(0, 1)), ref["matmul"], atol: 1e-6, rtol: 1e-6)
    }

    func testLossAndHistograms() throws {
        let ref = try python(Self.pythonInputs + """
            out['bce_none'] = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
            out['bce_w_sum'] = F.binary_cross_entropy_with_logits(logits, target, weight, reduction='sum')
            out['bce_mean'] = F.binary_cross_entropy_with_logits(logits, target)
            edges = torch.arange(11).float() / 10; edges[-1] = 1e3
            out['bucket'] = torch.bucketize(g, edges, right=True)
            out['bucket_l'] = torch.bucketize(g, edges)
            out['histc'] = torch.histc(g, bins=10, min=0, max=1)
            out['bincount'] = torch.bincount(torch.tensor([0, 3, 3, 1, 7]), minlength=10)
            out['bincount_w'] = torch.bincount(torch.tensor([0, 3, 3, 1]), weights=torch.tensor([0.5, 1., 2., 3.]))
            """)
        let t = try inputs()
        assertClose(try Functional.binaryCrossEntropyWithLogits(t.logits, target: t.target, reduction: .none),
                    ref["bce_none"], atol: 1e-7, rtol: 1e-6)
        assertClose(try Functional.binaryCrossEntropyWithLogits(t.logits, target: t.target, weight: t.weight, reduction: .sum),
                    ref["bce_w_sum"], atol: 1e-6, rtol: 1e-6)
        assertClose(try Functional.binaryCrossEntropyWithLogits(t.logits, target: t.target), ref["bce_mean"], atol: 1e-7, rtol: 1e-6)
        let edges = try Tensor.arange(11).to(.float32) / 10
        try edges.narrow(dim: 0, start: 10, length: 1).fill_(1e3)
        assertClose(try Functional.bucketize(t.g, boundaries: edges, right: true), ref["bucket"], atol: 0, rtol: 0)
        assertClose(try Functional.bucketize(t.g, boundaries: edges), ref["bucket_l"], atol: 0, rtol: 0)
        assertClose(try Functional.histc(t.g, bins: 10, min: 0, max: 1), ref["histc"], atol: 0, rtol: 0)
        assertClose(try Functional.bincount(Tensor([0, 3, 3, 1, 7] as [Int64]), minLength: 10), ref["bincount"], atol: 0, rtol: 0)
        assertClose(try Functional.bincount(Tensor([0, 3, 3, 1] as [Int64]), weights: Tensor([0.5, 1, 2, 3] as [Float])),
                    ref["bincount_w"], atol: 0, rtol: 0)
    }

    /// NMS against a plain-Python greedy loop with mmcv's rule (suppress when IoU > thr, no +1).
    func testNMS() throws {
        let ref = try python("""
            torch.manual_seed(5)
            xy = torch.rand(300, 2) * 100
            wh = torch.rand(300, 2) * 40 + 1
            boxes = torch.cat([xy, xy + wh], 1)
            scores = torch.rand(300)
            order = scores.argsort(descending=True).tolist()
            keep = []
            area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
            b = boxes.tolist(); sup = [False] * 300
            for oi, i in enumerate(order):
                if sup[i]: continue
                keep.append(i)
                for j in order[oi + 1:]:
                    if sup[j]: continue
                    w = max(0.0, min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]))
                    h = max(0.0, min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]))
                    inter = torch.tensor(w, dtype=torch.float32) * torch.tensor(h, dtype=torch.float32)
                    iou = inter / (torch.tensor(area[i]) + torch.tensor(area[j]) - inter)
                    if iou.item() > 0.5: sup[j] = True
            out['keep'] = torch.tensor(keep)
            """)
        try Torch.manualSeed(5)
        let xy = try Tensor.rand([300, 2]) * 100
        let wh = try Tensor.rand([300, 2]) * 40 + 1
        let boxes = try Tensor.cat([xy, xy + wh], dim: 1)
        let scores = try Tensor.rand([300])
        let keep = try Functional.nms(boxes: boxes, scores: scores, iouThreshold: 0.5)
        assertClose(keep, ref["keep"], atol: 0, rtol: 0, "kept indices")
        XCTAssertEqual(try Functional.nms(boxes: Tensor.zeros([0, 4]), scores: Tensor.zeros([0]), iouThreshold: 0.5).shape, [0])
        // Identical boxes: IoU 1 > 0.5 → one survives; IoU exactly equal to the threshold does not suppress.
        let same = try Tensor([0, 0, 10, 10, 0, 0, 10, 10] as [Float], shape: [2, 4])
        XCTAssertEqual(try Functional.nms(boxes: same, scores: Tensor([0.9, 0.8] as [Float]), iouThreshold: 0.5).int64s(), [0])
        let half = try Tensor([0, 0, 10, 10, 0, 0, 10, 5] as [Float], shape: [2, 4])  // IoU 0.5
        XCTAssertEqual(try Functional.nms(boxes: half, scores: Tensor([0.8, 0.9] as [Float]), iouThreshold: 0.5).int64s(), [1, 0])
    }

    /// The device-resident NMS (used on CUDA) gives the host kernel's indices: dense clusters with long suppression
    /// chains, every threshold, float32 and float64, ties in the scores, the fallbacks (a chain longer than the round
    /// cap) and the empty case.
    func testMatrixNMSEqualsTheKernel() throws {
        try Torch.manualSeed(11)
        for (n, spread) in [(50, 20.0), (400, 60.0), (2000, 300.0)] {
            let xy = try Tensor.rand([n, 2]) * spread
            let wh = try Tensor.rand([n, 2]) * 40 + 0.5
            let boxes = try Tensor.cat([xy, xy + wh], dim: 1)
            let scores = try (Tensor.rand([n]) * 20).floor() / 20  // many ties
            for thr in [0.0, 0.3, 0.5, 0.7, 0.95] {
                for dtype in [DType.float32, .float64] {
                    let k = try Functional.nms(boxes: boxes.to(dtype), scores: scores.to(dtype), iouThreshold: thr, method: .kernel)
                    let m = try Functional.nms(boxes: boxes.to(dtype), scores: scores.to(dtype), iouThreshold: thr, method: .matrix)
                    XCTAssertEqual(try m.int64s(), try k.int64s(), "n \(n), threshold \(thr), \(dtype)")
                }
            }
        }
        // A chain of 100 boxes, each overlapping only its neighbours: 100 rounds > the cap; .matrix refuses, and
        // .automatic on an accelerator would take the kernel.
        var chain: [Float] = []
        for i in 0..<100 { chain += [Float(i) * 6, 0, Float(i) * 6 + 10, 10] }
        let chainBoxes = try Tensor(chain, shape: [100, 4])
        let chainScores = try Tensor((0..<100).map { 1 - Float($0) / 100 })
        XCTAssertEqual(try Functional.nms(boxes: chainBoxes, scores: chainScores, iouThreshold: 0.2).int64s(),
                       Array(stride(from: 0, to: 100, by: 2)).map(Int64.init))
        XCTAssertThrowsError(try Functional.nms(boxes: chainBoxes, scores: chainScores, iouThreshold: 0.2, method: .matrix))
        // 40 of them need 41 rounds, under the cap.
        let short = try chainBoxes.narrow(dim: 0, start: 0, length: 40), shortScores = try chainScores.narrow(dim: 0, start: 0, length: 40)
        XCTAssertEqual(try Functional.nms(boxes: short, scores: shortScores, iouThreshold: 0.2, method: .matrix).int64s(),
                       Array(stride(from: 0, to: 40, by: 2)).map(Int64.init))
        XCTAssertEqual(try Functional.nms(boxes: Tensor.zeros([0, 4]), scores: Tensor.zeros([0]), iouThreshold: 0.5,
                                          method: .matrix).shape, [0])
    }

    func testAutograd() throws {
        let ref = try python(Self.pythonInputs + """
            w.requires_grad_(True); b.requires_grad_(True)
            loss = (F.conv2d(img, w, b, padding=1).relu() * 0.5).sigmoid().sum() + (w ** 2).sum() * 1e-2
            loss.backward()
            out['loss'] = loss; out['gw'] = w.grad; out['gb'] = b.grad
            """)
        let t = try inputs()
        try t.w.requiresGrad_()
        try t.b.requiresGrad_()
        XCTAssertTrue(t.w.requiresGrad)
        XCTAssertTrue(t.w.isLeaf)
        XCTAssertNil(t.w.grad)
        let conv = try Functional.conv2d(t.img, weight: t.w, bias: t.b, padding: 1)
        let loss = try (conv.relu() * 0.5).sigmoid().sum() + t.w.pow(2).sum() * 1e-2
        try loss.backward()
        assertClose(loss, ref["loss"], atol: 1e-5, rtol: 1e-6)
        assertClose(try XCTUnwrap(t.w.grad), ref["gw"], atol: 1e-5, rtol: 1e-5)
        assertClose(try XCTUnwrap(t.b.grad), ref["gb"], atol: 1e-5, rtol: 1e-5)
        // no-grad region: results do not require grad; the mode is restored afterwards
        let y = try withNoGrad { () throws(TorchError) in try t.w * 2 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(Torch.gradEnabled)
        XCTAssertTrue(try (t.w * 2).requiresGrad)
        try t.w.zeroGrad(setToNone: false)
        XCTAssertEqual(Set(try XCTUnwrap(t.w.grad).floats()), [0])
        try t.w.zeroGrad()
        XCTAssertNil(t.w.grad)
        // backward through a non-scalar needs a gradient argument: a TorchError, not a crash
        XCTAssertThrowsError(try (t.w * 2).backward()) { e in XCTAssertEqual((e as? TorchError)?.op, "backward") }
    }

    func testErrorsComeBackAsTorchError() throws {
        let t = try inputs()
        let wrong = try Tensor.zeros([4, 5, 3, 3])  // 5 input channels for a 3-channel image
        XCTAssertThrowsError(try Functional.conv2d(t.img, weight: wrong, bias: nil)) { e in
            guard let err = e as? TorchError else { return XCTFail("not a TorchError: \(e)") }
            XCTAssertEqual(err.op, "conv2d")
            XCTAssertTrue(err.message.contains("channels"), err.message)
            XCTAssertFalse(err.message.contains("Exception raised from"), "backtrace should be stripped")
        }
        XCTAssertThrowsError(try t.img + Tensor.zeros([7])) { e in XCTAssertEqual((e as? TorchError)?.op, "add") }
        XCTAssertThrowsError(try t.img.reshape([5, -1])) { e in XCTAssertEqual((e as? TorchError)?.op, "reshape") }
        XCTAssertThrowsError(try t.img.select(dim: 0, index: 9)) { e in XCTAssertEqual((e as? TorchError)?.op, "select") }
        XCTAssertThrowsError(try Tensor.zeros([2]).item())
        // The process survives and keeps working.
        XCTAssertEqual(try (Tensor.ones([2]) + 1).floats(), [2, 2])
    }

    func testRuntime() throws {
        // the version the shim was compiled against is the linked libtorch's (from its torch/version.h)
        XCTAssertEqual(Torch.version, try linkedLibtorchVersion())
        let before = Torch.threads
        try Torch.setThreads(1)
        XCTAssertEqual(Torch.threads, 1)
        try Torch.setThreads(before)
        XCTAssertThrowsError(try Torch.setThreads(0))
        // CUDA as the linked libtorch and the machine report it: a CPU libtorch (or no GPU) refuses CUDA tensors
        if Torch.cudaAvailable {
            XCTAssertGreaterThan(Torch.cudaDeviceCount, 0)
            XCTAssertEqual(try Tensor.zeros([2], device: .cuda(0)).floats(), [0, 0])
            let keep = try Tensor.zeros([1 << 20], device: .cuda(0))
            let m = try Torch.acceleratorMemory(device: 0)
            XCTAssertGreaterThanOrEqual(m.peakAllocated, m.allocated)
            XCTAssertGreaterThanOrEqual(m.allocated, 4 << 20)
            withExtendedLifetime(keep) {}
        } else {
            XCTAssertEqual(Torch.cudaDeviceCount, 0)
            XCTAssertThrowsError(try Tensor.zeros([2], device: .cuda(0)))
            XCTAssertThrowsError(try Torch.acceleratorMemory(device: 0), "no accelerator: an error, not a crash")
        }
        XCTAssertThrowsError(try Tensor.zeros([2], device: .cuda(Torch.cudaDeviceCount)), "no such device")
        XCTAssertEqual(Device("cuda:1"), .cuda(1))
        XCTAssertEqual(Device("cpu"), .cpu)
        XCTAssertNil(Device("tpu"))
    }

    /// "major.minor.patch" from torch/headeronly/version.h of the libtorch the shim was configured against
    /// (`.build-shim/.prefix` holds its CMake prefix, `<torch>/share/cmake`).
    func linkedLibtorchVersion() throws -> String {
        let prefix = try String(contentsOfFile: Repo.path(".build-shim/.prefix"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // newer libtorch keeps the numbers in headeronly/, older ones in csrc/api/include/torch/
        let candidates = ["/../../include/torch/headeronly/version.h", "/../../include/torch/csrc/api/include/torch/version.h"]
        let header = try XCTUnwrap(candidates.lazy.compactMap { try? String(contentsOfFile: prefix + $0, encoding: .utf8) }
            .first { $0.contains("#define TORCH_VERSION_MAJOR ") }, "no torch/version.h under \(prefix)/../../include")
        func field(_ name: String) -> String? {
            header.split(separator: "\n").first { $0.hasPrefix("#define TORCH_VERSION_\(name) ") }
                .map { String($0.split(separator: " ").last!) }
        }
        return try [XCTUnwrap(field("MAJOR")), XCTUnwrap(field("MINOR")), XCTUnwrap(field("PATCH"))].joined(separator: ".")
    }

    /// The caching CPU allocator (what `ghm` enables): freed large blocks are kept and handed out again, values are
    /// unaffected, and lowering the limit gives the memory back.
    func testCachingAllocatorReusesLargeBlocks() throws {
        try Torch.enableCachingAllocator(limitBytes: 64 << 20)
        let before = Torch.cachingAllocatorStats.cachedBytes
        do {
            let a = try Tensor.ones([1 << 20])  // 4 MiB
            XCTAssertEqual(try a.sum().item(), Double(1 << 20))
        }
        let cached = Torch.cachingAllocatorStats.cachedBytes
        XCTAssertEqual(cached, before + (4 << 20), "the freed 4 MiB block is kept")
        let b = try Tensor.full([1 << 20], 2.0)
        XCTAssertEqual(Torch.cachingAllocatorStats.cachedBytes, cached - (4 << 20), "and handed out again")
        XCTAssertEqual(try b.sum().item(), Double(2 << 20))
        let small = try Tensor.ones([10]) + 1  // small blocks bypass the cache
        XCTAssertEqual(try small.floats(), [Float](repeating: 2, count: 10))
        try Torch.enableCachingAllocator(limitBytes: 0)
        XCTAssertEqual(Torch.cachingAllocatorStats.cachedBytes, 0)
        XCTAssertThrowsError(try Torch.enableCachingAllocator(limitBytes: -1))
    }

    /// The caching allocator is installed only for the test that uses it: later tests run on libtorch's own.
    override func tearDown() {
        XCTAssertNoThrow(try Torch.disableCachingAllocator())
        XCTAssertFalse(Torch.cachingAllocatorEnabled)
        super.tearDown()
    }

    func testCachingAllocatorCanBeTurnedOff() throws {
        try Torch.enableCachingAllocator(limitBytes: 64 << 20)
        XCTAssertTrue(Torch.cachingAllocatorEnabled)
        let alive = try Tensor.ones([1 << 20])  // allocated by the cache, released after it is turned off
        try Torch.disableCachingAllocator()
        XCTAssertFalse(Torch.cachingAllocatorEnabled)
        do {
            let fresh = try Tensor.ones([1 << 20])  // libtorch's allocator: nothing goes into the cache
            XCTAssertEqual(try fresh.sum().item(), Double(1 << 20))
        }
        XCTAssertEqual(Torch.cachingAllocatorStats.cachedBytes, 0)
        XCTAssertEqual(try alive.sum().item(), Double(1 << 20))
    }

    /// 100,000 small ops: resident memory stays flat (no handle leaks).
    func testNoHandleLeaks() throws {
        let a = try Tensor.ones([16])
        for _ in 0..<2_000 { _ = try (a + 1).sum() }
        let before = residentMemoryMB()
        for i in 0..<100_000 {
            let b = try a * Double(i % 7)
            if i % 4 == 0 { _ = try b.sum().item() }
            _ = try? Tensor.zeros([3]) + Tensor.zeros([4])  // failing op: error path must not leak either
        }
        let growth = residentMemoryMB() - before
        XCTAssertLessThan(growth, 50, "resident memory grew by \(growth) MB")
    }
}
