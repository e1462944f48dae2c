// Template values with Python's semantics where Jinja inherits them:
// truthiness, str() and repr() for printing, ==, ordering, and the JSON
// conversions used for the render context and `tojson`.

import OrderedCollections
import Tessera

/// An ordered string-keyed dictionary (Python dicts keep insertion order).
struct Dict: Sendable {
    private var storage: OrderedDictionary<String, Value> = [:]

    init() {}

    /// Writing nil removes the key; writing a new key appends it; an existing one keeps its place.
    subscript(key: String) -> Value? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    var keys: [String] { storage.keys.elements }
    var count: Int { storage.count }
    var pairs: [(String, Value)] { storage.map { ($0.key, $0.value) } }
}

/// A `namespace()` object: the one mutable value templates have.
final class Namespace: @unchecked Sendable {
    // Mutated only by the single rendering that created it.
    var attributes = Dict()
}

/// A callable: a global function, a macro, a bound method, `caller`.
final class Function: Sendable {
    let name: String
    let body: @Sendable (CallArguments) throws(TemplateError) -> Value

    init(_ name: String, _ body: @escaping @Sendable (CallArguments) throws(TemplateError) -> Value) {
        self.name = name
        self.body = body
    }
}

struct CallArguments: Sendable {
    var positional: [Value] = []
    var keyword: [(String, Value)] = []

    func keyword(_ name: String) -> Value? { keyword.first { $0.0 == name }?.1 }

    /// The argument at `index`, or the keyword `name`, or nil.
    func argument(_ index: Int, _ name: String) -> Value? {
        index < positional.count ? positional[index] : keyword(name)
    }
}

indirect enum Value: Sendable {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([Value])
    case object(Dict)
    case namespace(Namespace)
    case function(Function)

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(Value.init))
        case .object(let o):
            var d = Dict()
            for (k, v) in o { d[k] = Value(v) }
            self = .object(d)
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }

    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): o.count > 0
        case .namespace, .function: true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        }
    }

    /// Python's str(): what `{{ value }}` prints.
    var str: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: repr
        }
    }

    /// Python's repr().
    var repr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): Value.pythonFloat(d)
        case .string(let s): Value.pythonRepr(s)
        case .array(let a): "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .object(let o):
            "{" + o.pairs.map { Value.pythonRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace(let n):
            "<Namespace " + n.attributes.pairs.map { "\($0.0)=\($0.1.repr)" }.joined(separator: ", ") + ">"
        case .function(let f): "<function \(f.name)>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == d.rounded(), abs(d) < 1e16 {
            return String(Int(d)) + ".0"
        }
        // Swift's shortest round-trip form matches Python's repr, except
        // that Python pads the exponent to two digits.
        var s = d.description
        if let e = s.firstIndex(of: "e") {
            var exp = String(s[s.index(after: e)...])
            let sign = exp.first == "-" ? "-" : "+"
            exp = String(exp.drop(while: { $0 == "-" || $0 == "+" }))
            if exp.count < 2 { exp = "0" + exp }
            s = String(s[..<e]) + "e" + sign + exp
        }
        return s
    }

    static func pythonRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == quote {
                    out += "\\" + String(quote)
                } else if c.value < 0x20 || c.value == 0x7F {
                    out += "\\x" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + String(quote)
    }

    /// Python's ==.
    static func equal(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.pairs.allSatisfy { k, v in y[k].map { equal(v, $0) } ?? false }
        case (.namespace(let x), .namespace(let y)): return x === y
        case (.function(let x), .function(let y)): return x === y
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// Numbers (bools count, as in Python) as a double for comparisons.
    var number: Double? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    /// Python's < for numbers, strings and lists; nil when unorderable.
    static func less(_ a: Value, _ b: Value) -> Bool? {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
        case (.int(let x), .int(let y)):
            return x < y
        case (.array(let x), .array(let y)):
            for (p, q) in zip(x, y) where !equal(p, q) { return less(p, q) }
            return x.count < y.count
        default:
            if let x = a.number, let y = b.number { return x < y }
            return nil
        }
    }

    /// Back to JSON (for `tojson`); nil for values JSON cannot hold.
    var json: JSONValue? {
        switch self {
        case .undefined, .namespace, .function: return nil
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a):
            var out: [JSONValue] = []
            for v in a {
                guard let j = v.json else { return nil }
                out.append(j)
            }
            return .array(out)
        case .object(let o):
            var out = JSONObject()
            for (k, v) in o.pairs {
                guard let j = v.json else { return nil }
                out[k] = j
            }
            return .object(out)
        }
    }
}
