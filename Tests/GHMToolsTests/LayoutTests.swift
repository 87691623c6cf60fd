import Foundation
import TestSupport
import XCTest

/// The README's layer table, checked against the sources: every module imports only modules on lower layers,
/// and the libraries a user links import nothing of the tools.
final class LayoutTests: XCTestCase {
    static let layers: [String: Int] = [
        "Support": 0, "Torch": 0, "TorchNN": 1, "GHMLosses": 2, "TorchCheckpoint": 2, "Imaging": 2,
        "Detection": 3, "COCO": 3, "Inference": 4, "Datasets": 4, "Training": 5, "GHMTools": 5, "ghm": 6,
    ]

    func testImportsPointDown() throws {
        let sources = Repo.path("Sources")
        let modules = try FileManager.default.contentsOfDirectory(atPath: sources).filter { !$0.hasPrefix("CGHM") }
        XCTAssertEqual(Set(modules), Set(Self.layers.keys), "a module is missing from the layer table (and the README)")
        var problems: [String] = []
        for module in modules {
            let layer = try XCTUnwrap(Self.layers[module])
            let dir = sources + "/" + module
            for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") {
                    let imported = String(line.dropFirst("import ".count)).trimmingCharacters(in: .whitespaces)
                    guard let other = Self.layers[imported] else { continue }  // Foundation, Yams, the C modules …
                    if other >= layer { problems.append("\(module)/\(file) imports \(imported) (layer \(other) ≥ \(layer))") }
                }
            }
        }
        XCTAssertEqual(problems, [])
    }

    /// Nothing in a library starts Python or benchmarks: those words belong to GHMTools and the tool.
    func testLibrariesHoldNoToolCode() throws {
        let sources = Repo.path("Sources")
        var problems: [String] = []
        for module in Self.layers.keys where module != "GHMTools" && module != "ghm" {
            let dir = sources + "/" + module
            for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
                for word in [".venv", "python", "Benchmark", "XCTest"] where text.contains(word) {
                    problems.append("\(module)/\(file) mentions \(word)")
                }
            }
        }
        XCTAssertEqual(problems, [])
    }
}
