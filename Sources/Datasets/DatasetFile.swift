import COCO
import Foundation
import Support

/// Where a tile came from: the source image's `file_name` and the tile's top-left corner in it. Written as the
/// extra image keys `source_file`, `tile_x`, `tile_y`, which COCO readers (ours, pycocotools, mmdet) ignore.
public struct TileOrigin: Sendable, Equatable {
    public var sourceFile: String
    public var x: Int
    public var y: Int

    public init(sourceFile: String, x: Int, y: Int) {
        self.sourceFile = sourceFile
        self.x = x
        self.y = y
    }
}

/// A COCO instances file as the dataset tools read and write it: the checked `COCODataset` plus, for each image,
/// its tile origin when it is a tile. Other extra keys of an input file are not kept.
public struct DatasetFile: Sendable {
    public let coco: COCODataset
    /// Parallel to `coco.images`.
    public let origins: [TileOrigin?]

    public init(images: [COCOImage], annotations: [COCOAnnotation], categories: [COCOCategory],
                origins: [TileOrigin?]? = nil, path: String? = nil) throws {
        coco = try COCODataset(images: images, annotations: annotations, categories: categories, path: path)
        self.origins = origins ?? Array(repeating: nil, count: images.count)
        precondition(self.origins.count == images.count, "one origin per image")
    }

    /// Reads and checks a COCO instances file (errors name the file and the JSON item).
    public static func load(path: String) throws -> DatasetFile {
        let data = try COCOJSON.readFile(path)
        let coco = try COCODataset.decode(data: data, file: path)
        let extra = try COCOJSON.decode(OriginKeys.self, from: data, file: path)
        let origins = extra.images.map { keys -> TileOrigin? in
            guard let source = keys.source_file else { return nil }
            return TileOrigin(sourceFile: source, x: keys.tile_x ?? 0, y: keys.tile_y ?? 0)
        }
        return try DatasetFile(images: coco.images, annotations: coco.annotations, categories: coco.categories,
                               origins: origins, path: path)
    }

    private struct OriginKeys: Decodable {
        struct Keys: Decodable {
            var source_file: String?
            var tile_x: Int?
            var tile_y: Int?
        }
        var images: [Keys]
    }

    /// The source image an image belongs to: its tile origin's file, else its own `file_name` (else `id:N`).
    public func source(ofImageAt index: Int) -> String {
        origins[index]?.sourceFile ?? coco.images[index].fileName ?? "id:\(coco.images[index].id)"
    }

    // MARK: - Writing

    /// COCO JSON text: one image, annotation or category per line, keys in COCO's order.
    public func jsonText() -> String {
        var out = "{\"images\": [\n"
        out += coco.images.indices.map { imageLine($0) }.joined(separator: ",\n")
        out += "\n],\n\"annotations\": [\n"
        out += coco.annotations.map(Self.annotationLine).joined(separator: ",\n")
        out += "\n],\n\"categories\": [\n"
        out += coco.categories.map(Self.categoryLine).joined(separator: ",\n")
        out += "\n]}\n"
        return out
    }

    /// Writes `jsonText()` atomically (temporary file, then rename).
    public func write(to path: String) throws {
        try Files.writeAtomically(Data(jsonText().utf8), to: path)
    }

    private func imageLine(_ i: Int) -> String {
        let image = coco.images[i]
        var s = "{\"id\": \(image.id)"
        if let name = image.fileName { s += ", \"file_name\": " + JSONText.quote(name) }
        if let w = image.width { s += ", \"width\": \(w)" }
        if let h = image.height { s += ", \"height\": \(h)" }
        if let o = origins[i] {
            s += ", \"source_file\": " + JSONText.quote(o.sourceFile) + ", \"tile_x\": \(o.x), \"tile_y\": \(o.y)"
        }
        return s + "}"
    }

    private static func annotationLine(_ a: COCOAnnotation) -> String {
        let box = a.bbox.array.map(JSONText.number).joined(separator: ", ")
        var s = "{\"id\": \(a.id), \"image_id\": \(a.imageId), \"category_id\": \(a.categoryId), \"bbox\": [\(box)], "
            + "\"area\": \(JSONText.number(a.area)), \"iscrowd\": \(a.isCrowd ? 1 : 0)"
        if a.ignore { s += ", \"ignore\": 1" }
        return s + "}"
    }

    private static func categoryLine(_ c: COCOCategory) -> String {
        var s = "{\"id\": \(c.id), \"name\": " + JSONText.quote(c.name)
        if let sc = c.supercategory { s += ", \"supercategory\": " + JSONText.quote(sc) }
        return s + "}"
    }
}
