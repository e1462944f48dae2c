// Selftest cases: element-wise ops, selection, casts, reductions and copies.

extension GPUSelfTest {
    static var elementwiseCases: [Case] {
        let pair: (DType) -> [Tensor] = { dtype in
            [sample([4, 6, 4]).asType(dtype), (abs(sample([6, 4], seed: 3)) + 0.25).asType(dtype)]
        }
        let binary: [(String, (Tensor, Tensor) -> Tensor)] = [
            ("add (broadcast)", { $0 + $1 }), ("multiply", { $0 * $1 }), ("divide", { $0 / $1 }),
            ("maximum", { maximum($0, $1) }), ("less", { $0 .< $1 }), ("which", { which($0 .< $1, $0, $1) }),
            ("concatenate", { a, _ in concatenated([a, a], axis: 1) }),
        ]
        let unary: [(String, (Tensor) -> Tensor)] = [
            ("exp", { exp($0) }), ("tanh", { tanh($0) }), ("sigmoid", { sigmoid($0) }),
            ("sum axis 2 (row)", { $0.sum(axes: [2]) }), ("sum axis 0", { $0.sum(axes: [0]) }),
            ("max all", { $0.max() }), ("transposed copy", { $0.transposed().contiguous() }),
        ]
        return binary.map { name, f in Case(name: name, dtypes: floatTypes, inputs: pair, op: { f($0[0], $0[1]) }) }
            + unary.map { name, f in Case(name: name, dtypes: floatTypes, inputs: pair, op: { f($0[0]) }) }
    }
}
