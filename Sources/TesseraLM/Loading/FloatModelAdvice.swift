// Whether a loaded model keeps its weights unquantized (float32, float16,
// bfloat16), and the one line `generate` prints about it: decoding one token
// reads every weight once, so its speed follows the weights' bytes, and a
// 4-bit copy (`tessera convert`) reads 4-8× fewer of them (on SmolLM2-135M,
// docs/PERFORMANCE.md: Q4_1 decodes ~4× faster than bfloat16, ~5× than float32).

extension LoadedModel {
    /// The weights' float type ("float32", "bfloat16", ...) when the model is
    /// not quantized; nil for a quantized model (MLX quantization in its
    /// config.json, or quantized blocks in its GGUF).
    public var unquantizedWeightType: String? {
        if let gguf {
            // The matrices decide (norms and biases are float32 in every GGUF).
            let matrices = gguf.tensorInfos.filter { $0.shape.count == 2 }
            guard !matrices.isEmpty, matrices.allSatisfy({ [.f32, .f16, .bf16].contains($0.type) }) else { return nil }
            let largest = matrices.max { $0.shape.reduce(1, *) < $1.shape.reduce(1, *) }
            switch largest?.type {
            case .f16: return "float16"
            case .bf16: return "bfloat16"
            default: return "float32"
            }
        }
        guard let folder, let config = try? ModelLoader.readConfig(folder) else { return nil }
        if config["quantization"] != nil || config["quantization_config"] != nil { return nil }
        return config["torch_dtype"]?.string ?? config["dtype"]?.string ?? "float"
    }

    /// One line for stderr when the model is unquantized, saying that a
    /// quantized copy decodes faster and how to make one; nil otherwise.
    public func quantizationAdvice(path: String) -> String? {
        guard let type = unquantizedWeightType else { return nil }
        let factor = type == "float32" ? "8" : type == "float" ? "4-8" : "4"
        return "note: \(path) holds unquantized \(type) weights, all read for every token: a 4-bit copy reads about "
            + "\(factor)× fewer bytes and decodes faster (tessera convert --model \(path) --output DIR)"
    }
}
