// Selftest cases: random bits, gather/scatter, sort, scan and linear algebra
// (kernels: Backends/CUDA's CUDARandom, CUDAIndexing, CUDASort, CUDAScan, CUDALinalg).
//
// Where the GPU's output may legitimately differ from the CPU's, the case
// compares invariants computed on the CPU from each device's result:
// - partition/argPartition: the kth element, and the sorted elements before
//   and after it (equal exactly when the partition property holds);
// - svd: S, U[:, :k] diag(S) Vᵀ[:k] (the input), UᵀU and VᵀV (identities);
// - eigh: the eigenvalues, V diag(w) Vᵀ (the input) and VᵀV.
// Everything else is compared element for element.

import Tessera

extension GPUSelfTest {
    static var indexingCases: [Case] { randomCases + gatherScatterCases + sortCases + scanCases + linalgCases }

    /// Runs `body` on the CPU (the canonical forms of results that may differ by device).
    private static func onCPU(_ body: () -> Tensor) -> Tensor { withDevice(.cpu, body) }

    /// A float tensor with NaN, ±0, ±inf and ties, shape [2, 9].
    private static func specials(_ dtype: DType) -> Tensor {
        let values: [Float] = [
            3, .nan, -0.0, 0, 1, -.infinity, 1, .infinity, -2,
            0, -0.0, .nan, 5, 5, -1, 2, .nan, -3
        ]
        return Tensor(values, shape: [2, 9]).asType(dtype)
    }

    // MARK: random

    static var randomCases: [Case] {
        let key: (DType) -> [Tensor] = { _ in [Random.key(42)] }
        // Three keys of a [2, 3] array transposed: a non-contiguous key batch.
        let keys: (DType) -> [Tensor] = { _ in
            [Tensor([UInt32](arrayLiteral: 1, 2, 3, 4, 5, 0xdead_beef), shape: [2, 3]).transposed()]
        }
        func bits(_ shape: [Int], _ dtype: DType) -> (Tensor) -> Tensor {
            { Tensor(shape: Array($0.shape.dropLast()) + shape, dtype: dtype, primitive: .randomBits, inputs: [$0]) }
        }
        return [
            Case(
                name: "random bits [3, 5] (odd word count)", dtypes: [.uint32], inputs: key,
                op: { bits([3, 5], .uint32)($0[0]) }),
            Case(name: "random bits [4, 6]", dtypes: [.uint16], inputs: key, op: { bits([4, 6], .uint16)($0[0]) }),
            Case(
                name: "random bits [7] (partial word)", dtypes: [.uint8], inputs: key, op: { bits([7], .uint8)($0[0]) }),
            Case(
                name: "random bits, 3 strided keys", dtypes: [.uint32, .uint8], inputs: keys,
                op: {
                    bits([5], .uint32)($0[0])
                }),
            Case(
                name: "random bits, 3 strided keys [3, 2]", dtypes: [.uint8], inputs: keys,
                op: { bits([3, 2], .uint8)($0[0]) }),
            Case(
                name: "random uniform [64]", dtypes: [.float32], inputs: key, op: { Random.uniform([64], key: $0[0]) }),
            Case(name: "random split", dtypes: [.uint32], inputs: key, op: { Random.split($0[0], count: 5) })
        ]
    }

    // MARK: gather / scatter

    static var gatherScatterCases: [Case] {
        let x: (DType) -> [Tensor] = { dtype in [sample([4, 6, 5]).asType(dtype)] }
        let withIndices: (DType) -> [Tensor] = { dtype in
            [sample([4, 6, 5]).asType(dtype), Tensor([Int32](arrayLiteral: 2, -1, 0, 5, 5, 1))]
        }
        let allTypes: [DType] = floatTypes + [.int32, .bool]
        let gathers: [(String, (DType) -> [Tensor], ([Tensor]) -> Tensor)] = [
            ("take axis 1 (negative, repeated int32 indices)", withIndices, { $0[0].take($0[1], axis: 1) }),
            (
                "take axis 0, 2-D int64 indices", x,
                { $0[0].take(Tensor([Int64](arrayLiteral: 3, 0, -4, 2), shape: [2, 2]), axis: 0) }
            ),
            ("take flattened, uint32 indices", x, { $0[0].take(Tensor([UInt32](arrayLiteral: 119, 0, 57, 7))) }),
            (
                "take axis 2 of a transposed input", withIndices,
                { $0[0].transposed(2, 0, 1).take($0[1].asType(.int16), axis: 2) }
            ),
            ("takeAlongAxis (argSort indices)", x, { $0[0].takeAlongAxis($0[0].argSort(axis: 1), axis: 1) }),
            (
                "dynamicSlice (clamped start)", x,
                {
                    dynamicSlice($0[0], start: Tensor([Int32](arrayLiteral: 3, 9)), axes: [0, 1], sizes: [2, 4])
                }
            ),
            ("basic index x[idx, :, 1]", withIndices, { $0[0][$0[1].asType(.uint8), .slice(), .index(1)] })
        ]
        var cases = gathers.map { name, inputs, op in Case(name: name, dtypes: allTypes, inputs: inputs, op: op) }

        // Updates with duplicate targets: combining order differs on the GPU (atomics),
        // the results may not (set: the last update wins on both).
        let updates: (DType) -> [Tensor] = { dtype in
            [sample([4, 6, 5]).asType(dtype), (sample([4, 3, 5], seed: 5) * 0.5 + 0.75).asType(dtype)]
        }
        let dup = Tensor([Int32](arrayLiteral: 1, 4, 1))
        let scatters: [(String, [DType], ([Tensor]) -> Tensor)] = [
            ("at[:, dup].add", allTypes, { $0[0].at[.slice(), dup].add($0[1]) }),
            ("at[:, dup].multiply", floatTypes + [.int32, .bool], { $0[0].at[.slice(), dup].multiply($0[1]) }),
            ("at[:, dup].maximum", allTypes, { $0[0].at[.slice(), dup].maximum($0[1]) }),
            ("at[:, dup].minimum", allTypes, { $0[0].at[.slice(), dup].minimum($0[1]) }),
            (
                "x[:, dup] = (last wins)", allTypes,
                { a in
                    var y = a[0]
                    y[.slice(), dup] = a[1]
                    return y
                }
            ),
            ("putAlongAxis", allTypes, { $0[0].putAlongAxis($0[0].argSort(axis: 2), values: $0[0], axis: 2) }),
            (
                "at[dup].add into a transposed input", floatTypes + [.int32],
                { $0[0].transposed(1, 0, 2).at[dup].add($0[1].transposed(1, 0, 2)) }
            ),
            (
                "dynamicSliceUpdate (clamped start)", allTypes,
                {
                    dynamicSliceUpdate($0[0], $0[1], start: Tensor([Int32](arrayLiteral: 1, 5, 0)), axes: [0, 1, 2])
                }
            )
        ]
        cases += scatters.map { name, dtypes, op in Case(name: name, dtypes: dtypes, inputs: updates, op: op) }
        cases += [
            ("at[:, dup].add", { (a: [Tensor]) in a[0].at[.slice(), dup].add(a[1]) }),
            ("at[:, dup].multiply", { $0[0].at[.slice(), dup].multiply($0[1]) }),
            ("at[:, dup].maximum", { $0[0].at[.slice(), dup].maximum($0[1]) }),
            ("at[:, dup].minimum", { $0[0].at[.slice(), dup].minimum($0[1]) })
        ].map { name, op in
            Case(name: name + " (64-bit)", dtypes: [.float64, .int64], inputs: updates, op: op)
        }
        // Many updates onto few targets (atomic contention), float32 sums within float tolerance.
        cases.append(
            Case(
                name: "at[index].add, 4096 updates onto 7 places", dtypes: [.float32, .int32],
                inputs: { dtype in
                    [
                        Tensor.zeros([7], dtype: dtype), Tensor((0..<4096).map { Int32(($0 * 5) % 7) }),
                        sample([4096]).asType(dtype)
                    ]
                }, op: { $0[0].at[$0[1]].add($0[2]) }, tolerance: { _ in 1e-4 }))
        return cases
    }

    // MARK: sort

    /// The canonical form of a partition along the last axis: sorted elements
    /// before kth, the kth, sorted elements after (computed on the CPU).
    private static func canonicalPartition(_ values: Tensor, kth: Int) -> Tensor {
        onCPU {
            let n = values.dim(-1)
            let before = values[.ellipsis, .slice(end: kth)].sorted(axis: -1)
            let after = values[.ellipsis, .slice(start: kth + 1)].sorted(axis: -1)
            return concatenated([before, values[.ellipsis, .slice(start: kth, end: kth + 1)], after], axis: -1)
                .reshaped(Array(values.shape.dropLast()) + [n])
        }
    }

    static var sortCases: [Case] {
        let x: (DType) -> [Tensor] = { dtype in [sample([4, 6, 9]).asType(dtype)] }
        let long: (DType) -> [Tensor] = { dtype in
            let values: [Float] = (0..<15000).map { i -> Float in Float((i * 7919) % 5003) * 0.01 - 25 }
            return [Tensor(values, shape: [3, 5000]).asType(dtype)]
        }
        let ties: (DType) -> [Tensor] = { dtype in [sample([2, 4500]).asType(dtype)] }
        let types: [DType] = floatTypes + [.int32, .uint32, .int16, .uint8, .bool]
        let specialTypes = floatTypes
        return [
            Case(name: "sort last axis", dtypes: types, inputs: x, op: { $0[0].sorted(axis: -1) }),
            Case(name: "sort axis 1 (strided rows)", dtypes: types, inputs: x, op: { $0[0].sorted(axis: 1) }),
            Case(
                name: "sort of a transposed input", dtypes: types, inputs: x,
                op: { $0[0].transposed(2, 0, 1).sorted(axis: -1) }),
            Case(name: "argSort (ties keep order)", dtypes: types, inputs: x, op: { $0[0].argSort(axis: -1) }),
            Case(name: "argSort axis 0", dtypes: types, inputs: x, op: { $0[0].argSort(axis: 0) }),
            Case(
                name: "sort NaN/±0/±inf", dtypes: specialTypes, inputs: { [specials($0)] },
                op: { $0[0].sorted(axis: -1) }),
            Case(
                name: "argSort NaN/±0/±inf", dtypes: specialTypes, inputs: { [specials($0)] },
                op: { $0[0].argSort(axis: -1) }),
            Case(
                name: "sort [3, 5000] (merge passes)", dtypes: [.float32, .bfloat16, .int32], inputs: long,
                op: { $0[0].sorted(axis: -1) }),
            Case(
                name: "argSort [2, 4500] with ties (merge passes)", dtypes: [.float32, .float16], inputs: ties,
                op: { $0[0].argSort(axis: -1) }),
            Case(
                name: "argSort [4500, 2] axis 0 (merge, strided)", dtypes: [.float32],
                inputs: { [sample([4500, 2]).asType($0)] },
                op: { $0[0].argSort(axis: 0) }),
            Case(
                name: "argSort [70000, 3] (more rows than a grid's y)", dtypes: [.int32],
                inputs: { [sample([70000, 3]).asType($0)] }, op: { $0[0].argSort(axis: -1) }),
            Case(name: "sort flattened", dtypes: [.float32, .int32], inputs: x, op: { $0[0].sorted(axis: nil) }),
            Case(
                name: "partition kth 3 (property)", dtypes: types, inputs: x,
                op: {
                    canonicalPartition($0[0].partitioned(kth: 3, axis: -1), kth: 3)
                }),
            Case(
                name: "argPartition kth 5 (property of the values taken)", dtypes: floatTypes + [.int32], inputs: x,
                op: { a in
                    let i = a[0].argPartition(kth: 5, axis: -1)
                    return canonicalPartition(onCPU { a[0].takeAlongAxis(i, axis: -1) }, kth: 5)
                }),
            Case(
                name: "argPartition indices are a permutation", dtypes: [.float32], inputs: x,
                op: { a in
                    let i = a[0].argPartition(kth: 5, axis: -1)
                    return onCPU { i.sorted(axis: -1) }
                }),
            Case(
                name: "topK 4", dtypes: floatTypes + [.int32], inputs: x, op: { $0[0].topK(4).values.sorted(axis: -1) })
        ]
    }

    // MARK: scan

    static var scanCases: [Case] {
        let x: (DType) -> [Tensor] = { dtype in [sample([4, 6, 9]).asType(dtype)] }
        let small: (DType) -> [Tensor] = { dtype in [(sample([4, 6, 9], seed: 2) * 0.3 + 1).asType(dtype)] }
        // Integers in [-6, 6] (not all zero after the cast), floats in about [-0.02, 0.02].
        let long: (DType) -> [Tensor] = { dtype in
            [(sample([3, 1000], seed: 1) * (dtype.isFloatingPoint ? 0.01 : 3)).asType(dtype)]
        }
        let types: [DType] = floatTypes + [.int32]
        var cases: [Case] = []
        let variants: [(String, (Tensor) -> Tensor)] = [
            ("cumsum axis 2", { $0.cumsum(axis: 2) }),
            ("cumsum axis 0 reverse", { $0.cumsum(axis: 0, reverse: true) }),
            ("cumsum axis 1 exclusive", { $0.cumsum(axis: 1, inclusive: false) }),
            ("cumsum flattened reverse exclusive", { $0.cumsum(reverse: true, inclusive: false) }),
            ("cummax axis 2", { $0.cummax(axis: 2) }),
            ("cummin axis 1 reverse exclusive", { $0.cummin(axis: 1, reverse: true, inclusive: false) }),
            ("cumsum of a transposed input", { $0.transposed(2, 0, 1).cumsum(axis: 1) })
        ]
        cases += variants.map { name, f in Case(name: name, dtypes: types, inputs: x, op: { f($0[0]) }) }
        cases += variants.prefix(5).map { name, f in
            Case(name: name + " (64-bit)", dtypes: [.float64, .int64], inputs: x, op: { f($0[0]) })
        }
        cases.append(Case(name: "cumprod axis 2", dtypes: types, inputs: small, op: { $0[0].cumprod(axis: 2) }))
        cases.append(
            Case(
                name: "cumprod axis 1 reverse exclusive", dtypes: floatTypes, inputs: small,
                op: {
                    $0[0].cumprod(axis: 1, reverse: true, inclusive: false)
                }))
        let blockVariants: [(String, (Tensor) -> Tensor)] = [
            ("cumsum [3, 1000] (block per row)", { $0.cumsum(axis: 1) }),
            ("cumsum [3, 1000] reverse exclusive (block)", { $0.cumsum(axis: 1, reverse: true, inclusive: false) }),
            ("cummax [3, 1000] exclusive (block)", { $0.cummax(axis: 1, inclusive: false) }),
            ("cummin [1000, 3] axis 0 reverse (block, strided)", { $0.transposed().cummin(axis: 0, reverse: true) })
        ]
        cases += blockVariants.map { name, f in
            Case(name: name, dtypes: types + [.float64, .int64], inputs: long, op: { f($0[0]) })
        }
        cases.append(
            Case(name: "cummax NaN", dtypes: floatTypes, inputs: { [specials($0)] }, op: { $0[0].cummax(axis: 1) }))
        cases.append(
            Case(
                name: "cummin bool", dtypes: [.bool], inputs: { _ in [sample([4, 9]) .> 0] },
                op: {
                    $0[0].cummin(axis: 1)
                }))
        return cases
    }

    // MARK: linear algebra

    static var linalgCases: [Case] {
        /// Well-conditioned square matrices: sample + n I, batch [2, 3] of n × n.
        func square(_ n: Int, batch: [Int] = [2, 3]) -> (DType) -> [Tensor] {
            { dtype in [(sample(batch + [n, n], seed: n) + Tensor.eye(n) * Float(n)).asType(dtype)] }
        }
        func spd(_ n: Int) -> (DType) -> [Tensor] {
            { dtype in
                let b = sample([3, n, n], seed: n + 1) * 0.5
                return [(matmul(b, b.swappedAxes(-1, -2)) + Tensor.eye(n) * Float(n)).asType(dtype)]
            }
        }
        let linalgTypes: [DType] = [.float32]
        // float32 results of float64 work: the GPU's algorithms differ from LAPACK's, so allow a few ulps.
        let tol: (DType) -> Double = { _ in 2e-5 }
        func c(_ name: String, _ inputs: @escaping (DType) -> [Tensor], _ op: @escaping ([Tensor]) -> Tensor) -> Case {
            Case(name: name, dtypes: linalgTypes, inputs: inputs, op: op, tolerance: tol)
        }
        func identityError(_ q: Tensor) -> Tensor {  // QᵀQ (should be I)
            matmul(q.swappedAxes(-1, -2), q)
        }
        func svdInvariants(_ a: Tensor) -> Tensor {
            let (u, s, vt) = Linalg.svd(a)
            return onCPU {
                let m = a.dim(-2), n = a.dim(-1), k = min(m, n)
                let uk = u[.ellipsis, .slice(end: k)], vk = vt[.ellipsis, .slice(end: k), .slice()]
                let rebuilt = matmul(uk * s.expandedDimensions(axis: -2), vk)
                return concatenated([
                    s.flattened(), rebuilt.flattened(), identityError(u).flattened(),
                    identityError(vt.swappedAxes(-1, -2)).flattened()
                ])
            }
        }
        func eighInvariants(_ a: Tensor, upper: Bool) -> Tensor {
            let (w, v) = Linalg.eigh(a, upper: upper)
            return onCPU {
                let rebuilt = matmul(v * w.expandedDimensions(axis: -2), v.swappedAxes(-1, -2))
                return concatenated([w.flattened(), rebuilt.flattened(), identityError(v).flattened()])
            }
        }
        let symmetric: (DType) -> [Tensor] = { dtype in
            let b = sample([2, 7, 7], seed: 3)
            return [(b + b.swappedAxes(-1, -2)).asType(dtype)]
        }
        return [
            c("inv 1×1, 5×5, batch", square(5), { Linalg.inv($0[0]) }),
            c("inv 1×1", square(1, batch: [4]), { Linalg.inv($0[0]) }),
            c("inv 32×32 (the GPU limit)", square(32, batch: [2]), { Linalg.inv($0[0]) }),
            c("inv of a transposed input", square(6), { Linalg.inv($0[0].swappedAxes(-1, -2)) }),
            c(
                "inv needing pivots",
                { _ in [Tensor([Float](arrayLiteral: 0, 2, 1, 1, 0, 3, 4, 1, 0), shape: [3, 3])] },
                { Linalg.inv($0[0]) }),
            c(
                "solve 6×6, 4 right-hand sides", { d in square(6)(d) + [sample([2, 3, 6, 4], seed: 9).asType(d)] },
                { Linalg.solve($0[0], $0[1]) }),
            c(
                "solve, one vector, broadcast batch",
                { d in square(5, batch: [3])(d) + [sample([5], seed: 4).asType(d)] },
                { Linalg.solve($0[0], $0[1]) }),
            c("cholesky lower 8×8", spd(8), { Linalg.cholesky($0[0]) }),
            c("cholesky upper 8×8", spd(8), { Linalg.cholesky($0[0], upper: true) }),
            c("cholesky lower 32×32", spd(32), { Linalg.cholesky($0[0]) }),
            c("qr Q 7×5", { d in [sample([2, 7, 5], seed: 6).asType(d)] }, { Linalg.qr($0[0]).q }),
            c("qr R 7×5", { d in [sample([2, 7, 5], seed: 6).asType(d)] }, { Linalg.qr($0[0]).r }),
            c(
                "qr Q, R 4×6", { d in [sample([4, 6], seed: 7).asType(d)] },
                { a in
                    let (q, r) = Linalg.qr(a[0])
                    return concatenated([q.flattened(), r.flattened()])
                }),
            c("qr R of a transposed 6×6", square(6), { Linalg.qr($0[0].swappedAxes(-1, -2)).r }),
            c("svd S 9×6", { d in [sample([3, 9, 6], seed: 8).asType(d)] }, { Linalg.svd($0[0]).s }),
            c("svd invariants 9×6", { d in [sample([3, 9, 6], seed: 8).asType(d)] }, { svdInvariants($0[0]) }),
            c("svd invariants 5×8", { d in [sample([2, 5, 8], seed: 2).asType(d)] }, { svdInvariants($0[0]) }),
            c(
                "svd invariants 6×6 rank 3",
                { d in
                    let b = sample([6, 3], seed: 1)
                    return [matmul(b, b.transposed()).asType(d)]
                }, { svdInvariants($0[0]) }),
            c("eigh invariants 7×7 lower", symmetric, { eighInvariants($0[0], upper: false) }),
            c(
                "eigh invariants 7×7 upper (non-symmetric input)", { d in [sample([2, 7, 7], seed: 5).asType(d)] },
                { eighInvariants($0[0], upper: true) }),
            c(
                "eigh values 20×20",
                { d in
                    let b = sample([20, 20], seed: 11)
                    return [(b + b.transposed()).asType(d)]
                }, { Linalg.eigh($0[0]).eigenvalues })
        ]
    }
}
