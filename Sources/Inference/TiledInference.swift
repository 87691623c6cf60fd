import Detection
import Foundation
import Imaging
import Torch

// Tiled inference (`ghm infer --tile WxH --overlap R`) for images larger than the model's scale:
//
//   image → sliding windows (the last one of each row/column aligned to the right/bottom edge) → each window's
//   crop through the normal detector path → boxes shifted by the window's origin → merged across windows.
//
// The merge only ever removes a detection because of a detection of *another* window: inside one window the
// model's own class-wise NMS has already decided, so an image that fits one tile keeps exactly the detections of
// the whole-image run. Across windows, for each class:
//   1. a detection cut by an interior window edge (within `edgeMargin` px of a window edge that is not an image
//      edge) is dropped when a larger detection of another window covers at least `coverThreshold` of its area
//      (intersection / its own area): the object was seen whole (or more of it) elsewhere. Plain IoU is not enough
//      here: half a box has IoU 0.5 with the whole box, exactly at the usual threshold.
//   2. greedy NMS by score among the rest, a detection suppressing only those of other windows with IoU > iou_thr
//      (the config's test_cfg.nms.iou_threshold): duplicates of an object seen whole in two windows.
// Then the best `max_per_img` by score are kept. An object larger than the overlap that no window sees whole
// stays as the fragments of the windows (each cut at a window edge).

/// Tile size and overlap of a tiled run, and the merge's thresholds.
public struct TileSettings: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Fraction of the tile shared by neighbouring windows, in [0, 1).
    public var overlap: Double
    /// A cut detection covered by at least this fraction of its area by a larger same-class detection of another
    /// window is dropped.
    public var coverThreshold = 0.8
    /// A box within this many pixels of an interior window edge counts as cut by it.
    public var edgeMargin = 2.0

    public init(width: Int, height: Int, overlap: Double) {
        self.width = width
        self.height = height
        self.overlap = overlap
    }

    /// Window steps: round(tile · (1 − overlap)), at least 1.
    public var strideX: Int { max(1, Int((Double(width) * (1 - overlap)).rounded())) }
    public var strideY: Int { max(1, Int((Double(height) * (1 - overlap)).rounded())) }

    /// "WxH" (or "N" for a square tile) → (W, H); nil unless both are positive integers.
    public static func parseSize(_ text: String) -> (width: Int, height: Int)? {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
            .flatMap { $0.split(separator: "X", omittingEmptySubsequences: false) }.map { Int($0) }
        guard (1...2).contains(parts.count), parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return (parts[0]!, parts[parts.count - 1]!)
    }
}

/// One window of an image, in original-image pixels, and which of its edges are inside the image.
public struct TileWindow: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var interiorLeft: Bool { x > 0 }
    public var interiorTop: Bool { y > 0 }
    /// Set by `TiledInference.windows`: the image's size, for the right and bottom edges.
    public var imageWidth: Int
    public var imageHeight: Int
    public var interiorRight: Bool { x + width < imageWidth }
    public var interiorBottom: Bool { y + height < imageHeight }

    public init(x: Int, y: Int, width: Int, height: Int, imageWidth: Int, imageHeight: Int) {
        (self.x, self.y, self.width, self.height) = (x, y, width, height)
        (self.imageWidth, self.imageHeight) = (imageWidth, imageHeight)
    }

    /// Whether a box (x1, y1, x2, y2, window pixels) reaches an interior edge of the window.
    func cuts(_ b: [Double], margin: Double) -> Bool {
        (interiorLeft && b[0] <= margin) || (interiorTop && b[1] <= margin)
            || (interiorRight && b[2] >= Double(width) - margin) || (interiorBottom && b[3] >= Double(height) - margin)
    }
}

/// One detection of a tiled run: the box (x1, y1, x2, y2) in original-image pixels and the window it came from.
public struct TileDetection: Sendable, Equatable {
    public var box: [Double]
    public var score: Double
    public var label: Int
    public var window: Int
    /// Whether the box reaches an interior edge of its window.
    public var cut: Bool

    public init(box: [Double], score: Double, label: Int, window: Int, cut: Bool = false) {
        (self.box, self.score, self.label, self.window, self.cut) = (box, score, label, window, cut)
    }

    var area: Double { max(0, box[2] - box[0]) * max(0, box[3] - box[1]) }

    func intersection(_ o: TileDetection) -> Double {
        let w = min(box[2], o.box[2]) - max(box[0], o.box[0]), h = min(box[3], o.box[3]) - max(box[1], o.box[1])
        return w > 0 && h > 0 ? w * h : 0
    }

    func iou(_ o: TileDetection) -> Double {
        let i = intersection(o), u = area + o.area - i
        return u > 0 ? i / u : 0
    }
}

/// The window layout and the merge of tiled inference, as pure functions.
public enum TiledInference {
    /// Window origins along one axis: 0, stride, 2·stride, … while the window ends inside, then one aligned to the
    /// end, so every pixel is covered; [0] when the length fits one tile.
    public static func positions(length: Int, tile: Int, stride: Int) -> [Int] {
        guard length > tile else { return [0] }
        var out: [Int] = [], p = 0
        while p + tile < length {
            out.append(p)
            p += max(1, stride)
        }
        out.append(length - tile)
        return out
    }

    /// The windows of a `width`×`height` image, row by row; one window (the whole image) when it fits the tile.
    public static func windows(width: Int, height: Int, settings s: TileSettings) -> [TileWindow] {
        let xs = positions(length: width, tile: s.width, stride: s.strideX)
        let ys = positions(length: height, tile: s.height, stride: s.strideY)
        return ys.flatMap { y in
            xs.map { x in
                TileWindow(x: x, y: y, width: min(s.width, width), height: min(s.height, height),
                           imageWidth: width, imageHeight: height)
            }
        }
    }

    /// Detections of one window (boxes in window pixels) → image pixels, marked when cut by an interior edge.
    public static func place(_ rows: [(box: [Float], score: Float, label: Int)], window index: Int,
                             of window: TileWindow, edgeMargin: Double) -> [TileDetection] {
        rows.map { r in
            let b = r.box.map(Double.init)
            let shifted = [b[0] + Double(window.x), b[1] + Double(window.y), b[2] + Double(window.x), b[3] + Double(window.y)]
            return TileDetection(box: shifted, score: Double(r.score), label: r.label, window: index,
                                 cut: window.cuts(b, margin: edgeMargin))
        }
    }

    /// Merges the detections of all windows of one image (see the top of this file): cut fragments covered by a
    /// larger same-class detection of another window dropped, class-wise cross-window NMS at `iouThreshold`, the
    /// best `maxPerImage` (≤ 0: all) by score, in decreasing score order.
    public static func merge(_ detections: [TileDetection], iouThreshold: Double, coverThreshold: Double,
                             maxPerImage: Int) -> [TileDetection] {
        let order = detections.indices.sorted {
            detections[$0].score != detections[$1].score ? detections[$0].score > detections[$1].score : $0 < $1
        }
        var alive = [Bool](repeating: true, count: detections.count)
        for i in order where detections[i].cut {
            let d = detections[i]
            alive[i] = !detections.contains { o in
                o.window != d.window && o.label == d.label && o.area > d.area
                    && d.area > 0 && d.intersection(o) >= coverThreshold * d.area
            }
        }
        var kept: [TileDetection] = []
        for i in order where alive[i] {
            let d = detections[i]
            if kept.contains(where: { $0.window != d.window && $0.label == d.label && $0.iou(d) > iouThreshold }) { continue }
            kept.append(d)
            if maxPerImage > 0 && kept.count == maxPerImage { break }
        }
        return kept
    }

    /// Merged detections as the `Detections` of a whole-image run (float32 boxes and scores, int64 labels).
    public static func detections(_ merged: [TileDetection]) throws(TorchError) -> Detections {
        Detections(boxes: try Tensor(merged.flatMap { $0.box.map(Float.init) }, shape: [merged.count, 4]),
                   scores: try Tensor(merged.map { Float($0.score) }, shape: [merged.count]),
                   labels: try Tensor(merged.map { Int64($0.label) }, shape: [merged.count]))
    }

    /// The crop of `image` under `window` (BGR bytes copied); the image itself when the window is all of it.
    public static func crop(_ image: Image, pixels: [UInt8]? = nil, to window: TileWindow) throws -> Image {
        if window.x == 0 && window.y == 0 && window.width == image.width && window.height == image.height { return image }
        let c = image.channels, rowBytes = image.width * c
        let all = try pixels ?? image.bytes()
        var out = [UInt8]()
        out.reserveCapacity(window.width * window.height * c)
        for row in window.y..<(window.y + window.height) {
            let start = row * rowBytes + window.x * c
            out.append(contentsOf: all[start..<(start + window.width * c)])
        }
        return try Image(bytes: out, height: window.height, width: window.width, channels: c)
    }
}
