import Foundation
import Support

/// A box in COCO's `[x, y, width, height]` form (pixels, top-left origin).
public struct COCOBox: Sendable, Equatable, Hashable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }

    /// From corners, as mmdet's `xyxy2xywh` (mmdet 2.x): `w = x2 - x1`, `h = y2 - y1`.
    public init(x1: Double, y1: Double, x2: Double, y2: Double) {
        self.init(x: x1, y: y1, width: x2 - x1, height: y2 - y1)
    }

    public var x2: Double { x + width }
    public var y2: Double { y + height }
    /// `width * height`, the area pycocotools gives a detection.
    public var area: Double { width * height }
    public var array: [Double] { [x, y, width, height] }

    var isFinite: Bool { x.isFinite && y.isFinite && width.isFinite && height.isFinite }
}

/// One entry of `images`.
public struct COCOImage: Sendable, Equatable, Decodable {
    public var id: Int
    public var fileName: String?
    public var width: Int?
    public var height: Int?

    public init(id: Int, fileName: String? = nil, width: Int? = nil, height: Int? = nil) {
        self.id = id; self.fileName = fileName; self.width = width; self.height = height
    }

    enum CodingKeys: String, CodingKey { case id, file_name, width, height }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try COCOJSON.decodeInt(c, .id)
        fileName = try c.decodeIfPresent(String.self, forKey: .file_name)
        width = try COCOJSON.decodeIntIfPresent(c, .width)
        height = try COCOJSON.decodeIntIfPresent(c, .height)
    }
}

/// One entry of `categories`.
public struct COCOCategory: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String
    public var supercategory: String?

    public init(id: Int, name: String, supercategory: String? = nil) {
        self.id = id; self.name = name; self.supercategory = supercategory
    }

    enum CodingKeys: String, CodingKey { case id, name, supercategory }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try COCOJSON.decodeInt(c, .id)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "\(id)"
        supercategory = try c.decodeIfPresent(String.self, forKey: .supercategory)
    }
}

/// One entry of `annotations` (a ground-truth object). `segmentation`, `keypoints` and other
/// fields are not read.
public struct COCOAnnotation: Sendable, Equatable, Decodable {
    public var id: Int
    public var imageId: Int
    public var categoryId: Int
    public var bbox: COCOBox
    /// The `area` field (COCO gives the segmentation's area); `bbox` w*h when the file has none.
    /// The small/medium/large ranges of the evaluation use this value.
    public var area: Double
    public var isCrowd: Bool
    /// The `ignore` field. mmdet skips such objects in training; pycocotools' evaluation replaces
    /// it by `iscrowd`, and so does COCOEvaluator.
    public var ignore: Bool

    public init(id: Int, imageId: Int, categoryId: Int, bbox: COCOBox, area: Double? = nil,
                isCrowd: Bool = false, ignore: Bool = false) {
        self.id = id; self.imageId = imageId; self.categoryId = categoryId; self.bbox = bbox
        self.area = area ?? bbox.area; self.isCrowd = isCrowd; self.ignore = ignore
    }

    enum CodingKeys: String, CodingKey { case id, image_id, category_id, bbox, area, iscrowd, ignore }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try COCOJSON.decodeInt(c, .id)
        imageId = try COCOJSON.decodeInt(c, .image_id)
        categoryId = try COCOJSON.decodeInt(c, .category_id)
        bbox = try COCOJSON.decodeBox(c, .bbox)
        area = try c.decodeIfPresent(Double.self, forKey: .area) ?? bbox.area
        isCrowd = try COCOJSON.decodeFlag(c, .iscrowd)
        ignore = try COCOJSON.decodeFlag(c, .ignore)
    }
}

/// A COCO instances file (`instances_val2017.json` and the like): images, annotations and
/// categories in file order, with mmdet's category id <-> label mapping (label i is the i-th
/// category of the file, mmdet's `cat_ids[i]`).
public struct COCODataset: Sendable {
    /// The file it was read from, if any (used in error messages).
    public let path: String?
    public let images: [COCOImage]
    public let annotations: [COCOAnnotation]
    /// In file order; label i is `categories[i]`.
    public let categories: [COCOCategory]

    private let imageIndexById: [Int: Int]
    private let labelByCategoryId: [Int: Int]
    /// For each image (file order), the indices of its annotations in `annotations` (file order).
    private let annotationIndicesByImage: [[Int]]

    /// Checks the parts (unique ids, known image and category ids, boxes with non-negative
    /// finite sizes) and builds the indexes.
    public init(images: [COCOImage], annotations: [COCOAnnotation], categories: [COCOCategory],
                path: String? = nil) throws {
        var imageIndex = [Int: Int](minimumCapacity: images.count)
        for (i, image) in images.enumerated() {
            if let first = imageIndex[image.id] {
                throw COCOError(file: path, item: "images[\(i)].id", "duplicate image id \(image.id) (also images[\(first)])")
            }
            imageIndex[image.id] = i
        }
        var labels = [Int: Int](minimumCapacity: categories.count)
        for (i, category) in categories.enumerated() {
            if let first = labels[category.id] {
                throw COCOError(file: path, item: "categories[\(i)].id",
                                "duplicate category id \(category.id) (also categories[\(first)])")
            }
            labels[category.id] = i
        }
        var byImage = [[Int]](repeating: [], count: images.count)
        var annotationIds = [Int: Int](minimumCapacity: annotations.count)
        for (i, ann) in annotations.enumerated() {
            if let first = annotationIds[ann.id] {
                throw COCOError(file: path, item: "annotations[\(i)].id",
                                "duplicate annotation id \(ann.id) (also annotations[\(first)])")
            }
            annotationIds[ann.id] = i
            guard let imageIdx = imageIndex[ann.imageId] else {
                throw COCOError(file: path, item: "annotations[\(i)].image_id", "unknown image id \(ann.imageId) (not in images)")
            }
            guard labels[ann.categoryId] != nil else {
                throw COCOError(file: path, item: "annotations[\(i)].category_id",
                                "unknown category id \(ann.categoryId) (not in categories)")
            }
            try Self.checkBox(ann.bbox, file: path, item: "annotations[\(i)].bbox")
            guard ann.area.isFinite, ann.area >= 0 else {
                throw COCOError(file: path, item: "annotations[\(i)].area", "area must be a finite number >= 0, found \(ann.area)")
            }
            byImage[imageIdx].append(i)
        }
        self.path = path
        self.images = images
        self.annotations = annotations
        self.categories = categories
        self.imageIndexById = imageIndex
        self.labelByCategoryId = labels
        self.annotationIndicesByImage = byImage
    }

    static func checkBox(_ box: COCOBox, file: String?, item: String) throws {
        guard box.isFinite else {
            throw COCOError(file: file, item: item, "box values must be finite numbers, found \(box.array)")
        }
        guard box.width >= 0, box.height >= 0 else {
            throw COCOError(file: file, item: item,
                            "negative size (width \(JSONText.number(box.width)), height \(JSONText.number(box.height)))")
        }
    }

    /// Reads and checks a COCO instances JSON file.
    public static func load(path: String) throws -> COCODataset {
        let data = try COCOJSON.readFile(path)
        return try decode(data: data, file: path)
    }

    /// Decodes and checks COCO instances JSON; `file` names the source in error messages.
    public static func decode(data: Data, file: String = "<data>") throws -> COCODataset {
        let raw = try COCOJSON.decode(RawFile.self, from: data, file: file)
        return try COCODataset(images: raw.images, annotations: raw.annotations ?? [], categories: raw.categories, path: file)
    }

    private struct RawFile: Decodable {
        var images: [COCOImage]
        var annotations: [COCOAnnotation]?
        var categories: [COCOCategory]
    }

    // MARK: - Look-ups

    /// mmdet's `cat_ids`: label i -> category id.
    public var catIds: [Int] { categories.map(\.id) }
    public var numClasses: Int { categories.count }
    public var classNames: [String] { categories.map(\.name) }

    /// mmdet's `classes=` for evaluation: the categories named in `classes` (kept in the file's order, as mmdet's
    /// `get_cat_ids(cat_names=…)`) and only their annotations; the images stay. Throws naming the file and the
    /// names it lacks.
    public func selecting(classes: [String]) throws -> COCODataset {
        let wanted = Set(classes)
        let kept = categories.filter { wanted.contains($0.name) }
        let found = Set(kept.map(\.name))
        let missing = classes.filter { !found.contains($0) }
        guard missing.isEmpty else {
            throw COCOError(file: path, item: "categories", "classes \(missing.map { "'\($0)'" }.joined(separator: ", ")) "
                            + "are not categories of the file (it has \(classNames.map { "'\($0)'" }.joined(separator: ", ")))")
        }
        let ids = Set(kept.map(\.id))
        return try COCODataset(images: images, annotations: annotations.filter { ids.contains($0.categoryId) },
                               categories: kept, path: path)
    }

    /// mmdet's `cat2label`.
    public func label(forCategoryId id: Int) -> Int? { labelByCategoryId[id] }

    /// mmdet's `cat_ids[label]`; nil for a label outside 0..<numClasses.
    public func categoryId(forLabel label: Int) -> Int? {
        categories.indices.contains(label) ? categories[label].id : nil
    }

    public func category(id: Int) -> COCOCategory? { labelByCategoryId[id].map { categories[$0] } }

    /// Position of the image in `images`.
    public func imageIndex(id: Int) -> Int? { imageIndexById[id] }
    public func image(id: Int) -> COCOImage? { imageIndexById[id].map { images[$0] } }
    public func contains(imageId: Int) -> Bool { imageIndexById[imageId] != nil }

    /// The image's annotations in file order (empty for an unknown id).
    public func annotations(forImageId id: Int) -> [COCOAnnotation] {
        guard let i = imageIndexById[id] else { return [] }
        return annotationIndicesByImage[i].map { annotations[$0] }
    }
}
