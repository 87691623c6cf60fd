#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Torch
import Support
import TorchCheckpoint

/// A seeded mutation fuzzer for the readers: mutates real checkpoints (bit flips, interesting integers, inserted,
/// deleted, duplicated and spliced ranges, truncation; for zip files also mutations of `data.pkl` re-wrapped with
/// valid CRCs) and loads each result. Every input must either load or throw a `CheckpointError`; a trap would kill
/// the process, so `crashFile` (when set) always holds the input being tried.
public struct CheckpointFuzzer {
    public struct Report: CustomStringConvertible {
        public var iterations = 0
        /// Inputs that loaded without error.
        public var loaded = 0
        /// Inputs refused, by error kind.
        public var rejected: [String: Int] = [:]
        /// Loaded inputs re-written with `CheckpointWriter` and read back.
        public var roundTrips = 0
        /// Problems that are bugs (e.g. a re-written checkpoint that does not read back): iteration and message.
        public var failures: [(iteration: Int, message: String)] = []
        public var slowestSeconds = 0.0
        public var slowestIteration = -1
        public var seconds = 0.0

        public var description: String {
            let kinds = rejected.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            var s = "\(iterations) inputs in \(String(format: "%.1f", seconds)) s: \(loaded) loaded "
                + "(\(roundTrips) re-written and re-read), \(iterations - loaded) refused [\(kinds)]; "
                + "slowest input \(String(format: "%.4f", slowestSeconds)) s (#\(slowestIteration)); "
                + "\(failures.count) failures"
            for f in failures.prefix(10) { s += "\n  #\(f.iteration): \(f.message)" }
            return s
        }
    }

    private var rng: SplitMix64
    private let seeds: [[UInt8]]
    /// For zip seeds: (records before data.pkl content swap) – the entries and their data.
    private let zipRecords: [Int: [(name: String, data: [UInt8])]]

    public init(seeds: [[UInt8]], seed: UInt64) {
        precondition(!seeds.isEmpty, "the fuzzer needs at least one seed input")
        self.seeds = seeds
        self.rng = SplitMix64(seed)
        var z: [Int: [(String, [UInt8])]] = [:]
        for (i, s) in seeds.enumerated() {
            if let recs = try? ZipRecords.read(s) { z[i] = recs }
        }
        self.zipRecords = z
    }

    /// Runs `iterations` mutated inputs. `progress` is called every 1,000 inputs.
    public mutating func run(iterations: Int, crashFile: String? = nil,
                             progress: ((Report) -> Void)? = nil) -> Report {
        var report = Report()
        let fd: Int32 = crashFile.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? -1
        defer { if fd >= 0 { close(fd) } }
        let start = now()
        for i in 0..<iterations {
            var options = CheckpointReadOptions()
            options.verifyChecksums = rng.next() % 2 == 0
            let input = nextInput()
            if fd >= 0 {
                input.withUnsafeBytes { p in _ = pwrite(fd, p.baseAddress, p.count, 0) }
                _ = ftruncate(fd, off_t(input.count))
            }
            let t0 = now()
            exercise(input, options, i, &report)
            let dt = now() - t0
            if dt > report.slowestSeconds { report.slowestSeconds = dt; report.slowestIteration = i }
            report.iterations = i + 1
            if (i + 1) % 1000 == 0 {
                report.seconds = now() - start
                progress?(report)
            }
        }
        report.seconds = now() - start
        return report
    }

    private func exercise(_ input: [UInt8], _ options: CheckpointReadOptions, _ i: Int, _ report: inout Report) {
        let ckpt: Checkpoint
        do {
            ckpt = try Checkpoint.load(bytes: input, options: options)
        } catch {
            report.rejected[error.kind.rawValue, default: 0] += 1
            return
        }
        report.loaded += 1
        _ = CheckpointReport.summary(ckpt)
        for (_, t) in ckpt.root.tensors() where t.numel <= 1 << 16 {
            _ = try? t.contiguous().withUnsafeBytes { p in p.reduce(0) { $0 &+ Int($1) } }
        }
        guard i % 8 == 0 else { return }
        do {
            let bytes = try CheckpointWriter.encode(ckpt.root)
            let again = try Checkpoint.load(bytes: bytes)
            report.roundTrips += 1
            if again.root.tensors().count != ckpt.root.tensors().count {
                report.failures.append((i, "re-written checkpoint has a different number of tensors"))
            }
        } catch where error.kind == .invalidArgument || error.kind == .limitExceeded {
            return  // values the writer refuses (e.g. nesting deeper than it writes)
        } catch {
            report.failures.append((i, "re-written checkpoint does not read back: \(error)"))
        }
    }

    // MARK: mutation

    private mutating func nextInput() -> [UInt8] {
        let s = Int(rng.next() % UInt64(seeds.count))
        if let recs = zipRecords[s], rng.next() % 4 == 0 {
            var r = recs
            if let j = r.firstIndex(where: { $0.name.hasSuffix("/data.pkl") }) {
                r[j].data = mutate(r[j].data)
                if let rebuilt = try? ZipRecords.write(r) { return rebuilt }
            }
        }
        return mutate(seeds[s])
    }

    private mutating func int(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }

    private static let interesting: [UInt64] = [
        0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
        0x1_0000_0000, 1 << 40, 1 << 62, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, ~0,
    ]

    mutating func mutate(_ seed: [UInt8]) -> [UInt8] {
        var b = seed
        let count = rng.next() % 2 == 0 ? 1 : 1 + int(8)
        for _ in 0..<count {
            guard !b.isEmpty else { b = [UInt8(int(256))]; continue }
            let p = int(b.count)
            switch int(10) {
            case 0: b[p] ^= UInt8(1 << int(8))
            case 1: b[p] = UInt8(int(256))
            case 2: b[p] = [0, 1, 0x7f, 0x80, 0xff, 0x2e, 0x28, 0x71][int(8)]
            case 3, 4:
                let v = Self.interesting[int(Self.interesting.count)] &+ UInt64(int(3)) &- 1
                let width = [1, 2, 4, 8][int(4)]
                for k in 0..<width where p + k < b.count { b[p + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 5: b.insert(contentsOf: (0..<(1 + int(16))).map { _ in UInt8(int(256)) }, at: p)
            case 6: b.removeSubrange(p..<Swift.min(b.count, p + 1 + int(32)))
            case 7:
                let n = Swift.min(b.count - p, 1 + int(64))
                let q = int(b.count)
                b.insert(contentsOf: Array(b[p..<(p + n)]), at: q)
            case 8: b.removeSubrange(p...)
            default:
                let other = seeds[int(seeds.count)]
                let q = int(other.count)
                b = Array(b[..<p]) + Array(other[q...])
            }
        }
        return b
    }

    private func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
