// The hub from the outside: the built `tessera` binary given --model ORG/NAME
// with HF_ENDPOINT at the fake hub (the default model served as a GGUF repo),
// `tessera models` listing the download, HF_HUB_OFFLINE with the hub gone; and
// Python's huggingface_hub reading the cache Tessera wrote (and the reverse).

import Foundation
import TesseraLM
import XCTest

@testable import TesseraHub

final class HubEndToEndTests: XCTestCase {
    func run(_ executable: URL, _ arguments: [String], environment: [String: String], removing: [String] = []) throws
        -> Run
    {
        try runProcess(executable, arguments, environment: environment, removing: removing)
    }

    static let hubVariables = [
        "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TESSERA_MODEL", "HF_HOME"
    ]

    func testGenerateWithAHubRepoIdThroughTheFakeHub() throws {
        guard let model = DefaultModel.cachedPath(), model.hasSuffix(".gguf") else {
            // CI fetches the model first and sets TESSERA_REQUIRE_MODEL: there this must run.
            if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the default model is not cached")
            }
            throw XCTSkip("the default model is not cached")
        }
        let binary = try tesseraBinary()
        let hub = try FakeHub()
        defer { hub.stop() }
        // The default model as a GGUF repo, with a second quantization that must not be fetched.
        hub.add(
            "test-org/SmolLM2-135M-Instruct-GGUF",
            FakeRepo(
                files: [
                    "SmolLM2-135M-Instruct.Q4_1.gguf": try Data(
                        contentsOf: URL(fileURLWithPath: model), options: .alwaysMapped),
                    "SmolLM2-135M-Instruct.Q8_0.gguf": Data(repeating: 0, count: 4096),
                    "README.md": Data("# SmolLM2\n".utf8)
                ],
                lfs: ["SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q8_0.gguf"]))
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-hub-e2e-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let env = ["HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": cache]
        let prompt = ["-p", "What is the capital of France?", "-n", "4", "--temp", "0"]

        let local = try run(binary, ["generate", "-m", model] + prompt, environment: env, removing: Self.hubVariables)
        XCTAssertEqual(local.status, 0, local.stderr)
        let fromHub = try run(
            binary, ["generate", "-m", "test-org/SmolLM2-135M-Instruct-GGUF:Q4_1"] + prompt, environment: env,
            removing: Self.hubVariables)
        XCTAssertEqual(fromHub.status, 0, fromHub.stderr)
        // The same file, so the same greedy text.
        XCTAssertFalse(local.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        XCTAssertEqual(fromHub.stdout, local.stdout)
        // Not a terminal: one line for the file that was fetched.
        XCTAssertTrue(
            fromHub.stderr.contains("test-org/SmolLM2-135M-Instruct-GGUF: fetched SmolLM2-135M-Instruct.Q4_1.gguf ("),
            fromHub.stderr)
        XCTAssertFalse(hub.requests.contains { $0.uri.contains("Q8_0") || $0.uri.contains("README") })

        // `tessera models` lists the download with its format and size.
        let listing = try run(binary, ["models"], environment: env, removing: Self.hubVariables)
        XCTAssertEqual(listing.status, 0, listing.stderr)
        let row = listing.stdout.split(separator: "\n").first { $0.contains("test-org/SmolLM2-135M-Instruct-GGUF") }
        XCTAssertNotNil(row, listing.stdout)
        XCTAssertTrue(row?.contains("gguf (hf hub)") == true, listing.stdout)

        // Offline, with the hub gone: the cache serves; a repo never fetched is a one-line error.
        hub.stop()
        let offlineEnv = env.merging(["HF_HUB_OFFLINE": "1"]) { $1 }
        let offline = try run(
            binary, ["generate", "-m", "test-org/SmolLM2-135M-Instruct-GGUF", "--gguf-file", "Q4_1"] + prompt,
            environment: offlineEnv)
        XCTAssertEqual(offline.status, 0, offline.stderr)
        XCTAssertEqual(offline.stdout, local.stdout)
        let missing = try run(binary, ["generate", "-m", "test-org/never-fetched"] + prompt, environment: offlineEnv)
        XCTAssertEqual(missing.status, 1, missing.stderr)
        XCTAssertTrue(
            missing.stderr.hasPrefix("Error: test-org/never-fetched@main is not in the hub cache"), missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
    }

    /// huggingface_hub finds what Tessera downloaded with local_files_only, and Tessera
    /// (offline) finds what huggingface_hub downloaded from the same fake hub.
    func testHuggingFaceHubSharesTheCache() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let folder = HubDownloadTests.fixtures.appendingPathComponent("lm/llama")
        let weights = try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))
        let repo = FakeRepo(
            files: [
                "config.json": try Data(contentsOf: folder.appendingPathComponent("config.json")),
                "model.safetensors": weights
            ],
            lfs: ["model.safetensors"])
        hub.add("test-org/tiny-llama", repo)
        hub.add("test-org/from-python", repo)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-hub-py-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let ours = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")),
            configuration: HubConfiguration(endpoint: hub.endpoint, cacheDirectory: cache))

        let script = """
            import json, os, sys
            from huggingface_hub import hf_hub_download, snapshot_download, scan_cache_dir
            cache, endpoint = sys.argv[1], sys.argv[2]
            out = {}
            out["snapshot"] = snapshot_download("test-org/tiny-llama", cache_dir=cache, local_files_only=True)
            f = hf_hub_download("test-org/tiny-llama", "model.safetensors", cache_dir=cache, local_files_only=True)
            out["weights"], out["weights_real"] = f, os.path.realpath(f)
            info = [r for r in scan_cache_dir(cache).repos if r.repo_id == "test-org/tiny-llama"][0]
            out["scan_size"] = info.size_on_disk
            out["scan_refs"] = sorted(ref for rev in info.revisions for ref in rev.refs)
            out["scan_commit"] = [rev.commit_hash for rev in info.revisions]
            out["scan_files"] = sorted(f.file_name for rev in info.revisions for f in rev.files)
            out["python_snapshot"] = snapshot_download("test-org/from-python", cache_dir=cache, endpoint=endpoint)
            print(json.dumps(out))
            """
        let output = try runPython(needs: ["huggingface_hub"], ["-c", script, cache, hub.endpoint])
        guard !output.isEmpty else { return }
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        XCTAssertEqual(result["snapshot"] as? String, ours.snapshot)
        XCTAssertEqual(result["weights"] as? String, ours.snapshot + "/model.safetensors")
        XCTAssertEqual(
            result["weights_real"] as? String, cache + "/models--test-org--tiny-llama/blobs/" + sha256Hex(weights))
        XCTAssertEqual(result["scan_refs"] as? [String], ["main"])
        XCTAssertEqual(result["scan_commit"] as? [String], [repo.commit])
        XCTAssertEqual(result["scan_files"] as? [String], ["config.json", "model.safetensors"])
        let blobBytes = weights.count + (repo.files["config.json"]?.count ?? 0)
        XCTAssertEqual(result["scan_size"] as? Int, blobBytes)

        // The repo Python fetched from the fake hub, resolved by Tessera offline.
        hub.stop()
        let theirs = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/from-python")),
            configuration: HubConfiguration(endpoint: hub.endpoint, cacheDirectory: cache, offline: true))
        XCTAssertEqual(result["python_snapshot"] as? String, theirs.snapshot)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: theirs.snapshot + "/model.safetensors")), weights)
        XCTAssertEqual(try ModelLoader.load(theirs.path).modelType, "llama")
    }
}

/// Runs python3 from PATH; its stdout. Skips with a one-line reason where python3 or a
/// module is missing, unless TESSERA_REQUIRE_PYTHON=1 (CI installs them, so there it fails).
func runPython(needs modules: [String], _ arguments: [String], file: StaticString = #filePath, line: UInt = #line)
    throws -> String
{
    let env = URL(fileURLWithPath: "/usr/bin/env")
    if ProcessInfo.processInfo.environment["TESSERA_REQUIRE_PYTHON"] != "1" {
        let probe = try runProcess(
            env, ["python3", "-c", "import " + modules.joined(separator: ", ")], environment: [:])
        if probe.status != 0 {
            throw XCTSkip("needs python3 with \(modules.joined(separator: ", ")) (pip install them to run it)")
        }
    }
    let result = try runProcess(
        env, ["python3"] + arguments, environment: ["HF_HUB_DISABLE_TELEMETRY": "1"],
        removing: HubEndToEndTests.hubVariables)
    guard result.status == 0 else {
        XCTFail("python failed: \(result.stderr)", file: file, line: line)
        return ""
    }
    return result.stdout
}

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program with extra environment (and some variables removed); waits for it.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String], removing: [String] = []) throws
    -> Run
{
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    for name in removing { env[name] = nil }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // stderr on another thread so neither pipe fills and blocks the child.
    let errData = DataBox()
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let stderr = errData.wait()
    return Run(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// Data handed over from a reader thread.
final class DataBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: Data?

    func set(_ value: Data) {
        condition.withLock {
            data = value
            condition.signal()
        }
    }

    func wait() -> Data {
        condition.withLock {
            while data == nil { condition.wait() }
            return data ?? Data()
        }
    }
}

/// The `tessera` executable built beside this test bundle.
func tesseraBinary() throws -> URL {
    let bundle = Bundle(for: HubEndToEndTests.self).bundleURL
    let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("tessera") }
    guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw XCTSkip("no tessera binary beside \(bundle.path) (build it first: swift build --product tessera)")
    }
    return url
}
