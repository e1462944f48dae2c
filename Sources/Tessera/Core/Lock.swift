// Locks for state shared across threads. All of them are visible to the
// thread sanitizer: `Lock` is a pthread mutex (intercepted), and `SpinLock`
// takes and releases itself with acquiring/releasing atomics compiled into
// this module. (Synchronization's `Mutex` on Linux acquires a contended lock
// inside the kernel (PI futex) or in an uninstrumented library loop, so the
// sanitizer misses the ordering and reports the state it guards as raced.)

import CTesseraKernels
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value guarded by a `Lock`, in the shape of Synchronization's `Mutex`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = Lock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    @inline(__always)
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value) }
    }
}

/// A one-word lock for critical sections of a few instructions (a graph
/// node's state): no allocation, no system call while uncontended, and a
/// waiter spins briefly, then yields its core.
struct SpinLock: ~Copyable {
    private let word = Atomic<UInt32>(0)

    init() {}

    @inline(__always)
    func lock() {
        if word.compareExchange(expected: 0, desired: 1, successOrdering: .acquiring, failureOrdering: .relaxed)
            .exchanged
        {
            return
        }
        lockSlow()
    }

    @inline(never)
    private func lockSlow() {
        var tries = 0
        while true {
            if word.load(ordering: .relaxed) == 0,
                word.compareExchange(expected: 0, desired: 1, successOrdering: .acquiring, failureOrdering: .relaxed)
                    .exchanged
            {
                return
            }
            tries += 1
            if tries < 100 { tk_spin_pause() } else { sched_yield() }
        }
    }

    @inline(__always)
    func unlock() { word.store(0, ordering: .releasing) }
}
