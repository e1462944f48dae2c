// File plumbing shared by the formats: typed errors, a read-only mapping of a
// whole file, a bounds-checked little-endian reader, atomic writes, and
// tensors that view mapped memory without copying.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Errors reading or writing model and array files.
public enum IOError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// A FIFO, directory, socket or device where a file was expected (refused before opening).
    case notRegularFile(path: String, kind: String)
    /// The bytes do not follow the format: what was wrong and where.
    case malformed(format: String, reason: String)
    /// Valid, but uses something Tessera does not read (a dtype, a version).
    case unsupported(format: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        case let .notRegularFile(path, kind): return "cannot open \(path): it is \(kind), not a regular file"
        case let .malformed(format, reason): return "malformed \(format) file: \(reason)"
        case let .unsupported(format, reason): return "unsupported \(format) file: \(reason)"
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// A whole file mapped copy-on-write (never written back), kept alive by the
/// tensors that view it.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeMutableRawPointer?
    let count: Int

    init(path: String) throws {
        let (fd, size) = try openRegularFile(path)
        defer { close(fd) }
        count = size
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw IOError.cannotOpen(path: path, reason: errnoText()) }
        base = p
    }

    deinit {
        if let base { munmap(base, count) }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// Little-endian reads that check every bound and throw `malformed`.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let format: String
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, format: String) {
        self.bytes = bytes
        self.format = format
    }

    var remaining: Int { bytes.count - offset }

    func fail(_ reason: String) -> IOError { .malformed(format: format, reason: reason) }

    mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else {
            throw fail("\(what) needs \(n) bytes at offset \(offset), but the file ends after \(remaining)")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        try need(MemoryLayout<T>.size, what)
        var v: T = 0
        withUnsafeMutableBytes(of: &v) {
            $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + MemoryLayout<T>.size)]))
        }
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func readBytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try need(n, what)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    /// UTF-8 text of `n` bytes.
    mutating func readString(_ n: Int, _ what: String) throws -> String {
        let raw = try readBytes(n, what)
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
        return s
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// flushed, then renamed over the destination, so readers never see half a file.
/// Temporary files of earlier writers to `path` that were killed before their
/// rename (`NAME.tmp-PID-N` of a process that is gone) are removed first.
func writeAtomically(_ path: String, _ write: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws
{
    removeStaleTemporaries(of: path)
    let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { throw IOError.cannotWrite(path: path, reason: errnoText()) }
    var ok = false
    defer {
        if !ok { unlink(temp) }
    }
    do {
        defer { close(fd) }
        try write { chunk in
            var done = 0
            while done < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + done, chunk.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw IOError.cannotWrite(path: path, reason: errnoText())
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw IOError.cannotWrite(path: path, reason: errnoText()) }
    }
    guard rename(temp, path) == 0 else { throw IOError.cannotWrite(path: path, reason: errnoText()) }
    ok = true
}

/// Removes `path.tmp-PID-N` files whose process `PID` no longer runs.
func removeStaleTemporaries(of path: String) {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[..<$0]) } ?? "."
    let prefix = (slash.map { String(path[path.index(after: $0)...]) } ?? path) + ".tmp-"
    guard let dir = opendir(folder.isEmpty ? "/" : folder) else { return }
    defer { closedir(dir) }
    var stale: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.hasPrefix(prefix) else { continue }
        let parts = name.dropFirst(prefix.count).split(separator: "-")
        guard parts.count == 2, let pid = Int32(parts[0]), UInt32(parts[1]) != nil, pid != getpid() else { continue }
        if kill(pid, 0) == 0 || errno == EPERM { continue }  // still running
        stale.append((folder.isEmpty ? "" : folder) + "/" + name)
    }
    for file in stale { unlink(file) }
}

extension Tensor {
    /// For an evaluated tensor that views a memory-mapped file in place (as
    /// `Safetensors.load`, `NPY.load` and a GGUF's float tensors give): returns
    /// the whole pages of its buffer to the kernel, so a big input read once
    /// (a conversion's) does not stay resident to the end. The values stay
    /// readable (the file's bytes are faulted back in when touched), so this
    /// only changes memory use. Returns the bytes released: 0 for a tensor that
    /// views no mapping (computed, copied, or not evaluated yet).
    @discardableResult
    public func releaseMappedPages() -> Int {
        node.data?.buffer.releaseMappedPages() ?? 0
    }

    /// A tensor over `count * dtype.size` bytes at `pointer`, viewing them in
    /// place when aligned (the buffer keeps `owner` alive), else copying.
    static func viewing(
        _ pointer: UnsafeRawPointer, shape: [Int], dtype: DType, owner: AnyObject
    ) -> Tensor {
        let byteCount = shape.reduce(1, *) * dtype.size
        if Int(bitPattern: pointer) % dtype.size == 0 && byteCount > 0 {
            let buffer = Buffer(
                external: UnsafeMutableRawPointer(mutating: pointer), byteCount: byteCount, owner: owner)
            return Tensor(
                evaluated: ArrayView(
                    shape: shape, dtype: dtype, buffer: buffer, offset: 0, strides: contiguousStrides(shape)))
        }
        return Tensor(bytes: UnsafeRawBufferPointer(start: pointer, count: byteCount), shape: shape, dtype: dtype)
    }
}

/// The product of `dims`, or nil if a dimension is negative or the dimensions,
/// zeros aside, multiply past a sixteenth of `Int.max`. A shape that holds
/// nothing is still refused then: strides and later reshapes multiply its
/// other dimensions (found by the npy fuzz target: `(0, 0, 5055555555555555555)`
/// in Fortran order trapped in the copy that makes it row-major).
func checkedCount(_ dims: [Int]) -> Int? {
    var extent = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = extent.multipliedReportingOverflow(by: Swift.max(d, 1))
        guard !overflow, p <= Int.max / 16 else { return nil }
        extent = p
    }
    return dims.contains(0) ? 0 : extent
}
