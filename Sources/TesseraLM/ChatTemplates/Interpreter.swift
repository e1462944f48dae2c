// Renders parsed templates: statements write into a String, expressions
// evaluate to Values. Scoping follows Jinja2: `for` bodies get a fresh scope
// per iteration, `if` does not create one, macros see the template's
// top-level scope plus their parameters, namespaces are shared references.

import Tessera

final class Interpreter: @unchecked Sendable {
    // One render owns one Interpreter; Function closures capture it.
    private var scopes: [[String: Value]]
    private let globals: [String: Value]
    /// Macro call depth (Python would hit its recursion limit).
    private var callDepth = 0
    let budget: RenderBudget

    private enum Flow { case normal, breakLoop, continueLoop }

    init(context: [String: Value], globals: [String: Value], limits: TemplateLimits = .standard) {
        self.scopes = [context]
        self.globals = globals
        self.budget = RenderBudget(limits)
    }

    func render(_ nodes: [Node]) throws(TemplateError) -> String {
        var out = ""
        if try render(nodes, into: &out) != .normal {
            throw TemplateError(.syntax, "break or continue outside a loop")
        }
        return out
    }

    // MARK: statements

    private func render(_ nodes: [Node], into out: inout String) throws(TemplateError) -> Flow {
        for node in nodes {
            try budget.step()
            switch node {
            case .text(let s):
                out += s
            case .output(let e):
                out += try bounded(try eval(e), nil).str
            case .ifChain(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches where try eval(condition).truthy {
                    taken = true
                    let flow = try render(body, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try render(otherwise, into: &out)
                    if flow != .normal { return flow }
                }
            case .forLoop(let loop):
                try renderFor(loop, into: &out)
            case .set(let target, let e, let loc):
                try assign(target, try eval(e), loc)
            case .setBlock(let target, let body, let filters, let loc):
                var captured = ""
                _ = try render(body, into: &captured)
                var value = Value.string(captured)
                for (name, args, floc) in filters {
                    value = try applyFilter(name, value, try evalArguments(args), floc)
                }
                try assign(target, value, loc)
            case .macro(let m):
                scopes[scopes.count - 1][m.name] = .function(makeMacro(m))
            case .callBlock(let call, let parameters, let body, let loc):
                guard case .call(let callee, let args, _) = call else { break }
                let caller = makeMacro(.init(name: "caller", parameters: parameters, body: body), closure: scopes)
                var arguments = try evalArguments(args)
                arguments.keyword.append(("caller", .function(caller)))
                out += try callValue(try eval(callee), arguments, loc).str
            case .filterBlock(let filters, let body):
                var captured = ""
                _ = try render(body, into: &captured)
                var value = Value.string(captured)
                for (name, args, loc) in filters {
                    value = try applyFilter(name, value, try evalArguments(args), loc)
                }
                out += value.str
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
            try budget.checkLength(out)
        }
        return .normal
    }

    private func renderFor(_ loop: Node.ForLoop, into out: inout String) throws(TemplateError) {
        var items = try iterate(try eval(loop.iterable), loop.location)
        if let condition = loop.condition {
            var kept: [Value] = []
            for item in items {
                try budget.iteration(loop.location)
                scopes.append([:])
                defer { scopes.removeLast() }
                try assign(loop.target, item, loop.location)
                if try eval(condition).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try render(loop.otherwise, into: &out)
            return
        }
        let n = items.count
        for (i, item) in items.enumerated() {
            try budget.iteration(loop.location)
            var info = Dict()
            info["index"] = .int(i + 1)
            info["index0"] = .int(i)
            info["revindex"] = .int(n - i)
            info["revindex0"] = .int(n - i - 1)
            info["first"] = .bool(i == 0)
            info["last"] = .bool(i == n - 1)
            info["length"] = .int(n)
            info["depth"] = .int(1)
            info["depth0"] = .int(0)
            info["previtem"] = i > 0 ? items[i - 1] : .undefined("previtem")
            info["nextitem"] = i + 1 < n ? items[i + 1] : .undefined("nextitem")
            info["cycle"] = .function(
                Function("cycle") { args throws(TemplateError) in
                    guard !args.positional.isEmpty else { throw TemplateError(.runtime, "no items for cycling given") }
                    return args.positional[i % args.positional.count]
                })
            scopes.append(["loop": .object(info)])
            defer { scopes.removeLast() }
            try assign(loop.target, item, loop.location)
            if try render(loop.body, into: &out) == .breakLoop { break }
        }
    }

    func iterate(_ v: Value, _ loc: SourceLocation) throws(TemplateError) -> [Value] {
        switch v {
        case .array(let a): return a
        case .object(let o): return o.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw error(.runtime, "'\(v.typeName)' object is not iterable", loc)
        }
    }

    private func assign(_ target: Target, _ value: Value, _ loc: SourceLocation) throws(TemplateError) {
        switch target {
        case .name(let n):
            scopes[scopes.count - 1][n] = value
        case .tuple(let targets):
            let items = try iterate(value, loc)
            guard items.count == targets.count else {
                throw error(.runtime, "cannot unpack \(items.count) values into \(targets.count) names", loc)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, loc) }
        case .attribute(let name, let attr):
            guard case .namespace(let ns) = lookup(name) else {
                throw error(.runtime, "cannot assign attribute on non-namespace object '\(name)'", loc)
            }
            ns.attributes[attr] = value
        }
    }

    private func lookup(_ name: String) -> Value {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        return globals[name] ?? .undefined(name)
    }

    private func makeMacro(_ m: Node.Macro, closure: [[String: Value]]? = nil) -> Function {
        Function(m.name) { [unowned self] args throws(TemplateError) in
            var frame: [String: Value] = [:]
            var extra: [Value] = []
            for (i, v) in args.positional.enumerated() {
                if i < m.parameters.count { frame[m.parameters[i].0] = v } else { extra.append(v) }
            }
            var kwargs = Dict()
            for (k, v) in args.keyword {
                if m.parameters.contains(where: { $0.0 == k }) || k == "caller" { frame[k] = v } else { kwargs[k] = v }
            }
            let maxDepth = self.budget.limits.maxCallDepth
            guard self.callDepth < maxDepth else {
                throw TemplateError(.limit, "macro \(m.name) recursed deeper than \(maxDepth)")
            }
            let saved = self.scopes
            self.scopes = (closure ?? [saved[0]]) + [frame]
            self.callDepth += 1
            defer {
                self.scopes = saved
                self.callDepth -= 1
            }
            for (name, defaultValue) in m.parameters where self.scopes[self.scopes.count - 1][name] == nil {
                self.scopes[self.scopes.count - 1][name] =
                    try defaultValue.map { (e) throws(TemplateError) in try self.eval(e) } ?? .undefined(name)
            }
            self.scopes[self.scopes.count - 1]["varargs"] = .array(extra)
            self.scopes[self.scopes.count - 1]["kwargs"] = .object(kwargs)
            var out = ""
            _ = try self.render(m.body, into: &out)
            return .string(out)
        }
    }

    // MARK: expressions

    func error(_ kind: TemplateError.Kind, _ message: String, _ loc: SourceLocation) -> TemplateError {
        TemplateError(kind, message, line: loc.line, column: loc.column)
    }

    func eval(_ e: Expr) throws(TemplateError) -> Value {
        try budget.step()
        switch e {
        case .literal(let v):
            return v
        case .name(let n, _):
            return lookup(n)
        case .list(let items), .tuple(let items):
            var out: [Value] = []
            for item in items { out.append(try eval(item)) }
            return try bounded(.array(out), nil)
        case .dict(let pairs):
            var d = Dict()
            for (k, v) in pairs { d[try bounded(try eval(k), nil).str] = try eval(v) }
            return try bounded(.object(d), nil)
        case .attribute(let base, let name, let loc):
            let v = try eval(base)
            if case .undefined(let what) = v {
                throw error(.undefined, "'\(what)' is undefined (reading attribute '\(name)')", loc)
            }
            return attribute(v, name, preferMethods: true)
        case .item(let base, let index, let loc):
            let v = try eval(base)
            let i = try eval(index)
            if case .undefined(let what) = v {
                throw error(.undefined, "'\(what)' is undefined (reading item \(i.repr))", loc)
            }
            return item(v, i)
        case .slice(let base, let start, let stop, let step, let loc):
            let v = try eval(base)
            return try slice(
                v, try start.map { (x) throws(TemplateError) in try eval(x) },
                try stop.map { (x) throws(TemplateError) in try eval(x) },
                try step.map { (x) throws(TemplateError) in try eval(x) }, loc)
        case .call(let callee, let args, let loc):
            let f = try eval(callee)
            return try bounded(try callValue(f, try evalArguments(args), loc), loc)
        case .filter(let base, let name, let args, let loc):
            return try bounded(
                try applyFilter(name, try bounded(try eval(base), loc), try evalArguments(args), loc), loc)
        case .test(let base, let name, let args, let negated, let loc):
            let result = try applyTest(name, try eval(base), try evalArguments(args), loc)
            return .bool(result != negated)
        case .not(let x):
            return .bool(!(try eval(x).truthy))
        case .negate(let x, let loc):
            switch try eval(x) {
            case .int(let i): return .int(0 &- i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            case let v: throw error(.runtime, "bad operand type for unary -: '\(v.typeName)'", loc)
            }
        case .and(let a, let b):
            let x = try eval(a)
            return x.truthy ? try eval(b) : x
        case .or(let a, let b):
            let x = try eval(a)
            return x.truthy ? x : try eval(b)
        case .binary(let op, let a, let b, let loc):
            return try bounded(try binary(op, try bounded(try eval(a), loc), try bounded(try eval(b), loc), loc), loc)
        case .compare(let first, let ops, let loc):
            var left = try eval(first)
            for (op, rightExpr) in ops {
                let right = try eval(rightExpr)
                guard try compare(op, left, right, loc) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if try eval(test).truthy { return try eval(then) }
            return try otherwise.map { (x) throws(TemplateError) in try eval(x) } ?? .undefined("conditional")
        }
    }

    /// `value`, once it is known to be no longer than the limits allow.
    private func bounded(_ value: Value, _ loc: SourceLocation?) throws(TemplateError) -> Value {
        try budget.checkLength(value, loc)
        return value
    }

    func evalArguments(_ args: Expr.Arguments) throws(TemplateError) -> CallArguments {
        var out = CallArguments()
        // Bounded, so that no callee prints a value that grew (or loops through a namespace) past the limits.
        for p in args.positional { out.positional.append(try bounded(try eval(p), nil)) }
        for (k, v) in args.keyword { out.keyword.append((k, try bounded(try eval(v), nil))) }
        return out
    }

    func callValue(_ f: Value, _ args: CallArguments, _ loc: SourceLocation) throws(TemplateError) -> Value {
        switch f {
        case .function(let fn):
            do {
                return try fn.body(args)
            } catch {
                // Attach the call's position to errors raised without one.
                guard error.line == 0 else { throw error }
                throw TemplateError(error.kind, error.message, line: loc.line, column: loc.column)
            }
        case .undefined(let name):
            throw self.error(.undefined, "'\(name)' is undefined", loc)
        default:
            throw self.error(.runtime, "'\(f.typeName)' object is not callable", loc)
        }
    }

    func attribute(_ v: Value, _ name: String, preferMethods: Bool) -> Value {
        if preferMethods, let m = Builtins.method(v, name) { return .function(m) }
        switch v {
        case .object(let o):
            if let x = o[name] { return x }
        case .namespace(let ns):
            if let x = ns.attributes[name] { return x }
        default:
            break
        }
        if !preferMethods, let m = Builtins.method(v, name) { return .function(m) }
        return .undefined(name)
    }

    func item(_ v: Value, _ index: Value) -> Value {
        switch (v, index) {
        case (.object, .string(let k)):
            return attribute(v, k, preferMethods: false)
        case (.array(let a), .int(let i)):
            let j = i < 0 ? a.count + i : i
            return a.indices.contains(j) ? a[j] : .undefined("[\(i)]")
        case (.string(let s), .int(let i)):
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined("[\(i)]")
        case (.namespace, .string(let k)):
            return attribute(v, k, preferMethods: false)
        default:
            return .undefined(index.str)
        }
    }

    private func slice(_ v: Value, _ start: Value?, _ stop: Value?, _ step: Value?, _ loc: SourceLocation)
        throws(TemplateError) -> Value
    {
        func int(_ x: Value?) throws(TemplateError) -> Int? {
            switch x {
            case nil, .none?: return nil
            case .int(let i)?: return i
            case let other?: throw error(.runtime, "slice indices must be integers, not \(other.typeName)", loc)
            }
        }
        let st = try int(step) ?? 1
        guard st != 0 else { throw error(.runtime, "slice step cannot be zero", loc) }
        func indices(_ count: Int) throws(TemplateError) -> [Int] {
            func clamp(_ i: Int?, _ def: Int, lower: Int, upper: Int) -> Int {
                guard var i else { return def }
                if i < 0 { i += count }
                return min(max(i, lower), upper)
            }
            var out: [Int] = []
            if st > 0 {
                var i = clamp(try int(start), 0, lower: 0, upper: count)
                let end = clamp(try int(stop), count, lower: 0, upper: count)
                while i < end {
                    out.append(i)
                    let (next, overflow) = i.addingReportingOverflow(st)
                    if overflow { break }
                    i = next
                }
            } else {
                var i = clamp(try int(start), count - 1, lower: -1, upper: count - 1)
                let end = clamp(try int(stop), -1, lower: -1, upper: count - 1)
                while i > end {
                    out.append(i)
                    let (next, overflow) = i.addingReportingOverflow(st)
                    if overflow { break }
                    i = next
                }
            }
            return out
        }
        switch v {
        case .array(let a):
            return .array(try indices(a.count).map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var view = String.UnicodeScalarView()
            for i in try indices(scalars.count) { view.append(scalars[i]) }
            return .string(String(view))
        case .undefined(let what):
            throw error(.undefined, "'\(what)' is undefined", loc)
        default:
            throw error(.runtime, "'\(v.typeName)' object is not subscriptable", loc)
        }
    }

    private func binary(_ op: String, _ a: Value, _ b: Value, _ loc: SourceLocation) throws(TemplateError) -> Value {
        if op == "~" { return .string(a.str + b.str) }
        for v in [a, b] {
            if case .undefined(let what) = v { throw error(.undefined, "'\(what)' is undefined", loc) }
        }
        func overflow() -> TemplateError { error(.runtime, "integer overflow in \(op)", loc) }
        func typeError() -> TemplateError {
            error(.runtime, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'", loc)
        }
        let ints: (Int, Int)? = {
            switch (a, b) {
            case (.int(let x), .int(let y)): return (x, y)
            case (.int(let x), .bool(let y)): return (x, y ? 1 : 0)
            case (.bool(let x), .int(let y)): return (x ? 1 : 0, y)
            case (.bool(let x), .bool(let y)): return (x ? 1 : 0, y ? 1 : 0)
            default: return nil
            }
        }()
        switch op {
        case "+":
            if let (x, y) = ints {
                let (r, o) = x.addingReportingOverflow(y)
                if o { throw overflow() }
                return .int(r)
            }
            if case .string(let x) = a, case .string(let y) = b { return .string(x + y) }
            if case .array(let x) = a, case .array(let y) = b { return .array(x + y) }
            if let x = a.number, let y = b.number { return .double(x + y) }
            throw typeError()
        case "-":
            if let (x, y) = ints {
                let (r, o) = x.subtractingReportingOverflow(y)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x - y) }
            throw typeError()
        case "*":
            if let (x, y) = ints {
                let (r, o) = x.multipliedReportingOverflow(by: y)
                if o { throw overflow() }
                return .int(r)
            }
            switch (a, b) {
            case (.string(let s), .int(let n)), (.int(let n), .string(let s)):
                try budget.checkRepeat(s.utf8.count, count: n, loc)
                return .string(String(repeating: s, count: max(0, n)))
            case (.array(let s), .int(let n)), (.int(let n), .array(let s)):
                try budget.checkRepeat(s.count, count: n, loc)
                return .array(Array([[Value]](repeating: s, count: max(0, n)).joined()))
            default:
                if let x = a.number, let y = b.number { return .double(x * y) }
                throw typeError()
            }
        case "/":
            guard let x = a.number, let y = b.number else { throw typeError() }
            guard y != 0 else { throw error(.runtime, "division by zero", loc) }
            return .double(x / y)
        case "//", "%":
            if let (x, y) = ints {
                guard y != 0 else { throw error(.runtime, "integer division or modulo by zero", loc) }
                if x == .min && y == -1 { throw overflow() }
                var q = x / y, r = x % y
                if r != 0, (r < 0) != (y < 0) { q -= 1; r += y }  // Python floors
                return .int(op == "//" ? q : r)
            }
            guard let x = a.number, let y = b.number else { throw typeError() }
            guard y != 0 else { throw error(.runtime, "float division or modulo by zero", loc) }
            let q = (x / y).rounded(.down)
            return .double(op == "//" ? q : x - q * y)
        case "**":
            if let (x, y) = ints, y >= 0 {
                // Square-and-multiply with overflow checks (Python has big ints; we throw).
                var result = 1, base = x, n = y
                while n > 0 {
                    if n & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    n >>= 1
                    if n > 0 {
                        let (b2, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = b2
                    }
                }
                return .int(result)
            }
            guard let x = a.number, let y = b.number else { throw typeError() }
            return .double(Builtins.pow(x, y))
        default:
            throw error(.syntax, "unknown operator \(op)", loc)
        }
    }

    private func compare(_ op: String, _ a: Value, _ b: Value, _ loc: SourceLocation) throws(TemplateError) -> Bool {
        switch op {
        case "==": return Value.equal(a, b)
        case "!=": return !Value.equal(a, b)
        case "in": return try contains(b, a, loc)
        case "notin": return !(try contains(b, a, loc))
        default:
            let lt: Bool?, gt: Bool?
            lt = Value.less(a, b)
            gt = Value.less(b, a)
            guard let lt, let gt else {
                throw error(.runtime, "'\(op)' not supported between '\(a.typeName)' and '\(b.typeName)'", loc)
            }
            switch op {
            case "<": return lt
            case ">": return gt
            case "<=": return !gt
            default: return !lt
            }
        }
    }

    func contains(_ container: Value, _ item: Value, _ loc: SourceLocation) throws(TemplateError) -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                throw error(.runtime, "'in <string>' requires string as left operand, not \(item.typeName)", loc)
            }
            return sub.isEmpty || s.unicodeScalars.firstRange(of: sub.unicodeScalars) != nil
        case .array(let a):
            return a.contains { Value.equal($0, item) }
        case .object(let o):
            guard case .string(let k) = item else { return false }
            return o[k] != nil
        case .undefined:
            return false
        default:
            throw error(.runtime, "argument of type '\(container.typeName)' is not iterable", loc)
        }
    }
}
