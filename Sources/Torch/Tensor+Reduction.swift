import CGHMTorch

enum ReduceOp: Int32 { case sum = 0, mean, prod, amax, amin, any, all, norm2, countNonzero }

extension Tensor {
    func reduce(_ op: ReduceOp, _ dims: [Int], keepDim: Bool, dtype: DType? = nil) throws(TorchError) -> Tensor {
        let d = dims.map { Int64($0) }
        return try make("\(op)") {
            gt_reduce(op.rawValue, handle, d, Int32(d.count), keepDim ? 1 : 0, dtype?.rawValue ?? -1, $0)
        }
    }

    /// Sum over `dims` (all when empty).
    public func sum(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) throws(TorchError) -> Tensor {
        try reduce(.sum, dims, keepDim: keepDim, dtype: dtype)
    }
    public func sum(dim: Int, keepDim: Bool = false) throws(TorchError) -> Tensor { try sum([dim], keepDim: keepDim) }

    public func mean(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) throws(TorchError) -> Tensor {
        try reduce(.mean, dims, keepDim: keepDim, dtype: dtype)
    }
    public func mean(dim: Int, keepDim: Bool = false) throws(TorchError) -> Tensor { try mean([dim], keepDim: keepDim) }

    public func prod(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.prod, dims, keepDim: keepDim)
    }
    /// Maximum values over `dims` (all when empty), without indices.
    public func amax(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.amax, dims, keepDim: keepDim)
    }
    public func amin(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.amin, dims, keepDim: keepDim)
    }
    public func any(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.any, dims, keepDim: keepDim)
    }
    public func all(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.all, dims, keepDim: keepDim)
    }
    /// The L2 norm over `dims` (all when empty).
    public func norm(_ dims: [Int] = [], keepDim: Bool = false) throws(TorchError) -> Tensor {
        try reduce(.norm2, dims, keepDim: keepDim)
    }
    public func countNonzero(_ dims: [Int] = []) throws(TorchError) -> Tensor {
        try reduce(.countNonzero, dims, keepDim: false)
    }
    /// `torch.linalg.vector_norm(self, ord)` over all elements.
    public func vectorNorm(ord: Double = 2) throws(TorchError) -> Tensor {
        try make("vector_norm") { gt_vector_norm(handle, ord, $0) }
    }

    /// Maximum along `dim` with the indices of the (first) maxima, like `torch.max(t, dim)`.
    public func max(dim: Int, keepDim: Bool = false) throws(TorchError) -> (values: Tensor, indices: Tensor) {
        let r = try make2("max") { gt_max_min_dim(0, handle, Int64(dim), keepDim ? 1 : 0, $0, $1) }
        return (r.0, r.1)
    }
    public func min(dim: Int, keepDim: Bool = false) throws(TorchError) -> (values: Tensor, indices: Tensor) {
        let r = try make2("min") { gt_max_min_dim(1, handle, Int64(dim), keepDim ? 1 : 0, $0, $1) }
        return (r.0, r.1)
    }
    /// The largest element (0-dimensional).
    public func max() throws(TorchError) -> Tensor { try amax() }
    public func min() throws(TorchError) -> Tensor { try amin() }

    public func argmax(dim: Int? = nil, keepDim: Bool = false) throws(TorchError) -> Tensor {
        try make("argmax") { gt_arg_max_min(0, handle, dim == nil ? 0 : 1, Int64(dim ?? 0), keepDim ? 1 : 0, $0) }
    }
    public func argmin(dim: Int? = nil, keepDim: Bool = false) throws(TorchError) -> Tensor {
        try make("argmin") { gt_arg_max_min(1, handle, dim == nil ? 0 : 1, Int64(dim ?? 0), keepDim ? 1 : 0, $0) }
    }
    public func cumsum(dim: Int) throws(TorchError) -> Tensor {
        try make("cumsum") { gt_cumsum(handle, Int64(dim), $0) }
    }

    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) throws(TorchError)
        -> (values: Tensor, indices: Tensor) {
        let r = try make2("topk") { gt_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, sorted ? 1 : 0, $0, $1) }
        return (r.0, r.1)
    }

    public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = false) throws(TorchError)
        -> (values: Tensor, indices: Tensor) {
        let r = try make2("sort") { gt_sort(handle, Int64(dim), descending ? 1 : 0, stable ? 1 : 0, $0, $1) }
        return (r.0, r.1)
    }

    public func argsort(dim: Int = -1, descending: Bool = false, stable: Bool = false) throws(TorchError) -> Tensor {
        try sort(dim: dim, descending: descending, stable: stable).indices
    }
}
