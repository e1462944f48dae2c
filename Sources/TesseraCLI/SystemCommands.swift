// `tessera devices`, `selftest` and `demo`: what the machine offers, the GPU
// checked against the CPU, and a small example computation.

import ArgumentParser
import Tessera
import TesseraLM
import TesseraLMSelfTest
import TesseraSelfTest

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List the devices Tessera can run on, with their memory.")

    init() {}

    func run() {
        for info in DeviceInfo.all() { print(info) }
    }
}

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run the op table on the GPU against the CPU (prints \"no GPU\" and exits 0 without one).")

    @Option(help: "Run only the rows whose name contains this text.")
    var filter: String?

    @Flag(help: "Time GEMM, bandwidth, qmv, attention and SmolLM2-shaped decode on the GPU instead.")
    var bench = false

    @Flag(help: "With --bench: fewer, smaller runs.")
    var quick = false

    init() {}

    func validate() throws {
        if quick && !bench { throw ValidationError("--quick goes with --bench") }
    }

    func run() throws {
        if bench { return try Self.gpuBench(quick: quick) }
        switch GPUSelfTest.run(filter: filter) {
        case .failure(let error):
            print("selftest: no GPU (\(error))")
        case .success(let rows):
            for row in rows { print(row) }
            let failed = rows.filter { !$0.passed }.count
            print("selftest: \(rows.count - failed)/\(rows.count) passed on gpu(0)")
            if failed > 0 { throw ExitCode.failure }
        }
    }

    /// The GPU op timings, then prefill/decode of a model with SmolLM2-135M's
    /// shapes and random 4-bit weights (the real file cannot travel to the GPU
    /// machine; speed does not depend on the values).
    static func gpuBench(quick: Bool) throws {
        switch GPUBench.run(quick: quick) {
        case .failure(let error):
            print("selftest --bench: no GPU (\(error))")
            return
        case .success(let rows):
            for row in rows { print(row) }
        }
        let layers = quick ? 2 : 30
        let config = SyntheticModel.smolLM2Config(layers: layers)
        for device in [Device.gpu(0), .cpu] {
            let stats = try withDevice(device) { () throws -> GenerationStats in
                let model = try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
                return try SyntheticModel.measureSpeed(model, promptTokens: quick ? 8 : 128, generate: quick ? 4 : 128)
            }
            print(
                "SmolLM2-135M-shaped 4-bit model (random weights, \(layers) layers) on \(device): "
                    + "prefill \(formatted(stats.promptTokensPerSecond)) tok/s, decode \(formatted(stats.tokensPerSecond)) tok/s"
            )
        }
    }
}

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Evaluate a small example computation.")

    init() {}

    func run() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let b = Tensor.ones([3], dtype: .float16)
        let c = (a * 2 + b).sum(axes: [1])
        print("a =", a)
        print("(a * 2 + ones(3)).sum(axes: [1]) =", c)
        print("matmul(a, a.T) =", matmul(a, a.T))
        print("softmax-like: exp(a) / exp(a).sum() =", exp(a) / exp(a).sum())
    }
}
