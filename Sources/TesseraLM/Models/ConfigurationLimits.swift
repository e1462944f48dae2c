// The allowed range of every configuration field read from a config.json or
// a GGUF file's metadata, checked as the field is read, before the value
// sizes anything (an array of layers, rope frequencies, a cache). The ranges
// hold every released model with room to spare (Llama 3.1 405B: 126 layers,
// 128 heads, hidden 16384, intermediate 53248; Gemma 3: vocabulary 262144);
// what is outside them is a corrupt or hostile file.

import Tessera

enum ConfigurationLimits {
    static let layers = 1...1024
    static let heads = 1...1024
    static let headDim = 1...4096
    static let hidden = 1...131_072
    static let intermediate = 1...1_048_576
    static let vocabulary = 1...(1 << 22)
    static let context = 1...(1 << 24)
    static let slidingWindow = 1...(1 << 24)
    /// heads × head_dim (the width of q and of the attention output).
    static let projection = 1...262_144
    /// rope_theta and rope.freq_base.
    static let ropeBase = 1e12
    /// Rope scaling factors (linear, llama3).
    static let ropeFactor = 1e6
    static let rmsEps = 1.0
    static let softcap = 1e6
    static let partialRotary = 1.0

    /// `value` when it lies in `range`; else `ModelError.configurationField` naming `field`.
    static func check(_ field: String, _ value: Int, _ range: ClosedRange<Int>) throws -> Int {
        guard range.contains(value) else {
            throw ModelError.configurationField(
                field: field, value: String(value), allowed: "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// `value` when it is finite, positive and at most `max`.
    static func positive(_ field: String, _ value: Double, max: Double) throws -> Double {
        guard value.isFinite, value > 0, value <= max else {
            throw ModelError.configurationField(
                field: field, value: "\(value)", allowed: "a finite number in (0, \(max)]")
        }
        return value
    }

    /// `a * b` when it does not overflow and lies in `range`.
    static func product(_ field: String, _ a: Int, _ b: Int, _ range: ClosedRange<Int>) throws -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else {
            throw ModelError.configurationField(
                field: field, value: "\(a) × \(b) (overflows)", allowed: "\(range.lowerBound)...\(range.upperBound)")
        }
        return try check(field, p, range)
    }
}

extension TransformerConfiguration {
    /// A lower bound on the parameter count the configuration implies (the
    /// embedding and every layer's attention and MLP matrices), nil when it
    /// overflows.
    var minimumParameterCount: Int? {
        func mul(_ xs: Int...) -> Int? {
            var p = 1
            for x in xs {
                let (r, o) = p.multipliedReportingOverflow(by: x)
                if o { return nil }
                p = r
            }
            return p
        }
        guard let embedding = mul(vocabularySize, hiddenSize), let q = mul(hiddenSize, headCount, headDim),
            let kv = mul(2, hiddenSize, kvHeadCount, headDim), let mlp = mul(3, hiddenSize, intermediateSize)
        else { return nil }
        let (layer, o1) = (2 * q).addingReportingOverflow(kv)
        let (layerAll, o2) = layer.addingReportingOverflow(mlp)
        guard !o1, !o2, let layers = mul(layerAll, layerCount) else { return nil }
        let (total, o3) = layers.addingReportingOverflow(embedding)
        return o3 ? nil : total
    }

    /// The configuration fits in `bytes` of weights: no format stores a
    /// parameter in less than one bit, so a configuration implying more than
    /// 8 parameters per byte describes weights the files cannot hold.
    func checkFits(weightBytes bytes: Int) throws {
        let (limit, overflow) = bytes.multipliedReportingOverflow(by: 8)
        guard let count = minimumParameterCount, overflow || count <= limit else {
            throw ModelError.configurationField(
                field: "the sizes (layers × heads × dims, vocabulary × hidden)",
                value: minimumParameterCount.map { "\($0) parameters" } ?? "an overflowing parameter count",
                allowed: "at most 8 parameters per byte of weights (\(bytes) bytes)")
        }
    }
}
