// tessera-bench: Tessera's CPU kernels against numpy and torch, timed in one
// run. Prints a markdown table: op and shape, Tessera's median time and
// throughput, each peer's median time, and the ratio peer time / Tessera time
// (above 1: Tessera is faster), with memcpy bandwidth as the physical limit.
//
//   swift run -c release --package-path Benchmarks tessera-bench [suite...]
//   suites: matmul elementwise reduction rows quantized compile lm prefill serve floatlm structured dist train
//   (default: all but compile, lm, prefill, serve, floatlm, structured, dist, train),
//   or case ids (e.g. qmv8_49152x576)
//   TESSERA_BENCH_NO_PEERS=1 skips the Python peers.

import Foundation
import Tessera

struct Case {
    let suite: String
    let id: String  // also the peer script's case name
    let label: String
    let work: Double  // flops or bytes per call
    let unit: String  // "GFLOP/s" or "GB/s"
    let reps: Int
    let run: () -> Void
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func time(_ reps: Int, warmup: Int = 2, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    var ts: [Double] = []
    for _ in 0..<reps {
        let t = DispatchTime.now().uptimeNanoseconds
        body()
        ts.append(Double(DispatchTime.now().uptimeNanoseconds - t) * 1e-9)
    }
    return median(ts)
}

/// Deterministic uniform values in [-1, 1).
func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return Float(s >> 40) / Float(1 << 23) - 1
    }
}

func randomTensor(_ shape: [Int], seed: UInt64, dtype: DType = .float32) -> Tensor {
    let t = Tensor(randomFloats(shape.reduce(1, *), seed: seed), shape: shape).asType(dtype)
    eval(t)
    return t
}

/// memcpy bandwidth in GB/s, counting bytes read plus bytes written, on
/// `threads` threads over a 256 MiB copy.
func memcpyBandwidth(threads: Int) -> Double {
    let bytes = 256 << 20
    let src = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    let dst = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    defer {
        src.deallocate()
        dst.deallocate()
    }
    memset(src, 1, bytes)
    memset(dst, 0, bytes)
    let chunk = bytes / threads
    let s = Int(bitPattern: src), d = Int(bitPattern: dst)  // addresses are Sendable
    let t = time(7) {
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            memcpy(
                UnsafeMutableRawPointer(bitPattern: d + i * chunk)!, UnsafeRawPointer(bitPattern: s + i * chunk)!, chunk
            )
        }
    }
    return 2 * Double(bytes) / t / 1e9
}

func cases() -> [Case] {
    var all: [Case] = []
    for n in [1024, 2048, 4096] {
        let a = randomTensor([n, n], seed: 1), b = randomTensor([n, n], seed: 2)
        all.append(
            Case(
                suite: "matmul", id: "matmul_f32_\(n)", label: "matmul f32 \(n)x\(n)x\(n)",
                work: 2 * pow(Double(n), 3), unit: "GFLOP/s", reps: n == 4096 ? 3 : 7
            ) { eval(matmul(a, b)) })
    }
    do {
        // The same products through each path in one run: the measured choice
        // (above and "chosen"), the native kernel and OpenBLAS (when loaded).
        let a = randomTensor([2048, 2048], seed: 1), b = randomTensor([2048, 2048], seed: 2)
        let w = randomTensor([4096, 4096], seed: 5), x = randomTensor([4096], seed: 6)
        let paths: [(String, Bool?)] =
            _CPUKernels.blasAvailable ? [("native", false), ("OpenBLAS", true)] : [("native", false)]
        for (name, use) in paths {
            all.append(
                Case(
                    suite: "matmul", id: "matmul_f32_2048", label: "matmul f32 2048 (\(name))",
                    work: 2 * pow(2048, 3), unit: "GFLOP/s", reps: 5
                ) {
                    _CPUKernels.forceBLAS(use, vector: false)
                    defer { _CPUKernels.forceBLAS(nil, vector: false) }
                    eval(matmul(a, b))
                })
        }
        all.append(
            Case(
                suite: "matmul", id: "gemv_f32_4096", label: "gemv f32 (4096x4096)·(4096) (chosen)",
                work: 4096 * 4096 * 4, unit: "GB/s", reps: 15
            ) { eval(matmul(w, x)) })
        for (name, use) in paths {
            all.append(
                Case(
                    suite: "matmul", id: "gemv_f32_4096", label: "gemv f32 (4096x4096)·(4096) (\(name))",
                    work: 4096 * 4096 * 4, unit: "GB/s", reps: 15
                ) {
                    _CPUKernels.forceBLAS(use, vector: true)
                    defer { _CPUKernels.forceBLAS(nil, vector: true) }
                    eval(matmul(w, x))
                })
        }
        // A float32 model's decode products (SmolLM2's shapes, weight [N, K] times x).
        for (n, k) in smolLM2DecodeShapes {
            let wn = randomTensor([n, k], seed: 9), xn = randomTensor([k, 1], seed: 10)
            for (name, use) in paths {
                all.append(
                    Case(
                        suite: "matmul", id: "gemvsmol_\(n)x\(k)", label: "gemv f32 (\(n)x\(k))·(\(k)) (\(name))",
                        work: Double(n * k * 4), unit: "GB/s", reps: n * k >= 1 << 22 ? 51 : 501
                    ) {
                        _CPUKernels.forceBLAS(use, vector: true)
                        defer { _CPUKernels.forceBLAS(nil, vector: true) }
                        eval(matmul(wn, xn))
                    })
            }
        }
        for dtype in [DType.float16, .bfloat16] {
            let h = randomTensor([1024, 1024], seed: 3, dtype: dtype)
            let g = randomTensor([1024, 1024], seed: 4, dtype: dtype)
            let short = dtype == .float16 ? "f16" : "bf16"
            all.append(
                Case(
                    suite: "matmul", id: "matmul_\(short)_1024", label: "matmul \(short) 1024x1024x1024",
                    work: 2 * pow(1024, 3), unit: "GFLOP/s", reps: 7
                ) { eval(matmul(h, g)) })
        }
        // Half-precision weights times one float vector, as a float model's decode does.
        for dtype in [DType.float16, .bfloat16] {
            let wh = randomTensor([4096, 4096], seed: 7, dtype: dtype), xh = randomTensor([4096], seed: 8, dtype: dtype)
            let short = dtype == .float16 ? "f16" : "bf16"
            all.append(
                Case(
                    suite: "matmul", id: "gemv_\(short)_4096", label: "gemv \(short) (4096x4096)·(4096)",
                    work: 4096 * 4096 * 2, unit: "GB/s", reps: 15
                ) { eval(matmul(wh, xh)) })
        }
    }
    let n16 = 1 << 24
    do {
        let a = randomTensor([n16], seed: 7), b = randomTensor([n16], seed: 8)
        all.append(
            Case(
                suite: "elementwise", id: "add_16M", label: "add f32 16M", work: Double(n16) * 12, unit: "GB/s", reps: 9
            ) { eval(a + b) })
        all.append(
            Case(
                suite: "elementwise", id: "exp_16M", label: "exp f32 16M", work: Double(n16) * 8, unit: "GB/s", reps: 9
            ) { eval(exp(a)) })
        all.append(
            Case(suite: "reduction", id: "sum_16M", label: "sum f32 16M", work: Double(n16) * 4, unit: "GB/s", reps: 9)
            { eval(a.sum()) })
    }
    do {
        let x = randomTensor([4096, 4096], seed: 9)
        let w = randomTensor([4096], seed: 10), b = randomTensor([4096], seed: 11)
        let bytes = Double(4096 * 4096 * 8)
        all.append(
            Case(
                suite: "rows", id: "softmax_4096x4096", label: "softmax f32 4096x4096 (row kernel)", work: bytes,
                unit: "GB/s", reps: 9
            ) { eval(_CPUKernels.softmax(x)) })
        all.append(
            Case(
                suite: "rows", id: "layernorm_4096x4096", label: "layerNorm f32 4096x4096 (row kernel)", work: bytes,
                unit: "GB/s", reps: 9
            ) { eval(_CPUKernels.layerNorm(x, weight: w, bias: b, eps: 1e-5)) })
        all.append(
            Case(
                suite: "rows", id: "rmsnorm_4096x4096", label: "rmsNorm f32 4096x4096 (row kernel)", work: bytes,
                unit: "GB/s", reps: 9
            ) { eval(_CPUKernels.rmsNorm(x, weight: w, eps: 1e-5)) })
    }
    for group in [32, 64] {
        let n = 4096, k = 4096
        let words = k * 4 / 32
        var seed: UInt64 = 12
        let wq = Tensor(randomFloats(n * words, seed: seed).map { $0.bitPattern &* 2_654_435_761 }, shape: [n, words])
        seed += 1
        let scales = randomTensor([n, k / group], seed: seed), biases = randomTensor([n, k / group], seed: seed + 1)
        let x = randomTensor([1, k], seed: seed + 2)
        eval(wq)
        let bytes = Double(n * words * 4 + 2 * n * (k / group) * 4 + k * 4)
        all.append(
            Case(
                suite: "quantized", id: "qmv4_g\(group)", label: "4-bit qmv (1,4096)x(4096,4096) group \(group)",
                work: bytes, unit: "GB/s", reps: 25
            ) {
                eval(_CPUKernels.quantizedMatmul(x, wq: wq, scales: scales, biases: biases, groupSize: group, bits: 4))
            })
    }
    // The decode shapes of the default model (SmolLM2-135M, Q4_1 GGUF as 4-bit
    // group 32): attention q/o and k/v, MLP gate/up and down, the vocabulary.
    for (n, k) in smolLM2DecodeShapes {
        let (x, wq, scales, biases) = qmvOperands(n: n, k: k, group: 32, seed: 40)
        let bytes = Double(n * k / 2 + 2 * n * (k / 32) * 4 + k * 4)
        all.append(
            Case(
                suite: "quantized", id: "qmv4_smol_\(n)x\(k)",
                label: "4-bit qmv (1,\(k))x(\(n),\(k)) group 32 (SmolLM2)",
                work: bytes, unit: "GB/s", reps: n * k >= 1 << 22 ? 51 : 501
            ) { eval(_CPUKernels.quantizedMatmul(x, wq: wq, scales: scales, biases: biases, groupSize: 32, bits: 4)) })
    }
    // 8 bits (GGUF Q8_0, e.g. SmolLM2's tied embedding / LM head), group 32:
    // the VNNI kernel and, in the same run, the float kernel (VNNI off).
    for (n, k) in [(4096, 4096), (49152, 576)] {
        let (x, wq, scales, biases) = qmvOperands(n: n, k: k, group: 32, seed: 50, bits: 8)
        let bytes = Double(n * k + 2 * n * (k / 32) * 4 + k * 4)
        let shape = "(1,\(k))x(\(n),\(k)) group 32\(n == 49152 ? " (SmolLM2 head)" : "")"
        for vnni in [true, false] {
            all.append(
                Case(
                    suite: "quantized", id: "qmv8_\(vnni ? "" : "float_")\(n)x\(k)",
                    label: "8-bit qmv \(shape)\(vnni ? "" : ", float kernel")",
                    work: bytes, unit: "GB/s", reps: 51
                ) {
                    _CPUKernels.qmvVNNI = vnni
                    defer { _CPUKernels.qmvVNNI = true }
                    eval(_CPUKernels.quantizedMatmul(x, wq: wq, scales: scales, biases: biases, groupSize: 32, bits: 8))
                })
        }
    }
    return all
}

/// (N, K) of SmolLM2-135M's quantized matrix-vector products in decode.
let smolLM2DecodeShapes = [(576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576)]

/// x [1, k] float32 and a random `bits`-bit weight [n, k] with float32 scales and biases.
func qmvOperands(n: Int, k: Int, group: Int, seed: UInt64, bits: Int = 4) -> (Tensor, Tensor, Tensor, Tensor) {
    let words = k * bits / 32
    let wq = Tensor(randomFloats(n * words, seed: seed).map { $0.bitPattern &* 2_654_435_761 }, shape: [n, words])
    eval(wq)
    return (
        randomTensor([1, k], seed: seed + 3), wq, randomTensor([n, k / group], seed: seed + 1),
        randomTensor([n, k / group], seed: seed + 2)
    )
}

func runPeers(_ ids: [String]) -> [String: [String: Double]] {
    if ProcessInfo.processInfo.environment["TESSERA_BENCH_NO_PEERS"] != nil { return [:] }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("peers.py")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.path] + ids
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch {
        print("(peers unavailable: \(error))")
        return [:]
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else {
        print("(peers gave no result)")
        return [:]
    }
    return json.mapValues { $0.compactMapValues { $0 as? Double } }
}

func format(_ t: Double?) -> String {
    guard let t else { return "–" }
    return t < 1e-3 ? String(format: "%.1f µs", t * 1e6) : String(format: "%.2f ms", t * 1e3)
}

/// The split thresholds: time per call on one thread and on the pool, by size.
func grainTable() {
    print("\n| elements (add f32) | 1 thread | pool | pool speedup |\n|---|---|---|---|")
    for shift in [12, 14, 15, 16, 17, 18, 20] {
        let n = 1 << shift
        let a = randomTensor([n], seed: 1), b = randomTensor([n], seed: 2)
        _CPUKernels.parallel = false
        let t1 = time(201) { eval(a + b) }
        _CPUKernels.parallel = true
        let tp = time(201) { eval(a + b) }
        print("| \(n) | \(format(t1)) | \(format(tp)) | \(String(format: "%.2f×", t1 / tp)) |")
    }
    print("\n| matmul f32 n (native) | 1 thread | pool | pool speedup |\n|---|---|---|---|")
    for n in [32, 64, 96, 128, 192, 256] {
        let a = randomTensor([n, n], seed: 1), b = randomTensor([n, n], seed: 2)
        _CPUKernels.parallel = false
        let t1 = time(51) { eval(_CPUKernels.nativeMatmul(a, b)) }
        _CPUKernels.parallel = true
        let tp = time(51) { eval(_CPUKernels.nativeMatmul(a, b)) }
        print("| \(n) | \(format(t1)) | \(format(tp)) | \(String(format: "%.2f×", t1 / tp)) |")
    }
    print("\n| 4-bit qmv group 32 (1,K)x(N,K) | 1 thread | pool | pool speedup |\n|---|---|---|---|")
    for (n, k) in smolLM2DecodeShapes + [(4096, 4096)] {
        let (x, wq, scales, biases) = qmvOperands(n: n, k: k, group: 32, seed: 40)
        let run = {
            eval(_CPUKernels.quantizedMatmul(x, wq: wq, scales: scales, biases: biases, groupSize: 32, bits: 4))
        }
        let reps = n * k >= 1 << 22 ? 51 : 501
        _CPUKernels.parallel = false
        let t1 = time(reps, run)
        _CPUKernels.parallel = true
        let tp = time(reps, run)
        print("| N \(n), K \(k) | \(format(t1)) | \(format(tp)) | \(String(format: "%.2f×", t1 / tp)) |")
    }
}

if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "dist-rank" {
    runDistRank(CommandLine.arguments[2])  // DistSuite.swift: one rank of the dist suite
    exit(0)
}
if CommandLine.arguments.count >= 2 && CommandLine.arguments[1] == "train-worker" {
    runTrainWorker(Array(CommandLine.arguments.dropFirst(2)))  // TrainSuite.swift: one Tessera training run
    exit(0)
}
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "generate-peak-rss" {
    runGeneratePeakRSS(Array(CommandLine.arguments.dropFirst(2)))  // PeakMemory.swift: `tessera generate`'s work, then VmHWM
    exit(0)
}
var requested = Set(CommandLine.arguments.dropFirst())
if requested.remove("train") != nil {
    runTrainSuite()  // TrainSuite.swift: LoRA training tokens/s and peak memory against torch+peft and mlx-lm
    if requested.isEmpty { exit(0) }
}
if requested.remove("dist") != nil {
    runDistSuite()  // DistSuite.swift: allSum bus bandwidth, ring and MPI, against MPI_Allreduce
    if requested.isEmpty { exit(0) }
}
if requested.remove("compile") != nil {
    runCompileSuite()  // CompileSuite.swift: compiled vs eager element-wise programs
    if requested.isEmpty { exit(0) }
}
if requested.remove("lm") != nil {
    runLMSuite()  // LMSuite.swift: prefill and decode tok/s against llama.cpp
    if requested.isEmpty { exit(0) }
}
if requested.remove("prefill") != nil {
    runPrefillSuite()  // PrefillSuite.swift: prefill tok/s at 128/512/2000 tokens against llama.cpp
    if requested.isEmpty { exit(0) }
}
if requested.remove("serve") != nil {
    runServeSuite()  // ServeSuite.swift: aggregate tok/s and time to first token of the batched engine
    if requested.isEmpty { exit(0) }
}
if requested.remove("structured") != nil {
    runStructuredSuite()  // StructuredSuite.swift: the JSON token filter's step time
    if requested.isEmpty { exit(0) }
}
if requested.remove("floatlm") != nil {
    runFloatLMSuite()  // LMSuite.swift: float32/bf16/f16 folders against transformers + torch
    if requested.isEmpty { exit(0) }
}
if requested.remove("gemv") != nil {
    runGemvSuite()  // FloatBandwidth.swift: float gemv GB/s against the read bandwidth, alternately
    if requested.isEmpty { exit(0) }
}
if requested.remove("grain") != nil {
    grainTable()
    if requested.isEmpty { exit(0) }
}
let selected = cases().filter { requested.isEmpty || requested.contains($0.suite) || requested.contains($0.id) }
print(
    "tessera-bench: \(_CPUKernels.threadCount) threads, ISA \(_CPUKernels.isa), BLAS \(_CPUKernels.blasAvailable ? "OpenBLAS" : "absent")"
)
print("float32 products: \(_CPUKernels.blasChoice)")
let copy1 = memcpyBandwidth(threads: 1), copyN = memcpyBandwidth(threads: _CPUKernels.threadCount)
let copyBest = max(copy1, copyN)
print(
    String(
        format: "memcpy bandwidth (read+write): %.1f GB/s on 1 thread, %.1f GB/s on %d", copy1, copyN,
        _CPUKernels.threadCount))

var results: [(Case, Double)] = []
for c in selected {
    results.append((c, time(c.reps, c.run)))
}
let peers = runPeers(Array(Set(selected.map(\.id))).sorted())

print("")
print("| op and shape | Tessera | throughput | numpy | torch | numpy/Tessera | torch/Tessera |")
print("|---|---|---|---|---|---|---|")
for (c, t) in results {
    let rate = c.work / t / 1e9
    var through = String(format: "%.1f %@", rate, c.unit)
    if c.unit == "GB/s" { through += String(format: " (%.0f%% of memcpy)", 100 * rate / copyBest) }
    let np = peers[c.id]?["numpy"], th = peers[c.id]?["torch"]
    let rn = np.map { String(format: "%.2f×", $0 / t) } ?? "–"
    let rt = th.map { String(format: "%.2f×", $0 / t) } ?? "–"
    print("| \(c.label) | \(format(t)) | \(through) | \(format(np)) | \(format(th)) | \(rn) | \(rt) |")
}
