import COCO
import Foundation
import Support

/// Runs the project's Python helpers (`tools/make_coco_fixture.py`, `tools/coco_reference.py`)
/// for tests and the benchmark.
public enum COCOPythonTools {
    /// What `tools/coco_reference.py` reports (pycocotools' numbers).
    public struct Reference: Sendable {
        public var stats: [Double]
        /// (category id, AP) in ascending id order; nil AP where undefined.
        public var perCategory: [(id: Int, ap: Double?)]
        /// The 12 lines pycocotools printed.
        public var table: String
        /// With `full`: `eval['precision']` and `eval['recall']` flattened row-major.
        public var precision: [Double]?
        public var recall: [Double]?
        /// With `time > 0`: wall seconds of each evaluate + accumulate + summarize.
        public var times: [Double]
    }

    /// `<repoRoot>/.venv/bin/python`.
    public static func defaultPython(repoRoot: String) -> String {
        URL(fileURLWithPath: repoRoot).appendingPathComponent(".venv/bin/python").path
    }

    /// Runs `python script args...` in `repoRoot` and returns its standard output. A missing interpreter or a
    /// non-zero exit is a COCOError with the end of the standard error.
    public static func run(python: String, script: String, arguments: [String], repoRoot: String) throws -> Data {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw COCOError(file: python, "Python interpreter not found; create the project venv (make setup)")
        }
        let scriptPath = URL(fileURLWithPath: repoRoot).appendingPathComponent(script).path
        guard FileManager.default.fileExists(atPath: scriptPath) else {
            throw COCOError(file: scriptPath, "script not found")
        }
        do {
            return try Subprocess.output(python, [scriptPath] + arguments, directory: repoRoot, tailLines: 8)
        } catch {
            throw COCOError(file: script, error.status.map { "exited with status \($0)" + (error.detail.isEmpty ? "" : ":\n\(error.detail)") }
                                ?? "cannot start (\(error.detail))")
        }
    }

    /// Writes a fixture (`gt.json`, `dets.json`) into `outDir` with `tools/make_coco_fixture.py`.
    @discardableResult
    public static func makeFixture(repoRoot: String, python: String? = nil, seed: Int, outDir: String,
                                   images: Int = 60, categories: Int = 8, detsPerImage: Double = 12,
                                   zeroAnnotationId: Bool = false) throws -> (gt: String, dets: String) {
        var args = ["--seed", String(seed), "--out-dir", outDir, "--images", String(images),
                    "--categories", String(categories), "--dets-per-image", String(detsPerImage)]
        if zeroAnnotationId { args.append("--zero-ann-id") }
        _ = try run(python: python ?? defaultPython(repoRoot: repoRoot), script: "tools/make_coco_fixture.py",
                    arguments: args, repoRoot: repoRoot)
        let dir = URL(fileURLWithPath: outDir)
        return (dir.appendingPathComponent("gt.json").path, dir.appendingPathComponent("dets.json").path)
    }

    /// Evaluates with pycocotools through `tools/coco_reference.py`.
    public static func reference(repoRoot: String, python: String? = nil, ann: String, results: String,
                                 full: Bool = false, time: Int = 0) throws -> Reference {
        var args = ["--ann", ann, "--results", results]
        if full { args.append("--full") }
        if time > 0 { args += ["--time", String(time)] }
        let out = try run(python: python ?? defaultPython(repoRoot: repoRoot), script: "tools/coco_reference.py",
                          arguments: args, repoRoot: repoRoot)
        struct Raw: Decodable {
            struct Cat: Decodable { var id: Int; var ap: Double? }
            var stats: [Double]
            var per_category: [Cat]
            var table: String
            var precision: [Double]?
            var recall: [Double]?
            var times: [Double]?
        }
        let raw: Raw
        do {
            raw = try JSONDecoder().decode(Raw.self, from: out)
        } catch {
            throw COCOError(file: "tools/coco_reference.py", "unexpected output (\(error))")
        }
        return Reference(stats: raw.stats, perCategory: raw.per_category.map { ($0.id, $0.ap) }, table: raw.table,
                         precision: raw.precision, recall: raw.recall, times: raw.times ?? [])
    }
}
