// compile: traces a function on placeholder inputs into a program
// (CompileProgram), simplifies it (CompileSimplify), fuses element-wise
// chains into generated kernels (CompileFuse; C on the CPU), caches the result
// per input shapes and dtypes, and replays it on each call. The replay builds
// ordinary lazy nodes, so compiled functions compose with eval and with the
// transforms: grad(compile(f)) differentiates the fused kernels through their
// unfused programs, compile(grad(f)) traces the gradient graph.

import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// State a stateful compiled function reads before each call and writes back
/// after it: model parameters, optimizer moments, a random key.
///
/// ```swift
/// final class Counter: Updatable { var innerState: [Tensor] = [Tensor(0 as Float)] }
/// ```
public protocol Updatable: AnyObject {
    var innerState: [Tensor] { get set }
}

/// Settings and counters of `compile`.
public enum Compile {
    private static let enabled = Atomic<Bool>(getenv("TESSERA_DISABLE_COMPILE").map { String(cString: $0) } != "1")
    private static let compiler = Locked<String>(
        getenv("TESSERA_CC").map { String(cString: $0) } ?? "cc")

    /// Whether compiled functions trace and fuse; when false they call the
    /// function as it is. Starts false when `TESSERA_DISABLE_COMPILE=1`.
    public static var isEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// The C compiler for CPU kernels: a name looked up in PATH or a path
    /// (default `cc`, or `TESSERA_CC`). With none, compiled functions still
    /// trace, simplify and cache, but run unfused, and say so once on stderr.
    public static var compilerPath: String {
        get { compiler.withLock { $0 } }
        set { compiler.withLock { $0 = newValue } }
    }

    /// Whether the caller runs inside a trace (compile's, or a transform's):
    /// tensors may be placeholders, so their values must not be read.
    public static var isTracing: Bool { Tracing.isActive }

    /// How often compiled functions traced, and how often a call reused a trace.
    public static var traceCount: Int { CompileStatistics.traces.load(ordering: .relaxed) }
    public static var cacheHitCount: Int { CompileStatistics.cacheHits.load(ordering: .relaxed) }
    /// How many kernels the C compiler built, and how many came from the disk cache.
    public static var compilerRunCount: Int { CompileStatistics.compilerRuns.load(ordering: .relaxed) }
    public static var diskCacheHitCount: Int { CompileStatistics.diskHits.load(ordering: .relaxed) }
}

/// The lock of stateful compiled calls; keyless random draws take it too,
/// so no other thread sees the global key while it is a trace's placeholder.
/// Recursive: a stateful function may call another, and draws inside a trace
/// run under it.
enum CompileState {
    static let lock = RecursiveLock()
}

final class RecursiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

enum CompileStatistics {
    static let traces = Atomic<Int>(0)
    static let cacheHits = Atomic<Int>(0)
    static let compilerRuns = Atomic<Int>(0)
    static let diskHits = Atomic<Int>(0)
}

/// Turns compilation off: compiled functions call their function directly.
public func disableCompile() { Compile.isEnabled = false }
/// Turns compilation back on.
public func enableCompile() { Compile.isEnabled = true }

/// `f`, compiled: traced once per input shapes and dtypes (per dtypes and
/// ranks when `shapeless`), simplified, with element-wise chains fused into
/// one generated kernel each, and replayed on later calls.
///
/// `inputs` and `outputs` hold state the function reads and updates (a model,
/// an optimizer, a random key): their `innerState` is an implicit input read
/// before each call and an implicit output written after it, so a training
/// step can be compiled whole.
///
/// ```swift
/// let gelu = compile { (x: Tensor) in 0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x * x * x))) }
/// let y = gelu(x)       // traces, fuses, runs one kernel
/// let z = gelu(x2)      // same shape: reuses the trace
/// ```
///
/// The function must be pure apart from that state: it is called only to
/// trace, so it must not read tensor values (`item()`), and tensors it
/// captures are constants of the trace. A compiled function may be called from
/// many tasks at once; calls of stateful ones are serialized (one lock for
/// all of them, as they may share state such as `Random.state`).
public func compile(
    inputs: [any Updatable] = [], outputs: [any Updatable] = [], shapeless: Bool = false,
    _ f: @escaping ([Tensor]) -> [Tensor]
) -> @Sendable ([Tensor]) -> [Tensor] {
    let compiled = CompiledFunction(f: f, stateInputs: inputs, stateOutputs: outputs, shapeless: shapeless)
    return { compiled.call($0) }
}

/// A function of one tensor, compiled (see ``compile(inputs:outputs:shapeless:_:)``).
public func compile(
    inputs: [any Updatable] = [], outputs: [any Updatable] = [], shapeless: Bool = false,
    _ f: @escaping (Tensor) -> Tensor
) -> @Sendable (Tensor) -> Tensor {
    let g = compile(inputs: inputs, outputs: outputs, shapeless: shapeless) { [f($0[0])] }
    return { g([$0])[0] }
}

/// One compiled function: its traces by input signature.
final class CompiledFunction: @unchecked Sendable {
    private let f: ([Tensor]) -> [Tensor]
    private let stateInputs: [any Updatable]
    private let stateOutputs: [any Updatable]
    private let shapeless: Bool
    private let traces = Locked<[Signature: Trace]>([:])

    struct Signature: Hashable {
        let shapes: [[Int]]
        let dtypes: [DType]
    }

    struct Trace: Sendable {
        let program: Program
        let resultCount: Int
        /// How many tensors each output state holder receives.
        let stateCounts: [Int]
    }

    init(
        f: @escaping ([Tensor]) -> [Tensor], stateInputs: [any Updatable], stateOutputs: [any Updatable],
        shapeless: Bool
    ) {
        self.f = f
        self.stateInputs = stateInputs
        self.stateOutputs = stateOutputs
        self.shapeless = shapeless
    }

    func call(_ args: [Tensor]) -> [Tensor] {
        guard Compile.isEnabled else { return f(args) }
        if stateInputs.isEmpty && stateOutputs.isEmpty { return statelessCall(args) }
        // Reading the state, replaying and writing it back is one step: calls
        // of stateful functions (which may share state, such as
        // Random.state) are serialized.
        return CompileState.lock.withLock { statelessCall(args) }
    }

    private func statelessCall(_ args: [Tensor]) -> [Tensor] {
        let all = args + stateInputs.flatMap(\.innerState)
        let signature = Signature(
            shapes: all.map { shapeless ? [$0.ndim] : $0.shape }, dtypes: all.map(\.dtype))
        let trace: Trace
        if let cached = traces.withLock({ $0[signature] }) {
            CompileStatistics.cacheHits.add(1, ordering: .relaxed)
            trace = cached
        } else {
            // Traced outside the lock: f may call other compiled functions, and
            // two first calls at once just trace twice.
            trace = makeTrace(args: args, all: all)
            traces.withLock { $0[signature] = trace }
        }
        let results = trace.program.replay(all, shapeless: shapeless)
        var rest = results[trace.resultCount...]
        for (holder, n) in zip(stateOutputs, trace.stateCounts) {
            holder.innerState = Array(rest.prefix(n))
            rest = rest.dropFirst(n)
        }
        return Array(results.prefix(trace.resultCount))
    }

    private func makeTrace(args: [Tensor], all: [Tensor]) -> Trace {
        CompileStatistics.traces.add(1, ordering: .relaxed)
        let placeholders = tracedPrimals(all)
        // State holders show the function placeholders instead of their values.
        let saved = stateInputs.map(\.innerState)
        var next = args.count
        for holder in stateInputs {
            let n = holder.innerState.count
            holder.innerState = Array(placeholders[next..<next + n])
            next += n
        }
        // The new state is read inside the trace too: holders may answer
        // with traced values they must not evaluate.
        let (results, newState) = Tracing.with(true) {
            (f(Array(placeholders.prefix(args.count))), stateOutputs.map(\.innerState))
        }
        // Holders that are outputs too get the replayed state right after;
        // restoring them here would lose state the function created (an
        // optimizer's moments on its first step).
        let written = Set(stateOutputs.map { ObjectIdentifier($0) })
        for (holder, state) in zip(stateInputs, saved) where !written.contains(ObjectIdentifier(holder)) {
            holder.innerState = state
        }

        var program = Program(placeholders: placeholders, outputs: results + newState.flatMap { $0 }).simplified()
        if CCompiler.isAvailable {
            program = program.fused()
        } else {
            CCompiler.warnOnce(
                "compiler", "[compile] no C compiler ('\(Compile.compilerPath)'): compiled functions run unfused")
        }
        return Trace(program: program, resultCount: results.count, stateCounts: newState.map(\.count))
    }
}
