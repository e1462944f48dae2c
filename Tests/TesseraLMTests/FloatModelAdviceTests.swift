import Foundation
import Tessera
@testable import TesseraLM
import XCTest

/// `generate`'s one-line advice for unquantized models: float GGUFs and float
/// folders get it, quantized ones do not.
final class FloatModelAdviceTests: XCTestCase {
    typealias Fixtures = ArchitectureTests

    func testFloatModelsAreToldAndQuantizedOnesAreNot() throws {
        let folder = Fixtures.fixture("llama_gguf")
        let gguf = try ModelLoader.load(folder + "/model.gguf")  // float32 tensors (the gguf package says F32)
        XCTAssertEqual(gguf.unquantizedWeightType, "float32")
        let hf = try ModelLoader.load(folder + "/hf")  // config.json "dtype": "float32", no quantization
        XCTAssertEqual(hf.unquantizedWeightType, "float32")
        let advice = try XCTUnwrap(hf.quantizationAdvice(path: folder + "/hf"))
        XCTAssertTrue(advice.contains("tessera convert --model \(folder)/hf"), advice)
        XCTAssertFalse(advice.contains("\n"), "one line")

        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-advice-\(UUID().uuidString)")
            .path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
        try ModelConverter.convert(model: folder + "/hf", output: out, bits: 4, groupSize: 32)
        let quantized = try ModelLoader.load(out)
        XCTAssertNil(quantized.unquantizedWeightType)
        XCTAssertNil(quantized.quantizationAdvice(path: out))
    }
}
