// safetensors, npy/npz and GGUF against what the Python packages wrote and read.

import Foundation
import TesseraTestSupport
import XCTest

@testable import Tessera

/// safetensors, npy/npz and GGUF against files the reference libraries wrote
/// (Tools/gen_io_fixtures.py), round trips, and the reverse direction through Python.
final class IOTests: XCTestCase {
    private var expected: [String: Any] { get throws { try loadFixtureJSON("io/io_expected.json") as! [String: Any] } }
    private func path(_ name: String) -> String { fixtureRoot.appendingPathComponent("io/\(name)").path }

    func testSafetensorsReadsWhatThePythonPackageWrote() throws {
        let (tensors, metadata) = try Safetensors.load(path("sample.safetensors"))
        let exp = try expected["safetensors"] as! [String: Any]
        let arrays = exp["tensors"] as! [String: Any]
        XCTAssertEqual(Set(tensors.keys), Set(arrays.keys))
        for (name, stored) in arrays { assertMatches(tensors[name]!, try fixtureTensor(stored), name, .bitwise) }
        XCTAssertEqual(metadata, exp["metadata"] as! [String: String])
    }

    func testSafetensorsRoundTripAndPythonReadsOurs() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("ours.safetensors").path
        let original = try Safetensors.load(path("sample.safetensors"))
        // A non-contiguous view is written as its row-major values.
        var tensors = original.tensors
        tensors["view"] = Tensor.arange(0.0, 12).reshaped([3, 4]).T[1...]
        try Safetensors.save(tensors, metadata: ["k": "v"], to: out)
        let back = try Safetensors.load(out)
        XCTAssertEqual(back.metadata, ["k": "v"])
        for (name, t) in tensors {
            XCTAssertEqual(back.tensors[name]!.dtype, t.dtype, name)
            XCTAssertEqual(back.tensors[name]!.shape, t.shape, name)
            XCTAssertEqual(back.tensors[name]!.bytes(), t.bytes(), name)
        }
        let summary = try runPython(
            needs: ["torch", "safetensors"],
            """
            import json, torch
            from safetensors.torch import load_file
            from safetensors import safe_open
            t = load_file('\(out)')
            with safe_open('\(out)', 'pt') as f: meta = f.metadata()
            print(json.dumps({'meta': meta, 'view': t['view'].tolist(), 'bf16': t['bf16'].float().tolist(),
                              'keys': sorted(t.keys())}))
            """)
        let parsed = try JSONSerialization.jsonObject(with: Data(summary.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["meta"] as? [String: String], ["k": "v"])
        XCTAssertEqual(parsed["view"] as? [[Double]], [[1, 5, 9], [2, 6, 10], [3, 7, 11]])
        XCTAssertEqual((parsed["bf16"] as? [[Double]])?.flatMap { $0 }, tensors["bf16"]!.toArray(Double.self))
        XCTAssertEqual(parsed["keys"] as? [String], tensors.keys.sorted())
    }

    func testNPZAndNPYReadWhatNumpyWrote() throws {
        let exp = try expected
        for archive in ["sample.npz", "sample_compressed.npz"] {
            let arrays = try NPZ.load(path(archive))
            let stored = exp["npz"] as! [String: Any]
            XCTAssertEqual(Set(arrays.keys), Set(stored.keys), archive)
            for (name, value) in stored {
                assertMatches(arrays[name]!, try fixtureTensor(value), "\(archive):\(name)", .bitwise)
            }
        }
        assertMatches(try NPY.load(path("fortran.npy")), try fixtureTensor(exp["fortran"]!), "fortran order", .bitwise)
        assertMatches(try NPY.load(path("scalar.npy")), try fixtureTensor(exp["scalar"]!), "0-d", .bitwise)
    }

    func testNPZRoundTripAndNumpyReadsOurs() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("ours.npz").path
        let arrays = try NPZ.load(path("sample.npz")).merging(["t": Tensor.arange(0, 6).reshaped([2, 3]).T]) { a, _ in a
        }
        try NPZ.save(arrays, to: out)
        let back = try NPZ.load(out)
        for (name, t) in arrays { XCTAssertEqual(back[name]!.bytes(), t.bytes(), name) }
        let single = dir.appendingPathComponent("one.npy").path
        try NPY.save(Tensor([1.5, -2] as [Float]), to: single)
        let summary = try runPython(
            needs: ["numpy"],
            """
            import json, numpy as np
            z = np.load('\(out)')
            print(json.dumps({'t': z['t'].tolist(), 'flags': z['flags'].tolist(), 'keys': sorted(z.files),
                              'one': np.load('\(single)').tolist(), 'dtype': str(np.load('\(single)').dtype)}))
            """)
        let parsed = try JSONSerialization.jsonObject(with: Data(summary.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["t"] as? [[Int]], [[0, 3], [1, 4], [2, 5]])
        XCTAssertEqual(parsed["flags"] as? [Bool], arrays["flags"]!.toArray(Bool.self))
        XCTAssertEqual(parsed["keys"] as? [String], arrays.keys.sorted())
        XCTAssertEqual(parsed["one"] as? [Double], [1.5, -2])
        XCTAssertEqual(parsed["dtype"] as? String, "float32")
        XCTAssertThrowsError(try NPY.save(Tensor.zeros([2], dtype: .bfloat16), to: single)) {
            XCTAssertEqual($0 as? IOError, .unsupported(format: "npy", reason: "numpy has no bfloat16 dtype"))
        }
    }

    func testGGUFMetadataAndTensors() throws {
        let file = try GGUFFile.load(path("sample.gguf"))
        let exp = try expected["gguf"] as! [String: Any]
        XCTAssertEqual(file.version, 3)
        let meta = exp["metadata"] as! [String: Any]
        XCTAssertEqual(file.metadata["t.u8"], .uint8(200))
        XCTAssertEqual(file.metadata["t.i8"], .int8(-100))
        XCTAssertEqual(file.metadata["t.u16"], .uint16(60000))
        XCTAssertEqual(file.metadata["t.i16"], .int16(-30000))
        XCTAssertEqual(file.metadata["t.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(file.metadata["t.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(file.metadata["t.u64"], .uint64(1 << 60))
        XCTAssertEqual(file.metadata["t.i64"], .int64(-(1 << 60)))
        XCTAssertEqual(file.metadata["t.f32"], .float32(1.5))
        XCTAssertEqual(file.metadata["t.f64"], .float64(-2.25))
        XCTAssertEqual(file.metadata["t.bool"], .bool(true))
        XCTAssertEqual(file.metadata["t.str"]?.string, meta["t.str"] as? String)
        XCTAssertEqual(file.metadata["t.ints"]?.array?.compactMap(\.int), [1, 2, 3])
        XCTAssertEqual(file.metadata["t.strs"]?.array?.compactMap(\.string), ["a", "bc", ""])
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "llama")

        let tensors = exp["tensors"] as! [String: [String: Any]]
        for (name, entry) in tensors {
            let stored = try fixtureTensor(entry["expected"]!)
            let t = try file.tensor(name)
            // The dequantized values equal the gguf package's dequantizer exactly.
            assertMatches(t.dense.asType(stored.dtype), stored, name, .bitwise)
            if let mlx = entry["mlx"] as? [String: Any] {
                guard case .quantized(let q) = t else { return XCTFail("\(name) should load quantized") }
                XCTAssertEqual(q.groupSize, 32)
                XCTAssertEqual(q.bits, name == "q8_0" ? 8 : 4)
                assertMatches(q.weight, try fixtureTensor(mlx["weight"]!), "\(name) packed weight vs MLX", .bitwise)
                assertMatches(q.scales, try fixtureTensor(mlx["scales"]!), "\(name) scales vs MLX", .bitwise)
                assertMatches(q.biases, try fixtureTensor(mlx["biases"]!), "\(name) biases vs MLX", .bitwise)
            }
        }
    }

    /// The default model, when present (CI downloads it for the README command).
    func testSmolLM2GGUFFacts() throws {
        // Where DefaultModel caches it: $TESSERA_MODEL, else $TESSERA_CACHE (or ~/.cache/tessera)/models.
        let env = ProcessInfo.processInfo.environment
        let cache =
            env["TESSERA_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tessera").path
        let candidates: [String?] = [env["TESSERA_MODEL"], cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"]
        guard let model = candidates.compactMap({ $0 }).first(where: { FileManager.default.fileExists(atPath: $0) })
        else {
            if env["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the SmolLM2 GGUF is not cached")
            }
            throw XCTSkip("SmolLM2 GGUF not present")
        }
        let file = try GGUFFile.load(model)
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(file.metadata["llama.block_count"]?.int, 30)
        XCTAssertEqual(file.metadata["llama.embedding_length"]?.int, 576)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.array?.count, 49152)
        XCTAssertEqual(file.metadata["tokenizer.ggml.merges"]?.array?.count, 48900)
        XCTAssertNil(file.info("output.weight"), "embeddings are tied")
        XCTAssertEqual(file.info("token_embd.weight")?.type, GGMLType.q8_0)
        XCTAssertEqual(file.tensorInfos.filter { $0.type == GGMLType.q4_1 }.count, 210)
        XCTAssertEqual(file.tensorInfos.filter { $0.type == GGMLType.f32 }.count, 61)
        guard case .quantized(let q) = try file.tensor("blk.0.attn_q.weight") else {
            return XCTFail("Q4_1 loads quantized")
        }
        XCTAssertEqual(q.weight.shape, [576, 576 / 8])
        XCTAssertEqual(q.scales.shape, [576, 576 / 32])
        XCTAssertTrue(q.dequantized().abs().max().item(Float.self).isFinite)
    }
}

extension Tensor {
    fileprivate func abs() -> Tensor { Tessera.abs(self) }
}

extension IOTests {
    /// The pages of quantized blocks are dropped once copied out: asking again
    /// faults the file's bytes back in, giving the same weights, and the file on
    /// disk is untouched. The default model's Q4_1 FFN matrices span many pages
    /// (the tiny fixture's tensors fit inside one, so it is also read as a check).
    func testGGUFTensorsReadAgainAfterTheirPagesAreDropped() throws {
        let fixture = try GGUFFile.load(path("sample.gguf"))
        for name in ["q4_0", "q4_1", "q8_0", "q4_k"] {
            XCTAssertEqual(
                try fixture.tensor(name).dense.toArray(Float.self), try fixture.tensor(name).dense.toArray(Float.self),
                name)
        }
        let env = ProcessInfo.processInfo.environment
        let model =
            env["TESSERA_MODEL"]
            ?? FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: model), model.hasSuffix(".gguf") else {
            if env["TESSERA_REQUIRE_MODEL"] != nil {
                XCTFail("TESSERA_REQUIRE_MODEL is set but the SmolLM2 GGUF is not cached")
            }
            throw XCTSkip("SmolLM2 GGUF not present")
        }
        let file = try GGUFFile.load(model)
        for name in ["blk.0.ffn_down.weight", "blk.29.ffn_gate.weight"] {
            guard case .quantized(let a) = try file.tensor(name), case .quantized(let b) = try file.tensor(name) else {
                return XCTFail("\(name) loads quantized")
            }
            XCTAssertGreaterThan(a.weight.size * 4, 64 << 10, "spans pages")
            XCTAssertEqual(a.weight.toArray(UInt32.self), b.weight.toArray(UInt32.self), name)
            XCTAssertEqual(
                a.scales.asType(.float32).toArray(Float.self), b.scales.asType(.float32).toArray(Float.self), name)
            XCTAssertEqual(
                a.biases.asType(.float32).toArray(Float.self), b.biases.asType(.float32).toArray(Float.self), name)
        }
    }
}
