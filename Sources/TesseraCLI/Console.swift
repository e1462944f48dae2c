// Writing to the terminal: results on stdout, progress and errors on stderr.

#if canImport(Glibc)
    import Glibc
#endif

/// An error the CLI reports as one line, `Error: <description>`, exiting 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes a line to stderr (progress and errors), keeping stdout for results.
func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Writes text to stderr as it is (progress redraws carry their own "\r").
func writeStandardError(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// Whether standard error is a terminal (progress redraws one line there).
func standardErrorIsTerminal() -> Bool {
    isatty(2) != 0
}

/// Pushes buffered `print` output out (streamed text appears as it is made).
func flushStandardOutput() {
    fflush(nil)
}

/// Whether standard input is a terminal (rather than a pipe or a file).
func standardInputIsTerminal() -> Bool {
    isatty(0) != 0
}

/// A number with one decimal, for statistics.
func formatted(_ x: Double) -> String {
    String((x * 10).rounded() / 10)
}
