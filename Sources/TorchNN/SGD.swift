import Torch

/// `torch.optim.SGD` with momentum, dampening, weight decay and Nesterov, with PyTorch's exact update order:
/// `g = grad + wd·p; buf = g (first step) or momentum·buf + (1 − dampening)·g; p -= lr·buf` (or `g + momentum·buf`
/// with Nesterov). Parameters without a gradient are skipped.
public final class SGD {
    public let params: [Tensor]
    public var lr: Double
    public let momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool
    /// One momentum buffer per parameter (nil until its first step), in `params` order.
    public private(set) var momentumBuffers: [Tensor?]

    public init(_ params: [Tensor], lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                nesterov: Bool = false) {
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: params.count)
    }

    public func step() throws(TorchError) {
        try withNoGrad { () throws(TorchError) in
            for (i, p) in params.enumerated() {
                guard var g = p.grad else { continue }
                if weightDecay != 0 { g = try g.add(p, alpha: weightDecay) }
                if momentum != 0 {
                    let buf: Tensor
                    if let b = momentumBuffers[i] {
                        try b.mul_(momentum).add_(g, alpha: 1 - dampening)
                        buf = b
                    } else {
                        buf = try g.clone().detach()
                        momentumBuffers[i] = buf
                    }
                    g = nesterov ? try g.add(buf, alpha: momentum) : buf
                }
                try p.add_(g, alpha: -lr)
            }
        }
    }

    /// Sets every gradient to none (`zero_grad(set_to_none=True)`, PyTorch's default).
    public func zeroGrad() throws(TorchError) {
        for p in params { try p.zeroGrad() }
    }

    /// Restores momentum buffers (a resumed checkpoint); nil entries stay empty.
    public func setMomentumBuffers(_ buffers: [Tensor?]) throws(TorchError) {
        guard buffers.count == params.count else {
            throw TorchError(op: "SGD.setMomentumBuffers", message: "\(buffers.count) buffers for \(params.count) parameters")
        }
        momentumBuffers = buffers
    }
}

/// `torch.nn.utils.clip_grad_norm_(params, maxNorm, norm_type=2)`: the total norm is the 2-norm of the per-gradient
/// 2-norms; every gradient is scaled by `min(maxNorm / (total + 1e-6), 1)`, where the division is PyTorch's
/// `float / Tensor` — `Tensor.__rtruediv__`, i.e. `reciprocal(total + 1e-6) * maxNorm`, which can differ from a true
/// division in the last bit. Returns the total norm (before clipping).
@discardableResult
public func clipGradNorm(_ params: [Tensor], maxNorm: Double) throws(TorchError) -> Double {
    let grads = params.compactMap(\.grad)
    guard !grads.isEmpty else { return 0 }
    return try withNoGrad { () throws(TorchError) -> Double in
        var norms: [Tensor] = []
        for g in grads { norms.append(try g.vectorNorm(ord: 2)) }
        let total = try Tensor.stack(norms).vectorNorm(ord: 2)
        let coef = try ((total + 1e-6).reciprocal() * maxNorm).clamp(max: 1.0)
        for g in grads { try g.mul_(coef) }
        return try total.item()
    }
}
