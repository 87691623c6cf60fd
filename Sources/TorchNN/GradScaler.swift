import Torch

/// `torch.amp.GradScaler`, with its exact semantics, on libtorch's own kernels: the loss is multiplied by `scale`
/// before backward; `unscale` divides the gradients by it in place (by `scale⁻¹` computed in float64, then float32, as
/// PyTorch) and notes whether any is inf/NaN (`_amp_foreach_non_finite_check_and_unscale_`); `step` skips the
/// optimizer step when one was; `update` halves the scale (`backoffFactor`) after a non-finite step, or multiplies it by
/// `growthFactor` after `growthInterval` finite steps in a row (`_amp_update_scale_`), or sets a fixed value.
public final class GradScaler {
    public let growthFactor: Double, backoffFactor: Double, growthInterval: Int
    /// The current scale (0-dim float32) and the count of finite steps since the last change (0-dim int32).
    public private(set) var scaleTensor: Tensor
    public private(set) var growthTracker: Tensor
    /// Whether the last `unscale` found an inf or NaN (nil before the first).
    private var foundInf: Tensor?
    private var unscaled = false

    public init(initScale: Double = 65536, growthFactor: Double = 2, backoffFactor: Double = 0.5,
                growthInterval: Int = 2000, device: Device = .cpu) throws(TorchError) {
        guard growthFactor > 1 || growthFactor == 1, backoffFactor > 0 && backoffFactor <= 1, growthInterval >= 1 else {
            throw TorchError(op: "GradScaler", message: "growth_factor must be ≥ 1, backoff_factor in (0, 1], growth_interval ≥ 1")
        }
        self.growthFactor = growthFactor
        self.backoffFactor = backoffFactor
        self.growthInterval = growthInterval
        scaleTensor = try Tensor(scalar: Float(initScale)).to(device)
        growthTracker = try Tensor(scalar: Int32(0)).to(device)
    }

    public var scale: Double { (try? scaleTensor.item()) ?? .nan }

    /// `scaler.scale(loss)`: loss × scale.
    public func scale(_ loss: Tensor) throws(TorchError) -> Tensor {
        try loss * scaleTensor.to(try loss.dtype)
    }

    /// `scaler.unscale_(optimizer)`: the gradients of `params` divided by the scale, in place; returns whether any
    /// is inf or NaN. Once per step.
    @discardableResult
    public func unscale(_ params: [Tensor]) throws(TorchError) -> Bool {
        guard !unscaled else { throw TorchError(op: "GradScaler.unscale", message: "unscale was already called since the last update") }
        let grads = params.compactMap(\.grad)
        let found = try scaleTensor.zerosLike()
        let inv = try scaleTensor.to(.float64).reciprocal().to(.float32)
        try Torch.ampNonFiniteCheckAndUnscale(grads, foundInf: found, invScale: inv)
        foundInf = found
        unscaled = true
        return try found.item() != 0
    }

    /// `scaler.step(optimizer)`: unscales first if that was not done, then steps unless a gradient was not finite.
    /// Returns whether the optimizer stepped.
    @discardableResult
    public func step(_ optimizer: SGD) throws(TorchError) -> Bool {
        if !unscaled { try unscale(optimizer.params) }
        guard let f = foundInf, try f.item() == 0 else { return false }
        try optimizer.step()
        return true
    }

    /// `scaler.update(new_scale)`: with `newScale` the scale becomes it (mmcv's static loss scale); otherwise backoff
    /// after a non-finite step, growth after `growthInterval` finite ones.
    public func update(newScale: Double? = nil) throws(TorchError) {
        defer { unscaled = false; foundInf = nil }
        if let newScale {
            try scaleTensor.fill_(newScale)
            return
        }
        guard let found = foundInf else { return }
        try Torch.ampUpdateScale(scaleTensor, growthTracker: growthTracker, foundInf: found, growthFactor: growthFactor,
                                 backoffFactor: backoffFactor, growthInterval: growthInterval)
    }

    /// `state_dict()`: scale, growth factor, backoff factor, growth interval, growth tracker.
    public var state: (scale: Double, growthFactor: Double, backoffFactor: Double, growthInterval: Int, growthTracker: Int) {
        (scale, growthFactor, backoffFactor, growthInterval, Int((try? growthTracker.item()) ?? 0))
    }

    /// `load_state_dict`: the scale and the growth tracker (the factors and interval are the config's).
    public func load(scale: Double, growthTracker tracker: Int) throws(TorchError) {
        try scaleTensor.fill_(scale)
        try growthTracker.fill_(Double(tracker))
    }
}
