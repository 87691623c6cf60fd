import COCO
import Detection
import Foundation

/// One training image as mmdet's `CocoDataset` gives it after `_parse_ann_info`: boxes x1 y1 x2 y2 (float32, no
/// +1) and 0-based labels; crowd boxes go to `bboxesIgnore` (not used by RetinaNet's loss).
public struct TrainSample: Sendable, Equatable {
    public var imageId: Int
    public var fileName: String
    /// `img_prefix` + `file_name`.
    public var path: String
    public var width: Int
    public var height: Int
    public var bboxes: [[Float]]
    public var labels: [Int]
    public var bboxesIgnore: [[Float]]
    /// Aspect-ratio group: 1 when width > height (`_set_group_flag`).
    public var flag: Int { width > height ? 1 : 0 }
}

/// mmdet 2.16's `CocoDataset` for training (`test_mode=False`): classes, `_filter_imgs`, `_parse_ann_info`.
///
/// - Classes: every category of the file, or the `classes` named in the config; labels follow the annotation
///   file's category order either way (mmdet's `cat_ids = coco.get_cat_ids(cat_names=CLASSES)`), so
///   `classNames[label]` is the name of `catIds[label]`.
/// - `_filter_imgs`: an image is kept when it has an annotation of any category and one of a selected category
///   (from the raw file, before parsing; only with `filter_empty_gt`) and min(width, height) ≥ 32.
/// - `_parse_ann_info`: `ignore` objects are skipped first; then boxes not intersecting the image, with an `area`
///   field ≤ 0, width or height < 1, or of an unselected category are dropped; crowd boxes are kept as ignored.
public struct TrainDataset: Sendable {
    public let annFile: String
    public let imgPrefix: String
    /// Label → category id.
    public let catIds: [Int]
    /// Label → category name.
    public let classNames: [String]
    public let samples: [TrainSample]
    /// Images left out by `_filter_imgs`, with the reason.
    public let filtered: [(id: Int, fileName: String, reason: String)]

    public var flags: [Int] { samples.map(\.flag) }
    public var count: Int { samples.count }

    public init(config: DatasetConfig, filterEmptyGt: Bool? = nil, minSize: Int = 32) throws {
        let path = config.annFile
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError("\(path): annotation file not found")
        }
        let raw: RawFile
        do {
            raw = try COCOJSON.decode(RawFile.self, from: try COCOJSON.readFile(path), file: path)
        } catch {
            throw TrainingError("unreadable annotation file: \(error)")
        }
        annFile = path
        imgPrefix = config.imgPrefix
        // classes: all categories, or those named (file order)
        var seen = Set<Int>()
        for (i, c) in raw.categories.enumerated() where !seen.insert(c.id).inserted {
            throw TrainingError("\(path): categories[\(i)]: duplicate category id \(c.id)")
        }
        let cats: [COCOCategory]
        if let wanted = config.classes {
            let names = Set(wanted)
            cats = raw.categories.filter { names.contains($0.name) }
            let found = Set(cats.map(\.name))
            let missing = wanted.filter { !found.contains($0) }
            guard missing.isEmpty else {
                throw TrainingError("\(path): classes \(missing.map { "'\($0)'" }.joined(separator: ", ")) of the config "
                                    + "are not categories of the file (it has \(raw.categories.map(\.name)))")
            }
        } else {
            cats = raw.categories
        }
        guard !cats.isEmpty else { throw TrainingError("\(path): no categories") }
        catIds = cats.map(\.id)
        classNames = cats.map(\.name)
        var labelOf: [Int: Int] = [:]
        for (i, id) in catIds.enumerated() { labelOf[id] = i }

        var imageIds = Set<Int>()
        for (i, im) in raw.images.enumerated() where !imageIds.insert(im.id).inserted {
            throw TrainingError("\(path): images[\(i)]: duplicate image id \(im.id)")
        }
        var annsByImage: [Int: [COCOAnnotation]] = [:]
        for a in raw.annotations ?? [] { annsByImage[a.imageId, default: []].append(a) }

        let filterEmpty = filterEmptyGt ?? config.filterEmptyGt
        var kept: [TrainSample] = []
        var dropped: [(id: Int, fileName: String, reason: String)] = []
        for (i, im) in raw.images.enumerated() {
            guard let name = im.fileName else { throw TrainingError("\(path): images[\(i)] (id \(im.id)) has no file_name") }
            guard let w = im.width, let h = im.height else {
                throw TrainingError("\(path): images[\(i)] (id \(im.id)) needs width and height")
            }
            let anns = annsByImage[im.id] ?? []
            if filterEmpty {
                if anns.isEmpty { dropped.append((im.id, name, "no annotation")); continue }
                if !anns.contains(where: { labelOf[$0.categoryId] != nil }) {
                    dropped.append((im.id, name, "no annotation of a selected category"))
                    continue
                }
            }
            if Swift.min(w, h) < minSize { dropped.append((im.id, name, "smaller than \(minSize) px")); continue }
            var s = TrainSample(imageId: im.id, fileName: name, path: (config.imgPrefix as NSString).appendingPathComponent(name),
                                width: w, height: h, bboxes: [], labels: [], bboxesIgnore: [])
            for a in anns {
                if a.ignore { continue }
                let b = a.bbox
                let interW = Swift.max(0, Swift.min(b.x + b.width, Double(w)) - Swift.max(b.x, 0))
                let interH = Swift.max(0, Swift.min(b.y + b.height, Double(h)) - Swift.max(b.y, 0))
                if interW * interH == 0 { continue }
                if a.area <= 0 || b.width < 1 || b.height < 1 { continue }
                guard let label = labelOf[a.categoryId] else { continue }
                let box = [Float(b.x), Float(b.y), Float(b.x + b.width), Float(b.y + b.height)]
                if a.isCrowd {
                    s.bboxesIgnore.append(box)
                } else {
                    s.bboxes.append(box)
                    s.labels.append(label)
                }
            }
            kept.append(s)
        }
        samples = kept
        filtered = dropped
    }

    /// The images whose files are missing (listed before training starts).
    public func missingFiles() -> [String] {
        samples.map(\.path).filter { !FileManager.default.fileExists(atPath: $0) }
    }

    private struct RawFile: Decodable {
        var images: [COCOImage]
        var annotations: [COCOAnnotation]?
        var categories: [COCOCategory]
    }
}
