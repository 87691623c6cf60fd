import Foundation
import Torch

/// `nn.Conv2d` with square kernel, stride, padding and dilation. PyTorch's default initialisation.
public final class Conv2d: Module, Layer {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: Int, padding: Int, dilation: Int, groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) throws(TorchError) {
        let w = try Tensor.empty([outChannels, inChannels / groups, kernelSize, kernelSize])
        try Init.kaimingUniform(w, a: Foundation.sqrt(5.0))
        weight = try w.requiresGrad_()
        if bias {
            let bound = 1 / Foundation.sqrt(Double(Init.fans(w).fanIn))
            let b = try Tensor.empty([outChannels])
            try Init.uniform(b, from: -bound, to: bound)
            self.bias = try b.requiresGrad_()
        } else {
            self.bias = nil
        }
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        try Functional.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                              groups: groups)
    }
}

/// `nn.BatchNorm2d` (eps 1e-5, momentum 0.1, affine, running statistics). In evaluation mode it normalises with the
/// running statistics; in training mode with batch statistics and updates the running ones. A frozen BN
/// (`normEval`, set by its owner) stays in evaluation mode even when the model trains.
public final class BatchNorm2d: Module, Layer {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor
    @Buffer public var runningMean: Tensor
    @Buffer public var runningVar: Tensor
    @Buffer public var numBatchesTracked: Tensor
    public let eps: Double, momentum: Double
    /// Keep evaluation mode even when the model trains (mmdet's `norm_eval=True`).
    public var normEval = false
    /// Folded into the preceding convolution (`ConvBNFusion`): the identity from then on, as mmcv's `fuse_conv_bn`
    /// replaces it with `nn.Identity`.
    public internal(set) var foldedIntoConv = false

    public init(_ features: Int, eps: Double = 1e-5, momentum: Double = 0.1) throws(TorchError) {
        weight = try Tensor.ones([features]).requiresGrad_()
        bias = try Tensor.zeros([features]).requiresGrad_()
        runningMean = try Tensor.zeros([features])
        runningVar = try Tensor.ones([features])
        numBatchesTracked = try Tensor.zeros([], dtype: .int64)
        self.eps = eps
        self.momentum = momentum
        super.init()
    }

    public override func train(_ on: Bool = true) { super.train(on && !normEval) }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        if foldedIntoConv { return x }
        if isTraining {
            try withNoGrad { () throws(TorchError) in try numBatchesTracked.add_(1) }
        }
        return try Functional.batchNorm(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                        training: isTraining, momentum: momentum, eps: eps)
    }
}

/// mmcv's `ConvModule`: conv → optional norm → optional ReLU. Keys `conv.weight`, `conv.bias`, `bn.…`.
public final class ConvModule: Module, Layer {
    public let conv: Conv2d
    public let bn: BatchNorm2d?
    public let relu: Bool

    /// mmcv's `ConvModule.__init__` ends with its `init_weights()`: kaiming-normal (fan_out, ReLU gain) on the conv,
    /// bias 0, norm weight 1 / bias 0 — one more draw from the torch generator after the conv's own default init.
    public init(_ conv: Conv2d, norm: BatchNorm2d? = nil, relu: Bool) throws(TorchError) {
        self.conv = conv
        self.bn = norm
        self.relu = relu
        super.init()
        try Init.kaimingNormalFanOut(conv.weight)
        if let b = conv.bias { try Init.constant(b, 0) }
        if let norm {
            try Init.constant(norm.weight, 1)
            try Init.constant(norm.bias, 0)
        }
    }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        var y = try conv(x)
        if let bn { y = try bn(y) }
        if relu { y = try y.relu_() }  // mmcv's ConvModule uses ReLU(inplace=True)
        return y
    }
}

/// `nn.Sequential`: children keyed `0`, `1`, … and applied in order.
public final class Sequential: Module, Layer {
    public let layers: [Module & Layer]

    public init(_ layers: [Module & Layer]) {
        self.layers = layers
        super.init()
    }

    public override func namedChildren() -> [(String, Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element as Module) }
    }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        var y = x
        for layer in layers { y = try layer(y) }
        return y
    }
}
