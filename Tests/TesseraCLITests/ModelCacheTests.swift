// `tessera models`: the two caches listed with formats and sizes, the
// environment variables that place them, and `rm` by exact name only.

import ArgumentParser
import Foundation
import XCTest

@testable import TesseraCLI

final class ModelCacheTests: XCTestCase {
    private func write(_ path: String, bytes: Int) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: path))
    }

    func testListsBothCachesWithFormatsAndSizes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-models-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tessera = root + "/tessera", hub = root + "/hub"
        try write(tessera + "/models/small.Q4_1.gguf", bytes: 1000)
        try write(tessera + "/models/notes.txt", bytes: 5)  // not a model: left out
        try write(tessera + "/bench/dense/model.safetensors", bytes: 300)
        try Data(#"{"model_type": "llama", "torch_dtype": "bfloat16"}"#.utf8).write(
            to: URL(fileURLWithPath: tessera + "/bench/dense/config.json"))
        try write(tessera + "/models/q4/model.safetensors", bytes: 200)
        try Data(#"{"quantization": {"bits": 4, "group_size": 64}}"#.utf8).write(
            to: URL(fileURLWithPath: tessera + "/models/q4/config.json"))
        // A hub entry: the bytes live in blobs/, snapshots link to them (counted once).
        try write(hub + "/models--Org--Tiny-Model/blobs/abc123", bytes: 4000)
        try FileManager.default.createDirectory(
            atPath: hub + "/models--Org--Tiny-Model/snapshots/main", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: hub + "/models--Org--Tiny-Model/snapshots/main/model.safetensors",
            withDestinationPath: hub + "/models--Org--Tiny-Model/blobs/abc123")

        let models = ModelCache.list(tessera: tessera, hub: hub)
        XCTAssertEqual(models.map(\.name), ["Org/Tiny-Model", "dense", "q4", "small.Q4_1.gguf"])
        XCTAssertEqual(models.map(\.format), ["hf hub", "safetensors (bfloat16)", "mlx (4-bit)", "gguf"])
        XCTAssertEqual(models.first { $0.name == "Org/Tiny-Model" }?.bytes, 4000)
        XCTAssertEqual(models.first { $0.name == "small.Q4_1.gguf" }?.bytes, 1000)
        XCTAssertEqual(models.first { $0.name == "dense" }?.bytes, 300 + 50)
        XCTAssertEqual(ModelCache.describe(bytes: 93_200_000), "93.2 MB")
    }

    func testHubReposShowTheFormatOfTheirSnapshot() throws {
        let hub = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-hubfmt-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: hub) }
        try write(hub + "/models--Org--Q-GGUF/blobs/aa", bytes: 10)
        try write(hub + "/models--Org--Q-GGUF/snapshots/c1/m.Q4_K_M.gguf", bytes: 10)
        try write(hub + "/models--Org--Dense/blobs/bb", bytes: 20)
        try write(hub + "/models--Org--Dense/snapshots/c2/model.safetensors", bytes: 20)
        try Data(#"{"torch_dtype": "bfloat16"}"#.utf8).write(
            to: URL(fileURLWithPath: hub + "/models--Org--Dense/snapshots/c2/config.json"))
        let models = ModelCache.list(tessera: hub + "/none", hub: hub)
        XCTAssertEqual(models.map(\.name), ["Org/Dense", "Org/Q-GGUF"])
        XCTAssertEqual(models.map(\.format), ["safetensors (bfloat16) (hf hub)", "gguf (hf hub)"])
        XCTAssertEqual(models.map(\.bytes), [20, 10])
    }

    func testFoldersFollowTheEnvironment() {
        XCTAssertEqual(ModelCache.folders(environment: ["HOME": "/h"]).tessera, "/h/.cache/tessera")
        XCTAssertEqual(ModelCache.folders(environment: ["HOME": "/h"]).hub, "/h/.cache/huggingface/hub")
        XCTAssertEqual(ModelCache.folders(environment: ["HOME": "/h", "HF_HOME": "/x"]).hub, "/x/hub")
        XCTAssertEqual(ModelCache.folders(environment: ["HF_HOME": "/x", "HF_HUB_CACHE": "/y"]).hub, "/y")
        // As huggingface_hub: XDG_CACHE_HOME places HF_HOME when it is not set.
        XCTAssertEqual(
            ModelCache.folders(environment: ["HOME": "/h", "XDG_CACHE_HOME": "/c"]).hub, "/c/huggingface/hub")
        XCTAssertEqual(ModelCache.folders(environment: ["TESSERA_CACHE": "/t"]).tessera, "/t")
    }

    func testRemoveTakesOnlyAListedName() throws {
        XCTAssertThrowsError(try RemoveModel.parse(["../../etc", "--yes"]).run()) { error in
            XCTAssertTrue(RemoveModel.message(for: error).contains("no cached model named ../../etc"))
        }
        XCTAssertNoThrow(try ModelsCommand.parseAsRoot(["rm", "x", "-y"]))
    }
}
