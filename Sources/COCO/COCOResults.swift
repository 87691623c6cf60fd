import Foundation
import Support

/// One detection in mmdet's COCO result format:
/// `{"image_id": 42, "bbox": [x, y, w, h], "score": 0.93, "category_id": 18}`.
public struct COCODetection: Sendable, Equatable, Decodable {
    public var imageId: Int
    public var categoryId: Int
    public var bbox: COCOBox
    public var score: Double

    public init(imageId: Int, categoryId: Int, bbox: COCOBox, score: Double) {
        self.imageId = imageId; self.categoryId = categoryId; self.bbox = bbox; self.score = score
    }

    /// From a model's output: a 0-based label (mapped through the dataset's `cat_ids`) and a
    /// corner box `[x1, y1, x2, y2]` (mmdet's `xyxy2xywh`). Throws for an unknown label.
    public init(imageId: Int, label: Int, x1: Double, y1: Double, x2: Double, y2: Double, score: Double,
                dataset: COCODataset) throws {
        guard let categoryId = dataset.categoryId(forLabel: label) else {
            throw COCOError(item: "label \(label)", "no such label (the dataset has \(dataset.numClasses) categories)")
        }
        self.init(imageId: imageId, categoryId: categoryId, bbox: COCOBox(x1: x1, y1: y1, x2: x2, y2: y2), score: score)
    }

    enum CodingKeys: String, CodingKey { case image_id, category_id, bbox, score }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageId = try COCOJSON.decodeInt(c, .image_id)
        categoryId = try COCOJSON.decodeInt(c, .category_id)
        bbox = try COCOJSON.decodeBox(c, .bbox)
        score = try c.decode(Double.self, forKey: .score)
    }
}

/// A detection results file: a JSON array of `COCODetection`s, in file order.
public struct COCOResults: Sendable {
    public var detections: [COCODetection]
    /// The file it was read from, if any.
    public var path: String?

    public init(detections: [COCODetection] = [], path: String? = nil) {
        self.detections = detections
        self.path = path
    }

    public var count: Int { detections.count }

    /// Reads a results file and checks it against `dataset`: every image and category id must be
    /// in the dataset (pycocotools' `loadRes` refuses results for unknown images), boxes must be 4
    /// finite numbers with non-negative size, scores must be finite.
    public static func load(path: String, dataset: COCODataset) throws -> COCOResults {
        let data = try COCOJSON.readFile(path)
        return try decode(data: data, file: path, dataset: dataset)
    }

    public static func decode(data: Data, file: String = "<data>", dataset: COCODataset) throws -> COCOResults {
        let detections = try COCOJSON.decode([COCODetection].self, from: data, file: file, root: "results")
        let results = COCOResults(detections: detections, path: file)
        try results.validate(against: dataset)
        return results
    }

    /// Throws a COCOError naming the first bad detection (`results[i].field`).
    public func validate(against dataset: COCODataset) throws {
        let file = path
        for (i, det) in detections.enumerated() {
            guard dataset.contains(imageId: det.imageId) else {
                throw COCOError(file: file, item: "results[\(i)].image_id",
                                "unknown image id \(det.imageId) (not in the ground truth\(dataset.path.map { " \($0)" } ?? ""))")
            }
            guard dataset.label(forCategoryId: det.categoryId) != nil else {
                throw COCOError(file: file, item: "results[\(i)].category_id",
                                "unknown category id \(det.categoryId) (not in the ground truth\(dataset.path.map { " \($0)" } ?? ""))")
            }
            try COCODataset.checkBox(det.bbox, file: file, item: "results[\(i)].bbox")
            guard det.score.isFinite else {
                throw COCOError(file: file, item: "results[\(i)].score", "score must be a finite number, found \(det.score)")
            }
        }
    }

    /// Adds a detection given a 0-based label and a corner box (see `COCODetection.init(imageId:label:...)`).
    public mutating func append(imageId: Int, label: Int, x1: Double, y1: Double, x2: Double, y2: Double,
                                score: Double, dataset: COCODataset) throws {
        detections.append(try COCODetection(imageId: imageId, label: label, x1: x1, y1: y1, x2: x2, y2: y2,
                                            score: score, dataset: dataset))
    }

    /// The JSON text (mmdet's key order: image_id, bbox, score, category_id). Throws for a
    /// non-finite number, which JSON cannot hold.
    public func jsonData() throws -> Data {
        var out = "["
        out.reserveCapacity(detections.count * 90 + 2)
        for (i, det) in detections.enumerated() {
            guard det.bbox.isFinite, det.score.isFinite else {
                throw COCOError(file: path, item: "results[\(i)]", "cannot write a non-finite box or score as JSON")
            }
            if i > 0 { out += ", " }
            out += "{\"image_id\": \(det.imageId), \"bbox\": ["
            out += JSONText.number(det.bbox.x) + ", " + JSONText.number(det.bbox.y) + ", "
            out += JSONText.number(det.bbox.width) + ", " + JSONText.number(det.bbox.height)
            out += "], \"score\": " + JSONText.number(det.score)
            out += ", \"category_id\": \(det.categoryId)}"
        }
        out += "]\n"
        return Data(out.utf8)
    }

    /// Writes the results JSON atomically (temporary file in the same folder, then rename).
    public func write(to path: String) throws {
        try Files.writeAtomically(jsonData(), to: path)
    }
}
