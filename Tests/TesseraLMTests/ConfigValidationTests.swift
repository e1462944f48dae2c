// Hostile configurations: every architecture's config.json and GGUF metadata
// with fields of the wrong type or out of range (negative, huge, NaN,
// overflowing products, unknown rope types) give ModelError.configurationField
// naming the field, before anything is allocated; GGUF files whose tensor
// data is misplaced or whose metadata has the wrong type are typed errors.

import Foundation
@testable import Tessera
@testable import TesseraLM
import XCTest

final class ConfigValidationTests: XCTestCase {
    typealias Fixtures = ArchitectureTests
    static let folders = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text"]

    func config(_ folder: String) throws -> JSONObject {
        try XCTUnwrap(ModelLoader.readConfig(Fixtures.fixture(folder)).object)
    }

    func configuration(_ folder: String, _ json: JSONObject) throws -> TransformerConfiguration {
        let type = json["model_type"]?.string ?? ""
        let c = try ModelRegistry.architecture(type).configuration(ConfigReader(json: .object(json)))
        try c.validate()  // as TransformerModel does first
        return c
    }

    /// `body` throws `configurationField` naming `field` (or one containing it).
    func assertField(
        _ field: String, _ what: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
    ) {
        XCTAssertThrowsError(try body(), what, file: file, line: line) { error in
            guard case .configurationField(let f, _, let allowed)? = error as? ModelError else {
                return XCTFail("\(what): \(error)", file: file, line: line)
            }
            XCTAssertTrue(f.contains(field), "\(what): field \(f), expected \(field)", file: file, line: line)
            XCTAssertFalse(allowed.isEmpty, file: file, line: line)
            XCTAssertTrue("\(error)".contains(f), "\(error)", file: file, line: line)
        }
    }

    func testEveryArchitecturesSizesAreBounded() throws {
        let cases: [(String, JSONValue)] = [
            ("num_hidden_layers", -1), ("num_hidden_layers", 0), ("num_hidden_layers", .int(1 << 32 - 1)),
            ("num_attention_heads", -4), ("num_attention_heads", .int(1 << 40)), ("num_key_value_heads", 0),
            ("num_key_value_heads", 1000), ("head_dim", -16), ("head_dim", .int(1 << 30)), ("hidden_size", 0),
            ("hidden_size", .int(Int.max)), ("intermediate_size", -1), ("vocab_size", .int(1 << 40)), ("vocab_size", 0),
            ("max_position_embeddings", -5), ("rms_norm_eps", .double(.nan)), ("rms_norm_eps", -1e-5),
            ("rms_norm_eps", .double(.infinity)), ("num_hidden_layers", "2"), ("hidden_size", 64.5)
        ]
        for folder in Self.folders {
            let base = try config(folder)
            XCTAssertNoThrow(try configuration(folder, base), folder)
            let outer = base["text_config"] != nil
            for (key, value) in cases {
                var json = base
                if outer, var text = json["text_config"]?.object {
                    text[key] = value
                    json["text_config"] = .object(text)
                } else {
                    json[key] = value
                }
                assertField(key, "\(folder) \(key)=\(value.compactText)") { _ = try configuration(folder, json) }
            }
        }
    }

    func testProductsThatOverflowOrExceedTheLimitAreRefused() throws {
        var json = try config("llama")
        json["num_attention_heads"] = 1024
        json["num_key_value_heads"] = 1024
        json["head_dim"] = 4096
        assertField("num_attention_heads × head_dim", "4M-wide projection") { _ = try configuration("llama", json) }
        // Within every range but far larger than the fixture's weights: refused against the file size.
        var big = try configuration("llama", try config("llama"))
        big.layerCount = 1000
        big.hiddenSize = 65536
        big.slidingLayers = Array(repeating: false, count: 1000)
        XCTAssertThrowsError(try big.checkFits(weightBytes: 1 << 20)) {
            guard case .configurationField(let f, _, _)? = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(f.contains("sizes"), f)
        }
        XCTAssertNoThrow(try configuration("llama", try config("llama")).checkFits(weightBytes: 1 << 20))
    }

    func testRopeParametersAreTypedAndFinite() throws {
        let llama = try config("llama")
        func withRope(_ key: String, _ value: JSONValue) -> JSONObject {
            var json = llama
            var rope = json["rope_parameters"]!.object!
            rope[key] = value
            json["rope_parameters"] = .object(rope)
            return json
        }
        for (key, value) in [
            ("rope_theta", JSONValue.double(.nan)), ("rope_theta", -1), ("rope_theta", 1e300),
            ("factor", .double(.nan)),
            ("factor", -8), ("low_freq_factor", .double(.infinity)), ("original_max_position_embeddings", -64),
            ("rope_type", 5), ("rope_type", "yarn-ish")
        ] {
            assertField("rope_parameters." + key, "rope \(key)=\(value.compactText)") {
                _ = try configuration("llama", withRope(key, value))
            }
        }
        // A negative head_dim with llama3 rope (the frequencies are sized by it).
        var negative = llama
        negative["head_dim"] = -2
        assertField("head_dim", "negative head_dim with llama3 rope") { _ = try configuration("llama", negative) }
        var scalar = llama
        scalar["rope_scaling"] = 5
        scalar["rope_parameters"] = nil
        assertField("rope_scaling", "rope_scaling a number") { _ = try configuration("llama", scalar) }
        var legacy = try config("qwen2")
        legacy["rope_theta"] = .double(.nan)
        assertField("rope_theta", "qwen2 rope_theta NaN") { _ = try configuration("qwen2", legacy) }
    }

    func testArchitectureSpecificFieldsAreBounded() throws {
        let cases: [(String, String, JSONValue)] = [
            ("mistral", "sliding_window", -4096),
            ("gemma2", "sliding_window", 0), ("gemma2", "query_pre_attn_scalar", .double(.nan)),
            ("gemma2", "final_logit_softcapping", -30), ("gemma2", "attn_logit_softcapping", .double(.infinity)),
            ("gemma2", "hidden_activation", 3), ("gemma2", "layer_types", ["full_attention"])
        ]
        for (folder, key, value) in cases {
            var json = try config(folder)
            json[key] = value
            assertField(key, "\(folder) \(key)=\(value.compactText)") { _ = try configuration(folder, json) }
        }
        // Phi-3's partial rotary factor, where transformers 5 keeps it (rope_parameters) and at the top level.
        for value: JSONValue in [.double(.nan), 1.5, -0.5, "half"] {
            var nested = try config("phi3")
            var rope = try XCTUnwrap(nested["rope_parameters"]?.object)
            rope["partial_rotary_factor"] = value
            nested["rope_parameters"] = .object(rope)
            assertField("partial_rotary_factor", "phi3 rope_parameters.partial_rotary_factor=\(value.compactText)") {
                _ = try configuration("phi3", nested)
            }
            var top = try config("phi3")
            top["rope_parameters"] = ["rope_theta": 10000.0, "rope_type": "default"]
            top["partial_rotary_factor"] = value
            assertField("partial_rotary_factor", "phi3 partial_rotary_factor=\(value.compactText)") {
                _ = try configuration("phi3", top)
            }
        }
        // A partial rotary factor whose rotated width is odd.
        var phi = try config("phi3")
        phi["rope_parameters"] = ["rope_theta": 10000.0, "rope_type": "default", "partial_rotary_factor": 0.03]
        assertField("rotary dimensions", "phi3 odd rotary width") { _ = try configuration("phi3", phi) }
    }

    // MARK: GGUF metadata

    static let ggufArchitectures = ["llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]

    func ggufPath(_ name: String) -> String { Fixtures.fixture("gguf/\(name)/model.gguf") }

    func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-hostile-\(UUID().uuidString).gguf"
        ).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testEveryArchitecturesGGUFMetadataIsBounded() throws {
        for name in Self.ggufArchitectures {
            let writer = try GGUFTestWriter.fixture(ggufPath(name))
            // The rewritten file loads as the original does.
            XCTAssertNoThrow(try ModelLoader.load(temporaryFile(writer.bytes())), name)
            let arch = try XCTUnwrap(writer.metadata.first { $0.0 == "general.architecture" }?.1.string)
            let cases: [(String, GGUFValue)] = [
                ("block_count", .int32(-1)), ("block_count", .uint32(UInt32.max)), ("block_count", .uint64(1 << 63)),
                ("attention.head_count", .int32(-2)), ("attention.head_count", .uint32(1 << 20)),
                ("attention.head_count_kv", .uint32(4096)), ("attention.key_length", .int32(-64)),
                ("embedding_length", .uint64(1 << 40)), ("feed_forward_length", .int64(-1)),
                ("context_length", .int32(0)), ("attention.layer_norm_rms_epsilon", .float32(.nan)),
                ("attention.layer_norm_rms_epsilon", .float32(-1e-5)), ("rope.freq_base", .float32(.infinity)),
                ("rope.freq_base", .float64(-10000)), ("block_count", .string("two")),
                ("rope.scaling.type", .uint32(5)), ("rope.scaling.type", .string("yarn"))
            ]
            for (key, value) in cases {
                var hostile = writer
                hostile.set("\(arch).\(key)", value)
                assertField("\(arch).\(key)", "\(name) \(key)=\(value)") {
                    _ = try ModelLoader.load(try temporaryFile(hostile.bytes()))
                }
            }
            var eos = writer
            eos.set("tokenizer.ggml.eos_token_id", .uint32(1_000_000))
            assertField("tokenizer.ggml.eos_token_id", "\(name) eos outside the vocabulary") {
                _ = try ModelLoader.load(try temporaryFile(eos.bytes()))
            }
            var architecture = writer
            architecture.set("general.architecture", .uint32(7))
            assertField("general.architecture", "\(name) architecture a number") {
                _ = try ModelLoader.load(try temporaryFile(architecture.bytes()))
            }
        }
    }

    func testGGUFTokenizerMetadataOfTheWrongTypeIsAnError() throws {
        // The fixtures carry no tokenizer: a small byte-level BPE vocabulary of our own.
        var writer = try GGUFTestWriter.fixture(ggufPath("qwen2"))
        let tokens: [GGUFValue] = ["a", "b", "ab", "</s>"].map { .string($0) }
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.tokens", .array(tokens))
        writer.set("tokenizer.ggml.merges", .array([.string("a b")]))
        writer.set("tokenizer.ggml.eos_token_id", .uint32(3))
        let file = try GGUFFile.load(try temporaryFile(writer.bytes()))
        XCTAssertNoThrow(try TokenizerMetadata(gguf: file).huggingFaceFiles())
        for (key, value, expected) in [
            ("tokenizer.ggml.merges", GGUFValue.array([.uint32(1), .uint32(2)]), "tokenizer.ggml.merges"),
            ("tokenizer.ggml.tokens", .array([.int32(7), .int32(8)]), "tokenizer.ggml.tokens"),
            ("tokenizer.ggml.model", .uint8(1), "tokenizer.ggml.model"),
            ("tokenizer.ggml.eos_token_id", .string("</s>"), "tokenizer.ggml.eos_token_id"),
            ("tokenizer.ggml.add_bos_token", .uint8(1), "tokenizer.ggml.add_bos_token"),
            ("tokenizer.chat_template", .array([.string("{{ x }}")]), "tokenizer.chat_template")
        ] {
            var hostile = writer
            hostile.set(key, value)
            let file = try GGUFFile.load(try temporaryFile(hostile.bytes()))
            XCTAssertThrowsError(try TokenizerMetadata(gguf: file), key) {
                guard case .malformed(let why)? = $0 as? TokenizerError else { return XCTFail("\(key): \($0)") }
                XCTAssertTrue(why.contains(expected), why)
            }
        }
        // An eos id past the token list.
        var eos = writer
        eos.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(tokens.count)))
        let file2 = try GGUFFile.load(try temporaryFile(eos.bytes()))
        XCTAssertThrowsError(try TokenizerMetadata(gguf: file2).huggingFaceFiles()) {
            guard case .malformed(let why)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("outside the vocabulary"), why)
        }
    }

    func testTokenizerJSONFieldsOfTheWrongTypeOrNotInTheVocabularyAreErrors() throws {
        func json(merges: String = #"["a b"]"#, unk: String = "null") -> [UInt8] {
            Array(
                #"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"</s>":3},"merges":\#(merges),"unk_token":\#(unk)}}"#
                    .utf8)
        }
        XCTAssertNoThrow(try Tokenizer(tokenizerJSON: json()))
        XCTAssertEqual(
            try Tokenizer(tokenizerJSON: json(), configJSON: Array(#"{"eos_token":"</s>"}"#.utf8)).eosTokenID, 3)
        for (what, tokenizer, config, expected) in [
            ("merges an integer", json(merges: "5"), nil, "merges must be a list"),
            ("merges integers", json(merges: "[1, 2]"), nil, "merge entry"),
            ("unk_token not in the vocabulary", json(unk: #""<unk>""#), nil, "unk_token"),
            (
                "eos_token not in the vocabulary", json(), #"{"eos_token":"<|end|>"}"#,
                "eos_token \"<|end|>\" is not in the vocabulary"
            ),
            ("bos_token not in the vocabulary", json(), #"{"bos_token":{"content":"<s>"}}"#, "bos_token")
        ] as [(String, [UInt8], String?, String)] {
            XCTAssertThrowsError(
                try Tokenizer(tokenizerJSON: tokenizer, configJSON: config.map { Array($0.utf8) }), what
            ) {
                guard case .malformed(let why)? = $0 as? TokenizerError else { return XCTFail("\(what): \($0)") }
                XCTAssertTrue(why.contains(expected), "\(what): \(why)")
            }
        }
    }

    func testGGUFTensorDataMustBeAlignedContiguousAndAccountedFor() throws {
        let writer = try GGUFTestWriter.fixture(ggufPath("llama3"))
        XCTAssertNoThrow(try GGUFFile.load(try temporaryFile(writer.bytes())))
        func assertMalformed(_ w: GGUFTestWriter, _ expected: String, line: UInt = #line) throws {
            let path = try temporaryFile(w.bytes())
            XCTAssertThrowsError(try GGUFFile.load(path), expected, line: line) {
                guard case .malformed(_, let why)? = $0 as? IOError else { return XCTFail("\($0)", line: line) }
                XCTAssertTrue(why.contains(expected), why, line: line)
            }
        }
        let second = writer.tensors[1].name, third = writer.tensors[2].name
        // Unaligned.
        var unaligned = writer
        let secondOffset = (writer.tensors[0].data.count + 31) / 32 * 32
        unaligned.offsetOverrides[second] = secondOffset + 4
        try assertMalformed(unaligned, "not a multiple of the alignment")
        // Overlapping: the third tensor's data where the second's is.
        var overlapping = writer
        overlapping.offsetOverrides[third] = secondOffset
        try assertMalformed(overlapping, "overlaps, is shifted")
        // A tensor count one too small: the last tensor's data belongs to no tensor.
        var fewer = writer
        fewer.tensorCountOverride = writer.tensors.count - 1
        XCTAssertThrowsError(try GGUFFile.load(try temporaryFile(fewer.bytes()))) {
            XCTAssertTrue($0 is IOError, "\($0)")
        }
        // A type relabelled (F32 data called F16): sizes no longer add up.
        var relabelled = writer
        let f32 = try XCTUnwrap(writer.tensors.firstIndex { $0.type == .f32 && $0.data.count >= 64 })
        relabelled.tensors[f32].type = .f16
        XCTAssertThrowsError(try GGUFFile.load(try temporaryFile(relabelled.bytes()))) {
            XCTAssertTrue($0 is IOError, "\($0)")
        }
        // Alignment of the wrong type, not a power of two, or too large (a message that says which).
        var stringAlignment = writer
        stringAlignment.set("general.alignment", .string("32"))
        try assertMalformed(stringAlignment, "general.alignment must be an integer (uint32), got string")
        var odd = writer
        odd.set("general.alignment", .uint32(48))
        try assertMalformed(odd, "48 is not a power of two")
        var huge = writer
        huge.set("general.alignment", .uint32(1 << 21))
        try assertMalformed(huge, "2097152 is larger than")
    }

    func testSafetensorsDataRegionsMustTileTheData() throws {
        let t = Tensor([1, 2, 3, 4] as [Float])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-st-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.save(["a": t, "b": t], to: path)
        let good = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertNoThrow(try Safetensors.load(path))
        // Rewrite the header with other offsets / dtypes, same data section.
        func rewritten(_ header: String, extra: Int = 0) throws -> String {
            let length = Int(good.prefix(8).withUnsafeBytes { $0.load(as: UInt64.self) })
            let data = Array(good[(8 + length)...]) + [UInt8](repeating: 0, count: extra)
            var h = Array(header.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
            let p = path + ".hostile"
            try Data(out + h + data).write(to: URL(fileURLWithPath: p))
            return p
        }
        defer { try? FileManager.default.removeItem(atPath: path + ".hostile") }
        for (header, extra, expected) in [
            (
                #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                0, "overlaps"
            ),
            (
                #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}"#,
                0, "belong to no tensor"
            ),
            (
                #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}"#,
                8, "after the last tensor"
            ),
            (
                #"{"a":{"dtype":"F64","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}"#,
                0, "32 bytes, but its data offsets span 16"
            )
        ] {
            let p = try rewritten(header, extra: extra)
            XCTAssertThrowsError(try Safetensors.load(p), expected) {
                guard case .malformed(_, let why)? = $0 as? IOError else { return XCTFail("\($0)") }
                XCTAssertTrue(why.contains(expected), why)
            }
        }
    }
}
