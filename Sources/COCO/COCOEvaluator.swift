import Foundation
import Dispatch

/// The standard parameters of pycocotools' `COCOeval` for boxes (`Params.setDetParams`).
public enum COCOEvalParams {
    /// `np.linspace(.5, .95, 10)`, bit for bit.
    public static let iouThresholds: [Double] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95]
    /// `np.linspace(0, 1, 101)`, bit for bit.
    public static let recallThresholds: [Double] = (0...100).map { (i: Int) -> Double in
        if i == 100 { return 1.0 }
        let step: Double = 1.0 / 100.0
        return Double(i) * step
    }
    public static let maxDets = [1, 10, 100]
    public static let areaRangeLabels = ["all", "small", "medium", "large"]
    /// Inclusive `[lo, hi]` ranges of the annotation `area` (`[0, 1e5**2]`, `[0, 32**2]`, ...).
    public static let areaRanges: [(lo: Double, hi: Double)] = [(0, 1e10), (0, 1024), (1024, 9216), (9216, 1e10)]

    public static var T: Int { iouThresholds.count }
    public static var R: Int { recallThresholds.count }
    public static var A: Int { areaRanges.count }
    public static var M: Int { maxDets.count }
}

/// COCO box evaluation: the algorithm of pycocotools' `COCOeval` with `iouType='bbox'`
/// (evaluate + accumulate + summarize) in Swift.
///
/// What it reproduces: detections sorted per (image, category) by score with a stable order
/// (numpy `argsort(kind='mergesort')` of the negated scores), at most 100 per image and category;
/// box IoU as pycocotools' `bbIou` (a crowd region's "union" is the detection's area); greedy
/// matching per IoU threshold with crowd regions matchable many times and detections matched to
/// crowd (ignored) objects ignored; objects ignored when `iscrowd` (pycocotools overwrites the
/// `ignore` field with `iscrowd`) or when their `area` is outside the range; unmatched
/// detections ignored when their w*h is outside the range; a detection matched to an object
/// with id 0 counted as unmatched, as pycocotools does (it stores matches as ids, 0 = none);
/// accumulation over images in ascending id order with a stable sort of the scores, precision
/// made monotone from the right and read at 101 recall points; the 12 summary numbers as numpy
/// means (pairwise summation) of the defined (> -1) entries, -1 where none.
///
/// The work is split over categories with `DispatchQueue.concurrentPerform`.
public final class COCOEvaluator {
    public let gt: COCODataset
    public let dets: COCOResults
    /// Threads for `evaluate()`; defaults to the active processor count.
    public var concurrency: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    // Images and categories in ascending id order (pycocotools' `params.imgIds`/`catIds`).
    let sortedImageIds: [Int]
    let sortedCategoryIds: [Int]
    // Per detection: sorted image index and sorted category index.
    private let detImage: [Int32]
    private let detCategory: [Int32]

    /// Checks that every detection's image and category is in `gt` (see `COCOResults.validate`).
    public init(gt: COCODataset, dets: COCOResults) throws {
        self.gt = gt
        self.dets = dets
        sortedImageIds = gt.images.map(\.id).sorted()
        sortedCategoryIds = gt.categories.map(\.id).sorted()
        var imageRank = [Int: Int32](minimumCapacity: sortedImageIds.count)
        for (i, id) in sortedImageIds.enumerated() { imageRank[id] = Int32(i) }
        var catRank = [Int: Int32](minimumCapacity: sortedCategoryIds.count)
        for (k, id) in sortedCategoryIds.enumerated() { catRank[id] = Int32(k) }
        var di = [Int32](repeating: 0, count: dets.detections.count)
        var dk = [Int32](repeating: 0, count: dets.detections.count)
        for (n, det) in dets.detections.enumerated() {
            guard let i = imageRank[det.imageId], let k = catRank[det.categoryId],
                  det.bbox.isFinite, det.bbox.width >= 0, det.bbox.height >= 0, det.score.isFinite else {
                try dets.validate(against: gt)
                throw COCOError(file: dets.path, item: "results[\(n)]", "invalid detection")
            }
            di[n] = i
            dk[n] = k
        }
        detImage = di
        detCategory = dk
    }

    /// Runs the evaluation; the result holds the 12 numbers, per-category AP and the
    /// precision/recall arrays.
    public func evaluate() -> COCOMetrics {
        let T = COCOEvalParams.T, R = COCOEvalParams.R, A = COCOEvalParams.A, M = COCOEvalParams.M
        let I = sortedImageIds.count, K = sortedCategoryIds.count

        // Ground truth in SoA form, grouped by (category, image) with file order kept inside a group.
        var imageRank = [Int: Int32](minimumCapacity: I)
        for (i, id) in sortedImageIds.enumerated() { imageRank[id] = Int32(i) }
        var catRank = [Int: Int32](minimumCapacity: K)
        for (k, id) in sortedCategoryIds.enumerated() { catRank[id] = Int32(k) }
        let anns = gt.annotations
        var gtImage = [Int32](repeating: 0, count: anns.count)
        var gtCategory = [Int32](repeating: 0, count: anns.count)
        for (n, ann) in anns.enumerated() {
            gtImage[n] = imageRank[ann.imageId]!  // checked by COCODataset
            gtCategory[n] = catRank[ann.categoryId]!
        }
        let gtOrder = Self.groupOrder(image: gtImage, category: gtCategory, images: I, categories: K)
        let dtOrder = Self.groupOrder(image: detImage, category: detCategory, images: I, categories: K)

        var gtBox = [Double](repeating: 0, count: anns.count * 4)
        var gtArea = [Double](repeating: 0, count: anns.count)
        var gtCrowd = [Bool](repeating: false, count: anns.count)
        var gtIdNonzero = [Bool](repeating: true, count: anns.count)
        for (n, ann) in anns.enumerated() {
            gtBox[4 * n] = ann.bbox.x; gtBox[4 * n + 1] = ann.bbox.y
            gtBox[4 * n + 2] = ann.bbox.width; gtBox[4 * n + 3] = ann.bbox.height
            gtArea[n] = ann.area
            gtCrowd[n] = ann.isCrowd
            gtIdNonzero[n] = ann.id != 0
        }
        let detections = dets.detections
        var dtBox = [Double](repeating: 0, count: detections.count * 4)
        var dtScore = [Double](repeating: 0, count: detections.count)
        for (n, det) in detections.enumerated() {
            dtBox[4 * n] = det.bbox.x; dtBox[4 * n + 1] = det.bbox.y
            dtBox[4 * n + 2] = det.bbox.width; dtBox[4 * n + 3] = det.bbox.height
            dtScore[n] = det.score
        }

        let precision = UnsafeMutableBufferPointer<Double>.allocate(capacity: T * R * K * A * M)
        precision.initialize(repeating: -1)
        let recall = UnsafeMutableBufferPointer<Double>.allocate(capacity: T * K * A * M)
        recall.initialize(repeating: -1)
        defer { precision.deallocate(); recall.deallocate() }

        let input = CategoryInput(
            gtOrder: gtOrder.order, gtCategoryStart: gtOrder.categoryStart, gtImage: gtImage,
            dtOrder: dtOrder.order, dtCategoryStart: dtOrder.categoryStart, dtImage: detImage,
            gtBox: gtBox, gtArea: gtArea, gtCrowd: gtCrowd, gtIdNonzero: gtIdNonzero,
            dtBox: dtBox, dtScore: dtScore, K: K)
        let workers = max(1, min(concurrency, K))
        if workers == 1 {
            for k in 0..<K { Self.evaluateCategory(k, input, precision: precision, recall: recall) }
        } else {
            // Categories differ in size: hand them out one by one, biggest first.
            var sizes = [Int](repeating: 0, count: K)
            for k in 0..<K {
                let nd: Int = dtOrder.categoryStart[k + 1] - dtOrder.categoryStart[k]
                let ng: Int = gtOrder.categoryStart[k + 1] - gtOrder.categoryStart[k]
                sizes[k] = nd + ng
            }
            let schedule: [Int] = (0..<K).sorted { (a: Int, b: Int) -> Bool in
                sizes[a] > sizes[b] || (sizes[a] == sizes[b] && a < b)
            }
            let next = WorkCounter()
            let output = OutputBuffers(precision: precision, recall: recall)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let j = next.take()
                    if j >= K { break }
                    // Each category writes only its own k entries of the shared arrays.
                    Self.evaluateCategory(schedule[j], input, precision: output.precision, recall: output.recall)
                }
            }
        }
        return COCOMetrics(precision: Array(precision), recall: Array(recall),
                           sortedCategoryIds: sortedCategoryIds, categories: gt.categories,
                           numImages: I, numDetections: detections.count, numAnnotations: anns.count)
    }

    // MARK: - Grouping

    /// A stable two-pass counting sort: indices ordered by (category, image, input order), and
    /// where each category's run starts.
    static func groupOrder(image: [Int32], category: [Int32], images: Int, categories: Int)
        -> (order: [Int32], categoryStart: [Int]) {
        let n = image.count
        var byImage = [Int32](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: images + 1)
        for i in image { counts[Int(i) + 1] += 1 }
        for i in 0..<images { counts[i + 1] += counts[i] }
        for j in 0..<n {
            let b = Int(image[j])
            byImage[counts[b]] = Int32(j)
            counts[b] += 1
        }
        var order = [Int32](repeating: 0, count: n)
        var start = [Int](repeating: 0, count: categories + 1)
        for k in category { start[Int(k) + 1] += 1 }
        for k in 0..<categories { start[k + 1] += start[k] }
        var fill = start
        for j in byImage {
            let b = Int(category[Int(j)])
            order[fill[b]] = j
            fill[b] += 1
        }
        return (order, start)
    }

    struct CategoryInput: @unchecked Sendable {
        let gtOrder: [Int32], gtCategoryStart: [Int], gtImage: [Int32]
        let dtOrder: [Int32], dtCategoryStart: [Int], dtImage: [Int32]
        let gtBox: [Double], gtArea: [Double], gtCrowd: [Bool], gtIdNonzero: [Bool]
        let dtBox: [Double], dtScore: [Double]
        let K: Int
    }

    struct OutputBuffers: @unchecked Sendable {
        let precision: UnsafeMutableBufferPointer<Double>
        let recall: UnsafeMutableBufferPointer<Double>
    }

    final class WorkCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func take() -> Int {
            lock.lock(); defer { lock.unlock() }
            let v = value
            value += 1
            return v
        }
    }

    // MARK: - One category: evaluateImg for every image and area range, then accumulate

    static func evaluateCategory(_ k: Int, _ input: CategoryInput,
                                 precision: UnsafeMutableBufferPointer<Double>,
                                 recall: UnsafeMutableBufferPointer<Double>) {
        let gtLo = input.gtCategoryStart[k], gtHi = input.gtCategoryStart[k + 1]
        let dtLo = input.dtCategoryStart[k], dtHi = input.dtCategoryStart[k + 1]
        if gtLo == gtHi && dtLo == dtHi { return }  // every image is None: precision stays -1
        let slots = CategorySlots(input, gt: gtLo..<gtHi, dt: dtLo..<dtHi)
        let (status, npig) = match(slots, input)
        accumulate(k, K: input.K, slots: slots, status: status, npig: npig, precision: precision, recall: recall)
    }

    /// One cell per image with ground truth or detections of the category.
    struct Cell { var gtStart: Int32; var gtCount: Int32; var slotStart: Int32; var slotCount: Int32 }

    /// The detections of one category as evaluateImg and accumulate see them: per cell, sorted by score (stable)
    /// and cut at maxDet ("slots", in (image, rank) order), and their place in the category-wide score order.
    struct CategorySlots {
        var cells: [Cell] = []
        /// slot → detection index, and rank inside its (image, category)
        var slotDet: [Int32] = []
        var slotRank: [Int32] = []
        /// the largest ground-truth count of a cell
        var maxG = 0
        /// pos[slot] = place in accumulate's order; rankSorted[place] = that slot's rank in its image
        var pos: [Int32] = []
        var rankSorted: [Int32] = []
        var count: Int { slotDet.count }

        init(_ input: CategoryInput, gt: Range<Int>, dt: Range<Int>) {
            let maxDet = COCOEvalParams.maxDets[COCOEvalParams.M - 1]
            let gtLo = gt.lowerBound, gtHi = gt.upperBound, dtLo = dt.lowerBound, dtHi = dt.upperBound
            // Pass 1: cells (images with ground truth or detections of this category) and their
            // detections sorted by score (stable), cut at maxDet. Slots are in (image, rank) order.
            slotDet.reserveCapacity(min(dtHi - dtLo, 1 << 20))
            slotRank.reserveCapacity(min(dtHi - dtLo, 1 << 20))
            var cellDets: [Int32] = []
            var g = gtLo, d = dtLo
            input.dtScore.withUnsafeBufferPointer { score in
                while g < gtHi || d < dtHi {
                    let gi = g < gtHi ? input.gtImage[Int(input.gtOrder[g])] : Int32.max
                    let di = d < dtHi ? input.dtImage[Int(input.dtOrder[d])] : Int32.max
                    let image = min(gi, di)
                    let g0 = g
                    while g < gtHi && input.gtImage[Int(input.gtOrder[g])] == image { g += 1 }
                    cellDets.removeAll(keepingCapacity: true)
                    while d < dtHi && input.dtImage[Int(input.dtOrder[d])] == image {
                        cellDets.append(input.dtOrder[d])
                        d += 1
                    }
                    // Stable by score, highest first (indices ascend within the run, so a tie keeps
                    // file order).
                    cellDets.sort { a, b in
                        let sa = score[Int(a)], sb = score[Int(b)]
                        return sa > sb || (sa == sb && a < b)
                    }
                    let n = min(cellDets.count, maxDet)
                    cells.append(Cell(gtStart: Int32(g0), gtCount: Int32(g - g0),
                                      slotStart: Int32(slotDet.count), slotCount: Int32(n)))
                    maxG = max(maxG, g - g0)
                    for r in 0..<n {
                        slotDet.append(cellDets[r])
                        slotRank.append(Int32(r))
                    }
                }
            }
            let S = slotDet.count

            // All slots of the category by score, ties in (image, rank) order: accumulate's stable
            // sort of the concatenated per-image lists. pos[slot] = place in that order.
            var sortedSlots = [Int32](0..<Int32(S))
            input.dtScore.withUnsafeBufferPointer { score in
                slotDet.withUnsafeBufferPointer { sd in
                    sortedSlots.sort { a, b in
                        let sa = score[Int(sd[Int(a)])], sb = score[Int(sd[Int(b)])]
                        return sa > sb || (sa == sb && a < b)
                    }
                }
            }
            pos = [Int32](repeating: 0, count: S)
            rankSorted = [Int32](repeating: 0, count: S)
            for (p, s) in sortedSlots.enumerated() {
                pos[Int(s)] = Int32(p)
                rankSorted[p] = slotRank[Int(s)]
            }
        }
    }

    /// Pass 2: IoU and matching, as evaluateImg. status[(a*T + t)*S + pos] = 0 false positive, 1 true positive,
    /// 2 ignored; npig[a] = ground truth not ignored at area range a.
    static func match(_ slots: CategorySlots, _ input: CategoryInput) -> (status: [UInt8], npig: [Int]) {
        let T = COCOEvalParams.T, A = COCOEvalParams.A
        let maxDet = COCOEvalParams.maxDets[COCOEvalParams.M - 1]
        let iouThr = COCOEvalParams.iouThresholds.map { min($0, 1 - 1e-10) }
        let ranges = COCOEvalParams.areaRanges
        let S = slots.count, maxG = slots.maxG
        let cells = slots.cells, slotDet = slots.slotDet, pos = slots.pos
        var status = [UInt8](repeating: 2, count: A * T * S)
        var npig = [Int](repeating: 0, count: A)
        let ious = UnsafeMutablePointer<Double>.allocate(capacity: max(1, maxDet * maxG))
        let perm = UnsafeMutablePointer<Int>.allocate(capacity: max(1, maxG))
        let gIg = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, maxG))
        let gCrowd = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, maxG))
        let gIdNonzero = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, maxG))
        let gMatched = UnsafeMutablePointer<Bool>.allocate(capacity: max(1, maxG))
        defer {
            ious.deallocate(); perm.deallocate(); gIg.deallocate()
            gCrowd.deallocate(); gIdNonzero.deallocate(); gMatched.deallocate()
        }
        input.gtBox.withUnsafeBufferPointer { gtBox in
        input.dtBox.withUnsafeBufferPointer { dtBox in
        input.gtArea.withUnsafeBufferPointer { gtArea in
        status.withUnsafeMutableBufferPointer { status in
            for cell in cells {
                let G = Int(cell.gtCount), D = Int(cell.slotCount)
                let gtBase = Int(cell.gtStart), slotBase = Int(cell.slotStart)
                cellIoUs(cell, input, slotDet: slotDet, gtBox: gtBox, dtBox: dtBox, into: ious)
                for a in 0..<A {
                    let lo = ranges[a].lo, hi = ranges[a].hi
                    // Ground truth with the ignored ones last (stable).
                    var p = 0
                    for pass in 0..<2 {
                        for j in 0..<G {
                            let gIndex = Int(input.gtOrder[gtBase + j])
                            let area = gtArea[gIndex]
                            let ignored = input.gtCrowd[gIndex] || area < lo || area > hi
                            if ignored == (pass == 1) {
                                perm[p] = j
                                gIg[p] = ignored
                                gCrowd[p] = input.gtCrowd[gIndex]
                                gIdNonzero[p] = input.gtIdNonzero[gIndex]
                                p += 1
                            }
                        }
                        if pass == 0 { npig[a] += p }
                    }
                    for t in 0..<T {
                        let thr = iouThr[t]
                        for j in 0..<G { gMatched[j] = false }
                        let row = (a * T + t) * S
                        for i in 0..<D {
                            var best = thr
                            var m = -1
                            if G > 0 {
                                let iouRow = ious + i * G
                                for q in 0..<G {
                                    if gMatched[q] && !gCrowd[q] { continue }
                                    if m > -1 && !gIg[m] && gIg[q] { break }
                                    let v = iouRow[perm[q]]
                                    if v < best { continue }
                                    best = v
                                    m = q
                                }
                            }
                            var ignored = false
                            var unmatched = true
                            if m > -1 {
                                gMatched[m] = true
                                ignored = gIg[m]
                                unmatched = !gIdNonzero[m]
                            }
                            if !ignored && unmatched {
                                let dIndex = Int(slotDet[slotBase + i])
                                let area = dtBox[4 * dIndex + 2] * dtBox[4 * dIndex + 3]
                                if area < lo || area > hi { ignored = true }
                            }
                            status[row + Int(pos[slotBase + i])] = ignored ? 2 : (unmatched ? 0 : 1)
                        }
                    }
                }
            }
        }
        }
        }
        }
        return (status, npig)
    }

    /// IoU (pycocotools bbIou) of a cell's detections (rows) and ground truth (columns, in file order): D × G
    /// values into `ious`; a crowd box's union is the detection's area.
    static func cellIoUs(_ cell: Cell, _ input: CategoryInput, slotDet: [Int32], gtBox: UnsafeBufferPointer<Double>,
                         dtBox: UnsafeBufferPointer<Double>, into ious: UnsafeMutablePointer<Double>) {
        let G = Int(cell.gtCount), D = Int(cell.slotCount)
        let gtBase = Int(cell.gtStart), slotBase = Int(cell.slotStart)
        if G > 0 && D > 0 {
            for j in 0..<G {
                let gIndex = Int(input.gtOrder[gtBase + j])
                let gx = gtBox[4 * gIndex], gy = gtBox[4 * gIndex + 1]
                let gw = gtBox[4 * gIndex + 2], gh = gtBox[4 * gIndex + 3]
                let ga = gw * gh
                let crowd = input.gtCrowd[gIndex]
                for i in 0..<D {
                    let dIndex = Int(slotDet[slotBase + i])
                    let dx = dtBox[4 * dIndex], dy = dtBox[4 * dIndex + 1]
                    let dw = dtBox[4 * dIndex + 2], dh = dtBox[4 * dIndex + 3]
                    let da = dw * dh
                    var o = 0.0
                    let w = Swift.min(dw + dx, gw + gx) - Swift.max(dx, gx)
                    if w > 0 {
                        let h = Swift.min(dh + dy, gh + gy) - Swift.max(dy, gy)
                        if h > 0 {
                            let inter = w * h
                            let u = crowd ? da : da + ga - inter
                            o = inter / u
                        }
                    }
                    ious[i * G + j] = o
                }
            }
        }
    }

    /// Accumulate: precision at the 101 recall points and recall, per IoU threshold, area range and maxDets.
    static func accumulate(_ k: Int, K: Int, slots: CategorySlots, status: [UInt8], npig: [Int],
                           precision: UnsafeMutableBufferPointer<Double>, recall: UnsafeMutableBufferPointer<Double>) {
        let T = COCOEvalParams.T, R = COCOEvalParams.R, A = COCOEvalParams.A, M = COCOEvalParams.M
        let recThr = COCOEvalParams.recallThresholds
        let S = slots.count, rankSorted = slots.rankSorted
        let tps = UnsafeMutablePointer<Int>.allocate(capacity: max(1, S))
        let pr = UnsafeMutablePointer<Double>.allocate(capacity: max(1, S))
        defer { tps.deallocate(); pr.deallocate() }
        let eps = 2.220446049250313e-16  // np.spacing(1)
        status.withUnsafeBufferPointer { status in
            for a in 0..<A {
                let np = npig[a]
                if np == 0 { continue }
                let npD = Double(np)
                for (mi, md) in COCOEvalParams.maxDets.enumerated() {
                    let limit = Int32(md)
                    for t in 0..<T {
                        let row = (a * T + t) * S
                        var tp = 0, fp = 0, n = 0
                        for j in 0..<S where rankSorted[j] < limit {
                            let st = status[row + j]
                            if st == 2 { continue }
                            if st == 1 { tp += 1 } else { fp += 1 }
                            tps[n] = tp
                            pr[n] = Double(tp) / (Double(fp) + Double(tp) + eps)
                            n += 1
                        }
                        recall[((t * K + k) * A + a) * M + mi] = Double(tp) / npD
                        if n > 1 {
                            for j in stride(from: n - 1, to: 0, by: -1) where pr[j] > pr[j - 1] {
                                pr[j - 1] = pr[j]
                            }
                        }
                        var j = 0
                        for (r, thr) in recThr.enumerated() {
                            while j < n && Double(tps[j]) / npD < thr { j += 1 }
                            precision[(((t * R + r) * K + k) * A + a) * M + mi] = j < n ? pr[j] : 0
                        }
                    }
                }
            }
        }
    }
}
