import ArgumentParser
import Foundation
import Torch

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
}

/// For commands that run the model: the caching CPU allocator, which keeps freed large blocks for the next image
/// or iteration (GHM_CPU_ALLOCATOR=default turns it off; GHM_CPU_CACHE_MB sets its limit, default a quarter of
/// the memory, at most 4 GiB). Numbers are unaffected; commands that only read files keep libtorch's allocator.
///
/// Training keeps libtorch's own allocator unless GHM_CPU_ALLOCATOR=caching: an iteration frees many block sizes that
/// it never asks for again, so the cache grows the peak (`ghm bench train`: 1.38× mmdet's peak with it, 1.01×
/// without) for no gain in time that matters there.
func enableModelAllocator(training: Bool = false) {
    let env = ProcessInfo.processInfo.environment
    guard env["GHM_CPU_ALLOCATOR"] != "default" else { return }
    if training && env["GHM_CPU_ALLOCATOR"] != "caching" { return }
    let quarter = Int(ProcessInfo.processInfo.physicalMemory / 4)
    let limit = env["GHM_CPU_CACHE_MB"].flatMap(Int.init).map { $0 << 20 } ?? Swift.min(quarter, 4 << 30)
    try? Torch.enableCachingAllocator(limitBytes: limit)
}
