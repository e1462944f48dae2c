// Command-line option parsing: `--name value` and `--flag`, with typed reads
// and a clear message for anything unknown or malformed.

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    private var values: [String: String] = [:]
    private var flags = Set<String>()

    /// Parses `args`; `valued` and `switches` list the accepted names (without "--").
    init(_ args: ArraySlice<String>, valued: Set<String>, switches: Set<String>) throws {
        var i = args.startIndex
        while i < args.endIndex {
            let arg = args[i]
            guard arg.hasPrefix("--") else { throw UsageError("unexpected argument \(arg)") }
            let name = String(arg.dropFirst(2))
            if switches.contains(name) {
                flags.insert(name)
                i += 1
            } else if valued.contains(name) {
                guard i + 1 < args.endIndex else { throw UsageError("--\(name) needs a value") }
                values[name] = args[i + 1]
                i += 2
            } else {
                throw UsageError("unknown option \(arg)")
            }
        }
    }

    func string(_ name: String) -> String? { values[name] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    func int(_ name: String) throws -> Int? {
        guard let v = values[name] else { return nil }
        guard let i = Int(v) else { throw UsageError("--\(name) expects an integer, got \(v)") }
        return i
    }

    func float(_ name: String) throws -> Float? {
        guard let v = values[name] else { return nil }
        guard let f = Float(v), f.isFinite else { throw UsageError("--\(name) expects a number, got \(v)") }
        return f
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes to stderr (progress and errors), keeping stdout for results.
func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Pushes buffered `print` output out (streamed text appears as it is made).
func flushStandardOutput() {
    fflush(nil)
}
