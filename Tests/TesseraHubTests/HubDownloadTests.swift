// TesseraHub against the fake hub: the cache layout huggingface_hub writes
// (refs, snapshot symlinks into blobs), redirects to a CDN origin that never
// sees the token, a transfer cut off mid-body and resumed with Range, a
// partial file from an earlier run resumed, 401, 404s, a blob whose bytes do
// not match its sha256, HF_HUB_OFFLINE, GGUF choice, and sizes out of bounds.

import Crypto
import Foundation
import TesseraLM
import XCTest

@testable import TesseraHub

final class HubDownloadTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A temporary hub cache, removed after the test.
    func temporaryCache() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-hub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func configuration(_ hub: FakeHub, cache: String, token: String? = nil, offline: Bool = false) -> HubConfiguration {
        HubConfiguration(
            endpoint: hub.endpoint + "/", cacheDirectory: cache, token: token, offline: offline, maxAttempts: 3,
            connectTimeout: .seconds(1))
    }

    /// The tiny llama fixture as a hub repo, with files loading does not need beside it.
    func llamaRepo() throws -> FakeRepo {
        let folder = Self.fixtures.appendingPathComponent("lm/llama")
        return FakeRepo(
            files: [
                "config.json": try Data(contentsOf: folder.appendingPathComponent("config.json")),
                "model.safetensors": try Data(contentsOf: folder.appendingPathComponent("model.safetensors")),
                "README.md": Data("# tiny llama\n".utf8),
                "pytorch_model.bin": Data(repeating: 1, count: 1000),
                "onnx/model.onnx": Data(repeating: 2, count: 1000)
            ],
            lfs: ["model.safetensors", "pytorch_model.bin", "onnx/model.onnx"])
    }

    func expectError(
        _ expected: HubError, _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line
    ) async {
        do {
            try await body()
            XCTFail("no error; expected \(expected)", file: file, line: line)
        } catch let error as HubError {
            XCTAssertEqual(error, expected, file: file, line: line)
        } catch {
            XCTFail("\(error); expected \(expected)", file: file, line: line)
        }
    }

    // MARK: - Parsing and configuration

    func testRepoReferences() throws {
        let plain = try XCTUnwrap(RepoReference.parse("HuggingFaceTB/SmolLM2-135M-Instruct"))
        XCTAssertEqual(plain.repo, "HuggingFaceTB/SmolLM2-135M-Instruct")
        XCTAssertEqual(plain.revision, "main")
        XCTAssertNil(plain.quantization)
        XCTAssertEqual(plain.cacheFolderName, "models--HuggingFaceTB--SmolLM2-135M-Instruct")
        let pinned = try XCTUnwrap(RepoReference.parse("org/m.v1_2@refs/pr/3:Q4_K_M"))
        XCTAssertEqual(pinned.revision, "refs/pr/3")
        XCTAssertEqual(pinned.quantization, "Q4_K_M")
        for bad in [
            "", "name", "a/b/c", "/abs/path", "./x", "org/na--me", "org/..x", "org/-x", "org/x.git", "org/x@",
            "org/x@../y", "org/x:", "org/x y", "~/models/x",
            String(repeating: "a", count: 60) + "/" + String(repeating: "b", count: 40)
        ] {
            XCTAssertNil(RepoReference.parse(bad), bad)
        }
    }

    func testConfigurationFollowsHuggingFaceHubsEnvironment() throws {
        let plain = HubConfiguration.fromEnvironment(["HOME": "/h"])
        XCTAssertEqual(plain.endpoint, "https://huggingface.co")
        XCTAssertEqual(plain.cacheDirectory, "/h/.cache/huggingface/hub")
        XCTAssertFalse(plain.offline)
        XCTAssertEqual(
            HubConfiguration.fromEnvironment(["HOME": "/h", "XDG_CACHE_HOME": "/x"]).cacheDirectory,
            "/x/huggingface/hub")
        XCTAssertEqual(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HOME": "/hf"]).cacheDirectory, "/hf/hub")
        XCTAssertEqual(HubConfiguration.fromEnvironment(["HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]).cacheDirectory, "/c")
        let env = HubConfiguration.fromEnvironment([
            "HOME": "/h", "HF_ENDPOINT": "http://mirror.local:8080//", "HF_TOKEN": "hf_abc", "HF_HUB_OFFLINE": "yes"
        ])
        XCTAssertEqual(env.endpoint, "http://mirror.local:8080")
        XCTAssertEqual(env.token, "hf_abc")
        XCTAssertTrue(env.offline)
        XCTAssertFalse(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HUB_OFFLINE": "0"]).offline)
        // The token file under HF_HOME when HF_TOKEN is not set.
        let home = try temporaryCache()
        try Data("hf_from_file\n".utf8).write(to: URL(fileURLWithPath: home + "/token"))
        XCTAssertEqual(HubConfiguration.fromEnvironment(["HF_HOME": home]).token, "hf_from_file")
    }

    // MARK: - Downloads and the cache layout

    func testAModelFolderLandsInTheHuggingFaceCacheLayout() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        var repo = try llamaRepo()
        repo.token = "hf_secret"
        hub.add("test-org/tiny-llama", repo)
        let cache = try temporaryCache()
        let ref = try XCTUnwrap(RepoReference.parse("test-org/tiny-llama"))
        let config = configuration(hub, cache: cache, token: "hf_secret")

        let resolved = try await HubModels.resolve(ref, configuration: config)
        let folder = cache + "/models--test-org--tiny-llama"
        XCTAssertEqual(resolved.commit, repo.commit)
        XCTAssertEqual(resolved.path, folder + "/snapshots/" + repo.commit)
        XCTAssertEqual(resolved.downloaded, ["config.json", "model.safetensors"])
        // refs/main holds the commit, without a newline.
        XCTAssertEqual(try String(contentsOfFile: folder + "/refs/main", encoding: .utf8), repo.commit)
        // Snapshot entries are relative links into blobs/, named by ETag: sha256 for LFS, the git blob id otherwise.
        let weights = try XCTUnwrap(repo.files["model.safetensors"]), config_ = try XCTUnwrap(repo.files["config.json"])
        let fm = FileManager.default
        XCTAssertEqual(
            try fm.destinationOfSymbolicLink(atPath: resolved.path + "/model.safetensors"),
            "../../blobs/" + sha256Hex(weights))
        XCTAssertEqual(
            try fm.destinationOfSymbolicLink(atPath: resolved.path + "/config.json"),
            "../../blobs/" + gitBlobID(config_))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: resolved.path + "/model.safetensors")), weights)
        XCTAssertEqual(
            try fm.contentsOfDirectory(atPath: folder + "/blobs").sorted(),
            [gitBlobID(config_), sha256Hex(weights)].sorted())
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: resolved.path).sorted(), ["config.json", "model.safetensors"])
        XCTAssertTrue(fm.fileExists(atPath: cache + "/.locks/models--test-org--tiny-llama/\(sha256Hex(weights)).lock"))

        // Only what loading needs was asked for; the token went to the hub, never to the CDN.
        let requests = hub.requests
        XCTAssertFalse(
            requests.contains {
                $0.uri.contains("pytorch_model") || $0.uri.contains("README") || $0.uri.contains("onnx")
            })
        XCTAssertTrue(
            requests.filter { $0.server == .hub }.allSatisfy { $0.headers["authorization"] == "Bearer hf_secret" })
        let cdn = requests.filter { $0.server == .cdn }
        XCTAssertEqual(cdn.count, 1)
        XCTAssertTrue(cdn.allSatisfy { $0.headers["authorization"] == nil })

        // The snapshot loads as a model folder.
        let loaded = try ModelLoader.load(resolved.path)
        XCTAssertEqual(loaded.modelType, "llama")

        // Again: only the revision API is asked; every file is in the snapshot.
        hub.clearLog()
        let again = try await HubModels.resolve(ref, configuration: config)
        XCTAssertEqual(again.path, resolved.path)
        XCTAssertEqual(again.downloaded, [])
        XCTAssertEqual(hub.requests.map(\.uri), ["/api/models/test-org/tiny-llama/revision/main"])

        // Offline: no request at all, the same snapshot.
        hub.clearLog()
        let offline = try await HubModels.resolve(ref, configuration: configuration(hub, cache: cache, offline: true))
        XCTAssertEqual(offline.path, resolved.path)
        XCTAssertEqual(offline.files.sorted(), ["config.json", "model.safetensors"])
        XCTAssertTrue(hub.requests.isEmpty)
        // And pinned to the commit, offline.
        let pinned = try RepoReference(repo: "test-org/tiny-llama", revision: repo.commit)
        let byCommit = try await HubModels.resolve(
            pinned, configuration: configuration(hub, cache: cache, offline: true))
        XCTAssertEqual(byCommit.path, resolved.path)
    }

    func testABrokenTransferResumesWithRangeAndHashesRight() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let repo = try llamaRepo()
        hub.add("test-org/tiny-llama", repo)
        let weights = try XCTUnwrap(repo.files["model.safetensors"])
        hub.interruptNextTransfer(of: weights)
        let cache = try temporaryCache()
        let lines = LinesSink()
        let progress = DownloadProgress(label: "test-org/tiny-llama", terminal: false, write: lines.append)
        let resolved = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")), configuration: configuration(hub, cache: cache),
            progress: progress)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: resolved.path + "/model.safetensors")), weights)
        let gets = hub.requests.filter { $0.server == .cdn }
        XCTAssertEqual(gets.count, 2)
        XCTAssertNil(gets[0].headers["range"])
        // The server sent half, then dropped the connection: the second GET asks for the rest,
        // from what reached the disk (at most the half sent), and the whole hashes right.
        let range = try XCTUnwrap(gets[1].headers["range"])
        let from = try XCTUnwrap(Int(range.dropFirst("bytes=".count).dropLast()))
        XCTAssertTrue(range.hasPrefix("bytes=") && range.hasSuffix("-") && from > 0 && from <= weights.count / 2, range)
        XCTAssertFalse(
            FileManager.default.fileExists(
                atPath: cache + "/models--test-org--tiny-llama/blobs/\(sha256Hex(weights)).incomplete"))
        // One line per file (not a terminal), and the retry said so.
        let text = lines.text
        XCTAssertTrue(text.contains("retrying (attempt 2)"), text)
        XCTAssertTrue(text.contains("test-org/tiny-llama: fetched model.safetensors (314.7 kB"), text)
        XCTAssertTrue(text.contains("test-org/tiny-llama: fetched config.json ("), text)
        XCTAssertFalse(text.contains("\r"), text)
    }

    func testAPartialFileFromAnEarlierRunIsResumed() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let repo = try llamaRepo()
        hub.add("test-org/tiny-llama", repo)
        let weights = try XCTUnwrap(repo.files["model.safetensors"])
        let cache = try temporaryCache()
        let blobs = cache + "/models--test-org--tiny-llama/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try weights.prefix(100_000).write(to: URL(fileURLWithPath: blobs + "/\(sha256Hex(weights)).incomplete"))
        let resolved = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")), configuration: configuration(hub, cache: cache))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: resolved.path + "/model.safetensors")), weights)
        XCTAssertEqual(hub.requests.filter { $0.server == .cdn }.map { $0.headers["range"] }, ["bytes=100000-"])
    }

    func testAServerThatIgnoresRangeRestartsTheFile() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let repo = try llamaRepo()
        hub.add("test-org/tiny-llama", repo)
        hub.ignoreRangeRequests()
        let weights = try XCTUnwrap(repo.files["model.safetensors"])
        let cache = try temporaryCache()
        let blobs = cache + "/models--test-org--tiny-llama/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        // A partial file that does not even match: a 200 answer replaces it from the start.
        try Data(repeating: 9, count: 50_000).write(
            to: URL(fileURLWithPath: blobs + "/\(sha256Hex(weights)).incomplete"))
        let lines = LinesSink()
        let resolved = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")), configuration: configuration(hub, cache: cache),
            progress: DownloadProgress(label: "tiny", terminal: false, write: lines.append))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: resolved.path + "/model.safetensors")), weights)
        XCTAssertEqual(hub.requests.filter { $0.server == .cdn }.map { $0.headers["range"] }, ["bytes=50000-"])
        // The summary counts what came over the wire: all of both files.
        let total = weights.count + (repo.files["config.json"]?.count ?? 0)
        XCTAssertTrue(lines.text.contains("tiny: 2 files, \(DownloadProgress.bytes(Int64(total))) in "), lines.text)
    }

    func testABlobWhoseBytesDoNotMatchItsHashIsRefused() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let repo = try llamaRepo()
        hub.add("test-org/tiny-llama", repo)
        let weights = try XCTUnwrap(repo.files["model.safetensors"])
        hub.corrupt(weights)
        let cache = try temporaryCache()
        var flipped = weights
        flipped[0] ^= 0xFF
        await expectError(
            .hashMismatch(file: "model.safetensors", expected: sha256Hex(weights), actual: sha256Hex(flipped))
        ) {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")),
                configuration: self.configuration(hub, cache: cache))
        }
        // Nothing of it stays: no blob, no partial file, no snapshot link.
        let blobs = try FileManager.default.contentsOfDirectory(atPath: cache + "/models--test-org--tiny-llama/blobs")
        XCTAssertFalse(blobs.contains { $0.hasPrefix(sha256Hex(weights)) }, "\(blobs)")
        let snapshot = cache + "/models--test-org--tiny-llama/snapshots/\(repo.commit)/model.safetensors"
        XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(atPath: snapshot))
    }

    func testUnauthorizedAndNotFoundAreTypedErrors() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        var gated = try llamaRepo()
        gated.token = "hf_right"
        hub.add("test-org/gated", gated)
        var ghost = try llamaRepo()
        ghost.ghosts = ["tokenizer.json"]
        hub.add("test-org/ghost", ghost)
        let cache = try temporaryCache()
        let gatedRef = try XCTUnwrap(RepoReference.parse("test-org/gated"))
        await expectError(.unauthorized(repo: "test-org/gated", status: 401, hasToken: false)) {
            _ = try await HubModels.resolve(gatedRef, configuration: self.configuration(hub, cache: cache))
        }
        await expectError(.unauthorized(repo: "test-org/gated", status: 401, hasToken: true)) {
            _ = try await HubModels.resolve(
                gatedRef, configuration: self.configuration(hub, cache: cache, token: "hf_wrong"))
        }
        _ = try await HubModels.resolve(gatedRef, configuration: configuration(hub, cache: cache, token: "hf_right"))
        await expectError(.repositoryNotFound(repo: "test-org/nothing", revision: "main")) {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/nothing")),
                configuration: self.configuration(hub, cache: cache))
        }
        await expectError(.repositoryNotFound(repo: "test-org/gated", revision: "v9")) {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/gated@v9")),
                configuration: self.configuration(hub, cache: cache, token: "hf_right"))
        }
        // Listed by the API, 404 on resolve.
        await expectError(.fileNotFound(repo: "test-org/ghost", revision: "main", file: "tokenizer.json")) {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/ghost")),
                configuration: self.configuration(hub, cache: cache))
        }
        // A hub that is not there at all: a network error naming the URL (nothing cached to fall back on).
        let closed = HubConfiguration(
            endpoint: "http://127.0.0.1:1", cacheDirectory: cache, connectTimeout: .seconds(1))
        do {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/elsewhere")), configuration: closed)
            XCTFail("no error")
        } catch HubError.network(let url, _) {
            XCTAssertTrue(url.hasPrefix("http://127.0.0.1:1/api/models/test-org/elsewhere/revision/main"), url)
        }
    }

    func testOfflineUsesTheCacheOnlyAndSaysWhatIsMissing() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        hub.add("test-org/tiny-llama", try llamaRepo())
        let cache = try temporaryCache()
        let ref = try XCTUnwrap(RepoReference.parse("test-org/tiny-llama"))
        await expectError(
            .notCached(
                repo: "test-org/tiny-llama", revision: "main",
                detail: "no refs/main in \(cache)/models--test-org--tiny-llama")
        ) {
            _ = try await HubModels.resolve(ref, configuration: self.configuration(hub, cache: cache, offline: true))
        }
        XCTAssertTrue(hub.requests.isEmpty)
        let online = try await HubModels.resolve(ref, configuration: configuration(hub, cache: cache))
        // With the hub gone, online resolution falls back to the cache and says so.
        hub.stop()
        let fallback = try await HubModels.resolve(ref, configuration: configuration(hub, cache: cache))
        XCTAssertEqual(fallback.path, online.path)
        XCTAssertTrue(fallback.fromCacheOnly)
        // A revision never fetched is not in the cache.
        do {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/tiny-llama@dev")),
                configuration: configuration(hub, cache: cache, offline: true))
            XCTFail("no error")
        } catch HubError.notCached(_, let revision, _) {
            XCTAssertEqual(revision, "dev")
        }
    }

    func testAGGUFRepoFetchesOnlyTheChosenFile() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let q4 = Data(repeating: 4, count: 5000), q8 = Data(repeating: 8, count: 9000),
            f16 = Data(repeating: 16, count: 12000)
        hub.add(
            "test-org/model-GGUF",
            FakeRepo(
                files: [
                    "model-Q4_K_M.gguf": q4, "model-Q8_0.gguf": q8, "model-f16.gguf": f16,
                    "README.md": Data("gguf".utf8)
                ],
                lfs: ["model-Q4_K_M.gguf", "model-Q8_0.gguf", "model-f16.gguf"]))
        let cache = try temporaryCache()
        let config = configuration(hub, cache: cache)
        // Three .gguf files and no choice: an error listing them.
        do {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/model-GGUF")), configuration: config)
            XCTFail("no error")
        } catch HubError.noLoadableFiles(_, let detail) {
            XCTAssertTrue(detail.contains("--gguf-file") && detail.contains("model-Q8_0.gguf"), detail)
        }
        // A pattern, case-insensitive, after a colon.
        let chosen = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/model-GGUF:q4_k_m")), configuration: config)
        XCTAssertTrue(chosen.path.hasSuffix("/snapshots/\(chosen.commit)/model-Q4_K_M.gguf"), chosen.path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: chosen.path)), q4)
        XCTAssertEqual(hub.requests.filter { $0.server == .cdn }.count, 1)
        // An exact name through ggufFile; a pattern matching nothing.
        let exact = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/model-GGUF")), ggufFile: "model-f16.gguf", configuration: config
        )
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: exact.path)), f16)
        await expectError(
            .noLoadableFiles(
                repo: "test-org/model-GGUF",
                detail: "no .gguf file matches IQ2_XS (it has: model-Q4_K_M.gguf, model-Q8_0.gguf, model-f16.gguf)")
        ) {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/model-GGUF")), ggufFile: "IQ2_XS", configuration: config)
        }
        // Offline, the pattern picks among the cached files.
        let offline = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/model-GGUF:Q4_K_M")),
            configuration: configuration(hub, cache: cache, offline: true))
        XCTAssertEqual(offline.path, chosen.path)
    }

    func testShardedWeightsComeFromTheIndex() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let a = Data(repeating: 1, count: 3000), b = Data(repeating: 2, count: 4000)
        let index = Data(
            #"{"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}"#
                .utf8)
        hub.add(
            "test-org/sharded",
            FakeRepo(
                files: [
                    "config.json": Data("{}".utf8), "tokenizer.json": Data("{}".utf8),
                    "model.safetensors.index.json": index,
                    "model-00001-of-00002.safetensors": a, "model-00002-of-00002.safetensors": b,
                    "consolidated.safetensors": Data(repeating: 3, count: 7000)
                ],
                lfs: [
                    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "consolidated.safetensors"
                ]))
        let cache = try temporaryCache()
        let config = HubConfiguration(endpoint: hub.endpoint, cacheDirectory: cache, maxConcurrentDownloads: 2)
        let resolved = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/sharded")), configuration: config)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: resolved.path).sorted(),
            [
                "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "tokenizer.json"
            ])
        XCTAssertFalse(hub.requests.contains { $0.uri.contains("consolidated") })
    }

    func testRelativeRedirectsAreFollowedAndAbsoluteOnesFetchedFrom() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let repo = try llamaRepo()
        hub.add("test-org/tiny-llama", repo)
        hub.rename("test-org/old-name", to: "test-org/tiny-llama")
        hub.serveLFSFromHubOrigin()
        let cache = try temporaryCache()
        // The old name: the API and resolve answer 307 to the new path; the cache keeps the name asked for.
        let resolved = try await HubModels.resolve(
            try XCTUnwrap(RepoReference.parse("test-org/old-name")), configuration: configuration(hub, cache: cache))
        XCTAssertEqual(resolved.path, cache + "/models--test-org--old-name/snapshots/" + repo.commit)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: resolved.path + "/model.safetensors")),
            repo.files["model.safetensors"])
        let log = hub.requests.map { "\($0.method) \($0.uri)" }
        XCTAssertTrue(log.contains("HEAD /test-org/tiny-llama/resolve/\(repo.commit)/config.json"), "\(log)")
        // The LFS redirect is absolute (even on the same origin): HEAD stops there, the GET goes to it.
        XCTAssertFalse(log.contains { $0.hasPrefix("HEAD /cdn/") }, "\(log)")
        XCTAssertTrue(log.contains { $0.hasPrefix("GET /cdn/") }, "\(log)")
        XCTAssertTrue(isAbsoluteURL("https://cdn-lfs.hf.co/x") && isAbsoluteURL("//cdn/x"))
        XCTAssertFalse(isAbsoluteURL("/api/models/a/b") || isAbsoluteURL("x?u=http://y"))
    }

    func testSizesFromTheServerAreBounded() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        hub.add("test-org/tiny-llama", try llamaRepo())
        let cache = try temporaryCache()
        // The weights are announced as 314712 bytes; a limit below that refuses them before any byte is fetched.
        let config = HubConfiguration(endpoint: hub.endpoint, cacheDirectory: cache, maxFileBytes: 100_000)
        do {
            _ = try await HubModels.resolve(
                try XCTUnwrap(RepoReference.parse("test-org/tiny-llama")), configuration: config)
            XCTFail("no error")
        } catch HubError.badResponse(_, let detail) {
            XCTAssertTrue(detail.contains("model.safetensors is announced as 314712 bytes"), detail)
        }
        XCTAssertTrue(hub.requests.filter { $0.server == .cdn }.isEmpty)
    }

    func testTheTerminalDisplayRedrawsOneLine() {
        let lines = LinesSink()
        let progress = DownloadProgress(label: "org/m", terminal: true, write: lines.append)
        progress.begin(file: "model.safetensors", total: 2_000_000, resumedFrom: 0)
        progress.advance(file: "model.safetensors", bytes: 1_000_000)
        let line = progress.statusLine(now: ContinuousClock().now)
        XCTAssertTrue(line.hasPrefix("org/m  0/1 files  1.0 MB / 2.0 MB  "), line)
        XCTAssertTrue(line.contains("/s") && line.contains("ETA ") && line.hasSuffix("model.safetensors"), line)
        progress.finish(file: "model.safetensors", downloaded: true)
        progress.end()
        let text = lines.text
        XCTAssertTrue(text.hasPrefix("\r\u{1B}[2K"), text)
        // The summary clears the redrawn line first.
        XCTAssertTrue(text.contains("\r\u{1B}[2Korg/m: 1 file, 1.0 MB in "), text)
        XCTAssertTrue(text.hasSuffix(" s\n"), text)
        // Files found in the cache show nothing; a download that failed clears the line, no summary.
        let quiet = LinesSink()
        let cached = DownloadProgress(label: "org/m", terminal: true, write: quiet.append)
        cached.finish(file: "config.json", downloaded: false)
        cached.end()
        XCTAssertEqual(quiet.text, "")
        let broken = LinesSink()
        let failed = DownloadProgress(label: "org/m", terminal: true, write: broken.append)
        failed.begin(file: "model.safetensors", total: 2_000_000, resumedFrom: 0)
        failed.end(completed: false)
        XCTAssertTrue(broken.text.hasSuffix("model.safetensors\r\u{1B}[2K"), broken.text)
        XCTAssertEqual(DownloadProgress.clockTime(3725), "1:02:05")
        XCTAssertEqual(DownloadProgress.bytes(93_200_000), "93.2 MB")
    }
}

/// Collects what a DownloadProgress writes.
final class LinesSink: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = ""
    var text: String { lock.withLock { stored } }
    var append: @Sendable (String) -> Void {
        { [self] s in lock.withLock { stored += s } }
    }
}
