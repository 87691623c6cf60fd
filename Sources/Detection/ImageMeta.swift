import Torch

/// What mmdet's pipeline records about one image (`img_metas`): shapes (h, w, c), the per-axis scale factors
/// (w, h, w, h) from the integer resized size, and whether it was flipped.
public struct ImageMeta: Sendable {
    public var filename: String
    public var oriShape: (h: Int, w: Int, c: Int)
    public var imgShape: (h: Int, w: Int, c: Int)
    public var padShape: (h: Int, w: Int, c: Int)
    public var scaleFactor: [Float]
    public var flip: Bool

    public init(filename: String, oriShape: (h: Int, w: Int, c: Int), imgShape: (h: Int, w: Int, c: Int),
                padShape: (h: Int, w: Int, c: Int), scaleFactor: [Float], flip: Bool = false) {
        self.filename = filename
        self.oriShape = oriShape
        self.imgShape = imgShape
        self.padShape = padShape
        self.scaleFactor = scaleFactor
        self.flip = flip
    }
}

/// Detections of one image: boxes (n, 4) x1 y1 x2 y2 in original-image pixels, scores (n), labels (n) 0-based.
public struct Detections {
    public var boxes: Tensor
    public var scores: Tensor
    public var labels: Tensor

    public init(boxes: Tensor, scores: Tensor, labels: Tensor) {
        self.boxes = boxes
        self.scores = scores
        self.labels = labels
    }

    public var count: Int { scores.numel }

    /// (n, 5) [x1, y1, x2, y2, score] like mmdet's `det_bboxes`.
    public func detBBoxes() throws(TorchError) -> Tensor { try Tensor.cat([boxes, scores.unsqueeze(1)], dim: 1) }

    /// Plain Swift values, for printing and JSON.
    public func rows() throws(TorchError) -> [(box: [Float], score: Float, label: Int)] {
        let b = try boxes.floats(), s = try scores.floats(), l = try labels.int64s()
        return (0..<s.count).map { ([b[4 * $0], b[4 * $0 + 1], b[4 * $0 + 2], b[4 * $0 + 3]], s[$0], Int(l[$0])) }
    }
}
