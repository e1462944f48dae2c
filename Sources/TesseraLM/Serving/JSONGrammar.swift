// JSONGrammar: a JSON schema (the common subset that response_format and
// tool parameters use) compiled to the node graph JSONAutomaton runs.
//
// Supported: type (one or a list: object, array, string, number, integer,
// boolean, null), properties, required, additionalProperties (false, true or
// a schema), items, minItems, maxItems, enum, const, anyOf, oneOf (when its
// alternatives cannot both match), and the annotations title, description,
// default, examples, $schema, $id, $comment. Anything else is reported, with
// its location, as `StructuredOutputError.unsupportedKeywords`: a constraint
// we could not enforce is never dropped silently.
//
// The generated JSON is always valid for the schema; it may be narrower than
// the schema allows: with `properties` and no `additionalProperties`, only
// the listed properties are produced; a schema with object keywords and no
// type produces objects.

import Tessera

/// Why a schema or response format cannot be enforced.
public enum StructuredOutputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Keywords this implementation does not enforce, each as `path: keyword`.
    case unsupportedKeywords([String])
    /// The schema is malformed or can match nothing.
    case invalidSchema(String)
    /// Past a limit (properties per object, enum values, nesting depth).
    case tooComplex(String)
    /// The response_format object is not one of text / json_object / json_schema.
    case invalidResponseFormat(String)

    public var description: String {
        switch self {
        case .unsupportedKeywords(let k): "unsupported JSON schema keywords: " + k.joined(separator: ", ")
        case .invalidSchema(let m): "invalid JSON schema: \(m)"
        case .tooComplex(let m): "JSON schema too complex: \(m)"
        case .invalidResponseFormat(let m): "invalid response_format: \(m)"
        }
    }
}

/// A compiled schema: nodes referring to each other by index.
struct JSONGrammar: Sendable {
    enum Node: Sendable {
        case object(ObjectNode)
        case array(items: Int, minItems: Int, maxItems: Int?)
        case string
        case number(integer: Bool)
        /// Exact JSON texts (enum, const, true/false/null).
        case literals([[UInt8]])
        case union([Int])
    }

    struct ObjectNode: Sendable {
        /// Property names as the bytes between the quotes (JSON-escaped).
        var keys: [[UInt8]]
        var values: [Int]
        var required: UInt64
        /// The schema of other properties; nil: none allowed.
        var additional: Int?
    }

    var nodes: [Node]
    var root: Int
    /// Literal text before and after the value (a tool-call wrapper such as
    /// `<tool_call>\n` ... `\n</tool_call>`): nodes of one literal each.
    var prefix: Int?
    var suffix: Int?

    static let maxProperties = 64
    static let maxEnumValues = 64
    static let maxSchemaDepth = 32

    // Fixed nodes shared by every grammar.
    static let anyValue = 0
    static let anyObject = 1
    static let anyArray = 2
    static let stringNode = 3
    static let numberNode = 4
    static let integerNode = 5
    static let booleanNode = 6
    static let nullNode = 7
    static let trueFalseNull = 8

    private static func base() -> [Node] {
        [
            .union([anyObject, anyArray, stringNode, numberNode, trueFalseNull]),
            .object(ObjectNode(keys: [], values: [], required: 0, additional: anyValue)),
            .array(items: anyValue, minItems: 0, maxItems: nil),
            .string,
            .number(integer: false),
            .number(integer: true),
            .literals([Array("true".utf8), Array("false".utf8)]),
            .literals([Array("null".utf8)]),
            .literals([Array("true".utf8), Array("false".utf8), Array("null".utf8)])
        ]
    }

    /// Any JSON object (response_format json_object).
    static var anyJSONObject: JSONGrammar { JSONGrammar(nodes: base(), root: anyObject) }

    /// Compiles a schema; throws what it cannot enforce.
    init(schema: JSONValue) throws(StructuredOutputError) {
        var compiler = Compiler(nodes: Self.base())
        let root = try compiler.compile(schema, path: "#", depth: 0)
        if !compiler.unsupported.isEmpty { throw .unsupportedKeywords(compiler.unsupported) }
        nodes = compiler.nodes
        self.root = root
    }

    init(nodes: [Node], root: Int) {
        self.nodes = nodes
        self.root = root
    }

    /// The grammar of one call of one of `tools` (OpenAI tool objects
    /// `{"type": "function", "function": {"name", "parameters"}}`), written
    /// as `format` writes it; `only` restricts it to the tool of that name.
    init(toolCallOf tools: [JSONValue], only: String?, format: ToolCallFormat) throws(StructuredOutputError) {
        var alternatives: [JSONValue] = []
        let argumentsKey = format == .llama3 ? "parameters" : "arguments"
        for tool in tools {
            let function = tool["function"] ?? tool
            guard let name = function["name"]?.string else { throw .invalidSchema("a tool without a function name") }
            if let only, only != name { continue }
            let parameters = function["parameters"] ?? ["type": "object"]
            let properties = JSONObject([("name", ["const": .string(name)]), (argumentsKey, parameters)])
            alternatives.append([
                "type": "object", "properties": .object(properties),
                "required": ["name", .string(argumentsKey)], "additionalProperties": false
            ])
        }
        guard !alternatives.isEmpty else {
            throw .invalidSchema(only.map { "no tool named \"\($0)\"" } ?? "no tools to call")
        }
        var grammar = try JSONGrammar(
            schema: alternatives.count == 1 ? alternatives[0] : ["anyOf": .array(alternatives)])
        let (open, close): (String, String) =
            switch format {
            case .hermes: ("<tool_call>\n", "\n</tool_call>")
            case .llama3: ("", "")
            case .mistral: ("[TOOL_CALLS][", "]")
            }
        if !open.isEmpty {
            grammar.nodes.append(.literals([Array(open.utf8)]))
            grammar.prefix = grammar.nodes.count - 1
        }
        if !close.isEmpty {
            grammar.nodes.append(.literals([Array(close.utf8)]))
            grammar.suffix = grammar.nodes.count - 1
        }
        self = grammar
    }
}

private let annotationKeywords: Set<String> = [
    "title", "description", "default", "examples", "$schema", "$id", "$comment"
]
private let objectKeywords: Set<String> = ["properties", "required", "additionalProperties"]
private let arrayKeywords: Set<String> = ["items", "minItems", "maxItems"]

private struct Compiler {
    var nodes: [JSONGrammar.Node]
    var unsupported: [String] = []

    mutating func add(_ node: JSONGrammar.Node) -> Int {
        nodes.append(node)
        return nodes.count - 1
    }

    mutating func compile(_ schema: JSONValue, path: String, depth: Int) throws(StructuredOutputError) -> Int {
        guard depth <= JSONGrammar.maxSchemaDepth else {
            throw .tooComplex("nested deeper than \(JSONGrammar.maxSchemaDepth) levels at \(path)")
        }
        if case .bool(let b) = schema {
            guard b else { throw .invalidSchema("\(path) is false: no value matches it") }
            return JSONGrammar.anyValue
        }
        guard let object = schema.object else { throw .invalidSchema("\(path) is not a schema object") }
        let known = annotationKeywords.union(objectKeywords).union(arrayKeywords).union([
            "type", "enum", "const", "anyOf", "oneOf"
        ])
        for key in object.keys where !known.contains(key) { unsupported.append("\(path): \(key)") }

        if let values = object["enum"] ?? object["const"].map({ .array([$0]) }) {
            guard let list = values.array, !list.isEmpty else {
                throw .invalidSchema("\(path)/enum must be a non-empty array")
            }
            let types = try typeList(object["type"], path: path)
            let kept = list.filter { v in types.map { $0.contains { Self.matches(v, type: $0) } } ?? true }
            guard !kept.isEmpty else { throw .invalidSchema("\(path): no enum/const value has the schema's type") }
            guard kept.count <= JSONGrammar.maxEnumValues else {
                throw .tooComplex("\(path) has \(kept.count) enum values (at most \(JSONGrammar.maxEnumValues))")
            }
            var texts: [[UInt8]] = []
            for v in kept where !texts.contains(Array(v.compactText.utf8)) { texts.append(Array(v.compactText.utf8)) }
            return add(.literals(texts))
        }

        for combinator in ["anyOf", "oneOf"] {
            guard let alternatives = object[combinator] else { continue }
            guard let list = alternatives.array, !list.isEmpty else {
                throw .invalidSchema("\(path)/\(combinator) must be a non-empty array")
            }
            let siblings = object.keys.filter { !annotationKeywords.contains($0) && $0 != combinator }
            if !siblings.isEmpty {
                unsupported.append("\(path): \(combinator) beside \(siblings.joined(separator: ", "))")
                return JSONGrammar.anyValue
            }
            var alts: [Int] = []
            for (i, alt) in list.enumerated() {
                alts.append(try compile(alt, path: "\(path)/\(combinator)/\(i)", depth: depth + 1))
            }
            if combinator == "oneOf" {
                // Exactly one must match: enforceable here only when no value can match two.
                let kinds = alts.map { kindsOf($0) }
                for i in kinds.indices {
                    for j in kinds.indices where j > i && !kinds[i].isDisjoint(with: kinds[j]) {
                        unsupported.append("\(path): oneOf with alternatives \(i) and \(j) that a value can both match")
                    }
                }
            }
            return add(.union(alts))
        }

        var types = try typeList(object["type"], path: path) ?? []
        if types.isEmpty {
            // No type: object or array keywords imply the type; otherwise any value.
            let keys = Set(object.keys)
            if !keys.isDisjoint(with: objectKeywords) { types.append("object") }
            if !keys.isDisjoint(with: arrayKeywords) { types.append("array") }
            if types.isEmpty { return JSONGrammar.anyValue }
        }
        var alts: [Int] = []
        for type in types {
            switch type {
            case "object": alts.append(try compileObject(object, path: path, depth: depth))
            case "array": alts.append(try compileArray(object, path: path, depth: depth))
            case "string": alts.append(JSONGrammar.stringNode)
            case "number": alts.append(JSONGrammar.numberNode)
            case "integer": alts.append(JSONGrammar.integerNode)
            case "boolean": alts.append(JSONGrammar.booleanNode)
            case "null": alts.append(JSONGrammar.nullNode)
            default: throw .invalidSchema("\(path)/type: unknown type \"\(type)\"")
            }
        }
        return alts.count == 1 ? alts[0] : add(.union(alts))
    }

    func typeList(_ value: JSONValue?, path: String) throws(StructuredOutputError) -> [String]? {
        guard let value else { return nil }
        if let s = value.string { return [s] }
        if let list = value.array {
            var out: [String] = []
            for v in list {
                guard let s = v.string else { throw .invalidSchema("\(path)/type must hold strings") }
                if !out.contains(s) { out.append(s) }
            }
            guard !out.isEmpty else { throw .invalidSchema("\(path)/type is an empty list") }
            return out
        }
        throw .invalidSchema("\(path)/type must be a string or a list of strings")
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch (type, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("number", .int), ("number", .double): true
        case ("integer", _): v.int != nil && (v.double != nil)
        default: false
        }
    }

    mutating func compileObject(_ object: JSONObject, path: String, depth: Int) throws(StructuredOutputError) -> Int {
        var keys: [[UInt8]] = [], values: [Int] = [], names: [String] = []
        if let properties = object["properties"] {
            guard let props = properties.object else { throw .invalidSchema("\(path)/properties must be an object") }
            guard props.count <= JSONGrammar.maxProperties else {
                throw .tooComplex("\(path) has \(props.count) properties (at most \(JSONGrammar.maxProperties))")
            }
            for (name, sub) in props {
                let quoted = Array(JSONValue.quoted(name).utf8)
                keys.append(Array(quoted[1..<(quoted.count - 1)]))
                names.append(name)
                values.append(try compile(sub, path: "\(path)/properties/\(name)", depth: depth + 1))
            }
        }
        var required: UInt64 = 0
        if let list = object["required"] {
            guard let names2 = list.array else { throw .invalidSchema("\(path)/required must be an array") }
            for n in names2 {
                guard let s = n.string else { throw .invalidSchema("\(path)/required must hold strings") }
                guard let i = names.firstIndex(of: s) else {
                    unsupported.append("\(path): required \"\(s)\" without a schema in properties")
                    continue
                }
                required |= 1 << UInt64(i)
            }
        }
        var additional: Int?
        switch object["additionalProperties"] {
        case .none: additional = names.isEmpty ? JSONGrammar.anyValue : nil
        case .some(.bool(let b)): additional = b ? JSONGrammar.anyValue : nil
        case .some(let sub): additional = try compile(sub, path: "\(path)/additionalProperties", depth: depth + 1)
        }
        return add(
            .object(JSONGrammar.ObjectNode(keys: keys, values: values, required: required, additional: additional)))
    }

    mutating func compileArray(_ object: JSONObject, path: String, depth: Int) throws(StructuredOutputError) -> Int {
        var items = JSONGrammar.anyValue
        if let sub = object["items"] {
            if sub.array != nil {
                unsupported.append("\(path): items as a list (tuple validation)")
            } else {
                items = try compile(sub, path: "\(path)/items", depth: depth + 1)
            }
        }
        func count(_ key: String) throws(StructuredOutputError) -> Int? {
            guard let v = object[key] else { return nil }
            guard let n = v.int, n >= 0, n <= 1 << 20 else { throw .invalidSchema("\(path)/\(key) must be a count") }
            return n
        }
        let minItems = try count("minItems") ?? 0
        let maxItems = try count("maxItems")
        if let maxItems, maxItems < minItems { throw .invalidSchema("\(path): minItems > maxItems") }
        return add(.array(items: items, minItems: minItems, maxItems: maxItems))
    }

    /// The JSON kinds a node's values can have ("integer" numbers count as "number" too).
    func kindsOf(_ node: Int, seen: Int = 0) -> Set<String> {
        guard seen < 64 else { return ["object", "array", "string", "number", "boolean", "null"] }
        switch nodes[node] {
        case .object: return ["object"]
        case .array: return ["array"]
        case .string: return ["string"]
        case .number: return ["number"]
        case .literals(let texts):
            // true/false/null literals are told apart; other literals count as their whole kind.
            var kinds = Set<String>()
            for t in texts {
                switch t.first {
                case UInt8(ascii: "\""): kinds.insert("string")
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    kinds.insert("literal:" + String(decoding: t, as: UTF8.self))
                case UInt8(ascii: "{"): kinds.insert("object")
                case UInt8(ascii: "["): kinds.insert("array")
                default: kinds.insert("number")
                }
            }
            return kinds
        case .union(let alts): return alts.reduce(into: Set<String>()) { $0.formUnion(kindsOf($1, seen: seen + 1)) }
        }
    }
}
