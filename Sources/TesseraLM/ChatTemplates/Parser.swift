// Jinja parser: tokens -> Node/Expr trees, with Jinja2's precedence:
//   a if c else b  <  or  <  and  <  not  <  comparisons, in, not in
//   <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  postfix (. [] ())
//   and filters/tests (| and is), which bind to the unary operand.

import Tessera

struct Parser {
    private let tokens: [Token]
    private var index = 0
    /// Expression nesting depth: hostile templates throw instead of
    /// overflowing the stack.
    private var depth = 0
    private static let maxDepth = 200

    static func parse(_ tokens: [Token]) throws(TemplateError) -> [Node] {
        var parser = Parser(tokens: tokens)
        let (nodes, end) = try parser.parseNodes(until: [])
        if let end { throw parser.error("unexpected '\(end)'", parser.tokens[max(0, parser.index - 1)].location) }
        return nodes
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    // MARK: token helpers

    private var current: Token { tokens[index] }
    private var location: SourceLocation { current.location }

    private func error(_ message: String, _ loc: SourceLocation? = nil) -> TemplateError {
        let l = loc ?? location
        return TemplateError(.syntax, message, line: l.line, column: l.column)
    }

    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func isOp(_ op: String) -> Bool {
        if case .op(op) = current.kind { return true }
        return false
    }

    private func isName(_ name: String) -> Bool {
        if case .name(name) = current.kind { return true }
        return false
    }

    private func peekName(_ offset: Int) -> String? {
        guard index + offset < tokens.count, case .name(let n) = tokens[index + offset].kind else { return nil }
        return n
    }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { _ = advance(); return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws(TemplateError) {
        guard skipOp(op) else { throw error("expected '\(op)', got \(describe(current))") }
    }

    private mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, got \(describe(current))") }
        _ = advance()
        return n
    }

    private mutating func expectBlockEnd() throws(TemplateError) {
        guard case .blockEnd = current.kind else { throw error("expected '%}', got \(describe(current))") }
        _ = advance()
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .data: "text"
        case .variableBegin: "'{{'"
        case .variableEnd: "'}}'"
        case .blockBegin: "'{%'"
        case .blockEnd: "'%}'"
        case .name(let n): "'\(n)'"
        case .string(let s): "string '\(s)'"
        case .integer(let i): "\(i)"
        case .float(let d): "\(d)"
        case .op(let o): "'\(o)'"
        case .eof: "end of template"
        }
    }

    // MARK: statements

    /// Parses nodes until a `{% name %}` with name in `ends` (returned, with
    /// the tag's name consumed) or the end of the template (nil).
    private mutating func parseNodes(until ends: Set<String>) throws(TemplateError) -> ([Node], String?) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("blocks nested deeper than \(Self.maxDepth)") }
        var nodes: [Node] = []
        while true {
            switch current.kind {
            case .eof:
                if !ends.isEmpty {
                    throw error(
                        "unexpected end of template, expected \(ends.sorted().map { "'\($0)'" }.joined(separator: " or "))"
                    )
                }
                return (nodes, nil)
            case .data(let s):
                _ = advance()
                nodes.append(.text(s))
            case .variableBegin:
                _ = advance()
                let e = try parseTuple()
                guard case .variableEnd = current.kind else { throw error("expected '}}', got \(describe(current))") }
                _ = advance()
                nodes.append(.output(e))
            case .blockBegin:
                let begin = advance()
                guard case .name(let tag) = current.kind else { throw error("expected a statement name") }
                if ends.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                nodes.append(contentsOf: try parseStatement(tag, at: begin.location))
            default:
                throw error("unexpected \(describe(current))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, at loc: SourceLocation) throws(TemplateError) -> [Node] {
        _ = advance()
        switch tag {
        case "if":
            var branches: [(Expr, [Node])] = []
            var condition = try parseExpression()
            try expectBlockEnd()
            while true {
                let (body, end) = try parseNodes(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                if end == "elif" {
                    condition = try parseExpression()
                    try expectBlockEnd()
                    continue
                }
                if end == "else" {
                    try expectBlockEnd()
                    let (otherwise, _) = try parseNodes(until: ["endif"])
                    try expectBlockEnd()
                    return [.ifChain(branches, otherwise: otherwise)]
                }
                try expectBlockEnd()
                return [.ifChain(branches, otherwise: [])]
            }
        case "for":
            let target = try parseTarget(allowAttribute: false)
            guard skipName("in") else { throw error("expected 'in' in for loop") }
            let iterable = try parseTuple(allowConditional: false)
            var condition: Expr? = nil
            if skipName("if") { condition = try parseExpression() }
            let recursive = skipName("recursive")
            try expectBlockEnd()
            let (body, end) = try parseNodes(until: ["else", "endfor"])
            var otherwise: [Node] = []
            try expectBlockEnd()
            if end == "else" {
                (otherwise, _) = try parseNodes(until: ["endfor"])
                try expectBlockEnd()
            }
            return [
                .forLoop(
                    .init(
                        target: target, iterable: iterable, condition: condition, body: body,
                        otherwise: otherwise, recursive: recursive, location: loc))
            ]
        case "set":
            let target = try parseTarget(allowAttribute: true)
            if skipOp("=") {
                let value = try parseTuple()
                try expectBlockEnd()
                return [.set(target, value, loc)]
            }
            var filters: [(String, Expr.Arguments, SourceLocation)] = []
            while skipOp("|") { filters.append(try parseFilterCall()) }
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endset"])
            try expectBlockEnd()
            return [.setBlock(target, body, filters: filters, loc)]
        case "macro":
            let name = try expectName()
            let parameters = try parseParameters()
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endmacro"])
            if case .name = current.kind { _ = advance() }  // {% endmacro name %}
            try expectBlockEnd()
            return [.macro(.init(name: name, parameters: parameters, body: body))]
        case "call":
            let parameters = isOp("(") ? try parseParameters() : []
            let call = try parseExpression()
            guard case .call = call else { throw error("expected a macro call after 'call'", loc) }
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endcall"])
            try expectBlockEnd()
            return [.callBlock(call: call, parameters: parameters, body: body, loc)]
        case "filter":
            var filters = [try parseFilterCall()]
            while skipOp("|") { filters.append(try parseFilterCall()) }
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endfilter"])
            try expectBlockEnd()
            return [.filterBlock(filters, body)]
        case "break":
            try expectBlockEnd()
            return [.breakLoop(loc)]
        case "continue":
            try expectBlockEnd()
            return [.continueLoop(loc)]
        case "generation":
            // transformers' AssistantTracker extension: renders its body.
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endgeneration"])
            try expectBlockEnd()
            return body
        case "do":
            let e = try parseTuple()
            try expectBlockEnd()
            return [.set(.name("_"), e, loc)]
        default:
            throw error("unknown or unsupported statement '\(tag)'", loc)
        }
    }

    private mutating func parseTarget(allowAttribute: Bool) throws(TemplateError) -> Target {
        var targets: [Target] = []
        repeat {
            if skipOp("(") {
                targets.append(try parseTarget(allowAttribute: false))
                try expectOp(")")
                continue
            }
            let name = try expectName()
            if allowAttribute, skipOp(".") {
                targets.append(.attribute(name, try expectName()))
            } else {
                targets.append(.name(name))
            }
        } while skipOp(",")
        return targets.count == 1 ? targets[0] : .tuple(targets)
    }

    private mutating func parseParameters() throws(TemplateError) -> [(String, Expr?)] {
        try expectOp("(")
        var parameters: [(String, Expr?)] = []
        while !isOp(")") {
            let name = try expectName()
            parameters.append((name, skipOp("=") ? try parseExpression() : nil))
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return parameters
    }

    private mutating func parseFilterCall() throws(TemplateError) -> (String, Expr.Arguments, SourceLocation) {
        let loc = location
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        let args = isOp("(") ? try parseArguments() : Expr.Arguments()
        return (name, args, loc)
    }

    // MARK: expressions

    /// An expression, or a tuple when commas follow (`{{ a, b }}`, `set a = 1, 2`).
    private mutating func parseTuple(allowConditional: Bool = true) throws(TemplateError) -> Expr {
        let first = allowConditional ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if case .blockEnd = current.kind { break }
            if case .variableEnd = current.kind { break }
            if isName("if") || isName("recursive") { break }
            items.append(allowConditional ? try parseExpression() : try parseOr())
        }
        return .tuple(items)
    }

    private mutating func parseExpression() throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("expression nested deeper than \(Self.maxDepth)") }
        var e = try parseOr()
        while skipName("if") {
            let test = try parseOr()
            let otherwise = skipName("else") ? try parseExpression() : nil
            e = .conditional(test: test, then: e, otherwise: otherwise)
        }
        return e
    }

    private mutating func parseOr() throws(TemplateError) -> Expr {
        var e = try parseAnd()
        while skipName("or") { e = .or(e, try parseAnd()) }
        return e
    }

    private mutating func parseAnd() throws(TemplateError) -> Expr {
        var e = try parseNot()
        while skipName("and") { e = .and(e, try parseNot()) }
        return e
    }

    private mutating func parseNot() throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("expression nested deeper than \(Self.maxDepth)") }
        if skipName("not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(TemplateError) -> Expr {
        let loc = location
        let first = try parseMath1()
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                _ = advance()
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not"), peekName(1) == "in" {
                _ = advance()
                _ = advance()
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, loc)
    }

    private mutating func parseMath1() throws(TemplateError) -> Expr {
        var e = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let loc = advance().location
            e = .binary(o, e, try parseConcat(), loc)
        }
        return e
    }

    private mutating func parseConcat() throws(TemplateError) -> Expr {
        var e = try parseMath2()
        while isOp("~") {
            let loc = advance().location
            e = .binary("~", e, try parseMath2(), loc)
        }
        return e
    }

    private mutating func parseMath2() throws(TemplateError) -> Expr {
        var e = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let loc = advance().location
            e = .binary(o, e, try parsePow(), loc)
        }
        return e
    }

    private mutating func parsePow() throws(TemplateError) -> Expr {
        var e = try parseUnary()
        while isOp("**") {
            let loc = advance().location
            e = .binary("**", e, try parseUnary(), loc)
        }
        return e
    }

    private mutating func parseUnary(withFilters: Bool = true) throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("expression nested deeper than \(Self.maxDepth)") }
        var e: Expr
        let start = location
        if isOp("-") {
            let loc = advance().location
            e = .negate(try parseUnary(withFilters: false), loc)
        } else if isOp("+") {
            _ = advance()
            e = try parseUnary(withFilters: false)
        } else {
            e = try parsePrimary()
        }
        e = try parsePostfix(e, start: start)
        if withFilters { e = try parseFilters(e) }
        return e
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expr {
        let token = current
        switch token.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, token.location)
            }
        case .string(var s):
            _ = advance()
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return .literal(.string(s))
        case .integer(let i):
            _ = advance()
            return .literal(.int(i))
        case .float(let d):
            _ = advance()
            return .literal(.double(d))
        case .op("("):
            _ = advance()
            if skipOp(")") { return .tuple([]) }
            let e = try parseTuple()
            try expectOp(")")
            return e
        case .op("["):
            _ = advance()
            var items: [Expr] = []
            while !isOp("]") {
                items.append(try parseExpression())
                if !skipOp(",") { break }
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            _ = advance()
            var pairs: [(Expr, Expr)] = []
            while !isOp("}") {
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
                if !skipOp(",") { break }
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw error("unexpected \(describe(token))")
        }
    }

    /// `.name`, `[subscript]` and calls; calls report `start` (the callee's
    /// first token) as their position.
    private mutating func parsePostfix(_ base: Expr, start: SourceLocation? = nil) throws(TemplateError) -> Expr {
        var e = base
        while true {
            let loc = location
            if skipOp(".") {
                switch current.kind {
                case .name(let n):
                    _ = advance()
                    e = .attribute(e, n, loc)
                case .integer(let i):
                    _ = advance()
                    e = .item(e, .literal(.int(i)), loc)
                default:
                    throw error("expected an attribute name after '.'")
                }
            } else if skipOp("[") {
                e = try parseSubscript(e, loc)
            } else if isOp("(") {
                e = .call(e, try parseArguments(), start ?? loc)
            } else {
                return e
            }
        }
    }

    private mutating func parseSubscript(_ base: Expr, _ loc: SourceLocation) throws(TemplateError) -> Expr {
        var parts: [Expr?] = [nil]
        var isSlice = false
        while !isOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(nil)
                continue
            }
            parts[parts.count - 1] = try parseExpression()
            if !isOp(":") && !isOp("]") { throw error("expected ':' or ']' in subscript") }
        }
        try expectOp("]")
        if !isSlice {
            guard let index = parts[0] else { throw error("empty subscript", loc) }
            return .item(base, index, loc)
        }
        guard parts.count <= 3 else { throw error("too many ':' in slice", loc) }
        return .slice(
            base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
            step: parts.count > 2 ? parts[2] : nil, loc)
    }

    private mutating func parseArguments() throws(TemplateError) -> Expr.Arguments {
        try expectOp("(")
        var args = Expr.Arguments()
        while !isOp(")") {
            if case .name(let n) = current.kind, index + 1 < tokens.count, case .op("=") = tokens[index + 1].kind {
                _ = advance()
                _ = advance()
                args.keyword.append((n, try parseExpression()))
            } else {
                guard args.keyword.isEmpty else { throw error("positional argument after keyword argument") }
                args.positional.append(try parseExpression())
            }
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilters(_ base: Expr) throws(TemplateError) -> Expr {
        var e = base
        while true {
            if isOp("|") {
                _ = advance()
                let (name, args, loc) = try parseFilterCall()
                e = .filter(e, name, args, loc)
            } else if isName("is") {
                let loc = advance().location
                let negated = skipName("not")
                var name = try expectName()
                while skipOp(".") { name += "." + (try expectName()) }
                var args = Expr.Arguments()
                if isOp("(") {
                    args = try parseArguments()
                } else if startsPrimary(), !isName("else"), !isName("or"), !isName("and"), !isName("is") {
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                e = .test(e, name, args, negated: negated, loc)
            } else if isOp("(") {
                e = .call(e, try parseArguments(), location)
            } else {
                return e
            }
        }
    }

    private func startsPrimary() -> Bool {
        switch current.kind {
        case .name, .string, .integer, .float: return true
        case .op(let o): return o == "(" || o == "[" || o == "{"
        default: return false
        }
    }
}
