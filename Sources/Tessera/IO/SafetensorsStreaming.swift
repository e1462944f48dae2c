// Writing a safetensors file one tensor at a time: the header (names, dtypes,
// shapes, offsets) is written from a plan, then each tensor is produced,
// evaluated, written and released before the next, so a writer holds one
// tensor's data at a time instead of all of them (`tessera convert`); a big
// tensor may come in pieces of rows, so not even it is held whole.

extension Safetensors {
    /// One tensor of a streamed file: its name, dtype and shape, known before its data.
    public struct PlannedTensor: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }

        /// Bytes of data (dtype size times elements).
        public var nbytes: Int { shape.reduce(1, *) * dtype.size }
    }

    /// Writes the tensors of `plan` (sorted by name here) and `metadata` to `path`,
    /// atomically, asking `produce` for each tensor in that order and writing it
    /// before asking for the next. `produce` gives the tensor whole, or in
    /// pieces of consecutive rows (along the first axis) that together are the
    /// tensor, written one after another (a writer then never holds the whole
    /// tensor in one buffer). Pieces whose dtype or shape do not make the planned
    /// tensor are an error (nothing is left at `path`). `written` is
    /// called after each tensor with its plan entry and the data bytes written so far.
    public static func save(
        plan: [PlannedTensor], metadata: [String: String] = [:], to path: String,
        produce: (PlannedTensor) throws -> [Tensor],
        written: (PlannedTensor, _ bytesSoFar: Int) -> Void = { _, _ in }
    ) throws {
        let entries = plan.sorted { $0.name < $1.name }
        for (a, b) in zip(entries, entries.dropFirst()) where a.name == b.name {
            throw IOError.cannotWrite(path: path, reason: "tensor \(a.name) is planned twice")
        }
        let text = try headerBytes(entries.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata, path: path)
        try writeAtomically(path) { append in
            var length = UInt64(text.count).littleEndian
            try withUnsafeBytes(of: &length) { try append($0) }
            try text.withUnsafeBytes { try append($0) }
            var done = 0
            for entry in entries {
                var pieces = try produce(entry)
                let shapes = pieces.map(\.shape)
                guard pieces.allSatisfy({ $0.dtype == entry.dtype }), Self.rowsJoin(shapes, into: entry.shape) else {
                    let got =
                        pieces.count == 1
                        ? "\(pieces[0].dtype) \(shapes[0])" : "pieces \(pieces.map(\.dtype)) \(shapes)"
                    throw IOError.cannotWrite(
                        path: path,
                        reason: "tensor \(entry.name) was planned as \(entry.dtype) \(entry.shape) but is \(got)")
                }
                // Each piece written, then released, before the next is evaluated.
                pieces.reverse()
                while let piece = pieces.popLast() {
                    let tensor = piece.contiguous()
                    // Evaluated here so a failure (memory past the limit) throws instead of trapping in bytes().
                    try checkedEval([tensor])
                    try tensor.bytes().withUnsafeBytes { try append($0) }
                }
                done += entry.nbytes
                written(entry, done)
            }
        }
    }

    /// Whether tensors of `shapes`, one after another along the first axis, make one of `shape`.
    static func rowsJoin(_ shapes: [[Int]], into shape: [Int]) -> Bool {
        guard shapes.count != 1 else { return shapes[0] == shape }
        guard let rows = shape.first, !shapes.isEmpty else { return false }
        let rest = Array(shape.dropFirst())
        guard shapes.allSatisfy({ !$0.isEmpty && Array($0.dropFirst()) == rest }) else { return false }
        return shapes.reduce(0) { $0 + $1[0] } == rows
    }

    /// The header of a file holding `entries` in this order, data back to back:
    /// its JSON (names, dtypes, shapes, data offsets, `__metadata__`) padded with
    /// spaces so the data starts 8-byte aligned, as the reference writer does.
    static func headerBytes(
        _ entries: [(name: String, dtype: DType, shape: [Int])], metadata: [String: String], path: String
    ) throws -> [UInt8] {
        var header = JSONObject()
        if !metadata.isEmpty {
            header["__metadata__"] = .object(
                JSONObject(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        }
        var offset = 0
        for entry in entries {
            guard let dtypeName = dtypeNames[entry.dtype] else {
                throw IOError.cannotWrite(
                    path: path, reason: "safetensors has no dtype for \(entry.dtype) (tensor \(entry.name))")
            }
            let nbytes = entry.shape.reduce(1, *) * entry.dtype.size
            header[entry.name] = .object(
                JSONObject([
                    ("dtype", .string(dtypeName)),
                    ("shape", .array(entry.shape.map { .int($0) })),
                    ("data_offsets", .array([.int(offset), .int(offset + nbytes)]))
                ]))
            offset += nbytes
        }
        var text = Array(JSONValue.object(header).compactText.utf8)
        while (8 + text.count) % 8 != 0 { text.append(0x20) }
        return text
    }
}
