import Foundation

/// Turns the inputs of `ghm infer` (image files, folders, text files listing paths) into a list of image files,
/// and chooses collision-free output names for them.
public enum InferenceInputs {
    /// File extensions (lower case) taken as images when scanning folders; OpenCV decodes them.
    public static let imageExtensions: Set<String> = [
        "jpg", "jpeg", "jpe", "png", "bmp", "dib", "tif", "tiff", "webp", "jp2", "pbm", "pgm", "ppm", "pnm",
        "sr", "ras", "exr", "hdr", "pic",
    ]

    /// An input that could not be used (missing file, unreadable folder or list, bad list line).
    public struct Problem: Error, CustomStringConvertible, Equatable, Sendable {
        /// The path at fault (for a list line: the listed path).
        public var path: String
        /// Where it came from: the argument itself, or `list.txt:3`.
        public var origin: String?
        public var message: String
        public var description: String { (origin.map { "\($0): " } ?? "") + "\(path): \(message)" }
    }

    /// The image files of `inputs`, in order, without duplicates (the first occurrence of a file is kept), and the
    /// inputs that could not be used.
    ///
    /// * an existing folder: its image files (by extension, sorted by name, hidden files skipped); with `recursive`
    ///   also those of its subfolders (depth first, symbolic-link cycles skipped);
    /// * a file with an image extension: that image (whether it decodes is found out later);
    /// * any other file: a list if it is UTF-8 text, one path per line (blank lines and lines starting with `#`
    ///   are skipped; relative paths are relative to the list's folder; a listed folder is scanned as above),
    ///   else an image;
    /// * a path that does not exist: a problem.
    public static func collect(_ inputs: [String], recursive: Bool = false) -> (files: [String], problems: [Problem]) {
        var collector = Collector(recursive: recursive)
        for input in inputs {
            collector.add(input, origin: nil, allowList: true)
        }
        return (collector.files, collector.problems)
    }

    private struct Collector {
        let recursive: Bool
        var files: [String] = []
        var problems: [Problem] = []
        var seen = Set<String>()
        var visitedFolders = Set<String>()
        let fm = FileManager.default

        init(recursive: Bool) { self.recursive = recursive }

        mutating func add(_ path: String, origin: String?, allowList: Bool) {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                problems.append(Problem(path: path, origin: origin, message: "no such file or folder"))
                return
            }
            if isDir.boolValue {
                scanFolder(path, origin: origin)
            } else if isImageName(path) || !allowList {
                addImage(path)
            } else if let text = readText(path) {
                addList(path, text: text)
            } else {
                addImage(path)  // binary content without an image extension: let the decoder judge it
            }
        }

        mutating func addImage(_ path: String) {
            let key = absolute(path)
            if seen.insert(key).inserted { files.append(path) }
        }

        /// The file's content when it is UTF-8 text without NUL bytes (a list), else nil.
        func readText(_ path: String) -> String? {
            guard let data = fm.contents(atPath: path), !data.contains(0),
                  let text = String(data: data, encoding: .utf8) else { return nil }
            return text
        }

        mutating func addList(_ path: String, text: String) {
            let base = (path as NSString).deletingLastPathComponent  // "" for a list in the current folder
            for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                let entry = line.hasPrefix("/") || base.isEmpty ? line : (base as NSString).appendingPathComponent(line)
                add(entry, origin: "\(path):\(n + 1)", allowList: false)
            }
        }

        mutating func scanFolder(_ path: String, origin: String?) {
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard visitedFolders.insert(real).inserted else { return }  // a cycle or the same folder twice
            let names: [String]
            do {
                names = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
            } catch {
                problems.append(Problem(path: path, origin: origin, message: "cannot list folder (\(error.localizedDescription))"))
                return
            }
            var subfolders: [String] = []
            for name in names {
                let child = (path as NSString).appendingPathComponent(name)
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: child, isDirectory: &isDir) else { continue }
                if isDir.boolValue {
                    subfolders.append(child)
                } else if isImageName(name) {
                    addImage(child)
                }
            }
            if recursive {
                for sub in subfolders { scanFolder(sub, origin: origin) }
            }
        }
    }

    static func isImageName(_ path: String) -> Bool {
        imageExtensions.contains((path as NSString).pathExtension.lowercased())
    }

    /// Absolute, standardised form of `path` (relative to the current folder), for comparisons.
    static func absolute(_ path: String) -> String {
        let p = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (p as NSString).standardizingPath
    }

    /// Extensions kept for drawn images; any other is replaced by appending `.png` (`scan.tif` → `scan.tif.png`).
    public static let drawableExtensions: Set<String> = ["jpg", "jpeg", "png", "bmp"]

    /// Output names (relative paths, `/`-separated) for drawn images, one per file: the file's path relative to
    /// the deepest folder that holds all the files, so `a/x.jpg` and `b/x.jpg` become `a/x.jpg` and `b/x.jpg`
    /// and never collide; the extension is kept when it is one of `drawableExtensions`. Names that would still
    /// collide ignoring case (e.g. `X.jpg` and `x.jpg` on a case-insensitive disk) get `_2`, `_3`, … before the
    /// extension.
    public static func outputNames(for files: [String]) -> [String] {
        let parts = files.map { absolute($0).split(separator: "/").map(String.init) }
        // common folder = longest common prefix of the parent folders
        var common = parts.first.map { Array($0.dropLast()) } ?? []
        for p in parts.dropFirst() {
            let dir = p.dropLast()
            var n = 0
            while n < common.count && n < dir.count && common[n] == dir[n] { n += 1 }
            common.removeLast(common.count - n)
        }
        var used = Set<String>()
        return parts.map { p in
            var name = p.dropFirst(common.count).joined(separator: "/")
            if !drawableExtensions.contains((name as NSString).pathExtension.lowercased()) { name += ".png" }
            var candidate = name, k = 2
            while !used.insert(candidate.lowercased()).inserted {
                let ext = (name as NSString).pathExtension
                candidate = (name as NSString).deletingPathExtension + "_\(k)" + (ext.isEmpty ? "" : "." + ext)
                k += 1
            }
            return candidate
        }
    }
}
