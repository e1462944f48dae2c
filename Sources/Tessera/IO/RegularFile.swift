// Opening the files users name (models, tokenizers, configs, caches): only
// regular files. open() on a FIFO blocks until a writer appears, and reading
// a directory or a device means nothing, so the kind is checked with stat()
// before opening, and again on the opened descriptor (O_NONBLOCK, so a FIFO
// swapped in between cannot block either).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// "a directory", "a FIFO (named pipe)"...: what a non-regular `mode` is, for messages.
func fileKindDescription(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO (named pipe)"
    case S_IFSOCK: return "a socket"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFLNK: return "a symbolic link"
    default: return "an unusual file"
    }
}

/// Opens `path` read-only once it is known to be a regular file: its descriptor and size.
/// Throws `IOError.notRegularFile` for a FIFO, directory, socket or device, never blocking.
func openRegularFile(_ path: String) throws -> (fd: Int32, size: Int) {
    var info = stat()
    guard stat(path, &info) == 0 else { throw IOError.cannotOpen(path: path, reason: errnoText()) }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw IOError.notRegularFile(path: path, kind: fileKindDescription(info.st_mode))
    }
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw IOError.cannotOpen(path: path, reason: errnoText()) }
    guard fstat(fd, &info) == 0 else {
        let reason = errnoText()
        close(fd)
        throw IOError.cannotOpen(path: path, reason: reason)
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        throw IOError.notRegularFile(path: path, kind: fileKindDescription(info.st_mode))
    }
    return (fd, Int(info.st_size))
}

/// The bytes of the regular file at `path` (configs, tokenizer.json), refused past `maxBytes`.
///
/// ```swift
/// let config = try readRegularFile("model/config.json")
/// ```
public func readRegularFile(_ path: String, maxBytes: Int = 1 << 30) throws -> [UInt8] {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    guard size <= maxBytes else {
        throw IOError.cannotOpen(path: path, reason: "\(size) bytes is more than the \(maxBytes) allowed")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { buffer in
            read(fd, buffer.baseAddress.map { $0 + done }, size - done)
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw IOError.cannotOpen(path: path, reason: errnoText())
        }
        if n == 0 { break }  // shrank while reading
        done += n
    }
    return Array(bytes.prefix(done))
}

/// A 64-bit content fingerprint of the regular file at `path` (FNV-1a over
/// its size, its first MiB, which holds a GGUF's or safetensors' whole header,
/// and 64 evenly spaced 4 KiB samples of the rest, plus its last 4 KiB):
/// files that differ in their header or in the sampled weights differ here,
/// whatever their names. Reads at most ~1.3 MB. It tells models apart for
/// prompt caches; it is not a cryptographic hash.
public func fingerprintRegularFile(_ path: String, seed: UInt64 = 0xcbf2_9ce4_8422_2325) throws -> UInt64 {
    let (fd, size) = try openRegularFile(path)
    defer { close(fd) }
    var hash = seed
    func mix(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes {
            hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3
        }
    }
    withUnsafeBytes(of: UInt64(size).littleEndian) { mix($0) }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    func sample(at offset: Int, count: Int) throws {
        let count = Swift.min(count, size - offset)
        guard count > 0 else { return }
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError.cannotOpen(path: path, reason: errnoText())
            }
            if n == 0 { break }
            done += n
        }
        buffer.withUnsafeBytes { mix(UnsafeRawBufferPointer(rebasing: $0[0..<done])) }
    }
    try sample(at: 0, count: 1 << 20)
    if size > 1 << 20 {
        let samples = 64, span = size - (1 << 20)
        for i in 0..<samples { try sample(at: (1 << 20) + span / samples * i, count: 4096) }
        try sample(at: Swift.max(0, size - 4096), count: 4096)
    }
    return hash
}
