// Key/value caches, one per attention layer: standard (grows), rotating
// (keeps the most recent `maxSize` positions).

import Tessera

/// The keys and values a layer has seen, `[B, heads, length, headDim]`.
public final class KVCache: @unchecked Sendable {
    /// Positions seen so far (rope offset for the next tokens).
    public private(set) var offset = 0
    /// Keep at most this many positions (nil: unbounded).
    public let maxSize: Int?
    private var keys: Tensor?
    private var values: Tensor?

    public init(maxSize: Int? = nil) {
        self.maxSize = maxSize
    }

    /// Appends `keys`/`values` of new positions; returns everything to attend to.
    public func update(keys newKeys: Tensor, values newValues: Tensor) -> (Tensor, Tensor) {
        let n = newKeys.dim(2)
        var k = keys.map { concatenated([$0, newKeys], axis: 2) } ?? newKeys
        var v = values.map { concatenated([$0, newValues], axis: 2) } ?? newValues
        if let maxSize, k.dim(2) > maxSize {
            // Keep the window, but never drop keys the new queries need.
            let keep = Swift.max(maxSize, n)
            k = k[0..., 0..., (k.dim(2) - keep)...]
            v = v[0..., 0..., (v.dim(2) - keep)...]
        }
        // Materialise so the next step does not re-run the whole history.
        keys = k
        values = v
        offset += n
        return (k, v)
    }

    /// Tensors to evaluate with the step's output.
    public var state: [Tensor] { [keys, values].compactMap { $0 } }

    /// Cached length.
    public var length: Int { keys?.dim(2) ?? 0 }
}
