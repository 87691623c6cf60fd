import Torch

/// Whether a tensor slot of a module is trained (parameter) or persistent state (buffer).
public enum TensorKind: Sendable { case parameter, buffer }

/// A tensor slot found by reflection: `@Parameter` and `@Buffer` properties.
public protocol TensorSlot: AnyObject {
    var tensor: Tensor? { get }
    var kind: TensorKind { get }
    /// An explicit state-dict key for this slot, overriding the camelCase → snake_case rule.
    var key: String? { get }
}

/// A trainable tensor of a module (`nn.Parameter`). `Value` is `Tensor` or `Tensor?` (a nil optional is omitted
/// from the state dict, like a `bias=None`).
@propertyWrapper
public final class Parameter<Value>: TensorSlot {
    public var wrappedValue: Value
    public let key: String?

    public init(wrappedValue: Value, key: String? = nil) {
        self.wrappedValue = wrappedValue
        self.key = key
    }

    public var tensor: Tensor? { (wrappedValue as Any) as? Tensor }
    public var kind: TensorKind { .parameter }
}

/// Persistent, non-trained state of a module (`register_buffer`), e.g. BN running statistics, GHM `acc_sum`.
@propertyWrapper
public final class Buffer<Value>: TensorSlot {
    public var wrappedValue: Value
    public let key: String?

    public init(wrappedValue: Value, key: String? = nil) {
        self.wrappedValue = wrappedValue
        self.key = key
    }

    public var tensor: Tensor? { (wrappedValue as Any) as? Tensor }
    public var kind: TensorKind { .buffer }
}

/// camelCase → snake_case, the rule that turns Swift property names into MMDetection's state-dict keys:
/// `bboxHead` → `bbox_head`, `numBatchesTracked` → `num_batches_tracked`, `layer1` → `layer1`.
public func snakeCase(_ name: String) -> String {
    var out = ""
    out.reserveCapacity(name.count + 4)
    for ch in name {
        if ch.isUppercase {
            if !out.isEmpty { out.append("_") }
            out.append(contentsOf: ch.lowercased())
        } else {
            out.append(ch)
        }
    }
    return out
}
