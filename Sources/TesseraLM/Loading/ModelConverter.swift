// `tessera convert`: a model (HF/MLX folder or GGUF) rewritten as an
// mlx-community-style quantized folder: every 2-D `.weight` whose rows split
// into groups becomes MLX affine weight/scales/biases, config.json gains
// `quantization`, tokenizer files are copied (from a GGUF: written from its
// tokenizer metadata). Written to a temporary folder
// next to the output, then renamed into place.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tessera

#if canImport(Glibc)
import Glibc
#endif

public enum ModelConverter {
    static let tokenizerFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
        "chat_template.json", "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt",
    ]

    /// Converts `model` into a new folder `output` (which must not exist yet).
    /// Without `groupSize`: 64 for folders, 32 for GGUF files, whose Q4_0/Q4_1/Q8_0
    /// blocks are 32 wide (a coarser group re-quantizes already-quantized weights
    /// visibly worse: SmolLM2-135M Q4_1 at 4 bits, group 64, loses its answers).
    /// With `dense` (float32, float16 or bfloat16) nothing is quantized: every
    /// float tensor is written in that dtype (as mlx-lm's `convert --dtype`).
    public static func convert(
        model: String, output: String, bits: Int = 4, groupSize: Int? = nil, dense: DType? = nil
    ) throws {
        if let dense, ![DType.float32, .float16, .bfloat16].contains(dense) {
            throw ModelError.invalidConfiguration("a dense folder is float32, float16 or bfloat16, not \(dense)")
        }
        guard [2, 3, 4, 5, 6, 8].contains(bits), [32, 64, 128].contains(groupSize ?? 32) else {
            throw ModelError.invalidConfiguration("bits must be 2, 3, 4, 5, 6 or 8 and group size 32, 64 or 128")
        }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw ModelError.invalidConfiguration("\(output) already exists")
        }
        var info = stat()
        guard stat(model, &info) == 0 else { throw ModelError.modelNotFound("no model at \(model)") }
        let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
        let groupSize = groupSize ?? (isFolder ? 64 : 32)
        var config: JSONValue, tensors: [String: Tensor]
        var tokenizerFiles: [(String, JSONValue)] = []
        if isFolder {
            (config, tensors) = try readFolder(model)
        } else {
            (config, tensors, tokenizerFiles) = try readGGUF(model)
        }
        var fields = (config.object ?? JSONObject()).filter { $0.key != "quantization" && $0.key != "quantization_config" }
            .map { ($0.key, $0.value) }
        if let dense {
            tensors = tensors.mapValues { $0.dtype.isFloatingPoint ? $0.asType(dense) : $0 }
            fields = fields.filter { $0.0 != "torch_dtype" } + [("torch_dtype", .string("\(dense)"))]
        } else {
            tensors = try requantized(tensors, groupSize: groupSize, bits: bits)
            let parameters: JSONValue = ["group_size": .int(groupSize), "bits": .int(bits)]
            fields += [("quantization", parameters), ("quantization_config", parameters)]
        }
        config = .object(JSONObject(fields))

        removeUnfinished(of: output)
        let temporary = output + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        // POSIX calls, so a failure is IOError.cannotWrite with the path and strerror (not Foundation's text).
        do {
            guard mkdir(temporary, 0o755) == 0 else {
                throw IOError.cannotWrite(path: temporary, reason: String(cString: strerror(errno)))
            }
            try Safetensors.save(tensors, metadata: ["format": "mlx"], to: temporary + "/model.safetensors")
            try writeFile(temporary + "/config.json", Array(config.compactText.utf8))
            for (name, json) in tokenizerFiles {
                try writeFile(temporary + "/" + name, Array(json.compactText.utf8))
            }
            if isFolder {
                for name in Self.tokenizerFiles where FileManager.default.fileExists(atPath: model + "/" + name) {
                    try writeFile(temporary + "/" + name, try readRegularFile(model + "/" + name))
                }
            }
            guard rename(temporary, output) == 0 else {
                throw IOError.cannotWrite(path: output, reason: String(cString: strerror(errno)))
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Writes `bytes` to a new file at `path` (inside the temporary folder).
    private static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// `NAME.partial-PID`: a writer's temporary output (see `removeUnfinished`).
    public static func isPartialName(_ name: String) -> Bool {
        guard let range = name.range(of: ".partial-", options: .backwards) else { return false }
        let pid = name[range.upperBound...]
        return !pid.isEmpty && pid.allSatisfy(\.isNumber)
    }

    /// Removes what an interrupted conversion to `output` left (`output.partial-PID`
    /// folders whose process is gone); a live conversion's folder is kept.
    static func removeUnfinished(of output: String) {
        let url = URL(fileURLWithPath: output)
        let folder = url.deletingLastPathComponent().path, name = url.lastPathComponent
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in entries where entry.hasPrefix(name + ".partial-") && isPartialName(entry) {
            guard let pid = Int32(entry.dropFirst(name.count + ".partial-".count)) else { continue }
            if pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { continue }  // still running
            try? FileManager.default.removeItem(atPath: folder + "/" + entry)
        }
    }

    /// Dense weights by Hugging Face name (already-quantized layers dequantized).
    static func readFolder(_ path: String) throws -> (JSONValue, [String: Tensor]) {
        let config = try ModelLoader.readConfig(path)
        let modelType = config["model_type"]?.string ?? "(none)"
        _ = try ModelRegistry.architecture(modelType).configuration(ConfigReader(json: config))
        let quantization = config["quantization"] ?? config["quantization_config"]
        var tensors = try ModelLoader.readTensors(path)
        for name in tensors.keys where name.hasSuffix(".scales") {
            let base = String(name.dropLast(".scales".count))
            guard let w = tensors[base + ".weight"] else { throw ModelError.missingTensor(base + ".weight") }
            let (group, bits) = try WeightSource.quantizationParameters(quantization, layer: base)
            guard let scales = tensors[name] else { continue }
            let q = try WeightSource.checkedQuantized(
                base, weight: w, scales: scales, biases: tensors[base + ".biases"], groupSize: group, bits: bits)
            tensors[base + ".weight"] = dequantize(q.weight, scales: q.scales, biases: q.biases, groupSize: group, bits: bits)
            tensors[name] = nil
            tensors[base + ".biases"] = nil
        }
        return (config, tensors)
    }

    /// A GGUF's tensors under Hugging Face names and conventions (as the
    /// model loads them: `WeightSource.gguf`), dense float32, a config.json from its metadata, and
    /// tokenizer.json + tokenizer_config.json from its tokenizer metadata (if any).
    static func readGGUF(_ path: String) throws -> (JSONValue, [String: Tensor], tokenizerFiles: [(String, JSONValue)]) {
        let file = try GGUFFile.load(path)
        let description = try GGUFModelDescription(file)
        let folderConfig = try configWithRopeScaling(description, path: path)
        // The folder's configuration: the tensors are read for its roles and shapes.
        let c = try ModelRegistry.architecture(description.modelType).configuration(ConfigReader(json: folderConfig))
        final class Collected { var tensors: [String: Tensor] = [:] }
        let collected = Collected()
        let stored = WeightSource.gguf(file, description.conventions, c)
        let source = WeightSource(
            fetch: { name, suffix in
                guard let w = try stored.fetch(name, suffix) else { return nil }
                let dense = w.dense.asType(.float32)
                try checkedEval([dense])
                collected.tensors[name + suffix] = dense
                return .dense(dense)
            },
            describe: stored.describe)
        _ = try TransformerModel(configuration: c, weights: source)
        var tokenizerFiles: [(String, JSONValue)] = []
        if file.metadata["tokenizer.ggml.model"] != nil {
            let files = try TokenizerMetadata(gguf: file).huggingFaceFiles(modelMaxLength: c.contextLength)
            tokenizerFiles = [("tokenizer.json", files.tokenizer), ("tokenizer_config.json", files.config)]
        }
        return (folderConfig, collected.tensors, tokenizerFiles)
    }

    /// The GGUF's config.json; with a `rope_freqs` tensor, plus the llama3
    /// `rope_scaling` that gives those factors (fitted: the factors between 1
    /// and `factor` lie on 1/f = (1 - s)/factor + s with s linear in
    /// 1/wavelength, which fixes the ratios of low/high_freq_factor and
    /// original_max_position_embeddings; low_freq_factor is taken as 1). The
    /// frequencies the fitted config gives must equal the GGUF's, else a typed error.
    static func configWithRopeScaling(_ description: GGUFModelDescription, path: String) throws -> JSONValue {
        guard let factors = description.ropeFactors else { return description.config }
        let refuse = ModelError.invalidConfiguration(
            "\(path): its rope_freqs factors are not llama3 rope scaling, which a config.json cannot express; load the GGUF directly")
        let stored = try description.configuration()
        let dims = stored.ropeDimensions ?? stored.headDim
        let base = Double(stored.rope.base)
        let factor = Double(factors.max() ?? 1)
        guard factor > 1 else { return description.config }  // all 1: no scaling
        // (1 / wavelength, s) of the interpolated pairs.
        var points: [(x: Double, s: Double)] = []
        for (i, f) in factors.enumerated() where Double(f) > 1 + 1e-6 && Double(f) < factor * (1 - 1e-6) {
            let wavelength = 2 * Double.pi * Glibc.pow(base, Double(2 * i) / Double(dims))
            points.append((1 / wavelength, (1 / Double(f) - 1 / factor) / (1 - 1 / factor)))
        }
        guard points.count >= 2, let first = points.first, let last = points.last, first.x != last.x else { throw refuse }
        let slope = (last.s - first.s) / (last.x - first.x)
        let intercept = first.s - slope * first.x
        guard intercept < 0, slope > 0 else { throw refuse }
        let high = 1 - 1 / intercept, original = -slope / intercept
        // Round values float32 factors blurred (original_max_position_embeddings is an integer in every config).
        let candidates = [((high * 1e4).rounded() / 1e4, original.rounded()), (high, original)]
        for (high, original) in candidates {
            var fields = (description.config.object ?? JSONObject()).filter { $0.key != "rope_scaling" }.map { ($0.key, $0.value) }
            fields.append((
                "rope_scaling",
                .object(JSONObject([
                    ("rope_type", "llama3"), ("factor", .double(factor)), ("low_freq_factor", 1.0),
                    ("high_freq_factor", .double(high)),
                    ("original_max_position_embeddings", original == original.rounded() ? .int(Int(original)) : .double(original)),
                ]))
            ))
            let config = JSONValue.object(JSONObject(fields))
            let fitted = try ModelRegistry.architecture(description.modelType).configuration(ConfigReader(json: config))
            if let want = stored.rope.frequencies, let got = fitted.rope.frequencies, want.count == got.count,
                zip(want, got).allSatisfy({ abs($0 - $1) <= 1e-5 * abs($0) })
            {
                return config
            }
        }
        throw refuse
    }

    /// Quantizes every 2-D `.weight` whose rows split into groups; keeps the rest.
    static func requantized(_ tensors: [String: Tensor], groupSize: Int, bits: Int) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
            guard name.hasSuffix(".weight"), t.ndim == 2, t.dtype.isFloatingPoint, t.dim(1) % groupSize == 0 else {
                out[name] = t
                continue
            }
            let base = String(name.dropLast(".weight".count))
            let (wq, scales, biases) = quantize(t, groupSize: groupSize, bits: bits)
            try checkedEval([wq, scales, biases])
            out[name] = wq
            out[base + ".scales"] = scales
            out[base + ".biases"] = biases
        }
        return out
    }
}
