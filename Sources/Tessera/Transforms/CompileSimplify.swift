// Compile's simplification of a traced program, before fusion: equal small
// constants become one (every Swift literal in `x * 2 + 2` is its own scalar
// constant), no-ops disappear (identity, asType to the same dtype, reshape or
// broadcast to the same shape, identity transposes and full slices), and
// instructions with the same primitive, inputs, shape and dtype are computed
// once (common subexpressions). Dead instructions are dropped at the end.

extension Program {
    func simplified() -> Program {
        var alias = Array(0..<valueCount)

        // Equal constants of up to 16 elements.
        var seenConstants: [String: Int] = [:]
        for (k, c) in constants.enumerated() where c.size <= 16 {
            guard let key = constantKey(c) else { continue }
            let value = inputCount + k
            if let first = seenConstants[key] { alias[value] = first } else { seenConstants[key] = value }
        }

        var seen: [String: Int] = [:]
        for (k, ins) in instructions.enumerated() {
            let value = firstInstruction + k
            let inputs = ins.inputs.map { alias[$0] }
            if let x = inputs.first, isNoOp(ins, input: x) {
                alias[value] = x
                continue
            }
            guard let key = primitiveKey(ins.primitive) else { continue }
            let full = "\(key)|\(inputs)|\(ins.shape)|\(ins.dtype)"
            if let first = seen[full] { alias[value] = first } else { seen[full] = value }
        }
        return rebuilt(alias: alias)
    }

    private func isNoOp(_ ins: Instruction, input x: Int) -> Bool {
        let same = shape(x) == ins.shape && dtype(x) == ins.dtype
        switch ins.primitive {
        case .identity, .asType, .reshape, .broadcast:
            return same
        case .transpose(let axes):
            return same && axes == Array(axes.indices)
        case .slice(let start, let stride):
            return same && start.allSatisfy { $0 == 0 } && stride.allSatisfy { $0 == 1 }
        default:
            return false
        }
    }

    /// The program with each value replaced by `alias[value]` (which comes
    /// before it), keeping only what the outputs need.
    func rebuilt(alias: [Int]) -> Program {
        func resolve(_ v: Int) -> Int {
            var v = v
            while alias[v] != v { v = alias[v] }
            return v
        }
        var live = [Bool](repeating: false, count: valueCount)
        for o in outputs { live[resolve(o)] = true }
        for k in instructions.indices.reversed() where live[firstInstruction + k] {
            for v in instructions[k].inputs { live[resolve(v)] = true }
        }
        var renumber = [Int](repeating: -1, count: valueCount)
        for i in 0..<inputCount { renumber[i] = i }
        var newConstants: [Tensor] = []
        for (k, c) in constants.enumerated() where live[inputCount + k] {
            renumber[inputCount + k] = inputCount + newConstants.count
            newConstants.append(c)
        }
        var newInstructions: [Instruction] = []
        for (k, ins) in instructions.enumerated() where live[firstInstruction + k] {
            var copy = ins
            copy.inputs = ins.inputs.map { renumber[resolve($0)] }
            renumber[firstInstruction + k] = inputCount + newConstants.count + newInstructions.count
            newInstructions.append(copy)
        }
        return Program(
            inputShapes: inputShapes, inputDTypes: inputDTypes, constants: newConstants,
            instructions: newInstructions, outputs: outputs.map { renumber[resolve($0)] })
    }
}

/// A key equal for primitives that compute the same thing from the same
/// inputs; nil for those never merged (custom functions and fused kernels
/// carry closures and programs that are compared by identity).
private func primitiveKey(_ p: Primitive) -> String? {
    switch p {
    case .custom, .compiled, .collective, .host: return nil  // collectives talk to other ranks: never merged
    default: return String(describing: p)
    }
}

/// The dtype, shape and values of a small evaluated constant.
private func constantKey(_ c: Tensor) -> String? {
    guard c.isEvaluated, c.dtype != .complex64 else { return nil }
    struct Values: ElementVisitor {
        let tensor: Tensor
        func visit<T: TensorElement>(_: T.Type) -> String { "\(tensor.toArray(T.self).map(\.wide))" }
    }
    guard let values = try? dispatchElement(c.dtype, Values(tensor: c)) else { return nil }
    return "\(c.dtype)|\(c.shape)|\(values)"
}
