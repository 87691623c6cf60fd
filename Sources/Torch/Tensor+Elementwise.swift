import CGHMTorch

/// Op codes of the shim's elementwise entry points (see ghm_torch.h).
enum UnaryOp: Int32 {
    case neg = 0, exp, log, sqrt, abs, sigmoid, relu, floor, ceil, round, sign, logicalNot, detach, clone, contiguous
    case isnan, isfinite, log1p, tanh, reciprocal, rsqrt, square, zerosLike, onesLike, logSigmoid, expm1, trunc
    case bitwiseNot, sin, cos
}

enum BinaryOp: Int32 {
    case add = 0, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logicalAnd, logicalOr, logicalXor
    case remainder, floorDivide, atan2, bitwiseAnd, bitwiseOr, rsub, rdiv, rpow, divTrunc
}

extension Tensor {
    func unary(_ op: UnaryOp) throws(TorchError) -> Tensor {
        try make("\(op)") { gt_unary(op.rawValue, handle, $0) }
    }

    @discardableResult
    func unary_(_ op: UnaryOp) throws(TorchError) -> Tensor {
        try check("\(op)_", gt_unary_(op.rawValue, handle))
        return self
    }

    func binary(_ op: BinaryOp, _ other: Tensor) throws(TorchError) -> Tensor {
        try make("\(op)") { gt_binary(op.rawValue, handle, other.handle, $0) }
    }

    func binary(_ op: BinaryOp, _ s: some TensorScalar) throws(TorchError) -> Tensor {
        try make("\(op)") { gt_binary_scalar(op.rawValue, handle, s.gtScalar, $0) }
    }

    @discardableResult
    func binary_(_ op: BinaryOp, _ other: Tensor) throws(TorchError) -> Tensor {
        try check("\(op)_", gt_binary_(op.rawValue, handle, other.handle))
        return self
    }

    @discardableResult
    func binary_(_ op: BinaryOp, _ s: some TensorScalar) throws(TorchError) -> Tensor {
        try check("\(op)_", gt_binary_scalar_(op.rawValue, handle, s.gtScalar))
        return self
    }

    // MARK: unary

    public func neg() throws(TorchError) -> Tensor { try unary(.neg) }
    public func exp() throws(TorchError) -> Tensor { try unary(.exp) }
    public func log() throws(TorchError) -> Tensor { try unary(.log) }
    public func sqrt() throws(TorchError) -> Tensor { try unary(.sqrt) }
    public func abs() throws(TorchError) -> Tensor { try unary(.abs) }
    public func sigmoid() throws(TorchError) -> Tensor { try unary(.sigmoid) }
    public func relu() throws(TorchError) -> Tensor { try unary(.relu) }
    public func floor() throws(TorchError) -> Tensor { try unary(.floor) }
    public func ceil() throws(TorchError) -> Tensor { try unary(.ceil) }
    public func round() throws(TorchError) -> Tensor { try unary(.round) }
    public func sign() throws(TorchError) -> Tensor { try unary(.sign) }
    public func logicalNot() throws(TorchError) -> Tensor { try unary(.logicalNot) }
    public func isnan() throws(TorchError) -> Tensor { try unary(.isnan) }
    public func isfinite() throws(TorchError) -> Tensor { try unary(.isfinite) }
    public func log1p() throws(TorchError) -> Tensor { try unary(.log1p) }
    public func tanh() throws(TorchError) -> Tensor { try unary(.tanh) }
    public func reciprocal() throws(TorchError) -> Tensor { try unary(.reciprocal) }
    public func rsqrt() throws(TorchError) -> Tensor { try unary(.rsqrt) }
    public func square() throws(TorchError) -> Tensor { try unary(.square) }
    public func logSigmoid() throws(TorchError) -> Tensor { try unary(.logSigmoid) }
    public func expm1() throws(TorchError) -> Tensor { try unary(.expm1) }
    public func trunc() throws(TorchError) -> Tensor { try unary(.trunc) }
    public func sin() throws(TorchError) -> Tensor { try unary(.sin) }
    public func cos() throws(TorchError) -> Tensor { try unary(.cos) }
    public func zerosLike() throws(TorchError) -> Tensor { try unary(.zerosLike) }
    public func onesLike() throws(TorchError) -> Tensor { try unary(.onesLike) }
    /// A new tensor with the same values (and its own storage); keeps the autograd history.
    public func clone() throws(TorchError) -> Tensor { try unary(.clone) }
    /// The same values without autograd history (shares storage).
    public func detach() throws(TorchError) -> Tensor { try unary(.detach) }
    public func contiguous() throws(TorchError) -> Tensor { try unary(.contiguous) }

    @discardableResult public func neg_() throws(TorchError) -> Tensor { try unary_(.neg) }
    @discardableResult public func exp_() throws(TorchError) -> Tensor { try unary_(.exp) }
    @discardableResult public func log_() throws(TorchError) -> Tensor { try unary_(.log) }
    @discardableResult public func sqrt_() throws(TorchError) -> Tensor { try unary_(.sqrt) }
    @discardableResult public func abs_() throws(TorchError) -> Tensor { try unary_(.abs) }
    @discardableResult public func sigmoid_() throws(TorchError) -> Tensor { try unary_(.sigmoid) }
    @discardableResult public func relu_() throws(TorchError) -> Tensor { try unary_(.relu) }
    @discardableResult public func floor_() throws(TorchError) -> Tensor { try unary_(.floor) }
    @discardableResult public func round_() throws(TorchError) -> Tensor { try unary_(.round) }

    // MARK: binary, named

    public func add(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.add, o) }
    public func sub(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.sub, o) }
    public func mul(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.mul, o) }
    public func div(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.div, o) }
    public func pow(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.pow, o) }
    public func pow(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.pow, s) }
    public func maximum(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.maximum, o) }
    public func minimum(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.minimum, o) }
    public func remainder(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.remainder, o) }
    public func remainder(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.remainder, s) }
    /// Division rounded towards negative infinity (`torch.div(..., rounding_mode='floor')`).
    public func floorDivide(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.floorDivide, o) }
    public func floorDivide(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.floorDivide, s) }
    public func atan2(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.atan2, o) }
    public func eq(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.eq, o) }
    public func eq(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.eq, s) }
    public func ne(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.ne, o) }
    public func ne(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.ne, s) }
    public func lt(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.lt, o) }
    public func lt(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.lt, s) }
    public func le(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.le, o) }
    public func le(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.le, s) }
    public func gt(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.gt, o) }
    public func gt(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.gt, s) }
    public func ge(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.ge, o) }
    public func ge(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary(.ge, s) }
    public func logicalAnd(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.logicalAnd, o) }
    public func logicalOr(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.logicalOr, o) }
    public func logicalXor(_ o: Tensor) throws(TorchError) -> Tensor { try binary(.logicalXor, o) }

    // MARK: in place

    @discardableResult public func add_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.add, o) }
    @discardableResult public func add_(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary_(.add, s) }
    @discardableResult public func sub_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.sub, o) }
    @discardableResult public func sub_(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary_(.sub, s) }
    @discardableResult public func mul_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.mul, o) }
    @discardableResult public func mul_(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary_(.mul, s) }
    @discardableResult public func div_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.div, o) }
    @discardableResult public func div_(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary_(.div, s) }
    @discardableResult public func pow_(_ s: some TensorScalar) throws(TorchError) -> Tensor { try binary_(.pow, s) }
    @discardableResult public func logicalAnd_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.logicalAnd, o) }
    @discardableResult public func logicalOr_(_ o: Tensor) throws(TorchError) -> Tensor { try binary_(.logicalOr, o) }

    /// `self + alpha * other` in one kernel (`torch.add(self, other, alpha=alpha)`).
    public func add(_ other: Tensor, alpha: some TensorScalar) throws(TorchError) -> Tensor {
        try make("add") { gt_add_scaled(handle, other.handle, alpha.gtScalar, $0) }
    }

    /// In place: `self += alpha * other` in one kernel (`self.add_(other, alpha=alpha)`).
    @discardableResult
    public func add_(_ other: Tensor, alpha: some TensorScalar) throws(TorchError) -> Tensor {
        try check("add_", gt_add_scaled_(handle, other.handle, alpha.gtScalar))
        return self
    }

    // MARK: clamp, where, masked fill

    public func clamp(min: Double? = nil, max: Double? = nil) throws(TorchError) -> Tensor {
        try make("clamp") { gt_clamp(handle, min == nil ? 0 : 1, min ?? 0, max == nil ? 0 : 1, max ?? 0, $0) }
    }

    @discardableResult
    public func clamp_(min: Double? = nil, max: Double? = nil) throws(TorchError) -> Tensor {
        try check("clamp_", gt_clamp_(handle, min == nil ? 0 : 1, min ?? 0, max == nil ? 0 : 1, max ?? 0))
        return self
    }

    /// Clamps elementwise between tensors (either may be nil), broadcasting.
    public func clamp(min: Tensor?, max: Tensor?) throws(TorchError) -> Tensor {
        try make("clamp") {
            gt_clamp_tensor(handle, min?.handle ?? gt_tensor(ptr: nil), max?.handle ?? gt_tensor(ptr: nil), $0)
        }
    }

    /// `torch.where(condition, a, b)`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws(TorchError) -> Tensor {
        try make("where") { gt_where(condition.handle, a.handle, b.handle, $0) }
    }

    public func maskedFill(_ mask: Tensor, _ value: some TensorScalar) throws(TorchError) -> Tensor {
        try make("masked_fill") { gt_masked_fill(handle, mask.handle, value.gtScalar, $0) }
    }

    @discardableResult
    public func maskedFill_(_ mask: Tensor, _ value: some TensorScalar) throws(TorchError) -> Tensor {
        try check("masked_fill_", gt_masked_fill_(handle, mask.handle, value.gtScalar))
        return self
    }
}

// MARK: operators

extension Tensor {
    public static func + (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.add, b) }
    public static func - (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.sub, b) }
    public static func * (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.mul, b) }
    public static func / (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.div, b) }

    public static func + <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.add, s) }
    public static func - <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.sub, s) }
    public static func * <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.mul, s) }
    public static func / <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.div, s) }

    public static func + <S: TensorScalar>(s: S, a: Tensor) throws(TorchError) -> Tensor { try a.binary(.add, s) }
    public static func - <S: TensorScalar>(s: S, a: Tensor) throws(TorchError) -> Tensor { try a.binary(.rsub, s) }
    public static func * <S: TensorScalar>(s: S, a: Tensor) throws(TorchError) -> Tensor { try a.binary(.mul, s) }
    public static func / <S: TensorScalar>(s: S, a: Tensor) throws(TorchError) -> Tensor { try a.binary(.rdiv, s) }

    public static prefix func - (a: Tensor) throws(TorchError) -> Tensor { try a.unary(.neg) }

    public static func .== (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.eq, b) }
    public static func .!= (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.ne, b) }
    public static func .< (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.lt, b) }
    public static func .<= (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.le, b) }
    public static func .> (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.gt, b) }
    public static func .>= (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.ge, b) }

    public static func .== <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.eq, s) }
    public static func .!= <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.ne, s) }
    public static func .< <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.lt, s) }
    public static func .<= <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.le, s) }
    public static func .> <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.gt, s) }
    public static func .>= <S: TensorScalar>(a: Tensor, s: S) throws(TorchError) -> Tensor { try a.binary(.ge, s) }

    /// Logical and / or of boolean tensors.
    public static func .& (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.logicalAnd, b) }
    public static func .| (a: Tensor, b: Tensor) throws(TorchError) -> Tensor { try a.binary(.logicalOr, b) }
}
