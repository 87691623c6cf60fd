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
        // On Linux parse() can return true after an error: the delegate's first error decides.
        let ok = parser.parse()
        if let (code, line) = collector.firstError ?? (ok ? nil : ((parser.parserError as NSError?)?.code ?? 1, parser.lineNumber)) {
            log.add(path, line, .rejected, "malformed XML (\(describe(code))), file skipped")
            return nil
        }
        return collector.image(file: path, log: &log)
    }

    /// What a parser error code means. On Linux the codes are libxml2's and Foundation's messages are empty, so the
    /// common ones are named here; elsewhere Foundation's `XMLParser.ErrorCode` case name is spelled out.
    static func describe(_ code: Int) -> String {
        #if os(Linux)
        let libxml2 = [4: "empty document", 5: "extra content or unexpected end", 9: "invalid character",
                       23: "unescaped '&' or bad entity", 38: "unescaped '<' in an attribute", 41: "attribute without value",
                       68: "name expected (an unescaped '&' or '<'?)", 73: "'>' expected",
                       76: "opening and ending tag mismatch", 77: "tag not closed (file cut short?)"]
        return libxml2[code].map { "\($0), libxml2 error \(code)" } ?? "libxml2 error \(code)"
        #else
        guard let known = XMLParser.ErrorCode(rawValue: code) else { return "error \(code)" }
        var words = ""
        for c in String(describing: known).replacingOccurrences(of: "Error", with: "") {
            words += c.isUppercase ? " " + c.lowercased() : String(c)
        }
        return words.trimmingCharacters(in: .whitespaces)
        #endif
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
        var firstError: (code: Int, line: Int)?

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
            if firstError == nil { firstError = ((parseError as NSError).code, parser.lineNumber) }
        }

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
