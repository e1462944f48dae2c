// The optimizer base class, with MLX's semantics: state per parameter (keyed
// by the parameter's dotted key), created on the first update; the step
// counter is incremented before the update (Adam's bias correction sees 1 on
// the first step) and a learning-rate schedule is evaluated at the step
// before the increment (the first update uses schedule(0)).

import Tessera
import TesseraNN

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A learning rate: fixed, or a function of the step (see `Schedules`).
public enum LearningRate: Sendable, ExpressibleByFloatLiteral {
    case constant(Float)
    case schedule(@Sendable (Int) -> Float)

    public init(floatLiteral value: Float) { self = .constant(value) }

    public func value(at step: Int) -> Float {
        switch self {
        case .constant(let v): return v
        case .schedule(let f): return f(step)
        }
    }
}

/// Errors reading optimizer state.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    /// The file is not optimizer state for this optimizer or model: why.
    case invalidState(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidState(path, reason): return "invalid optimizer state in \(path): \(reason)"
        }
    }
}

/// The base class of optimizers. Subclasses give the initial state of one
/// parameter and the update of one parameter.
///
/// ```swift
/// let opt = AdamW(learningRate: 1e-3)
/// let (loss, grads) = step(model, x, y)
/// opt.update(model: model, gradients: grads)
/// eval(model, opt)
/// ```
open class Optimizer: Evaluatable {
    private var hostStep = 0
    /// The step as an int32 scalar tensor: a placeholder while a compiled
    /// function traces, its lazy result after a compiled call (see `innerState`).
    private var stepTensor: Tensor?
    /// The learning rate (float32 scalar) as compile state.
    private var tracedLearningRate: Tensor?
    /// The step and learning rate of the update being applied, as tensors.
    private var appliedStep: Tensor?
    private var appliedLearningRate: Tensor?

    /// Updates applied so far. After compiled steps it is a tensor until read.
    public internal(set) var step: Int {
        get {
            if let t = stepTensor, !Compile.isTracing {
                hostStep = Int(t.item(Int32.self))
                stepTensor = nil
            }
            return hostStep
        }
        set {
            hostStep = newValue
            stepTensor = nil
        }
    }
    /// The learning rate (or its schedule).
    public var learningRate: LearningRate
    /// The learning rate used by the update being applied (schedules: at the step before it).
    public internal(set) var currentLearningRate: Float
    /// Per parameter key, the named state tensors ("m", "v", ...).
    public internal(set) var state: [String: [String: Tensor]] = [:]

    public init(learningRate: LearningRate) {
        self.learningRate = learningRate
        currentLearningRate = learningRate.value(at: 0)
    }

    /// The initial state of `parameter` (override).
    open func initialState(for parameter: Tensor) -> [String: Tensor] { [:] }

    /// The new value of one parameter given its gradient; updates `state` (override).
    open func apply(gradient: Tensor, parameter: Tensor, state: inout [String: Tensor]) -> Tensor {
        fatalError("[Optimizer] \(type(of: self)) must override apply(gradient:parameter:state:)")
    }

    /// New values for the parameters that have gradients (MLX's `apply_gradients`).
    public func applyGradients(_ gradients: ModuleParameters, parameters: ModuleParameters) -> ModuleParameters {
        let params = parameters.flatDictionary
        let grads = gradients.flattened()
        if Compile.isTracing, let t = stepTensor, let lr = tracedLearningRate {
            // Inside a compiled function: the counter advances in the graph and
            // the rate is the traced input, so replays see each call's values.
            stepTensor = t + 1
            appliedStep = stepTensor!.asType(.float32)
            appliedLearningRate = lr
        } else {
            currentLearningRate = learningRate.value(at: step)
            step += 1
            appliedStep = nil
            appliedLearningRate = nil
        }
        var out: [(key: String, value: Tensor)] = []
        for (key, g) in grads {
            guard let p = params[key] else {
                preconditionFailure("[Optimizer] gradient \(key) has no parameter in the model")
            }
            var s = state[key] ?? initialState(for: p)
            out.append((key, apply(gradient: g, parameter: p, state: &s)))
            state[key] = s
        }
        return ModuleParameters(flattened: out)
    }

    /// Puts back the step and state of an optimizer of the same kind (a
    /// resumed run): the next update continues exactly as the saved one would have.
    public func restore(step: Int, state: [String: [String: Tensor]]) {
        self.step = step
        self.state = state
        currentLearningRate = learningRate.value(at: Swift.max(0, step - 1))
    }

    /// Applies `gradients` (from `valueAndGrad(model:)`) to `model`'s trainable parameters.
    public func update(model: Module, gradients: ModuleParameters) {
        let updated = applyGradients(gradients, parameters: model.trainableParameters())
        // The keys come from the model itself, so this cannot mismatch.
        try! model.update(parameters: updated, strict: false)
    }

    /// The state tensors, for `eval(model, optimizer)`.
    public var tensors: [Tensor] { state.values.flatMap { $0.values } + (stepTensor.map { [$0] } ?? []) }

    // MARK: Scalars of the update, for `apply`

    /// The learning rate of the update being applied, as a scalar of `dtype`
    /// (MLX casts it to the gradient's): a constant eagerly, a traced value
    /// inside a compiled step. Subclasses use this, not `currentLearningRate`.
    public func learningRateValue(as dtype: DType = .float32) -> Tensor {
        let lr = appliedLearningRate ?? Tensor(currentLearningRate)
        return dtype == .float32 ? lr : lr.asType(dtype)
    }

    /// `base` to the power of the step being applied (1 on the first update),
    /// float32: computed on the host eagerly (`floatPower`, as MLX), in the
    /// graph inside a compiled step.
    public func stepPower(_ base: Float) -> Tensor {
        if let t = appliedStep { return power(Tensor(base), t) }
        return Tensor(floatPower(base, Float(step)))
    }

    /// The step of the update being applied as a float32 scalar tensor when
    /// it is traced by `compile` (nil eagerly: use `step`).
    public var compiledStep: Tensor? { appliedStep }

    // MARK: State files

    /// The state as flat dotted keys: `step`, `learning_rate`, `<parameter key>.<slot>`.
    public func stateDictionary() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(UInt64(step)), "learning_rate": Tensor(currentLearningRate)]
        for (key, slots) in state {
            for (slot, t) in slots { out[key + "." + slot] = t }
        }
        return out
    }

    /// Writes the state to a safetensors file, atomically.
    public func saveState(to path: String) throws {
        try Safetensors.save(stateDictionary(), metadata: ["optimizer": "\(type(of: self))"], to: path)
    }

    /// Reads state written by `saveState` for the same optimizer class. With
    /// `model`, every state tensor must belong to one of its trainable
    /// parameters and have its shape. On any error the current state is kept.
    public func loadState(from path: String, for model: Module? = nil) throws {
        let (tensors, metadata) = try Safetensors.load(path)
        let kind = "\(type(of: self))"
        if let saved = metadata["optimizer"], saved != kind {
            throw OptimizerError.invalidState(path: path, reason: "saved by \(saved), loading into \(kind)")
        }
        guard let stepTensor = tensors["step"], stepTensor.size == 1, !stepTensor.dtype.isFloatingPoint else {
            throw OptimizerError.invalidState(path: path, reason: "no integer scalar 'step'")
        }
        let newStep = Int(stepTensor.asType(.int64).item(Int64.self))
        guard newStep >= 0 else { throw OptimizerError.invalidState(path: path, reason: "negative step \(newStep)") }
        let params = model?.trainableParameters().flatDictionary
        var newState: [String: [String: Tensor]] = [:]
        for (name, t) in tensors where name != "step" && name != "learning_rate" {
            guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
                throw OptimizerError.invalidState(path: path, reason: "key \(name) is not <parameter>.<slot>")
            }
            let key = String(name[..<dot]), slot = String(name[name.index(after: dot)...])
            if let params {
                guard let p = params[key] else {
                    throw OptimizerError.invalidState(
                        path: path, reason: "\(name): the model has no trainable parameter \(key)")
                }
                let expected = initialState(for: p)[slot]
                guard let expected else {
                    throw OptimizerError.invalidState(path: path, reason: "\(name): \(kind) has no state \(slot)")
                }
                guard expected.shape == t.shape else {
                    throw OptimizerError.invalidState(
                        path: path, reason: "\(name): shape \(t.shape), the parameter needs \(expected.shape)")
                }
            }
            newState[key, default: [:]][slot] = t
        }
        step = newStep
        state = newState
        if let lr = tensors["learning_rate"], lr.size == 1 {
            currentLearningRate = lr.asType(.float32).item(Float.self)
        }
    }
}

// MARK: - Compile state

extension Optimizer: Updatable {
    /// The step (int32), the learning rate (float32) and every state tensor
    /// in sorted (parameter key, slot) order: `compile(inputs: [model,
    /// optimizer], outputs: [model, optimizer])` threads them through a
    /// compiled training step. A schedule is evaluated on the host before
    /// each call (reading the step then waits for the previous one).
    /// State the first traced step creates is kept: the next call traces once
    /// more with it as input, then replays.
    public var innerState: [Tensor] {
        get {
            let slots = state.keys.sorted().flatMap { key in state[key]!.keys.sorted().map { state[key]![$0]! } }
            if Compile.isTracing, let t = stepTensor, let lr = tracedLearningRate {
                return [t, lr] + slots  // the trace's own values: never evaluated here
            }
            let lr: Float
            if case .constant(let c) = learningRate { lr = c } else { lr = learningRate.value(at: step) }
            return [stepTensor ?? Tensor(Int32(hostStep)), Tensor(lr)] + slots
        }
        set {
            let keys = state.keys.sorted()
            let count = keys.reduce(0) { $0 + state[$1]!.count }
            precondition(
                newValue.count == 2 + count,
                "[Optimizer] compile state: \(newValue.count) tensors for the step, the learning rate and \(count) state tensors"
            )
            stepTensor = newValue[0]
            tracedLearningRate = newValue[1]
            var next = 2
            for key in keys {
                for slot in state[key]!.keys.sorted() {
                    state[key]![slot] = newValue[next]
                    next += 1
                }
            }
        }
    }
}

/// Float32 powers as MLX computes `beta ** step` on float32 arrays.
func floatPower(_ base: Float, _ exponent: Float) -> Float {
    Float(pow(Double(base), Double(exponent)))
}
