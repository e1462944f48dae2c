// Compile's fusion: chains of element-wise instructions (unary, binary,
// `which`, asType, and the broadcasts feeding them) become one `.compiled`
// instruction whose kernel computes the chain in one pass over memory.
//
// A region grows from its last instruction (the sink) toward its inputs. An
// instruction joins when it is element-wise with the sink's shape (so it is
// computed exactly once per output element) and every user of its value is
// already in the region and it is not a program output (so nothing outside
// needs it in memory). A broadcast joins the same way and is read with zero
// strides; what it broadcasts becomes an input of the kernel. Limits on the
// number of ops, kernel inputs and depth keep kernels small enough to compile
// fast and to keep their inputs' rows in cache.

/// How a kernel input is read, decided from the shapes seen when tracing;
/// evaluation checks them again and takes the strided loop when they differ.
enum FusedInputMode: Sendable, Hashable {
    /// The output's shape: read at the output index.
    case full
    /// One element, read once.
    case scalar
    /// Broadcast along some axes: read through strides.
    case broadcast
}

/// A fused element-wise kernel: the program of its region (the inputs of the
/// program are the kernel's inputs) and its generated code, built on first use.
public final class FusedKernel: @unchecked Sendable {
    let program: Program
    let inputModes: [FusedInputMode]
    /// The CPU function, loaded on first evaluation (nil inside: the compiler failed).
    let cpuState = Lock()
    var cpuLoaded: CPUFusedFunction??

    init(program: Program) {
        self.program = program
        let out = program.shape(program.outputs[0])
        inputModes = program.inputShapes.map { s in
            s == out ? .full : (s.reduce(1, *) == 1 ? .scalar : .broadcast)
        }
    }

    /// The region unfused, on `inputs` (of any shapes that broadcast together):
    /// the transforms of a fused node are those of its program.
    func replay(_ inputs: [Tensor]) -> [Tensor] {
        program.replay(inputs, shapeless: true)
    }

    /// The number of element-wise ops fused (broadcasts not counted).
    var opCount: Int {
        program.instructions.filter {
            if case .broadcast = $0.primitive { return false }
            return true
        }.count
    }
}

enum FusionLimits {
    static let maxOps = 48
    static let maxInputs = 12
    static let maxDepth = 24
}

extension Program {
    /// The program with element-wise regions of two ops or more fused.
    func fused() -> Program {
        var users = [[Int]](repeating: [], count: valueCount)
        for (k, ins) in instructions.enumerated() {
            for v in Set(ins.inputs) { users[v].append(firstInstruction + k) }
        }
        let isOutput = Set(outputs)
        func isElementwise(_ v: Int) -> Bool {
            guard let ins = instruction(v) else { return false }
            switch ins.primitive {
            case .unary, .binary, .select, .asType, .identity, .stopGradient:
                return FusedCodegen.supports(ins, inputDTypes: ins.inputs.map(dtype))
            default:
                return false
            }
        }
        func isBroadcast(_ v: Int) -> Bool {
            guard let ins = instruction(v), case .broadcast = ins.primitive else { return false }
            return FusedCodegen.computeType(ins.dtype) != nil
        }

        var owner = [Int?](repeating: nil, count: valueCount)  // the sink of the region a value joined
        var regions: [(sink: Int, members: [Int])] = []
        for sink in (firstInstruction..<valueCount).reversed() where owner[sink] == nil && isElementwise(sink) {
            let shape = self.shape(sink)
            var members: Set<Int> = [sink]
            var depth: [Int: Int] = [sink: 0]
            var external = Set(instruction(sink)!.inputs)
            var queue = instruction(sink)!.inputs
            var ops = 1
            while !queue.isEmpty {
                let v = queue.removeFirst()
                guard !members.contains(v), owner[v] == nil, !isOutput.contains(v),
                    users[v].allSatisfy(members.contains), self.shape(v) == shape
                else { continue }
                let d = users[v].map { depth[$0]! }.max()! + 1
                let ins = instruction(v)
                if isBroadcast(v) {
                    let newInputs = external.subtracting([v]).union(ins!.inputs)
                    guard newInputs.count <= FusionLimits.maxInputs else { continue }
                    external = newInputs
                } else if isElementwise(v) {
                    let newInputs = external.subtracting([v]).union(ins!.inputs)
                    guard ops < FusionLimits.maxOps, d <= FusionLimits.maxDepth,
                        newInputs.count <= FusionLimits.maxInputs
                    else { continue }
                    external = newInputs
                    queue.append(contentsOf: ins!.inputs)
                    ops += 1
                } else {
                    continue
                }
                members.insert(v)
                depth[v] = d
            }
            let computing = members.filter { !isBroadcast($0) }.count
            guard computing >= 2 else { continue }
            for m in members { owner[m] = sink }
            regions.append((sink, members.sorted()))
        }
        if regions.isEmpty { return self }

        // Rebuild: each sink becomes a fused instruction over its region's inputs.
        var kernels: [Int: (FusedKernel, [Int])] = [:]
        for (sink, members) in regions {
            kernels[sink] = region(members: members, sink: sink)
        }
        var result = Program(
            inputShapes: inputShapes, inputDTypes: inputDTypes, constants: constants, instructions: [], outputs: [])
        var renumber = [Int](repeating: -1, count: valueCount)
        for v in 0..<firstInstruction { renumber[v] = v }
        for (k, ins) in instructions.enumerated() {
            let v = firstInstruction + k
            if let owner = owner[v], owner != v { continue }
            var copy = ins
            copy.inputs = ins.inputs.map { renumber[$0] }
            if let (kernel, inputs) = kernels[v] {
                copy = Instruction(
                    primitive: .compiled(kernel), inputs: inputs.map { renumber[$0] }, shape: ins.shape, dtype: ins.dtype)
            }
            renumber[v] = firstInstruction + result.instructions.count
            result.instructions.append(copy)
        }
        result.outputs = outputs.map { renumber[$0] }
        return result
    }

    /// The kernel of one region and the values it reads. Scalar constants are
    /// written into the kernel as literals; other values become its inputs.
    private func region(members: [Int], sink: Int) -> (FusedKernel, [Int]) {
        let memberSet = Set(members)
        var inputs: [Int] = []
        var literals: [Int] = []
        for m in members {
            for v in instruction(m)!.inputs where !memberSet.contains(v) {
                let isLiteral = v >= inputCount && v < firstInstruction && constants[v - inputCount].size == 1
                    && FusedCodegen.computeType(dtype(v)) != nil
                if isLiteral {
                    if !literals.contains(v) { literals.append(v) }
                } else if !inputs.contains(v) {
                    inputs.append(v)
                }
            }
        }
        var local: [Int: Int] = [:]
        for (i, v) in inputs.enumerated() { local[v] = i }
        for (i, v) in literals.enumerated() { local[v] = inputs.count + i }
        var sub: [Instruction] = []
        for m in members {
            var ins = instruction(m)!
            ins.inputs = ins.inputs.map { local[$0]! }
            local[m] = inputs.count + literals.count + sub.count
            sub.append(ins)
        }
        let program = Program(
            inputShapes: inputs.map(shape), inputDTypes: inputs.map(dtype),
            constants: literals.map { constants[$0 - inputCount] }, instructions: sub, outputs: [local[sink]!])
        return (FusedKernel(program: program), inputs)
    }
}
