import Imaging

extension COCOMetrics {
    /// The precision-recall plot of one category id (nil: all categories), area all, maxDets 100: the curves at
    /// IoU .50, .75 and the mean over .50:.95 against the 101 recall points, each labelled with its AP (the mean
    /// precision over the recall points); undefined points are not drawn.
    public func precisionRecallPlot(title: String, categoryId: Int?) -> LinePlot {
        let specs: [(String, [Int], LinePlot.Color)] = [
            ("IOU=.50", [0], LinePlot.blue), ("IOU=.75", [5], LinePlot.orange),
            ("IOU=.50:.95", Array(0..<COCOEvalParams.T), LinePlot.green),
        ]
        let series = specs.map { name, ts, color in
            let values = curve(ious: ts, categoryId: categoryId)
            let defined = values.filter { $0 > -1 }
            let ap = defined.isEmpty ? "N/A" : COCOMetrics.fixed3(NumpyMath.mean(defined))
            let points = zip(COCOEvalParams.recallThresholds, values).map { (x: $0, y: $1 > -1 ? $1 : Double.nan) }
            return LinePlot.Series(label: "\(name) AP=\(ap)", points: points, color: color)
        }
        return LinePlot(title: title, x: LinePlot.Axis(label: "RECALL", min: 0, max: 1),
                        y: LinePlot.Axis(label: "PRECISION", min: 0, max: 1), series: series)
    }
}
