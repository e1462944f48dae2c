// The dist suite: allSum bus bandwidth of float32 arrays from 1 KiB to
// 256 MiB on 2 local ranks, for Tessera's ring and MPI backends, beside Open
// MPI's own MPI_Allreduce (a C loop compiled with mpicc here) in the same run.
// The ring runs twice: over shared memory (its default for ranks on one host)
// and over loopback TCP (TESSERA_RING_SHM=0, the path between hosts).
// Bus bandwidth = bytes / time * 2 (n - 1) / n (NCCL's convention; 1x bytes/time
// for n = 2). Each figure is the median over the repetitions of one
// allSum, the ranks lined up by a small allSum first.
//
//   swift run -c release --package-path Benchmarks tessera-bench dist
//   (needs openmpi-bin and libopenmpi-dev for the MPI columns)

import Foundation
import Tessera

private let sizes = (0..<10).map { 1024 << (2 * $0) }  // 1 KiB ... 256 MiB

private func repetitions(_ bytes: Int) -> Int { bytes >= 64 << 20 ? 5 : bytes >= 1 << 20 ? 20 : 100 }

/// One rank's loop (run as `tessera-bench dist-rank BACKEND`); rank 0 prints "bytes seconds" lines.
func runDistRank(_ backend: String) {
    do {
        let group = try Distributed(backend: backend == "mpi" ? .mpi : .ring, strict: true)
        for bytes in sizes {
            let x = Tensor.ones([bytes / 4], dtype: .float32)
            eval(x)
            var times: [Double] = []
            for i in 0..<(repetitions(bytes) + 2) {
                try checkedEval([allSum(Tensor.zeros([1]), group: group)])  // line the ranks up
                let start = DispatchTime.now().uptimeNanoseconds
                let y = allSum(x, group: group)
                try checkedEval([y])
                let t = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                if i >= 2 { times.append(t) }
            }
            if group.rank == 0 { print("BENCH \(bytes) \(times.sorted()[times.count / 2])") }
        }
    } catch {
        print("error: \(error)")
        exit(1)
    }
}

private func run(_ arguments: [String], environment: [String: String] = [:]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch { return nil }
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return p.terminationStatus == 0 ? text : nil
}

private func parse(_ text: String?) -> [Int: Double] {
    var out: [Int: Double] = [:]
    for line in (text ?? "").split(separator: "\n") where line.hasPrefix("BENCH ") {
        let parts = line.split(separator: " ")
        if parts.count == 3, let b = Int(parts[1]), let t = Double(parts[2]) { out[b] = t }
    }
    return out
}

/// The peer: MPI_Allreduce of float32 in a C loop, timed the same way.
private let peerSource = """
    #include <mpi.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
    int main(int argc, char **argv) {
        MPI_Init(&argc, &argv);
        int rank; MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        for (long bytes = 1024; bytes <= (256L << 20); bytes *= 4) {
            long n = bytes / 4;
            int reps = bytes >= (64L << 20) ? 5 : bytes >= (1L << 20) ? 20 : 100;
            float *x = malloc(bytes), *y = malloc(bytes);
            for (long i = 0; i < n; i++) x[i] = 1.0f;
            double *times = malloc(sizeof(double) * reps);
            float one = 0, sink;
            for (int i = 0; i < reps + 2; i++) {
                MPI_Allreduce(&one, &sink, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                MPI_Allreduce(x, y, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                double t = MPI_Wtime() - t0;
                if (i >= 2) times[i - 2] = t;
            }
            qsort(times, reps, sizeof(double), cmp);
            if (rank == 0) printf("BENCH %ld %.9f\\n", bytes, times[reps / 2]);
            free(x); free(y); free(times);
        }
        MPI_Finalize();
        return 0;
    }
    """

func runDistSuite() {
    let me = CommandLine.arguments[0]
    let mpirun = ["mpirun", "-np", "2", "--oversubscribe"] + (getuid() == 0 ? ["--allow-run-as-root"] : [])
    // Ring: two copies of this program on free local ports; local ranks take
    // shared memory for the all-reduce unless TESSERA_RING_SHM=0 (TCP, as across hosts).
    func ringRun(sharedMemory: Bool) -> [Int: Double] {
        let base = Int.random(in: 30000..<50000)
        let hosts = "127.0.0.1:\(base),127.0.0.1:\(base + 1)"
        final class Outputs: @unchecked Sendable {
            let lock = NSLock()
            var text: [String?] = [nil, nil]
        }
        let outputs = Outputs()
        let group = DispatchGroup()
        for rank in 0..<2 {
            group.enter()
            DispatchQueue.global().async {
                let text = run(
                    [me, "dist-rank", "ring"],
                    environment: [
                        "TESSERA_RANK": "\(rank)", "TESSERA_WORLD_SIZE": "2", "TESSERA_RING_HOSTS": hosts,
                        "TESSERA_RING_SHM": sharedMemory ? "1" : "0"
                    ])
                outputs.lock.lock()
                outputs.text[rank] = text
                outputs.lock.unlock()
                group.leave()
            }
        }
        group.wait()
        return parse(outputs.text[0])
    }
    let ring = ringRun(sharedMemory: true)
    let ringTCP = ringRun(sharedMemory: false)
    let mpi = parse(run(mpirun + [me, "dist-rank", "mpi"]))
    // The peer, compiled now.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-mpi-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let source = dir.appendingPathComponent("allreduce.c"), binary = dir.appendingPathComponent("allreduce")
    try? peerSource.write(to: source, atomically: true, encoding: .utf8)
    var peer: [Int: Double] = [:]
    if run(["mpicc", "-O2", source.path, "-o", binary.path]) != nil {
        peer = parse(run(mpirun + [binary.path]))
    }
    print("allSum float32 on 2 local ranks: bus bandwidth (GB/s) and median time per call")
    print("")
    print(
        "| size | Tessera ring (shared memory) | Tessera ring (TCP) | Tessera MPI | Open MPI MPI_Allreduce (C) | ring / MPI_Allreduce | ring TCP / MPI_Allreduce | Tessera MPI / MPI_Allreduce |"
    )
    print("|---|---|---|---|---|---|---|---|")
    func cell(_ t: Double?, _ bytes: Int) -> String {
        guard let t else { return "–" }
        return String(
            format: "%.2f GB/s (%@)", Double(bytes) / t / 1e9,
            t < 1e-3 ? String(format: "%.0f µs", t * 1e6) : String(format: "%.1f ms", t * 1e3))
    }
    func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b else { return "–" }
        return String(format: "%.2f×", b / a)
    }
    for bytes in sizes {
        let label = bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
        print(
            "| \(label) | \(cell(ring[bytes], bytes)) | \(cell(ringTCP[bytes], bytes)) | \(cell(mpi[bytes], bytes)) | \(cell(peer[bytes], bytes)) | \(ratio(ring[bytes], peer[bytes])) | \(ratio(ringTCP[bytes], peer[bytes])) | \(ratio(mpi[bytes], peer[bytes])) |"
        )
    }
}
