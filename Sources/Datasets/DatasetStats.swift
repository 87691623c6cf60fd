import COCO
import Foundation
import Support

/// Counts of a COCO instances file: images, boxes per class and per image, box sizes.
public struct DatasetStats: Sendable, Equatable {
    public struct Spread: Sendable, Equatable {
        /// min, p5, p25, median, p75, p95, max (linear interpolation between the sorted values, numpy's default).
        public var values: [Double]
        public static let names = ["min", "p5", "p25", "median", "p75", "p95", "max"]
    }

    public var images = 0
    public var boxes = 0
    public var imagesWithoutBoxes = 0
    /// Sources (tiles of one source count once).
    public var sources = 0
    /// Category name and count, in the file's category order (classes without boxes included).
    public var boxesPerClass: [(name: String, count: Int)] = []
    public var boxesPerImage = (min: 0, mean: 0.0, max: 0)
    public var crowdBoxes = 0
    public var width = Spread(values: [])
    public var height = Spread(values: [])
    public var area = Spread(values: [])

    public init(_ file: DatasetFile) {
        let coco = file.coco
        images = coco.images.count
        boxes = coco.annotations.count
        sources = Set(coco.images.indices.map { file.source(ofImageAt: $0) }).count
        let perImage = coco.images.map { coco.annotations(forImageId: $0.id).count }
        imagesWithoutBoxes = perImage.filter { $0 == 0 }.count
        boxesPerImage = (perImage.min() ?? 0, perImage.isEmpty ? 0 : Double(boxes) / Double(perImage.count), perImage.max() ?? 0)
        var counts = [Int: Int]()
        for a in coco.annotations { counts[a.categoryId, default: 0] += 1 }
        boxesPerClass = coco.categories.map { ($0.name, counts[$0.id] ?? 0) }
        crowdBoxes = coco.annotations.filter(\.isCrowd).count
        width = Self.spread(coco.annotations.map(\.bbox.width))
        height = Self.spread(coco.annotations.map(\.bbox.height))
        area = Self.spread(coco.annotations.map(\.bbox.area))
    }

    public static func == (a: DatasetStats, b: DatasetStats) -> Bool { a.jsonText() == b.jsonText() }

    static func spread(_ values: [Double]) -> Spread {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return Spread(values: []) }
        return Spread(values: [0, 5, 25, 50, 75, 95, 100].map { percentile(sorted, $0) })
    }

    /// numpy's `percentile(..., method="linear")` of sorted values.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let pos = q / 100 * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    /// A short table for people.
    public func text() -> String {
        var lines = ["images         \(images) (\(sources) source\(sources == 1 ? "" : "s")), \(imagesWithoutBoxes) without boxes",
                     "boxes          \(boxes)" + (crowdBoxes > 0 ? " (\(crowdBoxes) iscrowd)" : ""),
                     "boxes/image    min \(boxesPerImage.min)  mean \(String(format: "%.2f", boxesPerImage.mean))  max \(boxesPerImage.max)",
                     "boxes per class:"]
        let wide = boxesPerClass.map(\.name.count).max() ?? 0
        for (name, count) in boxesPerClass {
            lines.append("  " + name.padding(toLength: max(wide, 4), withPad: " ", startingAt: 0) + "  \(count)")
        }
        if !width.values.isEmpty {
            lines.append("box size        " + Spread.names.map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined())
            for (label, s) in [("width (px)", width), ("height (px)", height), ("area (px²)", area)] {
                lines.append("  " + label.padding(toLength: 14, withPad: " ", startingAt: 0)
                             + s.values.map { String(format: "%-9.1f", $0) }.joined())
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The same numbers as JSON.
    public func jsonText() -> String {
        func spread(_ s: Spread) -> String {
            "{" + zip(Spread.names, s.values).map { "\"\($0)\": \(JSONText.number($1))" }.joined(separator: ", ") + "}"
        }
        let classes = boxesPerClass.map { "\(JSONText.quote($0.name)): \($0.count)" }.joined(separator: ", ")
        return """
            {"images": \(images), "sources": \(sources), "images_without_boxes": \(imagesWithoutBoxes), \
            "boxes": \(boxes), "iscrowd_boxes": \(crowdBoxes),
             "boxes_per_class": {\(classes)},
             "boxes_per_image": {"min": \(boxesPerImage.min), "mean": \(JSONText.number(boxesPerImage.mean)), \
            "max": \(boxesPerImage.max)},
             "box_width": \(spread(width)),
             "box_height": \(spread(height)),
             "box_area": \(spread(area))}

            """
    }
}
