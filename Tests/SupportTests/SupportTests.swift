import Foundation
import Support
import TestSupport
import XCTest

final class ChecksumTests: XCTestCase {
    func testKnownValues() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        XCTAssertEqual(Adler32.checksum(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Adler32.checksum([]), 1)
        // Long input: the modulo must be taken before UInt32 overflows.
        let ones = [UInt8](repeating: 255, count: 100_000)
        var a: UInt64 = 1, b: UInt64 = 0
        for x in ones { a = (a + UInt64(x)) % 65521; b = (b + a) % 65521 }
        XCTAssertEqual(Adler32.checksum(ones), UInt32(b << 16 | a))
    }

    /// The slicing-by-8 CRC equals Python's zlib.crc32 for every length around the 8-byte blocks, and feeding it
    /// in pieces equals one call.
    func testCRC32AgainstZlibAndInPieces() throws {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<4099).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let lengths = [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099]
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let out = try runPythonScript("""
            import sys, zlib
            b = bytes.fromhex(sys.argv[1])
            print(' '.join(str(zlib.crc32(b[:int(n)])) for n in sys.argv[2:]))
            """, arguments: [hex] + lengths.map(String.init))
        let expected = out.split(separator: " ").map { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        XCTAssertEqual(lengths.map { CRC32.checksum(Array(bytes.prefix($0))) }, expected)
        var crc = CRC32()
        var i = 0
        for piece in [3, 13, 1, 800, 3282] {
            crc.update(Array(bytes[i..<(i + piece)]))
            i += piece
        }
        XCTAssertEqual(i, bytes.count)
        XCTAssertEqual(crc.value, CRC32.checksum(bytes))
    }
}

final class JSONTextTests: XCTestCase {
    /// What the hand-written writers produce is JSON that Foundation reads back to the same values.
    func testNumbersAndStringsReadBack() throws {
        let numbers: [Double] = [0, -0.0, 1, -3, 0.1, 1e-7, 123456.789, 1e15, 1e300, .leastNonzeroMagnitude, .pi, 0.30000000000000004]
        let strings = ["", "plain", "quote \" and \\ backslash", "tab\tnew\nline\r", "\u{1}\u{1f}", "ünïcödé 🚀"]
        let text = "{\"n\": [" + numbers.map(JSONText.number).joined(separator: ", ") + "], \"s\": ["
            + strings.map(JSONText.quote).joined(separator: ", ") + "]}"
        struct Doc: Decodable { var n: [Double]; var s: [String] }
        let doc = try JSONDecoder().decode(Doc.self, from: Data(text.utf8))
        XCTAssertEqual(doc.n.map(\.bitPattern), numbers.map { $0 == 0 ? 0 : $0.bitPattern })
        XCTAssertEqual(doc.s, strings)
        XCTAssertEqual(JSONText.number(3), "3")
        XCTAssertEqual(JSONText.number(0.5), "0.5")
        XCTAssertEqual(JSONText.number(.nan), "null")
        XCTAssertEqual(JSONText.number(-.infinity), "null")
        XCTAssertEqual(JSONText.quote("\u{1}"), "\"\\u0001\"")
    }
}

final class FilesTests: XCTestCase {
    func testAtomicWriteCreatesFoldersAndLeavesNoTemporaryFile() throws {
        let dir = try Repo.temporaryDirectory("files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a/b/out.json"
        try Files.writeAtomically(Data("one".utf8), to: path)
        try Files.writeAtomically(Data("two".utf8), to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/a/b"), ["out.json"])
    }

    func testErrorsNameThePath() throws {
        let dir = try Repo.temporaryDirectory("files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data().write(to: URL(fileURLWithPath: dir + "/file"))
        XCTAssertThrowsError(try Files.writeAtomically(Data(), to: dir + "/file/x.json")) { error in
            XCTAssertEqual((error as? FileError)?.path, dir + "/file/x.json")
            XCTAssertTrue("\(error)".contains("is not a directory"), "\(error)")
        }
        XCTAssertThrowsError(try Files.prepareDirectory(dir + "/file/out", role: "work dir")) { error in
            XCTAssertTrue("\(error)".hasPrefix("work dir \(dir)/file/out: cannot create it ("), "\(error)")
        }
        XCTAssertThrowsError(try Files.prepareDirectory(dir + "/file", role: "output folder")) { error in
            XCTAssertEqual("\(error)", "output folder \(dir)/file: exists and is not a folder")
        }
        try Files.prepareDirectory(dir + "/new/deep", role: "work dir")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/new/deep"), [])
    }
}

final class SubprocessTests: XCTestCase {
    func testOutputsStatusAndInput() throws {
        let r = try Subprocess.run("/bin/sh", ["-c", "cat; echo err >&2; exit 3"], stdin: Data("in".utf8))
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.stdoutText, "in")
        XCTAssertEqual(r.stderrText, "err\n")
        // more than a pipe buffer on both streams at once must not deadlock
        let big = try Subprocess.output("/bin/sh", ["-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"])
        XCTAssertEqual(big.count, 300_000)
    }

    func testFailuresSayWhat() {
        XCTAssertThrowsError(try Subprocess.output("/bin/sh", ["-c", "echo first >&2; echo last >&2; exit 2"],
                                                   tailLines: 1)) { error in
            XCTAssertEqual("\(error)", "sh -c echo first >&2; echo last >&2; exit 2 exited with status 2:\nlast")
        }
        XCTAssertThrowsError(try Subprocess.run("/no/such/program", [])) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot run program: /no/such/program is not an executable file"),
                          "\(error)")
        }
    }
}

final class StatisticsTests: XCTestCase {
    func testMedian() {
        XCTAssertEqual(Statistics.median([3, 1, 2]), 2)
        XCTAssertEqual(Statistics.median([4, 1, 3, 2]), 2.5)
        XCTAssertTrue(Statistics.median([]).isNaN)
        var calls = 0
        let times = Statistics.time(warmup: 2, runs: 3) { calls += 1 }
        XCTAssertEqual(calls, 5)
        XCTAssertEqual(times.count, 3)
        XCTAssertTrue(times.allSatisfy { $0 >= 0 })
    }
}

final class ConcurrencyTests: XCTestCase {
    /// A producer faster than the consumer never gets more than `capacity` elements ahead, and order is kept.
    func testBoundedQueueOrderAndCapacity() {
        let queue = BoundedQueue<Int>(capacity: 3)
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var pushed = 0, popped = 0, maxAhead = 0
            func update(_ body: (Counts) -> Void) { lock.lock(); body(self); lock.unlock() }
        }
        let counts = Counts()
        let producer = Thread {
            for i in 0..<200 {
                queue.push(i)
                counts.update { $0.pushed += 1; $0.maxAhead = max($0.maxAhead, $0.pushed - $0.popped) }
            }
            queue.close()
        }
        producer.start()
        var received: [Int] = []
        while let x = queue.pop() {
            received.append(x)
            counts.update { $0.popped += 1 }
            if x % 50 == 0 { Thread.sleep(forTimeInterval: 0.01) }
        }
        XCTAssertEqual(received, Array(0..<200))
        XCTAssertLessThanOrEqual(counts.maxAhead, 4)  // 3 queued + the one just popped but not yet counted
    }

    func testBackgroundWorkerRunsInOrderAndReportsTheFirstError() {
        struct Boom: Error {}
        let worker = BackgroundWorker(name: "test", capacity: 2)
        let lock = NSLock()
        var order: [Int] = []
        for i in 0..<5 {
            // once job 2 has failed, submitting throws its error: either way no later job runs
            try? worker.submit { lock.lock(); order.append(i); lock.unlock(); if i == 2 { throw Boom() } }
        }
        XCTAssertThrowsError(try worker.finish()) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(order, [0, 1, 2])  // the jobs after the failing one are skipped
    }
}

final class ProgressTests: XCTestCase {
    func testLinesForLogs() {
        var text = ""
        let p = ProgressReporter(total: 4, label: "train", unit: "it", isTerminal: false, interval: 0) { text += $0 }
        p.advance()
        p.advance(failed: true)
        p.finish()
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].hasPrefix("[train] 1/4 (25%)  "), lines[0])
        XCTAssertTrue(lines[0].contains(" it/s  elapsed 0:00  ETA "), lines[0])
        XCTAssertTrue(lines[2].hasSuffix("(1 failed)"), lines[2])
        XCTAssertEqual(ProgressReporter.clock(3725), "1:02:05")
        XCTAssertEqual(ProgressReporter.clock(65), "1:05")
    }
}
