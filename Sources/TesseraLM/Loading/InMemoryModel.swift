// A model from a config.json's text and tensors already in memory: what a
// folder load does, without the files (the self-test's random-weight model
// builds on it).

import Tessera

extension TransformerModel {
    /// The model a config.json's text describes, with weights already in
    /// memory under their Hugging Face / mlx-lm names (an MLX-quantized layer
    /// as `.weight`, `.scales` and `.biases`, read with the config's
    /// `quantization` entry, as a folder's are). `tensors` is called with the
    /// configuration the text describes, so a caller can make tensors of its
    /// shapes. A config that does not parse or describe a supported model, or
    /// a tensor that is missing or has the wrong shape, is a typed `ModelError`.
    ///
    /// ```swift
    /// let model = try TransformerModel(config: configText) { _ in tensors }
    /// ```
    public convenience init(
        config text: String, tensors: (TransformerConfiguration) throws -> [String: Tensor]
    ) throws {
        let config: JSONValue
        do { config = try JSONValue(parsing: Array(text.utf8)) } catch {
            throw ModelError.invalidConfiguration("config.json: \(error)")
        }
        guard config.object != nil else { throw ModelError.invalidConfiguration("config.json is not a JSON object") }
        let modelType = config["model_type"]?.string ?? "(none)"
        let configuration = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        let quantization = config["quantization"] ?? config["quantization_config"]
        try self.init(
            configuration: configuration,
            weights: .safetensors(try tensors(configuration), quantization: quantization))
    }
}
