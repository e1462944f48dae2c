// The train suite: LoRA fine-tuning speed and peak memory of SmolLM2-135M
// (the cached default model, Q4_1 GGUF: QLoRA on a 4-bit base) beside
// torch + peft on the float32 model (the same GGUF dequantized, CPU, 2
// threads) and mlx-lm (CPU, the float32 folder quantized to 4 bits, group 32),
// on the same token ids, in one run.
//
// Every contestant runs in a process of its own (so each peak RSS is its
// own: model, framework and training), does the same work per step (batch 4,
// 256 inputs and 256 targets per row, all counted; LoRA rank 8, scale 20 on
// q/k/v/o/gate/up/down of the last 16 blocks; Adam 1e-5; loss, gradients,
// update, evaluated), and the rounds are interleaved: Tessera, torch,
// mlx-lm, Tessera, ... Reported: tokens/s from the median step time over all
// rounds' timed steps (4 × 256 tokens a step), the median peak RSS, the RSS
// growth from the loaded model to the peak (the training's own memory), and
// the framework's allocator peak where it has one. The ids are the committed
// LoRA data (Tests/Fixtures/lora/train.jsonl) through the chat template,
// concatenated and cut into rows of 257.
//
//   swift run -c release --package-path Benchmarks tessera-bench train
//   TESSERA_BENCH_MODEL         the GGUF (default: the cached default model)
//   TESSERA_BENCH_REPS          rounds (default 3)
//   TESSERA_BENCH_TRAIN_STEPS   timed steps per process (default 3, after 1 warm-up step)
//   TESSERA_BENCH_TRAIN_PYTHON  a python with torch, peft, transformers, gguf,
//                               mlx and mlx-lm (default python3); a peer whose
//                               packages are missing says so in the table
//   TESSERA_BENCH_TRAIN_PEERS   which peers run (default torch,mlx)
//   TESSERA_BENCH_TRAIN_TIMEOUT seconds before a process is stopped (default 1800)
//   TESSERA_BENCH_TRAIN_PRECISION high (default: what `tessera lora` runs with,
//                               its --precision default: the 4-bit products of
//                               the forward pass on integer dot products, x
//                               rounded to 16 bits per block) or highest (the
//                               float32 GEMM on dequantized weights)
//   TESSERA_BENCH_TRAIN_INT8_HEAD 0: at high, the 8-bit head's forward on the
//                               float32 GEMM (default 1: integer dot products,
//                               as `tessera lora --precision high`)

import Foundation
import Tessera
import TesseraLM
import TesseraNN
import TesseraOptimizers

private let trainBatch = 4
private let trainSequence = 256
private let trainKeys = [
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
    "mlp.down_proj"
]

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// `count` batches of `trainBatch` rows of `trainSequence + 1` ids.
private func trainingBatches(_ tokenizer: Tokenizer, count: Int) throws -> [[[Int]]] {
    let data = repositoryRoot.appendingPathComponent("Tests/Fixtures/lora").path
    let examples = try FineTuningData.load(folder: data, split: "train", tokenizer: tokenizer, maskPrompt: false)
    var stream: [Int] = []
    let needed = count * trainBatch * (trainSequence + 1)
    while stream.count < needed {
        for e in examples { stream += e.tokens }
    }
    let rows = (0..<(count * trainBatch)).map {
        Array(stream[$0 * (trainSequence + 1)..<($0 + 1) * (trainSequence + 1)])
    }
    return (0..<count).map { Array(rows[$0 * trainBatch..<($0 + 1) * trainBatch]) }
}

/// The peak resident set (VmHWM) of this process in bytes, from /proc.
private func peakRSS() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        if let kib = line.split(separator: " ").compactMap({ Int($0) }).first { return kib * 1024 }
    }
    return nil
}

/// One Tessera training run (`tessera-bench train-worker GGUF BATCHES WARMUP STEPS`): prints a JSON line.
func runTrainWorker(_ arguments: [String]) {
    func fail(_ why: String) -> Never {
        print("{\"error\": \"\(why.replacingOccurrences(of: "\"", with: "'"))\"}")
        exit(0)
    }
    guard arguments.count == 4, let warmup = Int(arguments[2]), let steps = Int(arguments[3]) else {
        fail("usage: train-worker GGUF BATCHES WARMUP STEPS")
    }
    do {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: arguments[1])))
        guard let batches = (json as? [String: Any])?["batches"] as? [[[Int]]], !batches.isEmpty else {
            fail("no batches in \(arguments[1])")
        }
        switch ProcessInfo.processInfo.environment["TESSERA_BENCH_TRAIN_PRECISION"] ?? "high" {
        case "high":
            QuantizedMatmulPrecision.current = .high
            // as `tessera lora` at high; TESSERA_BENCH_TRAIN_INT8_HEAD=0 keeps the head on the float kernel
            QuantizedMatmulPrecision.integerEightBitProducts =
                ProcessInfo.processInfo.environment["TESSERA_BENCH_TRAIN_INT8_HEAD"] != "0"
        case "highest": QuantizedMatmulPrecision.current = .highest
        case let other: fail("TESSERA_BENCH_TRAIN_PRECISION must be high or highest, got \(other)")
        }
        let loaded = try ModelLoader.load(arguments[0])
        guard let model = loaded.model as? TransformerModel else { fail("not a module tree") }
        try Adapters.apply(
            to: model, AdapterConfig(numLayers: 16, parameters: LoRAParameters(rank: 8, scale: 20), keys: trainKeys),
            seed: 0)
        let optimizer = Adam(learningRate: 1e-5)
        let step = valueAndGrad(model: model) { (m: TransformerModel, args: [Tensor]) in
            [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
        }
        model.train(true)
        let tensors = batches.map { rows in
            Tensor(rows.flatMap { $0.map { Int32(truncatingIfNeeded: $0) } }, shape: [rows.count, rows[0].count])
        }
        let mask = Tensor.ones([batches[0].count, batches[0][0].count - 1], dtype: .float32)
        eval(tensors + [mask])
        let loadedRSS = peakRSS() ?? 0
        Memory.resetPeak()
        var times: [Double] = []
        var losses: [Float] = []
        for i in 0..<(warmup + steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            let (values, grads) = step(model, [tensors[i % tensors.count], mask])
            optimizer.update(model: model, gradients: grads)
            eval(model, optimizer, values[0])
            let loss = values[0].item(Float.self)
            if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9) }
            losses.append(loss)
        }
        let out: [String: Any] = [
            "times": times, "losses": losses.map(Double.init), "peak_rss": peakRSS() ?? 0, "rss_loaded": loadedRSS,
            "framework_peak": Memory.peakBytes, "threads": _CPUKernels.threadCount
        ]
        let data = try JSONSerialization.data(withJSONObject: out)
        print(String(decoding: data, as: UTF8.self))
    } catch {
        fail("\(error)")
    }
}

private struct TrainFigures {
    var times: [Double] = []
    var peakRSS: [Int] = []
    var growth: [Int] = []
    var frameworkPeak: [Int] = []
    var firstLoss: Double?
    var failure: String?
}

/// Runs `arguments` and reads the JSON line it prints last; stopped after `timeout` seconds.
private func runJSON(_ arguments: [String], timeout: Double) -> Result<[String: Any], PeerError> {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return .failure(PeerError("\(arguments[0]): \(error)")) }
    let pid = process.processIdentifier
    let timer = DispatchWorkItem { kill(pid, SIGTERM) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    timer.cancel()
    if process.terminationReason == .uncaughtSignal {
        return .failure(PeerError("stopped after \(Int(timeout)) s (TESSERA_BENCH_TRAIN_TIMEOUT)"))
    }
    let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    guard let json = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
        return .failure(PeerError("no result (exit \(process.terminationStatus))"))
    }
    if let error = json["error"] as? String { return .failure(PeerError(error)) }
    return .success(json)
}

private func record(_ result: Result<[String: Any], PeerError>, into figures: inout TrainFigures) {
    switch result {
    case .failure(let why): figures.failure = figures.failure ?? why.description
    case .success(let json):
        figures.times += (json["times"] as? [Double]) ?? []
        if let peak = json["peak_rss"] as? Int, peak > 0 {
            figures.peakRSS.append(peak)
            if let loaded = json["rss_loaded"] as? Int, loaded > 0 { figures.growth.append(peak - loaded) }
        }
        if let peak = json["framework_peak"] as? Int { figures.frameworkPeak.append(peak) }
        if figures.firstLoss == nil { figures.firstLoss = (json["losses"] as? [Double])?.first }
    }
}

func runTrainSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let gguf = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print("train suite: no model (set TESSERA_BENCH_MODEL, or fetch the default with `swift run tessera generate`)")
        return
    }
    let rounds = max(1, Int(env["TESSERA_BENCH_REPS"] ?? "") ?? 3)
    let steps = max(1, Int(env["TESSERA_BENCH_TRAIN_STEPS"] ?? "") ?? 3)
    let warmup = 1
    let python = env["TESSERA_BENCH_TRAIN_PYTHON"] ?? "python3"
    let timeout = max(1, Double(env["TESSERA_BENCH_TRAIN_TIMEOUT"] ?? "") ?? 1800)
    let chosen = Set((env["TESSERA_BENCH_TRAIN_PEERS"] ?? "torch,mlx").split(separator: ",").map(String.init))
    let peers = repositoryRoot.appendingPathComponent("Benchmarks/train_peers.py").path
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-train-\(getpid())")
    defer { try? FileManager.default.removeItem(at: work) }
    let batchFile = work.appendingPathComponent("batches.json")
    do {
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let tokenizer = try ModelLoader.load(gguf).tokenizer()
        let batches = try trainingBatches(tokenizer, count: warmup + steps)
        try JSONSerialization.data(withJSONObject: ["batches": batches]).write(to: batchFile)
    } catch {
        print("train suite: cannot prepare the batches from \(gguf): \(error)")
        return
    }
    // The float32 model for the peers, made once from the same GGUF.
    let noPeers = env["TESSERA_BENCH_NO_PEERS"] != nil
    let cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tessera/bench")
    let floatFolder = cache.appendingPathComponent(
        URL(fileURLWithPath: gguf).deletingPathExtension().lastPathComponent + "-f32"
    ).path
    var peerFailure: String? = noPeers ? "TESSERA_BENCH_NO_PEERS is set" : nil
    if !noPeers && !FileManager.default.fileExists(atPath: floatFolder + "/model.safetensors") {
        print("train suite: writing the float32 model for the peers to \(floatFolder)")
        if case .failure(let why) = runJSON(
            [python, peers, "prepare", "--gguf", gguf, "--out", floatFolder], timeout: timeout)
        {
            peerFailure = "the float32 model: \(why)"
        }
    }
    print("train suite: \(gguf)")
    print(
        "LoRA rank 8 on q/k/v/o/gate/up/down of the last 16 blocks, batch \(trainBatch) × \(trainSequence) tokens, Adam;"
            + " \(rounds) interleaved rounds, each a fresh process per contestant: \(warmup) warm-up + \(steps) timed steps;"
            + " Tessera \(_CPUKernels.threadCount) threads, precision "
            + (ProcessInfo.processInfo.environment["TESSERA_BENCH_TRAIN_PRECISION"] ?? "high") + "; torch 2 threads")
    let me = CommandLine.arguments[0]
    var ours = TrainFigures(), torch = TrainFigures(), mlx = TrainFigures()
    let common = ["--batches", batchFile.path, "--warmup", String(warmup), "--steps", String(steps)]
    for _ in 0..<rounds {
        record(
            runJSON([me, "train-worker", gguf, batchFile.path, String(warmup), String(steps)], timeout: timeout),
            into: &ours)
        if peerFailure == nil {
            // A peer that failed or timed out once is not run again.
            if chosen.contains("torch") && torch.failure == nil {
                record(
                    runJSON([python, peers, "torch", "--model", floatFolder] + common, timeout: timeout), into: &torch)
            }
            if chosen.contains("mlx") && mlx.failure == nil {
                record(runJSON([python, peers, "mlx", "--model", floatFolder] + common, timeout: timeout), into: &mlx)
            }
        }
    }
    if let peerFailure { (torch.failure, mlx.failure) = (peerFailure, peerFailure) }
    if !chosen.contains("torch") { torch.failure = "not in TESSERA_BENCH_TRAIN_PEERS" }
    if !chosen.contains("mlx") { mlx.failure = "not in TESSERA_BENCH_TRAIN_PEERS" }
    let tokensPerStep = Double(trainBatch * trainSequence)
    func rate(_ f: TrainFigures) -> Double? { f.times.isEmpty ? nil : tokensPerStep / median(f.times) }
    func mb(_ xs: [Int]) -> String { xs.isEmpty ? "–" : String(format: "%.0f MB", median(xs.map(Double.init)) / 1e6) }
    let torchRate = rate(torch)
    print("")
    print(
        "| contestant | tokens/s | vs torch+peft | peak RSS | RSS growth in training | allocator peak | step-0 loss |")
    print("|---|---|---|---|---|---|---|")
    for (name, f) in [
        ("Tessera (QLoRA, Q4_1 GGUF)", ours), ("torch + peft (float32)", torch), ("mlx-lm (CPU, 4-bit g32)", mlx)
    ] {
        guard let r = rate(f) else {
            print("| \(name) | – | – | – | – | – | – |")
            continue
        }
        let ratio = torchRate.map { String(format: "%.2f×", r / $0) } ?? "–"
        let loss = f.firstLoss.map { String(format: "%.3f", $0) } ?? "–"
        print(
            "| \(name) | \(String(format: "%.0f", r)) | \(ratio) | \(mb(f.peakRSS)) | \(mb(f.growth)) | "
                + "\(mb(f.frameworkPeak)) | \(loss) |")
    }
    for (name, f) in [("Tessera", ours), ("torch + peft", torch), ("mlx-lm", mlx)] {
        if let why = f.failure { print("\n\(name): \(why)") }
        if !f.times.isEmpty {
            print("\(name) step seconds: " + f.times.map { String(format: "%.2f", $0) }.joined(separator: ", "))
        }
    }
}
