// `tessera-bench generate-peak-rss MODEL PROMPT N`: what `tessera generate -m
// MODEL -p PROMPT -n N --temp 0` does (load, chat template, greedy generation
// through TextGenerator), then the process's peak RSS (VmHWM) on stderr.
// Tools/bench_peak_rss.py runs it as a child, next to the CLI and llama.cpp,
// when a release build of the CLI is not at hand.

import Foundation
import Tessera
import TesseraLM

func runGeneratePeakRSS(_ arguments: [String]) {
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        await generatePeakRSS(arguments)
        done.signal()
    }
    done.wait()
}

private func generatePeakRSS(_ arguments: [String]) async {
    guard arguments.count == 3, let count = Int(arguments[2]), count > 0 else {
        FileHandle.standardError.write(Data("usage: tessera-bench generate-peak-rss MODEL PROMPT TOKENS\n".utf8))
        exit(64)
    }
    do {
        let loaded = try ModelLoader.load(arguments[0])
        let generator = try TextGenerator(loaded: loaded)
        let prompt = try generator.promptTokens(messages: [ChatMessage(role: "user", content: arguments[1])])
        var parameters = GenerateParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = count
        var produced = 0
        for try await event in generator.generate(prompt: prompt, parameters: parameters) {
            if case .token = event { produced += 1 }
        }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? "VmHWM: unknown"
        FileHandle.standardError.write(
            Data(
                ("\(produced) tokens; \(hwm); tensors: live \(Memory.activeBytes >> 20) MiB, peak "
                    + "\(Memory.peakBytes >> 20) MiB, cached for reuse \(Memory.cacheBytes >> 20) MiB\n").utf8))
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        exit(1)
    }
}
