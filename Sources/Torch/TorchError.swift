import CGHMTorch

/// An error raised by libtorch (or by argument checks before calling it): the op that failed and libtorch's message.
public struct TorchError: Error, CustomStringConvertible, Equatable {
    public let op: String
    public let message: String

    public init(op: String, message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }

    /// The message libtorch left for the last failed call on this thread.
    static func last(_ op: String) -> TorchError {
        TorchError(op: op, message: String(cString: gt_last_error()))
    }
}

/// Checks the status of a shim call.
@inline(__always)
func check(_ op: @autoclosure () -> String, _ status: Int32) throws(TorchError) {
    if status != 0 { throw TorchError.last(op()) }
}

/// Calls a shim function that writes one new tensor handle, and wraps it.
@inline(__always)
func make(_ op: @autoclosure () -> String, _ body: (UnsafeMutablePointer<gt_tensor>) -> Int32) throws(TorchError) -> Tensor {
    var out = gt_tensor(ptr: nil)
    let status = body(&out)
    if status != 0 { throw TorchError.last(op()) }
    return Tensor(owning: out)
}

/// Calls a shim function that writes two new tensor handles (values, indices).
@inline(__always)
func make2(_ op: @autoclosure () -> String,
           _ body: (UnsafeMutablePointer<gt_tensor>, UnsafeMutablePointer<gt_tensor>) -> Int32) throws(TorchError) -> (Tensor, Tensor) {
    var a = gt_tensor(ptr: nil)
    var b = gt_tensor(ptr: nil)
    let status = body(&a, &b)
    if status != 0 {
        if a.ptr != nil { gt_free(a) }
        if b.ptr != nil { gt_free(b) }
        throw TorchError.last(op())
    }
    return (Tensor(owning: a), Tensor(owning: b))
}
