// Tokenizers (tokenizer.json and GGUF metadata) against Hugging Face tokenizers'
// ids; streaming detokenization never splits characters; typed errors.

import Foundation
import XCTest

@testable import TesseraLM
import Tessera

/// Tokenizers against Hugging Face `tokenizers` (Tools/gen_tokenizer_fixtures.py):
/// SmolLM2's real tokenizer and small trained GPT-2 / Llama 3 / Qwen2 /
/// Llama 2 / Mistral-style ones, on a corpus of prose, code, whitespace runs,
/// emoji, CJK, combining marks, numbers and special tokens.
final class TokenizerTests: XCTestCase {
    static let names = ["smollm2", "gpt2-bpe", "llama3-bpe", "qwen2-bpe", "llama2-spm", "mistral-spm"]

    static func directory(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/tokenizers/\(name)").standardizedFileURL.path
    }

    static func json(_ name: String, _ file: String) throws -> JSONValue {
        try JSONValue(parsing: Data(contentsOf: URL(fileURLWithPath: directory(name) + "/" + file)))
    }

    struct Case {
        var text: String
        var ids: [Int]
        var idsPlain: [Int]
        var idsSpecialAsText: [Int]
        var decoded: String
        var decodedSkip: String
    }

    static func cases(_ name: String) throws -> [Case] {
        try json(name, "expected.json")["cases"]!.array!.map {
            Case(
                text: $0["text"]!.string!, ids: $0["ids"]!.array!.map { $0.int! },
                idsPlain: $0["ids_plain"]!.array!.map { $0.int! },
                idsSpecialAsText: $0["ids_special_as_text"]!.array!.map { $0.int! }, decoded: $0["decoded"]!.string!,
                decodedSkip: $0["decoded_skip"]!.string!)
        }
    }

    func check(_ tokenizer: Tokenizer, _ name: String, plainOnly: Bool = false) throws -> Int {
        var count = 0
        for c in try Self.cases(name) {
            let label = "\(name): \(c.text.debugDescription.prefix(60))"
            XCTAssertEqual(tokenizer.encode(c.text, addSpecialTokens: false), c.idsPlain, label)
            XCTAssertEqual(
                tokenizer.encode(c.text, addSpecialTokens: false, splitSpecialTokens: false), c.idsSpecialAsText, label)
            if !plainOnly { XCTAssertEqual(tokenizer.encode(c.text), c.ids, label) }
            XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, label)
            XCTAssertEqual(tokenizer.decode(c.ids, skipSpecialTokens: true), c.decodedSkip, label)
            count += 1
        }
        return count
    }

    func testTokenizerJSONMatchesHuggingFace() throws {
        var total = 0
        for name in Self.names {
            let tokenizer = try Tokenizer(directory: Self.directory(name))
            total += try check(tokenizer, name)
        }
        XCTAssertEqual(total, 6 * 100)
    }

    func testSmolLM2Facts() throws {
        let t = try Tokenizer(directory: Self.directory("smollm2"))
        XCTAssertEqual(t.vocabularySize, 49152)
        XCTAssertEqual(t.bosTokenID, 1)
        XCTAssertEqual(t.eosTokenID, 2)
        XCTAssertFalse(t.addsBOSToken)
        XCTAssertEqual(t.model.merges.count, 48900)
        XCTAssertEqual(t.token(1), "<|im_start|>")
        XCTAssertTrue(t.isSpecial(2))
        XCTAssertEqual(t.encode("Hello world"), [19556, 905])
        XCTAssertTrue(t.chatTemplate?.contains("SmolLM") ?? false)
    }

    /// A fixture's tokenizer as GGUF-style arrays: tokens by id, "a b" merges
    /// (or scores for SentencePiece), token types, special ids (nil: no gguf.json).
    static func metadata(_ name: String) throws -> TokenizerMetadata? {
        guard FileManager.default.fileExists(atPath: Self.directory(name) + "/gguf.json") else { return nil }
        let g = try Self.json(name, "gguf.json")
        let model = try Self.json(name, "tokenizer.json")["model"]!
        let vocab = model["vocab"]!.object!
        var tokens = [String](repeating: "", count: vocab.count)
        for (t, id) in vocab { tokens[id.int!] = t }
        var types = [Int32](repeating: 1, count: tokens.count)
        for pair in g["types"]!.array! { types[pair.array![0].int!] = Int32(pair.array![1].int!) }
        let isLlama = g["model"]!.string == "llama"
        let merges = model["merges"]!.array!.map { m in m.array!.map { $0.string! }.joined(separator: " ") }
        return TokenizerMetadata(
            model: g["model"]!.string!, preTokenizer: g["pre"]?.string, tokens: tokens, tokenTypes: types,
            merges: isLlama ? nil : merges, scores: isLlama ? tokens.indices.map { -Float($0) } : nil,
            bosTokenID: g["bos"]?.int, eosTokenID: g["eos"]?.int, unknownTokenID: g["unk"]?.int,
            addBOSToken: g["add_bos"]?.bool, chatTemplate: name == "smollm2" ? "{{ messages }}" : nil)
    }

    /// The same tokenizers built from GGUF-style arrays.
    func testMetadataArraysMatchHuggingFace() throws {
        var total = 0
        for name in Self.names {
            guard let meta = try Self.metadata(name) else { continue }
            total += try check(try Tokenizer(metadata: meta), name)
        }
        XCTAssertEqual(total, 5 * 100)
    }

    /// GGUF-style arrays written as tokenizer.json + tokenizer_config.json (what
    /// `tessera convert` writes for a GGUF) load as the same tokenizers.
    func testMetadataWrittenAsTokenizerFilesMatchesHuggingFace() throws {
        var total = 0
        for name in Self.names {
            guard let meta = try Self.metadata(name) else { continue }
            let (json, config) = try meta.huggingFaceFiles(modelMaxLength: 2048)
            let tokenizer = try Tokenizer(
                tokenizerJSON: Array(json.compactText.utf8), configJSON: Array(config.compactText.utf8))
            total += try check(tokenizer, name)
            XCTAssertEqual(tokenizer.bosTokenID, meta.bosTokenID, name)
            XCTAssertEqual(tokenizer.eosTokenID, meta.eosTokenID, name)
            XCTAssertEqual(tokenizer.chatTemplate, meta.chatTemplate, name)
            let control = meta.tokenTypes!.indices.filter {
                meta.tokenTypes![$0] == TokenizerMetadata.TokenType.control.rawValue
            }
            let unknown = [meta.unknownTokenID].compactMap { $0 }
            XCTAssertEqual(
                Set(tokenizer.addedTokens.filter(\.special).map(\.id)).subtracting(unknown),
                Set(control).subtracting(unknown), name)
            XCTAssertEqual(config["model_max_length"]?.int, 2048)
        }
        XCTAssertEqual(total, 5 * 100)
    }

    func testStreamingDetokenizerNeverBreaksCharacters() throws {
        var checked = 0
        for name in Self.names {
            let tokenizer = try Tokenizer(directory: Self.directory(name))
            for c in try Self.cases(name) {
                var stream = tokenizer.streamingDetokenizer()
                var pieces: [String] = []
                for id in c.ids { pieces.append(stream.append(id)) }
                pieces.append(stream.finish())
                XCTAssertEqual(pieces.joined(), c.decoded, "\(name): \(c.text.prefix(40))")
                if !c.decoded.contains("\u{FFFD}") {
                    for p in pieces {
                        XCTAssertFalse(p.contains("\u{FFFD}"), "\(name): broken piece in \(c.text.prefix(40))")
                    }
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 600)
    }

    func testStreamingHoldsSplitEmojiAndCJK() throws {
        let t = try Tokenizer(directory: Self.directory("llama2-spm"))
        // Not in the small vocabulary: each is byte-fallback tokens, one byte each.
        let ids = t.encode("🤖鬱", addSpecialTokens: false)
        XCTAssertEqual(ids.count, 8)
        var stream = t.streamingDetokenizer()
        let out = ids.map { stream.append($0) }
        XCTAssertEqual(out.filter { !$0.isEmpty }.map { $0.trimmingCharacters(in: .whitespaces) }, ["🤖", "鬱"])
        XCTAssertEqual(out.joined() + stream.finish(), t.decode(ids))
    }

    func testLongInputsAreNotPathological() throws {
        let t = try Tokenizer(directory: Self.directory("smollm2"))
        let corpus = try Self.cases("smollm2").map(\.text).joined(separator: "\n")
        let big = String(repeating: corpus, count: 20)  // ~60 KB of mixed text
        let runs =
            String(repeating: "=", count: 20_000) + String(repeating: " ", count: 20_000)
            + String(repeating: "a", count: 20_000)
        let start = Date()
        let ids = t.encode(big)
        let mixed = Date().timeIntervalSince(start)
        let runIDs = t.encode(runs)
        let elapsed = Date().timeIntervalSince(start)
        print("encode: \(big.utf8.count / 1024) KB mixed text in \(mixed) s; 60 K-scalar runs in \(elapsed - mixed) s")
        XCTAssertEqual(t.decode(ids), big)
        XCTAssertEqual(t.decode(runIDs), runs)
        XCTAssertLessThan(elapsed, 20, "encoding ~120 KB took \(elapsed) s")
    }

    func testBadInputThrowsTypedErrors() throws {
        func fails(
            _ json: String, _ expected: (TokenizerError) -> Bool, file: StaticString = #filePath, line: UInt = #line
        ) {
            do {
                _ = try Tokenizer(tokenizerJSON: Array(json.utf8))
                XCTFail("no error for \(json)", file: file, line: line)
            } catch {
                XCTAssertTrue(expected(error), "\(error)", file: file, line: line)
            }
        }
        fails("{\"model\": ") { if case .invalidJSON = $0 { true } else { false } }
        fails("[]") { if case .malformed = $0 { true } else { false } }
        fails(#"{"model": {"type": "Unigram", "vocab": []}}"#) { if case .unsupported = $0 { true } else { false } }
        fails(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#) {
            if case .malformed = $0 { true } else { false }
        }
        fails(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Nope"}}"#) {
            if case .unsupported = $0 { true } else { false }
        }
        fails(
            #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("}}}"#
        ) {
            if case .unsupported = $0 { true } else { false }
        }
        XCTAssertThrowsError(try Tokenizer(directory: "/nonexistent/model")) {
            guard case .unreadable = $0 as? TokenizerError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(
            try Tokenizer(
                metadata: TokenizerMetadata(model: "gpt2", preTokenizer: "klingon", tokens: ["a"], merges: []))
        ) {
            XCTAssertEqual($0 as? TokenizerError, .unsupported("pre-tokenizer \"klingon\""))
        }
        XCTAssertThrowsError(try Tokenizer(metadata: TokenizerMetadata(model: "t5", tokens: ["a"]))) {
            XCTAssertEqual($0 as? TokenizerError, .unsupported("tokenizer model \"t5\""))
        }
        XCTAssertThrowsError(
            try Tokenizer(metadata: TokenizerMetadata(model: "gpt2", tokens: ["a"], merges: [], bosTokenID: 7)))
    }

    func testUnknownRegexRunsOnThePikeVM() throws {
        let json = #"""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, " ": 2, "ab": 3}, "merges": ["a b"]},
             "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed"}}
            """#
        let t = try Tokenizer(tokenizerJSON: Array(json.utf8))
        XCTAssertEqual(t.encode("ab  a b"), [3, 0, 1])
    }
}

extension TokenizerTests {
    /// Older tokenizer.json files write merges as "a b" strings.
    func testMergesAsStrings() throws {
        var root = try Self.json("gpt2-bpe", "tokenizer.json").object!
        var model = root["model"]!.object!
        model["merges"] = .array(
            model["merges"]!.array!.map { .string($0.array!.map { $0.string! }.joined(separator: " ")) })
        root["model"] = .object(model)
        let text = Builtins.toJSON(.object(root), indent: nil, itemSeparator: ",", keySeparator: ":", sortKeys: false)
        let tokenizer = try Tokenizer(tokenizerJSON: Array(text.utf8))
        XCTAssertEqual(try check(tokenizer, "gpt2-bpe"), 100)
    }
}
