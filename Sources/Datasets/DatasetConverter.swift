import COCO
import Foundation
import Imaging
import Support

/// VOC XML folders and box CSV files to one COCO instances file.
///
/// Coordinates are used as written: `bbox = [xmin, ymin, xmax - xmin, ymax - ymin]`, `area = w * h` (as mmdet's
/// VOC loader, which takes them as they are, and DeepForest, which treats them as pixel edges). Every box is
/// checked; what is wrong is logged with its file and line:
/// - rejected (left out): a coordinate that is not a finite number, `xmax <= xmin` or `ymax <= ymin`, a box
///   wholly outside the image, a class not in `classes` (when given), an image that cannot be found or read
///   (with all its boxes), a malformed XML file, a CSV row with too few fields;
/// - clipped (kept): a box reaching more than 1 px outside the image is cut to it; one reaching out by 1 px or
///   less (VOC's 1-based `xmax = width`) is cut without a message and only counted.
public struct DatasetConverter {
    public enum Difficult: String, CaseIterable, Sendable {
        /// An ordinary box (`iscrowd` 0), as DeepForest.
        case keep
        /// `iscrowd` 1: mmdet then ignores the box in training and evaluation, as its VOC loader does.
        case crowd
    }

    public struct Options: Sendable {
        /// Where the images are; `file_name` is relative to it.
        public var imagesDir: String
        /// The categories, in this order (ids 1...K); nil: the names found, sorted.
        public var classes: [String]?
        /// Renames applied to labels before anything else (`Alive` → `Tree`).
        public var classMap: [String: String] = [:]
        public var difficult: Difficult = .keep

        public init(imagesDir: String, classes: [String]? = nil, classMap: [String: String] = [:],
                    difficult: Difficult = .keep) {
            self.imagesDir = imagesDir
            self.classes = classes
            self.classMap = classMap
            self.difficult = difficult
        }
    }

    public struct Result: Sendable {
        public let dataset: DatasetFile
        public let log: IssueLog
        /// Boxes cut by 1 px or less (not reported one by one).
        public let slightlyClipped: Int
        public var rejected: Int { log.count(.rejected) }
        public var clipped: Int { log.count(.clipped) }
    }

    let options: Options
    var log: IssueLog
    var slightlyClipped = 0

    public init(options: Options, log: IssueLog = IssueLog()) {
        self.options = options
        self.log = log
    }

    /// Converts the XML files of the `voc` folders (sorted by name, folder by folder) and the rows of the `csv`
    /// files, in this order.
    public mutating func convert(voc: [String], csv: [String]) throws -> Result {
        var raw: [RawImage] = []
        for dir in voc {
            let files = try VOCReader.files(inFolder: dir)
            if files.isEmpty { throw DatasetError("\(dir): no .xml files in the VOC folder") }
            for file in files { if let image = VOCReader.read(file, log: &log) { raw.append(image) } }
        }
        for file in csv { raw += CSVReader.read(file, log: &log) }
        return try build(raw)
    }

    mutating func build(_ raw: [RawImage]) throws -> Result {
        var images: [COCOImage] = []
        var boxes: [(image: Int, label: String, box: COCOBox, difficult: Bool)] = []
        var seen: [String: String] = [:]
        for item in raw {
            guard let (name, width, height) = resolve(item) else { continue }
            if let first = seen[name] {
                log.add(item.file, item.line, .rejected, "image \(name) already given by \(first); its boxes here are skipped")
                continue
            }
            seen[name] = item.line.map { "\(item.file):\($0)" } ?? item.file
            images.append(COCOImage(id: images.count + 1, fileName: name, width: width, height: height))
            for box in item.boxes {
                guard let (label, b) = check(box, file: item.file, width: width, height: height) else { continue }
                boxes.append((images.count, label, b, box.difficult))
            }
        }
        let names = options.classes ?? Array(Set(boxes.map(\.label))).sorted()
        let categories = names.enumerated().map { COCOCategory(id: $0.offset + 1, name: $0.element) }
        let categoryIds = Dictionary(uniqueKeysWithValues: categories.map { ($0.name, $0.id) })
        let annotations = boxes.enumerated().map { n, b in
            COCOAnnotation(id: n + 1, imageId: b.image, categoryId: categoryIds[b.label]!, bbox: b.box,
                           isCrowd: b.difficult && options.difficult == .crowd)
        }
        let dataset = try DatasetFile(images: images, annotations: annotations, categories: categories)
        return Result(dataset: dataset, log: log, slightlyClipped: slightlyClipped)
    }

    /// The image's name relative to the images folder and its size, or nil (logged).
    mutating func resolve(_ item: RawImage) -> (String, Int, Int)? {
        guard let name = findImage(item) else { return nil }
        if let w = item.width, let h = item.height, w > 0, h > 0 { return (name, w, h) }
        let path = (options.imagesDir as NSString).appendingPathComponent(name)
        do {
            let image = try Image.read(path)
            return (name, image.width, image.height)
        } catch {
            log.add(item.file, item.line, .rejected, "cannot read image \(path) for its size (\(error)); its boxes are skipped")
            return nil
        }
    }

    static let imageExtensions = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"]

    /// The exact name when that file exists, else the one file with the same stem and an image extension.
    mutating func findImage(_ item: RawImage) -> String? {
        let fm = FileManager.default
        let path = (options.imagesDir as NSString).appendingPathComponent(item.fileName)
        if fm.fileExists(atPath: path) { return item.fileName }
        let stem = (item.fileName as NSString).deletingPathExtension
        let candidates = Self.imageExtensions.flatMap { [$0, $0.uppercased()] }.map { stem + "." + $0 }
            .filter { fm.fileExists(atPath: (options.imagesDir as NSString).appendingPathComponent($0)) }
        if candidates.count == 1 {
            log.add(item.file, item.line, .note, "image \(item.fileName) not found in \(options.imagesDir); using \(candidates[0])")
            return candidates[0]
        }
        let also = candidates.isEmpty ? "" : " (several with its stem: \(candidates.joined(separator: ", ")))"
        log.add(item.file, item.line, .rejected, "image not found: \(path)\(also); its \(item.boxes.count) boxes are skipped")
        return nil
    }

    /// The box as COCO's [x, y, w, h] in the image, or nil (logged).
    mutating func check(_ box: RawBox, file: String, width: Int, height: Int) -> (String, COCOBox)? {
        let names = ["xmin", "ymin", "xmax", "ymax"]
        var v: [Double] = []
        for (name, text) in zip(names, box.corners) {
            guard let x = Double(text), x.isFinite else {
                log.add(file, box.line, .rejected, text.isEmpty ? "\(name) is missing" : "\(name) '\(text)' is not a number")
                return nil
            }
            v.append(x)
        }
        let label = options.classMap[box.label] ?? box.label
        let corners = "(\(box.corners.joined(separator: ", ")))"
        if v[2] <= v[0] || v[3] <= v[1] {
            let axis = v[2] <= v[0] ? "xmax <= xmin" : "ymax <= ymin"
            log.add(file, box.line, .rejected, "\(axis) in box \(corners)")
            return nil
        }
        if let classes = options.classes, !classes.contains(label) {
            log.add(file, box.line, .rejected, "class '\(label)' is not in --classes (\(classes.joined(separator: ",")))")
            return nil
        }
        let w = Double(width), h = Double(height)
        if v[2] <= 0 || v[3] <= 0 || v[0] >= w || v[1] >= h {
            log.add(file, box.line, .rejected, "box \(corners) is outside the \(width)x\(height) image")
            return nil
        }
        let c = [max(v[0], 0), max(v[1], 0), min(v[2], w), min(v[3], h)]
        let cut = zip(v, c).map { abs($0 - $1) }.max()!
        if cut > 1 {
            log.add(file, box.line, .clipped, "box \(corners) reaches outside the \(width)x\(height) image; clipped to "
                    + "(\(c.map { JSONText.number($0) }.joined(separator: ", ")))")
        } else if cut > 0 {
            slightlyClipped += 1
        }
        return (label, COCOBox(x1: c[0], y1: c[1], x2: c[2], y2: c[3]))
    }
}
