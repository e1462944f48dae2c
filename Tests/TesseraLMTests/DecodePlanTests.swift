// The captured decode step (DecodePlan) against the graph path: two
// generators over the same model, one replaying the captured step, one
// building every step's graph, in lockstep; after each step their logits must
// be equal bit for bit (the plan runs the graph's kernels with the graph's
// arguments), across the caches' growth, after a prompt longer than a
// capture, after trimming caches and continuing, on every ISA the kernel
// dispatch can pick; and the plan must step aside where it does not apply.

import Foundation
import Tessera
@testable import TesseraLM
import TesseraLMSelfTest
import XCTest

final class DecodePlanTests: XCTestCase {
    /// Small llama shapes where the attention of a decode step splits its 3
    /// key/value heads' keys over 2 threads past ~170 cached positions.
    static let config = """
        {"model_type": "llama", "hidden_size": 192, "intermediate_size": 256, "num_hidden_layers": 2,
         "num_attention_heads": 6, "num_key_value_heads": 3, "head_dim": 32, "vocab_size": 320,
         "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 2048,
         "tie_word_embeddings": true}
        """

    /// Greedy generation of `steps` tokens after `prompt` with and without
    /// the replay, compared after every step; returns the replaying
    /// generator's replayed steps (the graph one must have none).
    @discardableResult
    static func lockstep(
        _ model: any LanguageModel, prompt: [Int], steps: Int, caches: ([KVCache], [KVCache])? = nil,
        configure: (inout GenerateParameters) -> Void = { _ in }, _ label: String
    ) throws -> Int {
        var parameters = GenerateParameters()
        parameters.maxTokens = steps
        parameters.sampling = .greedy
        parameters.pipelined = false
        configure(&parameters)
        var graph = parameters
        graph.replayDecode = false
        var a = try TokenGenerator(model: model, prompt: prompt, parameters: parameters, cache: caches?.0)
        var b = try TokenGenerator(model: model, prompt: prompt, parameters: graph, cache: caches?.1)
        for step in 0..<steps {
            let ta = try a.next(), tb = try b.next()
            XCTAssertEqual(ta, tb, "\(label): token \(step)")
            guard ta == tb, let la = a.nextLogits, let lb = b.nextLogits else {
                XCTAssertNil(a.nextLogits, "\(label): step \(step)")
                XCTAssertNil(b.nextLogits, "\(label): step \(step)")
                break
            }
            let x = la.toArray(Float.self), y = lb.toArray(Float.self)
            XCTAssertEqual(x.count, y.count, label)
            if x.map(\.bitPattern) != y.map(\.bitPattern) {
                let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
                XCTFail("\(label): logits differ after step \(step) (largest difference \(worst))")
                break
            }
        }
        XCTAssertEqual(b.stats.replayedSteps, 0, label)
        return a.stats.replayedSteps
    }

    static func prompt(_ count: Int, vocabulary: Int, seed: Int = 1) -> [Int] {
        (0..<count).map { ($0 &* 7919 &+ seed &* 104_729) % vocabulary }
    }

    /// 300 steps from a short prompt: past the caches' first 256 positions
    /// (their buffers grow under the plan) and past the point where attention
    /// splits heads' keys over the pool; 4- and 8-bit, on every ISA; float32
    /// caches (`--kv-cache-type f32`; the float16 default: below).
    func testReplayedStepsEqualTheGraphBitForBit() throws {
        for bits in [4, 8] {
            let model = try SyntheticModel.llama(config: Self.config, bits: bits, groupSize: 32, scale: 0.08, seed: 3)
            for isa in _CPUKernels.supportedISAs.reversed() {
                let steps = isa == _CPUKernels.supportedISAs.last ? 300 : 40
                let replayed = try _CPUKernels.withISA(isa) {
                    try Self.lockstep(
                        model, prompt: Self.prompt(5, vocabulary: 320), steps: steps,
                        configure: { $0.kvCacheType = .f32 }, "\(bits)-bit, \(isa)")
                }
                XCTAssertEqual(replayed, steps - 1, "\(bits)-bit, \(isa): every step after the first token replays")
            }
        }
        // The float kernel of the 4-bit products (VNNI off) as well.
        let saved = _CPUKernels.qmvVNNI
        defer { _CPUKernels.qmvVNNI = saved }
        _CPUKernels.qmvVNNI = false
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 64, seed: 4)
        XCTAssertEqual(try Self.lockstep(model, prompt: Self.prompt(7, vocabulary: 320), steps: 40, "no VNNI"), 39)
        XCTAssertEqual(
            try Self.lockstep(
                model, prompt: Self.prompt(7, vocabulary: 320), steps: 40, configure: { $0.kvCacheType = .f32 },
                "no VNNI, float32 cache"), 39)
    }

    /// A float16 cache (the default): the plan's attention reads the half keys and values
    /// and widens them in registers (tk_attention with k_half/v_half), the
    /// graph converts the cache to float32 and runs the float32 kernel; the
    /// widening is exact, so the logits agree bit for bit, on every ISA.
    func testHalfPrecisionCacheReplayEqualsTheGraph() throws {
        XCTAssertEqual(GenerateParameters().kvCacheType, .f16, "the default")
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 32, scale: 0.08, seed: 8)
        for isa in _CPUKernels.supportedISAs.reversed() {
            let steps = isa == _CPUKernels.supportedISAs.last ? 300 : 40
            let replayed = try _CPUKernels.withISA(isa) {
                try Self.lockstep(
                    model, prompt: Self.prompt(5, vocabulary: 320), steps: steps,
                    "half cache, \(isa)")
            }
            XCTAssertEqual(replayed, steps - 1, isa)
        }
    }

    /// The float16 cache against the float32 one, teacher-forced over the
    /// same 160 tokens: keys and values rounded to half (relative error at
    /// most 2^-11 each) move the logits by at most 5e-3 × their largest
    /// magnitude on this random model (measured: 1.03e-3 × at worst over
    /// the 160 positions; SmolLM2's greedy ids are unchanged,
    /// SmolLM2ReferenceTests.testGreedyIdsAndTopLogitsMatchTheReference, the default).
    func testHalfPrecisionCacheStaysWithinItsBound() throws {
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 32, scale: 0.08, seed: 9)
        let tokens = Self.prompt(160, vocabulary: 320, seed: 4)
        let full = model.makeCache(maxSize: nil, quantization: nil)
        let half = model.makeCache(maxSize: nil, quantization: nil)
        for c in half { c.halfPrecision = true }
        var worst: Float = 0
        for (i, token) in tokens.enumerated() {
            let input = Tensor([Int32(token)], shape: [1, 1])
            let a = model(input, cache: full)[0, -1], b = model(input, cache: half)[0, -1]
            eval([a, b] + full.flatMap(\.state) + half.flatMap(\.state))
            let x = a.toArray(Float.self), y = b.toArray(Float.self)
            let scale = x.map(abs).max() ?? 1
            let difference = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            worst = max(worst, difference / scale)
            XCTAssertLessThanOrEqual(difference, 5e-3 * scale, "position \(i)")
        }
        XCTAssertEqual(half[0].state[0].dtype, .float16)
        XCTAssertGreaterThan(worst, 0, "the half cache rounds something")
        print("half-precision KV cache: largest logit difference \(worst) × the largest logit")
    }

    /// A 300-token prompt (prefilled through the graph into caches of 512
    /// positions) then replayed steps; then the caches trimmed by a few
    /// positions, continued with a new prompt, and decoded again; float16
    /// (the default) and float32 caches.
    func testAfterALongPromptAndAfterTrimmingTheCaches() throws {
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 32, scale: 0.08, seed: 5)
        for type in KVCacheType.allCases {
            var parameters = GenerateParameters()
            parameters.kvCacheType = type
            let configure = { (p: inout GenerateParameters) in p.kvCacheType = type }
            XCTAssertEqual(
                try Self.lockstep(
                    model, prompt: Self.prompt(300, vocabulary: 320), steps: 24, configure: configure,
                    "long prompt, \(type)"), 23)
            let caches = (parameters.makeCache(for: model), parameters.makeCache(for: model))
            try Self.lockstep(
                model, prompt: Self.prompt(250, vocabulary: 320, seed: 2), steps: 12, caches: caches,
                configure: configure, "first, \(type)")
            for (a, b) in zip(caches.0, caches.1) {
                XCTAssertEqual(a.offset, b.offset)
                a.removeLast(9)
                b.removeLast(9)
            }
            let replayed = try Self.lockstep(
                model, prompt: Self.prompt(3, vocabulary: 320, seed: 3), steps: 20, caches: caches,
                configure: configure, "after trimming, \(type)")
            XCTAssertEqual(replayed, 19)
            XCTAssertEqual(caches.0[0].offset, 250 + 11 - 9 + 3 + 19)
            XCTAssertEqual(caches.0[0].state[0].dtype, type.dtype)
        }
    }

    /// Where the plan does not apply the graph runs, with the same results:
    /// a rotating cache, a cache that turns quantized mid-generation (the
    /// plan steps aside from then on), a dense model.
    func testThePlanStepsAsideWhereItDoesNotApply() throws {
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 32, seed: 6)
        let prompt = Self.prompt(6, vocabulary: 320)
        XCTAssertEqual(
            try Self.lockstep(model, prompt: prompt, steps: 10, configure: { $0.maxKVSize = 64 }, "rotating"), 0)
        let replayed = try Self.lockstep(
            model, prompt: prompt, steps: 20,
            configure: {
                $0.kvQuantization = try? KVQuantization(bits: 8, groupSize: 32)
                $0.quantizedKVStart = 12
            }, "quantized from position 13")
        XCTAssertEqual(replayed, 12 - 6 + 1, "replayed until the caches turned quantized")
        let dense = try SyntheticModel.llama(config: Self.config, bits: nil, dtype: .float32, seed: 7)
        XCTAssertEqual(try Self.lockstep(dense, prompt: prompt, steps: 6, "dense"), 0)
    }

    /// The batched step (`step(_:)`, BatchedEngine's row-wise passes)
    /// against the engine's graph step (`stepOutputs`) in lockstep on two
    /// copies of every sequence's caches: sequences with prompts of the given
    /// lengths (prefilled through the graph), then `steps` passes over a
    /// changing subset of them (all, the odd ones, one), each sequence
    /// feeding one teacher-forced token or, every fourth pass, a chunk of up
    /// to 3 whose logits are wanted only every other time; the logits equal
    /// bit for bit. Returns the number of logit rows compared.
    @discardableResult
    static func batchedLockstep(
        _ model: TransformerModel, promptLengths: [Int], steps: Int, type: KVCacheType, _ label: String
    ) throws -> Int {
        let plan = try XCTUnwrap(DecodePlan.make(model), label)
        let vocabulary = model.configuration.vocabularySize
        let graph = promptLengths.map { _ in model.makeStepCache(type) }
        let replay = promptLengths.map { _ in model.makeStepCache(type) }
        for (s, n) in promptLengths.enumerated() {
            let prompt = Self.prompt(n, vocabulary: vocabulary, seed: s + 1)
            for caches in [graph[s], replay[s]] {
                let (_, evaluate) = model.stepOutputs([StepSegment(cache: caches, tokens: prompt, wantsLogits: false)])
                eval(evaluate)
            }
        }
        var compared = 0
        for step in 0..<steps {
            let members = promptLengths.indices.filter {
                switch step % 3 {
                case 0: return true
                case 1: return $0 % 2 == 1 || promptLengths.count == 1
                default: return $0 == step % promptLengths.count
                }
            }
            let segments = members.map { s in
                let n = step % 4 == 3 ? 1 + (s + step) % 3 : 1
                let tokens = (0..<n).map { (s * 131 + step * 37 + $0 * 7 + 11) % vocabulary }
                return (s, tokens, n == 1 || (s + step) % 2 == 0)
            }
            let (expected, evaluate) = model.stepOutputs(
                segments.map { StepSegment(cache: graph[$0.0], tokens: $0.1, wantsLogits: $0.2) })
            eval(evaluate)
            let result = try XCTUnwrap(
                plan.step(segments.map { StepSegment(cache: replay[$0.0], tokens: $0.1, wantsLogits: $0.2) }),
                "\(label): step \(step) replays")
            let wanted = segments.filter(\.2).count
            XCTAssertEqual(result.logits == nil, wanted == 0, label)
            if let logits = result.logits {
                let want = try XCTUnwrap(expected, label).toArray(Float.self)
                let got = logits.toArray(Float.self)
                XCTAssertEqual(got.count, wanted * vocabulary, label)
                if got.map(\.bitPattern) != want.map(\.bitPattern) {
                    let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                    XCTFail("\(label): rows of \(members) differ at step \(step) (largest difference \(worst))")
                    return compared
                }
                compared += wanted
            }
            for s in members {
                XCTAssertEqual(replay[s].map(\.length), graph[s].map(\.length), label)
                XCTAssertEqual(replay[s].last?.offset, graph[s].last?.offset, label)
            }
        }
        // The caches' contents too: every key and value the two wrote.
        for (a, b) in zip(graph, replay) {
            for (x, y) in zip(a, b) {
                for (p, q) in zip(x.state, y.state) {
                    XCTAssertEqual(
                        p.toArray(Float.self).map(\.bitPattern), q.toArray(Float.self).map(\.bitPattern), label)
                }
            }
        }
        return compared
    }

    /// Up to 5 sequences at different positions, some crossing the caches'
    /// first 256 positions and the length where attention splits keys over
    /// the pool; 4- and 8-bit, float16 and float32 caches, on every ISA.
    func testBatchedReplayEqualsTheEnginesGraphStepBitForBit() throws {
        for bits in [4, 8] {
            let model = try SyntheticModel.llama(config: Self.config, bits: bits, groupSize: 32, scale: 0.08, seed: 11)
            for isa in _CPUKernels.supportedISAs.reversed() {
                for type in KVCacheType.allCases {
                    let label = "\(bits)-bit, \(isa), \(type)"
                    let long = isa == _CPUKernels.supportedISAs.last && type == .f16
                    let rows = try _CPUKernels.withISA(isa) {
                        try Self.batchedLockstep(
                            model, promptLengths: [3, 240, 17, 1, 160], steps: long ? 30 : 9, type: type, label)
                    }
                    XCTAssertGreaterThan(rows, long ? 60 : 18, label)
                }
            }
        }
        // q/k/v biases (each row's added per column range) and an untied 8-bit head over several rows.
        let biased = try SyntheticModel.llama(
            config: Self.config.replacingOccurrences(
                of: "\"tie_word_embeddings\": true", with: "\"tie_word_embeddings\": false, \"attention_bias\": true"),
            bits: 8, groupSize: 64, scale: 0.08, seed: 14)
        XCTAssertNotNil(biased.lmHead)
        XCTAssertNotNil(biased.model.layers[0].selfAttention.qProj?.bias)
        XCTAssertGreaterThan(
            try Self.batchedLockstep(biased, promptLengths: [2, 30, 7], steps: 9, type: .f16, "biases, untied head"), 9)
        // The float kernel of the 4-bit products (VNNI off), and one sequence alone.
        let saved = _CPUKernels.qmvVNNI
        defer { _CPUKernels.qmvVNNI = saved }
        _CPUKernels.qmvVNNI = false
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 64, seed: 12)
        try Self.batchedLockstep(model, promptLengths: [4, 9, 30], steps: 6, type: .f16, "no VNNI")
        try Self.batchedLockstep(model, promptLengths: [5], steps: 4, type: .f32, "one sequence")
    }

    /// Where the batched step does not apply it returns nil and leaves the
    /// caches as they were: more rows than the products take row by row, a
    /// quantized cache beside a growing one, a token outside the vocabulary.
    func testBatchedReplayStepsAsideWithoutTouchingTheCaches() throws {
        let model = try SyntheticModel.llama(config: Self.config, bits: 4, groupSize: 32, seed: 13)
        let plan = try XCTUnwrap(DecodePlan.make(model))
        let many = (0...DecodePlan.maxRows).map { _ in model.makeStepCache(.f16) }
        XCTAssertNil(plan.step(many.map { StepSegment(cache: $0, tokens: [7], wantsLogits: true) }))
        XCTAssertTrue(many.allSatisfy { $0.allSatisfy { $0.length == 0 } })
        let chunk = model.makeStepCache(.f16)
        XCTAssertNil(
            plan.step([StepSegment(cache: chunk, tokens: [Int](repeating: 3, count: 17), wantsLogits: true)]),
            "a chunk over 16 tokens is the prefill product's")
        XCTAssertTrue(chunk.allSatisfy { $0.length == 0 })
        let quantized = model.makeStepCache(.f16), fresh = model.makeStepCache(.f16)
        let (_, evaluate) = model.stepOutputs([StepSegment(cache: quantized, tokens: [1, 2, 3, 4], wantsLogits: false)])
        eval(evaluate)
        for c in quantized { c.startQuantizing(try KVQuantization(bits: 8, groupSize: 32)) }
        XCTAssertNil(
            plan.step([
                StepSegment(cache: fresh, tokens: [5], wantsLogits: true),
                StepSegment(cache: quantized, tokens: [6], wantsLogits: true)
            ]))
        XCTAssertEqual(quantized.map(\.length), [4, 4])
        XCTAssertTrue(fresh.allSatisfy { $0.length == 0 }, "the other sequence's caches are untouched too")
        XCTAssertNil(
            plan.step([StepSegment(cache: fresh, tokens: [5, 320], wantsLogits: true)]),
            "a token outside the vocabulary")
        XCTAssertNotNil(plan.step([StepSegment(cache: fresh, tokens: [5, 6], wantsLogits: true)]))
        XCTAssertTrue(fresh.allSatisfy { $0.length == 2 })
    }

    /// The default model (SmolLM2-135M Q4_1 GGUF) when present: replayed and
    /// graph steps equal bit for bit from a reference prompt, and after
    /// trimming and continuing.
    func testSmolLM2ReplayEqualsTheGraph() throws {
        let loaded = try ModelLoader.load(try SmolLM2ReferenceTests.modelPath())
        let reference =
            try JSONSerialization.jsonObject(with: Data(contentsOf: SmolLM2ReferenceTests.referenceURL))
            as! [String: Any]
        let prompts = reference["prompts"] as! [String: [String: Any]]
        let ids = prompts.sorted(by: { $0.key < $1.key }).first!.value["prompt_ids"] as! [Int]
        let model = loaded.model
        // The default (float16) caches.
        let caches = (GenerateParameters().makeCache(for: model), GenerateParameters().makeCache(for: model))
        XCTAssertEqual(try Self.lockstep(model, prompt: ids, steps: 8, caches: caches, "SmolLM2"), 7)
        XCTAssertEqual(caches.0[0].state[0].dtype, .float16)
        for (a, b) in zip(caches.0, caches.1) {
            a.removeLast(5)
            b.removeLast(5)
        }
        XCTAssertEqual(
            try Self.lockstep(model, prompt: Array(ids.prefix(4)), steps: 5, caches: caches, "SmolLM2 trimmed"), 4)
    }
}
