import CGHMTorch

/// Neural-network functions over tensors (the `torch.nn.functional` subset the detector needs).
public enum Functional {
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) throws(TorchError) -> Tensor {
        let s: [Int64] = [Int64(stride), Int64(stride)]
        let p: [Int64] = [Int64(padding), Int64(padding)]
        let d: [Int64] = [Int64(dilation), Int64(dilation)]
        return try make("conv2d") {
            gt_conv2d(x.handle, weight.handle, bias?.handle ?? gt_tensor(ptr: nil), s, p, d, Int64(groups), $0)
        }
    }

    /// `F.batch_norm`; in training mode the running statistics (if given) are updated in place.
    public static func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                                 training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) throws(TorchError) -> Tensor {
        let none = gt_tensor(ptr: nil)
        return try make("batch_norm") {
            gt_batch_norm(x.handle, weight?.handle ?? none, bias?.handle ?? none, runningMean?.handle ?? none,
                          runningVar?.handle ?? none, training ? 1 : 0, momentum, eps, $0)
        }
    }

    public static func maxPool2d(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, dilation: Int = 1,
                                 ceilMode: Bool = false) throws(TorchError) -> Tensor {
        let k: [Int64] = [Int64(kernel), Int64(kernel)]
        let s: [Int64] = [Int64(stride), Int64(stride)]
        let p: [Int64] = [Int64(padding), Int64(padding)]
        let d: [Int64] = [Int64(dilation), Int64(dilation)]
        return try make("max_pool2d") { gt_max_pool2d(x.handle, k, s, p, d, ceilMode ? 1 : 0, $0) }
    }

    /// Nearest-neighbour upsampling of an NCHW tensor to (height, width) (`F.interpolate(mode='nearest', size=…)`).
    public static func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws(TorchError) -> Tensor {
        try make("upsample_nearest2d") { gt_upsample_nearest2d(x.handle, Int64(height), Int64(width), $0) }
    }

    public enum Reduction: Int32, Sendable { case none = 0, mean = 1, sum = 2 }

    public static func binaryCrossEntropyWithLogits(_ x: Tensor, target: Tensor, weight: Tensor? = nil,
                                                    reduction: Reduction = .mean) throws(TorchError) -> Tensor {
        try make("binary_cross_entropy_with_logits") {
            gt_bce_with_logits(x.handle, target.handle, weight?.handle ?? gt_tensor(ptr: nil), reduction.rawValue, $0)
        }
    }

    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) throws(TorchError) -> Tensor {
        try make("linear") { gt_linear(x.handle, weight.handle, bias?.handle ?? gt_tensor(ptr: nil), $0) }
    }

    public static func matmul(_ a: Tensor, _ b: Tensor) throws(TorchError) -> Tensor {
        try make("matmul") { gt_matmul(a.handle, b.handle, $0) }
    }

    /// `torch.bucketize(x, boundaries, right:)`: int64 bucket index of every element.
    public static func bucketize(_ x: Tensor, boundaries: Tensor, right: Bool = false) throws(TorchError) -> Tensor {
        try make("bucketize") { gt_bucketize(x.handle, boundaries.handle, right ? 1 : 0, $0) }
    }

    public static func histc(_ x: Tensor, bins: Int, min: Double, max: Double) throws(TorchError) -> Tensor {
        try make("histc") { gt_histc(x.handle, Int64(bins), min, max, $0) }
    }

    /// Counts of each non-negative int in `x` (weighted sums with `weights`), at least `minLength` bins.
    public static func bincount(_ x: Tensor, weights: Tensor? = nil, minLength: Int = 0) throws(TorchError) -> Tensor {
        try make("bincount") { gt_bincount(x.handle, weights?.handle ?? gt_tensor(ptr: nil), Int64(minLength), $0) }
    }

    /// Greedy NMS with mmcv's semantics: kept indices in descending-score order; a box is suppressed when its IoU
    /// (no +1) with a kept box is strictly greater than `iouThreshold`. The result lies on the boxes' device.
    public static func nms(boxes: Tensor, scores: Tensor, iouThreshold: Double,
                           method: NMSMethod = .automatic) throws(TorchError) -> Tensor {
        try make("nms") { gt_nms(boxes.handle, scores.handle, iouThreshold, method.rawValue, $0) }
    }

    /// How `nms` runs: `.kernel` copies the boxes to the host and runs the sequential loop; `.matrix` stays on the
    /// boxes' device (pairwise IoU, then the greedy keep mask as a fixed point; the same indices; an error above
    /// 16384 boxes or 64 suppression rounds); `.automatic` is the kernel for CPU boxes and the matrix version on an
    /// accelerator, falling back to the kernel where the matrix version stops.
    public enum NMSMethod: Int32, Sendable { case automatic = 0, kernel = 1, matrix = 2 }
}
