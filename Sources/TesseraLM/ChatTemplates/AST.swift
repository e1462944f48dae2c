// The parsed form of a Jinja template: statements (Node) and expressions
// (Expr), each expression carrying its source location for error messages.

import Tessera

indirect enum Expr: Sendable {
    case literal(Value)
    case name(String, SourceLocation)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attribute(Expr, String, SourceLocation)
    case item(Expr, Expr, SourceLocation)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?, SourceLocation)
    case call(Expr, Arguments, SourceLocation)
    case filter(Expr, String, Arguments, SourceLocation)
    case test(Expr, String, Arguments, negated: Bool, SourceLocation)
    case not(Expr)
    case negate(Expr, SourceLocation)
    case binary(String, Expr, Expr, SourceLocation)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case compare(Expr, [(String, Expr)], SourceLocation)
    case conditional(test: Expr, then: Expr, otherwise: Expr?)

    struct Arguments: Sendable {
        var positional: [Expr] = []
        var keyword: [(String, Expr)] = []
    }
}

/// What `set` and `for` assign to.
indirect enum Target: Sendable {
    case name(String)
    case tuple([Target])
    /// `ns.attr` (namespace attribute assignment).
    case attribute(String, String)
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expr)
    case ifChain([(Expr, [Node])], otherwise: [Node])
    case forLoop(ForLoop)
    case set(Target, Expr, SourceLocation)
    case setBlock(Target, [Node], filters: [(String, Expr.Arguments, SourceLocation)], SourceLocation)
    case macro(Macro)
    case callBlock(call: Expr, parameters: [(String, Expr?)], body: [Node], SourceLocation)
    case filterBlock([(String, Expr.Arguments, SourceLocation)], [Node])
    case breakLoop(SourceLocation)
    case continueLoop(SourceLocation)

    struct ForLoop: Sendable {
        var target: Target
        var iterable: Expr
        var condition: Expr?
        var body: [Node]
        var otherwise: [Node]
        var recursive: Bool
        var location: SourceLocation
    }

    struct Macro: Sendable {
        var name: String
        var parameters: [(String, Expr?)]
        var body: [Node]
    }
}
