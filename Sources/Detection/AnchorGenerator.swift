import Foundation
import Torch

/// mmdet's `AnchorGenerator` (v2 conventions): per level, base anchors centred at (0, 0) with sizes
/// stride·w_ratio·scale (ratio-major: anchor a = 3·ratio + scale), shifted to (x·stride, y·stride) with x fastest,
/// no half-stride offset and no rounding. Anchors are cached per (feature size, device).
public final class AnchorGenerator {
    public let strides: [Int]
    public let ratios: [Double]
    public let scales: [Double]
    /// Base anchors per level, (A, 4) float32 on the CPU.
    public let baseAnchors: [Tensor]
    private var cache: [String: Tensor] = [:]
    private let lock = NSLock()

    public var numBaseAnchors: Int { ratios.count * scales.count }

    public init(_ cfg: AnchorGeneratorConfig) throws(TorchError) {
        strides = cfg.strides
        ratios = cfg.ratios
        // numpy: octave_scales (float64) * octave_base_scale, then torch.Tensor → float32
        scales = (0..<cfg.scalesPerOctave).map { Foundation.pow(2.0, Double($0) / Double(cfg.scalesPerOctave)) * cfg.octaveBaseScale }
        let s = try Tensor(scales.map { Float($0) })
        let r = try Tensor(ratios.map { Float($0) })
        var bases: [Tensor] = []
        for stride in cfg.strides {
            let hRatios = try r.sqrt()
            let wRatios = try 1 / hRatios
            let ws = try (wRatios.unsqueeze(1) * stride * s.unsqueeze(0)).view([-1])
            let hs = try (hRatios.unsqueeze(1) * stride * s.unsqueeze(0)).view([-1])
            let half = 0.5
            bases.append(try Tensor.stack([0.0 - ws * half, 0.0 - hs * half, 0.0 + ws * half, 0.0 + hs * half], dim: -1))
        }
        baseAnchors = bases
    }

    /// All anchors of one level for a feature map of (h, w): (h·w·A, 4), rows ordered (y, x, a).
    public func gridAnchors(level: Int, height: Int, width: Int, device: Device) throws(TorchError) -> Tensor {
        let key = "\(level):\(height)x\(width)@\(device)"
        lock.lock()
        defer { lock.unlock() }
        if let hit = cache[key] { return hit }
        let base = try baseAnchors[level].to(device)
        let shiftX = try Tensor.arange(0, width, device: device) * strides[level]
        let shiftY = try Tensor.arange(0, height, device: device) * strides[level]
        let (xx, yy) = try meshgrid(shiftX, shiftY)
        let shifts = try Tensor.stack([xx, yy, xx, yy], dim: -1).to(.float32)
        let all = try (base.unsqueeze(0) + shifts.unsqueeze(1)).view([-1, 4])
        cache[key] = all
        return all
    }

    /// Anchors of every level for the given feature sizes.
    public func gridAnchors(sizes: [(h: Int, w: Int)], device: Device) throws(TorchError) -> [Tensor] {
        var out: [Tensor] = []
        for (i, s) in sizes.enumerated() { out.append(try gridAnchors(level: i, height: s.h, width: s.w, device: device)) }
        return out
    }

    /// Per-level valid flags for an image whose own padded size is `padShape` (h, w) in a batch whose feature maps
    /// have `sizes`: a cell is valid when it lies inside ceil(pad/stride); its A anchors share the flag.
    public func validFlags(sizes: [(h: Int, w: Int)], padShape: (h: Int, w: Int), device: Device) throws(TorchError) -> [Tensor] {
        var out: [Tensor] = []
        for (i, s) in sizes.enumerated() {
            let stride = strides[i]
            let vh = Swift.min(Int((Double(padShape.h) / Double(stride)).rounded(.up)), s.h)
            let vw = Swift.min(Int((Double(padShape.w) / Double(stride)).rounded(.up)), s.w)
            let validX = try Tensor.arange(s.w, device: device) .< vw
            let validY = try Tensor.arange(s.h, device: device) .< vh
            let (xx, yy) = try meshgrid(validX, validY)
            let valid = try xx .& yy
            out.append(try valid.unsqueeze(1).expand([valid.size(0), numBaseAnchors]).contiguous().view([-1]))
        }
        return out
    }

    /// mmdet's `_meshgrid(x, y)` (row major): xx = x repeated per row, yy = y repeated per column.
    func meshgrid(_ x: Tensor, _ y: Tensor) throws(TorchError) -> (Tensor, Tensor) {
        let xx = try x.repeated([y.size(0)])
        let yy = try y.view([-1, 1]).repeated([1, x.size(0)]).view([-1])
        return (xx, yy)
    }
}
