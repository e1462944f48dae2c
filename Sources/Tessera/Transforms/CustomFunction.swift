// Functions with user-given transform rules, and checkpoint (a custom
// function whose backward pass recomputes the forward instead of keeping its
// intermediates).

/// The transform rules of a custom function. Each defaults to transforming
/// the forward function itself.
public final class CustomRules: @unchecked Sendable {
    let primalCount: Int
    /// (primals, cotangents of all outputs, outputs) → cotangents of the primals.
    let vjp: ([Tensor], [Tensor], [Tensor]) -> [Tensor]
    /// (primals, tangents of the primals, outputs) → tangents of the outputs.
    let jvp: ([Tensor], [Tensor], [Tensor]) -> [Tensor]
    /// (inputs, their mapped axes: 0 or nil) → outputs mapped on axis 0.
    let vmap: ([Tensor], [Int?]) -> [Tensor]

    init(
        primalCount: Int, vjp: @escaping ([Tensor], [Tensor], [Tensor]) -> [Tensor],
        jvp: @escaping ([Tensor], [Tensor], [Tensor]) -> [Tensor], vmap: @escaping ([Tensor], [Int?]) -> [Tensor]
    ) {
        self.primalCount = primalCount
        self.vjp = vjp
        self.jvp = jvp
        self.vmap = vmap
    }
}

/// `f` with custom transform rules; a rule left nil transforms `f` itself.
///
/// - vjp: `(primals, cotangents, outputs) -> cotangents of primals`
/// - jvp: `(primals, tangents, outputs) -> tangents of outputs`
/// - vmap: `(inputs, axes) -> (outputs, outAxes)`, axes nil for unmapped inputs
///
/// ```swift
/// // A straight-through estimator: round forward, identity backward.
/// let ste = customFunction({ [round($0[0])] }, vjp: { _, cotangents, _ in cotangents })
/// ```
public func customFunction(
    _ f: @escaping ([Tensor]) -> [Tensor],
    vjp customVJP: (([Tensor], [Tensor], [Tensor]) -> [Tensor])? = nil,
    jvp customJVP: (([Tensor], [Tensor], [Tensor]) -> [Tensor])? = nil,
    vmap customVmap: (([Tensor], [Int?]) -> ([Tensor], [Int]))? = nil
) -> ([Tensor]) -> [Tensor] {
    { primals in
        // The forward graph is not traced: its intermediates are freed as it
        // runs, and the rules recompute what they need.
        let outputs = Tracing.with(false) { f(primals) }
        let rules = CustomRules(
            primalCount: primals.count,
            vjp: customVJP ?? { p, c, _ in Tessera.vjp(f, primals: p, cotangents: c).vjps },
            jvp: customJVP ?? { p, t, _ in Tessera.jvp(f, primals: p, tangents: t).jvps },
            vmap: { inputs, axes in
                guard let customVmap else { return Tessera.vmap(f, inAxes: axes)(inputs) }
                let (outs, outAxes) = customVmap(inputs, axes)
                return zip(outs, outAxes).map { $0.movedAxis(source: $1, destination: 0) }
            })
        return outputs.indices.map { i in
            Tensor(
                shape: outputs[i].shape, dtype: outputs[i].dtype, primitive: .custom(rules, index: i),
                inputs: primals + outputs)
        }
    }
}

/// `f`, with gradients computed by recomputing `f` in the backward pass
/// instead of keeping its intermediate values: less memory, more compute.
public func checkpoint(_ f: @escaping ([Tensor]) -> [Tensor]) -> ([Tensor]) -> [Tensor] {
    customFunction(f)
}

/// `f`, checkpointed (see ``checkpoint(_:)-([Tensor])``).
public func checkpoint(_ f: @escaping (Tensor) -> Tensor) -> (Tensor) -> Tensor {
    let g = checkpoint { [f($0[0])] }
    return { g([$0])[0] }
}
