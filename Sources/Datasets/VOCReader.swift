import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads Pascal VOC annotation files (`<annotation>` with `<filename>`, `<size>` and `<object>`s holding `name`,
/// `difficult` and `bndbox`), keeping the line of every element for the messages. `<part>`s of an object are
/// not read.
enum VOCReader {
    /// The XML files of a folder, sorted by name.
    static func files(inFolder dir: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: dir)
        } catch {
            throw DatasetError("\(dir): cannot list the VOC folder (\(error.localizedDescription))")
        }
        return names.filter { $0.lowercased().hasSuffix(".xml") }.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    /// One image, or nil with the reason logged (unreadable or malformed file).
    static func read(_ path: String, log: inout IssueLog) -> RawImage? {
        guard let data = FileManager.default.contents(atPath: path) else {
            log.add(path, nil, .rejected, "cannot read the file")
            return nil
        }
        let parser = XMLParser(data: data)
        let collector = Collector()
        parser.delegate = collector
        if !parser.parse() {
            let why = (parser.parserError as NSError?)?.localizedDescription ?? "unknown error"
            log.add(path, parser.lineNumber, .rejected, "malformed XML, file skipped (\(why))")
            return nil
        }
        return collector.image(file: path, log: &log)
    }

    /// The delegate: remembers the text and line of the elements under the root.
    private final class Collector: NSObject, XMLParserDelegate {
        struct Field { var text = ""; var line = 0 }
        struct Object { var line: Int; var fields: [String: Field] = [:] }

        var stack: [String] = []
        var text = ""
        var lines: [String: Int] = [:]
        var top: [String: Field] = [:]
        var objects: [Object] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            stack.append(name)
            text = ""
            lines[stack.joined(separator: "/")] = parser.lineNumber
            if stack.count == 2 && name == "object" { objects.append(Object(line: parser.lineNumber)) }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let key = stack.joined(separator: "/")
            let field = Field(text: text.trimmingCharacters(in: .whitespacesAndNewlines), line: lines[key] ?? parser.lineNumber)
            let path = Array(stack.dropFirst())
            if path.first == "object", path.count >= 2, !objects.isEmpty {
                let sub = path.dropFirst().joined(separator: "/")
                if ["name", "difficult", "bndbox/xmin", "bndbox/ymin", "bndbox/xmax", "bndbox/ymax"].contains(sub) {
                    objects[objects.count - 1].fields[sub] = field
                }
            } else if ["filename", "size/width", "size/height"].contains(path.joined(separator: "/")) {
                top[path.joined(separator: "/")] = field
            }
            stack.removeLast()
            text = ""
        }

        func image(file: String, log: inout IssueLog) -> RawImage? {
            var name = top["filename"]?.text ?? ""
            if name.isEmpty {
                let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
                log.add(file, top["filename"]?.line, .note, "no <filename>; looking for an image named \(stem).*")
                name = stem
            }
            var image = RawImage(fileName: name, width: Int(top["size/width"]?.text ?? ""),
                                 height: Int(top["size/height"]?.text ?? ""), file: file, line: top["filename"]?.line)
            for object in objects {
                let corners = ["xmin", "ymin", "xmax", "ymax"].map { object.fields["bndbox/" + $0]?.text ?? "" }
                let label = object.fields["name"]?.text ?? ""
                guard !label.isEmpty else {
                    log.add(file, object.line, .rejected, "object without <name>")
                    continue
                }
                let difficult = (object.fields["difficult"]?.text).map { $0 == "1" || $0 == "true" } ?? false
                let line = object.fields["bndbox/xmin"]?.line ?? object.line
                image.boxes.append(RawBox(label: label, corners: corners, difficult: difficult, line: line))
            }
            return image
        }
    }
}
