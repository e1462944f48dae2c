// Bounds on one render. Templates come from model files, so a template that
// loops, recurses or grows strings without end must fail fast with a
// `.limit` TemplateError instead of hanging or taking the machine's memory.
// The defaults are orders of magnitude above what real chat templates use
// (a long conversation is a few thousand loop iterations and steps per message).

/// The most one render may do; exceeding any bound throws a `.limit` `TemplateError`.
///
/// ```swift
/// var limits = TemplateLimits()
/// limits.maxDuration = .seconds(1)
/// let text = try template.render(context, limits: limits)
/// ```
public struct TemplateLimits: Sendable, Equatable {
    /// Macro calls nested inside one another (Python's recursion limit plays this part in Jinja2).
    public var maxCallDepth = 64
    /// Loop iterations over the whole render, all loops together.
    public var maxLoopIterations = 100_000
    /// Statements and expressions evaluated over the whole render.
    public var maxSteps = 5_000_000
    /// The longest output, and the longest string (UTF-8 bytes) or list any expression may build.
    public var maxLength = 16 << 20
    /// Wall-clock time for the whole render.
    public var maxDuration: Duration = .seconds(10)

    public init() {}

    /// The defaults.
    public static let standard = TemplateLimits()
}

/// What one render has spent against its `TemplateLimits`.
final class RenderBudget {
    let limits: TemplateLimits
    private var steps = 0
    private var iterations = 0
    private let clock = ContinuousClock()
    private let deadline: ContinuousClock.Instant

    init(_ limits: TemplateLimits) {
        self.limits = limits
        deadline = clock.now.advanced(by: limits.maxDuration)
    }

    /// One statement or expression; the clock is read every 4,096 steps.
    func step(_ loc: SourceLocation? = nil) throws(TemplateError) {
        steps += 1
        if steps > limits.maxSteps {
            throw Self.error("the template evaluated more than \(limits.maxSteps) steps", loc)
        }
        if steps & 4095 == 0, clock.now > deadline {
            throw Self.error("the template ran longer than \(limits.maxDuration)", loc)
        }
    }

    /// One loop iteration.
    func iteration(_ loc: SourceLocation) throws(TemplateError) {
        iterations += 1
        if iterations > limits.maxLoopIterations {
            throw Self.error("the template's loops ran more than \(limits.maxLoopIterations) iterations", loc)
        }
        try step(loc)
    }

    /// Throws when `value` is a string longer than `maxLength` bytes, or a list, dict or
    /// namespace that would print past it (shared parts counted each time, as printing does).
    func checkLength(_ value: Value, _ loc: SourceLocation?) throws(TemplateError) {
        switch value {
        case .string(let s): try checkLength(s, "a string", loc)
        case .array, .object, .namespace:
            if value.expandedSize(upTo: limits.maxLength) > limits.maxLength {
                throw Self.error("a list, dict or namespace grew past \(limits.maxLength) items and bytes", loc)
            }
        default: break
        }
    }

    /// Throws when `text` (the output, or a string `what`) is longer than `maxLength` bytes.
    func checkLength(_ text: String, _ what: String = "the output", _ loc: SourceLocation? = nil) throws(TemplateError)
    {
        if text.utf8.count > limits.maxLength {
            throw Self.error("\(what) grew past \(limits.maxLength) bytes", loc)
        }
    }

    /// Throws unless `count` copies of something `unit` long fit in `maxLength` (checked before building them).
    func checkRepeat(_ unit: Int, count: Int, _ loc: SourceLocation?) throws(TemplateError) {
        if count > limits.maxLength || (unit > 0 && count > limits.maxLength / unit) {
            throw Self.error("repeating \(unit) bytes or items \(count) times goes past \(limits.maxLength)", loc)
        }
    }

    /// `parts` joined by `separator`, its length checked against `maxLength` before it is built.
    static func joined(_ parts: [String], separator: String, maxLength: Int) throws(TemplateError) -> String {
        var total = separator.utf8.count * Swift.max(0, parts.count - 1)
        for part in parts {
            total += part.utf8.count
            if total > maxLength { throw error("a joined string would grow past \(maxLength) bytes", nil) }
        }
        if total > maxLength { throw error("a joined string would grow past \(maxLength) bytes", nil) }
        return parts.joined(separator: separator)
    }

    private static func error(_ message: String, _ loc: SourceLocation?) -> TemplateError {
        TemplateError(.limit, message, line: loc?.line ?? 0, column: loc?.column ?? 0)
    }
}

extension Value {
    /// Items plus string bytes in the value, shared parts counted each time they
    /// appear (as printing it would); counting stops once past `limit`, so a
    /// doubled list costs at most `limit / 8` visits (more items than that is
    /// past the limit too: no chat template prints millions of items). A
    /// namespace that contains itself would print forever: `Int.max`.
    func expandedSize(upTo limit: Int) -> Int {
        enum Work {
            case visit(Value)
            case leave(ObjectIdentifier)
        }
        var total = 0, visits = 0
        var pending: [Work] = [.visit(self)]
        var open: Set<ObjectIdentifier> = []  // namespaces on the path being walked
        while let work = pending.popLast() {
            guard case .visit(let v) = work else {
                if case .leave(let id) = work { open.remove(id) }
                continue
            }
            total += 1
            visits += 1
            if visits > limit / 8 { return Int.max }
            switch v {
            case .string(let s): total += s.utf8.count
            case .array(let a):
                total += a.count
                if total > limit { return total }
                for item in a { pending.append(.visit(item)) }
            case .object(let o):
                total += o.count
                if total > limit { return total }
                for (key, value) in o.pairs {
                    total += key.utf8.count
                    pending.append(.visit(value))
                }
            case .namespace(let n):
                let id = ObjectIdentifier(n)
                if open.contains(id) { return Int.max }
                open.insert(id)
                total += n.attributes.count
                if total > limit { return total }
                pending.append(.leave(id))
                for (_, value) in n.attributes.pairs { pending.append(.visit(value)) }
            default: break
            }
            if total > limit { return total }
        }
        return total
    }
}
