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
//   TESSERA_BENCH_LONG_REPS repetitions of the long-context decode (default 3; 0: skip)
//   TESSERA_BENCH_KV_F32    float32 KV caches (default: float16, `GenerateParameters.kvCacheType`'s default)
//   TESSERA_BENCH_NO_REPLAY every decode step through the graph (no `DecodePlan`)
//
// Then the same decode after a 2,000-token prompt (both sides), and the
// roofline: the machine's 2-thread read bandwidth measured at the start of
// the run, the bytes a step reads (weights + cached keys/values), and the
// fraction of that bound each decode figure reaches (DecodeRoofline.swift).

import Foundation
import Tessera
import TesseraLM

private let promptLength = 128
private let decodeSteps = 128
private let longPromptLength = 2000

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
    /// Decode steps that replayed the captured step (0 for the peer).
    var replayed = 0
}

/// One prefill of `prompt` and `decodeSteps` greedy steps through `TokenGenerator`.
private func tesseraRun(_ model: any LanguageModel, prompt: [Int], steps: Int) throws
    -> LMFigures
{
    var parameters = GenerateParameters()
    parameters.sampling = .greedy
    parameters.maxTokens = steps + 1  // the last call samples without a forward pass
    parameters.prefillStepSize = prompt.count
    // TESSERA_BENCH_NO_REPLAY=1: every decode step through the graph (the captured step's gain, by difference).
    parameters.replayDecode = ProcessInfo.processInfo.environment["TESSERA_BENCH_NO_REPLAY"] == nil
    // TESSERA_BENCH_KV_F32=1: float32 KV caches (the default is float16, as llama.cpp's).
    if ProcessInfo.processInfo.environment["TESSERA_BENCH_KV_F32"] != nil { parameters.kvCacheType = .f32 }
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
        prefill: Double(prompt.count) / prefill, decode: Double(tokens.count) / decode, tokens: tokens,
        replayed: generator.stats.replayedSteps)
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
        "--generate", String(steps), "--threads", "2", "--reps", String(reps)
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
    let longReps = max(0, Int(env["TESSERA_BENCH_LONG_REPS"] ?? "") ?? 3)
    let bandwidth = readBandwidth()  // before the pool's threads exist
    let loaded: LoadedModel
    let prompt: [Int]
    let longPrompt: [Int]
    do {
        loaded = try ModelLoader.load(path)
        prompt = promptIDs(try loaded.tokenizer(), count: promptLength)
        longPrompt = promptIDs(try loaded.tokenizer(), count: longPromptLength)
    } catch {
        print("lm suite: cannot load \(path): \(error)")
        return
    }
    print("lm suite: \(path)")
    print(
        "\(promptLength)-token prompt, \(decodeSteps) greedy decode steps (EOS ignored), \(reps) interleaved repetitions, medians;"
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
    let ours = LMFigures(
        prefill: median(runs.map(\.prefill)), decode: median(runs.map(\.decode)), tokens: runs[0].tokens)
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
        print(
            "| prefill (\(promptLength) tokens) | \(rate(ours.prefill)) | \(rate(theirs.prefill)) | "
                + String(format: "%.2f×", ours.prefill / theirs.prefill) + " |")
        print(
            "| decode (\(decodeSteps) tokens) | \(rate(ours.decode)) | \(rate(theirs.decode)) | "
                + String(format: "%.2f×", ours.decode / theirs.decode) + " |")
        let same = zip(ours.tokens, theirs.tokens).prefix { $0 == $1 }.count
        print(
            "\ngreedy tokens identical for the first \(same) of \(min(ours.tokens.count, theirs.tokens.count)) steps"
                + " (they may part where two logits are within rounding of each other)")
    case .failure(let why):
        print("| prefill (\(promptLength) tokens) | \(rate(ours.prefill)) | – | – |")
        print("| decode (\(decodeSteps) tokens) | \(rate(ours.decode)) | – | – |")
        print("\nllama.cpp peer unavailable: \(why)")
    }
    print(
        "Tessera per repetition: prefill " + runs.map { String(format: "%.1f", $0.prefill) }.joined(separator: ", ")
            + "; decode " + runs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", "))
    if !theirs.isEmpty {
        print(
            "llama.cpp per repetition: prefill "
                + theirs.map { String(format: "%.1f", $0.prefill) }.joined(separator: ", ")
                + "; decode " + theirs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ")
                + "; decode ratio per repetition "
                + zip(runs, theirs).map { String(format: "%.2f", $0.decode / $1.decode) }.joined(separator: ", "))
    }
    let otherDecode = median(other.map(\.decode))
    print(
        "Tessera decodes " + (GenerateParameters.pipeliningPays ? "pipelined" : "step by step")
            + " (\(runs.map(\.replayed).reduce(0, +)) of \(runs.map(\.tokens.count).reduce(0, +)) steps replayed from the captured step)"
            + " here, quantized products at .high precision (x to 16 bits, as `tessera generate`); at .highest"
            + " (24 bits), interleaved: " + rate(otherDecode)
            + String(format: " (high/highest %.2f×; ", ours.decode / otherDecode)
            + other.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ") + ")")
    if other.map(\.tokens) != runs.map(\.tokens) { print("note: the two precisions' greedy tokens differ") }

    // Decode after a long prompt: attention over 2,000+ cached positions per layer.
    var longOurs: [LMFigures] = [], longTheirs: [LMFigures] = []
    var longFailure: PeerError? = peerFailure
    QuantizedMatmulPrecision.current = .high
    for _ in 0..<longReps {
        do {
            longOurs.append(try tesseraRun(loaded.model, prompt: longPrompt, steps: decodeSteps))
        } catch {
            print("lm suite: long-context generation failed: \(error)")
            break
        }
        if longFailure == nil {
            switch llamaPeer(model: path, prompt: longPrompt, steps: decodeSteps, reps: 1) {
            case .success(let figures): longTheirs.append(figures)
            case .failure(let why): longFailure = why
            }
        }
    }
    let longDecode = longOurs.isEmpty ? nil : median(longOurs.map(\.decode))
    if let longDecode {
        let per = longOurs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ")
        if longTheirs.isEmpty {
            print(
                "\ndecode (\(decodeSteps) tokens after a \(longPromptLength)-token prompt): Tessera \(rate(longDecode))"
                    + " (\(per)); llama.cpp unavailable: \(longFailure?.description ?? "not run")")
        } else {
            let theirsLong = median(longTheirs.map(\.decode))
            print(
                "\n| decode (\(decodeSteps) tokens after a \(longPromptLength)-token prompt) | \(rate(longDecode)) | "
                    + "\(rate(theirsLong)) | " + String(format: "%.2f×", longDecode / theirsLong) + " |")
            print(
                "long-context decode per repetition: Tessera \(per); llama.cpp "
                    + longTheirs.map { String(format: "%.1f", $0.decode) }.joined(separator: ", ")
                    + "; ratio "
                    + zip(longOurs, longTheirs).map { String(format: "%.2f", $0.decode / $1.decode) }
                    .joined(separator: ", "))
            let same = zip(longOurs[0].tokens, longTheirs[0].tokens).prefix { $0 == $1 }.count
            print(
                "long-context greedy tokens identical for the first \(same) of \(min(longOurs[0].tokens.count, longTheirs[0].tokens.count)) steps"
            )
        }
    }

    // The roofline: bytes per step over the bandwidth measured at the start.
    print(
        String(format: "\nread bandwidth, 2 threads (streaming sum of 256 MiB, best of 5): %.1f GB/s", bandwidth * 1e-9)
    )
    let halfKV = ProcessInfo.processInfo.environment["TESSERA_BENCH_KV_F32"] == nil
    guard let bytes = DecodeBytes(loaded.model, kvBytes: halfKV ? 2 : 4) else {
        print("roofline: not a TransformerModel, bytes per step unknown")
        return
    }
    func roofline(_ what: String, prompt: Int, tokensPerSecond: Double) {
        let perStep = bytes.perStep(prompt: prompt, steps: decodeSteps)
        let bound = bandwidth / perStep  // steps/s were every byte read once at full bandwidth
        print(
            "roofline \(what): "
                + String(
                    format: "%.1f MB per step (weights %.1f MB + " + (halfKV ? "float16" : "float32")
                        + " KV %.1f MB), bound %.0f tok/s;"
                        + " Tessera %.1f tok/s = %.0f%% of it", perStep * 1e-6, Double(bytes.weights) * 1e-6,
                    (perStep - Double(bytes.weights)) * 1e-6, bound, tokensPerSecond, 100 * tokensPerSecond / bound))
    }
    roofline("after \(promptLength) tokens", prompt: promptLength, tokensPerSecond: ours.decode)
    if let longDecode {
        roofline("after \(longPromptLength) tokens", prompt: longPromptLength, tokensPerSecond: longDecode)
    }
}

/// The floatlm suite: an unquantized model against transformers + torch (CPU)
/// on the same Hugging Face folder, in one run. The folders are the default
/// GGUF written dense by `ModelConverter` (float32, bfloat16, float16), cached
/// under ~/.cache/tessera/bench. Per weight type and repetition, interleaved:
/// Tessera, then the peer (`peers.py --transformers`, 2 threads), each doing a
/// 128-token prompt in one batch then `steps` greedy decode steps, and a
/// 512-token prompt in one batch. Medians; ratio = Tessera / transformers.
///   TESSERA_BENCH_REPS        repetitions (default 3)
///   TESSERA_BENCH_STEPS       decode steps (default 64)
///   TESSERA_BENCH_DTYPES      e.g. "float32,bfloat16" (default all three)
///   TESSERA_BENCH_PEER_PYTHON a python with torch + transformers (default python3)
func runFloatLMSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let gguf = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print("floatlm suite: no model (fetch the default with `swift run tessera generate`)")
        return
    }
    let reps = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 3)
    let steps = max(1, Int(env["TESSERA_BENCH_STEPS"] ?? "") ?? 64)
    let home = env["HOME"] ?? "/root"
    let all: [DType] = [.float32, .bfloat16, .float16]
    let dtypes =
        env["TESSERA_BENCH_DTYPES"].map { list in all.filter { list.split(separator: ",").contains(Substring("\($0)")) }
        } ?? all
    let lengths = [128, 512]
    print(
        "floatlm suite: \(gguf) written dense; prompts of \(lengths.map(String.init).joined(separator: " and ")) tokens "
            + "(one batch each), \(steps) greedy decode steps after the first, \(reps) interleaved repetitions, medians;"
            + " Tessera \(_CPUKernels.threadCount) threads, transformers 2 threads")
    print("float32 products: \(_CPUKernels.blasChoice)")
    // As `tessera generate` (--precision high): a bfloat16 model's prefill rounds x to bfloat16 for vdpbf16ps.
    BFloat16MatmulPrecision.current = .high
    print(
        "bfloat16 weights: BFloat16MatmulPrecision.high (as `tessera generate`), AVX512-BF16 kernel "
            + (_CPUKernels.bfloat16DotProducts ? "in use" : "not available here"))
    let threads = _CPUKernels.threadCount
    let readGBs = floatReadBandwidth(threads: threads)
    print(String(format: "read bandwidth: %.1f GB/s on %d threads (512 MiB summed)", readGBs, threads))
    var bandwidthLines: [String] = []
    print("")
    print("| weights | what | Tessera | transformers | Tessera / transformers |")
    print("|---|---|---|---|---|")
    func cell(_ x: Double?) -> String { x.map { String(format: "%.1f tok/s", $0) } ?? "n/a" }
    func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b, b > 0 else { return "n/a" }
        return String(format: "**%.2f×**", a / b)
    }
    for dtype in dtypes {
        let folder = "\(home)/.cache/tessera/bench/smollm2-\(dtype)"
        do {
            if !FileManager.default.fileExists(atPath: folder + "/config.json") {
                try? FileManager.default.createDirectory(
                    atPath: "\(home)/.cache/tessera/bench", withIntermediateDirectories: true)
                try ModelConverter.convert(model: gguf, output: folder, dense: dtype)
            }
            let loaded = try ModelLoader.load(folder)
            let prompt = promptIDs(try loaded.tokenizer(), count: lengths.last!)
            _ = try tesseraRun(loaded.model, prompt: Array(prompt.prefix(8)), steps: 4)  // warm-up
            var ours: [LMFigures] = [], oursLong: [Double] = []
            var theirs: [[String: Any]] = []
            var peerError: String?
            for _ in 0..<reps {
                ours.append(try tesseraRun(loaded.model, prompt: Array(prompt.prefix(lengths[0])), steps: steps))
                oursLong.append(try tesseraRun(loaded.model, prompt: prompt, steps: 0).prefill)
                switch transformersPeer(folder: folder, prompt: prompt, lengths: lengths, steps: steps) {
                case .success(let json): theirs.append(json)
                case .failure(let e): peerError = e.description
                }
            }
            if let peerError { print("| \(dtype) | peer failed: \(peerError) | | | |") }
            func peerMedian(_ pick: ([String: Any]) -> Double?) -> Double? {
                let xs = theirs.compactMap(pick)
                return xs.isEmpty ? nil : median(xs)
            }
            let rows: [(String, Double, Double?)] = [
                (
                    "prefill \(lengths[0])", median(ours.map(\.prefill)),
                    peerMedian { ($0["prefill_tps"] as? [String: Any])?["\(lengths[0])"] as? Double }
                ),
                (
                    "prefill \(lengths[1])", median(oursLong),
                    peerMedian { ($0["prefill_tps"] as? [String: Any])?["\(lengths[1])"] as? Double }
                ),
                ("decode (\(steps) steps)", median(ours.map(\.decode)), peerMedian { $0["decode_tps"] as? Double })
            ]
            for (what, a, b) in rows { print("| \(dtype) | \(what) | \(cell(a)) | \(cell(b)) | \(ratio(a, b)) |") }
            let gemv = gemvBandwidth(dtype, threads: threads)
            let stepBytes = Double(weightBytes(folder: folder))
            let decodeGBs = stepBytes * median(ours.map(\.decode)) / 1e9
            bandwidthLines.append(
                String(
                    format: "%@: gemv 8192x8192 alone %.1f GB/s (%.0f%% of the read bandwidth probed alternately with "
                        + "it, %.1f GB/s); decode step %.1f MB of weights at %.1f tok/s = %.1f GB/s (%.0f%% of %.1f)",
                    "\(dtype)", gemv.gemv, 100 * gemv.fraction, gemv.read, stepBytes / 1e6, median(ours.map(\.decode)),
                    decodeGBs, 100 * decodeGBs / readGBs, readGBs))
            if let peerTokens = theirs.first?["tokens"] as? [Int], let own = ours.first?.tokens {
                let same = zip(own, peerTokens).prefix { $0 == $1 }.count
                print(
                    "| \(dtype) | greedy ids equal to the peer's | \(same) of \(min(own.count, peerTokens.count)) | | |"
                )
            }
        } catch {
            print("| \(dtype) | failed: \(error) | | | |")
        }
    }
    print("")
    for line in bandwidthLines { print(line) }
}

/// One call of the transformers peer: its JSON, or why there is none.
private func transformersPeer(folder: String, prompt: [Int], lengths: [Int], steps: Int) -> Result<
    [String: Any], PeerError
> {
    let env = ProcessInfo.processInfo.environment
    if env["TESSERA_BENCH_NO_PEERS"] != nil { return .failure(PeerError("TESSERA_BENCH_NO_PEERS is set")) }
    let python = env["TESSERA_BENCH_PEER_PYTHON"] ?? "python3"
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("peers.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        python, script.path, "--transformers", folder, "--tokens", prompt.map(String.init).joined(separator: ","),
        "--lengths", lengths.map(String.init).joined(separator: ","), "--generate", String(steps), "--threads", "2",
        "--reps", "1"
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return .failure(PeerError("\(python): \(error)")) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        return .failure(PeerError("peers.py gave no result (exit \(process.terminationStatus))"))
    }
    if let error = json["error"] as? String { return .failure(PeerError(error)) }
    return .success(json)
}
