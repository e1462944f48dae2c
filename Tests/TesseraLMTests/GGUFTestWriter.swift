// A small GGUF writer for tests: rewrites a real fixture file with changed
// metadata (or builds one from scratch), and can write deliberately hostile
// layouts (tensor offsets, tensor count, alignment) to check the reader.

import Foundation
@testable import Tessera

struct GGUFTestWriter {
    struct Entry {
        var name: String
        /// numpy order (slowest axis first).
        var shape: [Int]
        var type: GGMLType
        var data: [UInt8]
    }

    var metadata: [(String, GGUFValue)] = []
    var tensors: [Entry] = []
    var alignment = 32
    /// Offsets written instead of the correct ones (by tensor name).
    var offsetOverrides: [String: Int] = [:]
    /// A tensor count written instead of `tensors.count`.
    var tensorCountOverride: Int?

    /// The tensors and metadata of `file`, raw bytes copied.
    init(copying file: GGUFFile, bytes: [UInt8]) {
        metadata = file.metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        tensors = file.tensorInfos.map {
            Entry(
                name: $0.name, shape: $0.shape, type: $0.type,
                data: Array(bytes[$0.offset..<($0.offset + $0.byteCount)]))
        }
        alignment = file.metadata["general.alignment"]?.int ?? 32
    }

    init() {}

    /// Loads the fixture at `path` for rewriting.
    static func fixture(_ path: String) throws -> GGUFTestWriter {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        return GGUFTestWriter(copying: try GGUFFile.load(path), bytes: bytes)
    }

    /// Sets (or with nil removes) metadata `key`.
    mutating func set(_ key: String, _ value: GGUFValue?) {
        metadata.removeAll { $0.0 == key }
        if let value { metadata.append((key, value)) }
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            out += Array(s.utf8)
        }
        func typeCode(_ v: GGUFValue) -> UInt32 {
            switch v {
            case .uint8: 0
            case .int8: 1
            case .uint16: 2
            case .int16: 3
            case .uint32: 4
            case .int32: 5
            case .float32: 6
            case .bool: 7
            case .string: 8
            case .array: 9
            case .uint64: 10
            case .int64: 11
            case .float64: 12
            }
        }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .uint32(let x): u32(x)
            case .int32(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .array(let a):
                u32(a.first.map(typeCode) ?? 4)
                u64(UInt64(a.count))
                for e in a { value(e) }
            case .uint64(let x): u64(x)
            case .int64(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .float64(let x): u64(x.bitPattern)
            }
        }
        out += Array("GGUF".utf8)
        u32(3)
        u64(UInt64(tensorCountOverride ?? tensors.count))
        u64(UInt64(metadata.count))
        for (k, v) in metadata {
            string(k)
            u32(typeCode(v))
            value(v)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            string(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offsetOverrides[t.name] ?? o))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out += t.data
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    func write(to path: String) throws {
        try Data(bytes()).write(to: URL(fileURLWithPath: path))
    }
}
