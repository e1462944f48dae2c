// The lm suite: prefill and decode speed of a language model against
// llama.cpp (llama-cpp-python) on the same GGUF file, in one run.
//
// Both sides do the same work: a 128-token prompt (fixed ids, no special
// tokens added) evaluated in one batch, then 128 decode steps, each a greedy
// pick from the last logits and one forward pass of that token; end-of-
// sequence is ignored, so both always run 128 steps. Tessera drives the
// public `TokenGenerator`; the peer is `llama_peer` in peers.py (2 threads,
// llama_cpp.Llama.eval). Reported: median tok/s over the repetitions, ratio
// Tessera / llama.cpp (above 1: Tessera is faster).
//
//   swift run -c release --package-path Benchmarks tessera-bench lm
//   TESSERA_BENCH_MODEL     the GGUF (default: the cached default model)
//   TESSERA_BENCH_LLAMA_PYTHON  a python with llama_cpp (default: python3);
//                           without llama_cpp the peer column says unavailable
//   TESSERA_BENCH_REPS      repetitions (default 5)

import Foundation
import Tessera
import TesseraLM

private let promptLength = 128
private let decodeSteps = 128

/// A fixed text, tokenized and repeated until it gives `count` ids.
func promptIDs(_ tokenizer: Tokenizer, count: Int) -> [Int] {
    let text = """
        The history of computing is a story of abstractions stacked on abstractions. Early machines were \
        programmed by rewiring panels; then came stored programs, assemblers, compilers, operating systems \
        and, much later, frameworks that let a researcher describe a neural network in a few lines while the \
        library decides how the arithmetic is laid out in memory, which kernels run, and on which device. \
        A good array framework hides this machinery without hiding its cost.
        """
    let once = tokenizer.encode(text, addSpecialTokens: false)
    var ids: [Int] = []
    while ids.count < count { ids += once }
    return Array(ids.prefix(count))
}

struct LMFigures {
    var prefill: Double  // tok/s
    var decode: Double  // tok/s
    var tokens: [Int]
}

/// One prefill of `prompt` and `decodeSteps` greedy steps through `TokenGenerator`.
private func tesseraRun(_ model: any LanguageModel, prompt: [Int], steps: Int) throws
    -> LMFigures
{
    var parameters = GenerateParameters()
    parameters.sampling = .greedy
    parameters.maxTokens = steps + 1  // the last call samples without a forward pass
    parameters.prefillStepSize = prompt.count
    var generator = try TokenGenerator(model: model, prompt: prompt, parameters: parameters)
    let prefill = generator.stats.prefillSeconds
    var tokens: [Int] = []
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<steps {  // each: pick from the last logits, then one forward pass
        guard let token = try generator.next() else { break }
        tokens.append(token)
    }
    let decode = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    return LMFigures(
        prefill: Double(prompt.count) / prefill, decode: Double(tokens.count) / decode, tokens: tokens)
}

/// The peer's figures, or why there are none.
func llamaPeer(model: String, prompt: [Int], steps: Int, reps: Int) -> Result<LMFigures, PeerError> {
    let env = ProcessInfo.processInfo.environment
    if env["TESSERA_BENCH_NO_PEERS"] != nil { return .failure(PeerError("TESSERA_BENCH_NO_PEERS is set")) }
    let python = env["TESSERA_BENCH_LLAMA_PYTHON"] ?? "python3"
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("peers.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        python, script.path, "--llama", model, "--tokens", prompt.map(String.init).joined(separator: ","),
        "--generate", String(steps), "--threads", "2", "--reps", String(reps),
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch { return .failure(PeerError("\(python): \(error)")) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        return .failure(PeerError("peers.py gave no result (exit \(process.terminationStatus))"))
    }
    if let error = json["error"] as? String { return .failure(PeerError(error)) }
    guard let prefill = json["prefill_tps"] as? Double, let decode = json["decode_tps"] as? Double else {
        return .failure(PeerError("peers.py gave no figures"))
    }
    return .success(LMFigures(prefill: prefill, decode: decode, tokens: (json["tokens"] as? [Int]) ?? []))
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ why: String) { description = why }
}

func runLMSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let path = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print("lm suite: no model (set TESSERA_BENCH_MODEL, or fetch the default with `swift run tessera generate`)")
        return
    }
    let reps = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 5)
    let loaded: LoadedModel
    let prompt: [Int]
    do {
        loaded = try ModelLoader.load(path)
        prompt = promptIDs(try loaded.tokenizer(), count: promptLength)
    } catch {
        print("lm suite: cannot load \(path): \(error)")
        return
    }
    print("lm suite: \(path)")
    print("\(promptLength)-token prompt, \(decodeSteps) greedy decode steps (EOS ignored), \(reps) interleaved repetitions, medians;"
        + " Tessera \(_CPUKernels.threadCount) threads, llama.cpp 2 threads")
    var runs: [LMFigures] = []
    var other: [LMFigures] = []
    var theirs: [LMFigures] = []
    var peerFailure: PeerError?
    do {
        _ = try tesseraRun(loaded.model, prompt: Array(prompt.prefix(16)), steps: 8)  // warm-up
        // Each repetition runs Tessera as `tessera generate` does (quantized
        // products at .high precision), Tessera at .highest, and llama.cpp
        // back to back, so all three see the same load on a shared machine.
        for _ in 0..<reps {
            QuantizedMatmulPrecision.current = .high
            runs.append(try tesseraRun(loaded.model, prompt: prompt, steps: decodeSteps))
            QuantizedMatmulPrecision.current = .highest
            other.append(try tesseraRun(loaded.model, prompt: prompt, steps: decodeSteps))
            if peerFailure == nil {
                switch llamaPeer(model: path, prompt: prompt, steps: decodeSteps, reps: 1) {
                case .success(let figures): theirs.append(figures)
                case .failure(let why): peerFailure = why
                }
            }
        }
    } catch {
        print("lm suite: generation failed: \(error)")
        return
    }
    let ours = LMFigures(prefill: median(runs.map(\.prefill)), decode: median(runs.map(\.decode)), tokens: runs[0].tokens)
    let peer: Result<LMFigures, PeerError> =
        if let peerFailure { .failure(peerFailure) } else {
            .success(
                LMFigures(
                    prefill: median(theirs.map(\.prefill)), decode: median(theirs.map(\.decode)),
                    tokens: theirs[0].tokens))
        }

    func rate(_ x: Double) -> String { String(format: "%.1f tok/s", x) }
    print("")
    print("| phase | Tessera | llama.cpp | Tessera/llama.cpp |")
    print("|---|---|---|---|")
    switch peer {
    case .success(let theirs):
        print("| prefill (\(promptLength) tokens) | \(rate(ours.prefill)) | \(rate(theirs.prefill)) | "
            + String(format: "%.2f×", ours.prefill / theirs.prefill) + " |")
        print("| decode (\(decodeSteps) tokens) | \(rate(ours.decode)) | \(rate(theirs.decode)) | "
            + String(format: "%.2f×", ours.decode / theirs.decode) + " |")
        let same = zip(ours.tokens, theirs.tokens).prefix { $0 == $1 }.count
        print("\ngreedy tokens identical for the first \(same) of \(min(ours.tokens.count, theirs.tokens.count)) steps"
            + " (they may part where two logits are within rounding of each other)")
    case .failure(let why):
        print("| prefill (\(promptLength) tokens) | \(rate(ours.prefill)) | – | – |")
        print("| decode (\(decodeSteps) tokens) | \(rate(ours.decode)) | – | – |")
        print("\nllama.cpp peer unavailable: \(why)")
    }
    print("Tessera per repetition: prefill " + runs.map { String(format: "%.1f", $0.prefill) }.joined(separator: ", ")
        + "; decode " + runs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", "))
    if !theirs.isEmpty {
        print("llama.cpp per repetition: prefill " + theirs.map { String(format: "%.1f", $0.prefill) }.joined(separator: ", ")
            + "; decode " + theirs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ")
            + "; decode ratio per repetition "
            + zip(runs, theirs).map { String(format: "%.2f", $0.decode / $1.decode) }.joined(separator: ", "))
    }
    let otherDecode = median(other.map(\.decode))
    print("Tessera decodes " + (GenerateParameters.pipeliningPays ? "pipelined" : "step by step")
        + " here, quantized products at .high precision (x to 16 bits, as `tessera generate`); at .highest"
        + " (24 bits), interleaved: " + rate(otherDecode)
        + String(format: " (high/highest %.2f×; ", ours.decode / otherDecode)
        + other.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ") + ")")
    if other.map(\.tokens) != runs.map(\.tokens) { print("note: the two precisions' greedy tokens differ") }
}

/// The floatlm suite: a float (unquantized) model's decode with the native
/// kernels and with OpenBLAS, interleaved in one run — the issue of a machine
/// without OpenBLAS: float models must decode as fast there. The float folders
/// are the default GGUF written dense by `ModelConverter` (float32, bfloat16),
/// cached under ~/.cache/tessera/bench.
///   TESSERA_BENCH_REPS  repetitions (default 5); 32-token prompt, 64 steps.
func runFloatLMSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let gguf = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print("floatlm suite: no model (fetch the default with `swift run tessera generate`)")
        return
    }
    let reps = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 5)
    let home = env["HOME"] ?? "/root"
    let paths: [(String, Bool?)] = _CPUKernels.blasAvailable ? [("native", false), ("OpenBLAS", true)] : [("native", false)]
    print("floatlm suite: \(gguf) written dense; 32-token prompt, 64 greedy steps, \(reps) interleaved repetitions, medians")
    print("float32 products: \(_CPUKernels.blasChoice)")
    print("")
    print("| weights | path | prefill | decode |")
    print("|---|---|---|---|")
    for dtype in [DType.float32, .bfloat16] {
        let folder = "\(home)/.cache/tessera/bench/smollm2-\(dtype)"
        do {
            if !FileManager.default.fileExists(atPath: folder + "/config.json") {
                try? FileManager.default.createDirectory(
                    atPath: "\(home)/.cache/tessera/bench", withIntermediateDirectories: true)
                try ModelConverter.convert(model: gguf, output: folder, dense: dtype)
            }
            let loaded = try ModelLoader.load(folder)
            let prompt = promptIDs(try loaded.tokenizer(), count: 32)
            _ = try tesseraRun(loaded.model, prompt: Array(prompt.prefix(8)), steps: 4)  // warm-up
            var figures = paths.map { _ in [LMFigures]() }
            for _ in 0..<reps {
                for (i, path) in paths.enumerated() {
                    _CPUKernels.forceBLAS(path.1, vector: false)
                    _CPUKernels.forceBLAS(path.1, vector: true)
                    figures[i].append(try tesseraRun(loaded.model, prompt: prompt, steps: 64))
                }
            }
            _CPUKernels.forceBLAS(nil, vector: false)
            _CPUKernels.forceBLAS(nil, vector: true)
            for (i, path) in paths.enumerated() {
                let prefill = median(figures[i].map(\.prefill)), decode = median(figures[i].map(\.decode))
                print("| \(dtype) | \(path.0) | \(String(format: "%.1f", prefill)) tok/s | \(String(format: "%.1f", decode)) tok/s |")
            }
            if paths.count == 2 {
                let ratio = median(figures[0].map(\.decode)) / median(figures[1].map(\.decode))
                print("| \(dtype) | native/OpenBLAS decode | | \(String(format: "%.2f×", ratio)) |")
            }
        } catch {
            print("| \(dtype) | failed: \(error) | | |")
        }
    }
}
