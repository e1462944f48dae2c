// A single-stream decode step captured once and replayed: the step of a
// quantized TransformerModel on the CPU as a fixed list of kernel calls per
// layer (norm, stacked q/k/v product, rope, cache write, attention, o_proj,
// residual, norm, stacked gate/up product, silu·up, down_proj, residual),
// with the weights' addresses taken at capture and every intermediate in
// buffers allocated once. A replayed step builds no graph node, counts no
// tensor reference and allocates nothing but the logits it returns (and the
// caches' room every `KVCache.step` positions). What changes from step to
// step is a parameter of the replay, not part of the capture: the token, each
// layer's cache length and rope position, the caches' buffers.
//
// Each call is the kernel the graph's op runs for one token, with the same
// arguments (`_DecodeKernels`), so the replay's logits equal the graph
// path's bit for bit (DecodePlanTests).
//
// The same capture also replays BatchedEngine's row-wise passes over
// several sequences (`step(_:)`: decoding rows and short prompt chunks, up to
// 16 rows): the products run over all rows at once (each row as alone, the
// batched qmv), the attention is the engine's fused kernel (`attendRows`,
// BatchedAttention.swift), norms and element-wise ops run per row, so each
// row's logits equal those of the engine's graph step (`stepOutputs`) bit
// for bit (DecodePlanTests). It builds no graph either, though it keeps
// small per-step arrays (the rows' caches and positions) and the attention
// kernel's buffers. Models, caches or devices the plan
// does not cover (dense or adapter layers, q/k norms, sliding windows,
// soft-caps, sandwich norms, gelu, embedding scale, tensor parallelism,
// rotating or quantized caches, a GPU stream) run through the graph as
// before: `make` returns nil, or `step` does for that step.

import Tessera
import TesseraNN

final class DecodePlan: @unchecked Sendable {
    /// One quantized product: addresses of the stacked weight, its scales
    /// and biases, and the layers' float32 biases by first column.
    private struct Product {
        let wq: UnsafeRawPointer, scales: UnsafeRawPointer, biases: UnsafeRawPointer
        let scaleType: DType
        let n: Int, k: Int, groupSize: Int, bits: Int
        let addends: [(column: Int, bias: UnsafePointer<Float>, count: Int)]
    }

    private struct Layer {
        let inputNorm: UnsafePointer<Float>, postNorm: UnsafePointer<Float>
        let qkv: Product, o: Product, gateUp: Product, down: Product
        let rope: RopeParameters
    }

    private enum Rows {
        case dense(UnsafePointer<Float>)
        case quantized(
            wq: UnsafeRawPointer, scales: UnsafeRawPointer, biases: UnsafeRawPointer, scaleType: DType,
            rowWords: Int, rowGroups: Int, groupSize: Int, bits: Int)
    }

    /// The tensors whose addresses the plan holds, kept alive with it.
    private let kept: [Tensor]
    private let layers: [Layer]
    private let embedding: Rows
    private let finalNorm: UnsafePointer<Float>
    private let head: Product
    /// `Module.generation` at capture: a module written since then (new
    /// weights, an adapter) invalidates the plan.
    private let generation: UInt64
    private let hidden: Int, heads: Int, kvHeads: Int, headDim: Int, intermediate: Int, vocabulary: Int
    private let rotated: Int, traditional: Bool, eps: Float, scale: Float

    /// Buffers, float32, allocated once: h, the normed x, the q/k/v product,
    /// the rotated queries and keys (before a half cache), attention out, a product's out, gate/up, silu·up,
    /// the sigmoid, the embedding's widened scales.
    private let h, x, qkv, q, keys, attended, projected, gateUp, activated, sigmoid,
        widened: UnsafeMutablePointer<Float>
    private let productScratch: UnsafeMutableRawPointer
    private let attentionScratch: UnsafeMutablePointer<Float>
    private var allocations: [UnsafeMutableRawPointer] = []
    /// The buffers of `step(_:)`, allocated at its first call.
    private var rowBuffers: RowBuffers?
    /// The products' distinct (k, group size, bits), for the scratch they need.
    private lazy var productShapes: [(k: Int, groupSize: Int, bits: Int)] = {
        var seen = Set<[Int]>()
        return (layers.flatMap { [$0.qkv, $0.o, $0.gateUp, $0.down] } + [head]).compactMap {
            seen.insert([$0.k, $0.groupSize, $0.bits]).inserted ? ($0.k, $0.groupSize, $0.bits) : nil
        }
    }()

    /// The plan for `model`, or nil when some part of it is outside what the plan covers.
    static func make(_ model: any LanguageModel) -> DecodePlan? {
        guard case .cpu = Stream.current.device, let model = model as? TransformerModel else { return nil }
        return DecodePlan(model)
    }

    private init?(_ model: TransformerModel) {
        let c = model.configuration
        let body = model.model
        guard c.finalSoftcap == nil, c.attentionSoftcap == nil, body.embeddingScale == nil, !c.queryKeyNorms,
            c.activation == .silu, c.normLayout != .sandwich, !body.layers.isEmpty
        else { return nil }
        generation = Module.generation
        var kept: [Tensor] = []
        // A float32 copy of a half-precision norm weight or bias (what the graph's promotion computes, exactly).
        func floats(_ tensor: Tensor, count: Int) -> UnsafePointer<Float>? {
            guard [.float32, .float16, .bfloat16].contains(tensor.dtype), tensor.size == count else { return nil }
            let t = tensor.dtype == .float32 ? tensor : tensor.asType(.float32)
            if !t.isEvaluated { eval(t) }
            guard let p = t._hostAddress() else { return nil }
            kept.append(t)
            return UnsafePointer(p.assumingMemoryBound(to: Float.self))
        }
        // A weight's host address, kept alive with the plan: evaluated here if built lazily, and
        // copied row-contiguous (the same values) if a strided view (a synthetic model's weights).
        func hosted(_ tensor: Tensor) -> UnsafeMutableRawPointer? {
            var t = tensor
            if !t.isEvaluated { eval(t) }
            if t._hostAddress() == nil {
                t = t.contiguous()
                eval(t)
            }
            guard let p = t._hostAddress() else { return nil }
            kept.append(t)
            return p
        }
        func norm(_ n: RMSNorm) -> UnsafePointer<Float>? {
            guard type(of: n) == RMSNorm.self, n.eps == c.rmsNormEps else { return nil }
            return floats(n.weight, count: c.hiddenSize)
        }
        func product(_ stack: ProjectionStack, _ layers: [Linear], n: Int, k: Int) -> Product? {
            guard let found = stack.quantized({ layers }), case let (tensors, groupSize, bits, biases) = found,
                tensors.count == 3,
                tensors[0].dtype == .uint32, tensors[0].shape == [n, k * bits / 32],
                tensors[1].shape == [n, k / groupSize], tensors[2].shape == tensors[1].shape,
                tensors[2].dtype == tensors[1].dtype,
                _DecodeKernels.supportsQuantized(bits: bits, groupSize: groupSize, scales: tensors[1].dtype),
                let wq = hosted(tensors[0]), let s = hosted(tensors[1]), let b = hosted(tensors[2])
            else { return nil }
            var addends: [(column: Int, bias: UnsafePointer<Float>, count: Int)] = []
            for (i, (column, bias)) in biases.enumerated() {
                let end = i + 1 < biases.count ? biases[i + 1].column : n
                guard let p = floats(bias, count: bias.size), column + bias.size <= end else { return nil }
                addends.append((column: column, bias: p, count: bias.size))
            }
            return Product(
                wq: UnsafeRawPointer(wq), scales: UnsafeRawPointer(s), biases: UnsafeRawPointer(b),
                scaleType: tensors[1].dtype, n: n, k: k, groupSize: groupSize, bits: bits, addends: addends)
        }
        let hidden = c.hiddenSize, d = c.headDim, inter = c.intermediateSize
        var layers: [Layer] = []
        for layer in body.layers {
            let a = layer.selfAttention, mlp = layer.mlp
            guard a.parallel == nil, mlp.parallel == nil, a.slidingWindow == nil, a.localHeads == c.headCount,
                a.localKVHeads == c.kvHeadCount, mlp.intermediateSize == inter,
                let inputNorm = norm(layer.inputLayerNorm), let postNorm = norm(layer.postAttentionLayerNorm),
                let qkv = product(a.qkv, a.projections, n: (c.headCount + 2 * c.kvHeadCount) * d, k: hidden),
                let o = product(a.output, [a.oProj], n: hidden, k: c.headCount * d),
                let gateUp = product(mlp.gateUp, mlp.projections, n: 2 * inter, k: hidden),
                let down = product(mlp.down, [mlp.downProj], n: hidden, k: inter)
            else { return nil }
            layers.append(
                Layer(
                    inputNorm: inputNorm, postNorm: postNorm, qkv: qkv, o: o, gateUp: gateUp, down: down, rope: a.rope))
        }
        guard let rope = layers.first?.rope, layers.allSatisfy({ $0.rope == rope }), let finalNorm = norm(body.norm)
        else { return nil }
        let table = body.embedTokens
        var headProduct: Product?
        if let q = table as? QuantizedEmbedding, type(of: q) == QuantizedEmbedding.self {
            let words = hidden * q.bits / 32, groups = hidden / q.groupSize
            guard q.weight.dtype == .uint32, q.weight.shape == [c.vocabularySize, words],
                q.scales.shape == [c.vocabularySize, groups], q.biases.shape == q.scales.shape,
                q.biases.dtype == q.scales.dtype, hidden % q.groupSize == 0,
                let wq = hosted(q.weight), let s = hosted(q.scales), let b = hosted(q.biases)
            else { return nil }
            embedding = .quantized(
                wq: UnsafeRawPointer(wq), scales: UnsafeRawPointer(s), biases: UnsafeRawPointer(b),
                scaleType: q.scales.dtype, rowWords: words, rowGroups: groups, groupSize: q.groupSize, bits: q.bits)
            if model.lmHead == nil {
                guard _DecodeKernels.supportsQuantized(bits: q.bits, groupSize: q.groupSize, scales: q.scales.dtype)
                else { return nil }
                headProduct = Product(
                    wq: UnsafeRawPointer(wq), scales: UnsafeRawPointer(s), biases: UnsafeRawPointer(b),
                    scaleType: q.scales.dtype, n: c.vocabularySize, k: hidden, groupSize: q.groupSize, bits: q.bits,
                    addends: [])
            }
        } else if type(of: table) == TesseraNN.Embedding.self, model.lmHead != nil, table.weight.dtype == .float32,
            let p = floats(table.weight, count: c.vocabularySize * hidden)
        {
            embedding = .dense(p)
        } else {
            return nil
        }
        if let lmHead = model.lmHead {
            guard type(of: lmHead) == QuantizedLinear.self else { return nil }
            headProduct = product(ProjectionStack(), [lmHead], n: c.vocabularySize, k: hidden)
        }
        guard let headProduct else { return nil }
        (self.layers, self.finalNorm, self.head, self.kept) = (layers, finalNorm, headProduct, kept)
        (self.hidden, heads, kvHeads, headDim, intermediate, vocabulary) =
            (hidden, c.headCount, c.kvHeadCount, d, inter, c.vocabularySize)
        (rotated, traditional, eps, scale) = (c.ropeDimensions ?? d, c.ropeTraditional, c.rmsNormEps, c.attentionScale)
        var allocations: [UnsafeMutableRawPointer] = []
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, count) * 4, alignment: 64)
            p.initializeMemory(as: Float.self, repeating: 0, count: Swift.max(1, count))
            allocations.append(p)
            return p.assumingMemoryBound(to: Float.self)
        }
        let qkvWidth = (c.headCount + 2 * c.kvHeadCount) * d
        h = buffer(hidden)
        x = buffer(Swift.max(hidden, inter))
        qkv = buffer(qkvWidth)
        q = buffer(c.headCount * d)
        keys = buffer(c.kvHeadCount * d)
        attended = buffer(c.headCount * d)
        projected = buffer(hidden)
        gateUp = buffer(2 * inter)
        activated = buffer(inter)
        sigmoid = buffer(inter)
        widened = buffer(2 * hidden)
        let products = layers.flatMap { [$0.qkv, $0.o, $0.gateUp, $0.down] } + [headProduct]
        let scratchBytes =
            products.map {
                _DecodeKernels.quantizedScratchBytes(k: $0.k, groupSize: $0.groupSize, bits: $0.bits)
            }.max() ?? 0
        productScratch = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(64, scratchBytes), alignment: 64)
        allocations.append(productScratch)
        attentionScratch = buffer(
            _DecodeKernels.attentionScratch(kvHeads: c.kvHeadCount, groups: c.headCount / c.kvHeadCount, valueDim: d))
        self.allocations = allocations
    }

    deinit {
        for p in allocations { p.deallocate() }
        rowBuffers?.deallocate()
    }

    /// The logits `[vocabulary]` after `token`, with every cache advanced by
    /// one position; nil (nothing changed) when this step must run through the
    /// graph: a module changed since capture, another device is current, or a
    /// cache is not a growing full-precision one.
    func step(token: Int, cache: [KVCache]) -> Tensor? {
        guard Module.generation == generation, case .cpu = Stream.current.device, cache.count == layers.count,
            token >= 0, token < vocabulary
        else { return nil }
        var rooms: [(keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer, capacity: Int, half: Bool)] = []
        rooms.reserveCapacity(cache.count)
        for c in cache {
            guard let room = c.roomForOne(heads: kvHeads, headDim: headDim) else { return nil }
            rooms.append(room)
        }
        guard let logits = Tensor._zerosBuffer([vocabulary], dtype: .float32),
            let out = logits._hostAddress(forWriting: true)?.assumingMemoryBound(to: Float.self)
        else { return nil }
        embed(token)
        let d = headDim, qWidth = heads * d, kvWidth = kvHeads * d
        var angles: _DecodeKernels.RopeAngles?
        var anglesOffset = -1
        for (i, layer) in layers.enumerated() {
            let c = cache[i], room = rooms[i], position = c.length, offset = c.offset
            if angles == nil || anglesOffset != offset {
                let r = layer.rope
                angles = _DecodeKernels.RopeAngles(
                    offset: offset, dimensions: rotated, base: r.base, scale: r.scale, frequencies: r.frequencies)
                anglesOffset = offset
            }
            guard let angles else { return nil }
            _DecodeKernels.rmsNorm(h, weight: layer.inputNorm, eps: eps, into: x, n: hidden)
            run(layer.qkv, x, into: qkv)
            angles.apply(qkv, xStride: d, into: q, outStride: d, heads: heads, headDim: d, traditional: traditional)
            let headStride = room.capacity * d
            if room.half {
                // Rotated keys, then keys and values rounded to half (as the graph's asType(.float16)).
                angles.apply(
                    qkv + qWidth, xStride: d, into: keys, outStride: d, heads: kvHeads, headDim: d,
                    traditional: traditional)
                for kh in 0..<kvHeads {
                    let at = (kh * headStride + position * d) * 2
                    _DecodeKernels.toHalf(keys + kh * d, into: room.keys + at, count: d)
                    _DecodeKernels.toHalf(qkv + qWidth + kvWidth + kh * d, into: room.values + at, count: d)
                }
            } else {
                let k = room.keys.assumingMemoryBound(to: Float.self)
                let v = room.values.assumingMemoryBound(to: Float.self)
                angles.apply(
                    qkv + qWidth, xStride: d, into: k + position * d, outStride: headStride, heads: kvHeads,
                    headDim: d, traditional: traditional)
                for kh in 0..<kvHeads {
                    (v + kh * headStride + position * d).update(from: qkv + qWidth + kvWidth + kh * d, count: d)
                }
            }
            c.advance()
            _DecodeKernels.attention(
                q: q, k: room.keys, v: room.values, half: room.half, headStride: headStride,
                valueHeadStride: headStride, out: attended, queryHeads: heads, kvHeads: kvHeads, length: position + 1,
                d: d, dv: d, scale: scale, scratch: attentionScratch)
            run(layer.o, attended, into: projected)
            _DecodeKernels.add(h, projected, into: h, n: hidden)
            _DecodeKernels.rmsNorm(h, weight: layer.postNorm, eps: eps, into: x, n: hidden)
            run(layer.gateUp, x, into: gateUp)
            _DecodeKernels.siluMultiply(
                gate: gateUp, up: gateUp + intermediate, into: activated, n: intermediate, t: sigmoid)
            run(layer.down, activated, into: projected)
            _DecodeKernels.add(h, projected, into: h, n: hidden)
        }
        _DecodeKernels.rmsNorm(h, weight: finalNorm, eps: eps, into: x, n: hidden)
        run(head, x, into: out)
        return logits
    }

    /// The most rows `step(_:)` takes: the quantized products' row-wise
    /// limit (as BatchedForward's `batchedMaxRows`).
    static let maxRows = Swift.min(_DecodeKernels.maxProductRows, TransformerModel.batchedMaxRows)

    /// Float32 buffers of a step over up to `maxRows` rows, each `[rows, width]`.
    private struct RowBuffers {
        let h, x, qkv, attended, projected, gateUp, activated, sigmoid: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutableRawPointer
        let scratchBytes: Int

        init(hidden: Int, qkv qkvWidth: Int, attended attendedWidth: Int, intermediate: Int, scratchBytes: Int) {
            let rows = DecodePlan.maxRows
            func floats(_ width: Int) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, rows * width) * 4, alignment: 64)
                return p.initializeMemory(as: Float.self, repeating: 0, count: Swift.max(1, rows * width))
            }
            (h, x, qkv, attended, projected) = (
                floats(hidden), floats(hidden), floats(qkvWidth), floats(attendedWidth), floats(hidden)
            )
            (gateUp, activated, sigmoid) = (floats(2 * intermediate), floats(intermediate), floats(intermediate))
            self.scratchBytes = Swift.max(64, scratchBytes)
            scratch = UnsafeMutableRawPointer.allocate(byteCount: self.scratchBytes, alignment: 64)
        }

        func deallocate() {
            for p in [h, x, qkv, attended, projected, gateUp, activated, sigmoid] { p.deallocate() }
            scratch.deallocate()
        }
    }

    /// What a replayed step over segments gives: logits `[n, vocabulary]`
    /// for the last rows of the n segments that want them, in order (nil
    /// when none does).
    struct Replayed {
        let logits: Tensor?
    }

    /// BatchedEngine's row-wise pass replayed: every segment's tokens
    /// (a decoding sequence's next token, or a short prompt chunk) appended
    /// to its caches, at most `maxRows` rows in all, each row computed as the
    /// engine's graph step (`stepOutputs`) computes it. nil (no cache
    /// advanced) where the graph must run the pass: as for
    /// `step(token:cache:)`, more than `maxRows` rows, or a cache that is not
    /// a growing one whose offset is its length.
    func step(_ segments: [StepSegment]) -> Replayed? {
        let counts = segments.map(\.tokens.count)
        let rows = counts.reduce(0, +)
        guard rows > 0, rows <= Self.maxRows, counts.allSatisfy({ $0 > 0 }), Module.generation == generation,
            case .cpu = Stream.current.device,
            segments.allSatisfy({
                $0.cache.count == layers.count && $0.tokens.allSatisfy { $0 >= 0 && $0 < vocabulary }
            }),
            AttentionSplit.parts(queryHeads: heads, kvHeads: kvHeads, keys: 1, keySize: headDim, valueSize: headDim)
                != nil
        else { return nil }
        // Every cache's room first (growing a buffer keeps its positions), so a refusal changes nothing.
        var keyBuffers = [[UnsafeMutableRawPointer]](repeating: [], count: layers.count)
        var valueBuffers = keyBuffers
        var rooms = [[Int]](repeating: [], count: layers.count), starts = rooms
        var halves = [[Bool]](repeating: [], count: layers.count)
        for (segment, n) in zip(segments, counts) {
            for (i, c) in segment.cache.enumerated() {
                guard c.offset == c.length, let room = c.room(for: n, heads: kvHeads, headDim: headDim),
                    c.storage.count == 2, c.storage.allSatisfy({ $0.dim(2) == room.capacity })
                else { return nil }
                keyBuffers[i].append(room.keys)
                valueBuffers[i].append(room.values)
                rooms[i].append(room.capacity)
                starts[i].append(c.length)
                halves[i].append(room.half)
            }
        }
        // The rows whose logits are wanted: each such segment's last.
        var picked: [Int] = []
        var end = 0
        for (segment, n) in zip(segments, counts) {
            end += n
            if segment.wantsLogits { picked.append(end - 1) }
        }
        var logits: Tensor?
        var out: UnsafeMutablePointer<Float>?
        if !picked.isEmpty {
            guard let t = Tensor._unsetBuffer([picked.count, vocabulary], dtype: .float32),
                let p = t._hostAddress(forWriting: true)
            else { return nil }
            (logits, out) = (t, p.assumingMemoryBound(to: Float.self))
        }
        guard let rope = layers.first?.rope else { return nil }
        let d = headDim, qWidth = heads * d, kvWidth = kvHeads * d, qkvWidth = qWidth + 2 * kvWidth
        // The products' scratch for the most rows, at the kernels' current choice (ISA, VNNI).
        let scratchBytes =
            productShapes.map {
                _DecodeKernels.quantizedScratchBytes(
                    k: $0.k, groupSize: $0.groupSize, bits: $0.bits, rows: Self.maxRows)
            }.max() ?? 0
        let b: RowBuffers
        if let made = rowBuffers, made.scratchBytes >= scratchBytes {
            b = made
        } else {
            rowBuffers?.deallocate()
            b = RowBuffers(
                hidden: hidden, qkv: qkvWidth, attended: qWidth, intermediate: intermediate,
                scratchBytes: scratchBytes)
            rowBuffers = b
        }
        for (r, token) in segments.flatMap(\.tokens).enumerated() { embed(token, into: b.h + r * hidden) }
        let last = zip(starts.first ?? [], counts).map { $0 + $1 }.max() ?? 0
        let angles = RopeAngles.table(rope, dimensions: rotated, positions: last)
        let q = AttentionRows(base: b.qkv, row: qkvWidth, head: d, element: 1)
        let k = AttentionRows(base: b.qkv + qWidth, row: qkvWidth, head: d, element: 1)
        let v = AttentionRows(base: b.qkv + qWidth + kvWidth, row: qkvWidth, head: d, element: 1)
        for (i, layer) in layers.enumerated() {
            _DecodeKernels.rmsNormRows(b.h, weight: layer.inputNorm, eps: eps, into: b.x, rows: rows, n: hidden)
            run(layer.qkv, b.x, into: b.qkv, rows: rows, scratch: b.scratch)
            let layout = BatchedAttentionLayout(
                heads: heads, kvHeads: kvHeads, headDim: d, rotated: rotated, traditional: traditional, scale: scale,
                window: nil, counts: counts, starts: starts[i], half: halves[i])
            guard starts[i].count == counts.count, zip(starts[i], counts).allSatisfy({ $0 + $1 <= angles.positions })
            else { return nil }
            do {
                try attendRows(
                    layout, angles, q: q, k: k, v: v, rows: rows, keyBuffers: keyBuffers[i],
                    valueBuffers: valueBuffers[i], rooms: rooms[i], out: b.attended)
            } catch {
                return nil  // no cache advanced yet: the positions written are past their lengths
            }
            run(layer.o, b.attended, into: b.projected, rows: rows, scratch: b.scratch)
            _DecodeKernels.add(b.h, b.projected, into: b.h, n: rows * hidden)
            _DecodeKernels.rmsNormRows(b.h, weight: layer.postNorm, eps: eps, into: b.x, rows: rows, n: hidden)
            run(layer.gateUp, b.x, into: b.gateUp, rows: rows, scratch: b.scratch)
            for r in 0..<rows {
                let gate = b.gateUp + r * 2 * intermediate
                _DecodeKernels.siluMultiply(
                    gate: gate, up: gate + intermediate, into: b.activated + r * intermediate, n: intermediate,
                    t: b.sigmoid)
            }
            run(layer.down, b.activated, into: b.projected, rows: rows, scratch: b.scratch)
            _DecodeKernels.add(b.h, b.projected, into: b.h, n: rows * hidden)
        }
        for (segment, n) in zip(segments, counts) { for c in segment.cache { c.advance(n) } }
        guard let out else { return Replayed(logits: nil) }
        // The wanted rows' final norms side by side (each row normed alone), then the head over them.
        for (j, r) in picked.enumerated() {
            _DecodeKernels.rmsNorm(b.h + r * hidden, weight: finalNorm, eps: eps, into: b.x + j * hidden, n: hidden)
        }
        run(head, b.x, into: out, rows: picked.count, scratch: b.scratch)
        return Replayed(logits: logits)
    }

    /// h = the token's embedding row.
    private func embed(_ token: Int, into h: UnsafeMutablePointer<Float>? = nil) {
        let h = h ?? self.h
        switch embedding {
        case .dense(let table):
            h.update(from: table + token * hidden, count: hidden)
        case let .quantized(wq, scales, biases, scaleType, rowWords, rowGroups, groupSize, bits):
            let scaleBytes = scaleType.size
            _DecodeKernels.dequantizeRow(
                wq: wq + token * rowWords * 4, scales: scales + token * rowGroups * scaleBytes,
                biases: biases + token * rowGroups * scaleBytes, scaleType: scaleType, into: h, count: hidden,
                groupSize: groupSize, bits: bits, widened: widened)
        }
    }

    /// out = input · Wᵀ (+ the layers' biases) for `rows` rows of input.
    private func run(
        _ p: Product, _ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int = 1,
        scratch: UnsafeMutableRawPointer? = nil
    ) {
        _DecodeKernels.quantizedProduct(
            x: input, wq: p.wq, scales: p.scales, biases: p.biases, scaleType: p.scaleType, out: out, n: p.n, k: p.k,
            groupSize: p.groupSize, bits: p.bits, rows: rows, scratch: scratch ?? (rows == 1 ? productScratch : nil))
        for r in 0..<rows {
            let row = out + r * p.n
            for (column, bias, count) in p.addends {
                _DecodeKernels.add(row + column, bias, into: row + column, n: count)
            }
        }
    }
}
