// valueAndGrad over a model's trainable parameters, and `eval` over modules,
// parameter trees and anything else that holds tensors.

import Tessera

/// A loss function's value and its gradients with respect to `model`'s
/// trainable parameters, as a tree with the keys of `trainableParameters()`.
///
/// The returned function traces `f` with the model's parameters swapped for
/// traced copies, and puts the originals back afterwards.
///
/// ```swift
/// let step = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y).mean() }
/// let (loss, grads) = step(model, x, y)
/// ```
public func valueAndGrad<M: Module>(
    model: M, _ f: @escaping (M, [Tensor]) -> [Tensor]
) -> (M, [Tensor]) -> ([Tensor], ModuleParameters) {
    { model, args in
        let trainable = model.trainableParameters().flattened()
        let keys = trainable.map(\.key)
        let originals = Dictionary(uniqueKeysWithValues: trainable.map { ($0.key, $0.value) })
        let inner = valueAndGrad(
            { (all: [Tensor]) -> [Tensor] in
                model.assign(Dictionary(uniqueKeysWithValues: zip(keys, all.prefix(keys.count))))
                return f(model, Array(all.dropFirst(keys.count)))
            }, argumentNumbers: Array(0..<keys.count))
        defer { model.assign(originals) }
        let (values, grads) = inner(trainable.map(\.value) + args)
        return (values, ModuleParameters(flattened: Array(zip(keys, grads)).map { ($0.0, $0.1) }))
    }
}

/// `valueAndGrad(model:)` for a loss of the model and one input.
public func valueAndGrad<M: Module>(
    model: M, _ f: @escaping (M, Tensor) -> Tensor
) -> (M, Tensor) -> (Tensor, ModuleParameters) {
    let g = valueAndGrad(model: model) { (m: M, args: [Tensor]) in [f(m, args[0])] }
    return { m, x in
        let (v, grads) = g(m, [x])
        return (v[0], grads)
    }
}

/// `valueAndGrad(model:)` for a loss of the model, an input and a target.
public func valueAndGrad<M: Module>(
    model: M, _ f: @escaping (M, Tensor, Tensor) -> Tensor
) -> (M, Tensor, Tensor) -> (Tensor, ModuleParameters) {
    let g = valueAndGrad(model: model) { (m: M, args: [Tensor]) in [f(m, args[0], args[1])] }
    return { m, x, y in
        let (v, grads) = g(m, [x, y])
        return (v[0], grads)
    }
}

/// Something that holds tensors to evaluate together: modules, parameter
/// trees, optimizers.
public protocol Evaluatable {
    var tensors: [Tensor] { get }
}

extension Tensor: Evaluatable {
    public var tensors: [Tensor] { [self] }
}

extension Module: Evaluatable {
    /// Every parameter.
    public var tensors: [Tensor] { parameters().flattened().map(\.value) }
}

extension ModuleParameters: Evaluatable {
    public var tensors: [Tensor] { flattened().map(\.value) }
}

/// Evaluates the tensors of every item in one pass.
///
/// ```swift
/// opt.update(model: model, gradients: grads)
/// eval(model, opt, loss)
/// ```
public func eval(_ items: any Evaluatable...) {
    Tessera.eval(items.flatMap(\.tensors))
}
