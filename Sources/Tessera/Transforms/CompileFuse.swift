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
//
// Multi-output regions: an element-wise value of the sink's shape and dtype
// that is also used outside the region (or is a program output, as an
// optimizer's new moments are) joins as an extra output instead of ending
// the region, so the kernel writes it once instead of a second kernel
// reading it back. A kernel of k > 1 outputs has one node of shape
// [k] + shape (the outputs stacked); its users read slices of it (views).
// An external user must not lie upstream of the sink (the kernel would need
// its own output); if regions still depend on each other in a cycle, the
// program is fused again with single-output regions. Shapeless replay infers
// the slices' shapes from the kernel's (Program.isStackedOutputSlice).

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
    /// The GPU functions per device (CUDAFusedLaunch), loaded on first use.
    let gpuState = Lock()
    var gpuFunctions: [String: FusedGPUFunctions?] = [:]

    init(program: Program) {
        self.program = program
        let out = program.shape(program.outputs[0])
        inputModes = program.inputShapes.map { s in
            s == out ? .full : (s.reduce(1, *) == 1 ? .scalar : .broadcast)
        }
    }

    /// How many values the kernel writes (stacked on a new first axis when > 1).
    var outputCount: Int { program.outputs.count }

    /// The region unfused, on `inputs` (of any shapes that broadcast together),
    /// as the fused node's value (the outputs stacked when there are several):
    /// the transforms of a fused node are those of its program.
    func replay(_ inputs: [Tensor]) -> [Tensor] {
        let outputs = program.replay(inputs, shapeless: true)
        return outputs.count == 1 ? outputs : [stacked(outputs)]
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
    static let maxOutputs = 8
}

extension Program {
    /// The program with element-wise regions of two ops or more fused;
    /// `multipleOutputs`: regions may write values used outside them too.
    func fused(multipleOutputs: Bool = true) -> Program {
        if multipleOutputs, let result = fusedRegions(multipleOutputs: true) { return result }
        return fusedRegions(multipleOutputs: false) ?? self
    }

    /// nil when the regions depend on each other in a cycle.
    private func fusedRegions(multipleOutputs: Bool) -> Program? {
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
        var regions: [(sink: Int, members: [Int], extraOutputs: [Int])] = []
        for sink in (firstInstruction..<valueCount).reversed() where owner[sink] == nil && isElementwise(sink) {
            let shape = self.shape(sink)
            var members: Set<Int> = [sink]
            var depth: [Int: Int] = [sink: 0]
            var external = Set(instruction(sink)!.inputs)
            var queue = instruction(sink)!.inputs
            var ops = 1
            var extraOutputs: [Int] = []
            var upstream: Set<Int>?  // the sink's ancestors, computed when first needed
            while !queue.isEmpty {
                let v = queue.removeFirst()
                guard !members.contains(v), owner[v] == nil, self.shape(v) == shape else { continue }
                var isExtraOutput = false
                if isOutput.contains(v) || !users[v].allSatisfy(members.contains) {
                    // Used outside: joins as an extra output, if nothing that
                    // uses it outside feeds the region.
                    guard multipleOutputs, isElementwise(v), dtype(v) == dtype(sink),
                        extraOutputs.count + 2 <= FusionLimits.maxOutputs
                    else { continue }
                    if upstream == nil { upstream = ancestors(of: sink) }
                    guard users[v].allSatisfy({ members.contains($0) || !upstream!.contains($0) }) else { continue }
                    isExtraOutput = true
                }
                let d = users[v].compactMap { depth[$0] }.max()! + 1
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
                if isExtraOutput { extraOutputs.append(v) }
            }
            let computing = members.filter { !isBroadcast($0) }.count
            guard computing >= 2 else { continue }
            for m in members { owner[m] = sink }
            regions.append((sink, members.sorted(), extraOutputs.sorted()))
        }
        if regions.isEmpty { return self }

        // Rebuild: each region becomes a fused instruction over its inputs,
        // then slices for its outputs when it has several. Instructions are
        // emitted inputs first (depth-first from the outputs): a region's
        // extra outputs may have users that came before its sink.
        var fusedAt: [Int: (kernel: FusedKernel, inputs: [Int], outputs: [Int])] = [:]
        for (sink, members, extra) in regions {
            let (kernel, inputs) = region(members: members, outputs: [sink] + extra)
            fusedAt[sink] = (kernel, inputs, [sink] + extra)
        }
        var result = Program(
            inputShapes: inputShapes, inputDTypes: inputDTypes, constants: constants, instructions: [], outputs: [])
        var renumber = [Int](repeating: -1, count: valueCount)
        for v in 0..<firstInstruction { renumber[v] = v }
        // The values each emitted unit needs, and how to emit it.
        func dependencies(_ v: Int) -> [Int] {
            if let o = owner[v] {
                return fusedAt[o]!.inputs
            }
            return instruction(v)!.inputs
        }
        func emit(_ v: Int) {
            if let o = owner[v] {
                let (kernel, inputs, outs) = fusedAt[o]!
                let shape = self.shape(o), dtype = self.dtype(o)
                let fusedValue = firstInstruction + result.instructions.count
                result.instructions.append(
                    Instruction(
                        primitive: .compiled(kernel), inputs: inputs.map { renumber[$0] },
                        shape: outs.count == 1 ? shape : [outs.count] + shape, dtype: dtype))
                if outs.count == 1 {
                    renumber[o] = fusedValue
                    return
                }
                for (i, out) in outs.enumerated() {
                    let sliceStart = [i] + shape.map { _ in 0 }
                    result.instructions.append(
                        Instruction(
                            primitive: .slice(start: sliceStart, stride: sliceStart.map { _ in 1 }),
                            inputs: [fusedValue], shape: [1] + shape, dtype: dtype))
                    result.instructions.append(
                        Instruction(
                            primitive: .reshape, inputs: [firstInstruction + result.instructions.count - 1],
                            shape: shape, dtype: dtype))
                    renumber[out] = firstInstruction + result.instructions.count - 1
                }
                return
            }
            var copy = instruction(v)!
            copy.inputs = copy.inputs.map { renumber[$0] }
            renumber[v] = firstInstruction + result.instructions.count
            result.instructions.append(copy)
        }
        // The unit of a value: its region's sink, or itself.
        func unit(_ v: Int) -> Int { owner[v] ?? v }
        // Iterative depth-first emission; a unit met again while open is a cycle.
        var state = [UInt8](repeating: 0, count: valueCount)  // 0 new, 1 open, 2 done
        var roots = outputs
        // Dead instructions are gone after simplify; keep any others in order.
        roots += (firstInstruction..<valueCount).filter { owner[$0] == nil || owner[$0] == $0 }
        for root in roots {
            let r = unit(root)
            guard r >= firstInstruction, state[r] == 0 else { continue }
            var stack: [(Int, Bool)] = [(r, false)]
            while let (u, expanded) = stack.popLast() {
                if expanded {
                    state[u] = 2
                    emit(u)
                    continue
                }
                if state[u] == 2 { continue }
                if state[u] == 1 { return nil }
                state[u] = 1
                stack.append((u, true))
                for d in dependencies(u).reversed() {
                    let du = unit(d)
                    guard du >= firstInstruction else { continue }
                    if state[du] == 1 { return nil }
                    if state[du] == 0 { stack.append((du, false)) }
                }
            }
        }
        result.outputs = outputs.map { renumber[$0] }
        return result
    }

    /// Every value `v` depends on.
    private func ancestors(of v: Int) -> Set<Int> {
        var seen: Set<Int> = []
        var stack = [v]
        while let x = stack.popLast() {
            guard let ins = instruction(x) else { continue }
            for i in ins.inputs where seen.insert(i).inserted { stack.append(i) }
        }
        return seen
    }

    /// The kernel of one region and the values it reads. Scalar constants are
    /// written into the kernel as literals; other values become its inputs.
    private func region(members: [Int], outputs regionOutputs: [Int]) -> (FusedKernel, [Int]) {
        let memberSet = Set(members)
        var inputs: [Int] = []
        var literals: [Int] = []
        for m in members {
            for v in instruction(m)!.inputs where !memberSet.contains(v) {
                let isLiteral =
                    v >= inputCount && v < firstInstruction && constants[v - inputCount].size == 1
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
            constants: literals.map { constants[$0 - inputCount] }, instructions: sub,
            outputs: regionOutputs.map { local[$0]! })
        return (FusedKernel(program: program), inputs)
    }
}
