#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a checkpoint: a read-only memory map of a file, or a private copy of an in-memory buffer.
///
/// Structures (zip directory, pickles, JSON headers) are parsed in place from `bytes`; tensor data is copied out
/// with `copy(from:count:to:)`, which for a file uses `pread` straight into the destination, so the bulk of a large
/// file is never paged into this process twice.
final class ByteSource {
    let bytes: UnsafeRawBufferPointer
    let path: String?
    private let fd: Int32
    private let mapped: Bool

    var count: Int { bytes.count }

    /// Maps `path` read-only.
    init(path: String) throws(CheckpointError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError(.io, "cannot open: \(errnoText())", file: path) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errnoText()
            close(fd)
            throw CheckpointError(.io, "cannot stat: \(e)", file: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw CheckpointError(.io, "not a regular file", file: path)
        }
        let size = Int(st.st_size)
        guard size > 0 else {
            close(fd)
            throw CheckpointError(.truncated, "the file is empty", offset: 0, file: path)
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            let e = errnoText()
            close(fd)
            throw CheckpointError(.io, "cannot map \(size) bytes: \(e)", file: path)
        }
        self.bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: size)
        self.fd = fd
        self.mapped = true
        self.path = path
    }

    /// A private copy of `data`.
    init<C: Collection>(copying data: C) where C.Element == UInt8 {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(data.count, 1), alignment: 64)
        let n = data.count
        _ = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n]).initializeMemory(as: UInt8.self, from: data)
        self.bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[0..<n])
        self.fd = -1
        self.mapped = false
        self.path = nil
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
            close(fd)
        } else {
            UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate()
        }
    }

    /// Checks that `count` bytes exist at `offset`.
    func checkRange(_ offset: Int, _ count: Int, _ what: @autoclosure () -> String) throws(CheckpointError) {
        guard offset >= 0, count >= 0, offset <= self.count, count <= self.count - offset else {
            throw CheckpointError(.truncated, "\(what()) needs \(count) bytes at byte \(offset), but the data has only \(self.count) bytes",
                                  offset: offset)
        }
    }

    /// Copies `count` bytes at `offset` to `dst` (range-checked).
    func copy(from offset: Int, count: Int, to dst: UnsafeMutableRawPointer) throws(CheckpointError) {
        try checkRange(offset, count, "data")
        guard count > 0 else { return }
        if !mapped {
            dst.copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
            return
        }
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, Swift.min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(.io, "read failed at byte \(offset + done): \(errnoText())", file: path)
            }
            if n == 0 { throw CheckpointError(.truncated, "the file shrank while reading", offset: offset + done, file: path) }
            done += n
        }
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

/// A bounds-checked little-endian cursor over part of a `ByteSource`.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        self.bytes = bytes
        self.pos = start
        self.end = end
    }

    var remaining: Int { end - pos }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(CheckpointError) {
        guard n >= 0, n <= end - pos else {
            throw CheckpointError(.truncated, "\(what()) needs \(n) bytes, only \(Swift.max(end - pos, 0)) left", offset: pos)
        }
    }

    mutating func u8(_ what: @autoclosure () -> String = "a byte") throws(CheckpointError) -> UInt8 {
        try need(1, what())
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func u16(_ what: @autoclosure () -> String = "a 2-byte integer") throws(CheckpointError) -> UInt16 {
        try need(2, what())
        defer { pos += 2 }
        return UInt16(bytes[pos]) | UInt16(bytes[pos + 1]) << 8
    }

    mutating func u32(_ what: @autoclosure () -> String = "a 4-byte integer") throws(CheckpointError) -> UInt32 {
        try need(4, what())
        defer { pos += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String = "an 8-byte integer") throws(CheckpointError) -> UInt64 {
        try need(8, what())
        defer { pos += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
    }

    /// `n` bytes as a slice of the underlying buffer (no copy).
    mutating func slice(_ n: Int, _ what: @autoclosure () -> String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        try need(n, what())
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws(CheckpointError) {
        try need(n, what())
        pos += n
    }
}

/// Reads a little-endian UInt32/UInt16/UInt64 at an absolute position (caller checked the range).
extension UnsafeRawBufferPointer {
    func le32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    func le16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func le64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}
