import Detection
import Foundation

/// mmcv 1.4's `StepLrUpdaterHook` with warmup (`mmcv/runner/hooks/lr_updater.py`), as the runner drives it:
/// `before_train_epoch` sets the epoch's regular lr (epoch-based steps), `before_train_iter` applies the warmup of
/// global iteration i (or, with `by_epoch=False`, recomputes the regular lr every iteration). Every value is the
/// same float64 expression mmcv evaluates.
public struct LRSchedule: Sendable {
    public var baseLR: Double
    public var steps: [Int]
    /// A single int `step` in the config means "decay every `step`" (mmcv's int form).
    public var stepIsPeriod: Bool
    public var gamma: Double
    public var warmup: String?
    public var warmupIters: Int
    public var warmupRatio: Double
    public var byEpoch: Bool

    public init(baseLR: Double, config: LRConfig) {
        self.baseLR = baseLR
        steps = config.step
        stepIsPeriod = config.stepIsPeriod
        gamma = config.gamma
        warmup = config.warmup
        warmupIters = config.warmupIters
        warmupRatio = config.warmupRatio
        byEpoch = config.byEpoch
    }

    /// `StepLrUpdaterHook.get_lr` at `progress` (the epoch, or the iteration when not by epoch).
    public func regularLR(progress: Int) -> Double {
        var exp = steps.count
        if stepIsPeriod, let s = steps.first {
            exp = progress / s
        } else {
            for (i, s) in steps.enumerated() where progress < s {
                exp = i
                break
            }
        }
        return baseLR * pow(gamma, Double(exp))
    }

    /// `get_warmup_lr(cur_iters)` applied to `regular`.
    public func warmupLR(iteration i: Int, regular: Double) -> Double {
        switch warmup {
        case "constant": return regular * warmupRatio
        case "exp":
            let k = pow(warmupRatio, 1 - Double(i) / Double(warmupIters))
            return regular * k
        default:
            let k = (1 - Double(i) / Double(warmupIters)) * (1 - warmupRatio)
            return regular * (1 - k)
        }
    }

    /// The lr the optimizer uses in global iteration `iteration` (0-based) of epoch `epoch` (0-based), as the hooks
    /// leave it: by epoch, `before_train_epoch` sets the epoch's regular lr and `before_train_iter` replaces it by
    /// the warmup lr while `iteration < warmupIters` (the regular one at `== warmupIters`, untouched after);
    /// otherwise the regular lr of the iteration, warmed up while `iteration < warmupIters`.
    public func lr(epoch: Int, iteration: Int) -> Double {
        let regular = regularLR(progress: byEpoch ? epoch : iteration)
        guard warmup != nil, iteration < warmupIters else { return regular }
        return warmupLR(iteration: iteration, regular: regular)
    }

    /// The lr of every global iteration of a run of `epochs` × `itersPerEpoch`.
    public func allLRs(epochs: Int, itersPerEpoch: Int) -> [Double] {
        var out: [Double] = []
        for e in 0..<epochs {
            for k in 0..<itersPerEpoch { out.append(lr(epoch: e, iteration: e * itersPerEpoch + k)) }
        }
        return out
    }
}
