// safetensors: an 8-byte little-endian header length, a JSON header mapping
// names to {dtype, shape, data_offsets} (plus optional "__metadata__" of
// string pairs), then the raw little-endian data. Reading maps the file and
// views aligned tensors in place; writing is atomic.

/// Reading and writing `.safetensors` files.
public enum Safetensors {
    static let dtypeNames: [DType: String] = [
        .bool: "BOOL", .uint8: "U8", .int8: "I8", .uint16: "U16", .int16: "I16", .uint32: "U32",
        .int32: "I32", .uint64: "U64", .int64: "I64", .float16: "F16", .bfloat16: "BF16",
        .float32: "F32", .float64: "F64", .complex64: "C64"
    ]

    /// The tensors and metadata of the file at `path`, memory-mapped.
    public static func load(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try MappedFile(path: path)
        return try parse(file.bytes, owner: file)
    }

    /// Parses safetensors bytes; tensors view `bytes` when aligned and keep `owner` alive.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, owner: AnyObject
    ) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        var reader = ByteReader(bytes, format: "safetensors")
        let headerLength = try reader.read(UInt64.self, "header length")
        guard headerLength <= UInt64(reader.remaining) else {
            throw reader.fail("header length \(headerLength) exceeds the file (\(reader.remaining) bytes left)")
        }
        let headerBytes = try reader.readBytes(Int(headerLength), "header")
        let header: JSONValue
        do { header = try JSONValue(parsing: headerBytes) } catch { throw reader.fail("header: \(error)") }
        guard let entries = header.object else { throw reader.fail("the header is not a JSON object") }
        let data = UnsafeRawBufferPointer(rebasing: bytes[reader.offset...])

        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        var regions: [(start: Int, end: Int, name: String)] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                guard let pairs = entry.object else { throw reader.fail("__metadata__ is not an object") }
                for (k, v) in pairs {
                    guard let s = v.string else { throw reader.fail("metadata value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let dtypeName = entry["dtype"]?.string else { throw reader.fail("tensor \(name) has no dtype") }
            guard let dtype = dtypeNames.first(where: { $0.value == dtypeName })?.key else {
                throw IOError.unsupported(format: "safetensors", reason: "tensor \(name) has dtype \(dtypeName)")
            }
            guard let dims = entry["shape"]?.array?.map({ $0.int ?? -1 }), dims.count <= 32,
                let count = checkedCount(dims)
            else {
                throw reader.fail("tensor \(name) has an invalid shape")
            }
            guard let offsets = entry["data_offsets"]?.array?.compactMap(\.int), offsets.count == 2,
                offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= data.count
            else {
                throw reader.fail("tensor \(name) has data offsets outside the data section")
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow else { throw reader.fail("tensor \(name): shape \(dims) of \(dtype) is too large") }
            guard offsets[1] - offsets[0] == byteCount else {
                throw reader.fail(
                    "tensor \(name): shape \(dims) of \(dtype) is \(count) elements × \(dtype.size) = \(byteCount) bytes, "
                        + "but its data offsets span \(offsets[1] - offsets[0]) bytes")
            }
            regions.append((offsets[0], offsets[1], name))
            if byteCount == 0 {
                tensors[name] = Tensor.zeros(dims, dtype: dtype)
            } else {
                tensors[name] = Tensor.viewing(data.baseAddress! + offsets[0], shape: dims, dtype: dtype, owner: owner)
            }
        }
        // As the format requires, the tensors' data regions tile the data section:
        // no overlap, no hole, nothing after the last (refuses shifted offsets and polyglot files).
        regions.sort { ($0.start, $0.end) < ($1.start, $1.end) }
        var end = 0
        for r in regions {
            guard r.start == end else {
                throw reader.fail(
                    r.start < end
                        ? "tensor \(r.name)'s data (bytes \(r.start)..<\(r.end)) overlaps another tensor's"
                        : "\(r.start - end) bytes before tensor \(r.name)'s data belong to no tensor")
            }
            end = r.end
        }
        guard end == data.count else {
            throw reader.fail("\(data.count - end) bytes after the last tensor's data belong to no tensor")
        }
        return (tensors, metadata)
    }

    /// Writes `tensors` (sorted by name) and `metadata` to `path`, atomically.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        let entries = tensors.sorted { $0.key < $1.key }
        let text = try headerBytes(
            entries.map { ($0.key, $0.value.dtype, $0.value.shape) }, metadata: metadata, path: path)
        try writeAtomically(path) { append in
            var length = UInt64(text.count).littleEndian
            try withUnsafeBytes(of: &length) { try append($0) }
            try text.withUnsafeBytes { try append($0) }
            for (_, t) in entries {
                // Evaluated here so a failure (memory past the limit) throws instead of trapping in bytes().
                let tensor = t.contiguous()
                try checkedEval([tensor])
                let bytes = tensor.bytes()
                try bytes.withUnsafeBytes { try append($0) }
            }
        }
    }
}
