// The zip container under .npz: reading stored and deflated entries (deflate
// through the system zlib, opened at run time), writing stored entries.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Zip {
    struct Entry {
        let name: String
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    /// The entries listed in the central directory.
    static func entries(_ bytes: UnsafeRawBufferPointer, format: String) throws -> [Entry] {
        var reader = ByteReader(bytes, format: format)
        // The end-of-central-directory record sits in the last 22 + 65535 bytes.
        guard bytes.count >= 22 else { throw reader.fail("too short for a zip archive") }
        var eocd = -1
        var p = bytes.count - 22
        while p >= Swift.max(0, bytes.count - 22 - 65535) {
            if bytes[p] == 0x50, bytes[p + 1] == 0x4B, bytes[p + 2] == 0x05, bytes[p + 3] == 0x06 {
                eocd = p
                break
            }
            p -= 1
        }
        guard eocd >= 0 else { throw reader.fail("no end-of-central-directory record (not a zip archive)") }
        reader.offset = eocd + 10
        var count = Int(try reader.read(UInt16.self, "entry count"))
        _ = try reader.read(UInt32.self, "directory size")
        var directory = Int(try reader.read(UInt32.self, "directory offset"))
        // Zip64: the real values live in the zip64 end record.
        if directory == 0xFFFF_FFFF || count == 0xFFFF, eocd >= 20 {
            reader.offset = eocd - 20
            if try reader.read(UInt32.self, "zip64 locator") == 0x0706_4B50 {
                _ = try reader.read(UInt32.self, "disk")
                let record = try reader.read(UInt64.self, "zip64 record offset")
                guard record < UInt64(bytes.count) else { throw reader.fail("zip64 record out of range") }
                reader.offset = Int(record)
                guard try reader.read(UInt32.self, "zip64 record") == 0x0606_4B50 else {
                    throw reader.fail("bad zip64 end record")
                }
                reader.offset += 20
                count = Int(clamping: try reader.read(UInt64.self, "entry count"))
                reader.offset += 8
                directory = Int(clamping: try reader.read(UInt64.self, "directory offset"))
            }
        }
        guard directory <= bytes.count else { throw reader.fail("central directory out of range") }
        reader.offset = directory
        var entries: [Entry] = []
        for _ in 0..<count {
            guard try reader.read(UInt32.self, "central header") == 0x0201_4B50 else {
                throw reader.fail("bad central directory header")
            }
            reader.offset += 6
            let method = try reader.read(UInt16.self, "method")
            reader.offset += 4
            let crc = try reader.read(UInt32.self, "crc")
            var compressed = Int(try reader.read(UInt32.self, "compressed size"))
            var size = Int(try reader.read(UInt32.self, "size"))
            let nameLength = Int(try reader.read(UInt16.self, "name length"))
            let extraLength = Int(try reader.read(UInt16.self, "extra length"))
            let commentLength = Int(try reader.read(UInt16.self, "comment length"))
            reader.offset += 8
            var local = Int(try reader.read(UInt32.self, "local header offset"))
            let name = try reader.readString(nameLength, "entry name")
            var extra = ByteReader(try reader.readBytes(extraLength, "extra field"), format: format)
            while extra.remaining >= 4 {
                let id = try extra.read(UInt16.self, "extra id")
                let length = Int(try extra.read(UInt16.self, "extra length"))
                var field = ByteReader(try extra.readBytes(length, "extra data"), format: format)
                if id == 1 {  // zip64 sizes, in this order, only for the saturated ones
                    if size == 0xFFFF_FFFF { size = Int(clamping: try field.read(UInt64.self, "zip64 size")) }
                    if compressed == 0xFFFF_FFFF {
                        compressed = Int(clamping: try field.read(UInt64.self, "zip64 size"))
                    }
                    if local == 0xFFFF_FFFF { local = Int(clamping: try field.read(UInt64.self, "zip64 offset")) }
                }
            }
            try reader.need(commentLength, "comment")
            reader.offset += commentLength
            entries.append(
                Entry(
                    name: name, method: method, crc: crc, compressedSize: compressed, size: size,
                    localHeaderOffset: local))
        }
        return entries
    }

    /// The stored bytes of `entry` (compressed or not), without copying.
    static func rawData(_ entry: Entry, in bytes: UnsafeRawBufferPointer, format: String) throws
        -> UnsafeRawBufferPointer
    {
        var reader = ByteReader(bytes, format: format)
        guard entry.localHeaderOffset <= bytes.count else { throw reader.fail("entry \(entry.name) out of range") }
        reader.offset = entry.localHeaderOffset
        guard try reader.read(UInt32.self, "local header") == 0x0403_4B50 else {
            throw reader.fail("bad local header for \(entry.name)")
        }
        reader.offset += 22
        let nameLength = Int(try reader.read(UInt16.self, "name length"))
        let extraLength = Int(try reader.read(UInt16.self, "extra length"))
        try reader.need(nameLength + extraLength, "local header")
        reader.offset += nameLength + extraLength
        return try reader.readBytes(entry.compressedSize, "data of \(entry.name)")
    }

    /// The uncompressed bytes of `entry`, checked against its CRC.
    static func data(_ entry: Entry, in bytes: UnsafeRawBufferPointer, format: String) throws -> OwnedBytes {
        let raw = try rawData(entry, in: bytes, format: format)
        let out: OwnedBytes
        switch entry.method {
        case 0: out = OwnedBytes(copying: raw)
        case 8: out = try Inflate.raw(raw, expectedSize: entry.size, format: format)
        default: throw IOError.unsupported(format: format, reason: "zip compression method \(entry.method)")
        }
        guard out.bytes.count == entry.size, crc32(out.bytes) == entry.crc else {
            throw IOError.malformed(format: format, reason: "entry \(entry.name) fails its size or CRC check")
        }
        return out
    }

    /// A zip archive of stored (uncompressed) entries.
    static func archive(_ files: [(name: String, data: [UInt8])]) throws -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func put16(_ v: Int, _ buf: inout [UInt8]) { buf += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func put32(_ v: UInt32, _ buf: inout [UInt8]) {
            for s in stride(from: 0, to: 32, by: 8) { buf.append(UInt8((v >> UInt32(s)) & 0xFF)) }
        }
        for file in files {
            guard file.data.count < 0xFFFF_FFFF, out.count < 0xFFFF_FFFF else {
                throw IOError.unsupported(format: "npz", reason: "archives over 4 GiB")
            }
            let name = Array(file.name.utf8), crc = crc32(file.data), offset = UInt32(out.count)
            put32(0x0403_4B50, &out)
            put16(20, &out); put16(0, &out); put16(0, &out); put16(0, &out); put16(0x21, &out)
            put32(crc, &out); put32(UInt32(file.data.count), &out); put32(UInt32(file.data.count), &out)
            put16(name.count, &out); put16(0, &out)
            out += name
            out += file.data
            put32(0x0201_4B50, &central)
            put16(20, &central); put16(20, &central); put16(0, &central); put16(0, &central)
            put16(0, &central); put16(0x21, &central)
            put32(crc, &central); put32(UInt32(file.data.count), &central); put32(UInt32(file.data.count), &central)
            put16(name.count, &central); put16(0, &central); put16(0, &central); put16(0, &central); put16(0, &central)
            put32(0, &central); put32(offset, &central)
            central += name
        }
        let directoryOffset = UInt32(out.count)
        out += central
        put32(0x0605_4B50, &out)
        put16(0, &out); put16(0, &out); put16(files.count, &out); put16(files.count, &out)
        put32(UInt32(central.count), &out); put32(directoryOffset, &out); put16(0, &out)
        return out
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ data: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// Bytes on the heap, owned by this object (which tensors viewing them keep alive).
final class OwnedBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer
    let count: Int
    var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]) }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(mutableBytes) }

    init(count: Int) {
        storage = .allocate(byteCount: Swift.max(count, 1), alignment: 64)
        self.count = count
    }

    convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(count: source.count)
        if source.count > 0 { mutableBytes.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
    }

    deinit { storage.deallocate() }
}

/// Raw deflate through the system zlib (`libz.so.1`), opened at run time.
enum Inflate {
    /// zlib's z_stream on LP64 platforms.
    private struct ZStream {
        var nextIn: UnsafeRawPointer?
        var availIn: UInt32 = 0
        var totalIn: UInt = 0
        var nextOut: UnsafeMutableRawPointer?
        var availOut: UInt32 = 0
        var totalOut: UInt = 0
        var msg: UnsafePointer<CChar>?
        var state: UnsafeMutableRawPointer?
        var zalloc: UnsafeMutableRawPointer?
        var zfree: UnsafeMutableRawPointer?
        var opaque: UnsafeMutableRawPointer?
        var dataType: Int32 = 0
        var adler: UInt = 0
        var reserved: UInt = 0
    }

    private typealias InitFn = @convention(c) (UnsafeMutableRawPointer, Int32, UnsafePointer<CChar>, Int32) -> Int32
    private typealias InflateFn = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32
    private typealias EndFn = @convention(c) (UnsafeMutableRawPointer) -> Int32

    private struct Library: @unchecked Sendable {
        let initialize: InitFn
        let inflate: InflateFn
        let end: EndFn
    }

    private static let library: Library? = {
        guard let h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL),
            let i = dlsym(h, "inflateInit2_"), let f = dlsym(h, "inflate"), let e = dlsym(h, "inflateEnd")
        else { return nil }
        return Library(
            initialize: unsafeBitCast(i, to: InitFn.self), inflate: unsafeBitCast(f, to: InflateFn.self),
            end: unsafeBitCast(e, to: EndFn.self))
    }()

    static func raw(_ input: UnsafeRawBufferPointer, expectedSize: Int, format: String) throws -> OwnedBytes {
        guard let z = library else {
            throw IOError.unsupported(
                format: format,
                reason:
                    "deflated entries need zlib (libz.so.1), which was not found: install it with `apt-get install -y zlib1g`"
            )
        }
        guard expectedSize >= 0, expectedSize <= 1 << 40 else {
            throw IOError.malformed(format: format, reason: "entry size \(expectedSize)")
        }
        let out = OwnedBytes(count: expectedSize)
        var stream = ZStream()
        let status: Int32 = try withUnsafeMutableBytes(of: &stream) { s in
            guard z.initialize(s.baseAddress!, -15, "1.2.11", Int32(MemoryLayout<ZStream>.size)) == 0 else {
                throw IOError.unsupported(format: format, reason: "zlib failed to start")
            }
            defer { _ = z.end(s.baseAddress!) }
            do {
                let o = out.mutableBytes
                let st = s.baseAddress!.assumingMemoryBound(to: ZStream.self)
                st.pointee.nextIn = input.baseAddress
                st.pointee.availIn = UInt32(clamping: input.count)
                st.pointee.nextOut = o.baseAddress
                st.pointee.availOut = UInt32(clamping: o.count)
                let r = z.inflate(s.baseAddress!, 4)  // Z_FINISH
                return r == 1 && Int(st.pointee.totalOut) == expectedSize ? 0 : -1  // Z_STREAM_END
            }
        }
        guard status == 0 else { throw IOError.malformed(format: format, reason: "deflate stream is corrupt") }
        return out
    }
}

/// Reading and writing numpy `.npz` archives (one .npy per name).
public enum NPZ {
    /// The arrays in the archive at `path`, by name (without ".npy").
    public static func load(_ path: String) throws -> [String: Tensor] {
        let file = try MappedFile(path: path)
        return try parse(file.bytes, owner: file)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, owner: AnyObject) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for entry in try Zip.entries(bytes, format: "npz") {
            let name = entry.name.hasSuffix(".npy") ? String(entry.name.dropLast(4)) : entry.name
            if entry.method == 0 {
                // Stored: check the CRC, then view the array in place.
                let raw = try Zip.rawData(entry, in: bytes, format: "npz")
                guard raw.count == entry.size, Zip.crc32(Array(raw)) == entry.crc else {
                    throw IOError.malformed(format: "npz", reason: "entry \(entry.name) fails its size or CRC check")
                }
                out[name] = try NPY.parse(raw, owner: owner)
            } else {
                let data = try Zip.data(entry, in: bytes, format: "npz")
                out[name] = try NPY.parse(data.bytes, owner: data)
            }
        }
        return out
    }

    /// Writes `arrays` as an uncompressed .npz (like `numpy.savez`), atomically.
    public static func save(_ arrays: [String: Tensor], to path: String) throws {
        let files = try arrays.keys.sorted().map { (name: $0 + ".npy", data: try NPY.encode(arrays[$0]!)) }
        let archive = try Zip.archive(files)
        try writeAtomically(path) { append in try archive.withUnsafeBytes { try append($0) } }
    }
}
