import CGHMTorch

/// Process-wide libtorch settings and facts.
public enum Torch {
    /// The libtorch version the shim was compiled against, e.g. "2.13.0".
    public static var version: String {
        var buf = [CChar](repeating: 0, count: 64)
        gt_version(&buf, buf.count)
        return String(cString: buf)
    }

    public static var cudaAvailable: Bool {
        var v: Int32 = 0
        gt_cuda_is_available(&v)
        return v != 0
    }

    public static var cudaDeviceCount: Int {
        var v: Int32 = 0
        gt_cuda_device_count(&v)
        return Int(v)
    }

    /// Intra-op threads (`torch.get_num_threads`).
    public static var threads: Int {
        var v: Int32 = 0
        gt_get_num_threads(&v)
        return Int(v)
    }

    public static func setThreads(_ n: Int) throws(TorchError) {
        try check("set_num_threads", gt_set_num_threads(Int32(n)))
    }

    /// Seeds the global generator (`torch.manual_seed`).
    public static func manualSeed(_ seed: UInt64) throws(TorchError) {
        try check("manual_seed", gt_manual_seed(seed))
    }

    public static var gradEnabled: Bool {
        var v: Int32 = 0
        gt_grad_enabled(&v)
        return v != 0
    }

    /// Keeps freed large CPU blocks (≥ 1 MiB) for reuse, up to `limitBytes`, instead of returning each to the system:
    /// repeated inference then stops paying for fresh mappings and page faults. Numbers are unaffected.
    public static func enableCachingAllocator(limitBytes: Int) throws(TorchError) {
        try check("enable_caching_allocator", gt_enable_caching_allocator(Int64(limitBytes)))
    }

    /// Gives libtorch's default CPU allocator back (what a process has before `enableCachingAllocator`); the cache is
    /// emptied, and blocks still alive are freed when released.
    public static func disableCachingAllocator() throws(TorchError) {
        try check("disable_caching_allocator", gt_disable_caching_allocator())
    }

    /// Whether `enableCachingAllocator` is in force.
    public static var cachingAllocatorEnabled: Bool {
        var v: Int32 = 0
        gt_caching_allocator_enabled(&v)
        return v != 0
    }

    /// Bytes held by the caching allocator for reuse, and blocks it has handed out that are still alive.
    public static var cachingAllocatorStats: (cachedBytes: Int, liveBlocks: Int) {
        var c: Int64 = 0, l: Int64 = 0
        gt_caching_allocator_stats(&c, &l)
        return (Int(c), Int(l))
    }

    /// TensorFloat-32 on CUDA for cuDNN convolutions and for cuBLAS matmuls (`torch.backends.cudnn.allow_tf32`,
    /// `torch.backends.cuda.matmul.allow_tf32`). libtorch's defaults: convolutions on, matmuls off. Parity checks
    /// turn both off (TF32 keeps 10 mantissa bits).
    public static var allowTF32: (cudnn: Bool, cublas: Bool) {
        get {
            var c: Int32 = 0, b: Int32 = 0
            gt_allow_tf32(&c, &b)
            return (c != 0, b != 0)
        }
        set { gt_set_allow_tf32(newValue.cudnn ? 1 : 0, newValue.cublas ? 1 : 0) }
    }

    /// The CUDA caching allocator's bytes on device `index`: in use now, the peak in use and the peak reserved since
    /// the last reset (`torch.cuda.memory_allocated`, `max_memory_allocated`, `max_memory_reserved`); `resetPeak`
    /// resets the peaks first. Throws without CUDA.
    public static func acceleratorMemory(device index: Int, resetPeak: Bool = false) throws(TorchError)
        -> (allocated: Int, peakAllocated: Int, peakReserved: Int) {
        var a: Int64 = 0, p: Int64 = 0, r: Int64 = 0
        try check("accelerator_memory", gt_accelerator_memory(Int32(index), resetPeak ? 1 : 0, &a, &p, &r))
        return (Int(a), Int(p), Int(r))
    }

    /// Waits for queued CUDA work on every device (no-op without CUDA); use before reading a timer.
    public static func synchronize() throws(TorchError) {
        try check("cuda_synchronize", gt_cuda_synchronize())
    }
}
