import Torch

/// A module whose convolutions are each followed by a batch norm that can be folded into them.
public protocol ConvBNFusable: Module {
    /// Folds each of its own (conv, BN) pairs with `ConvBNFusion.fold`; returns how many.
    func foldOwnConvBN() throws(TorchError) -> Int
}

/// mmcv's `fuse_conv_bn` (`tools/test.py --fuse-conv-bn`): an evaluation-mode batch norm folded into the convolution
/// before it — weight w·f per output channel and bias (b − μ)·f + β with f = γ / √(σ² + ε) — and replaced by the
/// identity. The outputs agree with the unfused model up to rounding (the products are formed in another order).
public enum ConvBNFusion {
    /// Returns false when `bn` was folded already (nothing to do).
    @discardableResult
    public static func fold(_ conv: Conv2d, _ bn: BatchNorm2d) throws(TorchError) -> Bool {
        guard !bn.foldedIntoConv else { return false }
        guard !bn.isTraining else {
            throw TorchError(op: "fuse_conv_bn", message: "the batch norm is in training mode: fuse an evaluation-mode model")
        }
        try withNoGrad { () throws(TorchError) in
            let factor = try bn.weight / (bn.runningVar + bn.eps).sqrt()
            let out = conv.weight.shape[0]
            var bias = bn.runningMean
            if let b = conv.bias { bias = b } else { bias = try bn.runningMean.zerosLike() }
            conv.weight = try conv.weight * factor.reshape([out, 1, 1, 1])
            conv.bias = try (bias - bn.runningMean) * factor + bn.bias
        }
        bn.foldedIntoConv = true
        return true
    }
}

extension Module {
    /// Folds every (conv, BN) pair of this module tree (the modules that are `ConvBNFusable`); returns how many.
    @discardableResult
    public func fuseConvBN() throws(TorchError) -> Int {
        var n = 0
        for (_, m) in namedModules() {
            if let f = m as? ConvBNFusable { n += try f.foldOwnConvBN() }
        }
        return n
    }

    /// Every 4-D parameter and buffer (the convolutions' weights) laid out channels-last, as
    /// `model.to(memory_format=torch.channels_last)`.
    public func toChannelsLast() throws(TorchError) { try relayout(.channelsLast) }

    /// Every 4-D parameter and buffer back in the default (NCHW) layout.
    public func toContiguous() throws(TorchError) { try relayout(.contiguous) }

    private func relayout(_ format: MemoryFormat) throws(TorchError) {
        for (_, slot) in namedModules().flatMap({ $0.1.reflect().tensors }) {
            guard let t = slot.tensor, t.rank == 4, try !t.isContiguous(format) else { continue }
            let moved = try t.contiguous(format)
            if slot.kind == .parameter, t.requiresGrad { try moved.requiresGrad_(true) }
            try slot.replace(with: moved)
        }
    }
}

extension ConvModule: ConvBNFusable {
    public func foldOwnConvBN() throws(TorchError) -> Int {
        guard let bn else { return 0 }
        return try ConvBNFusion.fold(conv, bn) ? 1 : 0
    }
}

extension Sequential: ConvBNFusable {
    /// Each convolution directly followed by a batch norm (a ResNet downsample: conv 1×1, BN).
    public func foldOwnConvBN() throws(TorchError) -> Int {
        var n = 0
        for (a, b) in zip(layers, layers.dropFirst()) {
            if let conv = a as? Conv2d, let bn = b as? BatchNorm2d, try ConvBNFusion.fold(conv, bn) { n += 1 }
        }
        return n
    }
}
