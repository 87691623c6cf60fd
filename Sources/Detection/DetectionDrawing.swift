import Foundation
import Imaging

/// Colours and drawing of detections: one fixed colour per class, boxes, and `class score` labels on a filled
/// background in the class colour with black or white text, whichever contrasts more.
public struct DetectionDrawer {
    /// Box line width in pixels; nil: from the image size (1 px per 320 px of the shorter side, at least 1).
    public var thickness: Int?
    /// Hershey font scale; nil: from the image size (0.4 … 1.2).
    public var fontScale: Double?

    public init(thickness: Int? = nil, fontScale: Double? = nil) {
        self.thickness = thickness
        self.fontScale = fontScale
    }

    /// The colour (BGR) of class `label`: hues spaced by the golden angle, so neighbouring labels differ
    /// strongly, with two alternating saturation/brightness levels. The same for every image and run.
    public static func color(forLabel label: Int) -> (b: Int, g: Int, r: Int) {
        let i = Swift.max(0, label)
        let h = (Double(i) * 0.618_033_988_749_895 + 0.08).truncatingRemainder(dividingBy: 1)
        let s = i % 2 == 0 ? 0.85 : 0.65, v = i % 3 == 0 ? 0.95 : 0.85
        let (r, g, b) = hsvToRGB(h: h, s: s, v: v)
        return (Int((b * 255).rounded()), Int((g * 255).rounded()), Int((r * 255).rounded()))
    }

    static func hsvToRGB(h: Double, s: Double, v: Double) -> (Double, Double, Double) {
        let x = h * 6, sector = Int(x) % 6, f = x - Double(Int(x))
        let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
        switch sector {
        case 0: return (v, t, p)
        case 1: return (q, v, p)
        case 2: return (p, v, t)
        case 3: return (p, q, v)
        case 4: return (t, p, v)
        default: return (v, p, q)
        }
    }

    /// Black or white, whichever reads better on `c` (relative luminance).
    public static func textColor(on c: (b: Int, g: Int, r: Int)) -> (b: Int, g: Int, r: Int) {
        let y = 0.2126 * Double(c.r) + 0.7152 * Double(c.g) + 0.0722 * Double(c.b)
        return y > 140 ? (0, 0, 0) : (255, 255, 255)
    }

    /// Draws `rows` (boxes in the image's pixels) on `image` in place; lower scores first, so the labels of the
    /// best detections stay on top.
    public func draw(_ rows: [(box: [Float], score: Float, label: Int)], className: (Int) -> String,
                     on image: Image) throws {
        let w = image.width, h = image.height
        let short = Swift.min(w, h)
        let line = thickness ?? Swift.max(1, Int((Double(short) / 320).rounded()))
        let scale = fontScale ?? Swift.min(1.2, Swift.max(0.4, Double(short) / 900))
        let textThickness = Swift.max(1, Int((scale * 1.6).rounded(.down)))
        func clampX(_ v: Float) -> Int { Swift.min(Swift.max(Int(v.rounded()), 0), w - 1) }
        func clampY(_ v: Float) -> Int { Swift.min(Swift.max(Int(v.rounded()), 0), h - 1) }
        for row in rows.sorted(by: { $0.score < $1.score }) {
            let color = Self.color(forLabel: row.label)
            let x1 = clampX(row.box[0]), y1 = clampY(row.box[1]), x2 = clampX(row.box[2]), y2 = clampY(row.box[3])
            try image.drawRectangle(x1: x1, y1: y1, x2: x2, y2: y2, color: color, thickness: line)
            let text = "\(className(row.label)) " + String(format: "%.2f", row.score)
            let size = Image.textSize(text, scale: scale, thickness: textThickness)
            let pad = 2
            let boxH = size.height + size.baseline + 2 * pad
            // above the box when there is room, else inside it at the top; kept within the image horizontally
            let top = y1 - boxH >= 0 ? y1 - boxH : y1
            let left = Swift.max(0, Swift.min(x1, w - size.width - 2 * pad))
            try image.drawRectangle(x1: left, y1: top, x2: left + size.width + 2 * pad, y2: top + boxH,
                                    color: color, thickness: -1)
            try image.drawText(text, x: left + pad, y: top + pad + size.height, scale: scale,
                               color: Self.textColor(on: color), thickness: textThickness)
        }
    }
}
