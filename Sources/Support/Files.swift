import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file or folder that could not be read, created or written: `path: message`.
public struct FileError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    public let path: String
    public let message: String
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
    public var errorDescription: String? { description }
}

/// File-system helpers every module writes through: nothing half-written, clear reasons.
public enum Files {
    /// Writes `data` next to `path` under a temporary name and renames it over `path`, so that a reader never
    /// sees a half-written file; creates the parent folders.
    public static func writeAtomically(_ data: Data, to path: String) throws(FileError) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            } catch {
                throw FileError(path: path, "cannot create directory \(dir.path) (\(reason(error)))")
            }
        } else if !isDirectory.boolValue {
            throw FileError(path: path, "\(dir.path) is not a directory")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString.prefix(8))")
        do {
            try data.write(to: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw FileError(path: path, "cannot write file (\(reason(error)))")
        }
        if rename(tmp.path, url.path) != 0 {
            let why = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw FileError(path: path, "cannot rename temporary file into place (\(why))")
        }
    }

    /// Creates the folder `path` (with its parents) if needed and checks that files can be created in it, so a
    /// long run fails before it starts rather than at its end. `role` names it in the error ("output folder",
    /// "work dir"): `output folder out/: cannot create it (Permission denied)`. Creates nothing when it fails.
    public static func prepareDirectory(_ path: String, role: String) throws(FileError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let label = "\(role) \(path)"
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileError(path: label, "exists and is not a folder") }
        } else {
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw FileError(path: label, "cannot create it (\(reason(error)))")
            }
        }
        let probe = (path as NSString).appendingPathComponent(".ghm-write-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        guard fm.createFile(atPath: probe, contents: Data()) else {
            throw FileError(path: label, "not writable")
        }
        try? fm.removeItem(atPath: probe)
    }

    /// The operating system's reason for a Foundation file error ("Permission denied", "Not a directory"), else
    /// Foundation's own description.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return error.localizedDescription
    }
}
