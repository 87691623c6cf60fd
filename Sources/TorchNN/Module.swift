import Torch

/// A layer that maps one tensor to one tensor (what `Sequential` chains).
public protocol Layer: AnyObject {
    func callAsFunction(_ x: Tensor) throws(TorchError) -> Tensor
}

/// Base of every model part. Children and tensors are found by reflection, once, so state-dict keys follow from the
/// property names (see `snakeCase`): a child property `bboxHead` gives keys `bbox_head.…`, an array `fpnConvs`
/// gives `fpn_convs.0.…`, a nil optional is omitted. The module tree is fixed after `init`: reassigning a tensor
/// property is fine (slots are boxes), replacing a child module after first use is not.
open class Module {
    /// True in training mode (`train()`), false in evaluation mode (`eval()`).
    public private(set) var isTraining = true

    private var reflected: (children: [(String, Module)], tensors: [(String, TensorSlot)])?

    public init() {}

    /// Property name → key, for children whose key is not the snake_case of the property name.
    open var keyOverrides: [String: String] { [:] }

    func reflect() -> (children: [(String, Module)], tensors: [(String, TensorSlot)]) {
        if let r = reflected { return r }
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let cur = m {
            mirrors.append(cur)
            m = cur.superclassMirror
        }
        var children: [(String, Module)] = []
        var tensors: [(String, TensorSlot)] = []
        let overrides = keyOverrides
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard let label = child.label else { continue }
                if let slot = child.value as? TensorSlot {
                    let name = label.hasPrefix("_") ? String(label.dropFirst()) : label
                    tensors.append((slot.key ?? overrides[name] ?? snakeCase(name), slot))
                } else if let module = child.value as? Module {
                    children.append((overrides[label] ?? snakeCase(label), module))
                } else if let list = child.value as? [Module] {
                    let key = overrides[label] ?? snakeCase(label)
                    for (i, module) in list.enumerated() { children.append(("\(key).\(i)", module)) }
                }
            }
        }
        reflected = (children, tensors)
        return (children, tensors)
    }

    /// Direct children with their keys, in declaration order.
    open func namedChildren() -> [(String, Module)] { reflect().children }

    /// This module's own tensors (not its children's), in declaration order.
    public func ownTensors() -> [(key: String, tensor: Tensor, kind: TensorKind)] {
        reflect().tensors.compactMap { key, slot in slot.tensor.map { (key, $0, slot.kind) } }
    }

    /// Every module below (and including) this one, depth first, with its key prefix.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (key, child) in namedChildren() {
            out += child.namedModules(prefix: prefix.isEmpty ? key : "\(prefix).\(key)")
        }
        return out
    }

    /// (key, tensor, kind) in PyTorch's `state_dict()` order: a module's parameters, then its buffers, then its
    /// children recursively.
    public func namedTensors(prefix: String = "") -> [(key: String, tensor: Tensor, kind: TensorKind)] {
        var out: [(key: String, tensor: Tensor, kind: TensorKind)] = []
        let own = ownTensors()
        let dot = prefix.isEmpty ? "" : "\(prefix)."
        for t in own where t.kind == .parameter { out.append(("\(dot)\(t.key)", t.tensor, t.kind)) }
        for t in own where t.kind == .buffer { out.append(("\(dot)\(t.key)", t.tensor, t.kind)) }
        for (key, child) in namedChildren() { out += child.namedTensors(prefix: "\(dot)\(key)") }
        return out
    }

    public func namedParameters() -> [(key: String, tensor: Tensor)] {
        namedTensors().filter { $0.kind == .parameter }.map { ($0.key, $0.tensor) }
    }

    public func namedBuffers() -> [(key: String, tensor: Tensor)] {
        namedTensors().filter { $0.kind == .buffer }.map { ($0.key, $0.tensor) }
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

    /// Parameters with `requiresGrad` (what an optimizer updates).
    public func trainableParameters() -> [Tensor] { parameters().filter(\.requiresGrad) }

    /// Every parameter and buffer by key, in `state_dict()` order.
    public func stateDict() -> [(key: String, tensor: Tensor)] { namedTensors().map { ($0.key, $0.tensor) } }

    /// Training mode for this module and every module below (BN layers then use batch statistics).
    open func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in namedChildren() { child.train(on) }
    }

    public func eval() { train(false) }

    /// Turns gradients off (or on) for every parameter below this module.
    public func requiresGrad(_ on: Bool) throws(TorchError) {
        for p in parameters() { try p.requiresGrad_(on) }
    }

    /// Clears the gradients of every parameter.
    public func zeroGrad() throws(TorchError) {
        for p in parameters() { try p.zeroGrad() }
    }

    /// Moves every parameter and buffer to `device` in place (the slots keep their identity).
    public func to(_ device: Device) throws(TorchError) {
        for (_, slot) in namedModules().flatMap({ $0.1.reflect().tensors }) {
            guard let t = slot.tensor, try t.device != device else { continue }
            let moved = try t.to(device)
            if slot.kind == .parameter, t.requiresGrad { try moved.requiresGrad_(true) }
            try slot.replace(with: moved)
        }
    }
}

extension TensorSlot {
    /// Replaces the tensor in the slot (device moves). The slot's `Value` decides whether nil is allowed.
    func replace(with t: Tensor) throws(TorchError) {
        if let p = self as? Parameter<Tensor> { p.wrappedValue = t; return }
        if let p = self as? Parameter<Tensor?> { p.wrappedValue = t; return }
        if let b = self as? Buffer<Tensor> { b.wrappedValue = t; return }
        if let b = self as? Buffer<Tensor?> { b.wrappedValue = t; return }
        throw TorchError(op: "Module.to", message: "unsupported tensor slot type \(type(of: self))")
    }
}
