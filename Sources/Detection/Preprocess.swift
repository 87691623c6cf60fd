import Foundation
import Imaging
import Torch

/// The single-scale pre-processing of an mmdet pipeline, as parameters: keep-ratio (or exact) resize to `img_scale`,
/// optional horizontal flip, normalisation, zero padding to a multiple of `size_divisor`.
public struct ImageTransform: Sendable {
    /// mmdet's `img_scale` (e.g. (1333, 800)): the long and short edge limits with `keep_ratio`, else (w, h).
    public var imgScale: (Int, Int)
    public var keepRatio: Bool
    /// Probability of a horizontal flip (training); 0 at test time.
    public var flipRatio: Double
    public var mean: [Double]
    public var std: [Double]
    public var toRGB: Bool
    public var sizeDivisor: Int

    public init(imgScale: (Int, Int) = (1333, 800), keepRatio: Bool = true, flipRatio: Double = 0,
                normalize: NormalizeConfig = NormalizeConfig(), sizeDivisor: Int = 32) {
        self.imgScale = imgScale
        self.keepRatio = keepRatio
        self.flipRatio = flipRatio
        mean = normalize.mean
        std = normalize.std
        toRGB = normalize.toRGB
        self.sizeDivisor = sizeDivisor
    }

    /// Reads the parameters from an mmdet pipeline (train or test form); `path` names it in errors.
    public init(pipeline: [PipelineStep], path: String) throws {
        var steps = pipeline
        var scale: [Int]?
        if let i = steps.firstIndex(where: { if case .multiScaleFlipAug = $0 { return true }; return false }),
           case let .multiScaleFlipAug(imgScale, flip, transforms) = steps[i] {
            guard !flip else { throw ConfigError(path: "\(path).\(i).flip", message: "test-time flip is not supported") }
            scale = imgScale
            steps.replaceSubrange(i...i, with: transforms)
        }
        var keep = true, flipRatio = 0.0, norm: NormalizeConfig?, divisor = 32
        for step in steps {
            switch step {
            case let .resize(s, k):
                if let s { scale = s }
                keep = k
            case let .randomFlip(r): flipRatio = r ?? 0
            case let .normalize(n): norm = n
            case let .pad(d): divisor = d
            default: break
            }
        }
        guard let scale, scale.count == 2, scale.allSatisfy({ $0 > 0 }) else {
            throw ConfigError(path: path, message: "needs a Resize with img_scale (w, h)")
        }
        guard let norm else { throw ConfigError(path: path, message: "needs a Normalize step") }
        self.init(imgScale: (scale[0], scale[1]), keepRatio: keep, flipRatio: flipRatio, normalize: norm,
                  sizeDivisor: divisor)
    }

    /// mmcv's `rescale_size` / `imresize` target for an image of (w, h): `int(x·s + 0.5)` with
    /// s = min(long/max(h, w), short/min(h, w)) under keep_ratio, else img_scale itself.
    public func resizedSize(width w: Int, height h: Int) -> (w: Int, h: Int) {
        guard keepRatio else { return (imgScale.0, imgScale.1) }
        let long = Double(Swift.max(imgScale.0, imgScale.1)), short = Double(Swift.min(imgScale.0, imgScale.1))
        let s = Swift.min(long / Double(Swift.max(h, w)), short / Double(Swift.min(h, w)))
        return (Int(Double(w) * s + 0.5), Int(Double(h) * s + 0.5))
    }

    func padded(_ n: Int) -> Int { (n + sizeDivisor - 1) / sizeDivisor * sizeDivisor }
}

/// One pre-processed image: the normalised, padded CHW tensor and its meta.
public struct PreparedImage {
    public var tensor: Tensor
    public var meta: ImageMeta
    /// The resized BGR image before normalisation (uint8, after the flip when flipped).
    public var resized: Image
}

extension ImageTransform {
    /// Loads an image file like mmcv (`imfrombytes` = `cv2.imdecode(..., IMREAD_COLOR)`, BGR).
    public static func loadImage(path: String) throws -> Image {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ImageError(op: "read", message: "cannot read '\(path)': \(error.localizedDescription)")
        }
        do {
            return try Image.decode(data)
        } catch {
            throw ImageError(op: "decode", message: "'\(path)' is not a readable image (\(error.message))")
        }
    }

    /// Resize (INTER_LINEAR on uint8), optional flip, BGR→RGB, (x − mean)·(1/std) rounded like mmcv's
    /// `imnormalize_`, zero padding to the size divisor.
    public func prepare(_ image: Image, filename: String, flip: Bool = false, device: Device = .cpu) throws -> PreparedImage {
        let (h, w, c) = (image.height, image.width, image.channels)
        guard c == 3, h > 0, w > 0 else {
            throw ImageError(op: "prepare", message: "'\(filename)': expected a colour image, got \(h)x\(w)x\(c)")
        }
        let size = resizedSize(width: w, height: h)
        var resized = try image.resized(width: size.w, height: size.h, interpolation: .linear)
        if flip { resized = try resized.flipped() }
        let tensor = try normalizeAndPad(resized, device: device)
        let scale: [Float] = [Float(Double(size.w) / Double(w)), Float(Double(size.h) / Double(h))]
        let meta = ImageMeta(filename: filename, oriShape: (h, w, c), imgShape: (size.h, size.w, 3),
                             padShape: (padded(size.h), padded(size.w), 3),
                             scaleFactor: [scale[0], scale[1], scale[0], scale[1]], flip: flip)
        return PreparedImage(tensor: tensor, meta: meta, resized: resized)
    }

    /// The normalisation and padding of an already resized BGR image → (3, H', W') float32.
    public func normalizeAndPad(_ resized: Image, device: Device = .cpu) throws -> Tensor {
        let h = resized.height, w = resized.width
        var x = try Tensor(resized.bytes(), shape: [h, w, 3]).to(device, dtype: .float32)
        if toRGB { x = try x.flip([2]) }
        // mmcv stores mean/std as float32; cv2.subtract works in float32, cv2.multiply by 1/std (float64) rounds
        // the double product to float32: do exactly that.
        let mean = try Tensor(self.mean.map { Float($0) }).to(device)
        let stdinv = try Tensor(self.std.map { 1.0 / Double(Float($0)) }).to(device)
        x = try ((x - mean).to(.float64) * stdinv).to(.float32)
        let chw = try x.permute([2, 0, 1])
        return try chw.pad([0, padded(w) - w, 0, padded(h) - h], value: 0).contiguous()
    }

    /// mmcv's collate: pads every image bottom/right with zeros to the largest (H, W) and stacks them.
    public static func collate(_ images: [Tensor]) throws(TorchError) -> Tensor {
        var maxH = 0, maxW = 0
        for t in images { maxH = Swift.max(maxH, try t.size(1)); maxW = Swift.max(maxW, try t.size(2)) }
        var padded: [Tensor] = []
        for t in images {
            let h = try t.size(1), w = try t.size(2)
            padded.append(try h == maxH && w == maxW ? t : t.pad([0, maxW - w, 0, maxH - h]))
        }
        return try Tensor.stack(padded, dim: 0)
    }
}
