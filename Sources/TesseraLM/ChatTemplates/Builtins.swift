// Jinja's built-in filters and tests, the Python str/dict methods templates
// call (strip, split, startswith, items, get...), and transformers' globals
// (raise_exception, strftime_now, namespace) with its `tojson` (json.dumps
// with ensure_ascii=False, so non-ASCII text stays as it is).

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Tessera

enum Builtins {
    static func pow(_ x: Double, _ y: Double) -> Double {
        #if canImport(Glibc)
            Glibc.pow(x, y)
        #elseif canImport(Musl)
            Musl.pow(x, y)
        #else
            Foundation.pow(x, y)
        #endif
    }

    // MARK: methods

    /// A bound method of a string or dict, by Python name.
    static func method(_ v: Value, _ name: String) -> Function? {
        switch v {
        case .string(let s): return stringMethod(s, name)
        case .object(let o): return dictMethod(o, name)
        default: return nil
        }
    }

    private static func string(_ args: CallArguments, _ i: Int, _ name: String) -> String? {
        if case .string(let s)? = args.argument(i, name) { return s }
        return nil
    }

    static func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let scalars = Array(s.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? c.properties.isWhitespace }
        var lo = 0, hi = scalars.count
        if left { while lo < hi, strippable(scalars[lo]) { lo += 1 } }
        if right { while hi > lo, strippable(scalars[hi - 1]) { hi -= 1 } }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[lo..<hi])
        return String(view)
    }

    static func split(_ s: String, _ sep: String?, maxSplit: Int) -> [String] {
        let scalars = Array(s.unicodeScalars)
        func make(_ slice: ArraySlice<Unicode.Scalar>) -> String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: slice)
            return String(view)
        }
        var out: [String] = []
        guard let sep, !sep.isEmpty else {
            // Runs of whitespace, no empty strings.
            var i = 0
            while i < scalars.count {
                while i < scalars.count, scalars[i].properties.isWhitespace { i += 1 }
                guard i < scalars.count else { break }
                if maxSplit >= 0, out.count == maxSplit {
                    var end = scalars.count
                    while end > i, scalars[end - 1].properties.isWhitespace { end -= 1 }
                    out.append(make(scalars[i..<end]))
                    return out
                }
                let start = i
                while i < scalars.count, !scalars[i].properties.isWhitespace { i += 1 }
                out.append(make(scalars[start..<i]))
            }
            return out
        }
        let pattern = Array(sep.unicodeScalars)
        var start = 0, i = 0
        while i + pattern.count <= scalars.count {
            if maxSplit >= 0, out.count == maxSplit { break }
            if scalars[i..<i + pattern.count].elementsEqual(pattern) {
                out.append(make(scalars[start..<i]))
                i += pattern.count
                start = i
            } else {
                i += 1
            }
        }
        out.append(make(scalars[start...]))
        return out
    }

    /// Static contexts (string methods) have no render's limits: they bound what they build by the defaults.
    static let maxLength = TemplateLimits.standard.maxLength

    static func replace(_ s: String, _ old: String, _ new: String, count: Int, maxLength: Int = maxLength)
        throws(TemplateError) -> String
    {
        if old.isEmpty { return s }
        let parts = split(s, old, maxSplit: count)
        return try RenderBudget.joined(parts, separator: new, maxLength: maxLength)
    }

    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            let cased = c.properties.isCased
            if cased {
                out += previousCased ? String(c).lowercased() : String(c).uppercased()
            } else {
                out.unicodeScalars.append(c)
            }
            previousCased = cased || c.properties.isCaseIgnorable && previousCased
        }
        return out
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + String(s.unicodeScalars.dropFirst()).lowercased()
    }

    private static func stringMethod(_ s: String, _ name: String) -> Function? {
        let f: (@Sendable (CallArguments) throws(TemplateError) -> Value)?
        switch name {
        case "strip", "lstrip", "rstrip":
            f = { args in
                .string(strip(s, string(args, 0, "chars"), left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            f = { args in
                var maxSplit = -1
                if case .int(let m)? = args.argument(1, "maxsplit") { maxSplit = m }
                let sep = string(args, 0, "sep")
                if name == "rsplit", maxSplit >= 0 {
                    // Split from the right: reverse, split, reverse back.
                    let rev = { (x: String) in String(String.UnicodeScalarView(x.unicodeScalars.reversed())) }
                    let parts = split(rev(s), sep.map(rev), maxSplit: maxSplit).map(rev).reversed()
                    return .array(parts.map { .string($0) })
                }
                return .array(split(s, sep, maxSplit: maxSplit).map { .string($0) })
            }
        case "startswith", "endswith":
            f = { args throws(TemplateError) in
                var candidates: [String] = []
                switch args.argument(0, "prefix") {
                case .string(let p)?: candidates = [p]
                case .array(let a)?: candidates = a.compactMap { if case .string(let p) = $0 { p } else { nil } }
                default: throw TemplateError(.runtime, "\(name) needs a string argument")
                }
                let u = Array(s.unicodeScalars)
                return .bool(
                    candidates.contains { p in
                        let pu = Array(p.unicodeScalars)
                        return name == "startswith" ? u.starts(with: pu) : u.reversed().starts(with: pu.reversed())
                    })
            }
        case "upper": f = { _ in .string(s.uppercased()) }
        case "lower": f = { _ in .string(s.lowercased()) }
        case "title": f = { _ in .string(title(s)) }
        case "capitalize": f = { _ in .string(capitalize(s)) }
        case "replace":
            f = { args throws(TemplateError) in
                guard let old = string(args, 0, "old"), let new = string(args, 1, "new") else {
                    throw TemplateError(.runtime, "replace needs two strings")
                }
                var count = -1
                if case .int(let c)? = args.argument(2, "count") { count = c }
                return .string(try replace(s, old, new, count: count))
            }
        case "find":
            f = { args in
                guard let sub = string(args, 0, "sub") else { return .int(-1) }
                let u = Array(s.unicodeScalars), p = Array(sub.unicodeScalars)
                guard p.count <= u.count else { return .int(-1) }
                for i in 0...(u.count - p.count) where u[i..<i + p.count].elementsEqual(p) { return .int(i) }
                return .int(-1)
            }
        case "count":
            f = { args in
                guard let sub = string(args, 0, "sub") else { return .int(0) }
                return .int(split(s, sub, maxSplit: -1).count - 1)
            }
        case "join":
            f = { args throws(TemplateError) in
                guard case .array(let items)? = args.argument(0, "iterable") else { return .string("") }
                return .string(try RenderBudget.joined(items.map(\.str), separator: s, maxLength: maxLength))
            }
        case "isdigit":
            f = { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal }) }
        case "isspace": f = { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(\.properties.isWhitespace)) }
        case "isalpha": f = { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(\.properties.isAlphabetic)) }
        case "islower": f = { _ in .bool(s.lowercased() == s && s.uppercased() != s) }
        case "isupper": f = { _ in .bool(s.uppercased() == s && s.lowercased() != s) }
        case "splitlines":
            f = { _ in
                var lines = split(s, "\n", maxSplit: -1)
                if lines.last == "" { lines.removeLast() }
                return .array(lines.map { .string($0) })
            }
        default: f = nil
        }
        return f.map { Function(name, $0) }
    }

    private static func dictMethod(_ o: Dict, _ name: String) -> Function? {
        switch name {
        case "items": return Function(name) { _ in .array(o.pairs.map { .array([.string($0.0), $0.1]) }) }
        case "keys": return Function(name) { _ in .array(o.keys.map { .string($0) }) }
        case "values": return Function(name) { _ in .array(o.pairs.map(\.1)) }
        case "get":
            return Function(name) { args in
                guard case .string(let k)? = args.argument(0, "key") else {
                    return args.argument(1, "default") ?? .none
                }
                return o[k] ?? args.argument(1, "default") ?? .none
            }
        default: return nil
        }
    }

    // MARK: globals

    static func globals(now: @escaping @Sendable () -> Date) -> [String: Value] {
        var g: [String: Value] = [:]
        g["raise_exception"] = .function(
            Function("raise_exception") { args throws(TemplateError) in
                throw TemplateError(.raised, args.positional.first?.str ?? "raise_exception called")
            })
        g["strftime_now"] = .function(
            Function("strftime_now") { args in
                .string(strftime(args.positional.first?.str ?? "", now()))
            })
        g["namespace"] = .function(
            Function("namespace") { args in
                let ns = Namespace()
                for case .object(let o) in args.positional {
                    for (k, v) in o.pairs { ns.attributes[k] = v }
                }
                for (k, v) in args.keyword { ns.attributes[k] = v }
                return .namespace(ns)
            })
        g["dict"] = .function(
            Function("dict") { args in
                var d = Dict()
                for case .object(let o) in args.positional {
                    for (k, v) in o.pairs { d[k] = v }
                }
                for (k, v) in args.keyword { d[k] = v }
                return .object(d)
            })
        g["range"] = .function(
            Function("range") { args throws(TemplateError) in
                let ints = args.positional.compactMap { if case .int(let i) = $0 { i } else { nil } }
                guard ints.count == args.positional.count, (1...3).contains(ints.count) else {
                    throw TemplateError(.runtime, "range expects 1 to 3 integers")
                }
                let (start, stop, step) =
                    ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
                guard step != 0 else { throw TemplateError(.runtime, "range() arg 3 must not be zero") }
                // In Double: the span of two Ints can overflow Int.
                let span = (Double(stop) - Double(start)) / Double(step)
                guard span <= 1_000_000 else { throw TemplateError(.runtime, "range too large") }
                let n = max(0, Int(span.rounded(.up)))
                return .array((0..<n).map { .int(start + $0 * step) })
            })
        return g
    }

    static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December"
    ]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    /// C-locale strftime for the codes chat templates use, in UTC.
    static func strftime(_ format: String, _ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        var days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = seconds - days * 86400
        let weekday = ((days % 7) + 7 + 3) % 7  // 1970-01-01 was a Thursday (Monday = 0)
        // Civil-from-days (Howard Hinnant).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
        let yday = cumulative[month - 1] + day + (leap && month > 2 ? 1 : 0)
        let hour = secs / 3600, minute = secs % 3600 / 60, second = secs % 60
        func pad(_ v: Int, _ n: Int = 2) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        var out = ""
        var it = format.makeIterator()
        while let c = it.next() {
            guard c == "%", let code = it.next() else { out.append(c); continue }
            switch code {
            case "d": out += pad(day)
            case "m": out += pad(month)
            case "Y": out += String(year)
            case "y": out += pad(year % 100)
            case "b": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "a": out += String(weekdays[weekday].prefix(3))
            case "A": out += weekdays[weekday]
            case "H": out += pad(hour)
            case "I": out += pad(hour % 12 == 0 ? 12 : hour % 12)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "M": out += pad(minute)
            case "S": out += pad(second)
            case "j": out += pad(yday, 3)
            case "e": out += (day < 10 ? " " : "") + String(day)
            case "%": out += "%"
            default: out += "%" + String(code)
            }
        }
        return out
    }

    // MARK: tojson

    /// Python's json.dumps(value, ensure_ascii=False, indent=, separators=, sort_keys=).
    static func toJSON(
        _ v: JSONValue, indent: String?, itemSeparator: String, keySeparator: String,
        sortKeys: Bool, level: Int = 0
    ) -> String {
        func newline(_ l: Int) -> String { indent.map { "\n" + String(repeating: $0, count: l) } ?? "" }
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
            return Value.pythonFloat(d)
        case .string(let s): return jsonString(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            let items = a.map {
                toJSON(
                    $0, indent: indent, itemSeparator: itemSeparator, keySeparator: keySeparator,
                    sortKeys: sortKeys, level: level + 1)
            }
            return "[" + newline(level + 1) + items.joined(separator: itemSeparator + newline(level + 1))
                + newline(level) + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            var keys = o.keys
            if sortKeys { keys.sort { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } }
            let items = keys.map {
                jsonString($0) + keySeparator
                    + toJSON(
                        o[$0]!, indent: indent, itemSeparator: itemSeparator, keySeparator: keySeparator,
                        sortKeys: sortKeys, level: level + 1)
            }
            return "{" + newline(level + 1) + items.joined(separator: itemSeparator + newline(level + 1))
                + newline(level) + "}"
        }
    }

    static func jsonString(_ s: String) -> String { JSONValue.quoted(s) }
}
