// The floatlm suite's bandwidth lines: the machine's read bandwidth on the
// threads Tessera uses, a float gemv alone on a matrix larger than the
// caches, and a decode step's weight bytes over its time.

import Foundation
import Tessera

/// Read bandwidth in GB/s: `threads` threads each summing its part of a
/// 512 MiB buffer with 8 independent float sums (loads only), median of 5.
func floatReadBandwidth(threads: Int, reps: Int = 5) -> Double {
    let count = (512 << 20) / 4
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1, count: count)
    let base = Int(bitPattern: buffer)  // addresses are Sendable
    let chunk = count / threads / 64 * 64
    let sink = UnsafeMutablePointer<Float>.allocate(capacity: threads)
    defer { sink.deallocate() }
    let sinkBase = Int(bitPattern: sink)
    let t = time(reps, warmup: 1) {
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            let p = UnsafePointer<SIMD16<Float>>(bitPattern: base + i * chunk * 4)!
            var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0
            for j in stride(from: 0, to: chunk / 16, by: 4) {
                a0 += p[j]
                a1 += p[j + 1]
                a2 += p[j + 2]
                a3 += p[j + 3]
            }
            UnsafeMutablePointer<Float>(bitPattern: sinkBase)![i] = (a0 + a1 + a2 + a3).sum()
        }
    }
    return Double(chunk * threads * 4) / t / 1e9
}

/// A float model's decode product alone: W [8192, 8192] of `dtype` (128-256
/// MiB, past the caches) times a float32 vector, in GB/s of weight bytes read,
/// against the read bandwidth on `threads` threads measured alternately with
/// it (`rounds` pairs; a shared VM's bandwidth drifts by tens of percent within
/// a minute, so a probe taken once at the start misstates the fraction):
/// medians of the gemv, of the probe, and of each pair's ratio.
func gemvBandwidth(_ dtype: DType, threads: Int, rounds: Int = 5) -> (gemv: Double, read: Double, fraction: Double) {
    let n = 8192
    let w = randomTensor([n, n], seed: 11, dtype: dtype), x = randomTensor([1, n], seed: 12)
    var gemvs: [Double] = [], reads: [Double] = [], fractions: [Double] = []
    for _ in 0..<rounds {
        let read = floatReadBandwidth(threads: threads, reps: 3)
        let gemv = Double(n * n * dtype.size) / time(5) { eval(matmul(x, w.T)) } / 1e9
        gemvs.append(gemv)
        reads.append(read)
        fractions.append(gemv / read)
    }
    return (median(gemvs), median(reads), median(fractions))
}

/// The gemv suite: `gemvBandwidth` for float32, bfloat16 and float16 weights
/// on the pool and on one thread (no model needed; a few seconds).
func runGemvSuite() {
    let threads = _CPUKernels.threadCount
    print(
        "gemv suite: W [8192, 8192] times a float32 vector, ISA \(_CPUKernels.isa); read bandwidth probed alternately")
    print("(5 pairs, medians)\n")
    print("| weights | threads | gemv | read bandwidth | gemv / read |")
    print("|---|---|---|---|---|")
    for dtype in [DType.float32, .bfloat16, .float16] {
        for parallel in [true, false] {
            _CPUKernels.parallel = parallel
            let r = gemvBandwidth(dtype, threads: parallel ? threads : 1)
            print(
                String(
                    format: "| %@ | %d | %.1f GB/s | %.1f GB/s | **%.0f%%** |", "\(dtype)", parallel ? threads : 1,
                    r.gemv,
                    r.read, 100 * r.fraction))
        }
    }
    _CPUKernels.parallel = true
}

/// Bytes of a folder's weights (its .safetensors files): what a decode step
/// reads once (the tied head reads the whole embedding table).
func weightBytes(folder: String) -> Int {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return files.filter { $0.hasSuffix(".safetensors") }.reduce(0) { total, name in
        let size = (try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)[.size] as? Int) ?? 0
        return total + size
    }
}
