import ArgumentParser
import Foundation
import Torch

/// Finds the project folder (the one holding `tools/` and `.venv/`) for commands that call the Python reference:
/// an explicit path, else upwards from the executable (dist/bin/ghm, .build/release/ghm), else upwards from the
/// current directory.
func projectRoot(_ explicit: String?) throws -> String {
    if let explicit { return explicit }
    let fm = FileManager.default
    var starts = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()]
    starts.append(URL(fileURLWithPath: fm.currentDirectoryPath))
    for start in starts {
        var dir = start
        for _ in 0..<6 {
            if fm.fileExists(atPath: dir.appendingPathComponent("tools/mmdet_env.sh").path),
               fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir.path
            }
            dir.deleteLastPathComponent()
        }
    }
    throw ValidationError("cannot find the project folder (with tools/ and .venv/); pass --repo PATH")
}

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
}

/// Runs a command and returns its standard output; throws with its standard error on failure.
func runTool(_ executable: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw RuntimeError("\(URL(fileURLWithPath: executable).lastPathComponent) \(args.joined(separator: " ")) failed "
                           + "(exit \(p.terminationStatus)):\n\(String(decoding: errBox.data, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
}

/// An error whose message is shown as it is.
struct RuntimeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Median of a non-empty list.
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Seconds since an arbitrary start, for timing.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// For commands that run the model: the caching CPU allocator, which keeps freed large blocks for the next image
/// or iteration (GHM_CPU_ALLOCATOR=default turns it off; GHM_CPU_CACHE_MB sets its limit, default a quarter of
/// the memory, at most 4 GiB). Numbers are unaffected; commands that only read files keep libtorch's allocator.
func enableModelAllocator() {
    let env = ProcessInfo.processInfo.environment
    guard env["GHM_CPU_ALLOCATOR"] != "default" else { return }
    let quarter = Int(ProcessInfo.processInfo.physicalMemory / 4)
    let limit = env["GHM_CPU_CACHE_MB"].flatMap(Int.init).map { $0 << 20 } ?? Swift.min(quarter, 4 << 30)
    try? Torch.enableCachingAllocator(limitBytes: limit)
}
