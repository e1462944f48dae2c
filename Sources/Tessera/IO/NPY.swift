// numpy's .npy: magic "\x93NUMPY", a version, a header length, a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded
// to a 64-byte boundary, then the raw data (C or Fortran order).

/// Reading and writing numpy `.npy` files (and their bytes inside `.npz`).
public enum NPY {
    static let descriptors: [DType: String] = [
        .bool: "|b1", .uint8: "|u1", .int8: "|i1", .uint16: "<u2", .int16: "<i2", .uint32: "<u4", .int32: "<i4",
        .uint64: "<u8", .int64: "<i8", .float16: "<f2", .float32: "<f4", .float64: "<f8", .complex64: "<c8"
    ]

    public static func load(_ path: String) throws -> Tensor {
        let file = try MappedFile(path: path)
        return try parse(file.bytes, owner: file)
    }

    public static func save(_ tensor: Tensor, to path: String) throws {
        let bytes = try encode(tensor)
        try writeAtomically(path) { append in try bytes.withUnsafeBytes { try append($0) } }
    }

    /// The .npy bytes of `tensor`.
    static func encode(_ tensor: Tensor) throws -> [UInt8] {
        guard let descr = descriptors[tensor.dtype] else {
            throw IOError.unsupported(format: "npy", reason: "numpy has no \(tensor.dtype) dtype")
        }
        let dims = tensor.shape.map(String.init).joined(separator: ", ")
        let shape = tensor.ndim == 1 ? "(\(dims),)" : "(\(dims))"
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
        let total = 10 + header.count + 1
        header += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64) + [0x0A]
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        out += [UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        out += header
        let contiguous = tensor.contiguous()
        try checkedEval([contiguous])  // a failure throws here instead of trapping in bytes()
        out += contiguous.bytes()
        return out
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, owner: AnyObject) throws -> Tensor {
        var reader = ByteReader(bytes, format: "npy")
        let magic = try reader.readBytes(6, "magic")
        guard Array(magic) == [0x93] + Array("NUMPY".utf8) else { throw reader.fail("bad magic (not a .npy file)") }
        let major = try reader.read(UInt8.self, "version")
        _ = try reader.read(UInt8.self, "version")
        let headerLength: Int
        switch major {
        case 1: headerLength = Int(try reader.read(UInt16.self, "header length"))
        case 2, 3: headerLength = Int(try reader.read(UInt32.self, "header length"))
        default: throw IOError.unsupported(format: "npy", reason: "version \(major)")
        }
        let headerText = try reader.readString(headerLength, "header")
        var parser = DictLiteral(text: Array(headerText.utf8))
        let fields = try parser.parse()
        guard case .string(let descr)? = fields["descr"] else { throw reader.fail("header has no descr") }
        guard case .bool(let fortran)? = fields["fortran_order"] else {
            throw reader.fail("header has no fortran_order")
        }
        guard case .tuple(let shape)? = fields["shape"], let count = checkedCount(shape) else {
            throw reader.fail("header has no valid shape")
        }
        // "<f4", "|b1", "=i8": byte order then type code; Tessera reads little-endian data.
        guard let order = descr.first, "<|=".contains(order),
            let dtype = descriptors.first(where: { $0.value.dropFirst() == descr.dropFirst() })?.key
        else {
            throw IOError.unsupported(format: "npy", reason: "dtype descriptor \(descr)")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw reader.fail("shape \(shape) is too large") }
        let data = try reader.readBytes(byteCount, "array data")
        let storedShape = fortran ? Array(shape.reversed()) : shape
        let t =
            count == 0
            ? Tensor.zeros(storedShape, dtype: dtype)
            : Tensor.viewing(data.baseAddress!, shape: storedShape, dtype: dtype, owner: owner)
        return fortran ? t.transposed() : t
    }
}

/// The subset of Python literal syntax .npy headers use.
private struct DictLiteral {
    enum Value {
        case string(String)
        case bool(Bool)
        case tuple([Int])
    }

    let text: [UInt8]
    var i = 0

    func fail(_ reason: String) -> IOError { .malformed(format: "npy", reason: "header: \(reason) at \(i)") }

    mutating func skip() { while i < text.count, text[i] == 0x20 || text[i] == 0x0A || text[i] == 0x09 { i += 1 } }

    mutating func eat(_ c: Character) throws {
        skip()
        guard i < text.count, text[i] == c.asciiValue! else { throw fail("expected \(c)") }
        i += 1
    }

    mutating func string() throws -> String {
        skip()
        guard i < text.count, text[i] == 0x27 || text[i] == 0x22 else { throw fail("expected a string") }
        let quote = text[i]
        i += 1
        let start = i
        while i < text.count, text[i] != quote { i += 1 }
        guard i < text.count else { throw fail("unterminated string") }
        defer { i += 1 }
        return String(decoding: text[start..<i], as: UTF8.self)
    }

    mutating func int() throws -> Int {
        skip()
        let start = i
        while i < text.count, text[i] >= 0x30 && text[i] <= 0x39 { i += 1 }
        if i < text.count, text[i] == 0x4C { i += 1 }  // Python 2 long suffix
        guard i > start, let v = Int(String(decoding: text[start..<i].filter { $0 != 0x4C }, as: UTF8.self)) else {
            throw fail("expected an integer")
        }
        return v
    }

    mutating func value() throws -> Value {
        skip()
        guard i < text.count else { throw fail("unexpected end") }
        switch text[i] {
        case 0x27, 0x22: return .string(try string())
        case 0x28:
            i += 1
            var items: [Int] = []
            while true {
                skip()
                if i < text.count, text[i] == 0x29 {
                    i += 1
                    return .tuple(items)
                }
                guard items.count < 64 else { throw fail("too many dimensions") }
                items.append(try int())
                skip()
                if i < text.count, text[i] == 0x2C { i += 1 }
            }
        default:
            if text[i...].starts(with: Array("True".utf8)) {
                i += 4
                return .bool(true)
            }
            if text[i...].starts(with: Array("False".utf8)) {
                i += 5
                return .bool(false)
            }
            throw fail("unexpected value")
        }
    }

    mutating func parse() throws -> [String: Value] {
        try eat("{")
        var out: [String: Value] = [:]
        while true {
            skip()
            if i < text.count, text[i] == 0x7D {
                i += 1
                return out
            }
            let key = try string()
            try eat(":")
            out[key] = try value()
            skip()
            if i < text.count, text[i] == 0x2C { i += 1 }
            guard out.count < 16 else { throw fail("too many fields") }
        }
    }
}
