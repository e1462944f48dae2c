// Tensor-parallel serving (`tessera launch -n N -- tessera serve`): rank 0
// runs the HTTP server and the batched engine over its block of the model;
// the other ranks run no server and no scheduler, only forward passes.
// Before each forward pass of the engine (`stepOutputs`, BatchedForward.swift)
// rank 0 sends the pass's shape to the others: which sequences' caches (ids
// rank 0 assigns, and the ids of caches gone since the last pass) and which
// new tokens each one feeds. Each other rank then runs the same pass on its
// own block with its own caches, so the all-reduces inside the layers line
// up, and evaluates the same tensors in the same order as rank 0. Sampling
// happens on rank 0 only; the tokens it picks come back as the next pass's
// inputs. The hook is at the model's forward level, so the scheduler's
// choices (admission, chunked prefill, cancellation) need no change.
//
// Waiting for the next pass has no timeout (an idle server is not a failed
// one), but a rank 0 that exits or dies ends the others at once (the ring's
// `awaitMessage` watches its connections). The prefix cache is off under
// tensor parallelism: its copies would happen outside the forward pass.

import Synchronization
import Tessera

/// Rank 0's side: sends every forward pass's shape to the other ranks.
public final class TensorParallelLeader: @unchecked Sendable {
    let group: Group
    /// Cache ids by the identity of a sequence's first-layer cache (weakly held:
    /// a cache that is gone is reported to the others, which drop theirs).
    private var ids: [ObjectIdentifier: (id: Int32, cache: WeakCache)] = [:]
    private var nextID: Int32 = 1
    /// The first failure to send; the forward pass's own all-reduces then fail too.
    private(set) var failure: Error?

    final class WeakCache {
        weak var value: KVCache?
        init(_ value: KVCache) { self.value = value }
    }

    init(group: Group) { self.group = group }

    /// The message for a pass: [dead count, dead ids..., segment count,
    /// (id, wants logits, token count, tokens...) per segment].
    func message(_ segments: [StepSegment]) -> [Int32] {
        var dead: [Int32] = []
        for (key, entry) in ids where entry.cache.value == nil {
            dead.append(entry.id)
            ids[key] = nil
        }
        var message = [Int32(dead.count)] + dead.sorted() + [Int32(segments.count)]
        for segment in segments {
            var id: Int32 = 0
            if let first = segment.cache.first {
                let key = ObjectIdentifier(first)
                if let entry = ids[key], entry.cache.value === first {
                    id = entry.id
                } else {
                    id = nextID
                    nextID += 1
                    ids[key] = (id, WeakCache(first))
                }
            }
            message += [id, segment.wantsLogits ? 1 : 0, Int32(segment.tokens.count)] + segment.tokens.map { Int32($0) }
        }
        return message
    }

    func willStep(_ segments: [StepSegment]) { broadcast(message(segments)) }

    /// Tells the other ranks to return from `follow` (the server is stopping).
    public func stop() { broadcast(nil) }

    private func broadcast(_ message: [Int32]?) {
        guard failure == nil, group.size > 1 else { return }
        do {
            let header = Tensor([Int32(message?.count ?? -1), 0])
            try checkedEval((1..<group.size).map { send(header, to: $0, group: group) })
            if let message, !message.isEmpty {
                let payload = Tensor(message)
                try checkedEval((1..<group.size).map { send(payload, to: $0, group: group) })
            }
        } catch {
            failure = error
        }
    }
}

public enum TensorParallelServing {
    private static let leaders = Mutex<[ObjectIdentifier: TensorParallelLeader]>([:])

    /// Makes rank 0's `model` send each forward pass to the other ranks of `group`.
    public static func lead(_ model: TransformerModel, group: Group) -> TensorParallelLeader {
        let leader = TensorParallelLeader(group: group)
        leaders.withLock { $0[ObjectIdentifier(model)] = leader }
        return leader
    }

    /// Called by `stepOutputs` before it builds a pass (nothing unless `model` leads).
    static func willStep(_ model: TransformerModel, _ segments: [StepSegment]) {
        guard let leader = leaders.withLock({ $0[ObjectIdentifier(model)] }) else { return }
        leader.willStep(segments)
    }

    /// The largest message accepted from rank 0 (tokens and ids of one pass).
    static let maxMessage = 1 << 20

    /// Another rank's side: runs rank 0's forward passes on `model` (this
    /// rank's block) until rank 0 stops; throws when rank 0 fails or sends
    /// something malformed.
    /// `cacheType` must be rank 0's engine's (`BatchedEngine.Configuration.kvCacheType`).
    public static func follow(_ model: TransformerModel, group: Group, cacheType: KVCacheType = .f16) throws {
        var caches: [Int32: [KVCache]] = [:]
        while true {
            try group.awaitMessage(from: 0)
            let header = recv(shape: [2], dtype: .int32, from: 0, group: group)
            try checkedEval([header])
            let count = Int(header.toArray(Int32.self)[0])
            if count < 0 { return }
            guard count <= maxMessage else {
                throw DistributedError.badConfiguration(
                    "a forward pass of \(count) values from rank 0 (at most \(maxMessage))")
            }
            var message: [Int32] = []
            if count > 0 {
                let payload = recv(shape: [count], dtype: .int32, from: 0, group: group)
                try checkedEval([payload])
                message = payload.toArray(Int32.self)
            }
            let segments = try parse(message, model: model, caches: &caches, cacheType: cacheType)
            // The same tensors, in the same order, as BatchedEngine.run evaluates on rank 0.
            try checkedEval(model.stepOutputs(segments).evaluate)
        }
    }

    /// Decodes rank 0's message (bounds checked) into segments over this rank's caches.
    static func parse(
        _ message: [Int32], model: TransformerModel, caches: inout [Int32: [KVCache]], cacheType: KVCacheType = .f16
    ) throws
        -> [StepSegment]
    {
        var at = 0
        func next() throws -> Int {
            guard at < message.count else {
                throw DistributedError.badConfiguration("a truncated forward pass from rank 0")
            }
            at += 1
            return Int(message[at - 1])
        }
        func count(_ what: String) throws -> Int {
            let n = try next()
            guard n >= 0, n <= message.count - at else {
                throw DistributedError.badConfiguration("a forward pass from rank 0 with \(n) \(what)")
            }
            return n
        }
        for _ in 0..<(try count("dead caches")) { caches[Int32(try next())] = nil }
        var segments: [StepSegment] = []
        for _ in 0..<(try count("segments")) {
            let id = Int32(try next())
            let wantsLogits = try next() != 0
            let n = try count("tokens")
            var tokens: [Int] = []
            for _ in 0..<n {
                let token = try next()
                guard token >= 0, token < model.vocabularySize else {
                    throw DistributedError.badConfiguration("token \(token) from rank 0 is outside the vocabulary")
                }
                tokens.append(token)
            }
            let cache = caches[id] ?? model.makeStepCache(cacheType)
            caches[id] = cache
            segments.append(StepSegment(cache: cache, tokens: tokens, wantsLogits: wantsLogits))
        }
        guard at == message.count else {
            throw DistributedError.badConfiguration("a forward pass from rank 0 with extra values")
        }
        return segments
    }
}
