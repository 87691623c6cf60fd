import GHMLosses
import Torch
import TorchNN

/// mmdet's `RetinaHead`: per FPN level (shared weights), a classification branch and a regression branch of
/// `stacked_convs` 3×3 convs with bias and ReLU, then `retina_cls` (A·C channels, channel a·C + c) and `retina_reg`
/// (A·4 channels). The losses are child modules declared first, so their buffers come first in the state dict, as
/// in mmdet (`bbox_head.loss_cls.edges`, `bbox_head.loss_cls.acc_sum`, …).
public final class RetinaHead: Module {
    public let lossCls: ClassificationLoss
    public let lossBbox: RegressionLoss
    let clsConvs: [ConvModule]
    let regConvs: [ConvModule]
    let retinaCls: Conv2d
    let retinaReg: Conv2d
    public let numClasses: Int
    public let anchorGenerator: AnchorGenerator
    public let bboxCoder: DeltaXYWHBBoxCoder

    public init(_ cfg: RetinaHeadConfig) throws {
        switch cfg.lossCls {
        case let .ghmc(bins, momentum, lossWeight, reduction, implementation):
            lossCls = try GHMC(bins: bins, momentum: momentum, lossWeight: lossWeight, reduction: reduction,
                               implementation: implementation)
        case let .focal(gamma, alpha, lossWeight, reduction):
            lossCls = FocalLoss(gamma: gamma, alpha: alpha, lossWeight: lossWeight, reduction: reduction)
        }
        switch cfg.lossBbox {
        case let .ghmr(mu, bins, momentum, lossWeight, reduction, implementation):
            lossBbox = try GHMR(mu: mu, bins: bins, momentum: momentum, lossWeight: lossWeight, reduction: reduction,
                                implementation: implementation)
        case let .l1(lossWeight, reduction):
            lossBbox = L1Loss(lossWeight: lossWeight, reduction: reduction)
        }
        anchorGenerator = try AnchorGenerator(cfg.anchorGenerator)
        bboxCoder = DeltaXYWHBBoxCoder(cfg.bboxCoder)
        numClasses = cfg.numClasses
        let a = anchorGenerator.numBaseAnchors
        var cls: [ConvModule] = [], reg: [ConvModule] = []
        for i in 0..<cfg.stackedConvs {
            let inCh = i == 0 ? cfg.inChannels : cfg.featChannels
            cls.append(try ConvModule(try Conv2d(inCh, cfg.featChannels, kernelSize: 3, padding: 1), relu: true))
            reg.append(try ConvModule(try Conv2d(inCh, cfg.featChannels, kernelSize: 3, padding: 1), relu: true))
        }
        clsConvs = cls
        regConvs = reg
        retinaCls = try Conv2d(cfg.featChannels, a * cfg.numClasses, kernelSize: 3, padding: 1)
        retinaReg = try Conv2d(cfg.featChannels, a * 4, kernelSize: 3, padding: 1)
        super.init()
    }

    /// mmdet's init_cfg: Normal(0, 0.01) on every conv with bias 0 (cls convs, reg convs, retina_cls, retina_reg), then
    /// the override of `retina_cls`: Normal(0, 0.01) drawn again and bias = bias_init_with_prob(0.01).
    func initWeights() throws(TorchError) {
        for (_, m) in namedModules() {
            guard let conv = m as? Conv2d else { continue }
            try Init.normal(conv.weight, std: 0.01)
            if let b = conv.bias { try Init.constant(b, 0) }
        }
        try Init.normal(retinaCls.weight, std: 0.01)
        try Init.constant(retinaCls.bias!, Init.biasWithProbability(0.01))
    }

    /// Raw outputs per level: classification logits (N, A·C, H, W) and box deltas (N, A·4, H, W).
    public func callAsFunction(_ feats: [Tensor]) throws(TorchError) -> (clsScores: [Tensor], bboxPreds: [Tensor]) {
        var scores: [Tensor] = [], preds: [Tensor] = []
        for x in feats {
            var c = x, r = x
            for conv in clsConvs { c = try conv(c) }
            for conv in regConvs { r = try conv(r) }
            scores.append(try retinaCls(c))
            preds.append(try retinaReg(r))
        }
        return (scores, preds)
    }
}
