import Foundation
import Support
import Torch
import XCTest

/// Paths of the repository, found from this file's location (Tests/TestSupport/…).
public enum Repo {
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static let python = root + "/.venv/bin/python"
    /// The separate MMDetection 2.16.0 environment made by `tools/mmdet_env.sh` (`make mmdet-env`).
    public static let mmdetPython = root + "/.venv-mmdet/bin/python"
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// A fresh temporary folder inside this test process's own folder in /tmp, which is removed when the process
    /// exits (set GHM_KEEP_TEST_TMP=1 to keep it for inspection): a full test run leaves no litter behind.
    public static func temporaryDirectory(_ name: String = "ghm-test") throws -> String {
        let dir = URL(fileURLWithPath: testTemporaryRoot).appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    /// `/tmp/ghm-tests-<pid>`, created on first use with an exit handler that removes it.
    public static let testTemporaryRoot: String = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ghm-tests-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if ProcessInfo.processInfo.environment["GHM_KEEP_TEST_TMP"] != "1" {
            atexit { try? FileManager.default.removeItem(atPath: Repo.testTemporaryRoot) }
        }
        return root
    }()
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public let stderr: String
    public var description: String { "`\(command)` exited with \(status):\n\(stderr)" }

    public init(command: String, status: Int32, stderr: String) {
        self.command = command
        self.status = status
        self.stderr = stderr
    }
}

/// Output of a finished process.
public struct ProcessResult {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public init(status: Int32, stdout: String, stderr: String) {
        (self.status, self.stdout, self.stderr) = (status, stdout, stderr)
    }
}

/// Runs an executable with arguments and optional standard input; waits; returns status and outputs.
@discardableResult
public func runProcess(_ executable: String, _ args: [String], stdin: String? = nil,
                       environment: [String: String]? = nil, cwd: String? = nil) throws -> ProcessResult {
    let r = try Subprocess.run(executable, args, stdin: stdin.map { Data($0.utf8) }, environment: environment,
                               directory: cwd)
    return ProcessResult(status: r.status, stdout: r.stdoutText, stderr: r.stderrText)
}

/// Runs `interpreter -c code arguments…` (the project venv's Python by default) and returns its standard output;
/// a non-zero exit throws with the end of its standard error.
@discardableResult
public func runPythonScript(_ code: String, arguments: [String] = [], interpreter: String = Repo.python) throws -> String {
    guard FileManager.default.isExecutableFile(atPath: interpreter) else {
        throw ProcessFailure(command: interpreter, status: -1, stderr: "Python not found: run `make setup`")
    }
    return String(decoding: try Subprocess.output(interpreter, ["-c", code] + arguments), as: UTF8.self)
}

/// Runs Python code in the project's virtual environment. The code fills a dict `out` whose values may be tensors,
/// numbers or lists; they come back as JSON (tensors as {"shape": [...], "f64": base64 of little-endian float64},
/// exact: Foundation's JSON number parsing is not correctly rounded).
/// Fails loudly (never skips) when the venv is missing.
public func python(_ code: String) throws -> [String: Any] {
    try runPythonJSON(Repo.python, code, missing: "the project venv is missing: run `make setup`")
}

/// Like `python(_:)`, in the MMDetection 2.16.0 environment with the project's import shims installed, so the
/// code can `import mmdet`. Fails loudly when that environment is missing.
public func mmdetPython(_ code: String) throws -> [String: Any] {
    let shims = """
        import sys
        sys.path.insert(0, \(String(reflecting: Repo.path("tools/mmdet_shims"))))
        import ghm_mmdet_shims
        ghm_mmdet_shims.install()

        """
    return try runPythonJSON(Repo.mmdetPython, shims + code,
                             missing: "the MMDetection environment .venv-mmdet is missing: run `make mmdet-env` (tools/mmdet_env.sh)")
}

func runPythonJSON(_ interpreter: String, _ code: String, missing: String) throws -> [String: Any] {
    guard FileManager.default.isExecutableFile(atPath: interpreter) else {
        throw ProcessFailure(command: interpreter, status: -1, stderr: missing)
    }
    let prelude = """
        import base64, json, math, sys
        import torch
        out = {}

        """
    let epilogue = """

        def _enc(v):
            if isinstance(v, torch.Tensor):
                t = v.detach().cpu()
                if t.dtype == torch.bool: t = t.to(torch.uint8)
                raw = t.reshape(-1).to(torch.float64).contiguous().numpy().tobytes()
                return {"shape": list(t.shape), "f64": base64.b64encode(raw).decode(), "dtype": str(v.dtype)}
            if isinstance(v, (list, tuple)): return [_enc(x) for x in v]
            if isinstance(v, dict): return {k: _enc(x) for k, x in v.items()}
            return v
        sys.stdout.write(json.dumps({k: _enc(v) for k, v in out.items()}))
        """
    let r = try runProcess(interpreter, ["-c", prelude + code + epilogue])
    guard r.status == 0 else { throw ProcessFailure(command: "python", status: r.status, stderr: r.stderr) }
    guard let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
        throw ProcessFailure(command: "python", status: 0, stderr: "output is not a JSON object: \(r.stdout.prefix(200))")
    }
    return obj
}

/// A tensor value decoded from `python(_:)` output.
public struct PyTensor {
    public let shape: [Int]
    public let data: [Double]

    public init?(_ any: Any?) {
        guard let d = any as? [String: Any], let shape = d["shape"] as? [Int], let b64 = d["f64"] as? String,
              let raw = Data(base64Encoded: b64), raw.count % 8 == 0 else { return nil }
        self.shape = shape
        self.data = raw.withUnsafeBytes { p in (0..<raw.count / 8).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) } }
    }
}

/// Asserts that two sequences agree elementwise: |a − b| ≤ atol + rtol·|b|, NaN equal to NaN, same count.
public func assertClose(_ a: [Double], _ b: [Double], atol: Double = 1e-6, rtol: Double = 1e-6, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard a.count == b.count else {
        XCTFail("\(message) count \(a.count) != \(b.count)", file: file, line: line)
        return
    }
    var worst = 0.0, worstIndex = -1
    for i in 0..<a.count where !(a[i] == b[i] || (a[i].isNaN && b[i].isNaN)) {
        let excess = Swift.abs(a[i] - b[i]) - (atol + rtol * Swift.abs(b[i]))
        if excess.isNaN || excess > worst { worst = excess.isNaN ? .infinity : excess; worstIndex = i }
    }
    if worstIndex >= 0 {
        XCTFail("\(message) differ at [\(worstIndex)]: \(a[worstIndex]) vs \(b[worstIndex]) (atol \(atol), rtol \(rtol))",
                file: file, line: line)
    }
}

/// Compares a tensor with a value from `python(_:)`: shape and elements.
public func assertClose(_ t: Tensor, _ ref: Any?, atol: Double = 1e-6, rtol: Double = 1e-6, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard let r = PyTensor(ref) else {
        XCTFail("\(message) reference is not a tensor: \(String(describing: ref).prefix(100))", file: file, line: line)
        return
    }
    XCTAssertEqual(t.shape, r.shape, "\(message) shape", file: file, line: line)
    do {
        assertClose(try t.doubles(), r.data, atol: atol, rtol: rtol, message, file: file, line: line)
    } catch {
        XCTFail("\(message) \(error)", file: file, line: line)
    }
}

/// The resident set size of this process in MB (Linux /proc).
public func residentMemoryMB() -> Double { Double(ProcessMemory.residentBytes() ?? 0) / 1_048_576 }

/// Checkpoints written by Python torch at test time (`tools/make_checkpoint_fixtures.py`), once per test process:
/// the reader's tests and the fuzzer's seeds.
public enum CheckpointFixtures {
    private static let made: Result<String, Error> = Result {
        let dir = try Repo.temporaryDirectory("ckpt-fixtures")
        guard FileManager.default.isExecutableFile(atPath: Repo.python) else {
            throw ProcessFailure(command: Repo.python, status: -1, stderr: "the project venv is missing: run `make setup`")
        }
        let r = try runProcess(Repo.python, [Repo.path("tools/make_checkpoint_fixtures.py"), dir])
        guard r.status == 0 else {
            throw ProcessFailure(command: "make_checkpoint_fixtures.py", status: r.status, stderr: r.stderr)
        }
        return dir
    }

    /// The fixture folder (fails the calling test loudly when Python or the venv is missing).
    public static func dir() throws -> String { try made.get() }

    public static func path(_ name: String) throws -> String { try dir() + "/" + name }

    public static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }
}
