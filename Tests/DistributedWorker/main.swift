// tessera-dist-worker: one rank of the multi-process distributed tests
// (Tests/TesseraNNTests/DistributedTests.swift starts 2 or 3 of them). Each
// mode checks this rank's results against the single-process result, which
// every rank can compute because each rank's input is a known function of
// its rank. Prints "rank R ok MODE" and exits 0, or prints why and exits 1
// (2 for a distributed error, the error expected by the `die` mode).
//
//     TESSERA_RANK=0 TESSERA_WORLD_SIZE=2 TESSERA_RING_HOSTS=127.0.0.1:5000,127.0.0.1:5001 \
//         tessera-dist-worker collectives ring

import Foundation
import Tessera
import TesseraNN
import TesseraOptimizers
import TesseraTestSupport

struct Failure: Error, CustomStringConvertible { let description: String }

func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw Failure(description: message()) }
}

/// Rank q's input of `dtype`, shape [6, 4] (axis 0 divides by 2 and 3).
func input(rank q: Int, dtype: DType) -> Tensor {
    let i = Tensor.arange(0, 24, dtype: .int64).reshaped([6, 4])
    switch dtype {
    case .bool: return ((i + q) % 3) .== 0
    case .uint8, .uint16, .uint32, .uint64: return ((i * (q + 1) + 3 * q) % 11).asType(dtype)
    default:
        let v = (((i * (q + 1) + 3 * q) % 11) - 5).asType(dtype)
        return dtype.isFloatingPoint ? v * Tensor(0.25).asType(dtype) : v
    }
}

/// i * (q + 0.5), as complex64 of shape [6, 4] (broadcast).
func imagUnit(_ q: Int) -> Tensor {
    let i = Tensor.zeros([6, 4], dtype: .complex64) + Tensor([Complex64(0, Float(q) + 0.5)])
    return i
}

/// Compares two tensors as float64: |a - b| <= max(atol, rtol |b|) (bool and integers exactly
/// when the tolerance is `.exact`).
func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tolerance: Tolerance) throws {
    try check(a.shape == b.shape, "\(what): shape \(a.shape) != \(b.shape)")
    try check(a.dtype == b.dtype, "\(what): dtype \(a.dtype) != \(b.dtype)")
    let x = a.asType(.float64).toArray(Double.self), y = b.asType(.float64).toArray(Double.self)
    for (u, v) in zip(x, y) {
        try check(abs(u - v) <= max(tolerance.atol, tolerance.rtol * abs(v)), "\(what): \(x) != expected \(y)")
    }
}

/// `assertClose` with one figure as both bounds: |a - b| <= tolerance * max(1, |b|) (the per-check
/// bounds of the calls below, each stated where the check is made).
func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tolerance: Double) throws {
    try assertClose(a, b, what, tolerance: Tolerance(rtol: tolerance, atol: tolerance))
}

/// Collective results against the single-process ones, by dtype: `Tolerance.table` for the half
/// types (rtol = atol there, so the bound above is |a - b| <= tol * max(1, |b|), as before the
/// shared table). Overrides, kept exactly as they were: float32 uses 1e-6 for both bounds (tighter
/// than the table's rtol 1e-5: the ranks sum the same values), float64, integers and bool compare exactly.
func collectiveTolerance(_ dtype: DType) -> Tolerance {
    switch dtype {
    case .float16, .bfloat16: return Tolerance.table(dtype) ?? .exact
    case .float32: return Tolerance(rtol: 1e-6, atol: 1e-6)
    default: return .exact
    }
}

func collectives(_ g: Group) throws {
    for dtype in [
        DType.float32, .float16, .bfloat16, .float64, .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64,
        .bool
    ] {
        let all = (0..<g.size).map { input(rank: $0, dtype: dtype) }
        let x = all[g.rank]
        // The single-process results.
        let sum = all.dropFirst().reduce(all[0]) { dtype == .bool ? ($0 .|| $1) : ($0 + $1).asType(dtype) }
        let mx = all.dropFirst().reduce(all[0]) { maximum($0, $1) }
        let mn = all.dropFirst().reduce(all[0]) { minimum($0, $1) }
        let gathered = concatenated(all, axis: 0)
        let block = 6 / g.size
        let scattered = sum[(g.rank * block)..<((g.rank + 1) * block)]
        let results = [
            allSum(x, group: g), allMax(x, group: g), allMin(x, group: g), allGather(x, group: g),
            sumScatter(x, group: g)
        ]
        try checkedEval(results)
        let t = collectiveTolerance(dtype)
        try assertClose(results[0], sum, "allSum \(dtype)", tolerance: t)
        try assertClose(results[1], mx, "allMax \(dtype)", tolerance: 0)
        try assertClose(results[2], mn, "allMin \(dtype)", tolerance: 0)
        try assertClose(results[3], gathered, "allGather \(dtype)", tolerance: 0)
        try assertClose(results[4], scattered, "sumScatter \(dtype)", tolerance: t)
    }
    // complex64: sums and gathers (no order for max/min: a typed error).
    let z = (0..<g.size).map { q in
        input(rank: q, dtype: .float32).asType(.complex64) * Tensor(Float(q + 1)).asType(.complex64) + imagUnit(q)
    }
    let zSum = z.dropFirst().reduce(z[0], +)
    let zResults = [allSum(z[g.rank], group: g), allGather(z[g.rank], group: g)]
    try checkedEval(zResults)
    for (got, want, name) in [(zResults[0], zSum, "allSum"), (zResults[1], concatenated(z, axis: 0), "allGather")] {
        try assertClose(real(got), real(want), "\(name) complex64 real", tolerance: 1e-6)
        try assertClose(imag(got), imag(want), "\(name) complex64 imag", tolerance: 1e-6)
    }
    do {
        try checkedEval([allMax(z[g.rank], group: g)])
        throw Failure(description: "allMax of complex64 did not fail")
    } catch DistributedError.unsupported {}
    // A larger float32 array (several ring segments, striped over the connections;
    // over shared memory three 2 MiB chunks, the last partial, so both banks turn over).
    let n = (1 << 20) + 4099
    let big = Tensor.arange(0, n, dtype: .float32) * Float(g.rank + 1)
    let expected = Tensor.arange(0, n, dtype: .float32) * Float((1...g.size).reduce(0, +))
    try assertClose(allSum(big, group: g), expected, "allSum of \(n) float32", tolerance: 1e-6)
}

func split(_ g: Group) throws {
    let sub = try g.split(color: g.rank % 2, key: -g.rank)
    let members = (0..<g.size).filter { $0 % 2 == g.rank % 2 }
    try check(sub.size == members.count, "split size \(sub.size), expected \(members.count)")
    // key -rank: the highest world rank comes first.
    try check(sub.rank == members.reversed().firstIndex(of: g.rank), "split rank \(sub.rank) for world rank \(g.rank)")
    let total = allSum(Tensor([Float(g.rank)]), group: sub)
    try checkedEval([total])
    try check(total.item(Float.self) == Float(members.reduce(0, +)), "sum in the split group: \(total)")
}

func sendRecv(_ g: Group) throws {
    // Around the ring: each rank sends to the next and receives from the previous;
    // even ranks send first, so no pair waits on each other.
    let next = (g.rank + 1) % g.size, previous = (g.rank + g.size - 1) % g.size
    let mine = input(rank: g.rank, dtype: .float32)
    let sent = send(mine, to: next, group: g)
    let got = recvLike(mine, from: previous, group: g)
    if g.rank % 2 == 0 {
        try checkedEval([sent]); try checkedEval([got])
    } else {
        try checkedEval([got]); try checkedEval([sent])
    }
    try assertClose(got, input(rank: previous, dtype: .float32), "recv from \(previous)", tolerance: 0)
    // And between two ranks that are not neighbours in the ring order.
    if g.size >= 3 {
        if g.rank == 0 { try checkedEval([send(mine * 3, to: 2, group: g)]) }
        if g.rank == 2 {
            let far = recv(shape: [6, 4], dtype: .float32, from: 0, group: g)
            try assertClose(far, input(rank: 0, dtype: .float32) * 3, "recv from 0", tolerance: 0)
        }
    }
}

/// Gradients and tangents through collectives against central differences of
/// the loss every rank computes (the same on every rank: MLX's semantics).
func gradients(_ g: Group) throws {
    let x = (input(rank: g.rank, dtype: .float64)[0..<2] * 0.1)  // [2, 4]
    let weights = Tensor.arange(1, 8 * g.size + 1, dtype: .float64).reshaped([2 * g.size, 4]) * 0.05
    let losses: [(String, (Tensor) -> Tensor)] = [
        ("allSum", { (sin(allSum($0, group: g)) * weights[0..<2]).sum() }),
        ("allGather", { (square(allGather($0, group: g)) * weights).sum() }),
        ("allMax", { (allMax($0, group: g) * weights[0..<2]).sum() })
    ]
    for (name, f) in losses {
        let (value, dx) = valueAndGrad(f)(x)
        try checkedEval([value, dx])
        let eps = 1e-6
        let flat = x.reshaped([-1])
        // Each element of each rank's input in turn: only its owner moves it.
        for owner in 0..<g.size {
            for j in 0..<x.size {
                var bump = [Double](repeating: 0, count: x.size)
                if owner == g.rank { bump[j] = eps }
                let d = Tensor(bump, shape: [x.size])
                let up = f((flat + d).reshaped(x.shape)), down = f((flat - d).reshaped(x.shape))
                try checkedEval([up, down])
                let numeric = (up.item(Double.self) - down.item(Double.self)) / (2 * eps)
                if owner == g.rank {
                    let analytic = dx.reshaped([-1])[j].item(Double.self)
                    try check(
                        abs(analytic - numeric) < 1e-6, "d\(name)/dx[\(j)] = \(analytic), finite differences \(numeric)"
                    )
                }
            }
        }
        // jvp of the collective: tangent of the output vs its own finite difference.
        let t = Tensor.onesLike(x) * 0.5
        let (_, tangents) = jvp({ [f($0[0])] }, primals: [x], tangents: [t])
        let numeric = (f(x + t * eps).item(Double.self) - f(x - t * eps).item(Double.self)) / (2 * eps)
        try check(abs(tangents[0].item(Double.self) - numeric) < 1e-6, "jvp \(name): \(tangents[0]) vs \(numeric)")
    }
    // vmap over a batch of allSums equals allSum of the batch.
    let batch = input(rank: g.rank, dtype: .float32)
    let mapped = vmap({ allSum($0, group: g) })(batch)
    try assertClose(mapped, allSum(batch, group: g), "vmap allSum", tolerance: 1e-6)
    let mappedGather = vmap({ allGather($0, group: g) })(batch)  // [6, size*4]
    let direct = allGather(batch.T, group: g).T
    try assertClose(mappedGather, direct, "vmap allGather", tolerance: 0)
}

/// Gradients through send/recv, pipeline style: rank 0 sends 1.5 sin(p0) to
/// rank 1; each middle rank q receives z, sends tanh(z) * p_q on to q + 1 and
/// adds (sent * c).sum() to the loss; the last rank's loss is (z * z * p).sum().
/// Each rank's gradient of its own parameters (the backward of a send is a
/// recv from its destination, of a recv a send to its source) must equal
/// central differences of the whole chain's loss computed in one process.
func sendRecvGradients(_ g: Group) throws {
    let n = g.size
    let params = (0..<n).map { q in input(rank: q, dtype: .float64)[0..<2] * 0.1 + 0.2 }  // [2, 4] each
    let c = Tensor.arange(0, 8, dtype: .float64).reshaped([2, 4]) * 0.05 - 0.1
    func stage(_ q: Int, _ z: Tensor?, _ p: Tensor) -> Tensor { q == 0 ? sin(p) * 1.5 : tanh(z!) * p }
    /// The single-process loss of the whole chain.
    func total(_ ps: [Tensor]) -> Tensor {
        var terms: [Tensor] = []
        var z: Tensor? = nil
        for q in 0..<n {
            if q == n - 1 {
                terms.append((z! * z! * ps[q]).sum())
            } else {
                let out = stage(q, z, ps[q])
                terms.append((out * c).sum())
                z = out
            }
        }
        return terms.dropFirst().reduce(terms[0], +)
    }
    let q = g.rank
    let (value, dp) = valueAndGrad { (p: Tensor) -> Tensor in
        let z = q > 0 ? recv(shape: [2, 4], dtype: .float64, from: q - 1, group: g) : nil
        if q == n - 1 { return (z! * z! * p).sum() }
        return (send(stage(q, z, p), to: q + 1, group: g) * c).sum()
    }(params[q])
    try checkedEval([value, dp])
    let eps = 1e-6
    let flat = params[q].reshaped([-1])
    for j in 0..<flat.size {
        var bump = [Double](repeating: 0, count: flat.size)
        bump[j] = eps
        let d = Tensor(bump, shape: [flat.size])
        var up = params, down = params
        up[q] = (flat + d).reshaped([2, 4])
        down[q] = (flat - d).reshaped([2, 4])
        let numeric = (total(up).item(Double.self) - total(down).item(Double.self)) / (2 * eps)
        let analytic = dp.reshaped([-1])[j].item(Double.self)
        try check(abs(analytic - numeric) < 1e-6, "rank \(q): dL/dp[\(j)] = \(analytic), finite differences \(numeric)")
    }
}

final class MLP: Module, UnaryLayer {
    @ModuleInfo var l1: Linear
    @ModuleInfo var l2: Linear
    override init() {
        l1 = Linear(64, 32)
        l2 = Linear(32, 10)
    }
    func callAsFunction(_ x: Tensor) -> Tensor { l2(gelu(l1(x))) }
}

/// Data-parallel SGD on the digits: each rank takes its slice of every batch
/// and averages gradients; rank 0 also trains one process on whole batches.
func train(_ g: Group, digits: String) throws {
    let data = try NPZ.load(digits)
    guard let xs = data["train_x"], let ys = data["train_y"] else {
        throw Failure(description: "no train_x in \(digits)")
    }
    let x = xs.asType(.float32) / 16
    let batch = 24 * g.size, steps = 6
    func trainer(_ model: MLP) -> (Tensor, Tensor) -> ModuleParameters {
        let step = valueAndGrad(model: model) { m, x, y in crossEntropy(m(x), y, reduction: .mean) }
        return { x, y in step(model, x, y).1 }
    }
    Random.seed(7)
    let parallel = MLP()
    Random.seed(7)
    let single = MLP()
    let optA = SGD(learningRate: 0.5), optB = SGD(learningRate: 0.5)
    let stepA = trainer(parallel), stepB = trainer(single)
    let part = batch / g.size
    for s in 0..<steps {
        let lo = s * batch + g.rank * part
        let grads = averageGradients(stepA(x[lo..<(lo + part)], ys[lo..<(lo + part)]), group: g, bucketBytes: 4096)
        optA.update(model: parallel, gradients: grads)
        try checkedEval(parallel.tensors + optA.tensors)
        if g.rank == 0 {
            optB.update(
                model: single, gradients: stepB(x[(s * batch)..<((s + 1) * batch)], ys[(s * batch)..<((s + 1) * batch)])
            )
            try checkedEval(single.tensors + optB.tensors)
        }
    }
    if g.rank == 0 {
        let b = single.parameters().flatDictionary
        for (key, a) in parallel.parameters().flattened() {
            let diff = abs(a - b[key]!).max().item(Float.self) as Float
            try check(diff <= 1e-5, "\(key): data-parallel and single-process training differ by \(diff)")
        }
    }
    // Every rank ends with the same parameters.
    for (key, a) in parallel.parameters().flattened() {
        let spread = abs(allMax(a, group: g) - allMin(a, group: g)).max().item(Float.self)
        try check(spread == 0, "\(key) differs across ranks by \(spread)")
    }
}

/// Tensor-parallel linear layers equal the unsharded ones.
func sharded(_ g: Group) throws {
    Random.seed(3)
    let up = Linear(8, 6 * g.size), down = Linear(6 * g.size, 5)
    let x = Random.normal([3, 8], key: Random.key(1))
    let expected = down(gelu(up(x)))
    let shardedUp = try shardLinear(up, .allToSharded, group: g)
    let shardedDown = try shardLinear(down, .shardedToAll, group: g)
    let y = shardedDown(gelu(shardedUp(x)))
    try assertClose(y, expected, "sharded MLP", tolerance: 1e-5)
    // Gradient of the input through both layers equals the unsharded one.
    let gx = grad({ (x: Tensor) in square(shardedDown(gelu(shardedUp(x)))).sum() })(x)
    let ex = grad({ (x: Tensor) in square(down(gelu(up(x)))).sum() })(x)
    try assertClose(gx, ex, "sharded MLP input gradient", tolerance: 1e-5)
    // Quantized layers: the shards compute the unsharded quantized layer.
    let qUp = QuantizedLinear(Linear(64, 8 * g.size), groupSize: 32, bits: 4)
    let qDown = QuantizedLinear(Linear(64 * g.size, 5), groupSize: 32, bits: 4)
    let xq = Random.normal([2, 64], key: Random.key(2))
    let sUp = try shardLinear(qUp, .allToSharded, group: g), sDown = try shardLinear(qDown, .shardedToAll, group: g)
    try check(sUp is QuantizedAllToShardedLinear && sDown is QuantizedShardedToAllLinear, "quantized shard types")
    try assertClose(
        sUp(xq), qUp(xq)[0..., (g.rank * 8)..<((g.rank + 1) * 8)], "quantized all-to-sharded", tolerance: 1e-5)
    let wide = Random.normal([2, 64 * g.size], key: Random.key(4))
    let mine = wide[0..., (g.rank * 64)..<((g.rank + 1) * 64)]
    try assertClose(sDown(mine), qDown(wide), "quantized sharded-to-all", tolerance: 1e-4)
    // In place: the same layers (types unchanged), the sum over ranks done by the caller.
    let (inUp, inDown) = (Linear(8, 6 * g.size), Linear(6 * g.size, 5))
    try inUp.update(parameters: up.parameters())
    try inDown.update(parameters: down.parameters())
    try shardInPlace(inUp, .allToSharded, group: g)
    try shardInPlace(inDown, .shardedToAll, group: g)
    try check(
        type(of: inUp) == Linear.self && inUp.weight.shape == [6, 8] && inDown.weight.shape == [5, 6],
        "shardInPlace shapes")
    try assertClose(allSum(inDown(gelu(inUp(x))), group: g), expected, "shardInPlace MLP", tolerance: 1e-5)
    let inQDown = QuantizedLinear(Linear(64 * g.size, 5), groupSize: 32, bits: 4)
    try inQDown.update(parameters: qDown.parameters())
    try shardInPlace(inQDown, .shardedToAll, group: g)
    try assertClose(
        allSum(inQDown(mine), group: g), qDown(wide), "quantized shardInPlace sharded-to-all", tolerance: 1e-4)
}

/// Rank 1 dies in the middle of a stream of large all-reduces; the others must fail, not hang.
func die(_ g: Group) throws {
    let big = Tensor.ones([1 << 22], dtype: .float32)
    if g.rank == 1 {
        Thread.detachNewThread {
            usleep(300_000)
            kill(getpid(), SIGKILL)
        }
    }
    for _ in 0..<100_000 { try checkedEval([allSum(big, group: g) + 0]) }
    throw Failure(description: "the collectives went on after rank 1 died")
}

let args = CommandLine.arguments
guard args.count >= 3, let backend = Group.Backend(rawValue: args[2]) else {
    print(
        "usage: tessera-dist-worker collectives|split|sendrecv|sendrecv-grad|grad|train|sharded|die|nccl-id any|ring|mpi|nccl [digits.npz]"
    )
    exit(1)
}
let mode = args[1]
/// Runs `body`, then exits: 0, 2 for a DistributedError, 1 for any other error.
func exitAfter(_ body: () throws -> Void) -> Never {
    do {
        try body()
        exit(0)
    } catch let error as DistributedError {
        print("distributed error: \(error)")
        exit(2)
    } catch {
        print("failed: \(error)")
        exit(1)
    }
}

if mode == "implicit" {
    // Collectives without a group use the world; a world that cannot start
    // makes them throw at evaluation (exit 2), never a silent group of one.
    exitAfter {
        let x = Tensor([1, 2, 3] as [Float])
        let y = allSum(x)
        try checkedEval([y])
        let size = Group.world.size
        try check(y.toArray(Float.self) == [Float(size), Float(2 * size), Float(3 * size)], "implicit allSum: \(y)")
        print("rank \(Group.world.rank) ok implicit size \(size)")
    }
}
exitAfter {
    let g = try Distributed(backend: backend, strict: true)
    switch mode {
    case "collectives": try collectives(g)
    case "split": try split(g)
    case "sendrecv": try sendRecv(g)
    case "sendrecv-grad": try sendRecvGradients(g)
    case "grad": try gradients(g)
    case "train": try train(g, digits: args.count > 3 ? args[3] : "Tests/Fixtures/digits.npz")
    case "sharded": try sharded(g)
    case "die": try die(g)
    case "nccl-id":
        // NCCL's bootstrap without a GPU: rank 0's (here random) id reaches every rank over the ring.
        let id = try NCCLBootstrap.uniqueID(
            rank: g.rank, environment: [:], timeout: 20, group: g,
            generate: { (0..<NCCLBootstrap.idBytes).map { _ in UInt8.random(in: 0...255) } })
        print("rank \(g.rank) ncclid=\(NCCLBootstrap.hex(id))")
    default: throw Failure(description: "unknown mode \(mode)")
    }
    print("rank \(g.rank) ok \(mode) \(g.backendName) size \(g.size) via \(g.transportName)")
}
