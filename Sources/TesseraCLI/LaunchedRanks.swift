// Commands under `tessera launch -n N`. `generate` and `chat`: the model is
// split over the ranks (TesseraLM's TensorParallel), every rank runs every
// forward pass, and only rank 0 talks to the user: rank 0 reads the prompt or
// chat line and passes it to the others, and the sampling seed is rank 0's,
// so every rank draws the same tokens from the same logits. `serve`: rank 0
// runs the server and sends each forward pass of its batched engine to the
// others, which run it on their blocks (TensorParallelServing). `lora`: data
// parallel (Trainer's `group`). The other ranks' standard output is discarded.

import Tessera
import TesseraLM

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The launched world of a command, or a group of one.
struct LaunchedRanks {
    let group: Group

    /// The world `tessera launch` configured (a typed error when its backend
    /// cannot start), or a group of one outside a launch.
    static func start() throws -> LaunchedRanks {
        let group = try Group(backend: .any)
        let run = LaunchedRanks(group: group)
        if group.size > 1 && group.rank != 0 { run.discardStandardOutput() }
        return run
    }

    var isParallel: Bool { group.size > 1 }
    var tensorParallel: TensorParallel? { isParallel ? TensorParallel(group: group) : nil }

    /// Options that cannot work split over ranks are refused before loading.
    func refuse(adapter: String?, promptCache: String?) throws {
        guard isParallel else { return }
        if adapter != nil {
            throw DistributedError.badConfiguration("--adapter-path is not supported with a model split over ranks")
        }
        if promptCache != nil {
            throw DistributedError.badConfiguration("--prompt-cache is not supported with a model split over ranks")
        }
    }

    /// `serve` split over the ranks. Outside a launch: `.some(nil)` (serve
    /// alone). Rank 0: `.some(leader)`, to serve with (the batched engine only;
    /// `stop()` it when the server ends). The other ranks run rank 0's forward
    /// passes here until it stops, then get nil (return, the work done).
    /// `cacheType`: the engine's cache type, which every rank's caches share.
    func serve(model: any LanguageModel, batched: Bool, cacheType: KVCacheType) throws -> TensorParallelLeader?? {
        guard isParallel else { return .some(nil) }
        guard batched else {
            throw DistributedError.badConfiguration(
                "--engine serial is not supported with a model split over ranks (the batched engine is)")
        }
        guard let transformer = model as? TransformerModel else {
            throw DistributedError.badConfiguration("only transformer models can be served split over ranks")
        }
        guard group.rank != 0 else { return .some(TensorParallelServing.lead(transformer, group: group)) }
        // Signals go to rank 0, which stops the server and then these ranks.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        try TensorParallelServing.follow(transformer, group: group, cacheType: cacheType)
        return nil
    }

    private func discardStandardOutput() {
        flushStandardOutput()
        let null = open("/dev/null", O_WRONLY)
        guard null >= 0 else { return }
        dup2(null, STDOUT_FILENO)
        close(null)
    }

    /// The sampling seed every rank uses: the given one, or one rank 0 draws.
    func sharedSeed(_ seed: UInt64?) throws -> UInt64? {
        guard isParallel else { return seed }
        if let seed { return seed }
        let mine = group.rank == 0 ? UInt64.random(in: 0...UInt64.max) : 0
        let summed = allSum(Tensor([Int64(bitPattern: mine)]), group: group)
        try checkedEval([summed])
        return UInt64(bitPattern: summed.toArray(Int64.self)[0])
    }

    /// Rank 0's `read()` (a line, a prompt), passed to every rank; nil (end
    /// of input) on every rank when rank 0's is nil. Only rank 0 calls `read`.
    func shared(_ read: () throws -> String?) throws -> String? {
        guard isParallel else { return try read() }
        var bytes: [UInt8] = []
        var length: Int32 = -1
        if group.rank == 0, let text = try read() {
            bytes = Array(text.utf8)
            guard bytes.count < Int(Int32.max) else {
                throw DistributedError.badConfiguration("the input is too long to pass to the other ranks")
            }
            length = Int32(bytes.count)
        }
        let count = allSum(Tensor([group.rank == 0 ? length : 0]), group: group)
        try checkedEval([count])
        let n = Int(count.toArray(Int32.self)[0])
        guard n >= 0 else { return nil }
        guard n > 0 else { return "" }
        let mine = group.rank == 0 ? bytes.map { Int32($0) } : [Int32](repeating: 0, count: n)
        let text = allSum(Tensor(mine), group: group)
        try checkedEval([text])
        return String(decoding: text.toArray(Int32.self).map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
    }
}
