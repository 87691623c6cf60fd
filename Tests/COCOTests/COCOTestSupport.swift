import Foundation
import TestSupport
import XCTest
import GHMTools
@testable import COCO

let repoRoot = Repo.root

/// The project venv's interpreter.
let pythonPath = Repo.python

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
            project venv (make setup)
            """, file: file, line: line)
        throw COCOError("no python")
    }
}

/// Runs `python -c code args...` in the project venv; returns stdout, throws with stderr on failure.
@discardableResult
func runPython(code: String, arguments: [String] = []) throws -> String {
    try runPythonScript(code, arguments: arguments, interpreter: pythonPath)
}

func makeTempDir(_ tag: String) throws -> String { try Repo.temporaryDirectory("coco-tests-\(tag)") }

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
