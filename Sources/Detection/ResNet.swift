import Torch
import TorchNN

/// ResNet basic block (depth 18/34): 3×3 (stride s) → BN → ReLU → 3×3 → BN, plus the identity.
public final class BasicBlock: Module, Layer {
    public static let expansion = 1
    let conv1: Conv2d
    let bn1: BatchNorm2d
    let conv2: Conv2d
    let bn2: BatchNorm2d
    let downsample: Sequential?

    init(inplanes: Int, planes: Int, stride: Int, downsample: Sequential?) throws {
        conv1 = try Conv2d(inplanes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn1 = try BatchNorm2d(planes)
        conv2 = try Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false)
        bn2 = try BatchNorm2d(planes)
        self.downsample = downsample
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        let out = try bn2(conv2(bn1(conv1(x)).relu_()))
        let identity = try downsample.map { d throws(TorchError) in try d(x) } ?? x
        return try out.add_(identity).relu_()
    }
}

/// ResNet bottleneck, pytorch style (the stride is on the 3×3 conv): 1×1 → BN → ReLU → 3×3 (stride s) → BN → ReLU →
/// 1×1 (×4 channels) → BN, plus the identity (or the downsample of block 0), then ReLU. All convs bias-free.
public final class Bottleneck: Module, Layer {
    public static let expansion = 4
    let conv1: Conv2d
    let bn1: BatchNorm2d
    let conv2: Conv2d
    let bn2: BatchNorm2d
    let conv3: Conv2d
    let bn3: BatchNorm2d
    let downsample: Sequential?

    init(inplanes: Int, planes: Int, stride: Int, downsample: Sequential?) throws {
        conv1 = try Conv2d(inplanes, planes, kernelSize: 1, bias: false)
        bn1 = try BatchNorm2d(planes)
        conv2 = try Conv2d(planes, planes, kernelSize: 3, stride: stride, padding: 1, bias: false)
        bn2 = try BatchNorm2d(planes)
        conv3 = try Conv2d(planes, planes * Bottleneck.expansion, kernelSize: 1, bias: false)
        bn3 = try BatchNorm2d(planes * Bottleneck.expansion)
        self.downsample = downsample
        super.init()
    }

    /// ReLUs and the residual addition are in place, as mmdet's (`ReLU(inplace=True)`, `out += identity`).
    public func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor {
        var out = try bn1(conv1(x)).relu_()
        out = try bn2(conv2(out)).relu_()
        out = try bn3(conv3(out))
        let identity = try downsample.map { d throws(TorchError) in try d(x) } ?? x
        return try out.add_(identity).relu_()
    }
}

/// mmdet's `ResNet` (style 'pytorch'): stem conv1 7×7/2 → bn1 → ReLU → max-pool 3×3/2, then `layer1`…`layer4`
/// (Sequentials of blocks; the first block of each stage has a 1×1 conv + BN downsample when the shape changes).
/// `frozen_stages` = k freezes the stem and layers 1…k (no gradients, evaluation mode); `norm_eval` keeps every BN in
/// evaluation mode while training. Returns the stage outputs listed in `out_indices` (C2…C5 for 0…3).
public final class ResNet: Module {
    let conv1: Conv2d
    let bn1: BatchNorm2d
    let layer1: Sequential
    let layer2: Sequential
    let layer3: Sequential
    let layer4: Sequential
    public let outIndices: [Int]
    public let frozenStages: Int
    public let normEval: Bool
    /// Output channels of each stage (256, 512, 1024, 2048 for depth 50).
    public let stageChannels: [Int]

    public init(_ cfg: ResNetConfig) throws {
        let bottleneck = cfg.depth >= 50
        let blocks: [Int]
        switch cfg.depth {
        case 18: blocks = [2, 2, 2, 2]
        case 34: blocks = [3, 4, 6, 3]
        case 50: blocks = [3, 4, 6, 3]
        case 101: blocks = [3, 4, 23, 3]
        case 152: blocks = [3, 8, 36, 3]
        default: throw ConfigError(path: "model.backbone.depth", message: "invalid depth \(cfg.depth)")
        }
        guard cfg.numStages == 4 else { throw ConfigError(path: "model.backbone.num_stages", message: "only 4 stages are supported") }
        let expansion = bottleneck ? Bottleneck.expansion : BasicBlock.expansion
        conv1 = try Conv2d(3, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
        bn1 = try BatchNorm2d(64)
        var inplanes = 64
        var layers: [Sequential] = []
        for (i, count) in blocks.enumerated() {
            let planes = 64 << i
            let stride = i == 0 ? 1 : 2
            var list: [Module & Layer] = []
            for b in 0..<count {
                let s = b == 0 ? stride : 1
                var down: Sequential?
                if b == 0 && (s != 1 || inplanes != planes * expansion) {
                    down = Sequential([try Conv2d(inplanes, planes * expansion, kernelSize: 1, stride: s, bias: false),
                                       try BatchNorm2d(planes * expansion)])
                }
                list.append(bottleneck
                    ? try Bottleneck(inplanes: inplanes, planes: planes, stride: s, downsample: down)
                    : try BasicBlock(inplanes: inplanes, planes: planes, stride: s, downsample: down))
                inplanes = planes * expansion
            }
            layers.append(Sequential(list))
        }
        (layer1, layer2, layer3, layer4) = (layers[0], layers[1], layers[2], layers[3])
        outIndices = cfg.outIndices
        frozenStages = cfg.frozenStages
        normEval = cfg.normEval
        stageChannels = (0..<4).map { (64 << $0) * expansion }
        super.init()
        for (_, m) in namedModules() {
            guard let bn = m as? BatchNorm2d else { continue }
            bn.normEval = normEval
            if !cfg.normRequiresGrad { try bn.requiresGrad(false) }
        }
        for m in frozenModules() { try m.requiresGrad(false) }
    }

    /// The stem and the first `frozenStages` layers.
    func frozenModules() -> [Module] {
        guard frozenStages >= 0 else { return [] }
        return [conv1, bn1] + [layer1, layer2, layer3, layer4].prefix(frozenStages).map { $0 as Module }
    }

    /// mmdet's default init without a pretrained file (`init_cfg` None): kaiming-normal (fan_out) on every conv in
    /// module order, BN weight 1 / bias 0, and — `zero_init_residual`, mmdet's default — the last BN of every block
    /// (`norm3`, `norm2` of a basic block) with weight 0.
    func initWeights() throws(TorchError) {
        for (_, m) in namedModules() {
            if let conv = m as? Conv2d { try Init.kaimingNormalFanOut(conv.weight) }
            if let bn = m as? BatchNorm2d {
                try Init.constant(bn.weight, 1)
                try Init.constant(bn.bias, 0)
            }
        }
        for (_, m) in namedModules() {
            if let b = m as? Bottleneck { try Init.constant(b.bn3.weight, 0) }
            if let b = m as? BasicBlock { try Init.constant(b.bn2.weight, 0) }
        }
    }

    public override func train(_ on: Bool = true) {
        super.train(on)
        if on { for m in frozenModules() { m.train(false) } }
    }

    public func callAsFunction(_ x: Tensor) throws(TorchError) -> [Tensor] {
        var y = try bn1(conv1(x)).relu_()
        y = try Functional.maxPool2d(y, kernel: 3, stride: 2, padding: 1)
        var outs: [Tensor] = []
        for (i, layer) in [layer1, layer2, layer3, layer4].enumerated() {
            y = try layer(y)
            if outIndices.contains(i) { outs.append(y) }
        }
        return outs
    }
}

extension BasicBlock: ConvBNFusable {
    public func foldOwnConvBN() throws(TorchError) -> Int {
        [try ConvBNFusion.fold(conv1, bn1), try ConvBNFusion.fold(conv2, bn2)].filter { $0 }.count
    }
}

extension Bottleneck: ConvBNFusable {
    public func foldOwnConvBN() throws(TorchError) -> Int {
        [try ConvBNFusion.fold(conv1, bn1), try ConvBNFusion.fold(conv2, bn2), try ConvBNFusion.fold(conv3, bn3)].filter { $0 }.count
    }
}

extension ResNet: ConvBNFusable {
    /// The stem (conv1, bn1); the blocks fold their own.
    public func foldOwnConvBN() throws(TorchError) -> Int {
        try ConvBNFusion.fold(conv1, bn1) ? 1 : 0
    }
}
