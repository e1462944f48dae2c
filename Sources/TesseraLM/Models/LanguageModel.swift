// The contract every architecture implements, and the registry that picks
// one by `model_type` (as mlx-lm does).

import Tessera

/// Errors loading or running a language model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unknownModelType(String)
    case missingTensor(String)
    case tensorShape(name: String, expected: [Int], got: [Int])
    case invalidConfiguration(String)
    case promptTooLong(tokens: Int, context: Int)
    case modelNotFound(String)

    public var description: String {
        switch self {
        case .unknownModelType(let t):
            return "unknown model type \"\(t)\" (supported: \(ModelRegistry.supportedTypes.joined(separator: ", ")))"
        case .missingTensor(let name): return "the model file has no tensor \(name)"
        case let .tensorShape(name, expected, got): return "tensor \(name) has shape \(got), expected \(expected)"
        case .invalidConfiguration(let why): return "invalid model configuration: \(why)"
        case let .promptTooLong(tokens, context):
            return "the prompt has \(tokens) tokens but the model's context is \(context)"
        case .modelNotFound(let why): return why
        }
    }
}

/// A causal language model: token ids in, next-token logits out.
public protocol LanguageModel: Sendable {
    var vocabularySize: Int { get }
    var contextLength: Int { get }
    /// Fresh key/value caches, one per layer, keeping at most `maxSize`
    /// positions, stored quantized when `quantization` is given.
    func makeCache(maxSize: Int?, quantization: KVQuantization?) -> [KVCache]
    /// Logits `[B, L, vocab]` for `tokens` `[B, L]`, continuing from `cache`.
    func callAsFunction(_ tokens: Tensor, cache: [KVCache]) -> Tensor
}

extension LanguageModel {
    /// Fresh full-precision caches.
    public func makeCache(maxSize: Int? = nil) -> [KVCache] { makeCache(maxSize: maxSize, quantization: nil) }
}

/// One architecture: reads a config.json into the shared transformer's
/// configuration, and says how llama.cpp stores it in a GGUF file.
protocol Architecture {
    /// The `model_type` values it answers to (the first is a GGUF file's).
    static var modelTypes: [String] { get }
    static func configuration(_ config: ConfigReader) throws -> TransformerConfiguration
    static var gguf: GGUFConventions { get }
}

/// Architectures by `model_type` / GGUF `general.architecture`.
public enum ModelRegistry {
    static var architectures: [any Architecture.Type] {
        [
            Llama.self, Mistral.self, Qwen2.self, Qwen3.self, Phi3.self, Gemma2.self, Gemma3.self,
        ]
    }

    public static var supportedTypes: [String] { architectures.flatMap { $0.modelTypes } }

    static func architecture(_ modelType: String) throws -> any Architecture.Type {
        guard let found = architectures.first(where: { $0.modelTypes.contains(modelType) }) else {
            throw ModelError.unknownModelType(modelType)
        }
        return found
    }

    /// The architecture of a GGUF file's `general.architecture`.
    static func architecture(gguf name: String) throws -> any Architecture.Type {
        guard let found = architectures.first(where: { $0.gguf.architecture == name }) else {
            throw ModelError.unknownModelType(name)
        }
        return found
    }
}
