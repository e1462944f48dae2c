// Sampling defaults: a model folder's generation_config.json where it has one
// (temperature, top_p, top_k, min_p, repetition_penalty), else the built-in
// values, chosen so the default model gives a sensible, non-looping answer.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

struct SamplingDefaults: Equatable {
    var temperature: Float = 0.7
    var topP: Float = 0.9
    var topK = 0
    var minP: Float = 0
    /// nil: `samplingRepetitionPenalty` when sampling, none (1) when greedy.
    var repetitionPenalty: Float?
    /// The generation_config.json these came from; nil: the built-in values.
    var source: String?

    /// The repetition penalty when sampling and the model names none: without it
    /// SmolLM2-135M repeats one line over and over.
    static let samplingRepetitionPenalty: Float = 1.1

    static let builtIn = SamplingDefaults()

    /// The defaults for the model at `modelPath`: its folder's generation_config.json
    /// over the built-in values. A file that cannot be read is named in `warnings`.
    static func forModel(at modelPath: String?) -> (defaults: SamplingDefaults, warnings: [String]) {
        // A GGUF file has no folder of its own: nothing is found under it.
        guard let modelPath else { return (.builtIn, []) }
        let file = modelPath + "/generation_config.json"
        guard FileManager.default.fileExists(atPath: file) else { return (.builtIn, []) }
        do {
            // Refuses a FIFO or device before open could block; bounded like any config.
            return parse(try JSONValue(parsing: try readRegularFile(file, maxBytes: 1 << 20)), source: file)
        } catch {
            return (.builtIn, ["ignoring \(file): \(error)"])
        }
    }

    /// The built-in values overlaid by the keys of a generation_config.json that
    /// hold a value in range; a key out of range is named in `warnings` and skipped.
    static func parse(_ json: JSONValue, source: String) -> (defaults: SamplingDefaults, warnings: [String]) {
        var d = SamplingDefaults()
        d.source = source
        var warnings: [String] = []
        func number(_ key: String, valid: (Double) -> Bool, range: String) -> Double? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let x = value.double, x.isFinite, valid(x) else {
                warnings.append("\(source): ignoring \(key) (must be a number \(range))")
                return nil
            }
            return x
        }
        if let t = number("temperature", valid: { $0 >= 0 }, range: "≥ 0") { d.temperature = Float(t) }
        if let p = number("top_p", valid: { $0 > 0 && $0 <= 1 }, range: "in (0, 1]") { d.topP = Float(p) }
        if let k = number("top_k", valid: { $0 >= 0 && $0 == $0.rounded() && $0 < 1e9 }, range: "≥ 0, whole") {
            d.topK = Int(k)
        }
        if let m = number("min_p", valid: { $0 >= 0 && $0 <= 1 }, range: "in [0, 1]") { d.minP = Float(m) }
        if let r = number("repetition_penalty", valid: { $0 > 0 }, range: "> 0") { d.repetitionPenalty = Float(r) }
        return (d, warnings)
    }
}
