import Foundation
import Support

/// The result of `COCOEvaluator.evaluate()`: pycocotools' `eval['precision']`, `eval['recall']`
/// and `stats`, per-category AP, the standard text table and a JSON form.
public struct COCOMetrics: Sendable {
    /// Names of the 12 summary numbers, in pycocotools' order.
    public static let statNames = ["AP", "AP50", "AP75", "APs", "APm", "APl",
                                   "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    /// mmdet's names for the first six (`bbox_mAP`, ...).
    public static let mmdetNames = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"]

    /// `[T, R, K, A, M]` = `[10, 101, K, 4, 3]`, row-major as numpy; -1 where undefined. K runs
    /// over `sortedCategoryIds` (ascending ids, as pycocotools), not over labels.
    public let precision: [Double]
    /// `[T, K, A, M]`, row-major; -1 where undefined.
    public let recall: [Double]
    /// Category ids in ascending order: the K axis of `precision` and `recall`.
    public let sortedCategoryIds: [Int]
    /// Categories in file (label) order.
    public let categories: [COCOCategory]
    public let numImages: Int
    public let numDetections: Int
    public let numAnnotations: Int
    /// The 12 summary numbers (pycocotools' `stats`), -1 where undefined.
    public let stats: [Double]
    /// AP at IoU .50:.95, area all, maxDets 100 for each category in label order (mmdet's
    /// `classwise` table); nil where the category has no ground truth.
    public let perCategoryAP: [Double?]

    public var K: Int { sortedCategoryIds.count }

    init(precision: [Double], recall: [Double], sortedCategoryIds: [Int], categories: [COCOCategory],
         numImages: Int, numDetections: Int, numAnnotations: Int) {
        self.precision = precision
        self.recall = recall
        self.sortedCategoryIds = sortedCategoryIds
        self.categories = categories
        self.numImages = numImages
        self.numDetections = numDetections
        self.numAnnotations = numAnnotations
        let K = sortedCategoryIds.count
        let T = COCOEvalParams.T, R = COCOEvalParams.R, A = COCOEvalParams.A, M = COCOEvalParams.M
        let allT = Array(0..<T)
        func ap(_ ts: [Int], _ a: Int, _ m: Int) -> Double {
            var values: [Double] = []
            values.reserveCapacity(ts.count * R * K)
            for t in ts { for r in 0..<R { for k in 0..<K {
                let v = precision[(((t * R + r) * K + k) * A + a) * M + m]
                if v > -1 { values.append(v) }
            } } }
            return values.isEmpty ? -1 : NumpyMath.mean(values)
        }
        func ar(_ a: Int, _ m: Int) -> Double {
            var values: [Double] = []
            for t in 0..<T { for k in 0..<K {
                let v = recall[((t * K + k) * A + a) * M + m]
                if v > -1 { values.append(v) }
            } }
            return values.isEmpty ? -1 : NumpyMath.mean(values)
        }
        let t50 = COCOEvalParams.iouThresholds.firstIndex(of: 0.5)!
        let t75 = COCOEvalParams.iouThresholds.firstIndex(of: 0.75)!
        stats = [ap(allT, 0, 2), ap([t50], 0, 2), ap([t75], 0, 2), ap(allT, 1, 2), ap(allT, 2, 2), ap(allT, 3, 2),
                 ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2), ar(3, 2)]
        var kOfId = [Int: Int]()
        for (k, id) in sortedCategoryIds.enumerated() { kOfId[id] = k }
        perCategoryAP = categories.map { category in
            let k = kOfId[category.id]!
            var values: [Double] = []
            for t in 0..<T { for r in 0..<R {
                let v = precision[(((t * R + r) * K + k) * A + 0) * M + (M - 1)]
                if v > -1 { values.append(v) }
            } }
            return values.isEmpty ? nil : NumpyMath.mean(values)
        }
    }

    // MARK: - Access

    public var ap: Double { stats[0] }
    public var ap50: Double { stats[1] }
    public var ap75: Double { stats[2] }

    /// The summary numbers by name (`statNames`).
    public var named: [(name: String, value: Double)] { zip(Self.statNames, stats).map { ($0, $1) } }

    /// `precision[t, r, k, a, m]` (k over `sortedCategoryIds`).
    public func precision(t: Int, r: Int, k: Int, a: Int, m: Int) -> Double {
        precision[(((t * COCOEvalParams.R + r) * K + k) * COCOEvalParams.A + a) * COCOEvalParams.M + m]
    }

    public func recall(t: Int, k: Int, a: Int, m: Int) -> Double {
        recall[((t * K + k) * COCOEvalParams.A + a) * COCOEvalParams.M + m]
    }

    /// A precision-recall curve at the 101 recall points, area `a`, maxDets index `m`: for the
    /// IoU threshold indices `ts` (all ten for .50:.95) and the category with id `categoryId`
    /// (nil: all categories), the mean of the defined entries at each recall point; -1 where
    /// nothing is defined.
    public func curve(ious ts: [Int], categoryId: Int? = nil, a: Int = 0, m: Int = 2) -> [Double] {
        let ks: [Int]
        if let id = categoryId {
            guard let k = sortedCategoryIds.firstIndex(of: id) else { return Array(repeating: -1, count: COCOEvalParams.R) }
            ks = [k]
        } else {
            ks = Array(0..<K)
        }
        return (0..<COCOEvalParams.R).map { r in
            var values: [Double] = []
            for t in ts { for k in ks {
                let v = precision(t: t, r: r, k: k, a: a, m: m)
                if v > -1 { values.append(v) }
            } }
            return values.isEmpty ? -1 : NumpyMath.mean(values)
        }
    }

    // MARK: - Text

    /// The 12 lines pycocotools' `summarize()` prints, e.g.
    /// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.370`.
    /// What `ghm cocoeval` and `ghm eval` print: the 12-line table, then with `perCategory` a blank line and the
    /// per-category AP table.
    public func text(perCategory: Bool) -> String {
        perCategory ? table + "\n\n" + perCategoryTable : table
    }

    public var table: String {
        let specs: [(ap: Bool, iou: String, area: String, maxDets: Int)] = [
            (true, "0.50:0.95", "all", 100), (true, "0.50", "all", 100), (true, "0.75", "all", 100),
            (true, "0.50:0.95", "small", 100), (true, "0.50:0.95", "medium", 100), (true, "0.50:0.95", "large", 100),
            (false, "0.50:0.95", "all", 1), (false, "0.50:0.95", "all", 10), (false, "0.50:0.95", "all", 100),
            (false, "0.50:0.95", "small", 100), (false, "0.50:0.95", "medium", 100), (false, "0.50:0.95", "large", 100),
        ]
        return zip(specs, stats).map { spec, value in
            let title = spec.ap ? "Average Precision" : "Average Recall"
            let type = spec.ap ? "(AP)" : "(AR)"
            return " " + Self.padRight(title, 18) + " " + type + " @[ IoU=" + Self.padRight(spec.iou, 9)
                + " | area=" + Self.padLeft(spec.area, 6) + " | maxDets=" + Self.padLeft(String(spec.maxDets), 3)
                + " ] = " + Self.fixed3(value)
        }.joined(separator: "\n")
    }

    /// mmdet's `bbox_mAP_copypaste`: the first six numbers with 3 decimals.
    public var copypaste: String { stats.prefix(6).map(Self.fixed3).joined(separator: " ") }

    /// Per-category AP in label order, one line per category (`nan` where undefined).
    public var perCategoryTable: String {
        let width = max(8, categories.map { $0.name.count }.max() ?? 8)
        var lines = [Self.padRight("category", width) + "  " + Self.padLeft("id", 6) + "  AP"]
        for (category, ap) in zip(categories, perCategoryAP) {
            lines.append(Self.padRight(category.name, width) + "  " + Self.padLeft(String(category.id), 6) + "  "
                         + (ap.map(Self.fixed3) ?? "nan"))
        }
        return lines.joined(separator: "\n")
    }

    static func fixed3(_ v: Double) -> String { String(format: "%.3f", v) }
    static func padRight(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    static func padLeft(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

    // MARK: - JSON

    /// `{"stats": {"AP": ..., ...}, "stats_list": [12], "bbox_mAP_copypaste": "...",
    /// "per_category": [{"label", "id", "name", "AP"}], "num_images", "num_detections",
    /// "num_annotations"}`; undefined per-category AP is `null`.
    public func jsonData(includeCurves: Bool = false) -> Data {
        var out = "{\n  \"stats\": {"
        out += zip(Self.statNames, stats).map { "\"\($0)\": \(JSONText.number($1))" }.joined(separator: ", ")
        out += "},\n  \"stats_list\": [" + stats.map(JSONText.number).joined(separator: ", ") + "],\n"
        out += "  \"bbox_mAP_copypaste\": \"\(copypaste)\",\n"
        out += "  \"num_images\": \(numImages),\n  \"num_annotations\": \(numAnnotations),\n  \"num_detections\": \(numDetections),\n"
        out += "  \"per_category\": [\n"
        out += zip(categories.indices, zip(categories, perCategoryAP)).map { label, pair in
            "    {\"label\": \(label), \"id\": \(pair.0.id), \"name\": \(JSONText.quote(pair.0.name)), \"AP\": "
                + (pair.1.map(JSONText.number) ?? "null") + "}"
        }.joined(separator: ",\n")
        out += "\n  ]"
        if includeCurves {
            out += ",\n  \"recall_thresholds\": [" + COCOEvalParams.recallThresholds.map(JSONText.number).joined(separator: ", ") + "],\n"
            out += "  \"pr_curves\": {"
            let curves: [(String, [Int])] = [("iou50", [0]), ("iou75", [5]), ("iou50_95", Array(0..<COCOEvalParams.T))]
            out += curves.map { name, ts in
                "\"\(name)\": [" + curve(ious: ts).map(JSONText.number).joined(separator: ", ") + "]"
            }.joined(separator: ", ")
            out += "}"
        }
        out += "\n}\n"
        return Data(out.utf8)
    }

    /// Writes `jsonData` atomically.
    public func writeJSON(to path: String, includeCurves: Bool = false) throws {
        try Files.writeAtomically(jsonData(includeCurves: includeCurves), to: path)
    }
}

/// numpy's float64 summation: `np.add.reduce` sums a contiguous array pairwise (blocks of 128,
/// 8 accumulators), so `np.mean` is `pairwise_sum / n`. Doing the same makes the summary
/// numbers bit-identical to pycocotools in the usual case.
enum NumpyMath {
    static func mean(_ values: [Double]) -> Double {
        values.withUnsafeBufferPointer { pairwiseSum($0.baseAddress!, $0.count) } / Double(values.count)
    }

    static func pairwiseSum(_ a: UnsafePointer<Double>, _ n: Int) -> Double {
        if n < 8 {
            var res = 0.0
            for i in 0..<n { res += a[i] }
            return res
        } else if n <= 128 {
            var r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7]
            var i = 8
            let end = n - (n % 8)
            while i < end {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3]
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7]
                i += 8
            }
            var res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n { res += a[i]; i += 1 }
            return res
        } else {
            var n2 = n / 2
            n2 -= n2 % 8
            return pairwiseSum(a, n2) + pairwiseSum(a + n2, n - n2)
        }
    }
}
