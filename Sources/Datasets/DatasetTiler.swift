import COCO
import Foundation
import Imaging
import Support

/// Cuts images into overlapping tiles and their boxes to the tiles.
///
/// Windows slide by `stride = round(size * (1 - overlap))` (at least 1); the last window on each axis is aligned to
/// the image's edge, so the whole image is covered. An image no larger than the tile on an axis is one window of its
/// own length there (never padded). A box is cut to each tile it reaches into; the piece is kept when its area is
/// at least `minVisible` × the box's area, else dropped from that tile (counted, not an error). Boxes of zero size
/// are in no tile (logged). Tiles are written as 3-channel 8-bit images (PNG by default: the pixels are exactly
/// the source's).
public struct DatasetTiler {
    public struct Options: Sendable {
        public var tileWidth: Int
        public var tileHeight: Int
        public var overlap: Double
        public var minVisible: Double
        /// Where the source images are (`file_name` is relative to it).
        public var imagesDir: String
        /// Output: `<outDir>/images/<name>_<x>_<y>.<ext>` and `<outDir>/annotations.json`.
        public var outDir: String
        /// Tile file format by extension ("png", "jpg"); nil: the source's.
        public var ext: String? = "png"
        /// Leave out tiles without any box (default: keep them, as DeepForest does).
        public var skipEmpty = false

        public init(tileWidth: Int, tileHeight: Int, overlap: Double, minVisible: Double, imagesDir: String,
                    outDir: String, ext: String? = "png", skipEmpty: Bool = false) {
            self.tileWidth = tileWidth; self.tileHeight = tileHeight; self.overlap = overlap
            self.minVisible = minVisible; self.imagesDir = imagesDir; self.outDir = outDir
            self.ext = ext; self.skipEmpty = skipEmpty
        }
    }

    public struct Summary: Sendable, Equatable {
        public var sourceImages = 0
        public var tiles = 0
        public var emptyTilesSkipped = 0
        public var boxesIn = 0
        /// Box pieces written (a box in two tiles counts twice).
        public var piecesKept = 0
        /// Box pieces left out of a tile because less than `minVisible` of the box was in it.
        public var piecesDropped = 0
        /// Boxes kept in no tile at all.
        public var boxesLost = 0
        public var imagesFailed = 0
    }

    let options: Options
    public private(set) var log: IssueLog

    public init(options: Options, log: IssueLog = IssueLog()) {
        self.options = options
        self.log = log
    }

    /// Window starts along one axis of `length` pixels for windows of `size` moving by `stride`.
    public static func windowStarts(length: Int, size: Int, stride: Int) -> [Int] {
        guard length > size else { return [0] }
        var starts = Array(Swift.stride(from: 0, to: length - size, by: max(1, stride)))
        starts.append(length - size)
        return starts
    }

    /// The part of `box` inside the tile `(x, y, w, h)`, in tile coordinates, or nil when it is not inside.
    public static func clip(_ box: COCOBox, toTileX x: Int, y: Int, width: Int, height: Int) -> COCOBox? {
        let x1 = max(box.x, Double(x)), y1 = max(box.y, Double(y))
        let x2 = min(box.x2, Double(x + width)), y2 = min(box.y2, Double(y + height))
        guard x2 > x1, y2 > y1 else { return nil }
        return COCOBox(x1: x1 - Double(x), y1: y1 - Double(y), x2: x2 - Double(x), y2: y2 - Double(y))
    }

    var stride: (Int, Int) {
        (max(1, Int((Double(options.tileWidth) * (1 - options.overlap)).rounded())),
         max(1, Int((Double(options.tileHeight) * (1 - options.overlap)).rounded())))
    }

    /// Tiles every image of `input`, writes the tiles and `annotations.json`; the categories are kept.
    public mutating func run(_ input: DatasetFile, inputPath: String, progress: ProgressReporter? = nil) throws -> Summary {
        let imagesOut = (options.outDir as NSString).appendingPathComponent("images")
        try Files.prepareDirectory(imagesOut, role: "tile folder")
        var out = TileSet()
        var summary = Summary()
        for (i, image) in input.coco.images.enumerated() {
            summary.sourceImages += 1
            let boxes = input.coco.annotations(forImageId: image.id)
            summary.boxesIn += boxes.count
            do {
                // A failure part-way leaves nothing of this image in the output.
                var (attempt, counts) = (out, summary)
                try tile(image, boxes: boxes, inputPath: inputPath, imagesOut: imagesOut, into: &attempt, summary: &counts)
                (out, summary) = (attempt, counts)
                progress?.advance()
            } catch {
                summary.imagesFailed += 1
                log.add(inputPath, nil, .rejected, "images[\(i)] \(image.fileName ?? "id \(image.id)"): \(error); skipped")
                progress?.advance(failed: true)
            }
        }
        progress?.finish()
        let dataset = try DatasetFile(images: out.images, annotations: out.annotations, categories: input.coco.categories,
                                      origins: out.origins)
        try dataset.write(to: (options.outDir as NSString).appendingPathComponent("annotations.json"))
        return summary
    }

    struct TileSet {
        var images: [COCOImage] = []
        var origins: [TileOrigin?] = []
        var annotations: [COCOAnnotation] = []
    }

    mutating func tile(_ image: COCOImage, boxes: [COCOAnnotation], inputPath: String, imagesOut: String,
                       into out: inout TileSet, summary: inout Summary) throws {
        guard let name = image.fileName else { throw DatasetError("no file_name") }
        let source = try Image.read((options.imagesDir as NSString).appendingPathComponent(name))
        let (w, h) = (source.width, source.height)
        if let jw = image.width, let jh = image.height, jw != w || jh != h {
            log.add(inputPath, nil, .note, "\(name): the file is \(w)x\(h), the annotations say \(jw)x\(jh); tiling the file")
        }
        let pixels = try source.bytes()
        let tw = min(options.tileWidth, w), th = min(options.tileHeight, h)
        var keptAnywhere = Set<Int>()
        for y in Self.windowStarts(length: h, size: th, stride: stride.1) {
            for x in Self.windowStarts(length: w, size: tw, stride: stride.0) {
                var pieces: [COCOAnnotation] = []
                for (k, ann) in boxes.enumerated() {
                    guard ann.bbox.area > 0, let piece = Self.clip(ann.bbox, toTileX: x, y: y, width: tw, height: th) else { continue }
                    if piece.area < options.minVisible * ann.bbox.area {
                        summary.piecesDropped += 1
                        continue
                    }
                    keptAnywhere.insert(k)
                    pieces.append(COCOAnnotation(id: out.annotations.count + pieces.count + 1, imageId: out.images.count + 1,
                                                 categoryId: ann.categoryId, bbox: piece, isCrowd: ann.isCrowd,
                                                 ignore: ann.ignore))
                }
                if pieces.isEmpty && options.skipEmpty {
                    summary.emptyTilesSkipped += 1
                    continue
                }
                let file = tileName(name, x: x, y: y)
                let crop = try Image(bytes: Self.crop(pixels, width: w, channels: source.channels, x: x, y: y, w: tw, h: th),
                                     height: th, width: tw, channels: source.channels)
                let path = (imagesOut as NSString).appendingPathComponent(file)
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try crop.write(to: path)
                out.images.append(COCOImage(id: out.images.count + 1, fileName: file, width: tw, height: th))
                out.origins.append(TileOrigin(sourceFile: name, x: x, y: y))
                out.annotations += pieces
                summary.tiles += 1
                summary.piecesKept += pieces.count
            }
        }
        for (k, ann) in boxes.enumerated() where !keptAnywhere.contains(k) {
            summary.boxesLost += 1
            let why = ann.bbox.area > 0 ? "less than \(options.minVisible) of it is in every tile" : "it has zero size"
            log.add(inputPath, nil, .note, "\(name): annotation id \(ann.id) is in no tile (\(why))")
        }
    }

    /// `a/b.png` at (400, 0) → `a/b_400_0.png` (the extension of `ext`, else the source's).
    func tileName(_ name: String, x: Int, y: Int) -> String {
        let stem = (name as NSString).deletingPathExtension
        let ext = options.ext ?? (name as NSString).pathExtension
        return "\(stem)_\(x)_\(y).\(ext.isEmpty ? "png" : ext)"
    }

    /// Rows `y..<y+h`, columns `x..<x+w` of an HWC raster.
    static func crop(_ pixels: [UInt8], width: Int, channels: Int, x: Int, y: Int, w: Int, h: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(w * h * channels)
        for row in y..<(y + h) {
            let start = (row * width + x) * channels
            out += pixels[start..<(start + w * channels)]
        }
        return out
    }
}
