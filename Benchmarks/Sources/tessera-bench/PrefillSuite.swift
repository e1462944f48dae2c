// The prefill suite: prompt-processing speed of a language model against
// llama.cpp (llama-cpp-python) on the same GGUF file at several prompt
// lengths, in one run. Each repetition, for each length in turn, runs
// Tessera's `TokenGenerator` prefill (the whole prompt as one chunk, as the
// lm suite does) and then the peer's `Llama.eval` of the same ids (2 threads,
// a fresh context, logits of the last position only, as both sides keep).
// Quantized products at `QuantizedMatmulPrecision.high`, as `tessera
// generate` runs them (its --precision default): 4-bit prefill products on
// integer dot products. Before 2026-12-06 this suite left the process
// default (.highest: dequantized weights and the float32 GEMM), so its
// figures were not what generate does.
// Reported: median tok/s per length over the repetitions and the ratio
// Tessera / llama.cpp (above 1: Tessera is faster), with the per-repetition
// ratios, so a noisy machine shows in the spread.
//
//   swift run -c release --package-path Benchmarks tessera-bench prefill
//   TESSERA_BENCH_MODEL              the GGUF (default: the cached default model)
//   TESSERA_BENCH_LLAMA_PYTHON       a python with llama_cpp (default: python3)
//   TESSERA_BENCH_PREFILL_LENGTHS    comma-separated prompt lengths (default 128,512,2000)
//   TESSERA_BENCH_REPS               repetitions (default 3)
//   TESSERA_BENCH_PRECISION          high (default, as generate) or highest

import Foundation
import Tessera
import TesseraLM

/// Seconds of one prefill of `prompt` (one chunk) through `TokenGenerator`.
private func tesseraPrefill(_ model: any LanguageModel, prompt: [Int]) throws -> Double {
    var parameters = GenerateParameters()
    parameters.sampling = .greedy
    parameters.maxTokens = 1
    parameters.prefillStepSize = prompt.count
    let generator = try TokenGenerator(model: model, prompt: prompt, parameters: parameters)
    return generator.stats.prefillSeconds
}

func runPrefillSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let path = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print(
            "prefill suite: no model (set TESSERA_BENCH_MODEL, or fetch the default with `swift run tessera generate`)")
        return
    }
    let reps = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 3)
    let lengths = (env["TESSERA_BENCH_PREFILL_LENGTHS"] ?? "128,512,2000").split(separator: ",")
        .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
    let loaded: LoadedModel
    let prompts: [[Int]]
    do {
        loaded = try ModelLoader.load(path)
        let tokenizer = try loaded.tokenizer()
        prompts = lengths.map { promptIDs(tokenizer, count: $0) }
    } catch {
        print("prefill suite: cannot load \(path): \(error)")
        return
    }
    // as `tessera generate` (its --precision default) unless asked otherwise
    let highest = env["TESSERA_BENCH_PRECISION"] == "highest"
    QuantizedMatmulPrecision.current = highest ? .highest : .high
    print("prefill suite: \(path)")
    print(
        "prompt lengths \(lengths), \(reps) interleaved repetitions, medians; Tessera \(_CPUKernels.threadCount) threads"
            + " (ISA \(_CPUKernels.isa)), quantized products at "
            + (highest ? ".highest (float GEMM)" : ".high as `tessera generate`") + ", llama.cpp 2 threads")
    var ours = lengths.map { _ in [Double]() }
    var theirs = lengths.map { _ in [Double]() }
    var peerFailure: PeerError?
    do {
        _ = try tesseraPrefill(loaded.model, prompt: Array(prompts[0].prefix(16)))  // warm-up
        for _ in 0..<reps {
            for (i, prompt) in prompts.enumerated() {
                ours[i].append(Double(prompt.count) / (try tesseraPrefill(loaded.model, prompt: prompt)))
                if peerFailure == nil {
                    switch llamaPeer(model: path, prompt: prompt, steps: 0, reps: 1) {
                    case .success(let figures): theirs[i].append(figures.prefill)
                    case .failure(let why): peerFailure = why
                    }
                }
            }
        }
    } catch {
        print("prefill suite: prefill failed: \(error)")
        return
    }
    print("")
    print("| prompt | Tessera | llama.cpp | Tessera/llama.cpp | ratio per repetition |")
    print("|---|---|---|---|---|")
    for (i, length) in lengths.enumerated() {
        let mine = String(format: "%.1f tok/s", median(ours[i]))
        if let why = peerFailure {
            print("| \(length) tokens | \(mine) | – | – | – |")
            if i == lengths.count - 1 { print("\nllama.cpp peer unavailable: \(why)") }
            continue
        }
        let peer = median(theirs[i])
        let each = zip(ours[i], theirs[i]).map { String(format: "%.2f", $0 / $1) }.joined(separator: ", ")
        print(
            "| \(length) tokens | \(mine) | \(String(format: "%.1f tok/s", peer)) | "
                + String(format: "%.2f×", median(ours[i]) / peer) + " | \(each) |")
    }
    for (i, length) in lengths.enumerated() {
        print(
            "\(length) tokens per repetition: Tessera "
                + ours[i].map { String(format: "%.1f", $0) }.joined(separator: ", ")
                + (theirs[i].isEmpty
                    ? "" : "; llama.cpp " + theirs[i].map { String(format: "%.1f", $0) }.joined(separator: ", ")))
    }
}
