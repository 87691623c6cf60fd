import CGHMTorch

extension Tensor {
    public func reshape(_ shape: [Int]) throws(TorchError) -> Tensor {
        let s = shape.map { Int64($0) }
        return try make("reshape") { gt_reshape(handle, s, Int32(s.count), $0) }
    }
    public func view(_ shape: [Int]) throws(TorchError) -> Tensor {
        let s = shape.map { Int64($0) }
        return try make("view") { gt_view(handle, s, Int32(s.count), $0) }
    }
    public func permute(_ dims: [Int]) throws(TorchError) -> Tensor {
        let s = dims.map { Int64($0) }
        return try make("permute") { gt_permute(handle, s, Int32(s.count), $0) }
    }
    public func transpose(_ d0: Int, _ d1: Int) throws(TorchError) -> Tensor {
        try make("transpose") { gt_transpose(handle, Int64(d0), Int64(d1), $0) }
    }
    public func flatten(start: Int = 0, end: Int = -1) throws(TorchError) -> Tensor {
        try make("flatten") { gt_flatten(handle, Int64(start), Int64(end), $0) }
    }
    public func unsqueeze(_ dim: Int) throws(TorchError) -> Tensor {
        try make("unsqueeze") { gt_unsqueeze(handle, Int64(dim), $0) }
    }
    /// Removes `dim` if it has size 1, or every size-1 dimension when `dim` is nil.
    public func squeeze(_ dim: Int? = nil) throws(TorchError) -> Tensor {
        try make("squeeze") { gt_squeeze(handle, dim == nil ? 0 : 1, Int64(dim ?? 0), $0) }
    }
    public func expand(_ shape: [Int]) throws(TorchError) -> Tensor {
        let s = shape.map { Int64($0) }
        return try make("expand") { gt_expand(handle, s, Int32(s.count), $0) }
    }
    public func repeated(_ reps: [Int]) throws(TorchError) -> Tensor {
        let s = reps.map { Int64($0) }
        return try make("repeat") { gt_repeat(handle, s, Int32(s.count), $0) }
    }
    public func flip(_ dims: [Int]) throws(TorchError) -> Tensor {
        let s = dims.map { Int64($0) }
        return try make("flip") { gt_flip(handle, s, Int32(s.count), $0) }
    }
    public func narrow(dim: Int, start: Int, length: Int) throws(TorchError) -> Tensor {
        try make("narrow") { gt_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }
    /// `t[start:end:step]` along `dim` (Python slice semantics, negative and out-of-range bounds clamp).
    public func slice(dim: Int, start: Int = 0, end: Int = Int(Int64.max), step: Int = 1) throws(TorchError) -> Tensor {
        try make("slice") { gt_slice(handle, Int64(dim), Int64(start), Int64(end), Int64(step), $0) }
    }
    public func select(dim: Int, index: Int) throws(TorchError) -> Tensor {
        try make("select") { gt_select(handle, Int64(dim), Int64(index), $0) }
    }
    public subscript(_ index: Int) -> Tensor {
        get throws(TorchError) { try select(dim: 0, index: index) }
    }
    public func indexSelect(dim: Int, index: Tensor) throws(TorchError) -> Tensor {
        try make("index_select") { gt_index_select(handle, Int64(dim), index.handle, $0) }
    }
    public func gather(dim: Int, index: Tensor) throws(TorchError) -> Tensor {
        try make("gather") { gt_gather(handle, Int64(dim), index.handle, $0) }
    }
    public func scatter(dim: Int, index: Tensor, src: Tensor) throws(TorchError) -> Tensor {
        try make("scatter") { gt_scatter(handle, Int64(dim), index.handle, src.handle, $0) }
    }
    public func scatter(dim: Int, index: Tensor, value: some TensorScalar) throws(TorchError) -> Tensor {
        try make("scatter") { gt_scatter_value(handle, Int64(dim), index.handle, value.gtScalar, $0) }
    }
    public func scatterAdd(dim: Int, index: Tensor, src: Tensor) throws(TorchError) -> Tensor {
        try make("scatter_add") { gt_scatter_add(handle, Int64(dim), index.handle, src.handle, $0) }
    }
    @discardableResult
    public func scatterAdd_(dim: Int, index: Tensor, src: Tensor) throws(TorchError) -> Tensor {
        try check("scatter_add_", gt_scatter_add_(handle, Int64(dim), index.handle, src.handle))
        return self
    }
    @discardableResult
    public func indexAdd_(dim: Int, index: Tensor, src: Tensor) throws(TorchError) -> Tensor {
        try check("index_add_", gt_index_add_(handle, Int64(dim), index.handle, src.handle))
        return self
    }
    public func maskedSelect(_ mask: Tensor) throws(TorchError) -> Tensor {
        try make("masked_select") { gt_masked_select(handle, mask.handle, $0) }
    }
    /// `t[index]`: a boolean mask or an int64 index tensor over the leading dimension(s).
    public func index(_ index: Tensor) throws(TorchError) -> Tensor {
        try make("index") { gt_index(handle, index.handle, $0) }
    }
    public subscript(_ index: Tensor) -> Tensor {
        get throws(TorchError) { try self.index(index) }
    }
    /// In place: `t[index] = values` (or `+=` with `accumulate`).
    @discardableResult
    public func indexPut_(_ index: Tensor, _ values: Tensor, accumulate: Bool = false) throws(TorchError) -> Tensor {
        try check("index_put_", gt_index_put_(handle, index.handle, values.handle, accumulate ? 1 : 0))
        return self
    }
    /// In place: `t[index] = value`.
    @discardableResult
    public func indexFill_(_ index: Tensor, _ value: some TensorScalar) throws(TorchError) -> Tensor {
        try check("index_put_", gt_index_fill_(handle, index.handle, value.gtScalar))
        return self
    }
    /// Indices of non-zero elements, (n, rank) int64.
    public func nonzero() throws(TorchError) -> Tensor { try make("nonzero") { gt_nonzero(handle, $0) } }

    public static func cat(_ tensors: [Tensor], dim: Int = 0) throws(TorchError) -> Tensor {
        let hs = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) { () throws(TorchError) -> Tensor in
            try make("cat") { gt_cat(hs, Int32(hs.count), Int64(dim), $0) }
        }
    }
    public static func stack(_ tensors: [Tensor], dim: Int = 0) throws(TorchError) -> Tensor {
        let hs = tensors.map { $0.handle }
        return try withExtendedLifetime(tensors) { () throws(TorchError) -> Tensor in
            try make("stack") { gt_stack(hs, Int32(hs.count), Int64(dim), $0) }
        }
    }
    /// Splits into consecutive pieces of the given sizes along `dim`.
    public func split(_ sizes: [Int], dim: Int = 0) throws(TorchError) -> [Tensor] {
        let s = sizes.map { Int64($0) }
        var outs = [gt_tensor](repeating: gt_tensor(ptr: nil), count: s.count)
        let status = gt_split(handle, s, Int32(s.count), Int64(dim), &outs)
        if status != 0 {
            for o in outs where o.ptr != nil { gt_free(o) }
            throw TorchError.last("split")
        }
        return outs.map { Tensor(owning: $0) }
    }
    public func uniqueSorted() throws(TorchError) -> Tensor { try make("unique") { gt_unique_sorted(handle, $0) } }
    /// Constant padding, `torch.nn.functional.pad` order: (left, right, top, bottom, …) from the last dimension.
    public func pad(_ pads: [Int], value: Double = 0) throws(TorchError) -> Tensor {
        let p = pads.map { Int64($0) }
        return try make("pad") { gt_pad(handle, p, Int32(p.count), value, $0) }
    }
}
