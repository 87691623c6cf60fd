import Torch
import TorchNN

/// mmdet's `FPN` (no norm, no activation): 1×1 lateral convs on the backbone levels from `start_level`, top-down
/// nearest-neighbour upsampling to each lower level's size and addition, 3×3 output convs, then extra levels with
/// stride-2 3×3 convs: the first from C5 ('on_input'), the lateral ('on_lateral') or the last output ('on_output'),
/// the following from the previous extra output (ReLU before them only with `relu_before_extra_convs`).
public final class FPN: Module {
    let lateralConvs: [ConvModule]
    let fpnConvs: [ConvModule]
    public let startLevel: Int
    public let numOuts: Int
    public let addExtraConvs: String
    public let reluBeforeExtraConvs: Bool

    public init(_ cfg: FPNConfig) throws {
        startLevel = cfg.startLevel
        numOuts = cfg.numOuts
        addExtraConvs = cfg.addExtraConvs
        reluBeforeExtraConvs = cfg.reluBeforeExtraConvs
        let used = cfg.inChannels.count - cfg.startLevel
        guard used > 0, cfg.numOuts >= used else {
            throw ConfigError(path: "model.neck", message: "num_outs \(cfg.numOuts) < used backbone levels \(used)")
        }
        var laterals: [ConvModule] = [], outputs: [ConvModule] = []
        for i in cfg.startLevel..<cfg.inChannels.count {
            laterals.append(try ConvModule(try Conv2d(cfg.inChannels[i], cfg.outChannels, kernelSize: 1), relu: false))
            outputs.append(try ConvModule(try Conv2d(cfg.outChannels, cfg.outChannels, kernelSize: 3, padding: 1), relu: false))
        }
        if cfg.addExtraConvs != "none" {
            for i in 0..<(cfg.numOuts - used) {
                let inCh = (i == 0 && cfg.addExtraConvs == "on_input") ? cfg.inChannels.last! : cfg.outChannels
                outputs.append(try ConvModule(try Conv2d(inCh, cfg.outChannels, kernelSize: 3, stride: 2, padding: 1), relu: false))
            }
        }
        lateralConvs = laterals
        fpnConvs = outputs
        super.init()
    }

    /// mmdet's `init_cfg`: Xavier-uniform on every conv (laterals, then outputs), bias 0.
    func initWeights() throws(TorchError) {
        for (_, m) in namedModules() {
            guard let conv = m as? Conv2d else { continue }
            try Init.xavierUniform(conv.weight)
            if let b = conv.bias { try Init.constant(b, 0) }
        }
    }

    /// `inputs`: the backbone outputs (C2…C5). Returns P3…P7 (for start_level 1 and num_outs 5).
    public func callAsFunction(_ inputs: [Tensor]) throws(TorchError) -> [Tensor] {
        var laterals: [Tensor] = []
        for (i, conv) in lateralConvs.enumerated() { laterals.append(try conv(inputs[i + startLevel])) }
        for i in stride(from: laterals.count - 1, to: 0, by: -1) {
            let prev = laterals[i - 1].shape
            try laterals[i - 1].add_(Functional.upsampleNearest(laterals[i], height: prev[2], width: prev[3]))
        }
        var outs: [Tensor] = []
        for i in 0..<laterals.count { outs.append(try fpnConvs[i](laterals[i])) }
        guard numOuts > outs.count else { return outs }
        if addExtraConvs == "none" {
            // mmdet: extra levels by max-pooling (kernel 1, stride 2)
            while outs.count < numOuts { outs.append(try Functional.maxPool2d(outs.last!, kernel: 1, stride: 2)) }
            return outs
        }
        let used = laterals.count
        let source: Tensor
        switch addExtraConvs {
        case "on_input": source = inputs[inputs.count - 1]
        case "on_lateral": source = laterals.last!
        default: source = outs.last!
        }
        outs.append(try fpnConvs[used](source))
        for i in (used + 1)..<numOuts {
            let x = reluBeforeExtraConvs ? try outs.last!.relu() : outs.last!
            outs.append(try fpnConvs[i](x))
        }
        return outs
    }
}
