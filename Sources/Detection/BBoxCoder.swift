import Foundation
import Torch

/// mmdet's `DeltaXYWHBBoxCoder` with `clip_border=True`, `add_ctr_clamp=False`: boxes ↔ (dx, dy, dw, dh) normalised by
/// `target_means`/`target_stds`; decoding clamps dw, dh to ±|log(16/1000)| and clips to the image shape.
public struct DeltaXYWHBBoxCoder {
    public let means: [Double]
    public let stds: [Double]
    public static let maxRatio = Swift.abs(Foundation.log(16.0 / 1000.0))

    public init(_ cfg: BBoxCoderConfig) {
        means = cfg.targetMeans
        stds = cfg.targetStds
    }

    /// `bbox2delta(proposals, gt)`: both (…, 4).
    public func encode(_ proposals: Tensor, _ gt: Tensor) throws(TorchError) -> Tensor {
        let p = try proposals.to(.float32), g = try gt.to(.float32)
        let (px1, py1, px2, py2) = try columns(p)
        let (gx1, gy1, gx2, gy2) = try columns(g)
        let px = try (px1 + px2) * 0.5, py = try (py1 + py2) * 0.5
        let pw = try px2 - px1, ph = try py2 - py1
        let gx = try (gx1 + gx2) * 0.5, gy = try (gy1 + gy2) * 0.5
        let gw = try gx2 - gx1, gh = try gy2 - gy1
        let dx = try (gx - px) / pw, dy = try (gy - py) / ph
        let dw = try (gw / pw).log(), dh = try (gh / ph).log()
        let deltas = try Tensor.stack([dx, dy, dw, dh], dim: -1)
        let m = try Tensor(means.map { Float($0) }, shape: [1, 4]).to(deltas.device)
        let s = try Tensor(stds.map { Float($0) }, shape: [1, 4]).to(deltas.device)
        return try deltas.sub_(m).div_(s)
    }

    /// `delta2bbox(rois, deltas, max_shape)`: rois and deltas (…, 4) (the last axis 4·k); `maxShape` is one (h, w)
    /// for every row, or one per batch element when the tensors are (B, N, 4).
    public func decode(_ rois: Tensor, _ deltas: Tensor, maxShape: [(h: Int, w: Int)]?) throws(TorchError) -> Tensor {
        let m = try Tensor(means.map { Float($0) }, shape: [1, 4]).to(deltas.device)
        let s = try Tensor(stds.map { Float($0) }, shape: [1, 4]).to(deltas.device)
        let d = try deltas * s + m
        let last = d.rank - 1
        let dx = try d.slice(dim: last, start: 0, step: 4), dy = try d.slice(dim: last, start: 1, step: 4)
        var dw = try d.slice(dim: last, start: 2, step: 4), dh = try d.slice(dim: last, start: 3, step: 4)
        let (x1, y1, x2, y2) = try columns(rois)
        let px = try ((x1 + x2) * 0.5).unsqueeze(-1).expand(dx.shape)
        let py = try ((y1 + y2) * 0.5).unsqueeze(-1).expand(dy.shape)
        let pw = try (x2 - x1).unsqueeze(-1).expand(dw.shape)
        let ph = try (y2 - y1).unsqueeze(-1).expand(dh.shape)
        let dxWidth = try pw * dx, dyHeight = try ph * dy
        dw = try dw.clamp(min: -Self.maxRatio, max: Self.maxRatio)
        dh = try dh.clamp(min: -Self.maxRatio, max: Self.maxRatio)
        let gw = try pw * dw.exp(), gh = try ph * dh.exp()
        let gx = try px + dxWidth, gy = try py + dyHeight
        let bx1 = try gx - gw * 0.5, by1 = try gy - gh * 0.5, bx2 = try gx + gw * 0.5, by2 = try gy + gh * 0.5
        var boxes = try Tensor.stack([bx1, by1, bx2, by2], dim: -1).view(deltas.shape)
        guard let maxShape else { return boxes }
        // max_xy = [w, h, w, h] (per image when batched); clip with torch.where like mmdet
        let k = try deltas.size(-1) / 2
        var rows: [Float] = []
        for s in maxShape { for _ in 0..<k { rows += [Float(s.w), Float(s.h)] } }
        var maxXY = try Tensor(rows, shape: [maxShape.count, 2 * k]).to(deltas.device)
        if deltas.rank == 3 { maxXY = try maxXY.unsqueeze(1) }
        let zero = try Tensor(scalar: Float(0)).to(deltas.device)
        boxes = try Tensor.where(boxes .< zero, zero, boxes)
        boxes = try Tensor.where(boxes .> maxXY, maxXY, boxes)
        return boxes
    }

    private func columns(_ t: Tensor) throws(TorchError) -> (Tensor, Tensor, Tensor, Tensor) {
        let last = t.rank - 1
        return (try t.select(dim: last, index: 0), try t.select(dim: last, index: 1),
                try t.select(dim: last, index: 2), try t.select(dim: last, index: 3))
    }
}
