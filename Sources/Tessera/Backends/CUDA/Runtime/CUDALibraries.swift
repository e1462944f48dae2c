// Finding and opening the CUDA libraries at run time (no CUDA toolkit at
// build time). Search order, first hit wins, for each library:
//   1. the environment variable (TESSERA_CUDA_PATH for libcuda,
//      TESSERA_NVRTC_PATH, TESSERA_CUBLASLT_PATH, TESSERA_NCCL_PATH): a
//      file, or a folder holding one of the library's file names;
//   2. (NVRTC, cuBLASLt, NCCL) the `nvidia-*` PyPI wheels' folders under each
//      site-packages: the ones `python3` reports, then the usual paths;
//   3. (NVRTC, cuBLASLt, NCCL) /usr/local/cuda/lib64 and its targets/ folder;
//   4. the bare file names, through the dynamic loader (LD_LIBRARY_PATH,
//      ldconfig): the only place libcuda comes from without the variable.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One library opened with `dlopen`, closed never (symbols stay valid).
final class DynamicLibrary: @unchecked Sendable {
    let path: String
    let handle: UnsafeMutableRawPointer

    init?(path: String) {
        guard let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { return nil }
        self.path = path
        handle = h
    }

    /// The symbol `name` as a C function of type `F`.
    func function<F>(_ name: String, as _: F.Type = F.self) throws -> F {
        guard let address = dlsym(handle, name) else {
            throw TesseraError.libraryUnavailable("\(path) has no symbol \(name)")
        }
        return unsafeBitCast(address, to: F.self)
    }
}

/// The libraries the CUDA backend opens, and where it looks for them.
enum CUDALibrary: String, CaseIterable, Sendable {
    case driver, nvrtc, cublasLt, nccl

    /// The environment variable that names a file or folder to use first.
    var environmentVariable: String {
        switch self {
        case .driver: return "TESSERA_CUDA_PATH"
        case .nvrtc: return "TESSERA_NVRTC_PATH"
        case .cublasLt: return "TESSERA_CUBLASLT_PATH"
        case .nccl: return "TESSERA_NCCL_PATH"
        }
    }

    /// File names, newest first.
    var fileNames: [String] {
        switch self {
        case .driver: return ["libcuda.so.1"]
        case .nvrtc: return ["libnvrtc.so.13", "libnvrtc.so.12"]
        case .cublasLt: return ["libcublasLt.so.13", "libcublasLt.so.12"]
        case .nccl: return ["libnccl.so.2"]
        }
    }

    /// Folders of the PyPI wheels, relative to a site-packages folder:
    /// CUDA 13 wheels share `nvidia/cu13`, CUDA 12 wheels have one each.
    var wheelFolders: [String] {
        switch self {
        case .driver: return []
        case .nvrtc: return ["nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"]
        case .cublasLt: return ["nvidia/cu13/lib", "nvidia/cublas/lib"]
        // nvidia-nccl-cu12 (and -cu13) install nvidia/nccl/lib/libnccl.so.2.
        case .nccl: return ["nvidia/cu13/lib", "nvidia/nccl/lib"]
        }
    }

    static let toolkitFolders = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]

    /// The paths to try, in order (see the file header).
    func candidates(environment: [String: String], sitePackages: [String]) -> [String] {
        var paths = environmentCandidates(environment)
        if self != .driver {
            for site in sitePackages {
                for folder in wheelFolders { paths += fileNames.map { "\(site)/\(folder)/\($0)" } }
            }
            for folder in Self.toolkitFolders { paths += fileNames.map { "\(folder)/\($0)" } }
        }
        return paths + fileNames
    }

    func environmentCandidates(_ environment: [String: String]) -> [String] {
        guard let value = environment[environmentVariable], !value.isEmpty else { return [] }
        if isDirectory(value) { return fileNames.map { "\(value)/\($0)" } }
        return [value]
    }

    /// Opens the first candidate that loads; running `python3` only when the
    /// environment variable did not already give a library.
    func open() -> Result<DynamicLibrary, CUDALoadFailure> {
        let environment = processEnvironment()
        for path in environmentCandidates(environment) {
            if let library = DynamicLibrary(path: path) { return .success(library) }
        }
        let sites = self == .driver ? [] : PythonSitePackages.folders
        let tried = candidates(environment: environment, sitePackages: sites)
        for path in tried {
            if let library = DynamicLibrary(path: path) { return .success(library) }
        }
        return .failure(CUDALoadFailure(library: self, tried: tried))
    }
}

/// Why a library could not be opened: what was tried, and how to fix it.
struct CUDALoadFailure: Error, CustomStringConvertible {
    let library: CUDALibrary
    let tried: [String]

    var description: String {
        switch library {
        case .driver:
            return "libcuda.so.1 not found (no NVIDIA driver; set \(library.environmentVariable) to its path)"
        case .nvrtc:
            return "libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12, or set \(library.environmentVariable))"
        case .cublasLt:
            return "libcublasLt not found (pip install nvidia-cublas-cu12, or set \(library.environmentVariable))"
        case .nccl:
            return "libnccl.so.2 not found (pip install nvidia-nccl-cu12, or set \(library.environmentVariable))"
        }
    }
}

/// The site-packages folders of the machine's Python, where `pip install
/// nvidia-...` puts the CUDA wheels.
enum PythonSitePackages {
    static let folders: [String] = {
        var found = reportedByPython()
        for pattern in usualPatterns {
            for path in globPaths(pattern) where !found.contains(path) { found.append(path) }
        }
        return found.filter(isDirectory)
    }()

    static var usualPatterns: [String] {
        let home = processEnvironment()["HOME"] ?? "/root"
        return [
            "/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
            "/usr/lib/python3/dist-packages", "\(home)/.local/lib/python3*/site-packages",
            "\(home)/.pyenv/versions/*/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages"
        ]
    }

    /// What `python3` says its site-packages are (empty without python3).
    static func reportedByPython() -> [String] {
        let script = "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"
        return runCommand("python3 -c \"\(script)\" 2>/dev/null").split(separator: "\n").map(String.init)
    }
}

/// The standard output of a shell command ("" when it cannot run).
func runCommand(_ command: String) -> String {
    guard let pipe = popen(command, "r") else { return "" }
    var output = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, pipe)
        if n <= 0 { break }
        output += chunk[0..<n]
    }
    pclose(pipe)
    return String(decoding: output, as: UTF8.self)
}

func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        p += 1
    }
    return result
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

func globPaths(_ pattern: String) -> [String] {
    var result = glob_t()
    defer { globfree(&result) }
    guard glob(pattern, 0, nil, &result) == 0 else { return [] }
    return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }
}

/// The text of a NUL-terminated C string held in an array.
func stringFromCChars(_ chars: [CChar]) -> String {
    let bytes = chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
