// `tessera selftest --bench`: timings on gpu(0) — GEMM against the card's
// nominal dense peak, element-wise bandwidth, 4-bit qmv, attention decode and
// prefill. Each row: warm-up, then the median of timed repetitions, each
// ending in a device synchronize. `quick` shrinks every shape (a smoke run,
// e.g. through the CUDA emulator; its figures mean nothing).

import Tessera

#if canImport(Glibc)
    import Glibc
#endif

public enum GPUBench {
    public struct Row: Sendable, CustomStringConvertible {
        public let name: String
        public let milliseconds: Double
        /// e.g. "612.3 TFLOP/s (62% of 989 nominal)" or "3.9 TB/s".
        public let throughput: String
        public var description: String {
            let ms = milliseconds < 1 ? formatted("%.3f", milliseconds) : formatted("%.2f", milliseconds)
            return "\(name): \(ms) ms, \(throughput)"
        }
    }

    /// Nominal dense (no sparsity) tensor-core peaks in TFLOP/s, from NVIDIA's
    /// data sheets: (bf16/f16, tf32). nil for cards not listed.
    static func nominalPeak(deviceName: String) -> (half: Double, tf32: Double)? {
        let name = deviceName.uppercased()
        if name.contains("H200") || (name.contains("H100") && !name.contains("PCIE")) { return (989, 494) }
        if name.contains("H100") { return (756, 378) }
        if name.contains("A100") { return (312, 156) }
        return nil
    }

    /// printf-style formatting of doubles (the core library has no Foundation).
    static func formatted(_ format: String, _ values: Double...) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = withVaList(values) { vsnprintf(&buffer, buffer.count, format, $0) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Median milliseconds of `repetitions` runs of `body` (after `warmup`),
    /// each evaluated and synchronized with the device.
    static func time(warmup: Int = 2, repetitions: Int, _ body: () -> Tensor) throws -> Double {
        guard let context = CUDABackend.context else {
            throw TesseraError.deviceUnavailable(CUDABackend.unavailableReason)
        }
        var samples: [Double] = []
        let clock = ContinuousClock()
        for i in 0..<(warmup + repetitions) {
            let start = clock.now
            try checkedEval([body()])
            try context.device.synchronize()
            if i >= warmup { samples.append((clock.now - start) / .milliseconds(1)) }
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    public static func run(quick: Bool = false) -> Result<[Row], TesseraError> {
        guard let context = CUDABackend.context else {
            return .failure(.deviceUnavailable(CUDABackend.unavailableReason))
        }
        let peak = nominalPeak(deviceName: context.device.name)
        let reps = quick ? 2 : 10
        var rows: [Row] = []
        func tflops(_ flops: Double, _ ms: Double, nominal: Double?) -> String {
            let t = flops / (ms * 1e-3) / 1e12
            guard let nominal else { return formatted("%.1f TFLOP/s", t) }
            return formatted("%.1f TFLOP/s (%.0f%% of %.0f nominal)", t, 100 * t / nominal, nominal)
        }
        func bandwidth(_ bytes: Double, _ ms: Double) -> String {
            formatted("%.0f GB/s", bytes / (ms * 1e-3) / 1e9)
        }
        do {
            try withDevice(.gpu(0)) {
                // GEMM: float16/bfloat16 (tensor cores), float32 (exact unless TESSERA_CUDA_TF32=1).
                let n = quick ? 256 : 8192
                for dtype in [DType.bfloat16, .float16, .float32] {
                    let size = dtype == .float32 && !quick ? 4096 : n
                    let a = Random.normal([size, size], dtype: dtype, key: Random.key(1))
                    let b = Random.normal([size, size], dtype: dtype, key: Random.key(2))
                    eval(a, b)
                    let ms = try time(repetitions: reps) { matmul(a, b) }
                    let nominal = dtype == .float32 ? nil : peak?.half
                    rows.append(
                        Row(
                            name: "matmul \(dtype) \(size)x\(size)x\(size)", milliseconds: ms,
                            throughput: tflops(2 * pow(Double(size), 3), ms, nominal: nominal)))
                }
                // Element-wise bandwidth: read + write of 256M float32 (1 GiB each way).
                let count = quick ? 1 << 16 : 1 << 28
                let x = Random.uniform([count], key: Random.key(3))
                eval(x)
                let addMs = try time(repetitions: reps) { x + 1 }
                rows.append(
                    Row(
                        name: "add 1 f32 \(count)", milliseconds: addMs, throughput: bandwidth(Double(count) * 8, addMs)
                    ))
                // 4-bit qmv, group 64: weights well beyond L2.
                let (m, k) = quick ? (256, 256) : (16384, 16384)
                let w = Random.normal([m, k], dtype: .float16, key: Random.key(4))
                let (wq, scales, biases) = quantize(w, groupSize: 64, bits: 4)
                let v = Random.normal([1, k], dtype: .float16, key: Random.key(5))
                eval(wq, scales, biases, v)
                let qmvMs = try time(repetitions: reps) {
                    quantizedMatmul(v, wq, scales: scales, biases: biases, transpose: true, groupSize: 64, bits: 4)
                }
                let qmvBytes = Double(m * k / 2 + 2 * 2 * m * k / 64 + 2 * k + 2 * m)
                rows.append(
                    Row(
                        name: "4-bit qmv (1,\(k))x(\(k),\(m)) group 64 f16", milliseconds: qmvMs,
                        throughput: bandwidth(qmvBytes, qmvMs)))
                // Attention: decode (one query, GQA 32/8 heads, 8192 keys) and causal prefill.
                let (heads, kvHeads, dim) = (32, 8, 128)
                let keysCount = quick ? 64 : 8192
                let q1 = Random.normal([1, heads, 1, dim], dtype: .float16, key: Random.key(6))
                let kd = Random.normal([1, kvHeads, keysCount, dim], dtype: .float16, key: Random.key(7))
                let vd = Random.normal([1, kvHeads, keysCount, dim], dtype: .float16, key: Random.key(8))
                eval(q1, kd, vd)
                let scale = 1 / Float(dim).squareRoot()
                let decodeMs = try time(repetitions: reps) {
                    Fast.scaledDotProductAttention(queries: q1, keys: kd, values: vd, scale: scale)
                }
                rows.append(
                    Row(
                        name: "sdpa decode f16 \(heads)/\(kvHeads) heads, \(keysCount) keys, dim \(dim)",
                        milliseconds: decodeMs,
                        throughput: bandwidth(Double(2 * kvHeads * keysCount * dim * 2), decodeMs)))
                let length = quick ? 64 : 4096
                let qp = Random.normal([1, heads, length, dim], dtype: .float16, key: Random.key(9))
                let kp = Random.normal([1, kvHeads, length, dim], dtype: .float16, key: Random.key(10))
                let vp = Random.normal([1, kvHeads, length, dim], dtype: .float16, key: Random.key(11))
                eval(qp, kp, vp)
                let prefillMs = try time(repetitions: reps) {
                    Fast.scaledDotProductAttention(queries: qp, keys: kp, values: vp, scale: scale, mask: .causal)
                }
                // Causal: half of the 4·L²·D·H multiply-adds.
                let flops = 2.0 * Double(heads) * Double(length) * Double(length) * Double(dim)
                rows.append(
                    Row(
                        name: "sdpa prefill f16 causal \(heads)/\(kvHeads) heads, \(length) tokens, dim \(dim)",
                        milliseconds: prefillMs, throughput: tflops(flops, prefillMs, nominal: peak?.half)))
            }
        } catch let error as TesseraError {
            return .failure(error)
        } catch {
            return .failure(.deviceUnavailable("\(error)"))
        }
        return .success(rows)
    }
}
