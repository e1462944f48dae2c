// GGUF tokenizer metadata written out as Hugging Face files: tokenizer.json
// (in the `tokenizers` JSON format) and tokenizer_config.json (special token
// names, add_bos / add_eos, the chat template). `Tokenizer(metadata:)` builds
// from them, and `tessera convert` writes them next to the weights of a GGUF
// it converts, so the folder tokenizes as the GGUF does.
//
// The pre-tokenizer name (`tokenizer.ggml.pre`) picks the pipeline Hugging
// Face uses for that model family:
//   gpt2 / default  ByteLevel with the GPT-2 regex
//   smollm          individual digits, then ByteLevel with the GPT-2 regex
//   llama-bpe       Llama 3 regex split, ByteLevel bytes, ignore_merges
//   qwen2           NFC, Qwen2 regex split, ByteLevel bytes
// and model "llama" is SentencePiece-style BPE: "▁" for spaces (prepended
// when add_space_prefix), <0xNN> byte fallback, merges from the `merges`
// array or ranked by score (the merged token's score; pairs making one token
// ordered by their ids). Control tokens are special added tokens,
// user-defined ones non-special added tokens (neither normalized).

import Tessera

extension TokenizerMetadata {
    /// The `tokenizer.ggml.*` and `tokenizer.chat_template` entries of a GGUF file.
    public init(gguf file: GGUFFile) throws(TokenizerError) {
        let m = file.metadata
        // Every key is read with its type: a value of another type is an error naming the key, not a default.
        func typed<T>(_ key: String, _ expected: String, _ cast: (GGUFValue) -> T?) throws(TokenizerError) -> T? {
            guard let v = m[key] else { return nil }
            guard let t = cast(v) else { throw .malformed("GGUF \(key) must be \(expected), got \(v.typeName)") }
            return t
        }
        func list<T>(_ key: String, _ expected: String, _ cast: (GGUFValue) -> T?) throws(TokenizerError) -> [T]? {
            try typed(key, "an array of \(expected)") { v -> [T]? in
                guard let a = v.array else { return nil }
                var out: [T] = []
                out.reserveCapacity(a.count)
                for e in a {
                    guard let t = cast(e) else { return nil }
                    out.append(t)
                }
                return out
            }
        }
        guard let model = try typed("tokenizer.ggml.model", "a string", \.string) else {
            throw .malformed("the GGUF file has no tokenizer.ggml.model")
        }
        guard let tokens = try list("tokenizer.ggml.tokens", "strings", \.string) else {
            throw .malformed("the GGUF file has no tokenizer.ggml.tokens")
        }
        self.init(
            model: model, preTokenizer: try typed("tokenizer.ggml.pre", "a string", \.string), tokens: tokens,
            tokenTypes: try list("tokenizer.ggml.token_type", "integers") { $0.int.flatMap { Int32(exactly: $0) } },
            merges: try list("tokenizer.ggml.merges", "strings", \.string),
            scores: try list("tokenizer.ggml.scores", "numbers") { $0.double.map(Float.init) },
            bosTokenID: try typed("tokenizer.ggml.bos_token_id", "an integer", \.int),
            eosTokenID: try typed("tokenizer.ggml.eos_token_id", "an integer", \.int),
            unknownTokenID: try typed("tokenizer.ggml.unknown_token_id", "an integer", \.int),
            addBOSToken: try typed("tokenizer.ggml.add_bos_token", "a bool", \.bool),
            addEOSToken: try typed("tokenizer.ggml.add_eos_token", "a bool", \.bool),
            addSpacePrefix: try typed("tokenizer.ggml.add_space_prefix", "a bool", \.bool),
            chatTemplate: try typed("tokenizer.chat_template", "a string", \.string))
    }

    /// tokenizer.json and tokenizer_config.json for these arrays
    /// (`modelMaxLength`: the model's context, for the config).
    public func huggingFaceFiles(modelMaxLength: Int? = nil) throws(TokenizerError) -> (
        tokenizer: JSONValue, config: JSONValue
    ) {
        if let types = tokenTypes, types.count != tokens.count {
            throw .malformed("\(types.count) token types for \(tokens.count) tokens")
        }
        for id in [bosTokenID, eosTokenID, unknownTokenID].compactMap({ $0 }) where !tokens.indices.contains(id) {
            throw .malformed("token id \(id) is outside the vocabulary of \(tokens.count)")
        }
        guard tokens.count <= Int(Int32.max) else { throw .malformed("\(tokens.count) tokens is too many") }
        func pairs(_ merges: [String]) throws(TokenizerError) -> [(String, String)] {
            var out: [(String, String)] = []
            out.reserveCapacity(merges.count)
            for m in merges {
                let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .malformed("merge \"\(m)\" is not two tokens") }
                out.append((String(parts[0]), String(parts[1])))
            }
            return out
        }
        func name(_ id: Int?) -> JSONValue { id.map { .string(tokens[$0]) } ?? .null }
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
        func pattern(string: String) -> JSONValue { object([("String", .string(string))]) }
        func byteLevel(useRegex: Bool) -> JSONValue {
            object([
                ("type", "ByteLevel"), ("add_prefix_space", false), ("trim_offsets", true),
                ("use_regex", .bool(useRegex))
            ])
        }
        func split(_ regex: String) -> JSONValue {
            object([
                ("type", "Split"), ("pattern", object([("Regex", .string(regex))])), ("behavior", "Isolated"),
                ("invert", false)
            ])
        }

        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        for (id, t) in tokens.enumerated() where seen.insert(t).inserted { vocab.append((t, .int(id))) }
        var vocabIDs: [String: Int] = [:]
        for (t, id) in vocab { vocabIDs[t] = id.int! }

        var added: [(id: Int, special: Bool)] = []
        for (id, raw) in (tokenTypes ?? []).enumerated() {
            switch TokenType(rawValue: raw) {
            case .control: added.append((id, true))
            case .userDefined: added.append((id, false))
            default: break
            }
        }

        let normalizerJSON: JSONValue, preTokenizerJSON: JSONValue, decoderJSON: JSONValue
        var modelFields: [(String, JSONValue)] = [("type", "BPE"), ("dropout", .null)]
        let addBOS: Bool
        let mergePairs: [(String, String)]
        switch model {
        case "gpt2":
            guard let merges else { throw .malformed("gpt2 tokenizer without merges") }
            mergePairs = try pairs(merges)
            var ignoreMerges = false
            switch preTokenizer ?? "default" {
            case "default", "gpt2", "gpt-2":
                normalizerJSON = .null
                preTokenizerJSON = byteLevel(useRegex: true)
            case "smollm":
                normalizerJSON = .null
                preTokenizerJSON = object([
                    ("type", "Sequence"),
                    (
                        "pretokenizers",
                        [object([("type", "Digits"), ("individual_digits", true)]), byteLevel(useRegex: true)]
                    )
                ])
            case "llama-bpe", "llama3":
                normalizerJSON = .null
                preTokenizerJSON = object([
                    ("type", "Sequence"),
                    ("pretokenizers", [split(KnownPattern.llama3Source), byteLevel(useRegex: false)])
                ])
                ignoreMerges = true
            case "qwen2":
                normalizerJSON = object([("type", "NFC")])
                preTokenizerJSON = object([
                    ("type", "Sequence"),
                    ("pretokenizers", [split(KnownPattern.qwen2Source), byteLevel(useRegex: false)])
                ])
            case let other:
                throw .unsupported("pre-tokenizer \"\(other)\"")
            }
            decoderJSON = byteLevel(useRegex: true)
            modelFields += [
                ("unk_token", name(unknownTokenID)), ("fuse_unk", false), ("byte_fallback", false),
                ("ignore_merges", .bool(ignoreMerges))
            ]
            addBOS = addBOSToken ?? false

        case "llama":
            if let merges {
                mergePairs = try pairs(merges)
            } else if let scores {
                guard scores.count == tokens.count else {
                    throw .malformed("\(scores.count) scores for \(tokens.count) tokens")
                }
                // Ranks from scores; pairs making the same token ordered by their ids.
                let ranked = BPEModel.merges(scores: scores, tokens: tokens, vocab: vocabIDs)
                    .sorted { ($0.value.rank, $0.key) < ($1.value.rank, $1.key) }
                mergePairs = ranked.map { (tokens[Int($0.key >> 32)], tokens[Int($0.key & 0xFFFF_FFFF)]) }
            } else {
                throw .malformed("llama tokenizer without merges or scores")
            }
            let space: JSONValue = "\u{2581}"
            let replace = object([("type", "Replace"), ("pattern", pattern(string: " ")), ("content", space)])
            let prefix = addSpacePrefix ?? true
            normalizerJSON =
                prefix
                ? object([
                    ("type", "Sequence"), ("normalizers", [object([("type", "Prepend"), ("prepend", space)]), replace])
                ])
                : replace
            preTokenizerJSON = .null
            decoderJSON = object([
                ("type", "Sequence"),
                (
                    "decoders",
                    [
                        object([("type", "Replace"), ("pattern", pattern(string: "\u{2581}")), ("content", " ")]),
                        object([("type", "ByteFallback")]), object([("type", "Fuse")]),
                        object([("type", "Strip"), ("content", " "), ("start", .int(prefix ? 1 : 0)), ("stop", 0)])
                    ]
                )
            ])
            let unknown = unknownTokenID ?? vocabIDs["<unk>"]
            if let unknown, !added.contains(where: { $0.id == unknown }) { added.append((unknown, true)) }
            modelFields += [
                ("unk_token", name(unknown)), ("fuse_unk", true), ("byte_fallback", true), ("ignore_merges", false)
            ]
            addBOS = addBOSToken ?? true

        case let other:
            throw .unsupported("tokenizer model \"\(other)\"")
        }
        modelFields += [
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("vocab", .object(JSONObject(vocab))),
            ("merges", .array(mergePairs.map { [.string($0.0), .string($0.1)] }))
        ]

        // The post-processor: BOS / EOS around the text as the metadata asks.
        var single: [JSONValue] = [], pair: [JSONValue] = [], specials: [(String, JSONValue)] = []
        func special(_ id: Int, typeID: Int) -> JSONValue {
            object([("SpecialToken", object([("id", .string(tokens[id])), ("type_id", .int(typeID))]))])
        }
        func sequence(_ s: String, typeID: Int) -> JSONValue {
            object([("Sequence", object([("id", .string(s)), ("type_id", .int(typeID))]))])
        }
        let bos = addBOS ? bosTokenID : nil, eos = addEOSToken == true ? eosTokenID : nil
        for (s, typeID) in [("A", 0), ("B", 1)] {
            var items: [JSONValue] = []
            if let bos { items.append(special(bos, typeID: typeID)) }
            items.append(sequence(s, typeID: typeID))
            if let eos { items.append(special(eos, typeID: typeID)) }
            if s == "A" { single = items } else { pair = single + items }
        }
        for id in [bos, eos].compactMap({ $0 }) where !specials.contains(where: { $0.0 == tokens[id] }) {
            specials.append(
                (
                    tokens[id],
                    object([("id", .string(tokens[id])), ("ids", [.int(id)]), ("tokens", [.string(tokens[id])])])
                ))
        }
        let post = object([
            ("type", "TemplateProcessing"), ("single", .array(single)), ("pair", .array(pair)),
            ("special_tokens", .object(JSONObject(specials)))
        ])

        let tokenizer = object([
            ("version", "1.0"), ("truncation", .null), ("padding", .null),
            (
                "added_tokens",
                .array(
                    added.sorted { $0.id < $1.id }.map { t in
                        object([
                            ("id", .int(t.id)), ("content", .string(tokens[t.id])), ("single_word", false),
                            ("lstrip", false),
                            ("rstrip", false), ("normalized", false), ("special", .bool(t.special))
                        ])
                    })
            ),
            ("normalizer", normalizerJSON), ("pre_tokenizer", preTokenizerJSON), ("post_processor", post),
            ("decoder", decoderJSON),
            ("model", .object(JSONObject(modelFields)))
        ])
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", "PreTrainedTokenizerFast"), ("add_bos_token", .bool(addBOS)),
            ("add_eos_token", .bool(addEOSToken ?? false)), ("bos_token", name(bosTokenID)),
            ("eos_token", name(eosTokenID)),
            ("unk_token", name(unknownTokenID)), ("clean_up_tokenization_spaces", false)
        ]
        if let modelMaxLength { config.append(("model_max_length", .int(modelMaxLength))) }
        if let chatTemplate { config.append(("chat_template", .string(chatTemplate))) }
        return (tokenizer, object(config))
    }
}
