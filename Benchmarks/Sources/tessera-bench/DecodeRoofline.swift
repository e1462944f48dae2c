// The decode roofline for the lm suite: the machine's read bandwidth with 2
// threads, measured in the same run, and the bytes one decode step must read
// (every weight of the products and the head once, plus the cached keys and
// values of every layer). A step can take no less than bytes / bandwidth; the
// fraction of the roofline is that bound over the measured step time.

import Foundation
import Tessera
import TesseraLM
import TesseraNN

/// Streaming read bandwidth in bytes/s with `threads` threads: each sums its
/// half of a buffer far larger than the last-level cache (256 MiB), with four
/// independent vector accumulators; best of `reps` passes (the least disturbed).
func readBandwidth(threads: Int = 2, reps: Int = 5) -> Double {
    let floats = 64 << 20  // 256 MiB
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1, count: floats)
    let bufferAddress = Int(bitPattern: buffer)
    // One slot per thread for its sum (keeps the loads from being optimized away).
    let sums = UnsafeMutablePointer<Float>.allocate(capacity: threads * 16)
    defer { sums.deallocate() }
    let sinkAddress = Int(bitPattern: sums)
    var best = 0.0
    for _ in 0..<reps {
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let per = floats / threads
            guard let origin = UnsafeRawPointer(bitPattern: bufferAddress) else { return }
            let base = origin + t * per * 4
            var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
            var at = 0
            while at + 64 <= per {
                a += base.loadUnaligned(fromByteOffset: at * 4, as: SIMD16<Float>.self)
                b += base.loadUnaligned(fromByteOffset: at * 4 + 64, as: SIMD16<Float>.self)
                c += base.loadUnaligned(fromByteOffset: at * 4 + 128, as: SIMD16<Float>.self)
                d += base.loadUnaligned(fromByteOffset: at * 4 + 192, as: SIMD16<Float>.self)
                at += 64
            }
            UnsafeMutablePointer<Float>(bitPattern: sinkAddress).map { $0[t * 16] = (a + b + c + d).sum() }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        best = max(best, Double(floats * 4) / seconds)
    }
    if (0..<threads).contains(where: { sums[$0 * 16].isNaN }) { print("(bandwidth probe: NaN sum)") }
    return best
}

/// Bytes a decode step reads: every parameter (the quantized products, the
/// tied embeddings as the head, norms) once, less an untied embedding table
/// (one row is read), plus the keys and values of `positions` cached
/// positions in every layer at `kvBytes` bytes per element (Tessera's caches
/// are float32: 4).
struct DecodeBytes {
    var weights: Int
    var kvPerPosition: Int

    init?(_ model: any LanguageModel, kvBytes: Int = 4) {
        guard let transformer = model as? TransformerModel else { return nil }
        let c = transformer.configuration
        var total = 0, embedding = 0
        for (key, value) in transformer.parameters().flattened() {
            total += value.nbytes
            if key.hasPrefix("model.embed_tokens.") { embedding += value.nbytes }
        }
        weights = c.tiedEmbeddings ? total : total - embedding
        kvPerPosition = c.layerCount * 2 * c.kvHeadCount * c.headDim * kvBytes
    }

    /// Mean bytes per step of `steps` steps after a prompt of `prompt` positions.
    func perStep(prompt: Int, steps: Int) -> Double {
        Double(weights) + Double(kvPerPosition) * (Double(prompt) + Double(steps) / 2)
    }
}
