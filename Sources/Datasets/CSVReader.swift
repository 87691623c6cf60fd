import Foundation

/// Reads box CSV files: one row per box, `image_path,xmin,ymin,xmax,ymax,label` (keras-retinanet, DeepForest).
/// A header row naming these columns may come first (its columns may be in any order, other columns are
/// ignored); without one the first six columns are taken in this order. A row whose four coordinates are all
/// empty or all 0 names an image without boxes. Fields may be quoted ("a,b.png").
enum CSVReader {
    static let columns = ["image_path", "xmin", "ymin", "xmax", "ymax", "label"]

    /// The images of one file, in the order they first appear.
    static func read(_ path: String, log: inout IssueLog) -> [RawImage] {
        guard let data = FileManager.default.contents(atPath: path) else {
            log.add(path, nil, .rejected, "cannot read the file")
            return []
        }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        if let first = lines.first, first.hasPrefix("\u{FEFF}") { lines[0] = String(first.dropFirst()) }
        var order = Array(0..<6)
        var startLine = 0
        if let header = lines.first.map(Self.split), Set(columns).isSubset(of: header.map { $0.lowercased() }) {
            let lower = header.map { $0.lowercased() }
            order = columns.map { lower.firstIndex(of: $0)! }
            startLine = 1
        }
        var images: [RawImage] = []
        var indexByName: [String: Int] = [:]
        for n in startLine..<lines.count where !lines[n].trimmingCharacters(in: .whitespaces).isEmpty {
            let lineNumber = n + 1
            let fields = Self.split(lines[n])
            guard fields.count > order.max()! else {
                log.add(path, lineNumber, .rejected, "row has \(fields.count) field\(fields.count == 1 ? "" : "s"), expected \(order.max()! + 1) (\(columns.joined(separator: ",")))")
                continue
            }
            let values = order.map { fields[$0].trimmingCharacters(in: .whitespaces) }
            let name = values[0]
            guard !name.isEmpty else {
                log.add(path, lineNumber, .rejected, "empty image_path")
                continue
            }
            let index = indexByName[name] ?? {
                images.append(RawImage(fileName: name, file: path, line: lineNumber))
                indexByName[name] = images.count - 1
                return images.count - 1
            }()
            let corners = Array(values[1...4])
            if corners.allSatisfy({ $0.isEmpty }) || corners.allSatisfy({ Double($0) == 0 }) { continue }
            images[index].boxes.append(RawBox(label: values[5], corners: corners, line: lineNumber))
        }
        return images
    }

    /// Splits one CSV line on commas outside double quotes; `""` inside quotes is a quote.
    static func split(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { current.append("\"") } else {
                            quoted = false
                            if next == "," { fields.append(current); current = "" } else { current.append(next) }
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" && current.isEmpty {
                quoted = true
            } else if c == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current)
        return fields
    }
}
