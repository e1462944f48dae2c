// TEMPORARY: a small seeded generator for parameter initialisation and
// dropout masks, until `Random` (branch ops-numerics) lands on main. Replace
// the three functions below with `Random.uniform/normal/bernoulli`; nothing
// else in TesseraNN draws random numbers.

import Synchronization
import Tessera

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum InitRandom {
    /// SplitMix64 state shared by all draws (thread-safe).
    private static let state = Mutex<UInt64>(0x5EED_7E55_E4A0_0001)

    /// Reseeds the generator (tests and examples that want reproducible weights).
    static func seed(_ seed: UInt64) { state.withLock { $0 = seed } }

    private static func nextWords(_ count: Int) -> [UInt64] {
        state.withLock { s in
            (0..<count).map { _ in
                s &+= 0x9E37_79B9_7F4A_7C15
                var z = s
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
        }
    }

    /// Uniform samples in [0, 1) as Doubles.
    private static func unit(_ count: Int) -> [Double] {
        nextWords(count).map { Double($0 >> 11) * 0x1p-53 }
    }

    static func uniform(low: Double, high: Double, _ shape: [Int], dtype: DType = .float32) -> Tensor {
        let n = shape.reduce(1, *)
        let values = unit(n).map { Float(low + (high - low) * $0) }
        return Tensor(values, shape: shape).asType(dtype)
    }

    static func normal(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32) -> Tensor {
        let n = shape.reduce(1, *)
        let u = unit(2 * n)
        // Box-Muller.
        let values = (0..<n).map { i -> Float in
            let r = (-2 * Glibc.log(1 - u[2 * i])).squareRoot()
            return Float(mean + std * r * Glibc.cos(2 * Double.pi * u[2 * i + 1]))
        }
        return Tensor(values, shape: shape).asType(dtype)
    }

    /// Booleans that are true with probability `p`.
    static func bernoulli(_ p: Double, _ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(unit(n).map { $0 < p }, shape: shape)
    }
}
