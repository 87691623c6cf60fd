import Foundation

#if canImport(Glibc)
import Glibc
#endif

// SIGINT / SIGTERM received by the launcher: forwarded to the ranks by the wait loop.
/// A launcher problem (no socket, a rank that cannot be started).
public struct LaunchError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

nonisolated(unsafe) private var launcherSignal: sig_atomic_t = 0

/// Starts the ranks of a data-parallel job on this machine as torchrun does (`--nproc-per-node N`): N
/// copies of a program with `RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` set. Rank 0's standard
/// output and error are this process's; the other ranks' standard error too (their output is dropped). When a rank
/// fails, the others are sent SIGTERM, then SIGKILL after `grace` seconds if they are still running. SIGINT and
/// SIGTERM received here are passed on to every rank.
public enum RankLauncher {
    /// How a rank ended: its exit status, or the signal that killed it.
    public struct Exit: Sendable, CustomStringConvertible {
        public var rank: Int
        public var status: Int32
        public var signaled: Bool
        /// When it was seen to end among the ranks (0 first).
        public var order: Int
        public var failed: Bool { signaled || status != 0 }
        /// A shell's `$?` for it.
        public var code: Int32 { signaled ? 128 + status : status }
        public var description: String {
            signaled ? "rank \(rank) was killed by signal \(status)" : "rank \(rank) exited with status \(status)"
        }
    }

    /// A free TCP port on the loopback interface (bound, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LaunchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw LaunchError("bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs the `world` ranks to their end and returns how each ended, in rank order. `announce` gets the launcher's
    /// own lines (which rank failed, that the others are being stopped).
    public static func run(executable: String, arguments: [String], world: Int, port: Int,
                           environment extra: [String: String] = [:], grace: Double = 60,
                           announce: @escaping (String) -> Void) throws -> [Exit] {
        let done = DispatchSemaphore(value: 0)
        var procs: [Process] = []
        let base = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        launcherSignal = 0
        signal(SIGINT) { launcherSignal = $0 }
        signal(SIGTERM) { launcherSignal = $0 }
        defer {
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        for r in 0..<world {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
            p.environment = base.merging(["RANK": "\(r)", "LOCAL_RANK": "\(r)", "WORLD_SIZE": "\(world)",
                                          "LOCAL_WORLD_SIZE": "\(world)", "MASTER_ADDR": "127.0.0.1",
                                          "MASTER_PORT": "\(port)"]) { $1 }
            if r != 0 { p.standardOutput = FileHandle.nullDevice }
            p.terminationHandler = { _ in done.signal() }
            do {
                try p.run()
            } catch {
                for q in procs { kill(q.processIdentifier, SIGKILL) }
                throw LaunchError("cannot start rank \(r) (\(executable)): \(error.localizedDescription)")
            }
            procs.append(p)
        }
        var exits = [Exit?](repeating: nil, count: world)
        var stopping = false
        var killAt: Double?
        var forwarded: sig_atomic_t = 0
        while exits.contains(where: { $0 == nil }) {
            _ = done.wait(timeout: .now() + .milliseconds(200))
            if launcherSignal != 0 && launcherSignal != forwarded {
                forwarded = launcherSignal
                for (r, p) in procs.enumerated() where exits[r] == nil { kill(p.processIdentifier, forwarded) }
            }
            // a rank killed by a signal first: it is usually why the others fail
            let ended = procs.enumerated().filter { exits[$0.offset] == nil && !$0.element.isRunning }
                .sorted { ($0.element.terminationReason == .uncaughtSignal ? 0 : 1) < ($1.element.terminationReason == .uncaughtSignal ? 0 : 1) }
            for (r, p) in ended {
                let e = Exit(rank: r, status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                             order: exits.compactMap { $0 }.count)
                exits[r] = e
                if e.failed && !stopping && exits.contains(where: { $0 == nil }) {
                    stopping = true
                    killAt = monotonicSeconds() + grace
                    announce("\(e); stopping the other ranks")
                    for (q, other) in procs.enumerated() where exits[q] == nil { kill(other.processIdentifier, SIGTERM) }
                }
            }
            if let t = killAt, monotonicSeconds() > t {
                for (r, p) in procs.enumerated() where exits[r] == nil {
                    announce("rank \(r) did not stop within \(Int(grace)) s; killing it")
                    kill(p.processIdentifier, SIGKILL)
                }
                killAt = nil
            }
        }
        return exits.map { $0! }
    }

    /// The status a launcher should exit with: 0 when every rank succeeded, else that of the rank that failed first.
    public static func exitCode(_ exits: [Exit]) -> Int32 {
        exits.filter(\.failed).min { $0.order < $1.order }?.code ?? 0
    }
}
