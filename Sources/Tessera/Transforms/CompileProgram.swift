// A traced function as a program: a flat list of instructions over numbered
// values (the inputs, then captured constants, then one value per
// instruction), built from the graph between placeholder inputs and the
// outputs, and replayed on new inputs. Compile's passes (CompileSimplify,
// CompileFuse) rewrite programs; a fused kernel keeps the program of its
// region so the transforms can replay it unfused.

/// One node of a program: a primitive over earlier values.
struct Instruction: Sendable {
    var primitive: Primitive
    /// Value numbers of the inputs.
    var inputs: [Int]
    /// The shape and dtype seen when tracing.
    var shape: [Int]
    var dtype: DType
}

struct Program: Sendable {
    var inputShapes: [[Int]]
    var inputDTypes: [DType]
    /// Evaluated tensors the function captured (literals, closed-over arrays).
    var constants: [Tensor]
    var instructions: [Instruction]
    /// Value numbers of the outputs.
    var outputs: [Int]

    var inputCount: Int { inputShapes.count }
    var firstInstruction: Int { inputCount + constants.count }
    var valueCount: Int { firstInstruction + instructions.count }

    /// The instruction that computes `value`, if it is not an input or constant.
    func instruction(_ value: Int) -> Instruction? {
        value >= firstInstruction ? instructions[value - firstInstruction] : nil
    }

    func shape(_ value: Int) -> [Int] {
        if value < inputCount { return inputShapes[value] }
        if value < firstInstruction { return constants[value - inputCount].shape }
        return instructions[value - firstInstruction].shape
    }

    func dtype(_ value: Int) -> DType {
        if value < inputCount { return inputDTypes[value] }
        if value < firstInstruction { return constants[value - inputCount].dtype }
        return instructions[value - firstInstruction].dtype
    }
}

// MARK: - Building from a trace

extension Program {
    /// The graph from `placeholders` to `outputs`. Evaluated nodes are
    /// captured as constants; unevaluated nodes that do not depend on a
    /// placeholder (`ones(...)` inside the function) are instructions too, so
    /// each call recomputes them as the uncompiled function would.
    init(placeholders: [Tensor], outputs: [Tensor]) {
        var number: [ObjectIdentifier: Int] = [:]
        for (i, p) in placeholders.enumerated() { number[ObjectIdentifier(p.node)] = i }
        var constants: [Tensor] = []
        var nodes: [(node: Node, inputs: [Node])] = []
        var visited = Set(number.keys)
        var stack: [(node: Node, expanded: Bool)] = outputs.reversed().map { ($0.node, false) }
        var constantIDs: [ObjectIdentifier] = []
        while let (node, expanded) = stack.popLast() {
            let id = ObjectIdentifier(node)
            if expanded {
                nodes.append((node, node.inputs))
                continue
            }
            guard visited.insert(id).inserted else { continue }
            if node.isEvaluated {
                constantIDs.append(id)
                constants.append(Tensor(node: node))
                continue
            }
            stack.append((node, true))
            for input in node.inputs.reversed() where !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        for (k, id) in constantIDs.enumerated() { number[id] = placeholders.count + k }
        var instructions: [Instruction] = []
        for (node, inputs) in nodes {
            number[ObjectIdentifier(node)] = placeholders.count + constants.count + instructions.count
            instructions.append(
                Instruction(
                    primitive: node.primitive, inputs: inputs.map { number[ObjectIdentifier($0)]! },
                    shape: node.shape, dtype: node.dtype))
        }
        self.init(
            inputShapes: placeholders.map(\.shape), inputDTypes: placeholders.map(\.dtype), constants: constants,
            instructions: instructions, outputs: outputs.map { number[ObjectIdentifier($0.node)]! })
    }
}

// MARK: - Replay

extension Program {
    /// The outputs for `inputs`: new lazy nodes, one per instruction.
    /// `shapeless`: the inputs may have other shapes than when traced; each
    /// shape is inferred again from the primitives (see `inferredShapes`).
    func replay(_ inputs: [Tensor], shapeless: Bool) -> [Tensor] {
        opPrecondition(
            inputs.count == inputCount, "compile",
            "the function was traced with \(inputCount) inputs, got \(inputs.count)")
        for (i, x) in inputs.enumerated() {
            opPrecondition(
                x.dtype == inputDTypes[i], "compile", "input \(i) has dtype \(x.dtype), traced with \(inputDTypes[i])")
        }
        let shapes = shapeless ? inferredShapes(inputs.map(\.shape)) : nil
        var values: [Tensor] = inputs + constants
        values.reserveCapacity(valueCount)
        for (k, ins) in instructions.enumerated() {
            guard let shapes else {
                values.append(
                    Tensor(
                        shape: ins.shape, dtype: ins.dtype, primitive: ins.primitive,
                        inputs: ins.inputs.map { values[$0] }))
                continue
            }
            let shape = shapes[firstInstruction + k]
            var args = ins.inputs.map { values[$0] }
            switch ins.primitive {
            case .binary, .select:
                // Broadcast again from what the broadcasts in front of the op saw.
                for (j, v) in ins.inputs.enumerated() {
                    if let b = instruction(v), case .broadcast = b.primitive { args[j] = values[b.inputs[0]] }
                    args[j] = args[j].broadcast(to: shape)
                }
            default:
                break
            }
            values.append(Tensor(shape: shape, dtype: ins.dtype, primitive: ins.primitive, inputs: args))
        }
        return outputs.map { values[$0] }
    }

    /// Whether `ins` takes one output of a multi-output fused kernel (a
    /// `[1] + shape` slice of its stacked value, made by fusion): its shape
    /// follows the kernel's in shapeless replay.
    func isStackedOutputSlice(_ ins: Instruction) -> Bool {
        guard case .slice(let start, let stride) = ins.primitive, let source = instruction(ins.inputs[0]),
            case .compiled(let kernel) = source.primitive, kernel.outputCount > 1
        else { return false }
        return start.dropFirst().allSatisfy { $0 == 0 } && stride.allSatisfy { $0 == 1 }
            && ins.shape == [1] + source.shape.dropFirst()
    }

    /// Every value's shape for inputs of `inputShapes` (shapeless compile).
    /// Element-wise ops broadcast their inputs again; a broadcast keeps the
    /// traced size only where it stretched a size-1 axis; reductions,
    /// transposes, matmul, sort and scan follow their input. Ops whose output
    /// shape is a traced constant (reshape, slice, concatenate, gather...)
    /// need the traced input shapes and trap otherwise, as MLX's shapeless
    /// compile does.
    func inferredShapes(_ inputShapes: [[Int]]) -> [[Int]] {
        var shapes = inputShapes + constants.map(\.shape)
        shapes.reserveCapacity(valueCount)
        for ins in instructions {
            let ins0 = ins.inputs.first.map { shapes[$0] } ?? []
            func lookThrough(_ v: Int) -> [Int] {
                if let b = instruction(v), case .broadcast = b.primitive { return shapes[b.inputs[0]] }
                return shapes[v]
            }
            func fixed() -> [Int] {
                for v in ins.inputs where shapes[v] != shape(v) {
                    opPrecondition(
                        false, "compile",
                        "shapeless: \(ins.primitive.name) was traced for input shape \(shape(v)), got \(shapes[v]); "
                            + "its output shape cannot follow the input")
                }
                return ins.shape
            }
            let result: [Int]
            switch ins.primitive {
            case .unary, .asType, .copy, .identity, .stopGradient, .sort, .scan, .softmax, .logSoftmax, .rmsNorm,
                .layerNorm, .rope, .inverse, .cholesky:
                result = ins0
            case .binary, .select:
                result = ins.inputs.map(lookThrough).reduce(into: [Int]()) {
                    $0 = broadcastShapes($0, $1, ins.primitive.name)
                }
            case .compiled(let kernel):
                let shape = kernel.program.inferredShapes(ins.inputs.map { shapes[$0] })[kernel.program.outputs[0]]
                result = kernel.outputCount == 1 ? shape : [kernel.outputCount] + shape
            case .broadcast:
                let traced = shape(ins.inputs[0])
                let lead = ins.shape.count - ins0.count
                result = ins.shape.indices.map { a in
                    if a < lead { return ins.shape[a] }
                    return traced[a - lead] == 1 && ins.shape[a] != 1 ? ins.shape[a] : ins0[a - lead]
                }
            case .reduce(_, let axes):
                result = ins0.indices.map { axes.contains($0) ? 1 : ins0[$0] }
            case .argReduce(_, let axis):
                result = ins0.indices.map { $0 == axis ? 1 : ins0[$0] }
            case .transpose(let axes):
                result = axes.map { ins0[$0] }
            case .matmul:
                let b = shapes[ins.inputs[1]]
                result = Array(ins0.dropLast()) + [b[b.count - 1]]
            case .slice where isStackedOutputSlice(ins):
                result = [1] + ins0.dropFirst()
            case .reshape where instruction(ins.inputs[0]).map(isStackedOutputSlice) ?? false:
                result = Array(ins0.dropFirst())
            case .reshape where ins0 == shape(ins.inputs[0]):
                result = ins.shape
            case .constant, .arange, .reshape, .slice, .concatenate, .sliceUpdate, .gather, .scatter, .custom,
                .collective, .host,
                .affineQuantizeParameters, .affineQuantizePack, .affineDequantize, .quantizedMatmul,
                .gatherQuantizedMatmul, .scaledDotProductAttention, .solve, .qr, .svd, .eigh, .randomBits:
                result = fixed()
            }
            shapes.append(result)
        }
        return shapes
    }
}
