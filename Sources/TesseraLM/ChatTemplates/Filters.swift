// Jinja filters (`value | name(args)`) and tests (`value is name(args)`),
// with Jinja2's argument names and defaults.

import Tessera

extension Interpreter {
    func applyFilter(_ name: String, _ v: Value, _ args: CallArguments, _ loc: SourceLocation) throws(TemplateError)
        -> Value
    {
        func fail(_ message: String) -> TemplateError { error(.runtime, "\(name): \(message)", loc) }
        func requireDefined() throws(TemplateError) {
            if case .undefined(let what) = v { throw error(.undefined, "'\(what)' is undefined (filter \(name))", loc) }
        }
        func str(_ i: Int, _ key: String) -> String? {
            if case .string(let s)? = args.argument(i, key) { return s }
            return nil
        }
        func items() throws(TemplateError) -> [Value] { try iterate(v, loc) }

        switch name {
        case "trim":
            return .string(Builtins.strip(v.str, str(0, "chars"), left: true, right: true))
        case "upper": return .string(v.str.uppercased())
        case "lower": return .string(v.str.lowercased())
        case "title": return .string(Builtins.title(v.str))
        case "capitalize": return .string(Builtins.capitalize(v.str))
        case "string": return .string(v.str)
        case "safe":
            return v
        case "escape", "e":
            var out = ""
            for c in v.str {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.append(c)
                }
            }
            return .string(out)
        case "replace":
            guard let old = str(0, "old"), let new = str(1, "new") else { throw fail("needs two strings") }
            var count = -1
            if case .int(let c)? = args.argument(2, "count") { count = c }
            return .string(try Builtins.replace(v.str, old, new, count: count, maxLength: budget.limits.maxLength))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            case .undefined: return .int(0)
            default: throw fail("object of type '\(v.typeName)' has no len()")
            }
        case "tojson":
            guard let json = v.json else { throw fail("object of type '\(v.typeName)' is not JSON serializable") }
            var indent: String? = nil
            switch args.argument(0, "indent") {
            case .int(let n)?:
                try budget.checkRepeat(1, count: n, loc)
                indent = String(repeating: " ", count: max(0, n))
            case .string(let s)?: indent = s
            default: break
            }
            var itemSeparator = indent == nil ? ", " : ",", keySeparator = ": "
            if case .array(let seps)? = args.keyword("separators"), seps.count == 2 {
                itemSeparator = seps[0].str
                keySeparator = seps[1].str
            }
            let sortKeys = args.keyword("sort_keys")?.truthy ?? false
            return .string(
                Builtins.toJSON(
                    json, indent: indent, itemSeparator: itemSeparator,
                    keySeparator: keySeparator, sortKeys: sortKeys))
        case "join":
            let separator = str(0, "d") ?? ""
            var values = try items()
            if let attribute = args.argument(1, "attribute") {
                values = values.map { item($0, attribute) }
            }
            return .string(
                try RenderBudget.joined(values.map(\.str), separator: separator, maxLength: budget.limits.maxLength))
        case "default", "d":
            let fallback = args.argument(0, "default_value") ?? .string("")
            let boolean = args.argument(1, "boolean")?.truthy ?? false
            if v.isUndefined || (boolean && !v.truthy) { return fallback }
            return v
        case "first":
            try requireDefined()
            return try items().first ?? .undefined("first")
        case "last":
            try requireDefined()
            return try items().last ?? .undefined("last")
        case "list":
            return .array(try items())
        case "items":
            switch v {
            case .object(let o): return .array(o.pairs.map { .array([.string($0.0), $0.1]) })
            case .undefined: return .array([])
            default: throw fail("can only get item pairs from a mapping")
            }
        case "reverse":
            if case .string(let s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try items().reversed())
        case "unique":
            var out: [Value] = []
            for x in try items() where !out.contains(where: { Value.equal($0, x) }) { out.append(x) }
            return .array(out)
        case "sort":
            let reverse = args.argument(0, "reverse")?.truthy ?? false
            let attribute = args.argument(2, "attribute")
            var values = try items()
            var failure: TemplateError? = nil
            values.sort { a, b in
                let x = attribute.map { item(a, $0) } ?? a, y = attribute.map { item(b, $0) } ?? b
                guard let lt = Value.less(reverse ? y : x, reverse ? x : y) else {
                    failure = fail("cannot compare '\(x.typeName)' and '\(y.typeName)'")
                    return false
                }
                return lt
            }
            if let failure { throw failure }
            return .array(values)
        case "dictsort":
            guard case .object(let o) = v else { throw fail("expects a mapping") }
            let pairs = o.pairs.sorted { $0.0.lowercased() < $1.0.lowercased() }
            return .array(pairs.map { .array([.string($0.0), $0.1]) })
        case "map":
            let values = try items()
            if let attribute = args.keyword("attribute") {
                let fallback = args.keyword("default")
                return .array(
                    values.map { x in
                        let r = item(x, attribute)
                        return r.isUndefined ? (fallback ?? r) : r
                    })
            }
            guard case .string(let filterName)? = args.positional.first else {
                throw fail("needs a filter name or attribute=")
            }
            let rest = CallArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            var out: [Value] = []
            for x in values { out.append(try applyFilter(filterName, x, rest, loc)) }
            return .array(out)
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            var positional = args.positional
            var attribute: Value? = nil
            if byAttribute {
                guard !positional.isEmpty else { throw fail("needs an attribute name") }
                attribute = positional.removeFirst()
            }
            let testName = positional.first.map(\.str)
            let rest = CallArguments(positional: Array(positional.dropFirst()), keyword: [])
            let keep = name.hasPrefix("select")
            var out: [Value] = []
            for x in try items() {
                let subject = attribute.map { item(x, $0) } ?? x
                let passed =
                    try testName.map { (t) throws(TemplateError) in try applyTest(t, subject, rest, loc) }
                    ?? subject.truthy
                if passed == keep { out.append(x) }
            }
            return .array(out)
        case "int":
            let fallback = args.argument(0, "default") ?? .int(0)
            switch v {
            case .int: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return d.isFinite && abs(d) < 9e18 ? .int(Int(d)) : fallback
            case .string(let s):
                let t = Builtins.strip(s, nil, left: true, right: true).replacingUnderscores
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9e18 { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = args.argument(0, "default") ?? .double(0)
            switch v {
            case .double: return v
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s):
                return Double(Builtins.strip(s, nil, left: true, right: true)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "abs":
            switch v {
            case .int(let i): return i == .min ? .double(-Double(i)) : .int(abs(i))
            case .double(let d): return .double(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw fail("bad operand type '\(v.typeName)'")
            }
        case "round":
            guard let x = v.number else { throw fail("expects a number") }
            var precision = 0
            if case .int(let p)? = args.argument(0, "precision") { precision = p }
            let method = str(1, "method") ?? "common"
            let scale = Builtins.pow(10, Double(precision))
            let scaled = x * scale
            let rounded: Double
            switch method {
            case "ceil": rounded = scaled.rounded(.up)
            case "floor": rounded = scaled.rounded(.down)
            default: rounded = scaled.rounded(.toNearestOrAwayFromZero)
            }
            return .double(rounded / scale)
        case "sum":
            var total = args.argument(1, "start") ?? .int(0)
            let attribute = args.argument(0, "attribute")
            for x in try items() {
                let term = attribute.map { item(x, $0) } ?? x
                switch (total, term) {
                case (.int(let a), .int(let b)):
                    let (r, o) = a.addingReportingOverflow(b)
                    if o { throw fail("integer overflow") }
                    total = .int(r)
                default:
                    guard let a = total.number, let b = term.number else { throw fail("can only sum numbers") }
                    total = .double(a + b)
                }
            }
            return total
        case "min", "max":
            let values = try items()
            guard var best = values.first else { return .undefined(name) }
            for x in values.dropFirst() {
                guard let lt = Value.less(x, best) else { throw fail("cannot compare '\(x.typeName)'") }
                if name == "min" ? lt : (!lt && !Value.equal(x, best)) { best = x }
            }
            return best
        case "indent":
            var width = "    "
            switch args.argument(0, "width") {
            case .int(let n)?:
                try budget.checkRepeat(1, count: n, loc)
                width = String(repeating: " ", count: max(0, n))
            case .string(let s)?: width = s
            default: break
            }
            let first = args.argument(1, "first")?.truthy ?? false
            let blank = args.argument(2, "blank")?.truthy ?? false
            let lines = Builtins.split(v.str, "\n", maxSplit: -1)
            var out: [String] = []
            for (i, line) in lines.enumerated() {
                if i == 0 && !first { out.append(line); continue }
                out.append(line.isEmpty && !blank ? line : width + line)
            }
            return .string(out.joined(separator: "\n"))
        case "wordcount":
            return .int(Builtins.split(v.str, nil, maxSplit: -1).count)
        case "batch":
            guard case .int(let size)? = args.argument(0, "linecount"), size > 0 else {
                throw fail("needs a positive size")
            }
            let values = try items()
            return .array(
                stride(from: 0, to: values.count, by: size).map {
                    .array(Array(values[$0..<min($0 + size, values.count)]))
                })
        default:
            throw error(.undefined, "no filter named '\(name)'", loc)
        }
    }

    func applyTest(_ name: String, _ v: Value, _ args: CallArguments, _ loc: SourceLocation) throws(TemplateError)
        -> Bool
    {
        let other = args.argument(0, "other") ?? .undefined("other")
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": if case .none = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number": if case .int = v { return true }; if case .double = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "mapping": if case .object = v { return true }; return false
        case "callable": if case .function = v { return true }; return false
        case "sequence":
            switch v {
            case .string, .array, .object: return true
            default: return false
            }
        case "iterable":
            switch v {
            case .string, .array, .object, .undefined: return true
            default: return false
            }
        case "odd", "even":
            guard case .int(let i) = v else { throw error(.runtime, "test \(name) expects an integer", loc) }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i) = v, case .int(let n) = other, n != 0 else {
                throw error(.runtime, "test divisibleby expects integers", loc)
            }
            return i % n == 0
        case "eq", "equalto", "==": return Value.equal(v, other)
        case "ne", "!=": return !Value.equal(v, other)
        case "lt", "lessthan", "<", "gt", "greaterthan", ">", "le", "<=", "ge", ">=":
            guard let lt = Value.less(v, other), let gt = Value.less(other, v) else {
                throw error(.runtime, "test \(name): cannot compare '\(v.typeName)' and '\(other.typeName)'", loc)
            }
            switch name {
            case "lt", "lessthan", "<": return lt
            case "gt", "greaterthan", ">": return gt
            case "le", "<=": return !gt
            default: return !lt
            }
        case "in": return try contains(other, v, loc)
        case "sameas":
            switch (v, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "lower": return v.str.lowercased() == v.str
        case "upper": return v.str.uppercased() == v.str
        case "escaped": return false
        default:
            throw error(.undefined, "no test named '\(name)'", loc)
        }
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
