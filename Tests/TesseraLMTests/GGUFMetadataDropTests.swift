// What `generate` drops before the weights come in: the GGUF file's tokenizer
// metadata (megabytes of parsed values for a real vocabulary), keeping the
// rest of the metadata and every tensor readable from the same mapping.

import Foundation
@testable import Tessera
@testable import TesseraLM
import XCTest

final class GGUFMetadataDropTests: XCTestCase {
    func testDroppingMetadataKeepsTensorsAndOtherKeys() throws {
        var writer = try GGUFTestWriter.fixture(ArchitectureTests.fixture("gguf/qwen2") + "/model.gguf")
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.tokens", .array((0..<64).map { GGUFValue.string("t\($0)") }))
        writer.set("tokenizer.chat_template", .string("{{ messages }}"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("drop-\(getpid()).gguf").path
        try Data(writer.bytes()).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let original = try GGUFFile.load(path)
        XCTAssertEqual(original.metadata["tokenizer.ggml.tokens"]?.array?.count, 64)
        let dropped = original.droppingMetadata()
        XCTAssertEqual(
            Set(dropped.metadata.keys), Set(original.metadata.keys.filter { !$0.hasPrefix("tokenizer.") }))
        XCTAssertEqual(dropped.metadata["general.architecture"], .string("qwen2"))
        XCTAssertEqual(dropped.tensorInfos.map(\.name), original.tensorInfos.map(\.name))
        // Every tensor reads the same values from the copy as from the original.
        for info in original.tensorInfos {
            let a = try original.tensor(info.name).dense.toArray(Float.self)
            let b = try dropped.tensor(info.name).dense.toArray(Float.self)
            XCTAssertEqual(a, b, info.name)
        }
        XCTAssertEqual(
            try GGUFModelDescription(dropped).configuration().hiddenSize,
            try GGUFModelDescription(original).configuration().hiddenSize)
    }

    /// After loading, the pages no float tensor views go back to the kernel:
    /// every tensor still reads the same values (the quantized ones fault the
    /// file's bytes back in), and a value written into a viewed float tensor
    /// (as a donated buffer would be) survives, since its pages are kept.
    func testReleasingUnviewedPagesKeepsViewedPagesAndEveryTensorReadable() throws {
        let file = try GGUFFile.load(ArchitectureTests.fixture("gguf/phi3") + "/model.gguf")
        let before = try file.tensorInfos.map { try file.tensor($0.name).dense.toArray(Float.self) }
        let norm = try XCTUnwrap(file.tensorInfos.first { $0.type == .f32 })
        guard case .dense(let view) = try file.tensor(norm.name) else { return XCTFail("\(norm.name) is not dense") }
        let p = try XCTUnwrap(view._hostAddress(forWriting: true)).assumingMemoryBound(to: Float.self)
        let original = p[0]
        p[0] = 1234.5
        file.releaseUnviewedPages()
        XCTAssertEqual(p[0], 1234.5, "a viewed tensor's page was dropped")
        p[0] = original
        let after = try file.tensorInfos.map { try file.tensor($0.name).dense.toArray(Float.self) }
        XCTAssertEqual(after, before)
        XCTAssertTrue(file.tensorInfos.contains { $0.type == .q8_0 })
    }

    /// The default model loaded tokenizer-first gives the same tokens and the
    /// same logits as the plain load, and keeps no tokenizer metadata.
    func testLoadWithTokenizerMatchesPlainLoad() throws {
        let path = try SmolLM2ReferenceTests.modelPath()
        let plain = try ModelLoader.load(path)
        let (loaded, tokenizer) = try ModelLoader.loadWithTokenizer(path)
        let text = "The lighthouse keeper found a message in a bottle."
        let ids = try plain.tokenizer().encode(text)
        XCTAssertEqual(tokenizer.encode(text), ids)
        XCTAssertFalse(try XCTUnwrap(loaded.gguf).metadata.keys.contains { $0.hasPrefix("tokenizer.") })
        XCTAssertNotNil(try XCTUnwrap(plain.gguf).metadata["tokenizer.ggml.tokens"])
        let input = Tensor(ids.map { Int32($0) }, shape: [1, ids.count])
        let a = plain.model.lastLogits(input, cache: plain.model.makeCache()).toArray(Float.self)
        let b = loaded.model.lastLogits(input, cache: loaded.model.makeCache()).toArray(Float.self)
        XCTAssertEqual(a.count, plain.model.vocabularySize)
        XCTAssertEqual(a, b)
    }
}
