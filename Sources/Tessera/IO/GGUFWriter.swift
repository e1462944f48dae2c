// Writing GGUF files (version 3, little-endian), as `GGUFFile` reads them and
// llama.cpp loads them: the header, metadata key/values, tensor infos
// (dimensions innermost first), then each tensor's data at an offset aligned
// to `general.alignment` (32). Float tensors are stored as F32, F16 or
// quantized to Q8_0 / Q4_1 blocks of 32 along each row, with ggml's
// reference rounding (quantize_row_q8_0_ref / quantize_row_q4_1_ref):
//   Q8_0: d = max|x| / 127 (f16), q = round(x / d) as int8; 34 bytes.
//   Q4_1: d = (max - min) / 15, m = min (both f16), q = round((x - m) / d)
//         clamped to 0...15; byte j holds element j (low nibble) and j + 16
//         (high nibble); 20 bytes.
// The file is written through a temporary name renamed into place.

#if canImport(Glibc)
    import Glibc
#endif

public enum GGUFWriter {
    /// A tensor to write: its name, values (any float dtype) and stored type
    /// (`.f32`, `.f16`, `.q8_0` or `.q4_1`).
    public struct Entry {
        public var name: String
        public var tensor: Tensor
        public var type: GGMLType

        public init(name: String, tensor: Tensor, type: GGMLType) {
            (self.name, self.tensor, self.type) = (name, tensor, type)
        }
    }

    static let alignment = 32

    /// Writes `metadata` (in order; `general.alignment` is written by the
    /// writer and must not be given) and `tensors` to `path`, atomically.
    public static func write(metadata: [(String, GGUFValue)], tensors: [Entry], to path: String) throws {
        for entry in tensors {
            guard [.f32, .f16, .q8_0, .q4_1].contains(entry.type) else {
                throw IOError.unsupported(format: "GGUF", reason: "writing \(entry.type) tensors (\(entry.name))")
            }
            let columns = entry.tensor.shape.last ?? 1
            if entry.type.block.elements > 1, columns % entry.type.block.elements != 0 {
                throw IOError.unsupported(
                    format: "GGUF", reason: "\(entry.name): rows of \(columns) are not whole \(entry.type) blocks of 32"
                )
            }
        }
        var header: [UInt8] = []
        header.append(contentsOf: Array("GGUF".utf8))
        append(UInt32(3), to: &header)
        append(UInt64(tensors.count), to: &header)
        let fields =
            metadata.filter { $0.0 != "general.alignment" } + [("general.alignment", .uint32(UInt32(alignment)))]
        append(UInt64(fields.count), to: &header)
        for (key, value) in fields {
            appendString(key, to: &header)
            try appendValue(value, to: &header, depth: 0)
        }
        var offset = 0
        var sizes: [Int] = []
        for entry in tensors {
            appendString(entry.name, to: &header)
            let shape = entry.tensor.shape.isEmpty ? [1] : entry.tensor.shape
            append(UInt32(shape.count), to: &header)
            for d in shape.reversed() { append(UInt64(d), to: &header) }
            append(entry.type.rawValue, to: &header)
            append(UInt64(offset), to: &header)
            let block = entry.type.block
            let size = entry.tensor.size / block.elements * block.bytes
            sizes.append(size)
            offset += padded(size)
        }
        while header.count % alignment != 0 { header.append(0) }
        try writeAtomically(path) { write in
            try header.withUnsafeBytes { try write($0) }
            for (entry, size) in zip(tensors, sizes) {
                var data = try encode(entry.tensor, as: entry.type)
                guard data.count == size else {
                    throw IOError.unsupported(
                        format: "GGUF", reason: "\(entry.name) encoded to \(data.count) bytes, not \(size)")
                }
                data.append(contentsOf: [UInt8](repeating: 0, count: padded(size) - size))
                try data.withUnsafeBytes { try write($0) }
            }
        }
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// The stored bytes of `tensor` as `type`.
    public static func encode(_ tensor: Tensor, as type: GGMLType) throws -> [UInt8] {
        switch type {
        case .f32, .f16:
            let t = tensor.asType(type == .f32 ? .float32 : .float16).contiguous()
            try checkedEval([t])
            return t.bytes()
        case .q8_0, .q4_1:
            let t = tensor.asType(.float32).contiguous()
            try checkedEval([t])
            let values = t.toArray(Float.self)
            var out: [UInt8] = []
            out.reserveCapacity(values.count / 32 * type.block.bytes)
            var start = 0
            while start + 32 <= values.count {
                values.withUnsafeBufferPointer { all in
                    let block = UnsafeBufferPointer(rebasing: all[start..<start + 32])
                    if type == .q8_0 { quantizeQ8_0(block, into: &out) } else { quantizeQ4_1(block, into: &out) }
                }
                start += 32
            }
            return out
        default:
            throw IOError.unsupported(format: "GGUF", reason: "writing \(type) tensors")
        }
    }

    static func quantizeQ8_0(_ x: UnsafeBufferPointer<Float>, into out: inout [UInt8]) {
        var amax: Float = 0
        for v in x { amax = Swift.max(amax, Swift.abs(v)) }
        let d = amax / 127
        let inverse: Float = d != 0 ? 1 / d : 0
        append(Float16(d).bitPattern, to: &out)
        for v in x {
            out.append(UInt8(bitPattern: Int8(clamping: Int((v * inverse).rounded(.toNearestOrAwayFromZero)))))
        }
    }

    static func quantizeQ4_1(_ x: UnsafeBufferPointer<Float>, into out: inout [UInt8]) {
        var (low, high) = (Float.infinity, -Float.infinity)
        for v in x {
            low = Swift.min(low, v)
            high = Swift.max(high, v)
        }
        let d = (high - low) / 15
        let inverse: Float = d != 0 ? 1 / d : 0
        append(Float16(d).bitPattern, to: &out)
        append(Float16(low).bitPattern, to: &out)
        func level(_ v: Float) -> UInt8 {
            // ggml: (int8_t)(x0 + 0.5f), then at most 15.
            let q = Int((((v - low) * inverse) + 0.5).rounded(.towardZero))
            return UInt8(Swift.max(0, Swift.min(15, q)))
        }
        for j in 0..<16 { out.append(level(x[j]) | (level(x[j + 16]) << 4)) }
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func appendString(_ s: String, to bytes: inout [UInt8]) {
        let utf8 = Array(s.utf8)
        append(UInt64(utf8.count), to: &bytes)
        bytes.append(contentsOf: utf8)
    }

    /// GGUF value type numbers: uint8 0, int8 1, uint16 2, int16 3, uint32 4,
    /// int32 5, float32 6, bool 7, string 8, array 9, uint64 10, int64 11, float64 12.
    static func typeNumber(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    static func appendValue(_ value: GGUFValue, to bytes: inout [UInt8], depth: Int, typed: Bool = true) throws {
        if typed { append(typeNumber(value), to: &bytes) }
        switch value {
        case .uint8(let v): append(v, to: &bytes)
        case .int8(let v): append(v, to: &bytes)
        case .uint16(let v): append(v, to: &bytes)
        case .int16(let v): append(v, to: &bytes)
        case .uint32(let v): append(v, to: &bytes)
        case .int32(let v): append(v, to: &bytes)
        case .uint64(let v): append(v, to: &bytes)
        case .int64(let v): append(v, to: &bytes)
        case .float32(let v): append(v.bitPattern, to: &bytes)
        case .float64(let v): append(v.bitPattern, to: &bytes)
        case .bool(let v): bytes.append(v ? 1 : 0)
        case .string(let s): appendString(s, to: &bytes)
        case .array(let items):
            guard depth < 4 else { throw IOError.unsupported(format: "GGUF", reason: "arrays nested deeper than 4") }
            let elementType = items.first.map(typeNumber) ?? 4
            guard items.allSatisfy({ typeNumber($0) == elementType }) else {
                throw IOError.unsupported(format: "GGUF", reason: "an array of mixed value types")
            }
            append(elementType, to: &bytes)
            append(UInt64(items.count), to: &bytes)
            for item in items { try appendValue(item, to: &bytes, depth: depth + 1, typed: false) }
        }
    }
}
