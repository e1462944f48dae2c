// The structured-output token filter: the cost of one step (the allowed ids
// over SmolLM2's 49k-piece vocabulary, found by the trie walk) along a JSON
// reply, and of building the vocabulary trie once.

import Foundation
import Tessera
import TesseraLM

func runStructuredSuite() {
    let env = ProcessInfo.processInfo.environment
    guard let path = env["TESSERA_BENCH_MODEL"] ?? DefaultModel.cachedPath() else {
        print(
            "structured suite: no model (set TESSERA_BENCH_MODEL, or fetch the default with `swift run tessera generate`)"
        )
        return
    }
    let tokenizer: Tokenizer
    do { tokenizer = try ModelLoader.load(path).tokenizer() } catch {
        print("structured suite: cannot load \(path): \(error)")
        return
    }
    let start = DispatchTime.now().uptimeNanoseconds
    let vocabulary = TokenVocabulary(tokenizer: tokenizer)
    let build = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    let schema: JSONValue = [
        "type": "object",
        "properties": [
            "name": ["type": "string"], "age": ["type": "integer"],
            "tags": ["type": "array", "items": ["type": "string"], "maxItems": 4],
            "unit": ["enum": ["celsius", "fahrenheit"]], "score": ["type": ["number", "null"]]
        ],
        "required": ["name", "age"], "additionalProperties": false
    ]
    let reply =
        "{\"name\": \"Ada Lovelace, the first programmer\", \"age\": 36, \"tags\": [\"math\", \"engines\"], \"unit\": \"celsius\", \"score\": 9.5}"
    let ids = tokenizer.encode(reply, addSpecialTokens: false)
    let end: Set<Int> = Set([tokenizer.eosTokenID].compactMap { $0 })
    print(
        "structured suite: \(path), vocabulary \(tokenizer.vocabularySize) ids; trie built in \(String(format: "%.1f", build * 1000)) ms"
    )
    print(
        "a \(ids.count)-token reply under a 5-property schema, 5 repetitions; per-step time of JSONConstraint.next (the allowed ids)"
    )
    var perStep = [[Double]](repeating: [], count: ids.count + 1)
    var allowedCounts = [Int](repeating: 0, count: ids.count + 1)
    for _ in 0..<5 {
        guard let constraint = try? JSONConstraint(format: .jsonSchema(schema), vocabulary: vocabulary, endTokens: end)
        else {
            print("structured suite: the schema did not compile")
            return
        }
        for step in 0...ids.count {
            let t = DispatchTime.now().uptimeNanoseconds
            let c = constraint.next(generated: Array(ids[..<step]))
            perStep[step].append(Double(DispatchTime.now().uptimeNanoseconds - t) * 1e-9)
            if case .allowed(let set) = c { allowedCounts[step] = set.count }
        }
    }
    let medians = perStep.map(median)
    let sorted = medians.sorted()
    print("| steps | median step | p90 step | max step | mean allowed ids |")
    print("|---|---|---|---|---|")
    let p90 = sorted[min(sorted.count - 1, sorted.count * 9 / 10)]
    let meanAllowed = Double(allowedCounts.reduce(0, +)) / Double(allowedCounts.count)
    print(
        String(
            format: "| %d | %.2f ms | %.2f ms | %.2f ms | %.0f |", medians.count, median(medians) * 1000, p90 * 1000,
            (sorted.last ?? 0) * 1000, meanAllowed))
}
