import Torch

/// `torch.optim.SGD.state_dict()` as mmcv saves it under `optimizer`:
/// `{'state': {i: {'momentum_buffer': tensor}}, 'param_groups': [{'lr', 'momentum', 'dampening', 'weight_decay',
/// 'nesterov', 'maximize', 'foreach', 'differentiable', 'fused', …, 'params': [0, …, n-1]}]}`.
public struct SGDState {
    public var lr: Double
    public var momentum: Double
    public var dampening: Double
    public var weightDecay: Double
    public var nesterov: Bool
    public var maximize: Bool
    public var foreach: Bool?
    public var differentiable: Bool
    public var fused: Bool?
    /// Other param-group entries (e.g. mmcv's `initial_lr`), kept in order, before `params`.
    public var extra: [(key: String, value: CheckpointValue)]
    /// One entry per parameter index (`params` = 0..<count); nil where no momentum buffer exists yet.
    public var momentumBuffers: [Tensor?]

    public init(lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false,
                maximize: Bool = false, foreach: Bool? = nil, differentiable: Bool = false, fused: Bool? = nil,
                extra: [(key: String, value: CheckpointValue)] = [], momentumBuffers: [Tensor?]) {
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.maximize = maximize
        self.foreach = foreach
        self.differentiable = differentiable
        self.fused = fused
        self.extra = extra
        self.momentumBuffers = momentumBuffers
    }

    /// The value tree `torch.optim.SGD.load_state_dict` accepts.
    public var value: CheckpointValue {
        var state = CheckpointDict()
        for (i, b) in momentumBuffers.enumerated() {
            if let b { state[i] = .dict(CheckpointDict([("momentum_buffer", .tensor(b))])) }
        }
        func opt(_ b: Bool?) -> CheckpointValue { b.map { .bool($0) } ?? .none }
        var group: [(String, CheckpointValue)] = [
            ("lr", .float(lr)), ("momentum", .float(momentum)), ("dampening", .float(dampening)),
            ("weight_decay", .float(weightDecay)), ("nesterov", .bool(nesterov)), ("maximize", .bool(maximize)),
            ("foreach", opt(foreach)), ("differentiable", .bool(differentiable)), ("fused", opt(fused)),
        ]
        group += extra.map { ($0.key, $0.value) }
        group.append(("params", .list(momentumBuffers.indices.map { .int($0) })))
        return .dict(CheckpointDict([("state", .dict(state)), ("param_groups", .list([.dict(CheckpointDict(group))]))]))
    }

    /// Reads an SGD state dict with one param group whose `params` are 0..<n.
    public init(from v: CheckpointValue) throws(CheckpointError) {
        func bad(_ m: String) -> CheckpointError { CheckpointError(.invalidArgument, "optimizer state: \(m)", key: "optimizer") }
        guard let groups = v["param_groups"]?.items, groups.count == 1, let g = groups[0].dict else {
            throw bad("expected exactly one param group")
        }
        guard let params = g["params"]?.items else { throw bad("param group has no params list") }
        for (i, p) in params.enumerated() where p.int != i { throw bad("params are not 0..<\(params.count)") }
        func num(_ k: String, _ d: Double? = nil) throws(CheckpointError) -> Double {
            if let x = g[k]?.double { return x }
            if let d { return d }
            throw bad("param group has no number '\(k)'")
        }
        func flag(_ k: String) -> Bool? { g[k]?.bool }
        lr = try num("lr")
        momentum = try num("momentum", 0)
        dampening = try num("dampening", 0)
        weightDecay = try num("weight_decay", 0)
        nesterov = flag("nesterov") ?? false
        maximize = flag("maximize") ?? false
        foreach = flag("foreach")
        differentiable = flag("differentiable") ?? false
        fused = flag("fused")
        let known: Set<String> = ["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                                  "differentiable", "fused", "params"]
        extra = g.entries.compactMap { e in e.key.string.flatMap { known.contains($0) ? nil : ($0, e.value) } }
        var buffers = [Tensor?](repeating: nil, count: params.count)
        guard let state = v["state"]?.dict else { throw bad("no 'state' dict") }
        for (k, entry) in state.entries {
            guard let i = k.int, i >= 0, i < params.count else { throw bad("state key \(k.summary()) is not a parameter index") }
            buffers[i] = entry["momentum_buffer"]?.tensor
        }
        momentumBuffers = buffers
    }
}
