// Errors from parsing or rendering a chat template. Templates come from
// model files, so every failure is a thrown error with a position, never a
// trap.

import Tessera

/// Why a template could not be parsed or rendered.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The template text is not valid Jinja (or uses a statement this engine lacks).
        case syntax
        /// The template called `raise_exception(message)`.
        case raised
        /// An undefined variable, function, filter or test was used where a value is needed.
        case undefined
        /// An operation got values of the wrong type, or failed (division by zero...).
        case runtime
        /// The render went past one of its `TemplateLimits` (depth, loop iterations, steps, length, time).
        case limit
    }

    public var kind: Kind
    public var message: String
    /// 1-based line and column in the template source (0 when unknown).
    public var line: Int
    public var column: Int

    public init(_ kind: Kind, _ message: String, line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        "template \(kind) error at \(line):\(column): \(message)"
    }
}

/// A position in the template source.
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
}
