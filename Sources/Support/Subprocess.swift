import Foundation

/// Runs a program and collects what it printed: the one process launcher of the project (the Python reference,
/// benchmarks' memory probes, tests that run `ghm`).
public enum Subprocess {
    /// A finished process.
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: Data
        public let stderr: Data
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// A program that could not be started or that exited with a non-zero status.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// The program and its first arguments, as a user would type them.
        public let command: String
        /// The exit status; nil when it could not be started.
        public let status: Int32?
        /// Why it could not start, or the last lines of its standard error.
        public let detail: String
        public var description: String {
            guard let status else { return "cannot run \(command): \(detail)" }
            return "\(command) exited with status \(status)" + (detail.isEmpty ? "" : ":\n\(detail)")
        }
    }

    /// Runs `executable arguments…` to completion and returns its status and outputs, whatever the status. Both
    /// pipes are drained concurrently, so a chatty child never blocks. `stdin` is written to its standard input
    /// (otherwise it reads an empty one); `environment` entries are added to this process's environment.
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil, directory: String? = nil) throws(Failure) -> Result {
        let command = commandLine(executable, arguments)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw Failure(command: command, status: nil, detail: "\(executable) is not an executable file")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        do {
            try p.run()
        } catch {
            throw Failure(command: command, status: nil, detail: error.localizedDescription)
        }
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        if let stdin { try? inp.fileHandleForWriting.write(contentsOf: stdin) }
        try? inp.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: outData, stderr: errBox.data)
    }

    /// Runs the program and returns its standard output; a non-zero exit throws a `Failure` with the last
    /// `tailLines` lines of its standard error.
    public static func output(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                              environment: [String: String]? = nil, directory: String? = nil,
                              tailLines: Int = 20) throws(Failure) -> Data {
        let r = try run(executable, arguments, stdin: stdin, environment: environment, directory: directory)
        guard r.status == 0 else {
            let tail = r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
                .split(separator: "\n", omittingEmptySubsequences: false).suffix(tailLines)
            throw Failure(command: commandLine(executable, arguments), status: r.status,
                          detail: tail.joined(separator: "\n"))
        }
        return r.stdout
    }

    /// The program's name and its first two arguments, for messages.
    static func commandLine(_ executable: String, _ arguments: [String]) -> String {
        ([URL(fileURLWithPath: executable).lastPathComponent] + arguments.prefix(2)).joined(separator: " ")
            + (arguments.count > 2 ? " …" : "")
    }
}
