import CGHMTorch

/// How a tensor's elements are laid out: PyTorch's `torch.contiguous_format` (NCHW) or `torch.channels_last` (NHWC
/// strides of a 4-D tensor).
public enum MemoryFormat: Int32, Sendable {
    case contiguous = 0, channelsLast = 1
}

extension Tensor {
    /// The same values laid out in `format` (`tensor.contiguous(memory_format=…)`); self when already so.
    /// Channels-last needs a 4-D tensor.
    public func contiguous(_ format: MemoryFormat) throws(TorchError) -> Tensor {
        try make("contiguous") { gt_contiguous_format(handle, format.rawValue, $0) }
    }

    /// `tensor.is_contiguous(memory_format=…)`.
    public func isContiguous(_ format: MemoryFormat) throws(TorchError) -> Bool {
        var v: Int32 = 0
        try check("is_contiguous", gt_is_contiguous_format(handle, format.rawValue, &v))
        return v != 0
    }
}

/// Runs `body` under autocast for `device`'s type (`torch.autocast(device_type, dtype)` on this thread): the ops
/// autocast covers (convolutions, matrix products, …) run in `dtype` (float16 or bfloat16), the others as usual.
/// Nested regions restore the outer state on exit; the cast cache is cleared when the outermost one ends.
public func withAutocast<R>(_ device: Device, dtype: DType, _ body: () throws(TorchError) -> R) throws(TorchError) -> R {
    let type: Int32 = device.isCUDA ? 1 : 0
    var wasOn: Int32 = 0, wasType: Int32 = 0
    try check("autocast", gt_autocast_enter(type, dtype.rawValue, &wasOn, &wasType))
    defer { gt_autocast_exit(type, wasOn, wasType) }
    return try body()
}

extension Torch {
    /// Whether autocast is on for `device`'s type on this thread.
    public static func autocastEnabled(_ device: Device) -> Bool {
        var v: Int32 = 0
        gt_autocast_enabled(device.isCUDA ? 1 : 0, &v)
        return v != 0
    }
}

extension Torch {
    /// `torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)`: every tensor × `invScale` in
    /// place; `foundInf` (0-dim float) becomes 1 when any element is inf or NaN.
    public static func ampNonFiniteCheckAndUnscale(_ grads: [Tensor], foundInf: Tensor, invScale: Tensor) throws(TorchError) {
        let hs = grads.map(\.handle)
        try withExtendedLifetime(grads) { () throws(TorchError) in
            try check("_amp_foreach_non_finite_check_and_unscale_",
                      gt_amp_non_finite_check_and_unscale_(hs, Int32(hs.count), foundInf.handle, invScale.handle))
        }
    }

    /// `torch._amp_update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval)`.
    public static func ampUpdateScale(_ scale: Tensor, growthTracker: Tensor, foundInf: Tensor, growthFactor: Double,
                                      backoffFactor: Double, growthInterval: Int) throws(TorchError) {
        try check("_amp_update_scale_", gt_amp_update_scale_(scale.handle, growthTracker.handle, foundInf.handle,
                                                             growthFactor, backoffFactor, Int64(growthInterval)))
    }
}
