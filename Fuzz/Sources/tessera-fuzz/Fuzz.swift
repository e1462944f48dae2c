// libFuzzer's entry point. Each input goes to one target (TESSERA_FUZZ_TARGET):
//   gguf          GGUF reader, then model configuration + loading, then its tokenizer metadata
//   safetensors   safetensors reader (header, offsets, dtypes)
//   config        config.json -> every architecture's configuration and validation
//   tokenizer     tokenizer.json (+ an encode/decode round of a fixed text)
//   template      chat template parse + render with tight limits
//   prompt-cache  prompt-cache reader against a small fixture model's cache layout
//   npy, npz      numpy .npy reader; .npz (zip, stored and deflated entries) reader
// A typed error is a pass; a crash, a sanitizer report, a leak or a timeout
// (libFuzzer's -timeout) is a finding.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Tessera
import TesseraLM

enum Target: String {
    case gguf, safetensors, config, tokenizer, template, npy, npz, promptCache = "prompt-cache"
}

/// Per-process scratch paths on a RAM-backed folder when there is one.
let scratch: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
    let dir = "\(base)/tessera-fuzz-\(getpid())"
    mkdir(dir, 0o755)
    return dir
}()

let target: Target = {
    let name = ProcessInfo.processInfo.environment["TESSERA_FUZZ_TARGET"] ?? ""
    guard let t = Target(rawValue: name) else {
        FileHandle.standardError.write(
            Data("set TESSERA_FUZZ_TARGET to gguf, safetensors, config, tokenizer, template, npy, npz or prompt-cache\n".utf8))
        exit(2)
    }
    return t
}()

/// The small qwen2 fixture model (for the prompt-cache target): TESSERA_FUZZ_MODEL.
/// With TESSERA_FUZZ_SEED_DIR, a valid cache of two prompt tokens is saved there first (a seed that reaches the deep checks).
let fixtureModel: LoadedModel? = {
    let environment = ProcessInfo.processInfo.environment
    guard target == .promptCache, let path = environment["TESSERA_FUZZ_MODEL"], let loaded = try? ModelLoader.load(path)
    else { return nil }
    if let seeds = environment["TESSERA_FUZZ_SEED_DIR"] {
        // Float16 caches (generate's default) and float32 ones (--kv-cache-type f32).
        for type in KVCacheType.allCases {
            var parameters = GenerateParameters()
            parameters.kvCacheType = type
            let caches = parameters.makeCache(for: loaded.model)
            let logits = loaded.model(Tensor([5, 17] as [Int32]).reshaped([1, 2]), cache: caches)
            try? checkedEval([logits])
            try? PromptCache.save(
                caches, to: seeds + "/valid-\(type.rawValue).cache", modelIdentity: loaded.identity,
                metadata: ["tokens": "5 17"])
        }
    }
    return loaded
}()

func write(_ data: UnsafeRawBufferPointer, to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return }
    var done = 0
    while done < data.count {
        let n = Glibc.write(fd, data.baseAddress! + done, data.count - done)
        if n <= 0 { break }
        done += n
    }
    close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let data = UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : size)
    switch target {
    case .gguf:
        let path = scratch + "/input.gguf"
        write(data, to: path)
        if let file = try? GGUFFile.load(path) {
            for info in file.tensorInfos.prefix(64) { _ = try? file.tensor(info.name) }
            if let metadata = try? TokenizerMetadata(gguf: file) { _ = try? metadata.huggingFaceFiles() }
        }
        _ = try? ModelLoader.load(path)
    case .safetensors:
        let path = scratch + "/input.safetensors"
        write(data, to: path)
        if let (tensors, _) = try? Safetensors.load(path) {
            for t in tensors.values.prefix(64) where t.size <= 1 << 16 { _ = t.asType(.float32).toArray(Float.self) }
        }
    case .npy:
        let path = scratch + "/input.npy"
        write(data, to: path)
        if let t = try? NPY.load(path), t.size <= 1 << 16 { _ = t.asType(.float32).toArray(Float.self) }
    case .npz:
        let path = scratch + "/input.npz"
        write(data, to: path)
        if let arrays = try? NPZ.load(path) {
            for t in arrays.values.prefix(64) where t.size <= 1 << 16 { _ = t.asType(.float32).toArray(Float.self) }
        }
    case .config:
        // A folder with this config.json and a tiny weight file: every architecture's reader and checks run.
        let folder = scratch + "/model"
        mkdir(folder, 0o755)
        write(data, to: folder + "/config.json")
        _ = try? ModelLoader.load(folder)
    case .tokenizer:
        if let tokenizer = try? Tokenizer(tokenizerJSON: Array(data)) {
            let ids = tokenizer.encode("Hello, wörld! 123 <|im_start|>user\n  tabs\tand ünïcödé 🙂")
            _ = tokenizer.decode(ids)
        }
    case .template:
        var limits = TemplateLimits()
        limits.maxLoopIterations = 10_000
        limits.maxSteps = 200_000
        limits.maxLength = 1 << 20
        limits.maxDuration = .seconds(2)
        limits.maxCallDepth = 32
        let source = String(decoding: data, as: UTF8.self)
        if let template = try? ChatTemplate(source) {
            _ = try? template.apply(
                messages: [["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi"],
                           ["role": "assistant", "content": "Hello"]],
                addGenerationPrompt: true, specialTokens: ["bos_token": "<s>", "eos_token": "</s>"],
                now: Date(timeIntervalSince1970: 0), limits: limits)
        }
    case .promptCache:
        guard let model = fixtureModel else {
            FileHandle.standardError.write(Data("prompt-cache needs TESSERA_FUZZ_MODEL (Tests/Fixtures/lm/qwen2)\n".utf8))
            exit(2)
        }
        let path = scratch + "/input.cache"
        write(data, to: path)
        if let (caches, _) = try? PromptCache.load(path, modelIdentity: model.identity, model: model.model) {
            _ = caches.count
        }
        _ = try? PromptCache.load(path, model: model.model)
    }
    return 0
}
