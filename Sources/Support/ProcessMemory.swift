import Foundation

/// This process's memory as Linux reports it in /proc/self/status (nil elsewhere), for benchmarks and
/// `ghm inspect --peak-memory`.
public enum ProcessMemory {
    /// Resident set size now (VmRSS), bytes.
    public static func residentBytes() -> Int? { status("VmRSS:") }

    /// Peak resident set size (VmHWM), bytes.
    public static func peakResidentBytes() -> Int? { status("VmHWM:") }

    /// Resets the peak to the current resident size (Linux ≥ 4.0: "5" to /proc/self/clear_refs); false when the
    /// system does not allow it.
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do {
            try h.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    static func status(_ field: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(field) {
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        return nil
    }
}
