// The CPU thread pool: one worker per core (less the caller, who works too),
// started on first use. Kernels split large work into chunks with
// `parallelFor`; small work, or a call made while the pool is busy (nested,
// or from a second stream), runs on the calling thread, so the pool never
// deadlocks and never oversubscribes.
//
// Waking a sleeping thread costs a futex round trip (5-50 µs, more on a busy
// machine), as long as a decode step's whole matrix-vector product. So a
// worker that finishes a job spins a while (TESSERA_POOL_SPIN_US, default
// 300 µs) watching for the next one before it sleeps, and the caller spins
// briefly for the last workers of its job before it sleeps (llama.cpp's
// threads spin the same way between the ops of a graph).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import CTesseraKernels
import Synchronization

final class ThreadPool: @unchecked Sendable {
    /// Sized to the cores this process may run on; `TESSERA_NUM_THREADS` overrides.
    static let shared = ThreadPool(threads: ThreadPool.defaultThreadCount())

    /// Threads that run a job, the caller included.
    let threadCount: Int

    // Handing a job over takes no lock while the workers spin: the caller
    // publishes it through atomics, and a worker joins by counting itself in
    // `active` before it checks `open` (both sequentially consistent, so a
    // caller that closes the job and then finds `active` at 0 knows no worker
    // is in it or will join it). The mutex and conditions are only for
    // threads that sleep: workers between jobs, the caller waiting for them.
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var done = pthread_cond_t()
    /// The job number, bumped for each job.
    private let published = Atomic<Int>(0)
    /// Whether workers may still join the current job.
    private let open = Atomic<Bool>(false)
    /// Workers counted in for the current job (the caller waits for these).
    private let active = Atomic<Int>(0)
    /// Workers asleep (or about to sleep) on `wake`.
    private let sleepers = Atomic<Int>(0)
    /// Whether the caller sleeps on `done`.
    private let callerSleeps = Atomic<Bool>(false)
    /// How long a worker spins for the next job, and the caller for its workers, before sleeping.
    private let spinLimit: Duration
    /// Bumped by `stopSpinning`: spinning workers go to sleep at once.
    private let parkRequests = Atomic<Int>(0)
    /// The caller's closure, read in place (never copied into the pool);
    /// written before `open` is set, read by workers counted in while it is.
    nonisolated(unsafe) private var job: UnsafePointer<(Int) -> Void>?
    nonisolated(unsafe) private var jobCount = 0
    // Lock-free during a job.
    private let nextChunk = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// When false every job runs on the caller (benchmarks measure the split's worth with it).
    let enabled = Atomic<Bool>(true)

    init(threads: Int, spinMicroseconds: Int = ThreadPool.defaultSpinMicroseconds()) {
        threadCount = max(1, threads)
        spinLimit = .microseconds(max(0, spinMicroseconds))
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        pthread_cond_init(&done, nil)
        for _ in 1..<threadCount { startWorker() }
    }

    static func defaultThreadCount() -> Int {
        if let s = getenv("TESSERA_NUM_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return Int(tk_cpu_count())
    }

    static func defaultSpinMicroseconds() -> Int {
        if let s = getenv("TESSERA_POOL_SPIN_US"), let n = Int(String(cString: s)), n >= 0 { return n }
        return 300
    }

    /// Spins up to `spinLimit` (on `ContinuousClock`) until `done()` holds; whether it does. Every
    /// 64 pauses the spinner yields its core: when another thread is waiting
    /// for one (a core taken by another process, the stream's worker with an
    /// op to run), that thread runs instead of the spin; when none is, the
    /// yield returns at once.
    private func spin(until done: () -> Bool) -> Bool {
        if spinLimit == .zero { return done() }
        let clock = ContinuousClock(), start = clock.now
        var i = 0
        while !done() {
            tk_spin_pause()
            i += 1
            if i & 63 == 0 {
                if clock.now - start > spinLimit { return done() }
                sched_yield()
            }
        }
        return true
    }

    private func startWorker() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let pool = Unmanaged<ThreadPool>.fromOpaque(arg!).takeRetainedValue()
                pool.workerLoop()
                return nil
            }, box)
        precondition(rc == 0, "[ThreadPool] pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    // A worker that wakes after the caller has claimed every chunk finds the
    // job closed (or drained) and goes back to waiting: on a loaded machine
    // the caller never waits for a worker the OS has not scheduled yet.
    private func workerLoop() {
        var seen = 0
        while true {
            let parks = parkRequests.load(ordering: .relaxed)
            _ = spin { published.load(ordering: .acquiring) != seen || parkRequests.load(ordering: .relaxed) != parks }
            if published.load(ordering: .sequentiallyConsistent) == seen {
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while published.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(&wake, &mutex) }
                sleepers.subtract(1, ordering: .relaxed)
                pthread_mutex_unlock(&mutex)
            }
            seen = published.load(ordering: .acquiring)
            active.add(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent), let body = job {
                drain(body, jobCount)
            }
            if active.subtract(1, ordering: .sequentiallyConsistent).newValue == 0
                && callerSleeps.load(ordering: .sequentiallyConsistent)
            {
                pthread_mutex_lock(&mutex)
                pthread_cond_signal(&done)
                pthread_mutex_unlock(&mutex)
            }
        }
    }

    /// Sends spinning workers to sleep now: a caller about to run work with
    /// threads of its own (OpenBLAS's GEMM) gives them the cores.
    func stopSpinning() {
        parkRequests.add(1, ordering: .relaxed)
    }

    private func drain(_ body: UnsafePointer<(Int) -> Void>, _ count: Int) {
        // Read once: calling through the pointer retains and releases the
        // closure's context per chunk, a cache line both threads then fight over.
        let f = body.pointee
        while true {
            let i = nextChunk.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            f(i)
        }
    }

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the pool;
    /// returns when all calls have returned.
    func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 || !enabled.load(ordering: .relaxed)
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            withUnsafePointer(to: escapable) { pointer in
                job = pointer
                jobCount = count
                nextChunk.store(0, ordering: .relaxed)
                open.store(true, ordering: .sequentiallyConsistent)
                published.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(&mutex)
                    pthread_cond_broadcast(&wake)
                    pthread_mutex_unlock(&mutex)
                }
                drain(pointer, count)
                // Every chunk is claimed: close the job (no worker joins after this), wait for those in it.
                open.store(false, ordering: .sequentiallyConsistent)
                if !spin(until: { active.load(ordering: .sequentiallyConsistent) == 0 }) {
                    pthread_mutex_lock(&mutex)
                    callerSleeps.store(true, ordering: .sequentiallyConsistent)
                    while active.load(ordering: .sequentiallyConsistent) > 0 { pthread_cond_wait(&done, &mutex) }
                    callerSleeps.store(false, ordering: .relaxed)
                    pthread_mutex_unlock(&mutex)
                }
                job = nil
            }
        }
        busy.store(false, ordering: .releasing)
    }

    /// Splits `0..<total` into at most `threadCount` ranges of at least
    /// `grain` items (aligned to `align`) and runs `body` on each in parallel.
    func parallelRanges(_ total: Int, grain: Int, align: Int = 1, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let pieces = min(threadCount, max(1, total / max(grain, 1)))
        if pieces <= 1 {
            body(0..<total)
            return
        }
        var step = (total + pieces - 1) / pieces
        step = (step + align - 1) / align * align
        let chunks = (total + step - 1) / step
        parallelFor(chunks) { c in
            body((c * step)..<min(total, (c + 1) * step))
        }
    }
}
