// GGUF (v2, v3): "GGUF", version, tensor count, metadata key/value pairs
// (typed, arrays nested), tensor infos (name, dims fastest-first, ggml type,
// offset), then the tensor data at `general.alignment` (default 32).
// F32/F16/BF16 load as tensors (viewing the mapped file when aligned);
// Q4_0, Q4_1 and Q8_0 map onto MLX affine quantization with group 32
// (Q4_0: scale d, bias -8d; Q4_1: scale d, bias m; Q8_0: 8-bit, scale d,
// bias -128d, values offset by 128); the K-quants dequantize to float32.
// Memory: once a quantized tensor is copied out (repacked or dequantized), the
// whole pages of its blocks in the mapping are returned to the kernel, so a
// loaded model holds its weights once, not the file's pages and their copy.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// Any integer value as Int (nil for other types or out of range).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }
    /// Any numeric value as Double.
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { return a } else { return nil } }

    /// The GGUF type name of this value ("uint32", "string", "array of int32", ...), for error messages.
    public var typeName: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float32: "float32"
        case .float64: "float64"
        case .bool: "bool"
        case .string: "string"
        case .array(let a): a.first.map { "array of \($0.typeName)" } ?? "empty array"
        }
    }
}

/// The ggml tensor types Tessera reads.
public enum GGMLType: UInt32, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// (elements per block, bytes per block)
    var block: (elements: Int, bytes: Int) {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        case .q8_0: return (32, 34)
        case .q4_K: return (256, 144)
        case .q5_K: return (256, 176)
        case .q6_K: return (256, 210)
        }
    }
}

/// A weight in MLX's affine quantized format: `w = scales * q + biases` per
/// group of `groupSize` along the last axis, q packed low bits first into uint32.
public struct QuantizedWeight: Sendable {
    public let weight: Tensor
    public let scales: Tensor
    public let biases: Tensor
    public let groupSize: Int
    public let bits: Int

    public init(weight: Tensor, scales: Tensor, biases: Tensor, groupSize: Int, bits: Int) {
        self.weight = weight
        self.scales = scales
        self.biases = biases
        self.groupSize = groupSize
        self.bits = bits
    }

    /// The full-precision values, in float32.
    public func dequantized() -> Tensor {
        let perWord = 32 / bits
        let shifts = Tensor.arange(0, perWord, dtype: .uint32) * bits
        let mask = (1 << bits) - 1
        let w = weight.expandedDimensions(axis: -1)
        let q = ((w >> shifts) & mask).asType(.float32)  // [..., words, perWord]
        let columns = weight.dim(-1) * perWord
        let lead = Array(weight.shape.dropLast())
        let grouped = q.reshaped(lead + [columns / groupSize, groupSize])
        let values =
            grouped * scales.asType(.float32).expandedDimensions(axis: -1)
            + biases.asType(.float32).expandedDimensions(axis: -1)
        return values.reshaped(lead + [columns])
    }
}

/// A tensor read from a GGUF file.
public enum GGUFTensor: Sendable {
    case dense(Tensor)
    case quantized(QuantizedWeight)

    /// The values as a dense tensor (dequantized if needed).
    public var dense: Tensor {
        switch self {
        case .dense(let t): return t
        case .quantized(let q): return q.dequantized()
        }
    }
}

/// Where a tensor's data sits in a GGUF file.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// numpy order (slowest axis first): GGUF's dims reversed.
    public let shape: [Int]
    public let type: GGMLType
    let offset: Int
    let byteCount: Int
}

/// A GGUF file, memory-mapped; tensors are read on request.
public final class GGUFFile: @unchecked Sendable {
    public let version: Int
    public let metadata: [String: GGUFValue]
    /// Tensor infos in file order.
    public let tensorInfos: [GGUFTensorInfo]
    private let owner: AnyObject
    private let bytes: UnsafeRawBufferPointer
    /// Whether `bytes` is a private mapping of the file (whose copied-out pages are dropped).
    private let mapped: Bool

    public static func load(_ path: String) throws -> GGUFFile {
        let file = try MappedFile(path: path)
        return try GGUFFile(bytes: file.bytes, owner: file)
    }

    private init(sharing file: GGUFFile, metadata: [String: GGUFValue]) {
        version = file.version
        self.metadata = metadata
        tensorInfos = file.tensorInfos
        owner = file.owner
        bytes = file.bytes
        mapped = file.mapped
    }

    /// The same file with only the metadata `keeping` names (the tensors still
    /// read from the same mapping): for a caller that has built its tokenizer
    /// and chat template and no longer needs the vocabulary and merges, whose
    /// parsed values take megabytes (3.5 MB for SmolLM2's 49,152 tokens).
    public func droppingMetadata(keeping: (String) -> Bool = { !$0.hasPrefix("tokenizer.") }) -> GGUFFile {
        GGUFFile(sharing: self, metadata: metadata.filter { keeping($0.key) })
    }

    init(bytes: UnsafeRawBufferPointer, owner: AnyObject) throws {
        self.bytes = bytes
        self.owner = owner
        self.mapped = owner is MappedFile
        var r = ByteReader(bytes, format: "GGUF")
        guard Array(try r.readBytes(4, "magic")) == Array("GGUF".utf8) else {
            throw r.fail("bad magic (not a GGUF file)")
        }
        let version = Int(try r.read(UInt32.self, "version"))
        guard version == 2 || version == 3 else {
            throw IOError.unsupported(format: "GGUF", reason: "version \(version) (Tessera reads 2 and 3)")
        }
        self.version = version
        let tensorCount = try r.read(UInt64.self, "tensor count")
        let kvCount = try r.read(UInt64.self, "metadata count")
        // Every entry takes at least a few bytes: bound the counts by the file size.
        guard tensorCount <= UInt64(r.remaining / 24), kvCount <= UInt64(r.remaining / 12) else {
            throw r.fail("counts (\(tensorCount) tensors, \(kvCount) keys) exceed what the file can hold")
        }
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try GGUFFile.readString(&r)
            let type = try r.read(UInt32.self, "value type")
            metadata[key] = try GGUFFile.readValue(&r, type: type, depth: 0)
        }
        // general.alignment is a uint32 (any integer type is accepted; another type is an error, not the default).
        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.int else {
                throw r.fail("metadata general.alignment must be an integer (uint32), got \(value.typeName)")
            }
            guard a > 0, a & (a - 1) == 0 else { throw r.fail("general.alignment \(a) is not a power of two") }
            guard a <= GGUFFile.maxAlignment else {
                throw r.fail("general.alignment \(a) is larger than \(GGUFFile.maxAlignment) bytes")
            }
            alignment = a
        }
        var infos: [(name: String, shape: [Int], type: GGMLType, offset: Int)] = []
        for _ in 0..<tensorCount {
            let name = try GGUFFile.readString(&r)
            let nDims = try r.read(UInt32.self, "dimension count")
            guard nDims <= 8 else { throw r.fail("tensor \(name) has \(nDims) dimensions") }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.read(UInt64.self, "dimension")
                guard d <= UInt64(Int.max) else { throw r.fail("tensor \(name) has dimension \(d)") }
                dims.append(Int(d))
            }
            let rawType = try r.read(UInt32.self, "tensor type")
            guard let type = GGMLType(rawValue: rawType) else {
                throw IOError.unsupported(format: "GGUF", reason: "tensor \(name) has ggml type \(rawType)")
            }
            let offset = try r.read(UInt64.self, "tensor offset")
            guard offset <= UInt64(bytes.count) else {
                throw r.fail("tensor \(name) offset \(offset) is past the file")
            }
            infos.append((name, dims.reversed(), type, Int(offset)))
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        guard infos.isEmpty || dataStart <= bytes.count else {
            throw r.fail("the tensor data would start past the end of the file")
        }
        var tensorInfos: [GGUFTensorInfo] = []
        // As llama.cpp's reader: in file order, each tensor's data starts where
        // the previous one's ends, rounded up to the alignment. This refuses
        // unaligned, overlapping and shifted offsets, and (with the trailing
        // check below) a type or shape that disagrees with the data's size.
        var expectedOffset = 0
        for info in infos {
            guard let count = checkedCount(info.shape) else { throw r.fail("tensor \(info.name) is too large") }
            let block = info.type.block
            // Blocks run along rows: the row length must be whole blocks.
            guard (info.shape.last ?? 1) % block.elements == 0 else {
                throw r.fail(
                    "tensor \(info.name): row length \(info.shape.last ?? 0) is not a multiple of \(block.elements)")
            }
            let (byteCount, overflow) = (count / block.elements).multipliedReportingOverflow(by: block.bytes)
            guard info.offset % alignment == 0 else {
                throw r.fail(
                    "tensor \(info.name) data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            guard info.offset == expectedOffset else {
                throw r.fail(
                    "tensor \(info.name) data offset \(info.offset) is not where the previous tensor's data ends "
                        + "(\(expectedOffset)): tensor data overlaps, is shifted or has the wrong size")
            }
            let start = dataStart + info.offset
            guard !overflow, start <= bytes.count, byteCount <= bytes.count - start else {
                throw r.fail("tensor \(info.name) data (\(byteCount) bytes at \(start)) is past the end of the file")
            }
            expectedOffset = info.offset + (byteCount + alignment - 1) / alignment * alignment
            tensorInfos.append(
                GGUFTensorInfo(name: info.name, shape: info.shape, type: info.type, offset: start, byteCount: byteCount)
            )
        }
        // Data past the last tensor (beyond its padding) belongs to no tensor:
        // a tensor count that is too small, or sizes that disagree with the data.
        let unclaimed = bytes.count - Swift.min(bytes.count, dataStart + expectedOffset)
        guard unclaimed == 0 || (unclaimed < alignment && !tensorInfos.isEmpty) else {
            throw r.fail(
                "\(unclaimed) bytes after the data of the \(tensorInfos.count) tensors belong to no tensor "
                    + "(the tensor count or a tensor's type or shape is wrong)")
        }
        self.metadata = metadata
        self.tensorInfos = tensorInfos
        // The header (the metadata: a tokenizer's vocabulary and merges, megabytes)
        // is parsed into Swift values, which copy it: its pages leave the
        // resident set now, as each tensor's do once copied out.
        dropPages(UnsafeRawBufferPointer(rebasing: bytes[0..<Swift.min(dataStart, bytes.count)]))
    }

    /// The largest `general.alignment` accepted (1 MiB).
    public static let maxAlignment = 1 << 20

    private static func readString(_ r: inout ByteReader) throws -> String {
        let n = try r.read(UInt64.self, "string length")
        guard n <= UInt64(r.remaining) else { throw r.fail("string of \(n) bytes is past the end of the file") }
        return try r.readString(Int(n), "string")
    }

    private static func readValue(_ r: inout ByteReader, type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try r.read(UInt8.self, "uint8"))
        case 1: return .int8(try r.read(Int8.self, "int8"))
        case 2: return .uint16(try r.read(UInt16.self, "uint16"))
        case 3: return .int16(try r.read(Int16.self, "int16"))
        case 4: return .uint32(try r.read(UInt32.self, "uint32"))
        case 5: return .int32(try r.read(Int32.self, "int32"))
        case 6: return .float32(Float(bitPattern: try r.read(UInt32.self, "float32")))
        case 7:
            let b = try r.read(UInt8.self, "bool")
            guard b <= 1 else { throw r.fail("bool value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try readString(&r))
        case 9:
            guard depth < 4 else { throw r.fail("arrays nested too deeply") }
            let elementType = try r.read(UInt32.self, "array type")
            let count = try r.read(UInt64.self, "array length")
            guard count <= UInt64(r.remaining) else {
                throw r.fail("array of \(count) values is past the end of the file")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<count { values.append(try readValue(&r, type: elementType, depth: depth + 1)) }
            return .array(values)
        case 10: return .uint64(try r.read(UInt64.self, "uint64"))
        case 11: return .int64(try r.read(Int64.self, "int64"))
        case 12: return .float64(Double(bitPattern: try r.read(UInt64.self, "float64")))
        default: throw r.fail("unknown metadata value type \(type)")
        }
    }

    /// The file's size in bytes.
    public var byteCount: Int { bytes.count }

    public func info(_ name: String) -> GGUFTensorInfo? { tensorInfos.first { $0.name == name } }

    /// The tensor called `name`.
    public func tensor(_ name: String) throws -> GGUFTensor {
        guard let info = info(name) else {
            throw IOError.malformed(format: "GGUF", reason: "no tensor named \(name)")
        }
        let data = UnsafeRawBufferPointer(rebasing: bytes[info.offset..<(info.offset + info.byteCount)])
        let shape = info.shape
        if data.isEmpty { return .dense(Tensor.zeros(shape)) }
        switch info.type {
        case .f32: return .dense(Tensor.viewing(data.baseAddress!, shape: shape, dtype: .float32, owner: owner))
        case .f16: return .dense(Tensor.viewing(data.baseAddress!, shape: shape, dtype: .float16, owner: owner))
        case .bf16: return .dense(Tensor.viewing(data.baseAddress!, shape: shape, dtype: .bfloat16, owner: owner))
        case .q4_0, .q4_1, .q8_0:
            let q = GGUFQuants.affine(info.type, data, shape: shape)
            dropPages(data)
            return .quantized(q)
        case .q4_K, .q5_K, .q6_K:
            let t = GGUFQuants.dequantizeK(info.type, data, shape: shape)
            dropPages(data)
            return .dense(t)
        }
    }

    /// Once every tensor has been read: returns to the kernel every page of the
    /// mapping that no float tensor views in place (those are the only readers
    /// left; quantized tensors were copied out). `dropPages` keeps the pages a
    /// copied tensor shares with its neighbours; here those go too, unless a
    /// viewed tensor is on them. A later read of any tensor faults its bytes back.
    public func releaseUnviewedPages() {
        guard mapped, let base = bytes.baseAddress, bytes.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let viewed = tensorInfos.filter { [.f32, .f16, .bf16].contains($0.type) && $0.byteCount > 0 }
            .map { ($0.offset / page, ($0.offset + $0.byteCount - 1) / page) }
            .sorted { $0.0 < $1.0 }
        var next = 0  // the first page not yet handled
        let pages = (bytes.count + page - 1) / page
        func drop(_ first: Int, _ last: Int) {  // pages first..<last
            guard last > first, let p = UnsafeMutableRawPointer(bitPattern: Int(bitPattern: base) + first * page)
            else { return }
            _ = madvise(p, (last - first) * page, Int32(MADV_DONTNEED))
        }
        for (first, last) in viewed {
            drop(next, first)
            next = Swift.max(next, last + 1)
        }
        drop(next, pages)
    }

    /// Returns the whole pages inside `data` (the blocks of a tensor just copied
    /// out) to the kernel. The mapping is private and no tensor views or writes
    /// these pages (only float tensors view the mapping, and a page wholly inside
    /// a quantized tensor's blocks holds none of theirs), so a later read of the
    /// same tensor faults the file's bytes back in unchanged.
    private func dropPages(_ data: UnsafeRawBufferPointer) {
        guard mapped, let base = data.baseAddress, data.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + data.count) / page * page
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, Int32(MADV_DONTNEED))
    }
}
