// Random numbers compatible with MLX bit for bit: a key is two uint32 words;
// `randomBits` hashes counters with threefry-2x32 under the key, and every
// sampler is the same composition of ops MLX uses, so the same key gives the
// same samples. Without a key, draws take the next key of a global sequence
// (`Random.seed`), split under a lock so concurrent tasks get distinct keys.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The implicit key sequence: `next()` splits the state into (new state, key), as MLX's `KeySequence`.
/// The state is two host words, or a tensor while a stateful compiled function
/// traces with `Random.state` (a placeholder) and after it ran (its lazy result).
private let keySequence = Locked<KeySequenceState>(.words(Random.keyWords(UInt64(truncatingIfNeeded: time(nil)))))

enum KeySequenceState: @unchecked Sendable {
    case words((UInt32, UInt32))
    case tensor(Tensor)
}

/// The global random state as compile state: `compile(inputs: [Random.state],
/// outputs: [Random.state]) { ... }` threads the key through the compiled
/// function, so draws without a key inside it advance the sequence as they
/// would eagerly (same numbers) instead of repeating the traced key.
public final class RandomState: Updatable, @unchecked Sendable {
    fileprivate init() {}

    /// One uint32 `[2]` tensor: the current state of the key sequence.
    public var innerState: [Tensor] {
        get {
            keySequence.withLock { state in
                switch state {
                case .words(let (a, b)): return [Tensor([a, b])]
                case .tensor(let t): return [t]
                }
            }
        }
        set {
            opPrecondition(
                newValue.count == 1 && newValue[0].dtype == .uint32 && newValue[0].shape == [2], "Random.state",
                "the state is one uint32 array of shape [2], got \(newValue.map { "\($0.dtype) \($0.shape)" })")
            keySequence.withLock { $0 = .tensor(newValue[0]) }
        }
    }
}

/// Random sampling, MLX's `mx.random`:
///
/// ```swift
/// let k = Random.key(0)
/// let (k1, k2) = Random.split(k)
/// let x = Random.normal([4, 4], key: k1)
/// Random.seed(42)                       // then draws without a key are reproducible
/// let u = Random.uniform(low: -1, high: 1, [8])
/// ```
public enum Random {
    /// Reseeds the implicit key sequence used by draws without a key.
    public static func seed(_ seed: UInt64) {
        CompileState.lock.withLock { keySequence.withLock { $0 = .words(keyWords(seed)) } }
    }

    /// A key: `[seed >> 32, seed & 0xffffffff]` as uint32, as in MLX.
    public static func key(_ seed: UInt64) -> Tensor {
        let (a, b) = keyWords(seed)
        return Tensor([a, b])
    }

    static func keyWords(_ seed: UInt64) -> (UInt32, UInt32) {
        (UInt32(truncatingIfNeeded: seed >> 32), UInt32(truncatingIfNeeded: seed))
    }

    /// The implicit key sequence as compile state (see ``RandomState``).
    public static let state = RandomState()

    /// The next key of the implicit sequence (thread-safe). A state held as
    /// an unevaluated tensor (compile) splits in the graph: `randomBits` of
    /// four words under the state are the same words the host split computes.
    static func nextKey() -> Tensor {
        // Under compile's lock: a stateful compiled call may hold the state as a placeholder.
        CompileState.lock.withLock { nextKeyLocked() }
    }

    private static func nextKeyLocked() -> Tensor {
        keySequence.withLock { state -> Tensor in
            var words: (UInt32, UInt32)
            switch state {
            case .words(let w):
                words = w
            case .tensor(let t):
                guard t.node.isEvaluated else {
                    let split = Tensor(shape: [4], dtype: .uint32, primitive: .randomBits, inputs: [t])
                    state = .tensor(split.slice(start: [0], end: [2], stride: [1]))
                    return split.slice(start: [2], end: [4], stride: [1])
                }
                let w = t.toArray(UInt32.self)
                words = (w[0], w[1])
            }
            var next = [UInt32](repeating: 0, count: 4)
            next.withUnsafeMutableBufferPointer { Threefry.words(key: words, count: 4, into: $0.baseAddress!) }
            state = .words((next[0], next[1]))
            return Tensor([next[2], next[3]])
        }
    }

    /// `count` new keys from `key`, shape `[count, 2]`.
    public static func split(_ key: Tensor, count: Int) -> Tensor {
        opPrecondition(count >= 0, "split", "count must be non-negative, got \(count)")
        return bits([count, 2], key: key)
    }

    /// Two new keys from `key`.
    public static func split(_ key: Tensor) -> (Tensor, Tensor) {
        let keys = split(key, count: 2)
        return (keys[0], keys[1])
    }

    /// Raw random bits of `shape`: uint32 (`width` 4), uint16 (2) or uint8 (1).
    public static func bits(_ shape: [Int], width: Int = 4, key: Tensor? = nil) -> Tensor {
        let dtype: DType
        switch width {
        case 4: dtype = .uint32
        case 2: dtype = .uint16
        case 1: dtype = .uint8
        default: fatalError("[bits] width must be 1, 2 or 4, got \(width)")
        }
        checkShape(shape, "bits")
        let key = key ?? nextKey()
        opPrecondition(
            key.dtype == .uint32 && key.shape == [2], "bits",
            "a key is a uint32 array of shape [2], got \(key.dtype) \(key.shape)")
        return Tensor(shape: shape, dtype: dtype, primitive: .randomBits, inputs: [key])
    }

    private static func checkFloat(_ op: String, _ dtype: DType) {
        opPrecondition(
            [.float32, .float16, .bfloat16].contains(dtype), op, "needs float32, float16 or bfloat16, got \(dtype)")
    }

    /// Uniform samples in `[low, high)` of `shape` (the bounds broadcast to it).
    public static func uniform(
        low: Tensor, high: Tensor, _ shape: [Int], dtype: DType = .float32, key: Tensor? = nil
    ) -> Tensor {
        checkFloat("uniform", dtype)
        let lo = low.asType(dtype), hi = high.asType(dtype)
        let range = hi - lo
        opPrecondition(
            broadcastShapes(shape, range.shape, "uniform") == shape, "uniform",
            "cannot draw shape \(shape) for bounds of shape \(range.shape)")
        // The largest value below one in `dtype`, as float32, so samples stay below `high`.
        let upper: Float
        switch dtype {
        case .float16: upper = Float(Float16(bitPattern: Float16(1).bitPattern - 1))
        case .bfloat16: upper = BFloat16(bitPattern: BFloat16(Float(1)).bitPattern - 1).float
        default: upper = Float(1).nextDown
        }
        let u = bits(shape, key: key).asType(.float32) / Tensor(Float(UInt32.max))
        return range * minimum(u, Tensor(upper)).asType(dtype) + lo
    }

    /// Uniform samples in `[low, high)` (default `[0, 1)`).
    public static func uniform(
        low: Double = 0, high: Double = 1, _ shape: [Int], dtype: DType = .float32, key: Tensor? = nil
    ) -> Tensor {
        uniform(low: Tensor(Float(low)), high: Tensor(Float(high)), shape, dtype: dtype, key: key)
    }

    /// Normal samples `loc + scale * N(0, 1)`, by the inverse error function.
    public static func normal(
        _ shape: [Int], dtype: DType = .float32, loc: Double = 0, scale: Double = 1, key: Tensor? = nil
    ) -> Tensor {
        checkFloat("normal", dtype)
        let samples = uniform(low: Tensor(Float(-1).nextUp), high: Tensor(Float(1)), shape, key: key)
        var appliedScale = Tensor(Double(2).squareRoot()).asType(dtype)
        if scale != 1 { appliedScale = appliedScale * Tensor(Float(scale)).asType(dtype) }
        var out = appliedScale * erfinv(samples).asType(dtype)
        if loc != 0 { out = Tensor(Float(loc)).asType(dtype) + out }
        return out
    }

    /// Normal samples truncated to `[lower, upper]` (bounds broadcast to `shape`).
    ///
    /// The bounds are evaluated when the op is built (their error functions
    /// use MLX's float32 approximation, computed on the host).
    public static func truncatedNormal(
        lower: Tensor, upper: Tensor, _ shape: [Int], dtype: DType = .float32, key: Tensor? = nil
    ) -> Tensor {
        checkFloat("truncatedNormal", dtype)
        let sqrt2 = Tensor(Double(2).squareRoot()).asType(dtype)
        let lo = lower.asType(dtype), hi = upper.asType(dtype)
        func mlxErf(_ t: Tensor) -> Tensor {
            let values = (t / sqrt2).asType(.float32).toArray(Float.self).map(MLXMath.erf)
            return Tensor(values, shape: t.shape).asType(dtype)
        }
        let u = uniform(low: mlxErf(lo), high: mlxErf(hi), shape, dtype: dtype, key: key)
        let out = sqrt2 * erfinv(u)
        return maximum(minimum(hi, out), lo)
    }

    /// Normal samples truncated to `[lower, upper]`.
    public static func truncatedNormal(
        lower: Double, upper: Double, _ shape: [Int], dtype: DType = .float32, key: Tensor? = nil
    ) -> Tensor {
        truncatedNormal(lower: Tensor(Float(lower)), upper: Tensor(Float(upper)), shape, dtype: dtype, key: key)
    }

    /// Booleans that are true with probability `p` (broadcast to `shape`, default `p`'s shape).
    public static func bernoulli(_ p: Tensor, _ shape: [Int]? = nil, key: Tensor? = nil) -> Tensor {
        opPrecondition(p.dtype.isFloatingPoint, "bernoulli", "p must be a float type, got \(p.dtype)")
        let shape = shape ?? p.shape
        opPrecondition(
            broadcastShapes(shape, p.shape, "bernoulli") == shape, "bernoulli",
            "p of shape \(p.shape) does not broadcast to \(shape)")
        // p scaled to [0, next float above 2^32]: p >= 1 is always true, p <= 0 never.
        let upper = Tensor(Float(UInt32.max).nextUp)
        return bits(shape, key: key) .< p * upper
    }

    /// Booleans that are true with probability `p`.
    public static func bernoulli(_ p: Double = 0.5, _ shape: [Int] = [], key: Tensor? = nil) -> Tensor {
        bernoulli(Tensor(Float(p)), shape, key: key)
    }

    /// Integers uniform in `[low, high)`, as MLX: the floor of a float32 uniform sample.
    public static func randInt(
        low: Int, high: Int, _ shape: [Int], dtype: DType = .int32, key: Tensor? = nil
    ) -> Tensor {
        opPrecondition(dtype.isInteger || dtype == .bool, "randInt", "needs an integer dtype, got \(dtype)")
        let lo = Tensor(Int32(truncatingIfNeeded: low)), hi = Tensor(Int32(truncatingIfNeeded: high))
        let u = uniform(low: lo, high: hi, shape, key: key)
        return maximum(floor(u), lo).asType(dtype)
    }

    /// Gumbel samples `-log(-log(uniform))`.
    public static func gumbel(_ shape: [Int], dtype: DType = .float32, key: Tensor? = nil) -> Tensor {
        -log(-log(uniform(shape, dtype: dtype, key: key)))
    }

    /// Laplace samples with location `loc` and scale `scale`, by the inverse CDF.
    public static func laplace(
        _ shape: [Int], dtype: DType = .float32, loc: Double = 0, scale: Double = 1, key: Tensor? = nil
    ) -> Tensor {
        checkFloat("laplace", dtype)
        let u = uniform(low: Tensor(Float(-1).nextUp), high: Tensor(Float(1)), shape, key: key)
        var out = (sign(u) * log1p(Tensor(Float(-1)).asType(dtype) * abs(u))).asType(dtype)
        if scale != 1 { out = Tensor(Float(scale)).asType(dtype) * out }
        if loc != 0 { out = Tensor(Float(loc)).asType(dtype) + out }
        return out
    }

    /// Category indices (uint32) sampled from unnormalised log-probabilities
    /// along `axis`, one per entry of the other axes (the Gumbel-max trick).
    public static func categorical(_ logits: Tensor, axis: Int = -1, key: Tensor? = nil) -> Tensor {
        let a = normalizeAxis(axis, logits.ndim, "categorical")
        var shape = logits.shape
        shape.remove(at: a)
        return categorical(logits, axis: a, shape: shape, key: key)
    }

    /// `count` samples per entry of the other axes: output `[..., count]`.
    public static func categorical(_ logits: Tensor, axis: Int = -1, count: Int, key: Tensor? = nil) -> Tensor {
        let a = normalizeAxis(axis, logits.ndim, "categorical")
        let expanded = logits.expandedDimensions(axis: -1)
        var shape = expanded.shape
        shape.remove(at: a)
        shape[shape.count - 1] = count
        return categorical(expanded, axis: a, shape: shape, key: key)
    }

    /// Samples of `shape`, which must broadcast with the logits' shape without `axis`.
    public static func categorical(_ logits: Tensor, axis: Int, shape: [Int], key: Tensor? = nil) -> Tensor {
        let a = normalizeAxis(axis, logits.ndim, "categorical")
        var reduced = logits.shape
        reduced.remove(at: a)
        opPrecondition(
            broadcastShapes(shape, reduced, "categorical") == shape, "categorical",
            "shape \(shape) does not broadcast with the logits' shape without axis \(a): \(reduced)")
        var gumbelShape = shape
        let offset = a + shape.count - logits.ndim + 1
        gumbelShape.insert(logits.shape[a], at: offset)
        return (gumbel(gumbelShape, key: key) + logits).argMax(axis: offset)
    }

    /// A random permutation of `0 ..< n` (uint32): the order that sorts `n` random words.
    public static func permutation(_ n: Int, key: Tensor? = nil) -> Tensor {
        bits([n], key: key).argSort(axis: 0)
    }

    /// `x` with its entries along `axis` in a random order.
    public static func permutation(_ x: Tensor, axis: Int = 0, key: Tensor? = nil) -> Tensor {
        let a = normalizeAxis(axis, x.ndim, "permutation")
        return x.take(permutation(x.shape[a], key: key), axis: a)
    }
}
