// The system C compiler for compile's fused kernels: finds it, picks -m flags
// from the CPU's features at run time (a run-time compile, so no package
// flag), compiles a source to a shared object cached on disk under
// ~/.cache/tessera/kernels/<hash>.so (the hash covers the source, the
// compiler path and the flags; files are written under a temporary name and
// renamed, so concurrent processes never load half a file), and loads it
// with dlopen. Loaded kernels are kept for the life of the process.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum CCompiler {
    /// The compiler `Compile.compilerPath` names, resolved through PATH; nil if none runs.
    static func resolvedPath() -> String? {
        let name = Compile.compilerPath
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static var isAvailable: Bool { resolvedPath() != nil }

    /// Optimisation and target flags; the target flags come from the CPU.
    static let flags: [String] = {
        // Fused and eager results should match: no fast-math, no FMA contraction.
        // No errno and no trapping: sqrt inlines, and selects between two
        // computed values (tanh, sigmoid) vectorise; results do not change.
        var flags = [
            "-O3", "-std=gnu11", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-w"
        ]
        let features = cpuFeatures()
        #if arch(x86_64)
            if features.contains("avx512f") && features.contains("avx512vl") && features.contains("avx512bw") {
                flags += ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mprefer-vector-width=512"]
            }
            if features.contains("avx2") { flags.append("-mavx2") }
            if features.contains("fma") { flags.append("-mfma") }
            if features.contains("f16c") { flags.append("-mf16c") }
        #endif
        return flags
    }()

    /// The CPU's feature flags (from /proc/cpuinfo on Linux).
    static func cpuFeatures() -> Set<String> {
        guard let text = readTextFile("/proc/cpuinfo") else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// The directory of cached shared objects.
    static var cacheDirectory: String {
        if let dir = getenv("TESSERA_KERNEL_CACHE") { return String(cString: dir) }
        if let xdg = getenv("XDG_CACHE_HOME") { return String(cString: xdg) + "/tessera/kernels" }
        if let home = getenv("HOME") { return String(cString: home) + "/.cache/tessera/kernels" }
        return "/tmp/tessera-kernels-\(getuid())"
    }

    private static let loaded = Locked<[String: CPUFusedFunction]>([:])
    private static let buildLock = Lock()

    /// The kernel of `source`: from memory, from the disk cache, or compiled now.
    static func load(source: String) throws -> CPUFusedFunction {
        guard let compiler = resolvedPath() else {
            throw TesseraError.compileFailed("no C compiler at '\(Compile.compilerPath)'")
        }
        let key = stableHash([source, compiler] + flags)
        if let f = loaded.withLock({ $0[key] }) { return f }
        return try buildLock.withLock {
            if let f = loaded.withLock({ $0[key] }) { return f }
            let dir = cacheDirectory
            try makeDirectories(dir)
            let path = "\(dir)/\(key).so"
            var f = try? open(path)
            if f != nil {
                CompileStatistics.diskHits.add(1, ordering: .relaxed)
            } else {
                try build(source: source, compiler: compiler, into: path, directory: dir, key: key)
                f = try open(path)
            }
            loaded.withLock { $0[key] = f! }
            return f!
        }
    }

    /// Forgets the kernels loaded so far (tests: the next load reads the disk cache).
    static func forgetLoadedKernels() {
        loaded.withLock { $0 = [:] }
    }

    private static func open(_ path: String) throws -> CPUFusedFunction {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw TesseraError.compileFailed("dlopen \(path): \(dlerror().map { String(cString: $0) } ?? "?")")
        }
        guard let c = dlsym(handle, "tk_contig"), let s = dlsym(handle, "tk_strided") else {
            dlclose(handle)
            throw TesseraError.compileFailed("\(path) lacks the kernel entry points")
        }
        return CPUFusedFunction(
            contiguous: unsafeBitCast(c, to: CPUFusedFunction.Contiguous.self),
            strided: unsafeBitCast(s, to: CPUFusedFunction.Strided.self))
    }

    /// Compiles to a temporary file beside `path`, then renames it into place.
    private static func build(source: String, compiler: String, into path: String, directory: String, key: String)
        throws
    {
        let tmp = "\(directory)/.\(key).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        try writeTextFile(tmp + ".c", source)
        defer {
            unlink(tmp + ".c")
            unlink(tmp + ".log")
            unlink(tmp + ".so")
        }
        let status = try run(compiler, flags + ["-o", tmp + ".so", tmp + ".c"], stderrPath: tmp + ".log")
        CompileStatistics.compilerRuns.add(1, ordering: .relaxed)
        guard status == 0 else {
            let log = readTextFile(tmp + ".log") ?? ""
            throw TesseraError.compileFailed("\(compiler) exited with \(status): \(log.prefix(2000))")
        }
        guard rename(tmp + ".so", path) == 0 else {
            throw TesseraError.compileFailed("cannot rename into \(path): errno \(errno)")
        }
    }

    /// Runs a program and waits; its standard error goes to `stderrPath`.
    private static func run(_ program: String, _ arguments: [String], stderrPath: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = ([program] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = (argv + [nil]).withUnsafeBufferPointer { args in
            posix_spawn(&pid, program, &actions, nil, args.baseAddress!, environ)
        }
        guard spawned == 0 else { throw TesseraError.compileFailed("cannot run \(program): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { throw TesseraError.compileFailed("waitpid: errno \(errno)") }
        }
        // WIFEXITED / WEXITSTATUS by hand (macros do not import).
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Logs `message` (Diagnostics, a warning) the first time `topic` comes up.
    static func warnOnce(_ topic: String, _ message: String) {
        Diagnostics.warnOnce("compile." + topic, message)
    }
}

// MARK: - Small file helpers (no Foundation)

func readTextFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func writeTextFile(_ path: String, _ text: String) throws {
    guard let file = fopen(path, "w") else { throw TesseraError.compileFailed("cannot write \(path): errno \(errno)") }
    defer { fclose(file) }
    let utf8 = Array(text.utf8)
    guard fwrite(utf8, 1, utf8.count, file) == utf8.count else {
        throw TesseraError.compileFailed("short write to \(path)")
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/\(part)"
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw TesseraError.compileFailed("cannot create \(current): errno \(errno)")
        }
    }
}

/// The SHA-256 of strings, as 64 hex digits (stable across runs): the key of a compiled kernel.
func stableHash(_ parts: [String]) -> String {
    sha256Hex(parts)
}
