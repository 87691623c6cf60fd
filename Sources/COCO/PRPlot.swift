import Foundation

/// Precision-recall plots drawn into an `RGBImage`: axes, a 0.1 grid, tick labels and a legend in
/// a 5x7 bitmap font, and one curve per IoU setting (.50, .75 and the mean over .50:.95).
public enum PRPlot {
    public typealias Color = (UInt8, UInt8, UInt8)

    public struct Curve {
        public var label: String
        /// Precision at each of the 101 recall points; entries < 0 (undefined) are not drawn.
        public var precision: [Double]
        public var color: Color
        public init(label: String, precision: [Double], color: Color) {
            self.label = label; self.precision = precision; self.color = color
        }
    }

    public static let blue: Color = (31, 119, 180)
    public static let orange: Color = (255, 127, 14)
    public static let green: Color = (44, 160, 44)

    /// The three standard curves of `metrics` for one category id (nil: all categories), area all,
    /// maxDets 100, labelled with their AP (mean precision over the recall points).
    public static func standardCurves(_ metrics: COCOMetrics, categoryId: Int?) -> [Curve] {
        let specs: [(String, [Int], Color)] = [
            ("IOU=.50", [0], blue), ("IOU=.75", [5], orange),
            ("IOU=.50:.95", Array(0..<COCOEvalParams.T), green),
        ]
        return specs.map { name, ts, color in
            let values = metrics.curve(ious: ts, categoryId: categoryId)
            let defined = values.filter { $0 > -1 }
            let ap = defined.isEmpty ? "N/A" : COCOMetrics.fixed3(NumpyMath.mean(defined))
            return Curve(label: "\(name) AP=\(ap)", precision: values, color: color)
        }
    }

    /// Draws a plot of `curves` against the 101 recall points.
    public static func render(title: String, curves: [Curve], width: Int = 640, height: Int = 480) -> RGBImage {
        var img = RGBImage(width: width, height: height)
        let left = 56, right = width - 16, top = 34, bottom = height - 44
        let plotW = right - left, plotH = bottom - top
        func px(_ recall: Double) -> Int { left + Int((recall * Double(plotW)).rounded()) }
        func py(_ precision: Double) -> Int { bottom - Int((precision * Double(plotH)).rounded()) }

        // Grid and axes.
        let grid: Color = (225, 225, 225), axis: Color = (0, 0, 0), text: Color = (20, 20, 20)
        for i in 0...10 {
            let v = Double(i) / 10
            line(&img, px(v), top, px(v), bottom, grid)
            line(&img, left, py(v), right, py(v), grid)
        }
        line(&img, left, top, left, bottom, axis)
        line(&img, left, bottom, right, bottom, axis)
        line(&img, right, top, right, bottom, axis)
        line(&img, left, top, right, top, axis)
        for i in stride(from: 0, through: 10, by: 2) {
            let v = Double(i) / 10
            let label = String(format: "%.1f", v)
            line(&img, px(v), bottom, px(v), bottom + 4, axis)
            drawText(&img, label, x: px(v) - textWidth(label) / 2, y: bottom + 8, color: text)
            line(&img, left - 4, py(v), left, py(v), axis)
            drawText(&img, label, x: left - 8 - textWidth(label), y: py(v) - 3, color: text)
        }
        drawText(&img, "RECALL", x: left + plotW / 2 - textWidth("RECALL") / 2, y: bottom + 24, color: text)
        drawTextVertical(&img, "PRECISION", x: 10, y: top + plotH / 2 + textWidth("PRECISION") / 2, color: text)
        let shownTitle = title.count > 60 ? String(title.prefix(57)) + "..." : title
        drawText(&img, shownTitle, x: max(4, width / 2 - textWidth(shownTitle, scale: 2) / 2), y: 8, color: text, scale: 2)

        // Curves.
        let recalls = COCOEvalParams.recallThresholds
        for curve in curves {
            var previous: (Int, Int)? = nil
            for (r, p) in zip(recalls, curve.precision) {
                guard p > -1 else { previous = nil; continue }
                let point = (px(r), py(min(max(p, 0), 1)))
                if let q = previous {
                    thickLine(&img, q.0, q.1, point.0, point.1, curve.color)
                } else {
                    thickLine(&img, point.0, point.1, point.0, point.1, curve.color)
                }
                previous = point
            }
        }

        // Legend, top right.
        if !curves.isEmpty {
            let lineH = 12
            let boxW = (curves.map { textWidth($0.label) }.max() ?? 0) + 36
            let boxH = curves.count * lineH + 8
            let bx = right - boxW - 8, by = top + 8
            fillRect(&img, bx, by, boxW, boxH, (255, 255, 255))
            rect(&img, bx, by, boxW, boxH, (160, 160, 160))
            for (i, curve) in curves.enumerated() {
                let y = by + 6 + i * lineH
                thickLine(&img, bx + 6, y + 3, bx + 24, y + 3, curve.color)
                drawText(&img, curve.label, x: bx + 30, y: y, color: text)
            }
        }
        return img
    }

    // MARK: - Drawing primitives

    static func line(_ img: inout RGBImage, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: Color) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1
        let dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            img.set(x, y, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    static func thickLine(_ img: inout RGBImage, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: Color) {
        for (ox, oy) in [(0, 0), (1, 0), (0, 1), (1, 1), (-1, 0), (0, -1)] {
            line(&img, x0 + ox, y0 + oy, x1 + ox, y1 + oy, c)
        }
    }

    static func fillRect(_ img: inout RGBImage, _ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: Color) {
        for yy in y..<(y + h) { for xx in x..<(x + w) { img.set(xx, yy, c) } }
    }

    static func rect(_ img: inout RGBImage, _ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: Color) {
        line(&img, x, y, x + w - 1, y, c)
        line(&img, x, y + h - 1, x + w - 1, y + h - 1, c)
        line(&img, x, y, x, y + h - 1, c)
        line(&img, x + w - 1, y, x + w - 1, y + h - 1, c)
    }

    // MARK: - 5x7 font

    /// Width in pixels of `s` drawn at `scale` (6 px advance per character).
    public static func textWidth(_ s: String, scale: Int = 1) -> Int { max(0, s.count * 6 - 1) * scale }

    public static func drawText(_ img: inout RGBImage, _ s: String, x: Int, y: Int, color: Color, scale: Int = 1) {
        var cx = x
        for ch in s.uppercased() {
            let rows = Font5x7.glyph(ch)
            for (ry, row) in rows.enumerated() {
                for rx in 0..<5 where row & (0x10 >> rx) != 0 {
                    for sy in 0..<scale { for sx in 0..<scale { img.set(cx + rx * scale + sx, y + ry * scale + sy, color) } }
                }
            }
            cx += 6 * scale
        }
    }

    /// Text turned 90 degrees counter-clockwise, reading upwards from (x, y).
    public static func drawTextVertical(_ img: inout RGBImage, _ s: String, x: Int, y: Int, color: Color) {
        var cy = y
        for ch in s.uppercased() {
            let rows = Font5x7.glyph(ch)
            for (ry, row) in rows.enumerated() {
                for rx in 0..<5 where row & (0x10 >> rx) != 0 {
                    img.set(x + ry, cy - rx, color)
                }
            }
            cy -= 6
        }
    }
}

/// A 5x7 bitmap font: digits, capital letters and common punctuation. Each glyph is 7 rows of
/// 5 bits, most significant bit on the left.
enum Font5x7 {
    static func glyph(_ ch: Character) -> [UInt8] {
        if let g = glyphs[ch] { return g }
        return glyphs["?"]!
    }

    private static func g(_ rows: String...) -> [UInt8] {
        rows.map { row in row.reduce(UInt8(0)) { ($0 << 1) | ($1 == "#" ? 1 : 0) } }
    }

    static let glyphs: [Character: [UInt8]] = [
        " ": g(".....", ".....", ".....", ".....", ".....", ".....", "....."),
        "0": g(".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
        "1": g("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
        "2": g(".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
        "3": g("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
        "4": g("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
        "5": g("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
        "6": g("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
        "7": g("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
        "8": g(".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
        "9": g(".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
        "A": g(".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
        "B": g("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
        "C": g(".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
        "D": g("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
        "E": g("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
        "F": g("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
        "G": g(".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
        "H": g("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
        "I": g(".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
        "J": g("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
        "K": g("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
        "L": g("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
        "M": g("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
        "N": g("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
        "O": g(".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
        "P": g("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
        "Q": g(".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
        "R": g("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
        "S": g(".####", "#....", "#....", ".###.", "....#", "....#", "####."),
        "T": g("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
        "U": g("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
        "V": g("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
        "W": g("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
        "X": g("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
        "Y": g("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
        "Z": g("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
        ".": g(".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
        ",": g(".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
        ":": g(".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
        "=": g(".....", ".....", "#####", ".....", "#####", ".....", "....."),
        "-": g(".....", ".....", ".....", "#####", ".....", ".....", "....."),
        "+": g(".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
        "_": g(".....", ".....", ".....", ".....", ".....", ".....", "#####"),
        "/": g(".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
        "(": g("...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."),
        ")": g(".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."),
        "[": g(".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."),
        "]": g(".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."),
        "@": g(".###.", "#...#", "....#", ".##.#", "#.#.#", "#.#.#", ".###."),
        "%": g("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
        "#": g(".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."),
        "'": g("..#..", "..#..", ".#...", ".....", ".....", ".....", "....."),
        "!": g("..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."),
        "?": g(".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
        "<": g("...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."),
        ">": g(".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."),
        "&": g(".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#"),
        "*": g(".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."),
    ]
}
