// Prompt caches know their model by content, not by name; interrupted writes
// (`NAME.partial-PID`) never load and are cleaned by the next conversion;
// unwritable outputs and mismatched quantized parts are typed, clear errors.

import Foundation
@testable import Tessera
@testable import TesseraLM
import XCTest

final class InterruptedWriteTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-iw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// A copy of a fixture folder at `folder/name`.
    func copyFixture(_ fixture: String, to folder: String, name: String) throws -> String {
        let destination = folder + "/" + name
        try FileManager.default.copyItem(atPath: Fixtures.fixture(fixture), toPath: destination)
        return destination
    }

    func testAPromptCacheOfAnotherModelWithTheSameNameAndSizesIsRefused() throws {
        let root = try temporaryFolder()
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
        let a = try copyFixture("qwen2", to: root + "/a", name: "model")
        let b = try copyFixture("qwen2", to: root + "/b", name: "model")
        // b: the same tensors but one scaled a little (a fine-tune of the same shape, same file size).
        var (tensors, metadata) = try Safetensors.load(b + "/model.safetensors")
        let name = try XCTUnwrap(tensors.keys.sorted().first { $0.hasSuffix("mlp.down_proj.weight") })
        tensors[name] = tensors[name]! * 1.01
        try Safetensors.save(tensors, metadata: metadata, to: b + "/model.safetensors")
        let sizeA = try FileManager.default.attributesOfItem(atPath: a + "/model.safetensors")[.size] as? Int
        let sizeB = try FileManager.default.attributesOfItem(atPath: b + "/model.safetensors")[.size] as? Int
        XCTAssertEqual(sizeA, sizeB)

        let modelA = try ModelLoader.load(a), modelB = try ModelLoader.load(b)
        XCTAssertNotEqual(modelA.identity, modelB.identity)
        XCTAssertEqual(modelA.identity, try ModelLoader.load(a).identity, "the fingerprint is stable")
        XCTAssertTrue(modelA.identity.contains("content="), modelA.identity)

        let cache = root + "/prompt.safetensors"
        let parameters = GenerateParameters()
        let (_, use, _) = try PromptCache.generator(
            model: modelA.model, prompt: [5, 17, 99], parameters: parameters,
            file: PromptCacheFile(path: cache, modelIdentity: modelA.identity))
        XCTAssertEqual(use, .saved(tokens: 2))
        let before = try Data(contentsOf: URL(fileURLWithPath: cache))
        XCTAssertThrowsError(
            try PromptCache.generator(
                model: modelB.model, prompt: [5, 17, 99], parameters: parameters,
                file: PromptCacheFile(path: cache, modelIdentity: modelB.identity))
        ) {
            guard case .promptCacheForAnotherModel(let path, let saved, let model)? = $0 as? ModelError else {
                return XCTFail("\($0)")
            }
            XCTAssertEqual(path, cache)
            XCTAssertEqual(saved, modelA.identity)
            XCTAssertEqual(model, modelB.identity)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cache)), before, "left as it was")
        // The same model reuses it.
        let (_, reuse, _) = try PromptCache.generator(
            model: modelA.model, prompt: [5, 17, 99, 3], parameters: parameters,
            file: PromptCacheFile(path: cache, modelIdentity: modelA.identity))
        XCTAssertEqual(reuse, .reused(tokens: 2))
    }

    func testATruncatedOrCorruptPromptCacheIsReportedAndKept() throws {
        let root = try temporaryFolder()
        let loaded = try ModelLoader.load(Fixtures.fixture("qwen2"))
        let cache = root + "/prompt.safetensors"
        let parameters = GenerateParameters()
        let file = PromptCacheFile(path: cache, modelIdentity: loaded.identity)
        _ = try PromptCache.generator(model: loaded.model, prompt: [5, 17, 99], parameters: parameters, file: file)
        let good = try Data(contentsOf: URL(fileURLWithPath: cache))
        var flipped = good
        let headerLength = Int(good.prefix(8).withUnsafeBytes { $0.load(as: UInt64.self) })
        flipped[8 + headerLength / 2] ^= 0x5A  // inside the JSON header
        for (what, bytes) in [("truncated", good.prefix(good.count - 7)), ("header bytes flipped", flipped)] {
            try bytes.write(to: URL(fileURLWithPath: cache))
            XCTAssertThrowsError(
                try PromptCache.generator(model: loaded.model, prompt: [5, 17, 99], parameters: parameters, file: file),
                what
            ) {
                guard case .corruptPromptCache(let path, _)? = $0 as? ModelError else {
                    return XCTFail("\(what): \($0)")
                }
                XCTAssertEqual(path, cache)
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cache)), bytes, "\(what): not overwritten")
        }
    }

    /// A PID no process has: a child that has exited.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func testAnUnfinishedConversionNeverLoadsAndTheNextConversionRemovesIt() throws {
        let root = try temporaryFolder()
        let output = root + "/converted"
        try ModelConverter.convert(model: Fixtures.fixture("qwen2"), output: output)
        XCTAssertNoThrow(try ModelLoader.load(output))
        // What a kill -9 between writing and renaming leaves: a complete-looking folder under the partial name.
        let dead = try deadPID()
        let leftover = "\(root)/again.partial-\(dead)"
        try FileManager.default.copyItem(atPath: output, toPath: leftover)
        XCTAssertThrowsError(try ModelLoader.load(leftover)) {
            XCTAssertEqual($0 as? ModelError, .unfinishedOutput(leftover))
            XCTAssertTrue("\($0)".contains(".partial-PID"), "\($0)")
        }
        XCTAssertThrowsError(try ModelLoader.load(leftover + "/")) { XCTAssertTrue($0 is ModelError) }
        // A live process's (pid 1) partial folder is not touched; the dead one's is removed.
        let live = "\(root)/again.partial-1"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        try ModelConverter.convert(model: Fixtures.fixture("qwen2"), output: root + "/again")
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live))
        XCTAssertNoThrow(try ModelLoader.load(root + "/again"))
        let left = try FileManager.default.contentsOfDirectory(atPath: root).filter {
            $0.contains(".partial-\(getpid())")
        }
        XCTAssertEqual(left, [], "no partial folder of this process remains")
        XCTAssertTrue(ModelConverter.isPartialName("x.partial-12"))
        XCTAssertFalse(ModelConverter.isPartialName("x.partial-"))
        XCTAssertFalse(ModelConverter.isPartialName("my.partial-model"))
    }

    func testASingleFileWriterRemovesTheTemporariesOfKilledWriters() throws {
        let root = try temporaryFolder()
        let path = root + "/weights.safetensors"
        let dead = root + "/weights.safetensors.tmp-\(try deadPID())-12345"
        let live = root + "/weights.safetensors.tmp-1-777"
        for file in [dead, live] { XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data([1, 2]))) }
        try Safetensors.save(["a": Tensor([1, 2] as [Float])], to: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead), "a killed writer's temporary is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "a running process's is kept")
        XCTAssertEqual(try Safetensors.load(path).tensors["a"]?.toArray(Float.self), [1, 2])
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        XCTAssertEqual(names, ["weights.safetensors", "weights.safetensors.tmp-1-777"])
    }

    func testAnUnwritableOutputIsAnIOErrorWithTheReason() throws {
        let root = try temporaryFolder()
        // A regular file where the output's folder should be: mkdir fails with ENOTDIR.
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/file", contents: Data([1])))
        XCTAssertThrowsError(try ModelConverter.convert(model: Fixtures.fixture("qwen2"), output: root + "/file/out")) {
            guard case .cannotWrite(let path, let reason)? = $0 as? IOError else { return XCTFail("\($0)") }
            XCTAssertTrue(path.hasPrefix(root + "/file/out.partial-"), path)
            XCTAssertEqual(reason, String(cString: strerror(ENOTDIR)))
        }
    }

    func testMismatchedQuantizedPartsNameTheTensorAtFault() throws {
        let root = try temporaryFolder()
        let folder = try copyFixture("qwen3_mlx_q4", to: root, name: "q4")
        var (tensors, metadata) = try Safetensors.load(folder + "/model.safetensors")
        let scalesName = try XCTUnwrap(tensors.keys.sorted().first { $0.hasSuffix("q_proj.scales") })
        let base = String(scalesName.dropLast(".scales".count))
        let original = tensors
        func expectError(_ check: (Error) -> Void) throws {
            try Safetensors.save(tensors, metadata: metadata, to: folder + "/model.safetensors")
            XCTAssertThrowsError(try ModelLoader.load(folder)) { check($0) }
            XCTAssertThrowsError(try ModelConverter.convert(model: folder, output: root + "/out-\(UUID().uuidString)"))
            {
                check($0)
            }
        }
        // Biases of another shape than scales: the message names .biases and both shapes differ.
        let scales = original[scalesName]!
        tensors[base + ".biases"] = Tensor.zeros([scales.dim(0), scales.dim(1) + 1], dtype: scales.dtype)
        try expectError {
            guard case .tensorShape(let name, let expected, let got)? = $0 as? ModelError else {
                return XCTFail("\($0)")
            }
            XCTAssertEqual(name, base + ".biases")
            XCTAssertNotEqual(expected, got, "\($0)")
        }
        // A float weight where packed uint32 is expected.
        tensors = original
        tensors[base + ".weight"] = original[base + ".weight"]!.asType(.float32)
        try expectError {
            guard case .quantizedTensor(let name, let reason)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertEqual(name, base + ".weight")
            XCTAssertTrue(reason.contains("uint32"), reason)
        }
        // A scalar weight (was a fatal error in w.dim(-1)).
        tensors = original
        tensors[base + ".weight"] = Tensor.full([], value: 7, dtype: .uint32)
        try expectError {
            guard case .quantizedTensor(let name, let reason)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertEqual(name, base + ".weight")
            XCTAssertTrue(reason.contains("scalar"), reason)
        }
    }
}
