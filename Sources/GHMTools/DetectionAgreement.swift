import Detection
import Foundation
import Torch

/// How far one set of detections of an image is from a reference set (the fp32 path): each reference detection,
/// highest score first, is matched to the unmatched detection of the same label with the largest IoU, when that IoU
/// is at least `minIoU` (zero-area boxes: see `iou`).
public struct DetectionAgreement: CustomStringConvertible {
    public var referenceCount = 0, otherCount = 0, matched = 0
    public var maxScoreDifference = 0.0, meanScoreDifference = 0.0
    /// The largest |Δ| of a matched box coordinate, pixels.
    public var maxBoxDifference = 0.0
    /// The highest score of a reference detection left unmatched (0 when all matched): misses at the cut-off of
    /// `max_per_img`, where near-equal scores trade places, score low.
    public var unmatchedMaxScore = 0.0
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
                guard best >= 0 else { unmatchedMaxScore = Swift.max(unmatchedMaxScore, Double(a.score)); continue }
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

    /// IoU; two boxes of zero area (clipped flat at the image edge, where IoU is 0/0) count as IoU 1 when their
    /// corners agree within 0.5 px, else 0.
    static func iou(_ a: [Float], _ b: [Float]) -> Double {
        let area = { (x: [Float]) in Double(x[2] - x[0]) * Double(x[3] - x[1]) }
        if area(a) <= 0 && area(b) <= 0 { return (0..<4).allSatisfy { abs(a[$0] - b[$0]) <= 0.5 } ? 1 : 0 }
        let iw = Swift.max(0, Double(Swift.min(a[2], b[2]) - Swift.max(a[0], b[0])))
        let ih = Swift.max(0, Double(Swift.min(a[3], b[3]) - Swift.max(a[1], b[1])))
        let inter = iw * ih
        let ua = Double((a[2] - a[0]) * (a[3] - a[1])) + Double((b[2] - b[0]) * (b[3] - b[1])) - inter
        return ua > 0 ? inter / ua : 0
    }

    public var description: String {
        String(format: "%d of %d reference detections matched at IoU ≥ %.2f (%d detections)%@; score |Δ| max %.2e, mean %.2e; box |Δ| max %.3f px",
               matched, referenceCount, minIoU, otherCount,
               (matched < referenceCount ? String(format: ", best unmatched score %.3f", unmatchedMaxScore) : "") as NSString,
               maxScoreDifference, meanScoreDifference, maxBoxDifference)
    }
}

/// `ghm parity --fast-paths`: each fast inference path against the fp32 reference path on the same weights and
/// images — the head outputs' largest relative difference and the detections' agreement.
public enum FastPathReport {
    public static let standardModes: [RetinaNet.InferenceMode] = [
        .init(fuseConvBN: true), .init(channelsLast: true), .init(autocast: .bfloat16),
        .init(fuseConvBN: true, channelsLast: true), .init(fuseConvBN: true, channelsLast: true, autocast: .bfloat16),
    ]

    public struct Line: CustomStringConvertible {
        public var mode: RetinaNet.InferenceMode
        /// max |Δ| / max |reference| over the head outputs of every level and image.
        public var headRelative: Double
        public var agreement: DetectionAgreement
        public var description: String {
            "  " + mode.description.padding(toLength: 44, withPad: " ", startingAt: 0)
                + String(format: "head outputs max rel. Δ %.2e; ", headRelative) + agreement.description
        }
    }

    /// `makeDetector` builds a fresh detector with the reference's weights (folding cannot be undone).
    public static func run(reference: Detector, makeDetector: () throws -> Detector, images: [String],
                           modes: [RetinaNet.InferenceMode]) throws -> [Line] {
        guard !images.isEmpty else { throw ToolError("the fast paths are compared on --image files: give at least one") }
        let prepared = try images.map { try reference.prepare(path: $0) }
        return try run(reference: reference, makeDetector: makeDetector,
                       inputs: try prepared.map { (try ImageTransform.collate([$0.tensor]), [$0.meta]) }, modes: modes)
    }

    /// The same on pre-processed inputs (e.g. a parity reference's `input` and metas; no image decoding).
    public static func run(reference: Detector, makeDetector: () throws -> Detector,
                           inputs: [(batch: Tensor, metas: [ImageMeta])], modes: [RetinaNet.InferenceMode]) throws -> [Line] {
        func run(_ d: Detector) throws -> ([[Tensor]], [Detections]) {
            var heads: [[Tensor]] = [], dets: [Detections] = []
            for (batch, metas) in inputs {
                let x = try batch.to(d.device)
                let (cls, reg) = try withNoGrad { () throws(TorchError) in try d.model.forwardInference(x) }
                heads.append(cls + reg)
                dets += try d.model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: metas)
            }
            return (heads, dets)
        }
        let (refHeads, refDets) = try run(reference)
        var lines: [Line] = []
        for mode in modes {
            let d = try makeDetector()
            try d.model.setInferenceMode(mode)
            let (heads, dets) = try run(d)
            var worst = 0.0
            for (a, b) in zip(refHeads.joined(), heads.joined()) {
                worst = Swift.max(worst, try (a - b).abs().max().item() / Swift.max(try a.abs().max().item(), 1e-30))
            }
            lines.append(Line(mode: mode, headRelative: worst, agreement: try DetectionAgreement(reference: refDets, other: dets)))
        }
        return lines
    }
}
