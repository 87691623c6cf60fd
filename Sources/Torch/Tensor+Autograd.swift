import CGHMTorch

extension Tensor {
    public var requiresGrad: Bool {
        var v: Int32 = 0
        gt_requires_grad(handle, &v)
        return v != 0
    }

    /// Turns gradient tracking on or off for a leaf tensor.
    @discardableResult
    public func requiresGrad_(_ on: Bool = true) throws(TorchError) -> Tensor {
        try check("requires_grad_", gt_set_requires_grad(handle, on ? 1 : 0))
        return self
    }

    public var isLeaf: Bool {
        var v: Int32 = 0
        gt_is_leaf(handle, &v)
        return v != 0
    }

    /// Back-propagates from this tensor (a scalar unless `gradient` is given).
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws(TorchError) {
        try check("backward", gt_backward(handle, gradient?.handle ?? gt_tensor(ptr: nil), retainGraph ? 1 : 0))
    }

    /// The accumulated gradient, or nil when none has been computed.
    public var grad: Tensor? {
        var out = gt_tensor(ptr: nil)
        guard gt_grad(handle, &out) == 0, out.ptr != nil else { return nil }
        return Tensor(owning: out)
    }

    /// Clears the gradient: sets it to none (default, like `zero_grad(set_to_none=True)`) or fills it with zeros.
    public func zeroGrad(setToNone: Bool = true) throws(TorchError) {
        try check("zero_grad", gt_zero_grad(handle, setToNone ? 1 : 0))
    }
}

/// Runs `body` with gradient recording off on this thread (libtorch's grad mode is thread-local).
@discardableResult
public func withNoGrad<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    var was: Int32 = 1
    gt_grad_enabled(&was)
    gt_set_grad_enabled(0)
    defer { gt_set_grad_enabled(was) }
    return try body()
}

/// Runs `body` with gradient recording on (inside a `withNoGrad` region, for example).
@discardableResult
public func withGrad<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    var was: Int32 = 1
    gt_grad_enabled(&was)
    gt_set_grad_enabled(1)
    defer { gt_set_grad_enabled(was) }
    return try body()
}
