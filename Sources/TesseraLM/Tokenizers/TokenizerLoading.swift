// Building a Tokenizer from Hugging Face files: tokenizer.json (the
// pipeline), tokenizer_config.json (bos/eos names, chat_template) and
// chat_template.jinja (where newer transformers saves the template).

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera

extension Tokenizer {
    /// Loads `tokenizer.json`, and `tokenizer_config.json` and
    /// `chat_template.jinja` when present, from a model folder.
    public convenience init(directory: String) throws(TokenizerError) {
        let base = URL(fileURLWithPath: directory)
        let json = try Self.read(base.appendingPathComponent("tokenizer.json"))
        let configURL = base.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try Self.read(configURL) : nil
        let templateURL = base.appendingPathComponent("chat_template.jinja")
        var template: String? = nil
        if FileManager.default.fileExists(atPath: templateURL.path) {
            template = String(decoding: try Self.read(templateURL), as: UTF8.self)
        }
        try self.init(tokenizerJSON: json, configJSON: config, chatTemplate: template)
    }

    /// Builds a tokenizer from the bytes of `tokenizer.json` and, optionally,
    /// `tokenizer_config.json`. `chatTemplate` overrides the config's.
    public convenience init(
        tokenizerJSON: some Collection<UInt8>, configJSON: (some Collection<UInt8>)? = [UInt8]?.none,
        chatTemplate: String? = nil
    ) throws(TokenizerError) {
        let root: JSONValue
        do { root = try JSONValue(parsing: tokenizerJSON) } catch { throw .invalidJSON(file: "tokenizer.json", error) }
        var config = JSONValue.object(JSONObject())
        if let configJSON {
            do { config = try JSONValue(parsing: configJSON) } catch {
                throw .invalidJSON(file: "tokenizer_config.json", error)
            }
        }
        try self.init(json: root, config: config, chatTemplate: chatTemplate)
    }

    /// Builds a tokenizer from parsed `tokenizer.json` and `tokenizer_config.json`.
    convenience init(json root: JSONValue, config: JSONValue, chatTemplate: String?) throws(TokenizerError) {
        guard root.object != nil else { throw .malformed("tokenizer.json is not an object") }

        var added: [AddedToken] = []
        for t in root["added_tokens"]?.array ?? [] {
            guard let content = t["content"]?.string, let id = t["id"]?.int, (0...Int(Int32.max)).contains(id) else {
                throw .malformed("added token without content or a valid id")
            }
            let special = t["special"]?.bool ?? false
            added.append(
                AddedToken(
                    content: content, id: id, special: special,
                    lstrip: t["lstrip"]?.bool ?? false, rstrip: t["rstrip"]?.bool ?? false,
                    normalized: t["normalized"]?.bool ?? !special, singleWord: t["single_word"]?.bool ?? false))
        }

        let model = try Self.model(root["model"], added: added)
        func present(_ key: String) -> JSONValue? {
            guard let v = root[key], !v.isNull else { return nil }
            return v
        }
        let normalizer = try present("normalizer").map { (v) throws(TokenizerError) in try Self.normalizer(v) }
        let preTokenizer = try present("pre_tokenizer").map { (v) throws(TokenizerError) in try Self.preTokenizer(v) }
        let decoder = try present("decoder").map { (v) throws(TokenizerError) in try Self.decoder(v) }
        let post = try present("post_processor").map { (v) throws(TokenizerError) in try Self.postProcessor(v) }

        func tokenName(_ v: JSONValue?) -> String? { v?.string ?? v?["content"]?.string }
        func id(_ name: String?) -> Int? {
            guard let name else { return nil }
            return added.first { $0.content == name }?.id ?? model.vocab[name]
        }
        var template = chatTemplate
        if template == nil {
            if let s = config["chat_template"]?.string {
                template = s
            } else if let list = config["chat_template"]?.array {
                // Named templates: use "default".
                template = list.first { $0["name"]?.string == "default" }?["template"]?.string
            }
        }
        // A special token the config names must be in the vocabulary (else generation would never see its eos).
        func special(_ key: String) throws(TokenizerError) -> Int? {
            guard let name = tokenName(config[key]) else { return nil }
            guard let id = id(name) else {
                throw .malformed("tokenizer_config.json \(key) \"\(name)\" is not in the vocabulary")
            }
            return id
        }
        self.init(
            normalizer: normalizer, preTokenizer: preTokenizer, model: model, decoder: decoder,
            postProcessor: post, addedTokens: added, bosTokenID: try special("bos_token"),
            eosTokenID: try special("eos_token"), chatTemplate: template)
    }

    /// A regular file's bytes (a FIFO or directory in its place is refused, never waited on).
    static func read(_ url: URL) throws(TokenizerError) -> Data {
        do { return Data(try readRegularFile(url.path)) } catch {
            throw .unreadable(path: url.path, reason: "\(error)")
        }
    }

    // MARK: components

    private static func type(_ json: JSONValue, _ what: String) throws(TokenizerError) -> String {
        guard let t = json["type"]?.string else { throw .malformed("\(what) without a type") }
        return t
    }

    static func model(_ json: JSONValue?, added: [AddedToken]) throws(TokenizerError) -> BPEModel {
        guard let json, json.object != nil else { throw .malformed("no model") }
        let kind = json["type"]?.string ?? (json["merges"] != nil ? "BPE" : "unknown")
        guard kind == "BPE" else { throw .unsupported("model type \(kind)") }
        guard let vocabObject = json["vocab"]?.object else { throw .malformed("BPE model without a vocab") }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, id) in vocabObject {
            guard let id = id.int, (0...Int(Int32.max)).contains(id) else {
                throw .malformed("vocab id of \(token) is not an integer in 0...\(Int32.max)")
            }
            vocab[token] = id
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = json[key]?.string, !s.isEmpty { throw .unsupported("BPE \(key) \"\(s)\"") }
        }
        var pairs: [(String, String)] = []
        let merges = json["merges"].flatMap { $0.isNull ? nil : $0 }
        if let merges, merges.array == nil {
            throw .malformed("BPE merges must be a list, got \(merges.compactText.prefix(40))")
        }
        for m in merges?.array ?? [] {
            if let s = m.string {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw .malformed("merge \"\(s)\" is not two tokens") }
                pairs.append((String(parts[0]), String(parts[1])))
            } else if let a = m.array, a.count == 2, let l = a[0].string, let r = a[1].string {
                pairs.append((l, r))
            } else {
                throw .malformed("merge entry is neither \"a b\" nor [a, b]")
            }
        }
        var unknownID: Int? = nil
        if let name = json["unk_token"]?.string {
            unknownID = vocab[name] ?? added.first { $0.content == name }?.id
            guard unknownID != nil else { throw .malformed("unk_token \"\(name)\" is not in the vocabulary") }
        }
        return BPEModel(
            vocab: vocab, merges: try BPEModel.merges(pairs, vocab: vocab), unknownID: unknownID,
            fuseUnknown: json["fuse_unk"]?.bool ?? false, byteFallback: json["byte_fallback"]?.bool ?? false,
            ignoreMerges: json["ignore_merges"]?.bool ?? false)
    }

    static func normalizer(_ json: JSONValue) throws(TokenizerError) -> Normalizer {
        switch try type(json, "normalizer") {
        case "Sequence":
            var steps: [Normalizer] = []
            for s in json["normalizers"]?.array ?? [] { steps.append(try normalizer(s)) }
            return .sequence(steps)
        case "NFC": return .nfc
        case "Prepend":
            guard let p = json["prepend"]?.string else { throw .malformed("Prepend without prepend") }
            return .prepend(Array(p.unicodeScalars))
        case "Replace":
            return .replace(
                try TextPattern(json: json["pattern"]), content: Array((json["content"]?.string ?? "").unicodeScalars))
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: json["strip_left"]?.bool ?? true, right: json["strip_right"]?.bool ?? true)
        case let other: throw .unsupported("normalizer \(other)")
        }
    }

    static func preTokenizer(_ json: JSONValue) throws(TokenizerError) -> PreTokenizer {
        switch try type(json, "pre_tokenizer") {
        case "Sequence":
            var steps: [PreTokenizer] = []
            for s in json["pretokenizers"]?.array ?? [] { steps.append(try preTokenizer(s)) }
            return .sequence(steps)
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: json["add_prefix_space"]?.bool ?? false, useRegex: json["use_regex"]?.bool ?? true)
        case "Split":
            let raw = json["behavior"]?.string ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: raw) else { throw .unsupported("split behavior \(raw)") }
            return .split(
                try TextPattern(json: json["pattern"]), behavior: behavior, invert: json["invert"]?.bool ?? false)
        case "Digits":
            return .digits(individual: json["individual_digits"]?.bool ?? false)
        case "Metaspace":
            let (replacement, scheme) = try metaspace(json)
            return .metaspace(replacement: replacement, prependScheme: scheme, split: json["split"]?.bool ?? true)
        case let other: throw .unsupported("pre-tokenizer \(other)")
        }
    }

    private static func metaspace(_ json: JSONValue) throws(TokenizerError) -> (Unicode.Scalar, PrependScheme) {
        let r = json["replacement"]?.string ?? "\u{2581}"
        guard r.unicodeScalars.count == 1, let replacement = r.unicodeScalars.first else {
            throw .malformed("Metaspace replacement \"\(r)\" is not one character")
        }
        let scheme: PrependScheme
        if let s = json["prepend_scheme"]?.string {
            guard let p = PrependScheme(rawValue: s) else { throw .unsupported("Metaspace prepend_scheme \(s)") }
            scheme = p
        } else {
            scheme = (json["add_prefix_space"]?.bool ?? true) ? .always : .never
        }
        return (replacement, scheme)
    }

    static func decoder(_ json: JSONValue) throws(TokenizerError) -> TokenDecoder {
        switch try type(json, "decoder") {
        case "Sequence":
            var steps: [TokenDecoder] = []
            for s in json["decoders"]?.array ?? [] { steps.append(try decoder(s)) }
            return .sequence(steps)
        case "ByteLevel": return .byteLevel
        case "Metaspace":
            let (replacement, scheme) = try metaspace(json)
            return .metaspace(replacement: replacement, prependScheme: scheme)
        case "Replace":
            return .replace(try TextPattern(json: json["pattern"]), content: json["content"]?.string ?? "")
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let c = json["content"]?.string ?? " "
            guard let scalar = c.unicodeScalars.first, c.unicodeScalars.count == 1 else {
                throw .malformed("Strip content \"\(c)\" is not one character")
            }
            return .strip(content: scalar, start: json["start"]?.int ?? 0, stop: json["stop"]?.int ?? 0)
        case let other: throw .unsupported("decoder \(other)")
        }
    }

    static func postProcessor(_ json: JSONValue) throws(TokenizerError) -> PostProcessor {
        switch try type(json, "post_processor") {
        case "Sequence":
            var steps: [PostProcessor] = []
            for s in json["processors"]?.array ?? [] { steps.append(try postProcessor(s)) }
            return .sequence(steps)
        case "ByteLevel":
            return .passThrough
        case "TemplateProcessing":
            var items: [PostProcessor.Item] = []
            for item in json["single"]?.array ?? [] {
                if item["Sequence"] != nil {
                    items.append(.sequence)
                } else if let name = item["SpecialToken"]?["id"]?.string {
                    guard let ids = json["special_tokens"]?[name]?["ids"]?.array?.compactMap(\.int) else {
                        throw .malformed("TemplateProcessing names special token \(name) it does not define")
                    }
                    items.append(.special(ids))
                } else {
                    throw .malformed("TemplateProcessing item is neither Sequence nor SpecialToken")
                }
            }
            return .template(items)
        case let other: throw .unsupported("post-processor \(other)")
        }
    }
}
