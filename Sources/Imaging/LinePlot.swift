import Foundation

/// A line chart drawn into an `RGBImage` (no plotting library needed): a title, a framed plot area with a grid,
/// tick labels and axis labels in a 5x7 bitmap font, one polyline per series and a legend at the top right.
/// Precision-recall curves (`ghm cocoeval --plot`) and training curves (loss, AP) are drawn with it.
public struct LinePlot {
    public typealias Color = RGBImage.Color

    /// One line; a non-finite y breaks it (nothing is drawn there).
    public struct Series {
        public var label: String
        public var points: [(x: Double, y: Double)]
        public var color: Color
        public init(label: String, points: [(x: Double, y: Double)], color: Color) {
            self.label = label
            self.points = points
            self.color = color
        }
    }

    /// An axis from `min` to `max` with `gridLines` equal divisions; every `labelEvery`-th grid line is labelled.
    public struct Axis {
        public var label: String
        public var min: Double
        public var max: Double
        public var gridLines: Int
        public var labelEvery: Int
        public var format: (Double) -> String

        public init(label: String, min: Double, max: Double, gridLines: Int = 10, labelEvery: Int = 2,
                    format: @escaping (Double) -> String = { String(format: "%.1f", $0) }) {
            self.label = label
            self.min = min
            self.max = max > min ? max : min + 1
            self.gridLines = Swift.max(1, gridLines)
            self.labelEvery = Swift.max(1, labelEvery)
            self.format = format
        }

        /// An axis covering `values` (non-finite ones ignored) with round grid steps (1, 2 or 5 × 10^k, 4 to 10
        /// divisions); `includeZero` extends it to 0.
        public static func covering(_ values: [Double], label: String, includeZero: Bool = false) -> Axis {
            let finite = values.filter(\.isFinite)
            var lo = finite.min() ?? 0, hi = finite.max() ?? 1
            if includeZero { lo = Swift.min(lo, 0); hi = Swift.max(hi, 0) }
            if hi <= lo { hi = lo + Swift.max(1, abs(lo) * 0.1) }
            let raw = (hi - lo) / 8
            let magnitude = pow(10, floor(log10(raw)))
            let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
            let first = floor(lo / step) * step, last = ceil(hi / step) * step
            let divisions = Swift.max(1, Int(((last - first) / step).rounded()))
            let decimals = Swift.max(0, -Int(floor(log10(step) + 1e-9)))
            return Axis(label: label, min: first, max: last, gridLines: divisions, labelEvery: 1,
                        format: { String(format: "%.\(decimals)f", $0) })
        }
    }

    public static let blue: Color = (31, 119, 180)
    public static let orange: Color = (255, 127, 14)
    public static let green: Color = (44, 160, 44)
    public static let red: Color = (214, 39, 40)
    public static let purple: Color = (148, 103, 189)
    /// Colours for series in order (matplotlib's first five).
    public static let palette: [Color] = [blue, orange, green, red, purple]

    public var title: String
    public var x: Axis
    public var y: Axis
    public var series: [Series]
    public var width = 640
    public var height = 480

    public init(title: String, x: Axis, y: Axis, series: [Series], width: Int = 640, height: Int = 480) {
        self.title = title
        self.x = x
        self.y = y
        self.series = series
        self.width = width
        self.height = height
    }

    public func render() -> RGBImage {
        var img = RGBImage(width: width, height: height)
        let left = 56, right = width - 16, top = 34, bottom = height - 44
        let plotW = right - left, plotH = bottom - top
        let x = self.x, y = self.y
        func px(_ v: Double) -> Int { left + Int(((v - x.min) / (x.max - x.min) * Double(plotW)).rounded()) }
        func py(_ v: Double) -> Int { bottom - Int(((v - y.min) / (y.max - y.min) * Double(plotH)).rounded()) }
        func tick(_ a: Axis, _ i: Int) -> Double { a.min + (a.max - a.min) * Double(i) / Double(a.gridLines) }

        // Grid, frame, ticks and labels.
        let grid: Color = (225, 225, 225), axis: Color = (0, 0, 0), text: Color = (20, 20, 20)
        for i in 0...x.gridLines { img.line(px(tick(x, i)), top, px(tick(x, i)), bottom, grid) }
        for i in 0...y.gridLines { img.line(left, py(tick(y, i)), right, py(tick(y, i)), grid) }
        img.line(left, top, left, bottom, axis)
        img.line(left, bottom, right, bottom, axis)
        img.line(right, top, right, bottom, axis)
        img.line(left, top, right, top, axis)
        for i in stride(from: 0, through: x.gridLines, by: x.labelEvery) {
            let v = tick(x, i), label = x.format(v)
            img.line(px(v), bottom, px(v), bottom + 4, axis)
            img.drawText(label, x: px(v) - RGBImage.textWidth(label) / 2, y: bottom + 8, color: text)
        }
        for i in stride(from: 0, through: y.gridLines, by: y.labelEvery) {
            let v = tick(y, i), label = y.format(v)
            img.line(left - 4, py(v), left, py(v), axis)
            img.drawText(label, x: left - 8 - RGBImage.textWidth(label), y: py(v) - 3, color: text)
        }
        img.drawText(x.label, x: left + plotW / 2 - RGBImage.textWidth(x.label) / 2, y: bottom + 24, color: text)
        img.drawTextVertical(y.label, x: 10, y: top + plotH / 2 + RGBImage.textWidth(y.label) / 2, color: text)
        let shownTitle = title.count > 60 ? String(title.prefix(57)) + "..." : title
        img.drawText(shownTitle, x: Swift.max(4, width / 2 - RGBImage.textWidth(shownTitle, scale: 2) / 2), y: 8,
                     color: text, scale: 2)

        // Series: y clipped to the axis, broken at non-finite values.
        for s in series {
            var previous: (Int, Int)? = nil
            for p in s.points {
                guard p.y.isFinite, p.x.isFinite else { previous = nil; continue }
                let point = (px(p.x), py(Swift.min(Swift.max(p.y, y.min), y.max)))
                let from = previous ?? point
                img.thickLine(from.0, from.1, point.0, point.1, s.color)
                previous = point
            }
        }

        // Legend, top right.
        if !series.isEmpty {
            let lineH = 12
            let boxW = (series.map { RGBImage.textWidth($0.label) }.max() ?? 0) + 36
            let boxH = series.count * lineH + 8
            let bx = right - boxW - 8, by = top + 8
            img.fillRect(bx, by, boxW, boxH, (255, 255, 255))
            img.rect(bx, by, boxW, boxH, (160, 160, 160))
            for (i, s) in series.enumerated() {
                let ly = by + 6 + i * lineH
                img.thickLine(bx + 6, ly + 3, bx + 24, ly + 3, s.color)
                img.drawText(s.label, x: bx + 30, y: ly, color: text)
            }
        }
        return img
    }
}
