import Foundation
import Imaging
import Torch
import TorchCheckpoint
import TorchNN
import Detection

/// One checked (or unchecked) tensor of a parity run.
public struct ParityLine {
    public var name: String
    public var maxAbs: Double?
    public var maxRel: Double?
    public var tolerance: String
    /// nil: not checked.
    public var pass: Bool?
    public var note: String = ""

    public var text: String {
        let verdict = pass.map { $0 ? "PASS" : "FAIL" } ?? "not checked"
        func f(_ x: Double?) -> String { x.map { String(format: "%.3e", $0) } ?? "-" }
        let n = name.padding(toLength: Swift.max(name.count, 34), withPad: " ", startingAt: 0)
        return "  \(n) max|Δ| \(f(maxAbs))  max rel \(f(maxRel))  tol \(tolerance.padding(toLength: 22, withPad: " ", startingAt: 0)) \(verdict)\(note.isEmpty ? "" : "  (\(note))")"
    }
}

/// The result of `ghm parity`: every line, in order, and the verdict.
public struct ParityReport {
    public var lines: [ParityLine] = []
    public var checked: [ParityLine] { lines.filter { $0.pass != nil } }
    public var failures: [ParityLine] { lines.filter { $0.pass == false } }
    public var passed: Bool { !checked.isEmpty && failures.isEmpty }

    public var summary: String {
        let unchecked = lines.filter { $0.pass == nil }.map(\.name)
        var s = "parity: \(checked.count) checked, \(checked.count - failures.count) PASS, \(failures.count) FAIL"
        if !unchecked.isEmpty { s += "; not checked: \(unchecked.joined(separator: ", "))" }
        return s
    }
}

/// Compares the Swift model with a reference written by MMDetection (`tools/mmdet_reference.py`). The model runs on
/// the reference `input`, so each stage is judged on its own; with `images`, pre-processing and end-to-end detection
/// from the image files are checked too. Training entries (losses over two iterations, GHM state, gradients) are
/// checked when present.
public final class ParityRunner {
    public let detector: Detector
    public let reference: [String: Tensor]
    public let referenceKeys: [String]
    /// Every parameter that had a gradient on mmdet's side, where the reference keeps only some `grad.*` entries
    /// (`tools/mmdet_reference.py --grad-keys`, metadata "grad_params"); nil: every such parameter has its entry.
    public let gradientParameters: Set<String>?
    public var log: (ParityLine) -> Void = { _ in }
    private var used = Set<String>()

    public init(detector: Detector, referencePath: String) throws {
        self.detector = detector
        let file = try Checkpoint.load(referencePath)
        let sd = try file.stateDict(at: nil)
        reference = sd.tensors
        referenceKeys = sd.keys
        let meta = file.safetensorsMetadata
        if let pattern = meta["grad_keys"], !pattern.isEmpty, let list = meta["grad_params"],
           let names = try? JSONSerialization.jsonObject(with: Data(list.utf8)) as? [String] {
            gradientParameters = Set(names)
        } else {
            gradientParameters = nil
        }
    }

    /// Per-image suffix of the reference's names: "" for image 0, ".i" after.
    static func suffix(_ i: Int) -> String { i == 0 ? "" : ".\(i)" }

    public func run(images: [String] = []) throws -> ParityReport {
        var report = ParityReport()
        func add(_ line: ParityLine) {
            report.lines.append(line)
            log(line)
        }
        let input = try need("input").to(detector.device)
        let metas = try referenceMetas(count: input.size(0))
        try checkHead(input: input, metas: metas, add: add)
        if !images.isEmpty { try checkImages(Array(images.prefix(metas.count)), referenceInput: input, add: add) }
        if reference["gt_bboxes"] != nil { try checkTraining(input: input, metas: metas, add: add) }
        for key in referenceKeys where !used.contains(key) {
            add(ParityLine(name: key, tolerance: "-", pass: nil))
        }
        return report
    }

    func need(_ key: String) throws -> Tensor {
        guard let t = reference[key] else { throw RuntimeParityError("the reference has no '\(key)'") }
        used.insert(key)
        return t
    }

    /// The reference's pre-processed `input` batch and its image metas.
    public func referenceInput() throws -> (batch: Tensor, metas: [ImageMeta]) {
        let input = try need("input")
        return (input, try referenceMetas(count: try input.size(0)))
    }

    func referenceMetas(count: Int) throws -> [ImageMeta] {
        var metas: [ImageMeta] = []
        for i in 0..<count {
            let s = Self.suffix(i)
            let img = try need("img_shape" + s).floats().map { Int($0) }
            let pad = try need("pad_shape" + s).floats().map { Int($0) }
            let ori = try need("ori_shape" + s).floats().map { Int($0) }
            let scale = try need("scale_factor" + s).floats()
            metas.append(ImageMeta(filename: "reference[\(i)]", oriShape: (ori[0], ori[1], ori[2]),
                                   imgShape: (img[0], img[1], img[2]), padShape: (pad[0], pad[1], pad[2]),
                                   scaleFactor: scale))
        }
        _ = reference["batch_input_shape"].map { _ in used.insert("batch_input_shape") }
        return metas
    }

    // MARK: inference

    func checkHead(input: Tensor, metas: [ImageMeta], add: (ParityLine) -> Void) throws {
        let model = detector.model
        model.eval()
        let (cls, reg) = try withNoGrad { () throws(TorchError) in try model.forwardRaw(input) }
        for (l, (c, r)) in zip(cls, reg).enumerated() {
            add(try compareHead("cls_score.\(l)", c, need("cls_score.\(l)")))
            add(try compareHead("bbox_pred.\(l)", r, need("bbox_pred.\(l)")))
        }
        let dets = try model.postProcessor.detections(clsScores: cls, bboxPreds: reg, metas: metas)
        for (i, d) in dets.enumerated() {
            let s = Self.suffix(i)
            let refBoxes = try need("det_bboxes" + s), refLabels = try need("det_labels" + s)
            for line in try compareDetections("detections" + s + " (from input)", d, refBoxes, refLabels, endToEnd: false) {
                add(line)
            }
        }
    }

    /// Head outputs: |Δ| ≤ 1e-4, or |Δ|/|x| ≤ 1e-4 where |x| > 1.
    func compareHead(_ name: String, _ ours: Tensor, _ ref: Tensor) throws -> ParityLine {
        guard ours.shape == ref.shape else {
            return ParityLine(name: name, tolerance: "shape", pass: false, note: "shape \(ours.shape) vs \(ref.shape)")
        }
        let r = try ref.to(ours.device)
        let d = try (ours - r).abs()
        let big = try r.abs() .> 1
        let rel = try d / r.abs().clamp(min: 1e-30)
        let bad = try (d .> 1e-4) .& (big.logicalNot() .| (rel .> 1e-4))
        let maxRel = try rel.maskedFill(big.logicalNot(), 0).max().item()
        return ParityLine(name: name, maxAbs: try d.max().item(), maxRel: maxRel, tolerance: "abs 1e-4 | rel 1e-4",
                          pass: try bad.any().item() == 0)
    }

    /// From `input`: same count, labels in the same order, boxes within 1e-2 px, scores within 1e-5.
    /// End to end (from the image): same labels, IoU ≥ 0.99 with the reference box, scores within 1e-3.
    func compareDetections(_ name: String, _ d: Detections, _ refBoxes: Tensor, _ refLabels: Tensor,
                           endToEnd: Bool) throws -> [ParityLine] {
        let rows = try d.rows()
        let rb = try refBoxes.floats(), rl = try refLabels.int64s().map(Int.init)
        let n = rl.count
        guard rows.count == n else {
            return [ParityLine(name: name, tolerance: "count", pass: false, note: "\(rows.count) detections vs \(n)")]
        }
        let labelsEqual = rows.map(\.label) == rl
        var boxDiff = 0.0, scoreDiff = 0.0, minIoU = 1.0
        for (i, row) in rows.enumerated() {
            let ref = Array(rb[5 * i..<5 * i + 4]).map(Double.init)
            let box = row.box.map(Double.init)
            boxDiff = Swift.max(boxDiff, zip(box, ref).map { Swift.abs($0 - $1) }.max() ?? 0)
            scoreDiff = Swift.max(scoreDiff, Swift.abs(Double(row.score) - Double(rb[5 * i + 4])))
            minIoU = Swift.min(minIoU, iou(box, ref))
        }
        let note = "\(n) detections, labels \(labelsEqual ? "identical" : "DIFFER")"
        if endToEnd {
            return [
                ParityLine(name: name + " boxes", maxAbs: boxDiff, maxRel: nil, tolerance: "IoU ≥ 0.99",
                           pass: labelsEqual && minIoU >= 0.99, note: note + String(format: ", min IoU %.5f", minIoU)),
                ParityLine(name: name + " scores", maxAbs: scoreDiff, maxRel: nil, tolerance: "abs 1e-3", pass: scoreDiff <= 1e-3),
            ]
        }
        return [
            ParityLine(name: name + " boxes", maxAbs: boxDiff, maxRel: nil, tolerance: "abs 1e-2 px",
                       pass: labelsEqual && boxDiff <= 1e-2, note: note),
            ParityLine(name: name + " scores", maxAbs: scoreDiff, maxRel: nil, tolerance: "abs 1e-5", pass: scoreDiff <= 1e-5),
        ]
    }

    /// IoU of two boxes; boxes clipped to a zero-area line at the border count as matching when their coordinates
    /// agree within 1e-2 px (their IoU is undefined).
    func iou(_ a: [Double], _ b: [Double]) -> Double {
        let w = Swift.max(0, Swift.min(a[2], b[2]) - Swift.max(a[0], b[0]))
        let h = Swift.max(0, Swift.min(a[3], b[3]) - Swift.max(a[1], b[1]))
        let inter = w * h
        let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        if union <= 1e-6 { return zip(a, b).allSatisfy { Swift.abs($0 - $1) <= 1e-2 } ? 1 : 0 }
        return inter / union
    }

    /// Pre-processing of each image file, then end-to-end detection of the batch (collated like mmdet's).
    func checkImages(_ paths: [String], referenceInput: Tensor, add: (ParityLine) -> Void) throws {
        var prepared: [PreparedImage] = []
        for (i, path) in paths.enumerated() {
            let p = try detector.prepare(path: path)
            try checkPreprocessing(p, index: i, referenceInput: referenceInput, add: add)
            prepared.append(p)
        }
        let dets = try detector.detect(prepared)
        for (i, d) in dets.enumerated() {
            let s = Self.suffix(i)
            for line in try compareDetections("detections" + s + " (end to end)", d, need("det_bboxes" + s),
                                              need("det_labels" + s), endToEnd: true) {
                add(line)
            }
        }
    }

    /// The resized image (identical, or at most one grey level off) and the normalised input (1e-5, or 4e-2 where
    /// the resized image differed); the input is compared on its own padded size, the rest of the reference's
    /// batch padding must be zero.
    func checkPreprocessing(_ prepared: PreparedImage, index i: Int, referenceInput: Tensor,
                            add: (ParityLine) -> Void) throws {
        let s = Self.suffix(i)
        var differing: Tensor?
        if let refResized = reference["resized_uint8_bgr" + s] {
            used.insert("resized_uint8_bgr" + s)
            let ours = try Tensor(prepared.resized.bytes(), shape: [prepared.resized.height, prepared.resized.width, 3])
            if ours.shape != refResized.shape {
                add(ParityLine(name: "resized_uint8_bgr" + s, tolerance: "identical", pass: false,
                               note: "size \(ours.shape) vs \(refResized.shape)"))
            } else {
                let d = try (ours.to(.int16) - refResized.to(.int16)).abs()
                let count = try (d .> 0).sum().itemInt(), maxDiff = try d.max().itemInt()
                differing = try (d.amax([2]) .> 0)
                add(ParityLine(name: "resized_uint8_bgr" + s, maxAbs: Double(maxDiff), maxRel: nil,
                               tolerance: "identical (≤ 1 level)", pass: maxDiff <= 1,
                               note: count == 0 ? "identical" : "\(count) values differ, by at most \(maxDiff)"))
            }
        }
        let ref = try referenceInput.select(dim: 0, index: i).to(prepared.tensor.device)
        let ours = prepared.tensor
        let h = try ours.size(1), w = try ours.size(2)
        guard try h <= ref.size(1), try w <= ref.size(2) else {
            add(ParityLine(name: "input" + s + " (from image)", tolerance: "shape", pass: false,
                           note: "shape \(ours.shape) larger than the reference's \(ref.shape)"))
            return
        }
        let d = try (ours - ref.narrow(dim: 1, start: 0, length: h).narrow(dim: 2, start: 0, length: w)).abs()
        let tol = try Tensor.full([h, w], 1e-5, device: d.device)
        if let differing {
            let rh = try Swift.min(differing.size(0), h), rw = try Swift.min(differing.size(1), w)
            let mask = try differing.narrow(dim: 0, start: 0, length: rh).narrow(dim: 1, start: 0, length: rw)
            try tol.narrow(dim: 0, start: 0, length: rh).narrow(dim: 1, start: 0, length: rw).maskedFill_(mask.to(d.device), 4e-2)
        }
        // outside our own padded size, the reference holds the batch padding: zeros
        let outside = try ref.abs().sum().item() - ref.narrow(dim: 1, start: 0, length: h).narrow(dim: 2, start: 0, length: w).abs().sum().item()
        let bad = try (d .> tol.unsqueeze(0)).any().item() != 0
        add(ParityLine(name: "input" + s + " (from image)", maxAbs: try d.max().item(), maxRel: nil,
                       tolerance: "abs 1e-5 (4e-2)", pass: !bad && outside == 0,
                       note: outside == 0 ? "" : "the reference is not zero outside \(h)x\(w)"))
    }

    // MARK: training

    func checkTraining(input: Tensor, metas: [ImageMeta], add: (ParityLine) -> Void) throws {
        let model = detector.model
        let dev = try input.device
        var gtBoxes: [Tensor] = [], gtLabels: [Tensor] = []
        for i in 0..<metas.count {
            gtBoxes.append(try need("gt_bboxes" + Self.suffix(i)).to(dev))
            gtLabels.append(try need("gt_labels" + Self.suffix(i)).to(dev))
        }
        let buffers = ghmBuffers()
        for (name, buf) in buffers {
            if let ref = reference["\(name).acc_sum.iter0"] {
                used.insert("\(name).acc_sum.iter0")
                add(try compareRelative("\(name).acc_sum.iter0 (checkpoint)", buf, ref))
            }
        }
        try checkTargets(metas: metas, gtBoxes: gtBoxes, gtLabels: gtLabels, device: dev, add: add)
        model.train()
        defer { model.eval() }
        try model.zeroGrad()
        let losses = try model.forwardTrain(input, metas: metas, gtBoxes: gtBoxes, gtLabels: gtLabels)
        try compareLosses(losses, prefix: "", add: add)
        for (name, buf) in buffers { add(try compareRelative("\(name).acc_sum.iter1", buf, need("\(name).acc_sum.iter1"))) }
        try losses.totals().loss.backward()
        try compareGradients(add: add)
        let again = try withNoGrad { () throws(TorchError) in
            try model.forwardTrain(input, metas: metas, gtBoxes: gtBoxes, gtLabels: gtLabels)
        }
        try compareLosses(again, prefix: "iter2.", add: add)
        for (name, buf) in buffers { add(try compareRelative("\(name).acc_sum.iter2", buf, need("\(name).acc_sum.iter2"))) }
        try model.zeroGrad()
    }

    func ghmBuffers() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (prefix, name) in [("bbox_head.loss_cls.acc_sum", "ghmc"), ("bbox_head.loss_bbox.acc_sum", "ghmr")] {
            if let t = detector.model.namedBuffers().first(where: { $0.key == prefix })?.tensor { out.append((name, t)) }
        }
        return out
    }

    /// |Δ| ≤ 1e-4 · |ref| elementwise (1e-4 · max|ref| for near-zero elements).
    func compareRelative(_ name: String, _ ours: Tensor, _ ref: Tensor, rtol: Double = 1e-4) throws -> ParityLine {
        let r = try ref.to(ours.device).to(.float64).reshape([-1])
        let o = try ours.to(.float64).reshape([-1])
        guard r.numel == o.numel else {
            return ParityLine(name: name, tolerance: "rel \(rtol)", pass: false, note: "\(o.numel) vs \(r.numel) values")
        }
        let d = try (o - r).abs()
        let scale = Swift.max(try r.abs().max().item(), 1e-30)
        let rel = try d / r.abs().clamp(min: scale * 1e-3)
        let maxRel = try rel.max().item()
        return ParityLine(name: name, maxAbs: try d.max().item(), maxRel: maxRel, tolerance: "rel \(rtol)",
                          pass: maxRel <= rtol)
    }

    func compareLosses(_ losses: HeadLosses, prefix: String, add: (ParityLine) -> Void) throws {
        for l in 0..<losses.lossCls.count {
            add(try compareRelative(prefix + "loss_cls.\(l)", losses.lossCls[l], need(prefix + "loss_cls.\(l)")))
            add(try compareRelative(prefix + "loss_bbox.\(l)", losses.lossBbox[l], need(prefix + "loss_bbox.\(l)")))
        }
        let t = try losses.totals()
        add(try compareRelative(prefix + "loss_cls", t.lossCls, need(prefix + "loss_cls")))
        add(try compareRelative(prefix + "loss_bbox", t.lossBbox, need(prefix + "loss_bbox")))
        add(try compareRelative(prefix + "loss", t.loss, need(prefix + "loss")))
    }

    /// Gradients: max |Δ| ≤ 1e-3 · max |reference gradient| per tensor; parameters without a reference gradient
    /// (frozen) must have none either.
    func compareGradients(add: (ParityLine) -> Void) throws {
        var worst = 0.0, worstKey = "", count = 0, failed = 0, unexpected: [String] = []
        for (key, p) in detector.model.namedParameters() {
            guard let ref = reference["grad." + key] else {
                if p.grad != nil && !(gradientParameters?.contains(key) ?? false) { unexpected.append(key) }
                continue
            }
            used.insert("grad." + key)
            count += 1
            guard let g = p.grad, g.shape == ref.shape else {
                failed += 1
                add(ParityLine(name: "grad." + key, tolerance: "1e-3·max|ref|", pass: false, note: "no gradient or wrong shape"))
                continue
            }
            let r = try ref.to(g.device)
            let scale = try r.abs().max().item()
            let d = try (g - r).abs().max().item()
            let rel = scale > 0 ? d / scale : (d == 0 ? 0 : .infinity)
            if rel > worst { (worst, worstKey) = (rel, key) }
            if rel > 1e-3 {
                failed += 1
                add(ParityLine(name: "grad." + key, maxAbs: d, maxRel: rel, tolerance: "1e-3·max|ref|", pass: false))
            }
        }
        // parameters with a gradient on mmdet's side whose entry the reference left out must have one here too
        var missing: [String] = []
        if let all = gradientParameters {
            for (key, p) in detector.model.namedParameters() where all.contains(key) && p.grad == nil { missing.append(key) }
        }
        unexpected += missing.map { "\($0) (none here)" }
        add(ParityLine(name: "gradients (\(count) tensors)", maxAbs: nil, maxRel: worst, tolerance: "1e-3·max|ref|",
                       pass: failed == 0 && count > 0 && unexpected.isEmpty,
                       note: (worst == 0 ? "all identical" : "worst \(worstKey)") + (unexpected.isEmpty ? "" : "; unexpected gradients: \(unexpected.prefix(5).joined(separator: ", "))")))
    }

    /// The assigner's intermediates when the reference has them (anchors, valid flags, labels, weights, targets).
    func checkTargets(metas: [ImageMeta], gtBoxes: [Tensor], gtLabels: [Tensor], device: Device,
                               add: (ParityLine) -> Void) throws {
        let head = detector.model.bboxHead
        var sizes: [(h: Int, w: Int)] = []
        for l in 0..<5 {
            guard let c = reference["cls_score.\(l)"] else { return }
            sizes.append((try c.size(2), try c.size(3)))
        }
        guard reference["targets.labels.0"] != nil else { return }
        let t = try head.targets(sizes: sizes, gtBoxes: gtBoxes, gtLabels: gtLabels, metas: metas,
                                 trainCfg: detector.config.model.trainCfg, device: device)
        let anchors = try head.anchorGenerator.gridAnchors(sizes: sizes, device: device)
        var flagsPerImage: [[Tensor]] = []  // [image][level]
        for m in metas {
            flagsPerImage.append(try head.anchorGenerator.validFlags(sizes: sizes, padShape: (m.padShape.h, m.padShape.w),
                                                                     device: device))
        }
        for l in 0..<sizes.count {
            if let ref = reference["anchors.\(l)"] {
                used.insert("anchors.\(l)")
                add(try compareExact("anchors.\(l)", anchors[l], ref, atol: 1e-4))
            }
            add(try compareExact("targets.labels.\(l)", t.labels[l], need("targets.labels.\(l)"), atol: 0))
            add(try compareExact("targets.label_weights.\(l)", t.labelWeights[l], need("targets.label_weights.\(l)"), atol: 0))
            add(try compareExact("targets.bbox_targets.\(l)", t.bboxTargets[l], need("targets.bbox_targets.\(l)"), atol: 1e-5))
            add(try compareExact("targets.bbox_weights.\(l)", t.bboxWeights[l], need("targets.bbox_weights.\(l)"), atol: 0))
            if let ref = reference["targets.valid_flags.\(l)"] {
                used.insert("targets.valid_flags.\(l)")
                add(try compareExact("targets.valid_flags.\(l)", Tensor.stack(flagsPerImage.map { $0[l] }), ref, atol: 0))
            }
        }
        if let ref = reference["targets.num_total_pos"] {
            used.insert("targets.num_total_pos")
            let r = try ref.itemInt()
            add(ParityLine(name: "targets.num_total_pos", maxAbs: Double(Swift.abs(t.numTotalPos - r)), maxRel: nil,
                           tolerance: "exact", pass: t.numTotalPos == r, note: "\(t.numTotalPos) vs \(r)"))
        }
    }

    func compareExact(_ name: String, _ ours: Tensor, _ ref: Tensor, atol: Double) throws -> ParityLine {
        guard ours.numel == ref.numel else {
            return ParityLine(name: name, tolerance: "abs \(atol)", pass: false, note: "shape \(ours.shape) vs \(ref.shape)")
        }
        let d = try (ours.to(.float64).reshape([-1]) - ref.to(ours.device).to(.float64).reshape([-1])).abs()
        let m = try d.max().item()
        let n = try (d .> atol).sum().itemInt()
        return ParityLine(name: name, maxAbs: m, maxRel: nil, tolerance: atol == 0 ? "exact" : "abs \(atol)",
                          pass: n == 0, note: n == 0 ? "" : "\(n) of \(ours.numel) differ")
    }
}

/// A parity run that cannot start (a missing reference entry, …).
public struct RuntimeParityError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
