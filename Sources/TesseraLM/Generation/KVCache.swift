// Key/value caches, one per attention layer: standard (grows), rotating
// (keeps the most recent `maxSize` positions), either full precision or
// quantized in MLX's affine format (dequantized on read).

import Tessera

/// How a quantized cache stores keys and values.
public struct KVQuantization: Sendable, Equatable {
    public var bits: Int
    public var groupSize: Int

    /// The widths the quantized kernels take.
    public static let supportedBits = [2, 3, 4, 5, 6, 8]
    public static let supportedGroupSizes = [32, 64, 128]

    /// `bits` 4 or 8 (2, 3, 5, 6 work too); `groupSize` 32, 64 or 128.
    public init(bits: Int, groupSize: Int = 64) throws {
        guard Self.supportedBits.contains(bits) else {
            throw ModelError.invalidConfiguration("KV cache bits must be 2, 3, 4, 5, 6 or 8, got \(bits)")
        }
        guard Self.supportedGroupSizes.contains(groupSize) else {
            throw ModelError.invalidConfiguration("KV cache group size must be 32, 64 or 128, got \(groupSize)")
        }
        self.bits = bits
        self.groupSize = groupSize
    }
}

/// How a growing full-precision cache stores keys and values (llama.cpp's
/// `--cache-type-k` / `--cache-type-v`): `f16` (the default of generation,
/// chat and the engines: half the bytes a decode step reads; attention widens
/// them to float32 in registers) or `f32`.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f16, f32

    /// The element type of the stored keys and values.
    public var dtype: DType { self == .f16 ? .float16 : .float32 }
}

/// The keys and values a layer has seen, `[B, heads, length, headDim]`.
public final class KVCache: @unchecked Sendable {
    /// Positions seen so far (rope offset for the next tokens).
    public private(set) var offset = 0
    /// Keep at most this many positions (nil: unbounded).
    public let maxSize: Int?
    /// Quantized storage, when set (and the head size is a multiple of its group size).
    public private(set) var quantization: KVQuantization?
    /// Full precision: [keys, values]. Quantized: [keys, key scales, key biases, values, value scales, value biases].
    /// Every tensor has the positions on axis 2: `length` of them, or, for a
    /// growing full-precision cache, room for `capacity` of which the first
    /// `length` are filled.
    private(set) var storage: [Tensor] = []
    /// Positions held.
    public private(set) var length = 0
    /// Positions the growing cache's buffers have room for (0: exactly `length`).
    private var capacity = 0
    /// A growing cache allocates room for this many positions at a time.
    static let step = 256
    /// A growing full-precision cache stores keys and values as float16 (half
    /// the bytes a decode step reads; attention widens them to float32). Set
    /// at creation (`GenerateParameters.kvCacheType`, f16 by default); a
    /// rotating or quantized cache ignores it.
    public internal(set) var halfPrecision = false

    /// The element type a growing full-precision cache stores.
    var storedType: DType { halfPrecision ? .float16 : .float32 }

    /// A cache of at most `maxSize` positions (nil: growing), quantized with
    /// `quantization`, storing float16 with `type` `.f16` (growing
    /// full-precision caches only). This primitive defaults to float32; the
    /// generation paths create theirs with `GenerateParameters.makeCache(for:)`.
    public init(maxSize: Int? = nil, quantization: KVQuantization? = nil, type: KVCacheType = .f32) {
        self.maxSize = maxSize
        self.quantization = quantization
        halfPrecision = type == .f16 && maxSize == nil
    }

    /// A cache holding `storage` (as `state` returned it) after `offset` positions.
    init(storage: [Tensor], offset: Int, maxSize: Int?, quantization: KVQuantization?, halfPrecision: Bool = false) {
        self.storage = storage
        self.length = storage.first?.dim(2) ?? 0
        self.offset = offset
        self.maxSize = maxSize
        self.quantization = quantization
        self.halfPrecision = halfPrecision && maxSize == nil
    }

    /// Appends `keys`/`values` of new positions; returns everything to attend to.
    public func update(keys newKeys: Tensor, values newValues: Tensor) -> (Tensor, Tensor) {
        let n = newKeys.dim(2)
        let incoming: [Tensor]
        let quantized =
            quantization.map { newKeys.dim(3) % $0.groupSize == 0 && newValues.dim(3) % $0.groupSize == 0 } ?? false
        if maxSize == nil && !quantized { return append(keys: newKeys, values: newValues) }
        if quantized, let q = quantization {
            let k = quantize(newKeys, groupSize: q.groupSize, bits: q.bits)
            let v = quantize(newValues, groupSize: q.groupSize, bits: q.bits)
            incoming = [k.wq, k.scales, k.biases, v.wq, v.scales, v.biases]
        } else {
            incoming = [newKeys, newValues]
        }
        var all = storage.isEmpty ? incoming : zip(storage, incoming).map { concatenated([$0, $1], axis: 2) }
        offset += n
        var attended = all
        if let maxSize {
            // Attend to the window plus the new positions, keep only the window.
            let length = all[0].dim(2)
            let visible = Swift.min(length, maxSize - 1 + n)
            if visible < length { attended = all.map { $0[0..., 0..., (length - visible)...] } }
            if length > maxSize { all = all.map { $0[0..., 0..., (length - maxSize)...] } }
        }
        storage = all
        length = all[0].dim(2)
        guard quantized, let q = quantization else { return (attended[0], attended[1]) }
        let dtype = newKeys.dtype
        return (
            dequantize(attended[0], scales: attended[1], biases: attended[2], groupSize: q.groupSize, bits: q.bits)
                .asType(dtype),
            dequantize(attended[3], scales: attended[4], biases: attended[5], groupSize: q.groupSize, bits: q.bits)
                .asType(dtype)
        )
    }

    /// The growing full-precision cache: new positions are written into
    /// buffers with room to spare (sliceUpdate, done in place because the cache
    /// holds the only reference), so a step copies its own keys and values, not
    /// everything cached; the room grows by `step` positions when full.
    private func append(keys: Tensor, values: Tensor) -> (Tensor, Tensor) {
        let (newKeys, newValues) = halfPrecision ? (keys.asType(.float16), values.asType(.float16)) : (keys, values)
        let end = length + newKeys.dim(2)
        if end > capacity {
            let room = (end + Self.step - 1) / Self.step * Self.step
            storage = [newKeys, newValues].enumerated().map { i, new in
                // Room past `end` is written before anything reads it (readers take `..<length`):
                // not zero-filled, so only the positions written become resident.
                let shape = [new.dim(0), new.dim(1), room, new.dim(3)]
                var buffer = Tensor._unsetBuffer(shape, dtype: new.dtype) ?? Tensor.zeros(shape, dtype: new.dtype)
                if length > 0 { buffer[0..., 0..., ..<length] = storage[i][0..., 0..., ..<length] }
                return buffer
            }
            capacity = room
        }
        storage[0][0..., 0..., length..<end] = newKeys
        storage[1][0..., 0..., length..<end] = newValues
        length = end
        offset += newKeys.dim(2)
        return (storage[0][0..., 0..., ..<end], storage[1][0..., 0..., ..<end])
    }

    /// For a decode step replayed outside the graph (`DecodePlan`): the host
    /// addresses of the key and value buffers `[1, heads, capacity, headDim]`
    /// (float32, or float16 when `half`; row-contiguous, owned by this cache)
    /// with room for one more position after the `length` held, growing them
    /// by `step` positions when full. The caller writes position `length` of
    /// every head, then calls `advance()`. nil (nothing changed) when this is
    /// not a growing full-precision cache of that layout, or memory is refused.
    func roomForOne(heads: Int, headDim: Int) -> (
        keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer, capacity: Int, half: Bool
    )? {
        room(for: 1, heads: heads, headDim: headDim)
    }

    /// `roomForOne` for `count` (≥ 1) positions after the `length` held: the
    /// caller writes positions `length..<length + count`, then `advance(count)`.
    func room(for count: Int, heads: Int, headDim: Int) -> (
        keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer, capacity: Int, half: Bool
    )? {
        guard maxSize == nil, quantization == nil, heads > 0, headDim > 0, count > 0 else { return nil }
        let dtype: DType = halfPrecision ? .float16 : .float32
        if !storage.isEmpty {
            guard storage.count == 2,
                storage.allSatisfy({
                    $0.dtype == dtype && $0.ndim == 4 && $0.dim(0) == 1 && $0.dim(1) == heads && $0.dim(3) == headDim
                })
            else { return nil }
            if storage.contains(where: { $0._hostAddress() == nil }) { eval(storage) }
        }
        let room = Swift.max(capacity, storage.first?.dim(2) ?? 0)
        if length + count > room || storage.isEmpty {
            let grown = (length + count + Self.step - 1) / Self.step * Self.step
            let size = dtype.size
            var buffers: [Tensor] = []
            for old in storage {
                guard let fresh = Tensor._zerosBuffer([1, heads, grown, headDim], dtype: dtype),
                    let to = fresh._hostAddress(forWriting: true), let from = old._hostAddress()
                else { return nil }
                let oldRoom = old.dim(2)
                for h in 0..<heads {
                    (to + h * grown * headDim * size).copyMemory(
                        from: from + h * oldRoom * headDim * size, byteCount: length * headDim * size)
                }
                buffers.append(fresh)
            }
            if storage.isEmpty {
                for _ in 0..<2 {
                    guard let fresh = Tensor._zerosBuffer([1, heads, grown, headDim], dtype: dtype) else {
                        return nil
                    }
                    buffers.append(fresh)
                }
            }
            storage = buffers
            capacity = grown
        } else if capacity == 0 {
            capacity = room
        }
        guard let k = storage[0]._hostAddress(forWriting: true), let v = storage[1]._hostAddress(forWriting: true)
        else { return nil }
        return (k, v, capacity, halfPrecision)
    }

    /// Whether a step may write its new positions into this cache's buffers
    /// itself (BatchedAttention.swift): a growing full-precision cache whose
    /// buffers, when it has any, are `[1, heads, _, keySize|valueSize]` of its
    /// stored type (`storedType`: float16 or float32).
    func acceptsDirectWrites(heads: Int, keySize: Int, valueSize: Int) -> Bool {
        guard maxSize == nil, quantization == nil, offset == length else { return false }
        guard storage.count == 2 else { return storage.isEmpty }
        let (k, v) = (storage[0], storage[1])
        return k.dtype == storedType && v.dtype == storedType && k.shape == [1, heads, k.dim(2), keySize]
            && v.shape == [1, heads, v.dim(2), valueSize]
    }

    /// For a cache that `acceptsDirectWrites`: room for `n` more positions
    /// (growing as `append` does), and the buffers [keys, values] (of
    /// `storedType`) to write positions `length..<length + n` into;
    /// `advance(n)` then counts them.
    func reserve(_ n: Int, heads: Int, keySize: Int, valueSize: Int) -> (keys: Tensor, values: Tensor) {
        let dtype = storedType
        let end = length + n
        if end > capacity {
            let room = (end + Self.step - 1) / Self.step * Self.step
            let sizes = [keySize, valueSize]
            storage = sizes.indices.map { i in
                var buffer = Tensor.zeros([1, heads, room, sizes[i]], dtype: dtype)
                if length > 0 { buffer[0..., 0..., ..<length] = storage[i][0..., 0..., ..<length] }
                return buffer
            }
            capacity = room
        }
        return (storage[0], storage[1])
    }

    /// Counts `n` positions written by the caller of `reserve` (or those a
    /// replayed step wrote after `roomForOne` / `room(for:)`).
    func advance(_ n: Int = 1) {
        length += n
        offset += n
    }

    /// Stores the positions held, and every later one, quantized with `q`
    /// (a full-precision cache past `GenerateParameters.quantizedKVStart`);
    /// nothing changes for a cache already quantized.
    public func startQuantizing(_ q: KVQuantization) {
        guard quantization == nil else { return }
        quantization = q
        // Heads whose size is not a multiple of the group size stay full precision (as in `update`).
        guard storage.count == 2, storage[0].dim(3) % q.groupSize == 0, storage[1].dim(3) % q.groupSize == 0 else {
            return
        }
        // Quantized from float32 values (a float16 cache's widened), so the
        // scales and biases are float32 as in a cache quantized from the start.
        let filled = state.map { $0.dtype == .float16 ? $0.asType(.float32) : $0 }
        let k = quantize(filled[0], groupSize: q.groupSize, bits: q.bits)
        let v = quantize(filled[1], groupSize: q.groupSize, bits: q.bits)
        storage = [k.wq, k.scales, k.biases, v.wq, v.scales, v.biases]
        capacity = 0
    }

    /// Whether `removeLast` can take positions back: a growing full-precision
    /// cache (a rotating one has dropped what the positions displaced).
    public var canRemoveLast: Bool { maxSize == nil && quantization == nil }

    /// Forgets the last `n` positions (a step computed past a stop token).
    public func removeLast(_ n: Int) {
        precondition(canRemoveLast && n >= 0 && n <= length, "[KVCache] cannot remove \(n) of \(length) positions")
        length -= n
        offset -= n
        if capacity == 0 { storage = storage.map { $0[0..., 0..., ..<length] } }
    }

    /// Tensors to evaluate with the step's output (and to save): the filled positions.
    public var state: [Tensor] {
        capacity > length ? storage.map { $0[0..., 0..., ..<length] } : storage
    }
}
