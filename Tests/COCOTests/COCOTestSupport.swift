import Foundation
import XCTest
@testable import COCO

/// The repository root: the first folder above this file that has tools/coco_reference.py.
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("tools/coco_reference.py").path) {
            return url.path
        }
        url.deleteLastPathComponent()
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}()

/// The project venv's interpreter; COCO_TEST_PYTHON overrides it.
let pythonPath: String = ProcessInfo.processInfo.environment["COCO_TEST_PYTHON"]
    ?? COCOPythonTools.defaultPython(repoRoot: repoRoot)

/// Fails the test (never skips) when the venv Python or pycocotools is missing.
func requirePycocotools(file: StaticString = #filePath, line: UInt = #line) throws {
    try requirePython(file: file, line: line)
    do {
        _ = try runPython(code: "import numpy, pycocotools.cocoeval")
    } catch {
        XCTFail("pycocotools is not importable with \(pythonPath): run \(pythonPath) -m pip install pycocotools (\(error))",
                file: file, line: line)
        throw error
    }
}

/// Fails the test (never skips) when the venv Python is missing.
func requirePython(file: StaticString = #filePath, line: UInt = #line) throws {
    guard FileManager.default.isExecutableFile(atPath: pythonPath) else {
        XCTFail("""
            Python not found at \(pythonPath): the COCO tests compare against pycocotools and need the \
            project venv (python3 -m venv .venv && .venv/bin/pip install numpy pycocotools), \
            or COCO_TEST_PYTHON=/path/to/python
            """, file: file, line: line)
        throw COCOError("no python")
    }
}

/// Runs `python -c code args...`; returns stdout, throws with stderr on failure.
@discardableResult
func runPython(code: String, arguments: [String] = []) throws -> String {
    let dir = try makeTempDir("py")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let script = dir + "/script.py"
    try code.write(toFile: script, atomically: true, encoding: .utf8)
    let outPath = dir + "/out", errPath = dir + "/err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: pythonPath)
    p.arguments = [script] + arguments
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try? out.close()
    try? err.close()
    let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    if p.terminationStatus != 0 {
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        throw COCOError("python exited with \(p.terminationStatus): \(stderr)")
    }
    return stdout
}

func makeTempDir(_ tag: String) throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("coco-tests-\(tag)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func writeText(_ text: String, _ dir: String, _ name: String) throws -> String {
    let path = dir + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A small valid ground truth: two images, two categories (ids 7 and 3, in that file order).
let smallGT = """
    {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
                     {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 40], "area": 2000, "iscrowd": 0}],
     "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
     "licenses": [], "info": {"year": 2017}}
    """
