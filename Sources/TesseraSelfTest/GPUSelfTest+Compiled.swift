// Selftest cases: compile()'s fused kernels (see Backends/CUDA/CUDAFusedLaunch.swift):
// contiguous and broadcast (strided) inputs, a scalar, several outputs.

import Tessera

extension GPUSelfTest {
    static var compiledCases: [Case] {
        let gelu = compile { (x: Tensor) in 0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x * x * x))) }
        let chain = compile { (xs: [Tensor]) -> [Tensor] in
            let (x, y) = (xs[0], xs[1])
            return [maximum(exp(x * 0.5) - y, y * y) / (1 + abs(x)) + which(x .> y, x, 2 * y)]
        }
        // Adam-style: two moments and the update out of one region.
        let adam = compile { (xs: [Tensor]) -> [Tensor] in
            let (g, m, v) = (xs[0], xs[1], xs[2])
            let m2 = 0.9 * m + 0.1 * g
            let v2 = 0.999 * v + 0.001 * g * g
            return [m2, v2, m2 / (sqrt(v2) + 1e-8)]
        }
        return [
            Case(
                name: "compiled gelu", dtypes: floatTypes, inputs: { [sample([33, 70]).asType($0)] },
                op: { gelu($0[0]) }),
            Case(
                name: "compiled chain (broadcast, transposed)", dtypes: floatTypes,
                inputs: { [sample([40, 24]).transposed().asType($0), sample([24, 1], seed: 5).asType($0)] },
                op: { chain($0)[0] }),
            Case(
                name: "compiled 3-output region", dtypes: [.float32],
                inputs: { _ in [sample([3000], seed: 1), sample([3000], seed: 2), abs(sample([3000], seed: 3))] },
                op: { concatenated(adam($0), axis: 0) })
        ]
    }
}
