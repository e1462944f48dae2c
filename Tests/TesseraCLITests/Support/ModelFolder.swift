// Shared by the CLI tests that run the commands on a tiny random model
// (DistributedLMTests, LoRAInterruptTests): the model written as a folder the
// commands load.

import Foundation
import Tessera
import TesseraLM

/// Writes `model` as a model folder at `path` (created): `config` as
/// config.json, its parameters as model.safetensors, and the gpt2-bpe
/// fixture's tokenizer (tokenizer.json, tokenizer_config.json).
func writeModelFolder(_ model: TransformerModel, config: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try Data(config.utf8).write(to: URL(fileURLWithPath: path + "/config.json"))
    try Safetensors.save(model.parameters().flatDictionary, to: path + "/model.safetensors")
    let tokenizers = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fixtures/tokenizers/gpt2-bpe").standardizedFileURL.path
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        try FileManager.default.copyItem(atPath: tokenizers + "/" + name, toPath: path + "/" + name)
    }
}
