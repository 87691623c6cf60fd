import Foundation
import Support

/// The project folder (the one holding `tools/` and the Python environments) for the tools that run the Python
/// reference, and the runner for its scripts.
public enum ProjectRoot {
    /// An explicit path, else upwards from the executable (dist/bin/ghm, .build/release/ghm), else upwards from
    /// the current directory.
    public static func find(_ explicit: String?) throws -> String {
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
        throw ToolError("cannot find the project folder (with tools/ and .venv/); pass --repo PATH")
    }

    /// `<root>/.venv-mmdet/bin/python`, or an error saying how to create it.
    public static func mmdetPython(_ root: String) throws -> String {
        let py = root + "/.venv-mmdet/bin/python"
        guard FileManager.default.isExecutableFile(atPath: py) else {
            throw ToolError("\(py) is missing: `make mmdet-env` creates the MMDetection environment")
        }
        return py
    }

    /// The project's own Python (`<root>/.venv/bin/python`, with torch and numpy) where it exists, else `python3`
    /// (e.g. on a GPU machine whose system Python has a CUDA torch).
    public static func defaultPython(_ root: String) -> String {
        let py = root + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: py) ? py : "python3"
    }

    /// Runs `python <root>/<script> arguments…` and returns its standard output.
    public static func runScript(_ python: String, root: String, _ script: String, _ arguments: [String]) throws -> String {
        String(decoding: try Subprocess.output(python, [root + "/" + script] + arguments), as: UTF8.self)
    }

    /// The last line of a script's output, parsed as a JSON object.
    public static func lastJSONLine(_ output: String, script: String) throws -> [String: Any] {
        guard let line = output.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ToolError("unexpected output of \(script): \(output.suffix(300))")
        }
        return obj
    }
}

/// An error of a tool, shown as it is.
public struct ToolError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
