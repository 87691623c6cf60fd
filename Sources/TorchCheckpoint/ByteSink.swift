#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where writers put bytes: a file being written atomically, or memory.
protocol ByteSink: AnyObject {
    var offset: Int { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws(CheckpointError)
}

extension ByteSink {
    func write(_ bytes: [UInt8]) throws(CheckpointError) {
        do {
            try bytes.withUnsafeBytes { try write($0) }
        } catch {
            throw error as? CheckpointError ?? CheckpointError(.io, "\(error)")
        }
    }
}

final class MemorySink: ByteSink {
    var bytes: [UInt8] = []
    var offset: Int { bytes.count }
    func write(_ p: UnsafeRawBufferPointer) throws(CheckpointError) { bytes.append(contentsOf: p) }
}

/// Writes to a temporary file beside `path` and renames it over `path` on `commit()`; on any failure (or if never
/// committed) the temporary file is removed, so nothing half-written is ever left under `path`.
final class AtomicFileSink: ByteSink {
    let path: String
    let tempPath: String
    private var fd: Int32
    private(set) var offset = 0
    private var committed = false

    init(path: String) throws(CheckpointError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw CheckpointError(.invalidArgument, "no file name in '\(path)'", file: path) }
        tempPath = "\(dir.isEmpty ? "/" : dir)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError(.io, "cannot create \(tempPath): \(errnoText())", file: path) }
    }

    deinit {
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(tempPath)
        }
    }

    func write(_ p: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let base = p.baseAddress else { return }
        var done = 0
        while done < p.count {
            let n = sysWrite(fd, base + done, Swift.min(p.count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(.io, "write failed: \(errnoText())", file: path)
            }
            done += n
        }
        offset += p.count
    }

    /// Flushes, closes and renames the temporary file to `path`.
    func commit() throws(CheckpointError) {
        guard fsync(fd) == 0 else { throw CheckpointError(.io, "fsync failed: \(errnoText())", file: path) }
        let r = close(fd)
        fd = -1
        guard r == 0 else { throw CheckpointError(.io, "close failed: \(errnoText())", file: path) }
        guard rename(tempPath, path) == 0 else { throw CheckpointError(.io, "cannot rename the temporary file: \(errnoText())", file: path) }
        committed = true
    }
}

private func sysWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
