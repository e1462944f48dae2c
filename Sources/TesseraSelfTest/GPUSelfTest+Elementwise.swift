// Selftest cases: element-wise ops, selection, casts, reductions and copies.
// Every kernel of unary/binary/astype/select/reduce/copy.cu is reached: all
// ops for each dtype they have, strided, broadcast and sliced operands, sizes
// that need more blocks than the grid has (grid-stride loops) and reductions
// longer than a block.

import Tessera

extension GPUSelfTest {
    static var elementwiseCases: [Case] {
        let pair: (DType) -> [Tensor] = { dtype in
            [sample([4, 6, 4]).asType(dtype), (abs(sample([6, 4], seed: 3)) + 0.25).asType(dtype)]
        }
        let binary: [(String, (Tensor, Tensor) -> Tensor)] = [
            ("add (broadcast)", { $0 + $1 }), ("multiply", { $0 * $1 }), ("divide", { $0 / $1 }),
            ("maximum", { maximum($0, $1) }), ("less", { $0 .< $1 }), ("which", { which($0 .< $1, $0, $1) }),
            ("concatenate", { a, _ in concatenated([a, a], axis: 1) })
        ]
        let unary: [(String, (Tensor) -> Tensor)] = [
            ("exp", { exp($0) }), ("tanh", { tanh($0) }), ("sigmoid", { sigmoid($0) }),
            ("sum axis 2 (row)", { $0.sum(axes: [2]) }), ("sum axis 0", { $0.sum(axes: [0]) }),
            ("max all", { $0.max() }), ("transposed copy", { $0.transposed().contiguous() })
        ]
        return binary.map { name, f in Case(name: name, dtypes: floatTypes, inputs: pair, op: { f($0[0], $0[1]) }) }
            + unary.map { name, f in Case(name: name, dtypes: floatTypes, inputs: pair, op: { f($0[0]) }) }
            + everyKernelCases + [streamsCase]
    }

    /// Work split over streams of the current device: a producer on stream A,
    /// a consumer of it on stream B, and both read on the default stream and
    /// by the host (the GPU orders them with events).
    static var streamsCase: Case {
        Case(
            name: "streams (producer A, consumer B)", dtypes: [.float32],
            inputs: { dtype in
                [sample([4, 6, 4]).asType(dtype), (abs(sample([6, 4], seed: 3)) + 0.25).asType(dtype)]
            },
            op: { x in
                let a = Stream.new(on: Device.default), b = Stream.new(on: Device.default)
                let produced = withStream(a) { exp(x[0]) * 0.5 }
                let consumed = withStream(b) { (produced * x[1] + 1).sum(axes: [2]) }
                return consumed + produced.max(axes: [2])
            })
    }

    /// Values in about [-2, 2] with NaN, ±infinity and ±0 among them.
    static func specials(_ shape: [Int], seed: Int = 0) -> Tensor {
        let count = shape.reduce(1, *)
        let special: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1, -1, 0.5]
        return Tensor(
            (0..<count).map { i in
                i % 11 == 5 ? special[(i / 11 + seed) % special.count] : Float((i * 7 + seed * 13) % 29) * 0.14 - 2.0
            }, shape: shape)
    }

    /// Integers in about [-40, 40], with zeros, as int32.
    static func integers(_ shape: [Int], seed: Int = 0) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor((0..<count).map { Int32(($0 * 17 + seed * 5) % 81) - 40 }, shape: shape)
    }

    static var everyKernelCases: [Case] {
        var cases: [Case] = []
        let unaryInput: (DType) -> [Tensor] = { [specials([5, 7]).asType($0)] }
        for op in UnaryOp.allCases where CUDAKernelNames.floatUnary.contains(op) {
            cases.append(
                Case(name: "unary \(op.rawValue)", dtypes: floatTypes, inputs: unaryInput, op: { unary(op, $0[0]) }))
        }
        // Strided (transposed) input, and a size needing a grid-stride loop (more than 16 blocks per multiprocessor).
        cases.append(
            Case(
                name: "unary exp (transposed input)", dtypes: floatTypes, inputs: { [sample([6, 5]).asType($0)] },
                op: { exp($0[0].transposed()) }))
        cases.append(
            Case(
                name: "unary sin (70000 elements)", dtypes: [.float32], inputs: { [sample([70000]).asType($0)] },
                op: { sin($0[0]) }))
        for op in [UnaryOp.abs, .negative, .sign, .square, .bitwiseInvert] {
            cases.append(
                Case(
                    name: "unary \(op.rawValue) int32", dtypes: [.int32], inputs: { _ in [integers([5, 7])] },
                    op: { unary(op, $0[0]) }))
        }
        cases.append(
            Case(
                name: "unary logicalNot bool", dtypes: [.bool], inputs: { _ in [sample([5, 7]) .> 0] },
                op: { unary(.logicalNot, $0[0]) }))

        let floatPair: (DType) -> [Tensor] = { [specials([3, 5, 4]).asType($0), specials([5, 1], seed: 3).asType($0)] }
        for op in BinaryOp.allCases where CUDAKernelNames.floatBinary.contains(op) {
            cases.append(
                Case(
                    name: "binary \(op.rawValue) (broadcast)", dtypes: floatTypes, inputs: floatPair,
                    op: { binary(op, $0[0], $0[1]) }))
        }
        let intPair: (DType) -> [Tensor] = { _ in [integers([3, 5, 4]), integers([5, 1], seed: 3)] }
        for op in BinaryOp.allCases where CUDAKernelNames.int32Binary.contains(op) {
            cases.append(
                Case(
                    name: "binary \(op.rawValue) int32 (broadcast)", dtypes: [.int32], inputs: intPair,
                    op: { binary(op, $0[0], $0[1]) }))
        }
        let boolPair: (DType) -> [Tensor] = { _ in [sample([3, 5, 4]) .> 0, sample([5, 1], seed: 3) .> 0] }
        for op in BinaryOp.allCases where CUDAKernelNames.boolBinary.contains(op) {
            cases.append(
                Case(
                    name: "binary \(op.rawValue) bool (broadcast)", dtypes: [.bool], inputs: boolPair,
                    op: { binary(op, $0[0], $0[1]) }))
        }

        // Casts: every pair of float32, float16, bfloat16, int32 and bool.
        let castTypes: [DType] = [.float32, .float16, .bfloat16, .int32, .bool]
        for to in castTypes {
            cases.append(
                Case(
                    name: "asType to \(to)", dtypes: castTypes,
                    inputs: { from in [from == .int32 ? integers([5, 7]) : (specials([5, 7]) * 3).asType(from)] },
                    op: { $0[0].asType(to) }))
        }
        cases.append(
            Case(
                name: "asType uint32 to float32 (random bits)", dtypes: [.uint32],
                inputs: { _ in [Random.bits([3, 700], key: Random.key(5))] }, op: { $0[0].asType(.float32) }))
        cases.append(
            Case(
                name: "which int32 (broadcast)", dtypes: [.int32, .bool],
                inputs: { dtype in
                    [sample([4, 5]) .> 0, integers([4, 5]).asType(dtype), integers([5], seed: 2).asType(dtype)]
                }, op: { which($0[0], $0[1], $0[2]) }))

        // Reductions: rows longer than a block, strided columns, several axes, integers and bools.
        let reduceInput: (DType) -> [Tensor] = { [(sample([3, 700, 2]) * 0.05 + 1).asType($0)] }
        for op in [ReduceOp.sum, .prod, .max, .min] {
            cases.append(
                Case(
                    name: "reduce \(op.rawValue) axis 1 (700 long, strided)", dtypes: floatTypes,
                    inputs: reduceInput, op: { reduce(op, $0[0], axes: [1], keepDims: false) }))
            cases.append(
                Case(
                    name: "reduce \(op.rawValue) axes [0, 2]", dtypes: floatTypes, inputs: reduceInput,
                    op: { reduce(op, $0[0], axes: [0, 2], keepDims: false) }))
            cases.append(
                Case(
                    name: "reduce \(op.rawValue) int32 rows", dtypes: [.int32],
                    inputs: { _ in [integers([4, 300]) % 3 + (op == .prod ? 2 : 0)] },
                    op: { reduce(op, $0[0], axes: [1], keepDims: false) }))
        }
        cases.append(
            Case(
                name: "reduce max with NaN", dtypes: floatTypes, inputs: { [specials([6, 40]).asType($0)] },
                op: { $0[0].max(axes: [1]) }))
        for op in [ReduceOp.all, .any] {
            cases.append(
                Case(
                    name: "reduce \(op.rawValue) bool", dtypes: [.bool],
                    inputs: { _ in [integers([5, 300]) .!= 0] },
                    op: { reduce(op, $0[0], axes: [1], keepDims: false) }))
        }

        // Copies of every element size, slices with steps, sliceUpdate, arange.
        for dtype in [DType.bool, .float16, .float32, .int64] {
            cases.append(
                Case(
                    name: "copy \(dtype.size)-byte (transposed, rank 4)", dtypes: [dtype],
                    inputs: { [integers([2, 3, 4, 5]).asType($0)] },
                    op: { $0[0].transposed(axes: [3, 1, 0, 2]).contiguous() }))
        }
        cases.append(
            Case(
                name: "slice with steps, then exp", dtypes: floatTypes, inputs: { [sample([9, 8]).asType($0)] },
                op: { exp($0[0].slice(start: [1, 0], end: [9, 8], stride: [2, 3])) }))
        cases.append(
            Case(
                name: "sliceUpdate", dtypes: floatTypes,
                inputs: { [sample([6, 8]).asType($0), sample([3, 4], seed: 5).asType($0)] },
                op: { sliceUpdate($0[0], $0[1], start: [1, 2], stride: [2, 1]) }))
        cases.append(
            Case(
                name: "arange float32", dtypes: [.float32], inputs: { _ in [] },
                op: { _ in Tensor.arange(-3.0, 40.0, step: 0.75) }))
        cases.append(
            Case(
                name: "arange int32", dtypes: [.int32], inputs: { _ in [] },
                op: { _ in Tensor.arange(-7, 300, step: 3) }))
        return cases
    }
}
