// What `tessera convert` writes, planned before any tensor is computed: each
// output tensor's name, dtype and shape (so model.safetensors' header is
// written first), and how each is made from the (lazy) input tensors when its
// turn comes. Also the bit widths per layer: uniform, embeddings/LM head kept
// wider, or one of mlx-lm's mixed `--quant-predicate` recipes.

import Tessera

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// mlx-lm's `convert --quant-predicate` recipes (mlx_lm/convert.py): low bits for
/// most layers, high bits for the LM head and for `v_proj` and `down_proj` in
/// the first and last eighth of the layers and every third layer between, as
/// llama.cpp's Q4_K_M chooses.
public enum QuantizationRecipe: String, CaseIterable, Sendable {
    case mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6

    public var lowBits: Int {
        switch self {
        case .mixed_2_6: return 2
        case .mixed_3_4, .mixed_3_6: return 3
        case .mixed_4_6: return 4
        }
    }

    public var highBits: Int { self == .mixed_3_4 ? 4 : 6 }
}

/// The bit width of each quantized layer (by its name without `.weight`).
struct LayerBits {
    /// The width of every layer the rules below leave alone (config.json's `bits`).
    let defaultBits: Int
    let embeddingBits: Int?
    let recipe: QuantizationRecipe?
    let layerCount: Int

    init(bits: Int, embeddingBits: Int?, recipe: QuantizationRecipe?, layerCount: Int) {
        defaultBits = bits
        self.embeddingBits = embeddingBits
        self.recipe = recipe
        self.layerCount = layerCount
    }

    func bits(for layer: String) -> Int {
        let parts = layer.split(separator: ".")
        if let embeddingBits, let last = parts.last, last == "embed_tokens" || last == "lm_head" {
            return embeddingBits
        }
        guard let recipe else { return defaultBits }
        // mlx-lm: the layer index is the first numeric part of the path (0 where there is none).
        let index = parts.first { $0.allSatisfy(\.isNumber) }.flatMap { Int($0) } ?? 0
        let n = layerCount
        let moreBits = index < n / 8 || index >= 7 * n / 8 || (index - n / 8) % 3 == 2
        if moreBits && ["v_proj", "v_a_proj", "v_b_proj", "down_proj"].contains(where: { layer.contains($0) }) {
            return recipe.highBits
        }
        return layer.contains("lm_head") ? recipe.highBits : recipe.lowBits
    }
}

/// An input tensor of a conversion: its shape and dtype now, its values when
/// asked: whole (`make`), or a block of rows at a time (`open`), so a big
/// weight quantized from a compressed input (a GGUF's Q8_0 embedding, a
/// quantized folder) is never held as one full float copy.
struct ConversionSource {
    let shape: [Int]
    let dtype: DType
    let make: () throws -> Tensor
    /// Reads what the rows are made from (once) and gives a function from a
    /// range of rows to those rows' values, equal to the same rows of `make()`.
    let open: () throws -> (Range<Int>) -> Tensor
    /// Called once the tensor is converted and written: returns the pages of
    /// the mapped input it was read from to the kernel (see
    /// `Tensor.releaseMappedPages`), so the input does not stay resident to the end.
    let release: () -> Void

    init(
        shape: [Int], dtype: DType, make: @escaping () throws -> Tensor,
        open: (() throws -> (Range<Int>) -> Tensor)? = nil, release: @escaping () -> Void = {}
    ) {
        self.shape = shape
        self.dtype = dtype
        self.make = make
        self.release = release
        if let open {
            self.open = open
        } else {
            self.open = {
                let t = try make()
                return { rows in t[rows] }
            }
        }
    }

    /// A tensor already at hand (lazy or mapped).
    init(_ t: Tensor) {
        self.init(
            shape: t.shape, dtype: t.dtype, make: { t }, open: { { rows in t[rows] } },
            release: { t.releaseMappedPages() })
    }

    var ndim: Int { shape.count }
}

/// The output tensors of a conversion and how each is computed.
final class ConversionPlan {
    private(set) var entries: [Safetensors.PlannedTensor] = []
    /// Output tensors written as they are (or cast to a dense dtype).
    private var direct: [String: ConversionSource] = [:]
    private var denseType: DType?
    /// Quantized layers: the source weight and width by layer name, and which
    /// layer and part each output name is.
    private var toQuantize: [String: (weight: ConversionSource, bits: Int)] = [:]
    private var parts: [String: (layer: String, part: Int)] = [:]
    /// The current layer's (weight, scales, biases), each in blocks of rows,
    /// computed when its first part is asked for.
    private var computed: [String: [[Tensor]?]] = [:]
    /// The inputs of tensors handed to the writer (lazily), released once written.
    private var releaseWhenWritten: [String: () -> Void] = [:]
    /// Rows converted at a time: about this many weights (4 MB of float32), so
    /// the float values and the quantizer's temporaries stay small beside the
    /// output. `TESSERA_CONVERT_BLOCK` sets it (0: whole tensors), to measure
    /// what the blocks save; the written bytes are the same for any value.
    let blockElements: Int = {
        guard let text = getenv("TESSERA_CONVERT_BLOCK").map({ String(cString: $0) }), let n = Int(text), n >= 0 else {
            return 1 << 20
        }
        return n == 0 ? Int.max : n
    }()
    private var groupSize = 0
    /// Per-layer widths, for config.json.
    private(set) var layerBits: [String: Int] = [:]
    /// 2-D float weights left unquantized because their rows do not split into groups.
    private(set) var keptDense = 0

    /// Every floating-point tensor cast to `dtype`, the rest as they are.
    init(dense tensors: [String: ConversionSource], dtype: DType) {
        denseType = dtype
        for (name, t) in tensors {
            direct[name] = t
            entries.append(.init(name: name, dtype: t.dtype.isFloatingPoint ? dtype : t.dtype, shape: t.shape))
        }
    }

    /// Every 2-D float `.weight` whose rows split into groups of `groupSize`
    /// quantized at `bits(layer)`; the rest as they are.
    init(quantizing tensors: [String: ConversionSource], groupSize: Int, bits: (String) -> Int) {
        self.groupSize = groupSize
        let quantizable: Set<DType> = [.float32, .float16, .bfloat16]
        for (name, t) in tensors {
            guard name.hasSuffix(".weight"), t.ndim == 2, quantizable.contains(t.dtype) else {
                direct[name] = t
                entries.append(.init(name: name, dtype: t.dtype, shape: t.shape))
                continue
            }
            guard t.shape[1] % groupSize == 0 else {
                keptDense += 1
                direct[name] = t
                entries.append(.init(name: name, dtype: t.dtype, shape: t.shape))
                continue
            }
            let layer = String(name.dropLast(".weight".count)), width = bits(layer)
            toQuantize[layer] = (t, width)
            layerBits[layer] = width
            let rows = t.shape[0], columns = t.shape[1]
            entries.append(.init(name: name, dtype: .uint32, shape: [rows, columns * width / 32]))
            entries.append(.init(name: layer + ".scales", dtype: t.dtype, shape: [rows, columns / groupSize]))
            entries.append(.init(name: layer + ".biases", dtype: t.dtype, shape: [rows, columns / groupSize]))
            for (i, suffix) in [".weight", ".scales", ".biases"].enumerated() { parts[layer + suffix] = (layer, i) }
        }
    }

    /// config.json's `quantization`: the group size and default bits, and an
    /// entry for each layer of another width (the per-layer form mlx-lm reads).
    func quantizationConfig(groupSize: Int, bits: Int) -> JSONValue {
        var fields: [(String, JSONValue)] = [("group_size", .int(groupSize)), ("bits", .int(bits))]
        for (layer, width) in layerBits.sorted(by: { $0.key < $1.key }) where width != bits {
            fields.append((layer, .object(JSONObject([("group_size", .int(groupSize)), ("bits", .int(width))]))))
        }
        return .object(JSONObject(fields))
    }

    /// The tensor `entry` names, whole or in blocks of rows (quantized layers);
    /// its inputs are released once nothing more needs them.
    func produce(_ entry: Safetensors.PlannedTensor) throws -> [Tensor] {
        if let source = direct.removeValue(forKey: entry.name) {
            releaseWhenWritten[entry.name] = source.release
            let target = denseType
            let cast = { (t: Tensor) -> Tensor in
                guard let target, t.dtype.isFloatingPoint else { return t }
                return t.asType(target)
            }
            guard source.ndim >= 1, source.shape.reduce(1, *) > blockElements else { return [cast(try source.make())] }
            // Lazy blocks of rows, each computed when the writer comes to it.
            let read = try source.open()
            return Self.rowBlocks(source.shape, blockElements: blockElements).map { cast(read($0)) }
        }
        guard let (layer, part) = parts.removeValue(forKey: entry.name) else {
            throw ModelError.missingTensor(entry.name)
        }
        if computed[layer] == nil {
            guard let (weight, bits) = toQuantize.removeValue(forKey: layer) else {
                throw ModelError.missingTensor(layer + ".weight")
            }
            computed[layer] = try quantizeInBlocks(weight, bits: bits)
            weight.release()  // the blocks are computed: the input is no longer read
        }
        guard let pieces = computed[layer]?[part] else { throw ModelError.missingTensor(entry.name) }
        computed[layer]?[part] = nil
        if computed[layer]?.allSatisfy({ $0 == nil }) == true { computed[layer] = nil }
        return pieces
    }

    /// Called by the writer once `entry` is written: the mapped input pages it
    /// was read from are returned to the kernel.
    func written(_ entry: Safetensors.PlannedTensor) {
        releaseWhenWritten.removeValue(forKey: entry.name)?()
    }

    /// `weight` quantized `blockElements` weights' worth of rows at a time:
    /// [weight, scales, biases] blocks. The groups lie within rows, so the blocks
    /// are exactly the rows of quantizing the whole tensor at once.
    private func quantizeInBlocks(_ weight: ConversionSource, bits: Int) throws -> [[Tensor]?] {
        let read = try weight.open()
        var blocks: [[Tensor]] = [[], [], []]
        for rows in Self.rowBlocks(weight.shape, blockElements: blockElements) {
            let (wq, scales, biases) = quantize(read(rows), groupSize: groupSize, bits: bits)
            try checkedEval([wq, scales, biases])
            for (i, t) in [wq, scales, biases].enumerated() { blocks[i].append(t) }
        }
        return blocks
    }

    /// The first axis of `shape` cut into blocks of about `blockElements` elements
    /// (at least one row each; one empty block for no rows).
    static func rowBlocks(_ shape: [Int], blockElements: Int) -> [Range<Int>] {
        let rows = shape.first ?? 1, rowSize = Swift.max(shape.dropFirst().reduce(1, *), 1)
        let step = Swift.max(1, blockElements / rowSize)
        guard rows > 0 else { return [0..<0] }
        return stride(from: 0, to: rows, by: step).map { $0..<Swift.min(rows, $0 + step) }
    }
}
