// Learning-rate schedules (MLX's `optimizers.schedulers`) and gradient
// clipping by global norm.

import Tessera
import TesseraNN

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Learning-rate schedules: functions of the step, for `LearningRate.schedule`.
///
/// ```swift
/// let warmup = Schedules.linear(from: 0, to: 1e-3, steps: 100)
/// let decay = Schedules.cosineDecay(1e-3, decaySteps: 1000)
/// let opt = AdamW(learningRate: Schedules.join([warmup, decay], boundaries: [100]))
/// ```
public enum Schedules {
    /// init · rateᵗ.
    public static func exponentialDecay(_ initial: Float, decayRate: Float) -> LearningRate {
        .schedule { step in initial * Float(pow(Double(decayRate), Double(step))) }
    }

    /// init · rate^(t / stepSize), integer division.
    public static func stepDecay(_ initial: Float, decayRate: Float, stepSize: Int) -> LearningRate {
        precondition(stepSize >= 1, "[stepDecay] stepSize must be positive")
        return .schedule { step in initial * Float(pow(Double(decayRate), Double(step / stepSize))) }
    }

    /// end + (init - end) · (1 + cos(π min(t, decaySteps) / decaySteps)) / 2.
    public static func cosineDecay(_ initial: Float, decaySteps: Int, end: Float = 0) -> LearningRate {
        precondition(decaySteps >= 1, "[cosineDecay] decaySteps must be positive")
        return .schedule { step in
            let s = Float(Swift.min(step, decaySteps))
            let decay = 0.5 * (1 + cosf(Float.pi / Float(decaySteps) * s))
            return end + decay * (initial - end)
        }
    }

    /// From `initial` to `end` linearly over `steps`, then `end`.
    public static func linear(from initial: Float, to end: Float, steps: Int) -> LearningRate {
        precondition(steps >= 1, "[linear] steps must be positive")
        return .schedule { step in Float(Swift.min(step, steps)) * ((end - initial) / Float(steps)) + initial }
    }

    /// Schedule i+1 takes over at boundary i, seeing the steps since that boundary.
    public static func join(_ schedules: [LearningRate], boundaries: [Int]) -> LearningRate {
        precondition(!schedules.isEmpty, "[join] needs at least one schedule")
        precondition(
            schedules.count == boundaries.count + 1,
            "[join] needs \(schedules.count - 1) boundaries, got \(boundaries.count)")
        return .schedule { step in
            var value = schedules[0].value(at: step)
            for (boundary, s) in zip(boundaries, schedules.dropFirst()) where step >= boundary {
                value = s.value(at: step - boundary)
            }
            return value
        }
    }

    /// Linear warm-up from 0 over `warmupSteps`, then `schedule` (its step counted from the end of warm-up).
    public static func withWarmup(_ schedule: LearningRate, warmupSteps: Int, peak: Float) -> LearningRate {
        join([linear(from: 0, to: peak, steps: warmupSteps), schedule], boundaries: [warmupSteps])
    }
}

/// Scales `gradients` so their global L2 norm is at most `maxNorm`; returns
/// the clipped gradients and the norm before clipping (MLX's `clip_grad_norm`).
///
/// ```swift
/// let (clipped, norm) = clipGradNorm(grads, maxNorm: 1.0)
/// ```
public func clipGradNorm(_ gradients: ModuleParameters, maxNorm: Float) -> (ModuleParameters, Tensor) {
    precondition(maxNorm >= 0, "[clipGradNorm] maxNorm must be non-negative, got \(maxNorm)")
    let leaves = gradients.flattened().map(\.value)
    var squared = Tensor(Float(0))
    for g in leaves {
        let g32 = g.dtype == .float16 ? g.asType(.float32) : g
        squared = squared + square(g32).sum()
    }
    let total = sqrt(squared)
    let normalizer = minimum(maxNorm / (total + 1e-6), Tensor(Float(1)))
    let clipped = gradients.mapValues { g in
        g.dtype.isFloatingPoint ? (g * normalizer).asType(g.dtype) : g * normalizer
    }
    return (clipped, total)
}
