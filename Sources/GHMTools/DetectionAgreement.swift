import Detection
import Foundation
import Torch

/// How far one set of detections of an image is from a reference set (the fp32 path): each reference detection,
/// highest score first, is matched to the unmatched detection of the same label with the largest IoU, when that IoU
/// is at least `minIoU`.
public struct DetectionAgreement: CustomStringConvertible {
    public var referenceCount = 0, otherCount = 0, matched = 0
    public var maxScoreDifference = 0.0, meanScoreDifference = 0.0
    /// The largest |Δ| of a matched box coordinate, pixels.
    public var maxBoxDifference = 0.0
    public var minIoU: Double

    public var allMatched: Bool { matched == referenceCount && matched == otherCount }

    public init(reference: [Detections], other: [Detections], minIoU: Double = 0.9) throws {
        self.minIoU = minIoU
        var scoreSum = 0.0
        for (ref, oth) in zip(reference, other) {
            let r = try ref.rows(), o = try oth.rows()
            referenceCount += r.count
            otherCount += o.count
            var used = [Bool](repeating: false, count: o.count)
            for a in r.sorted(by: { $0.score > $1.score }) {
                var best = -1, bestIoU = minIoU
                for (j, b) in o.enumerated() where !used[j] && b.label == a.label {
                    let v = Self.iou(a.box, b.box)
                    if v >= bestIoU { best = j; bestIoU = v }
                }
                guard best >= 0 else { continue }
                used[best] = true
                matched += 1
                let ds = abs(Double(a.score) - Double(o[best].score))
                scoreSum += ds
                maxScoreDifference = Swift.max(maxScoreDifference, ds)
                for k in 0..<4 { maxBoxDifference = Swift.max(maxBoxDifference, abs(Double(a.box[k]) - Double(o[best].box[k]))) }
            }
        }
        meanScoreDifference = matched > 0 ? scoreSum / Double(matched) : 0
    }

    static func iou(_ a: [Float], _ b: [Float]) -> Double {
        let iw = Swift.max(0, Double(Swift.min(a[2], b[2]) - Swift.max(a[0], b[0])))
        let ih = Swift.max(0, Double(Swift.min(a[3], b[3]) - Swift.max(a[1], b[1])))
        let inter = iw * ih
        let ua = Double((a[2] - a[0]) * (a[3] - a[1])) + Double((b[2] - b[0]) * (b[3] - b[1])) - inter
        return ua > 0 ? inter / ua : 0
    }

    public var description: String {
        String(format: "%d of %d reference detections matched at IoU ≥ %.2f (%d detections); score |Δ| max %.2e, mean %.2e; box |Δ| max %.3f px",
               matched, referenceCount, minIoU, otherCount, maxScoreDifference, meanScoreDifference, maxBoxDifference)
    }
}
