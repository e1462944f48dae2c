// What a run needs to continue bit for bit (beyond mlx-lm, which resumes
// the adapter weights only): one safetensors file, written atomically, with
//   adapter/<name>          the trainable parameters,
//   optimizer/<name>/<key>  the optimizer's state tensors ("m", "v", ...),
//   random/state            the implicit random key sequence (dropout),
// and in its metadata `tessera_training`: the step, the optimizer's step, the
// trained tokens and the batch order (the shuffle generator's state, the
// epoch's order and the position in it).

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraNN
import TesseraOptimizers

public enum TrainingCheckpoint {
    /// The state file's name in the adapter folder.
    public static let fileName = "training_state.safetensors"
    static let metadataKey = "tessera_training"

    /// Where the run stands between two steps.
    struct Progress: Equatable {
        var step: Int
        var optimizerStep: Int
        var trainedTokens: Int
        var generatorState: UInt64
        var order: [Int]
        var position: Int
        /// Batches per epoch of the run (its data and batch size).
        var batchCount: Int
    }

    /// Whether `path` is a training state file (and not a plain adapter file).
    public static func isTrainingState(_ path: String) -> Bool {
        guard let file = try? Safetensors.load(path) else { return false }
        return file.metadata[metadataKey] != nil
    }

    static func save(
        model: TransformerModel, optimizer: Optimizer, progress: Progress, to path: String
    ) throws {
        var tensors: [String: Tensor] = [:]
        for (name, t) in model.trainableParameters().flatDictionary { tensors["adapter/" + name] = t }
        for (name, entries) in optimizer.state {
            for (key, t) in entries { tensors["optimizer/\(name)/\(key)"] = t }
        }
        tensors["random/state"] = Random.state.innerState[0]
        let json = JSONValue.object(
            JSONObject([
                ("step", .int(progress.step)), ("optimizer_step", .int(progress.optimizerStep)),
                ("trained_tokens", .int(progress.trainedTokens)),
                // A decimal string: the full 64 bits, which a JSON number would round.
                ("generator_state", .string(String(progress.generatorState))),
                ("order", .array(progress.order.map { .int($0) })), ("position", .int(progress.position)),
                ("batch_count", .int(progress.batchCount))
            ]))
        try Safetensors.save(tensors, metadata: ["format": "mlx", metadataKey: json.compactText], to: path)
    }

    /// Reads `path` into `model` (its trainable parameters), `optimizer` and
    /// the random state; returns the progress for the batch iterator.
    static func load(_ path: String, model: TransformerModel, optimizer: Optimizer, batchCount: Int) throws -> Progress
    {
        let file: (tensors: [String: Tensor], metadata: [String: String])
        do { file = try Safetensors.load(path) } catch { throw AdapterError.unreadable("\(path): \(error)") }
        guard let text = file.metadata[metadataKey] else {
            throw AdapterError.unreadable("\(path) is not a training state (no \(metadataKey) metadata)")
        }
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(text.utf8)) } catch {
            throw AdapterError.unreadable("\(path): \(error)")
        }
        guard let step = json["step"]?.int, step >= 0, let optimizerStep = json["optimizer_step"]?.int,
            optimizerStep >= 0,
            let tokens = json["trained_tokens"]?.int,
            let generator = json["generator_state"]?.string.flatMap({ UInt64($0) }),
            let order = json["order"]?.array?.compactMap(\.int), let position = json["position"]?.int,
            position >= 0, position <= order.count, order.allSatisfy({ $0 >= 0 && $0 < batchCount })
        else { throw AdapterError.unreadable("\(path): its training progress is malformed or for other data") }
        guard json["batch_count"]?.int == batchCount else {
            throw AdapterError.invalidConfig(
                "\(path) was saved by a run with \(json["batch_count"]?.int ?? 0) batches per epoch, this one has \(batchCount): resume with the same data and --batch-size"
            )
        }

        var adapter: [String: Tensor] = [:]
        var state: [String: [String: Tensor]] = [:]
        var random: Tensor? = nil
        for (name, t) in file.tensors {
            if name.hasPrefix("adapter/") {
                adapter[String(name.dropFirst("adapter/".count))] = t
            } else if name.hasPrefix("optimizer/"), let slash = name.lastIndex(of: "/"),
                slash > name.index(name.startIndex, offsetBy: 9)
            {
                let parameter = String(name[name.index(name.startIndex, offsetBy: 10)..<slash])
                state[parameter, default: [:]][String(name[name.index(after: slash)...])] = t
            } else if name == "random/state" {
                random = t
            }
        }
        let trainable = model.trainableParameters().flatDictionary
        guard Set(adapter.keys) == Set(trainable.keys) else {
            throw AdapterError.invalidConfig("\(path) holds other trainable parameters than the model's adapters")
        }
        for (name, t) in adapter where trainable[name]?.shape != t.shape || trainable[name]?.dtype != t.dtype {
            throw AdapterError.invalidConfig(
                "\(path): \(name) has shape \(t.shape) \(t.dtype), the model's is \(trainable[name]?.shape ?? [])")
        }
        guard state.keys.allSatisfy({ trainable[$0] != nil }) else {
            throw AdapterError.invalidConfig("\(path): optimizer state for parameters the model does not train")
        }
        guard let random, random.dtype == .uint32, random.shape == [2] else {
            throw AdapterError.unreadable("\(path) has no random/state of two uint32 words")
        }
        try model.update(parameters: adapter, strict: false)
        optimizer.restore(step: optimizerStep, state: state)
        Random.state.innerState = [random]
        eval(model, optimizer)
        return Progress(
            step: step, optimizerStep: optimizerStep, trainedTokens: tokens, generatorState: generator, order: order,
            position: position, batchCount: batchCount)
    }
}

extension BatchIterator {
    var progressState: (generator: UInt64, order: [Int], position: Int) { (generator.state, order, position) }

    mutating func restore(generator state: UInt64, order: [Int], position: Int) {
        generator = SeededGenerator(seed: 0)
        generator.state = state
        self.order = order
        self.position = position
    }
}
