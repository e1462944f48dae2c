// Kernels compiled on first use: the embedded source of a kernel file is
// compiled by NVRTC for the device's SM, kept as a loaded module in memory
// and as a CUBIN on disk, keyed by the source's hash (with the headers it
// can include), the architecture and the NVRTC version, so a changed kernel,
// another GPU or another NVRTC never reuses a stale binary.
// Disk folder: $TESSERA_CUDA_CACHE, else $XDG_CACHE_HOME/tessera/cuda, else
// ~/.cache/tessera/cuda.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum KernelCacheKey {
    /// "binary-<SHA-256 of the source and headers>-sm_90-nvrtc12.9": names the CUBIN file on disk.
    static func make(
        file: String, source: String, headers: [String: String], architecture: String,
        nvrtcVersion: String
    ) -> String {
        let hash = sha256Hex(headers.keys.sorted().reduce([source]) { $0 + [$1, headers[$1] ?? ""] })
        let stem = file.hasSuffix(".cu") ? String(file.dropLast(3)) : file
        return "\(stem)-\(hash)-\(architecture)-nvrtc\(nvrtcVersion)"
    }

    static func directory(environment: [String: String]) -> String {
        if let dir = environment["TESSERA_CUDA_CACHE"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return "\(xdg)/tessera/cuda" }
        return "\(environment["HOME"] ?? "/tmp")/.cache/tessera/cuda"
    }
}

/// The embedded kernel files: which are kernels (.cu) and which headers (.cuh).
enum KernelFiles {
    static var kernels: [String] { KernelSources.files.keys.filter { $0.hasSuffix(".cu") }.sorted() }
    static var headers: [String: String] { KernelSources.files.filter { $0.key.hasSuffix(".cuh") } }
}

final class CUDAKernelCache: @unchecked Sendable {
    let device: CUDADevice
    let nvrtc: NVRTC
    private let lock = Lock()
    private var modules: [String: CUhandle?] = [:]
    private var functions: [String: CUhandle?] = [:]

    init(device: CUDADevice, nvrtc: NVRTC) {
        self.device = device
        self.nvrtc = nvrtc
    }

    /// The kernel `name` in `file` (compiling or loading the file on first use).
    func function(_ name: String, in file: String) throws -> CUhandle? {
        try lock.withLock {
            if let f = functions[name] { return f }
            let module = try moduleLocked(file)
            var f: CUhandle?
            try device.driver.check(device.driver.cuModuleGetFunction(&f, module, name), "cuModuleGetFunction(\(name))")
            functions[name] = f
            return f
        }
    }

    private func moduleLocked(_ file: String) throws -> CUhandle? {
        if let m = modules[file] { return m }
        guard let source = KernelSources.files[file] else {
            throw TesseraError.deviceError("no embedded kernel file \(file)")
        }
        let environment = processEnvironment()
        let key = KernelCacheKey.make(
            file: file, source: source, headers: KernelFiles.headers,
            architecture: device.architecture, nvrtcVersion: nvrtc.version)
        let directory = KernelCacheKey.directory(environment: environment)
        let path = "\(directory)/\(key).cubin"
        var cubin = readWholeFile(path)
        if cubin == nil {
            cubin = try nvrtc.compile(
                source: source, name: file, headers: KernelFiles.headers,
                architecture: device.architecture
            ).cubin
            try? makeDirectories(directory)  // CCompiler's; a failure only loses the disk cache
            try? writeAtomically(path) { append in try cubin!.withUnsafeBytes { try append($0) } }
        }
        try device.makeCurrent()
        var module: CUhandle?
        try cubin!.withUnsafeBytes {
            try device.driver.check(
                device.driver.cuModuleLoadData(&module, $0.baseAddress), "cuModuleLoadData(\(file))")
        }
        modules[file] = module
        return module
    }
}

func readWholeFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes.isEmpty ? nil : bytes
}
