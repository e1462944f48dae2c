// The CPU thread pool: back-to-back jobs run every chunk once; concurrent callers complete.

import XCTest

@testable import Tessera

/// The pool's lock-free hand-over under stress (CI also runs these under the
/// thread sanitizer).
final class ThreadPoolTests: XCTestCase {
    /// Thousands of short jobs back to back on pools whose workers spin, sleep
    /// at once (every job must wake them), outnumber the cores, or are sent to
    /// sleep between jobs: each job runs every index exactly once, and returns
    /// only after its last chunk is done (the caller reads every count).
    func testBackToBackJobsRunEveryChunkOnceWhetherWorkersSpinOrSleep() {
        for (threads, spin) in [(2, 300), (2, 0), (4, 0), (3, 20)] {
            let pool = ThreadPool(threads: threads, spinMicroseconds: spin)
            let capacity = 48
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
            defer { counts.deallocate() }
            var wrong: [Int] = []
            for job in 0..<1500 {
                let n = 2 + job % (capacity - 1)
                counts.initialize(repeating: 0, count: capacity)
                pool.parallelFor(n) { i in
                    // A little work, so workers overlap the caller.
                    var x = 0
                    for k in 0..<(i % 5) * 200 { x &+= k }
                    counts[i] += 1 + (x == -1 ? 1 : 0)
                }
                if !(0..<n).allSatisfy({ counts[$0] == 1 }) || !(n..<capacity).allSatisfy({ counts[$0] == 0 }) {
                    wrong.append(job)
                }
                if job % 97 == 0 { pool.stopSpinning() }
            }
            XCTAssertEqual(wrong, [], "threads \(threads), spin \(spin) µs: jobs with an index run other than once")
        }
    }

    /// Jobs from several threads at once: one holds the pool, the others run
    /// their jobs inline; all complete, none twice.
    func testConcurrentCallersEachCompleteTheirJobs() {
        let pool = ThreadPool(threads: 2, spinMicroseconds: 50)
        let callers = 4, jobs = 300, n = 16
        let pointer = UnsafeMutablePointer<Int>.allocate(capacity: callers)
        pointer.initialize(repeating: 0, count: callers)
        defer { pointer.deallocate() }
        let totals = UncheckedBox(pointer)  // each caller writes its own entry
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: n)
            defer { counts.deallocate() }
            for _ in 0..<jobs {
                counts.initialize(repeating: 0, count: n)
                pool.parallelFor(n) { i in counts[i] += 1 }
                totals.value[c] += (0..<n).filter { counts[$0] == 1 }.count
            }
        }
        XCTAssertEqual((0..<callers).map { pointer[$0] }, [Int](repeating: jobs * n, count: callers))
    }
}
